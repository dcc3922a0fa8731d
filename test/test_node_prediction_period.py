"""predictor_node's prediction period, in-process over DDS with fake predictors: the camera's
own period for a rate-agnostic model (with last_interval handed to predict), the
prediction_period parameter where the model allows it (a clear error where it does not),
and a fixed-period model fed a slower camera: one log line and a WARN on /diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter

from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.predictor import Prediction, Predictor
from video_predictor.ros.node import PredictorNode

from ros_helpers import Probe, image_msg, stamp_ns, unique_domain_id

DOMAIN = unique_domain_id(62)
SECOND = 1_000_000_000
K = 3


class RecordingPredictor(Predictor):
    """Predicts the last frame K times; records the last_interval of every call."""

    backend_name = "fake"

    def __init__(self, frame_period: float | str) -> None:
        super().__init__(ModelMetadata("fake", 2, K, 8, 8, 3, frame_period), K)
        self.intervals: list[float | None] = []

    def predict(self, frames, last_interval=None) -> Prediction:
        self.intervals.append(last_interval)
        return super().predict(frames, last_interval)

    def _run(self, frames: np.ndarray, flow: np.ndarray | None) -> Prediction:
        last = frames[:, -1].astype(np.float32) / 255.0
        predicted = np.repeat(last[:, None], self.horizon, axis=1)
        return Prediction(predicted, np.full(predicted.shape[:4], 0.05, np.float32))


class RecordingLogger:
    """Stands in for the node's logger: keeps (level, message) and forwards nothing. A call
    with throttle_duration_sec is kept once per kind of message (all within a test's seconds)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._throttled: set[tuple[str, str]] = set()

    def __getattr__(self, level):
        def log(message, throttle_duration_sec=None, **_):
            kind = (level, message.split(":")[0])
            if throttle_duration_sec is not None:
                if kind in self._throttled:
                    return
                self._throttled.add(kind)
            self.lines.append((level, message))
        return log


@pytest.fixture
def make_node():
    made = []

    def make(frame_period: float | str, **parameters):
        probe = Probe(DOMAIN, name="period_probe")
        predictor = RecordingPredictor(frame_period)
        overrides = [Parameter("diagnostics_period", value=0.1)] + [
            Parameter(name, value=value) for name, value in parameters.items()]
        node = PredictorNode(predictor_factory=lambda **_: (predictor, "fake"), context=probe.context,
                             parameter_overrides=overrides)
        logger = RecordingLogger()
        node.get_logger = lambda: logger
        probe.executor.add_node(node)
        publisher = probe.publisher(reliable=True)
        assert probe.spin_until(lambda: publisher.get_subscription_count() > 0, 10)
        made.append((probe, node))
        return probe, node, predictor, publisher, logger

    yield make
    for probe, node in made:
        probe.executor.remove_node(node)
        node.destroy_node()
        probe.close()


def send(probe, publisher, node, stamps_ns: list[int]) -> None:
    """One frame per stamp, each waited for (so none replaces another in the worker's slot)."""
    for i, stamp in enumerate(stamps_ns):
        before = node.stats.snapshot().counts
        publisher.publish(image_msg(np.full((8, 8, 3), 10 * (i % 20), np.uint8), "rgb8", stamp, "cam"))
        assert probe.spin_until(lambda: node.stats.snapshot().counts["received"] > before["received"]
                                and node.stats.snapshot().counts["in_flight"] == 0, 10)


def groups(probe, inputs: int = 0) -> list[list[int]]:
    """The stamps of the predictions received, K per input, once ``inputs`` inputs' worth arrived."""
    probe.spin_until(lambda: len(probe.frames) >= inputs * K and len(probe.uncertainty) >= inputs * K, 5)
    probe.spin_for(0.1)  # and anything more
    stamps = [stamp_ns(f) for f in probe.frames]
    assert [stamp_ns(m) for m in probe.uncertainty] == stamps
    return [stamps[i:i + K] for i in range(0, len(stamps), K)]


def test_rate_agnostic_model_predicts_at_the_camera_period_through_a_dropped_frame(make_node):
    probe, node, predictor, publisher, _ = make_node("camera")
    period = SECOND // 15
    stamps = [70 * SECOND + i * period for i in range(8) if i != 5]  # frame 5 is lost
    send(probe, publisher, node, stamps)
    assert node.stats.snapshot().counts["buffer_restarts"] == 0
    assert groups(probe, len(stamps) - 1) == [[s + k * period for k in range(1, K + 1)] for s in stamps[1:]]  # every input, 15 Hz
    assert predictor.intervals[1:] == pytest.approx([1, 1, 1, 1, 2, 1])  # after warm-up: 2 periods across the loss
    values = probe.wait_for_values(lambda v: v["frames_predicted"] == str(len(stamps) - 1))
    assert values["prediction_period_source"] == "camera"
    assert float(values["frame_period"]) == pytest.approx(period / SECOND)
    assert values["model_frame_period"] == "camera"


def test_prediction_period_thins_the_camera_for_a_rate_agnostic_model(make_node):
    probe, node, predictor, publisher, _ = make_node("camera", prediction_period=0.1)
    stamps = [80 * SECOND + round(i * SECOND / 30) for i in range(10)]  # 30 Hz camera, predictions 0.1 s apart
    send(probe, publisher, node, stamps)
    kept = stamps[3::3]  # every third frame, once the buffer holds two
    assert groups(probe, len(kept)) == [[s + k * SECOND // 10 for k in range(1, K + 1)] for s in kept]
    values = probe.wait_for_values(lambda v: v["frames_predicted"] == str(len(kept)))
    assert (values["prediction_period_source"], float(values["frame_period"])) == ("parameter", 0.1)


def test_a_fixed_period_model_takes_its_own_period_as_prediction_period(make_node):
    probe, node, *_ = make_node(0.1, prediction_period=0.1)  # another one: test_node_camera_rates, exit code 2
    assert node.buffer.fixed_period == 0.1 and node.period_source == "model"


def test_fixed_period_model_fed_a_slower_camera_says_so_once_and_warns_while_it_lasts(make_node):
    probe, node, predictor, publisher, logger = make_node(0.1)  # a 10 Hz model
    send(probe, publisher, node, [90 * SECOND + i * SECOND // 4 for i in range(8)])  # a 4 Hz camera
    assert groups(probe) == []
    warnings = [m for level, m in logger.lines if level in ("warning", "warn")]
    assert len(warnings) == 1, logger.lines
    assert "4.0 Hz" in warnings[0] and "0.1000 s" in warnings[0]
    assert len([m for _, m in logger.lines if "frame buffer restarted" in m]) <= 1  # not a line per frame
    level, message, values = probe.diagnostics[-1] if probe.spin_until(
        lambda: probe.diagnostics and "slower" in probe.diagnostics[-1][1], 5) else (None, None, None)
    assert level == 1 and message == warnings[0] and values["warning"] == warnings[0]

    send(probe, publisher, node, [100 * SECOND + i * SECOND // 10 for i in range(20)])  # back to 10 Hz
    assert len(groups(probe, 1)) > 0
    assert probe.spin_until(lambda: probe.diagnostics[-1][:2] == (0, "predicting"), 5)
    assert len([m for level, m in logger.lines if level in ("warning", "warn")]) == 1
