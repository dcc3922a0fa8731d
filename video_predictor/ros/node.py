"""predictor_node: camera frames in, K predicted future frames and their uncertainty out.

Per input frame: decode -> fit to the model's resolution -> rolling buffer at the prediction
period (the camera's own for a rate-agnostic model, the model's fixed one, or the
``prediction_period`` parameter) -> (when the buffer is full) hand the sequence to the inference worker.
The worker thread predicts the newest sequence only: one that arrives while it is busy
replaces the pending one, so the subscription callback never waits on the model and
DDS keeps draining.

Nothing that arrives on the topic and nothing the model does takes the node down: a bad
message is rejected, an inference failure is reported (ERROR on /diagnostics) and the
next frame is tried again. Every input is counted in exactly one outcome
(``video_predictor.ros.diagnostics.OUTCOMES``).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions, install_signal_handlers
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from video_predictor.backends import ModelLoadError, create_predictor
from video_predictor.contract import CAMERA_TOPIC as INPUT_TOPIC
from video_predictor.contract import (
    DIAGNOSTICS_TOPIC,
    FRAMES_TOPIC,
    PREDICTED_CAMERA_INFO_TOPIC,
    SEQUENCE_TOPIC,
    SEQUENCE_UNCERTAINTY_TOPIC,
    UNCERTAINTY_TOPIC,
    camera_info_topic,
    compressed_topic,
    format_resolution,
    prediction_stamps_ns,
    split_ns,
    stamp_to_ns,
)
from video_predictor.contract import DiagnosticKey as Key
from video_predictor.core.adaptive_predictor import AdaptivePredictor, describe_summary, with_adaptation
from video_predictor.core.camera_messages import decode_image_message
from video_predictor.core.frame_buffer import FrameBuffer, PushResult, choose_period
from video_predictor.core.pixels import ImageError, match_channels, output_encoding, unit_to_uint8
from video_predictor.core.predictor import Prediction, PredictionError, Predictor
from video_predictor.core.preprocess import fit_to_model
from video_predictor.ros.camera_info import fitted_intrinsics, image_size, sensor_to_image_matrix
from video_predictor.ros.diagnostics import NodeStats, StatsSnapshot, diagnostic_status
from video_predictor.ros.image_messages import array_to_image, float_array_to_image
from video_predictor.ros.parameters import RELIABILITIES, ConfigError, NodeSettings, declare_settings, updated_settings

NODE_NAME = "predictor_node"

LOG_THROTTLE_S = 5.0

PredictorFactory = Callable[..., "tuple[Predictor, str]"]
T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-item mailbox: put() replaces the waiting item, take() blocks for the next one."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> T | None:
        """Leave ``item`` for the taker; return the item it replaced, if any."""
        with self._ready:
            replaced, self._item = self._item, item
            self._ready.notify()
            return replaced

    def take(self) -> T | None:
        """The next item, waiting for one; None once closed."""
        with self._ready:
            while self._item is None and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


@dataclass(frozen=True)
class InferenceJob:
    frames: np.ndarray  # (N, H, W, C) uint8 at the model's resolution, oldest first
    newest_stamp_ns: int  # stamp of the newest observed frame
    frame_id: str
    encoding: str  # of the predicted frames
    received_at: float  # time.monotonic() when the newest frame arrived
    period_s: float = 0.0  # the prediction period for this sequence: stamps are newest + k * period_s
    last_interval: float = 1.0  # time between the two newest frames, in prediction periods


def ns_to_stamp(ns: int) -> Time:
    sec, nanosec = split_ns(ns)
    return Time(sec=sec, nanosec=nanosec)


class PredictorNode(Node):
    """Subscribes to camera images and publishes predicted frames, uncertainty and diagnostics.

    Set-up is in two steps, which video_predictor.ros.lifecycle_node runs as lifecycle
    transitions: _configure (load the model, publishers, the inference thread) and
    _activate (subscribe to the camera); this node runs both at once.
    """

    def __init__(self, predictor_factory: PredictorFactory = create_predictor, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self.settings = declare_settings(self)
        self._configure(predictor_factory)
        self._activate()

    def _configure(self, predictor_factory: PredictorFactory) -> None:
        s = self.settings
        self.predictor, self.backend_reason = predictor_factory(
            model=s.model, backend=s.backend, device=s.device, horizon=s.horizon, samples=s.samples,
            threads=s.threads, precision=s.precision, engine_cache_dir=s.engine_cache_dir)
        self._sampling_note_logged = False
        self._apply_sampling(s)
        self.predictor, self.adaptation_note = with_adaptation(self.predictor, s.adapt)
        self.predictor.warm_up()  # before subscribing: the first real frame pays no set-up cost
        md = self.predictor.metadata
        # the predictor yields this many frames; a run-time horizon publishes the first ones
        self.loaded_horizon = self.predictor.horizon
        self.horizon = self.loaded_horizon
        try:
            period, self.period_source = choose_period(md.frame_period, s.prediction_period)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self.buffer = FrameBuffer(md.input_frames, period, max_gap_periods=s.max_gap_periods)
        self._slow_camera: str | None = None  # why the camera is too slow for the period, while it is
        self.stats = NodeStats()
        self._last_report: StatsSnapshot | None = None
        predicting_at = "the camera's frame period, measured from the stamps" if self.period_source == "camera" else (
            f"{self.buffer.fixed_period:.4f} s ({self.period_source})")
        self.get_logger().info(
            f"model {s.model or '(packaged default)'}: {md.family}, {md.input_frames} frames in, "
            f"{self.predictor.horizon} out at {md.height}x{md.width}, period {md.describe_period()}, predicting at "
            f"{predicting_at}; "
            f"backend {self.predictor.backend_name} ({self.backend_reason}); uncertainty: {md.uncertainty}"
            + (f", {s.samples} sample(s), publishing the {s.publish}" if md.stochastic else "")
            + f"; {self.adaptation_note}")

        output_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(s.qos_depth, self.loaded_horizon),
                                reliability=ReliabilityPolicy.RELIABLE)
        self.frames_pub = self.create_publisher(Image, FRAMES_TOPIC, output_qos)
        self.uncertainty_pub = self.create_publisher(Image, UNCERTAINTY_TOPIC, output_qos)
        self.sequence_pub = self.create_publisher(Image, SEQUENCE_TOPIC, output_qos)
        self.sequence_uncertainty_pub = self.create_publisher(Image, SEQUENCE_UNCERTAINTY_TOPIC, output_qos)
        self.camera_info_pub = self.create_publisher(CameraInfo, PREDICTED_CAMERA_INFO_TOPIC, output_qos)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.diagnostics_timer = self.create_timer(s.diagnostics_period, self._publish_diagnostics)

        self._jobs: LatestSlot[InferenceJob] = LatestSlot()
        self._worker = threading.Thread(target=self._inference_loop, name="inference", daemon=True)
        self._worker.start()

        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

    def _activate(self) -> None:
        s = self.settings
        input_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=s.qos_depth,
                               reliability=RELIABILITIES[s.qos_reliability])
        self.image_sub, self.camera_info_sub = self._subscribe_camera(input_qos)

    def _deactivate(self) -> None:
        """Drop the camera subscriptions (and the frames buffered from them)."""
        for subscription in (self.image_sub, self.camera_info_sub):
            self.destroy_subscription(subscription)
        self.image_sub = self.camera_info_sub = None
        self.buffer.clear()

    def _release(self) -> None:
        """Undo _configure: stop the inference thread, drop publishers, timer and model."""
        self._jobs.close()
        self._worker.join()
        self.destroy_timer(self.diagnostics_timer)
        for publisher in (self.frames_pub, self.uncertainty_pub, self.sequence_pub, self.sequence_uncertainty_pub,
                          self.camera_info_pub, self.diagnostics_pub):
            self.destroy_publisher(publisher)
        self.remove_on_set_parameters_callback(self._check_parameters)
        self.remove_post_set_parameters_callback(self._apply_parameters)
        self.predictor = None

    # -- subscription thread -------------------------------------------------------------

    def _subscribe_camera(self, qos: QoSProfile) -> tuple:
        """The camera subscription, raw or compressed (the image_transport parameter), and
        its camera_info's; both found from the resolved camera topic as image_transport does."""
        base = self.resolve_topic_name(INPUT_TOPIC)
        self._predicted_info: dict | None = None  # CameraInfo fields of the predicted frames, less the header
        info_sub = self.create_subscription(CameraInfo, camera_info_topic(base), self._on_camera_info, qos)
        if self.settings.image_transport == "compressed":
            return self.create_subscription(CompressedImage, compressed_topic(base), self._on_image, qos), info_sub
        return self.create_subscription(Image, INPUT_TOPIC, self._on_image, qos), info_sub

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Keep the predicted frames' camera model: the camera's K and P with the crop and
        resize the node applies (video_predictor.ros.camera_info)."""
        md = self.predictor.metadata
        if msg.width == 0 or msg.height == 0 or not any(msg.k):
            self.get_logger().warning("camera_info without image size or K (uncalibrated camera?); ignored",
                                      throttle_duration_sec=LOG_THROTTLE_S)
            return
        roi = msg.roi
        to_image = sensor_to_image_matrix(roi.x_offset, roi.y_offset, msg.binning_x, msg.binning_y)
        height, width = image_size(msg.width, msg.height, roi.width, roi.height, msg.binning_x, msg.binning_y)
        k, p = fitted_intrinsics(to_image @ np.reshape(msg.k, (3, 3)), to_image @ np.reshape(msg.p, (3, 4)),
                                 height, width, md.height, md.width)
        self._predicted_info = dict(height=md.height, width=md.width, distortion_model=msg.distortion_model,
                                    d=list(msg.d), k=k.reshape(-1).tolist(), r=list(msg.r), p=p.reshape(-1).tolist())

    def _on_image(self, msg: Image | CompressedImage) -> None:
        received_at = time.monotonic()
        try:
            job = self._accept(msg, received_at)
        except ImageError as error:
            self.stats.add(error=f"rejected input: {error}", received=1, rejected=1)
            self.get_logger().warning(f"rejected input image: {error}", throttle_duration_sec=LOG_THROTTLE_S)
            return
        except Exception as error:  # noqa: BLE001 - a bug on one odd message must not take the node down
            self.stats.add(error=f"rejected input (internal error): {error!r}", received=1, rejected=1)
            self.get_logger().error(f"internal error on an input image, rejected: {error!r}",
                                    throttle_duration_sec=LOG_THROTTLE_S)
            return
        if job is None:
            self.stats.add(received=1, skipped=1)
            return
        self.stats.add(received=1, in_flight=1)  # counted in flight before the worker can finish it
        if self._jobs.put(job) is not None:
            self.stats.add(dropped=1, in_flight=-1)

    def _accept(self, msg: Image, received_at: float) -> InferenceJob | None:
        """Decode and buffer ``msg``; the inference job once the buffer is full, None when
        the frame is skipped. Raises ImageError for a message the node cannot use."""
        s, md = self.settings, self.predictor.metadata
        stamp_ns = stamp_to_ns(msg.header.stamp)
        if stamp_ns == 0:  # as a stamp it would restart the buffer twice; it is a camera without a clock
            raise ImageError("header.stamp is zero (does the camera stamp its images?)")
        image, encoding = decode_image_message(msg, s.max_image_width, s.max_image_height)
        frame = match_channels(fit_to_model(image, md.height, md.width), md.channels)
        key = (image.shape[0], image.shape[1], encoding, msg.header.frame_id)
        result = self.buffer.push(stamp_ns / 1e9, frame, key)
        self._check_camera_rate()
        if result is PushResult.RESTARTED:
            self.stats.buffer_restarted(self.buffer.restart_reason)
            if self._slow_camera is None:  # a too slow camera restarts it at every frame: said once above
                self.get_logger().info(f"frame buffer restarted: {self.buffer.restart_reason}",
                                       throttle_duration_sec=LOG_THROTTLE_S)
        elif result is PushResult.DUPLICATE:
            self.get_logger().warning("input frame has the same stamp as the previous one; skipped",
                                      throttle_duration_sec=LOG_THROTTLE_S)
        if result not in (PushResult.KEPT, PushResult.RESTARTED) or not self.buffer.ready:
            return None
        sequence = self.buffer.sequence()
        return InferenceJob(sequence.frames, stamp_ns, msg.header.frame_id, output_encoding(encoding), received_at,
                            sequence.period, sequence.last_interval)

    def _check_camera_rate(self) -> None:
        """A camera too slow for the prediction period (a fixed-period model fed a slower camera):
        said once in the log when it starts, and a WARN on /diagnostics while it lasts."""
        reason = self.buffer.slow_camera_reason()
        if reason == self._slow_camera or (reason is not None and self._slow_camera is not None):
            return
        self._slow_camera = reason
        self.stats.set_warning(reason or "")
        if reason is not None:
            self.get_logger().warning(reason)
        else:
            self.get_logger().info(f"camera rate fine again (frame period {self.buffer.camera_period:.4f} s)")

    # -- inference thread ----------------------------------------------------------------

    def _inference_loop(self) -> None:
        while (job := self._jobs.take()) is not None:
            self._run(job)

    def _run(self, job: InferenceJob) -> None:
        try:
            prediction = self.predictor.predict(job.frames, last_interval=job.last_interval)
        except Exception as error:  # noqa: BLE001 - any model failure must leave the worker alive
            kind = "non-finite output" if isinstance(error, PredictionError) else type(error).__name__
            self.stats.prediction_failed(f"inference failed ({kind}): {error}")
            self.get_logger().error(f"inference failed, nothing published for this frame: {error}",
                                    throttle_duration_sec=LOG_THROTTLE_S)
            return
        try:
            self._publish(job, prediction)
        except Exception as error:  # noqa: BLE001 - e.g. the context shut down by a signal mid-publish
            self.stats.prediction_failed(f"publishing failed: {error}")
            if self.context.ok():
                self.get_logger().error(f"publishing a prediction failed: {error}",
                                        throttle_duration_sec=LOG_THROTTLE_S)
            return
        self.stats.prediction_done(time.monotonic() - job.received_at)

    def _publish(self, job: InferenceJob, prediction: Prediction) -> None:
        """K frames and K uncertainty maps, k = 1..K in order, each pair with one stamp (and
        its CameraInfo, where the camera publishes one); first the whole sequence in one message."""
        horizon = self.horizon  # once: a run-time change applies from the next input, never within one
        stamps = prediction_stamps_ns(job.newest_stamp_ns, job.period_s, horizon)
        frames = unit_to_uint8(prediction.frames[0, :horizon])  # once, for both outputs
        std = prediction.std[0, :horizon]
        self._publish_sequence(job, frames, std)
        info = self._predicted_info
        for k, stamp_ns in enumerate(stamps):
            header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=job.frame_id)
            if info is not None:
                self.camera_info_pub.publish(CameraInfo(header=header, **info))
            self.frames_pub.publish(array_to_image(frames[k], job.encoding, header))
            self.uncertainty_pub.publish(float_array_to_image(std[k], header))

    def _publish_sequence(self, job: InferenceJob, frames: np.ndarray, std: np.ndarray) -> None:
        """All K frames of one input in one message, k = 1..K stacked top to bottom
        (height K*H), stamped with the newest observed frame's stamp; the same for the std.
        frames (K, H, W, C) uint8, std (K, H, W)."""
        header = Header(stamp=ns_to_stamp(job.newest_stamp_ns), frame_id=job.frame_id)
        self.sequence_pub.publish(array_to_image(frames.reshape(-1, *frames.shape[2:]), job.encoding, header))
        self.sequence_uncertainty_pub.publish(float_array_to_image(std.reshape(-1, std.shape[2]), header))

    def _apply_sampling(self, settings: NodeSettings) -> None:
        """Hand samples and publish to a stochastic model's predictor; a deterministic
        model ignores them (said once in the log, when they ask for more than it gives)."""
        md = self.predictor.metadata
        if md.stochastic:
            self.predictor.samples = settings.samples
            self.predictor.publish = settings.publish
            if settings.samples == 1 and md.uncertainty == "samples" and not self._sampling_note_logged:
                self._sampling_note_logged = True
                self.get_logger().warning(
                    f"samples is 1: the {md.family} model draws a single future, so /predicted_uncertainty is 0; "
                    "set samples >= 2 (e.g. 8) for a standard deviation across samples")
        elif (settings.samples > 1 or settings.publish != "mean") and not self._sampling_note_logged:
            self._sampling_note_logged = True
            self.get_logger().info(
                f"samples={settings.samples}, publish={settings.publish} ignored: the {md.family} model is deterministic "
                f"(one prediction per input; its uncertainty is {md.uncertainty})")

    # -- diagnostics ---------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        now = self.stats.snapshot()
        md = self.predictor.metadata
        info = {
            Key.BACKEND: self.predictor.backend_name,
            Key.BACKEND_REASON: self.backend_reason,
            Key.MODEL: self.settings.model or "(packaged default)",
            Key.INPUT_FRAMES: md.input_frames,
            Key.HORIZON: self.horizon,
            Key.RESOLUTION: format_resolution(md.height, md.width),
            # the prediction period in use, full precision: clients compute stamps from it (camera
            # mode: as measured now, over a restart the camera's recent rate; nan before any)
            Key.FRAME_PERIOD: repr(float(self.buffer.period or self.buffer.camera_period or "nan")),
            Key.PREDICTION_PERIOD_SOURCE: self.period_source,  # camera, model or parameter
            Key.MODEL_FRAME_PERIOD: str(md.frame_period),
            Key.CAMERA_PERIOD: repr(float(self.buffer.camera_period or "nan")),
        }
        if isinstance(self.predictor, AdaptivePredictor):
            info[Key.ADAPTATION] = describe_summary(self.predictor.summary())
        status = diagnostic_status(now, self._last_report, info)
        status.hardware_id = self.get_fully_qualified_name()  # tells namespaced nodes apart
        self._last_report = now
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    # -- parameters changed at run time (executor thread) --------------------------------

    def _check_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        try:
            updated_settings(self.settings, changes, self.loaded_horizon)
        except ConfigError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, changes: list[Parameter]) -> None:
        old = self.settings
        new = self.settings = updated_settings(old, changes, self.loaded_horizon)
        self.horizon = new.horizon or self.loaded_horizon
        self.buffer.max_gap_periods = new.max_gap_periods
        self._apply_sampling(new)
        if new.diagnostics_period != old.diagnostics_period:
            self.destroy_timer(self.diagnostics_timer)
            self.diagnostics_timer = self.create_timer(new.diagnostics_period, self._publish_diagnostics)
        changed = ", ".join(f"{p.name} {getattr(old, p.name)} -> {getattr(new, p.name)}" for p in changes
                            if hasattr(new, p.name))
        self.get_logger().info(f"parameters changed: {changed}")

    def destroy_node(self) -> None:
        if getattr(self, "_jobs", None) is not None:  # a lifecycle node may never have been configured
            self._jobs.close()
            self._worker.join()
        super().destroy_node()


def main(args: list[str] | None = None, node_class: type[PredictorNode] = PredictorNode) -> int:
    """Run the node until SIGINT/SIGTERM; exit code 0 then, 2 on a bad parameter or model.

    A signal while the node starts (importing the backend, loading the model: seconds) is
    remembered and acted on once start-up is done: a KeyboardInterrupt raised inside an
    extension module's import or the model load would end in a traceback. From the spin
    on, rclpy's own handlers wake the executor (and chain to the one remembering it).
    """
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except RuntimeError as error:  # rcl's RCLError: malformed --ros-args or unreadable params file
        print(f"{NODE_NAME}: cannot start: {error}", file=sys.stderr)
        return 2
    logger = rclpy.logging.get_logger(NODE_NAME)
    node = None
    try:
        node = node_class()
        install_signal_handlers(SignalHandlerOptions.ALL)
        if not stop_requested.is_set():  # one that came before the line above was only remembered
            rclpy.spin(node)
    except (ConfigError, ModelLoadError, PredictionError) as error:
        logger.fatal(f"cannot start: {error}")
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # RCLError when a signal shuts the context down mid-spin (ros2/ros2cli#854)
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
