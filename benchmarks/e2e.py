"""End to end across processes over DDS: the installed predictor_node as a subprocess, fed the
carphone clip at a given rate, its output read by a listener in this process.

One node serves a list of *steps* (rates, each for a duration) so that a rate sweep and the
saturation search pay the node's start-up once. Stamps advance by the recording's 30 Hz
period whatever the rate (a rate of 60 Hz is ``ros2 bag play --rate 2`` of a 30 Hz bag), so
every frame is one a 30 Hz model keeps and the node must predict each one (a model trained at
10 Hz keeps every third, as on a real 30 Hz camera: throughput counts predictions). Per step:

- latency: camera message published (just after ``publish`` returns) -> the K-th predicted
  frame of that input received here, p50/p90/p99 over every input with its K-th frame;
- frames dropped: the node's ``frames_dropped`` (sequences superseded while inference was
  busy) plus the messages it never received (lost in transport: best-effort QoS);
- sustained throughput: inputs predicted per second of replay;
- CPU use of the node's process: utime + stime from /proc/<pid>/stat over the step, in % of
  one core (200 % = both cores of this machine);
- resident memory (VmRSS) of the node at the start and the end of the step.

The node runs with ``config/predictor.yaml`` (sensor-data QoS: best effort, depth 5) and the
overrides given; the listener subscribes to both outputs (a planner would) and /diagnostics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from video_predictor.contract import FRAMES_KEY_PREFIX, frames_key, split_ns, stamp_to_ns
from video_predictor.contract import ROOT_CAMERA_TOPIC as CAMERA_TOPIC  # the node under test runs in the root namespace
from video_predictor.contract import DiagnosticKey as Key
from video_predictor.ros.listener import PredictorListener
from video_predictor.ros.replay import ImageReplayer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak import resident_mb, rss_growth_mb  # noqa: E402 - the soak's VmRSS reader and growth measure, shared
from stages import CAMERA_PERIOD_NS, FIRST_STAMP_NS, percentiles  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far, in seconds (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_command(model: str, backend: str, threads: int, samples: int, extra: list[str]) -> list[str]:
    """The installed predictor_node with the package's parameter file and the benchmark's overrides."""
    script = Path(sys.executable).parent / "predictor_node"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "video_predictor.ros.node"]
    command += ["--ros-args", "--params-file", str(REPO / "config" / "predictor.yaml"),
                "-p", "diagnostics_period:=0.5", "-p", f"backend:={backend}", "-p", f"threads:={threads}",
                "-p", f"samples:={samples}"]
    if model:
        command += ["-p", f"model:={model}"]
    for override in extra:
        command += ["-p", override]
    return command


@dataclass
class StepResult:
    rate_hz: float
    duration_s: float
    published: int
    received_by_node: int
    lost_in_transport: int
    dropped_by_node: int
    predicted: int
    failed: int
    throughput_hz: float
    latency_ms: dict[str, float] | None
    node_latency_ms: dict[str, str]  # the node's own (callback -> published), over its last 300
    cpu_percent: float
    rss_mb_start: float
    rss_mb_end: float
    load_average: list[float]
    rss_mb_max: float = 0.0
    #: median VmRSS of the step's last fifth minus its first fifth after a warm-up of a tenth
    #: of the step (at most 60 s), sampled every second; None for steps under ~10 s
    rss_growth_mb: float | None = None

    @property
    def dropped(self) -> int:
        return self.dropped_by_node + self.lost_in_transport


class Listener(PredictorListener):
    """This process's side: the predictor listener with a camera publisher, recording
    (stamp, arrival) of each prediction only, so a 10-minute run stays small."""

    def __init__(self, domain_id: int) -> None:
        super().__init__("bench_e2e_listener", domain_id, depth=100)
        self.frames: list[tuple[int, float]] = []
        self.maps_received = 0
        self.replayer = ImageReplayer(self.node, CAMERA_TOPIC)
        self.start()

    def on_frame(self, msg, arrived: float) -> None:
        self.frames.append((stamp_to_ns(msg.header.stamp), arrived))

    def on_uncertainty(self, msg, arrived: float) -> None:
        self.maps_received += 1

    def settled(self, published_total: int, quiet_s: float = 1.0) -> bool:
        """The node has nothing in flight, no prediction arrived for ``quiet_s``, and a report
        newer than that says so (or it received everything)."""
        values = self.diagnostics
        if values is None or values.get(frames_key("in_flight")) != "0":
            return False
        last = self.frames[-1][1] if self.frames else 0.0
        now = time.monotonic()
        received_all = int(values[frames_key("received")]) >= published_total
        return now - last > quiet_s and (received_all or self.diagnostics_arrived > last + quiet_s)


def camera_stream(clip: list[np.ndarray], first_index: int, count: int, rate_hz: float) -> Iterator:
    """``count`` CDR-serialised rgb8 messages of the looping clip, stamps at 30 Hz from
    ``first_index``, paced (log times) at ``rate_hz``."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from video_predictor.io.bags import RawImage

    h, w, _ = clip[0].shape
    for i in range(first_index, first_index + count):
        stamp_ns = FIRST_STAMP_NS + i * CAMERA_PERIOD_NS
        msg = Image(height=h, width=w, encoding="rgb8", step=3 * w, data=clip[i % len(clip)].tobytes())
        msg.header.frame_id = "camera"
        msg.header.stamp.sec, msg.header.stamp.nanosec = split_ns(stamp_ns)
        yield RawImage(stamp_ns, round((i - first_index) * 1e9 / rate_hz), serialize_message(msg))


