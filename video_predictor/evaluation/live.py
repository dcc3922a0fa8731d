"""Live evaluation: score a running predictor_node over ROS 2 while a bag is replayed.

    python -m video_predictor.evaluate --live --bag PATH [--topic /camera/image_raw] --out DIR
    python -m video_predictor.evaluate --live --listen-only [--bag PATH] --out DIR  # you run: ros2 bag play --clock PATH

The evaluator subscribes to the camera topic, /predicted_frames, /predicted_uncertainty and
/diagnostics of a node started beforehand, and either replays the bag itself
(``video_predictor.ros.replay``'s replayer) or, with ``--listen-only``, listens while the user
plays it. Afterwards it
- takes the model's input frames N, horizon K, frame period and resolution from the
  node's /diagnostics;
- runs the camera frames that arrived, in arrival order, through the node's own frame
  buffer, which gives the N-frame sequence behind every input stamp (for the baselines)
  and the inputs that should have been predicted;
- assigns every predicted frame and uncertainty map to its input and horizon k
  (``assign_horizons``) and scores it against the camera frame that actually arrived
  at its stamp (nearest arrival within half a camera period), with the same scoring code
  as offline (``scoring.Scorer``); only inputs with all K predictions, all K maps and
  all K true frames count;
- measures end-to-end latency, from publishing an input (or, listen-only, from its
  arrival here) to receiving its K-th predicted frame, and counts dropped frames.

use_sim_time: nothing here reads the ROS clock: predictions are matched by header stamps
and latency is measured on this process's monotonic clock, so the evaluator works the same
whether the node runs on wall time or on /clock. A node started with
``-p use_sim_time:=true`` needs /clock: ``ros2 bag play --clock`` publishes it, and so does
this evaluator's replayer with ``--clock``. Its /diagnostics timer then runs on bag time
too, so a bag shorter than the node's ``diagnostics_period`` may end before the node has
said which model it runs; the evaluator then says so.

The demo records with this module's ``Collector``; both match with video_predictor.evaluation.matching.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from tqdm import tqdm

from video_predictor.contract import DIAGNOSTICS_TOPIC, FRAMES_KEY_PREFIX, DiagnosticKey, frames_key, parse_resolution

# the live evaluator listens in the root namespace
from video_predictor.contract import ROOT_CAMERA_TOPIC as CAMERA_TOPIC
from video_predictor.contract import ROOT_FRAMES_TOPIC as FRAMES_TOPIC
from video_predictor.contract import ROOT_UNCERTAINTY_TOPIC as UNCERTAINTY_TOPIC
from video_predictor.core.camera_messages import decode_image_message
from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.frame_buffer import FrameBuffer
from video_predictor.core.metadata import CAMERA_PERIOD
from video_predictor.core.pixels import NO_SIZE_LIMIT, ImageError, image_to_array, match_channels, uncertainty_to_array
from video_predictor.core.predictor import Prediction
from video_predictor.core.preprocess import fit_to_model
from video_predictor.evaluation import metrics
from video_predictor.evaluation.matching import (
    CameraArrival,
    Matched,
    Received,
    assign_horizons,
    end_to_end_latency_ms,
    nearest_stamp,
    stamp_ns,
)
from video_predictor.evaluation.results import EvaluationResult, Latency, LiveCounts, LiveRun, Periods
from video_predictor.evaluation.scoring import MIN_MOVING_FRACTION, Scorer, StripSelector
from video_predictor.evaluation.sources import StreamCounts
from video_predictor.io import bags
from video_predictor.ros.listener import PredictorListener, wait_until
from video_predictor.ros.replay import ImageReplayer, Published

SETTLE_S = 0.5  # after discovery, for the node's best-effort reader to finish matching our publisher


class LiveError(RuntimeError):
    """The live evaluation could not run or found nothing to score; says why."""


class Collector(PredictorListener):
    """Records what predictor_node publishes and, with ``record_camera``, the camera frames
    that arrive; with ``replay`` it can publish recorded images itself (and /clock, with
    ``clock``). Its executor spins in a background thread while the caller replays or
    waits; read the lists after ``close()``."""

    def __init__(self, domain_id: int | None = None, camera_topic: str = CAMERA_TOPIC, record_camera: bool = False,
                 replay: bool = True, clock: bool = False, name: str = "video_predictor_demo",
                 msgtype: str | None = None) -> None:
        """msgtype: of the camera topic (bags.IMAGE_MSGTYPE or COMPRESSED_MSGTYPE); None:
        CompressedImage where the topic ends in /compressed (image_transport's name), else Image."""
        if msgtype is None:
            compressed = camera_topic.endswith(bags.COMPRESSED_SUFFIX)
            msgtype = bags.COMPRESSED_MSGTYPE if compressed else bags.IMAGE_MSGTYPE
        super().__init__(name, domain_id, depth=200)
        self.camera_topic = camera_topic
        self.frames: list[Received] = []
        self.uncertainty: list[Received] = []
        self.camera: list[CameraArrival] = []
        self.camera_rejected = 0
        self.model_size: tuple[int, int] | None = None  # camera frames are fitted to it once known
        self._own_camera_subscriptions = 1 if record_camera else 0
        if record_camera:
            # best effort matches reliable and best-effort cameras alike (as the node's sensor-data QoS)
            camera_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                                    reliability=ReliabilityPolicy.BEST_EFFORT)
            camera_type = CompressedImage if msgtype == bags.COMPRESSED_MSGTYPE else Image
            self.node.create_subscription(camera_type, camera_topic, self._on_camera, camera_qos)
        self.replayer = ImageReplayer(self.node, camera_topic, clock=clock, msgtype=msgtype) if replay else None
        self.start()

    def on_frame(self, msg: Image, arrived: float) -> None:
        self.frames.append(Received(stamp_ns(msg), arrived, msg))
        if self.model_size is None:
            self._set_model_size((msg.height, msg.width))

    def on_uncertainty(self, msg: Image, arrived: float) -> None:
        self.uncertainty.append(Received(stamp_ns(msg), arrived, msg))

    def _on_camera(self, msg: Image | CompressedImage) -> None:
        arrived = time.monotonic()
        try:
            image, encoding = decode_image_message(msg, NO_SIZE_LIMIT, NO_SIZE_LIMIT)
        except ImageError:
            self.camera_rejected += 1  # the node rejects it too
            return
        if stamp_ns(msg) == 0:  # so does the node: a camera without a clock
            self.camera_rejected += 1
            return
        # the node's stream key: the camera's own size, whether or not the model's is known yet
        key = (*image.shape[:2], encoding, msg.header.frame_id)
        # keep frames small: fitted to the model as soon as its resolution is known
        image = fit_to_model(image, *self.model_size) if self.model_size else image.copy()
        self.camera.append(CameraArrival(stamp_ns(msg), arrived, key, image))

    def _set_model_size(self, size: tuple[int, int]) -> None:
        self.model_size = size
        self.camera = [a._replace(image=fit_to_model(a.image, *size)) for a in self.camera]

    def on_status(self, level: int, message: str, values: dict[str, str], arrived: float) -> None:
        size = parse_resolution(values.get(DiagnosticKey.RESOLUTION, ""))
        if self.model_size is None and size is not None:
            self._set_model_size(size)

    def predictor_connected(self) -> bool:
        """A node that publishes /predicted_frames subscribes to the camera topic, and our
        replayer's publisher has matched it."""
        publishers = {(i.node_namespace, i.node_name) for i in self.node.get_publishers_info_by_topic(FRAMES_TOPIC)}
        subscribers = {(i.node_namespace, i.node_name)
                       for i in self.node.get_subscriptions_info_by_topic(self.camera_topic)}
        # our own camera subscription matches our replayer too
        matched = self.replayer is None or (
            self.replayer.publisher.get_subscription_count() > self._own_camera_subscriptions)
        return bool(publishers & subscribers) and matched

    def last_arrival(self) -> float:
        """time.monotonic() of the newest camera frame or prediction, 0 before any."""
        latest = self.frames[-1:] + self.uncertainty[-1:] + self.camera[-1:]
        return max((r.arrived for r in latest), default=0.0)

    def wait_until_quiet(self, quiet: float, timeout: float) -> None:
        """Until no prediction has arrived for ``quiet`` seconds (or ``timeout`` passes)."""
        def quiet_now() -> bool:
            last = max((r.arrived for r in self.frames[-1:] + self.uncertainty[-1:]), default=0.0)
            return time.monotonic() - last > quiet

        wait_until(quiet_now, timeout)


