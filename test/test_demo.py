"""The demo: matching the node's predictions to inputs and recorded frames, the replay and
collection over real DDS against a small in-test echo node, and (slow) the whole
`python -m video_predictor.demo` with the packaged model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from video_predictor.backends import default_model_path
from video_predictor.contract import (
    DIAGNOSTICS_STATUS_NAME,
    DIAGNOSTICS_TOPIC,
    ROOT_CAMERA_TOPIC,
    ROOT_FRAMES_TOPIC,
    ROOT_UNCERTAINTY_TOPIC,
    split_ns,
)
from video_predictor.evaluation import demo, live, matching
from video_predictor.evaluation.metrics import PSNR_CAP_DB, psnr
from video_predictor.io import bags
from video_predictor.ros.image_messages import array_to_image
from video_predictor.ros.replay import Published

CAMERA_NS = 33_366_667  # 29.97 fps, as the carphone clip
PERIOD_S = 1 / 30  # the model's period: close to, but not, the camera's
K = 3
T0 = 1_700_000_000 * 1_000_000_000
DOMAIN = 1 + (os.getpid() + 50) % 100  # not the node tests' domain (1 + pid % 100)


def received(stamp: int, arrived: float = 0.0, pixels: np.ndarray | None = None) -> matching.Received:
    pixels = np.zeros((16, 16, 3), np.uint8) if pixels is None else pixels
    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = split_ns(stamp)
    return matching.Received(stamp, arrived, array_to_image(pixels, "rgb8", header))


def node_stamps(input_ns: int) -> list[int]:
    """What the node stamps the predictions of one input: newest + k * period."""
    return [input_ns + round(k * PERIOD_S * 1e9) for k in range(1, K + 1)]


# -- matching --------------------------------------------------------------------------------


def test_assign_horizons_follows_arrival_order_across_dropped_inputs():
    inputs = [T0 + i * CAMERA_NS for i in range(6)]
    predicted_for = [0, 2, 3]  # the node was busy for inputs 1, 4 and 5
    messages = [received(s) for i in predicted_for for s in node_stamps(inputs[i])]
    matched, unmatched = matching.assign_horizons(messages, inputs, PERIOD_S, K)
    assert unmatched == 0
    assert [(m.input_stamp_ns, m.k) for m in matched] == [(inputs[i], k) for i in predicted_for for k in (1, 2, 3)]


def test_a_prediction_for_no_known_input_is_unmatched():
    inputs = [T0, T0 + CAMERA_NS]
    messages = [received(s) for s in node_stamps(inputs[0])] + [received(T0 + 10 * CAMERA_NS)]
    matched, unmatched = matching.assign_horizons(messages, inputs, PERIOD_S, K)
    assert (len(matched), unmatched) == (K, 1)


def test_scores_compare_with_the_recorded_frame_at_the_predicted_stamp():
    rng = np.random.default_rng(0)
    frames = {T0 + i * CAMERA_NS: rng.integers(0, 256, (16, 16, 3)).astype(np.uint8) for i in range(5)}
    stamps = sorted(frames)
    # a perfect predictor for input 0, and a prediction past the end of the recording for input 3
    messages = [received(s, pixels=frames[stamps[k]]) for k, s in enumerate(node_stamps(stamps[0]), start=1)]
    messages += [received(s) for s in node_stamps(stamps[3])]
    matched, _ = matching.assign_horizons(messages, stamps, PERIOD_S, K)
    result = demo.score_predictions(matched, frames, CAMERA_NS, K)
    assert result["scored_predictions"] == 3 + 1  # input 3: only k = 1 has a recorded frame
    assert result["model"]["psnr"][1:] == [PSNR_CAP_DB, PSNR_CAP_DB]
    blank = psnr(np.zeros((16, 16, 3), np.uint8), frames[stamps[4]])  # input 3's k = 1 is frame 4
    assert result["model"]["psnr"][0] == pytest.approx((PSNR_CAP_DB + blank) / 2, abs=1e-3)
    assert all(p < 15 for p in result["copy_last"]["psnr"])  # random frames: copying is poor


def test_latency_runs_from_publishing_an_input_to_its_last_prediction():
    matched = [matching.Matched(T0, k, received(0, arrived=10.0 + k)) for k in (1, 2, 3)]
    latency = matching.end_to_end_latency_ms(matched, [Published(T0, 9.5)], K)
    assert latency == {"p50": 3500.0, "p99": 3500.0, "count": 1}


# -- replay and collection over DDS ----------------------------------------------------------


class EchoNode:
    """Stands in for predictor_node: for every camera image, K copies stamped newest + k*period,
    uncertainty maps, and diagnostics carrying horizon and frame_period."""

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("echo_predictor", context=self.context)
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.frames = self.node.create_publisher(Image, ROOT_FRAMES_TOPIC, reliable)
        self.uncertainty = self.node.create_publisher(Image, ROOT_UNCERTAINTY_TOPIC, reliable)
        self.diagnostics = self.node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.node.create_subscription(Image, ROOT_CAMERA_TOPIC, self._on_image, reliable)
        self.node.create_timer(0.1, self._on_timer)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_image(self, msg: Image) -> None:
        for stamp in node_stamps(matching.stamp_ns(msg)):
            out = Image(height=msg.height, width=msg.width, encoding=msg.encoding, step=msg.step, data=msg.data)
            out.header.frame_id = msg.header.frame_id
            out.header.stamp.sec, out.header.stamp.nanosec = split_ns(stamp)
            self.frames.publish(out)
            self.uncertainty.publish(out)

    def _on_timer(self) -> None:
        values = [KeyValue(key="horizon", value=str(K)), KeyValue(key="frame_period", value=f"{PERIOD_S:.6f}")]
        self.diagnostics.publish(DiagnosticArray(status=[DiagnosticStatus(name=DIAGNOSTICS_STATUS_NAME, values=values)]))

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def test_replayed_bag_and_collected_predictions_match_up_over_dds(tmp_path):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (24, 32, 3)).astype(np.uint8) for _ in range(12)]
    bag = tmp_path / "bag"
    bags.write_image_bag(bag, frames, ROOT_CAMERA_TOPIC, [T0 / 1e9 + i * CAMERA_NS / 1e9 for i in range(12)])
    recorded = list(bags.read_raw_images(bag, ROOT_CAMERA_TOPIC))
    echo = EchoNode(DOMAIN)
    collector = live.Collector(DOMAIN)
    try:
        ready = collector.wait_for(lambda: collector.diagnostics is not None
                                   and collector.replayer.publisher.get_subscription_count() > 0
                                   and collector.node.count_publishers(ROOT_FRAMES_TOPIC) > 0, timeout=30)
        assert ready, "the echo node was not discovered"
        assert collector.diagnostics["horizon"] == str(K)
        start = time.monotonic()
        sent = collector.replayer.play(recorded, rate=2.0)
        assert time.monotonic() - start >= 11 * CAMERA_NS / 1e9 / 2 * 0.9  # paced at twice the recorded rate
        collector.wait_for(lambda: len(collector.frames) >= K * len(recorded), timeout=20)
    finally:
        collector.close()
        echo.close()

    assert [p.stamp_ns for p in sent] == [r.stamp_ns for r in recorded]  # original stamps, in order
    assert len(collector.frames) == len(collector.uncertainty) == K * len(recorded)
    matched, unmatched = matching.assign_horizons(collector.frames, (p.stamp_ns for p in sent), PERIOD_S, K)
    assert unmatched == 0 and len(matched) == K * len(recorded)
    truth = {r.stamp_ns: f[:, :, ::-1] for r, f in zip(recorded, frames)}  # bgr8 in the bag -> RGB
    result = demo.score_predictions(matched, truth, CAMERA_NS, K)
    assert result["model"] == result["copy_last"]  # an echo is a copy of the last frame
    latency = matching.end_to_end_latency_ms(matched, sent, K)
    assert latency["count"] == len(recorded) and latency["p50"] > 0


# -- the whole demo (slow) -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not (default_model_path().is_file() or default_model_path().with_suffix(".pt").is_file()),
                    reason="the packaged default model (video_predictor/pretrained) is not built yet")
def test_demo_runs_the_node_on_the_clip_and_reports_scores(tmp_path):
    out = tmp_path / "demo"
    completed = subprocess.run([sys.executable, "-m", "video_predictor.demo", "--out", str(out),
                                "--domain-id", str(DOMAIN)], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "| k | model PSNR | copy-last PSNR" in completed.stdout
    result = json.loads((out / "demo.json").read_text())
    assert result["counts"]["inputs_sent"] == 120
    assert result["counts"]["complete_prediction_sets"] > 0
    assert result["counts"]["unmatched_predictions"] == 0
    assert result["node"]["exit_code"] == 0  # stopped cleanly by SIGINT
    assert all(v is not None and v > 15 for v in result["model"]["psnr"])
    assert (out / "demo.md").is_file()