def latencies_ms(frames: list[tuple[int, float]], sent: list, period_s: float, horizon: int) -> list[float]:
    """Published -> K-th predicted frame received, ms, for every input that got its K-th frame.

    The node publishes k = 1..K in order, so frames are grouped by arrival order with
    ``video_predictor.evaluation.matching.assign_horizons`` (stamps alone are ambiguous when the camera and the model
    run at the same period)."""
    from video_predictor.evaluation.matching import Received, assign_horizons

    received = [Received(stamp, arrived, None) for stamp, arrived in frames]
    matched, _ = assign_horizons(received, [p.stamp_ns for p in sent], period_s, horizon)
    sent_at = {p.stamp_ns: p.sent_at for p in sent}
    return [(m.received.arrived - sent_at[m.input_stamp_ns]) * 1e3
            for m in matched if m.k == horizon and m.input_stamp_ns in sent_at]


class NodeUnderTest:
    """predictor_node as a subprocess in its own ROS domain, with this process's listener."""

    def __init__(self, model: str, backend: str, threads: int = 0, samples: int = 1, extra: list[str] | None = None,
                 domain_id: int | None = None, start_timeout: float = 90.0) -> None:
        self.domain_id = domain_id if domain_id is not None else 150 + os.getpid() % 80
        env = dict(os.environ, ROS_DOMAIN_ID=str(self.domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                   PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # this process's participant too
        self.log_path = Path(tempfile.mkdtemp(prefix="bench_node_")) / "predictor_node.log"
        self.command = node_command(model, backend, threads, samples, extra or [])
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.listener = Listener(self.domain_id)
        self.sent_total = 0
        ok = self.listener.wait_for(lambda: self.listener.diagnostics is not None or self.process.poll() is not None,
                                    start_timeout)
        if not ok or self.process.poll() is not None:
            self.close()
            raise RuntimeError(f"predictor_node did not start ({' '.join(self.command)}):\n{self.log_path.read_text()}")
        values = self.listener.diagnostics
        self.input_frames, self.horizon = int(values[Key.INPUT_FRAMES]), int(values[Key.HORIZON])
        # the prediction period: a rate-agnostic model's is the camera's (measured once frames come), 30 Hz here
        self.period = (CAMERA_PERIOD_NS / 1e9 if values.get(Key.PREDICTION_PERIOD_SOURCE) == "camera"
                       else float(values[Key.FRAME_PERIOD]))
        self.backend = values[Key.BACKEND]
        self.resolution = values[Key.RESOLUTION]
        if not self.listener.wait_for(lambda: self.listener.replayer.publisher.get_subscription_count() > 0, 10):
            self.close()
            raise RuntimeError("the node's camera subscription never matched this publisher")
        time.sleep(0.5)  # the node's best-effort reader finishes matching our publisher

    def counters(self) -> dict[str, int]:
        values = self.listener.diagnostics or {}
        return {key: int(value) for key, value in values.items() if key.startswith(FRAMES_KEY_PREFIX) and value.isdigit()}

    def run_step(self, clip: list[np.ndarray], rate_hz: float, duration_s: float) -> StepResult:
        """Replay ``duration_s`` seconds of camera at ``rate_hz`` and measure the node."""
        count = max(self.input_frames + 1, round(rate_hz * duration_s))
        before = self.counters()
        frames_before = len(self.listener.frames)
        pid = self.process.pid
        rss_start, cpu_start, wall_start = resident_mb(pid), cpu_seconds(pid), time.monotonic()
        rss_samples: list[tuple[float, float]] = []
        stop_sampling = threading.Event()

        def sample_rss() -> None:
            while not stop_sampling.wait(1.0):
                rss_samples.append((time.monotonic() - wall_start, resident_mb(pid)))

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        try:
            sent = self.listener.replayer.play(camera_stream(clip, self.sent_total, count, rate_hz))
        finally:
            stop_sampling.set()
            sampler.join()
        self.sent_total += count
        replay_s = time.monotonic() - wall_start
        try:
            growth = round(rss_growth_mb(rss_samples, min(60.0, 0.1 * replay_s))[0], 2)
        except ValueError:  # too short a step to tell
            growth = None
        self.listener.wait_for(lambda: self.listener.settled(self.sent_total), 30)
        cpu_end, wall_end, rss_end = cpu_seconds(pid), time.monotonic(), resident_mb(pid)
        after = self.counters()
        delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
        latencies = latencies_ms(self.listener.frames[frames_before:], sent, self.period, self.horizon)
        values = self.listener.diagnostics or {}
        return StepResult(
            rate_hz=rate_hz, duration_s=round(replay_s, 2), published=count,
            received_by_node=delta.get(frames_key("received"), 0),
            lost_in_transport=count - delta.get(frames_key("received"), 0),
            dropped_by_node=delta.get(frames_key("dropped"), 0), predicted=delta.get(frames_key("predicted"), 0),
            failed=delta.get(frames_key("failed"), 0),
            throughput_hz=round(delta.get(frames_key("predicted"), 0) / replay_s, 2),
            latency_ms=percentiles(latencies) if latencies else None,
            node_latency_ms={"p50": values.get(Key.LATENCY_MS_P50, "?"), "p99": values.get(Key.LATENCY_MS_P99, "?")},
            cpu_percent=round(100.0 * (cpu_end - cpu_start) / (wall_end - wall_start), 1),
            rss_mb_start=round(rss_start, 1), rss_mb_end=round(rss_end, 1),
            load_average=[round(x, 2) for x in os.getloadavg()],
            rss_mb_max=round(max([rss_start, rss_end] + [mb for _, mb in rss_samples]), 1), rss_growth_mb=growth,
        )

    def close(self) -> int | None:
        """SIGINT the node, wait for it, shut the listener down; the node's exit code."""
        code = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                code = self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.listener.close()
        return code


def find_saturation(node: NodeUnderTest, clip: list[np.ndarray], start_hz: float, step: float, max_hz: float,
                    duration_s: float, min_hz: float = 2.0) -> tuple[float | None, list[StepResult]]:
    """The highest input rate with no frame dropped: from ``start_hz``, up by x ``step`` while
    no frame drops (until ``max_hz``), or, when ``start_hz`` already drops, down by / ``step``
    until one does not (not below ``min_hz``). Returns it (None if none was found) and every step."""
    def clean(result: StepResult) -> bool:
        return result.dropped == 0 and result.failed == 0

    steps = [node.run_step(clip, start_hz, duration_s)]
    if clean(steps[0]):
        best, rate = start_hz, round(start_hz * step, 1)
        while rate <= max_hz:
            steps.append(node.run_step(clip, rate, duration_s))
            if not clean(steps[-1]):
                break
            best, rate = rate, round(rate * step, 1)
        return best, steps
    rate = round(start_hz / step, 1)
    while rate >= min_hz:
        steps.append(node.run_step(clip, rate, duration_s))
        if clean(steps[-1]):
            return rate, steps
        rate = round(rate / step, 1)
    return None, steps