# -- a live session --------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveOptions:
    bag: str | None
    topic: str = CAMERA_TOPIC
    listen_only: bool = False
    rate: float = 1.0
    clock: bool = False  # publish /clock while replaying
    domain_id: int | None = None  # None: ROS_DOMAIN_ID, as every ROS tool
    wait: float = 60.0  # for the node (replaying) or the first camera frame (listen-only)
    idle_timeout: float = 3.0  # stop once nothing arrived for this long
    progress: bool = True


@dataclass
class LiveRecording:
    """Everything one live session received."""

    camera: list[CameraArrival]
    frames: list[Received]
    uncertainty: list[Received]
    diagnostics: dict[str, str] | None  # the node's last /diagnostics values
    sent: list[Published] | None = None  # what our replayer published; None when listening only
    camera_rejected: int = 0
    expected: int | None = None  # images on the topic in the bag, when a bag was given
    source: str = ""
    interrupted: bool = False


def record(options: LiveOptions) -> LiveRecording:
    """Listen to the node (and replay the bag, unless listening only) until it goes quiet."""
    if not options.listen_only and options.bag is None:
        raise LiveError("replaying needs --bag; or listen only (--listen-only) while you play it yourself")
    expected = bags.count_image_messages(options.bag, options.topic) if options.bag else None  # checks the topic
    if options.bag:  # a compressed recording: its /compressed topic, as CompressedImage
        topic, msgtype = bags.resolve_image_topic(options.bag, options.topic)
        options = replace(options, topic=topic)
    else:
        msgtype = None
    collector = Collector(options.domain_id, options.topic, record_camera=True, replay=not options.listen_only,
                          clock=options.clock, name="video_predictor_evaluate", msgtype=msgtype)
    sent = None
    interrupted = False
    try:
        try:
            if options.listen_only:
                _listen(collector, options, expected)
            else:
                sent = _replay(collector, options, expected)
        except KeyboardInterrupt:  # Ctrl-C: score what arrived (a cut replay's publish times are lost with it)
            interrupted = True
        # the node's final counters: one more /diagnostics after the last prediction, if they still come
        last = collector.last_arrival()
        collector.wait_for(lambda: collector.diagnostics_arrived > last, timeout=max(options.idle_timeout, 1.5))
    finally:
        collector.close()
    source = f"{options.bag} {options.topic}" if options.bag else options.topic
    return LiveRecording(collector.camera, collector.frames, collector.uncertainty, collector.diagnostics, sent,
                         collector.camera_rejected, expected, f"live: {source}", interrupted)


def _replay(collector: Collector, options: LiveOptions, expected: int | None) -> list[Published]:
    if not collector.wait_for(collector.predictor_connected, options.wait):
        raise LiveError(
            f"no predictor_node found in {options.wait:.0f} s: nothing that publishes {FRAMES_TOPIC} subscribes to "
            f"{options.topic} (ROS domain {collector.context.get_domain_id()}). Start the node first, e.g. "
            f"`predictor_node --ros-args --params-file config/predictor.yaml -r /camera/image_raw:={options.topic}`")
    time.sleep(SETTLE_S)
    images = bags.read_raw_images(options.bag, options.topic)
    with tqdm(images, total=expected, desc="replaying", unit="frame", disable=not options.progress) as bar:
        sent = collector.replayer.play(bar, options.rate)
    collector.wait_until_quiet(quiet=options.idle_timeout, timeout=options.idle_timeout + options.wait)
    return sent


def _listen(collector: Collector, options: LiveOptions, expected: int | None) -> None:
    """Until nothing arrived for ``idle_timeout`` after the first camera frame."""
    print(f"listening on {options.topic}, {FRAMES_TOPIC}, {UNCERTAINTY_TOPIC} (ROS domain "
          f"{collector.context.get_domain_id()}); play the bag now, e.g. `ros2 bag play --clock {options.bag or 'BAG'}`")
    with tqdm(total=expected, desc="listening", unit="frame", disable=not options.progress) as bar:
        if not collector.wait_for(lambda: len(collector.camera) > 0, options.wait):
            raise LiveError(f"no image arrived on {options.topic} in {options.wait:.0f} s")
        while time.monotonic() - collector.last_arrival() < options.idle_timeout:
            bar.update(len(collector.camera) - bar.n)
            time.sleep(0.1)
        bar.update(len(collector.camera) - bar.n)


# -- scoring a session -----------------------------------------------------------------------


@dataclass(frozen=True)
class NodeModel:
    """What the node's /diagnostics say about its model."""

    input_frames: int
    horizon: int
    frame_period: float  # the prediction period in use (the camera's as the node last measured it, in camera mode)
    resolution: tuple[int, int] | None
    backend: str
    model: str
    period_source: str = "model"  # camera, model or parameter (older nodes: model)
    model_frame_period: float | str | None = None  # the model's metadata: seconds or "camera"

    @classmethod
    def from_diagnostics(cls, values: dict[str, str] | None) -> "NodeModel":
        if not values:
            raise LiveError(
                f"no {DIAGNOSTICS_TOPIC} from predictor_node arrived, so its model's horizon and frame period are "
                "unknown. Is the node running in this ROS domain? With use_sim_time:=true its diagnostics run on "
                "/clock: replay with --clock (or `ros2 bag play --clock`), and use a bag longer than the node's "
                "diagnostics_period")
        try:
            model_period = values.get(DiagnosticKey.MODEL_FRAME_PERIOD)
            if model_period is not None and model_period != CAMERA_PERIOD:
                model_period = float(model_period)
            return cls(int(values[DiagnosticKey.INPUT_FRAMES]), int(values[DiagnosticKey.HORIZON]),
                       float(values[DiagnosticKey.FRAME_PERIOD]),
                       parse_resolution(values.get(DiagnosticKey.RESOLUTION, "")), values.get(DiagnosticKey.BACKEND, "?"),
                       values.get(DiagnosticKey.MODEL, "?"), values.get(DiagnosticKey.PREDICTION_PERIOD_SOURCE, "model"),
                       model_period)
        except (KeyError, ValueError) as error:
            raise LiveError(f"{DIAGNOSTICS_TOPIC} of predictor_node lack the model's facts ({error})") from None


def _sets(matched: list[Matched]) -> dict[int, dict[int, Received]]:
    sets: dict[int, dict[int, Received]] = {}
    for m in matched:
        sets.setdefault(m.input_stamp_ns, {}).setdefault(m.k, m.received)  # a repeated input keeps its first set
    return sets


def _replay_buffer(camera: list[CameraArrival], model: NodeModel, max_gap_periods: float,
                   counts: StreamCounts) -> dict[int, np.ndarray]:
    """The node's buffer over the arrivals: input stamp -> indices of its N-frame sequence."""
    period = CAMERA_PERIOD if model.period_source == "camera" else model.frame_period
    buffer = FrameBuffer(model.input_frames, period, max_gap_periods=max_gap_periods)
    sequences: dict[int, np.ndarray] = {}
    for i, arrival in enumerate(camera):
        # the buffer holds arrival indices rather than frames: sequences then cost no copies
        if counts.record(buffer.push(arrival.stamp_ns / 1e9, np.array(i), arrival.key)) and buffer.ready:
            sequences.setdefault(arrival.stamp_ns, buffer.sequence().frames)
    return sequences


def score_recording(recording: LiveRecording, motion_threshold: float = metrics.MOTION_THRESHOLD_PX,
                    max_gap_periods: float = 1.5, strips: StripSelector | None = None,
                    min_moving_fraction: float = MIN_MOVING_FRACTION, batch_size: int = 16) -> EvaluationResult:
    """The result of a live session: the offline schema, plus live counts (``LiveRun``)."""
    model = NodeModel.from_diagnostics(recording.diagnostics)
    if not recording.camera:
        raise LiveError("no camera image arrived: is the bag's topic the one the evaluator listened to?")
    if not recording.frames:
        raise LiveError(f"{len(recording.camera)} camera images arrived but no prediction on {FRAMES_TOPIC}")
    k, period = model.horizon, model.frame_period
    height, width = model.resolution or (recording.frames[0].msg.height, recording.frames[0].msg.width)
    counts = StreamCounts(read=len(recording.camera) + recording.camera_rejected, rejected=recording.camera_rejected)
    node_counters = {key: int(value) for key, value in recording.diagnostics.items()  # the node's own view
                     if (key.startswith(FRAMES_KEY_PREFIX) or key == DiagnosticKey.BUFFER_RESTARTS) and value.isdigit()}
    live = LiveCounts(camera_received=len(recording.camera), predicted_frames_received=len(recording.frames),
                      uncertainty_maps_received=len(recording.uncertainty),
                      camera_published=len(recording.sent) if recording.sent is not None else None,
                      camera_in_bag=recording.expected, interrupted=recording.interrupted, node=node_counters)
    sequences = _replay_buffer(recording.camera, model, max_gap_periods, counts)
    live.inputs_expected = len(sequences)

    input_stamps = [a.stamp_ns for a in recording.camera]
    matched, live.unmatched_frames = assign_horizons(recording.frames, input_stamps, period, k)
    matched_maps, live.unmatched_maps = assign_horizons(recording.uncertainty, input_stamps, period, k)
    frame_sets, map_sets = _sets(matched), _sets(matched_maps)
    live.inputs_predicted = sum(1 for s in sequences if s in frame_sets)

    by_stamp = {}
    for i, a in enumerate(recording.camera):
        by_stamp.setdefault(a.stamp_ns, i)
    arrival_stamps = np.array(sorted(by_stamp), dtype=np.int64)
    camera_period_ns = float(np.median(np.diff(arrival_stamps))) if len(arrival_stamps) > 1 else period * 1e9

    def frame(index: int, channels: int) -> np.ndarray:
        return match_channels(fit_to_model(recording.camera[index].image, height, width), channels)

    scorer = Scorer(k, FlowExtrapolation(), motion_threshold, strips, min_moving_fraction)
    batch: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]] = []

    def flush() -> None:
        inputs, targets, predicted, std, stamps = (np.stack(x) for x in zip(*batch))
        scorer.score(inputs, targets, Prediction(predicted.astype(np.float32) / 255.0, std), stamps.tolist())
        batch.clear()

    for input_stamp in sorted(frame_sets):
        frames_k, maps_k = frame_sets[input_stamp], map_sets.get(input_stamp, {})
        if len(frames_k) < k or len(maps_k) < k:
            live.incomplete_sets += 1
            continue
        live.complete_sets += 1
        if input_stamp not in sequences:
            live.no_input_sequence += 1
            continue
        truth = [nearest_stamp(arrival_stamps, frames_k[j].stamp_ns, camera_period_ns / 2) for j in range(1, k + 1)]
        if any(t is None for t in truth):
            live.beyond_recording += 1
            continue
        try:
            predicted = np.stack([image_to_array(frames_k[j].msg, NO_SIZE_LIMIT, NO_SIZE_LIMIT)[0]
                                  for j in range(1, k + 1)])
            std = np.stack([uncertainty_to_array(maps_k[j].msg) for j in range(1, k + 1)])
        except (ImageError, ValueError):
            live.malformed += 1
            continue
        channels = predicted.shape[-1]
        if predicted.shape[1:3] != (height, width) or std.shape[1:] != (height, width):
            live.malformed += 1
            continue
        inputs = np.stack([frame(int(i), channels) for i in sequences[input_stamp]])
        targets = np.stack([frame(by_stamp[t], channels) for t in truth])
        batch.append((inputs, targets, predicted, std, input_stamp / 1e9))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if scorer.scored == 0:
        raise LiveError(f"no prediction could be scored: {vars(live)}")

    if recording.sent is not None:
        sent, measured = recording.sent, "end to end: input published by the replayer -> its k=K prediction received"
    else:
        sent = [Published(a.stamp_ns, a.arrived) for a in recording.camera]
        measured = "end to end: input received by the evaluator -> its k=K prediction received"
    latency = end_to_end_latency_ms(matched, sent, k)
    model_period = period if model.model_frame_period is None else model.model_frame_period
    live.latency_count = latency["count"]
    live_run = LiveRun(recording.source, model.model, model.backend, measured,
                       frames_dropped=live.inputs_expected - live.inputs_predicted, live=live,
                       failed_predictions=node_counters.get(frames_key("failed")))  # the node's count of failed inferences
    return EvaluationResult(scorer.summary(), Latency(latency["p50"], latency["p99"]), (height, width),
                            Periods(model_period, period, model.period_source), model.input_frames, counts, live_run)


def run(options: LiveOptions, motion_threshold: float = metrics.MOTION_THRESHOLD_PX, max_gap_periods: float = 1.5,
        strips: StripSelector | None = None, min_moving_fraction: float = MIN_MOVING_FRACTION) -> EvaluationResult:
    """Record a live session and score it."""
    return score_recording(record(options), motion_threshold, max_gap_periods, strips, min_moving_fraction)
