"""Parameters changed while predictor_node runs, through its parameter services.

The installed node runs as its own process (packaged default model, K = 5); the test
process calls /predictor_node/set_parameters like ``ros2 param set`` does, then checks
the effect over DDS: an accepted change applies to the next input, a refused one leaves
the node as it was and says why.
"""

from __future__ import annotations

import pytest

from ros_helpers import (
    REPO,
    ParameterClient,
    Probe,
    image_msg,
    moving_scene,
    prediction_period,
    stamp_ns,
    start_node,
    stop_process,
    unique_domain_id,
)

DOMAIN = unique_domain_id(104)
SECOND = 1_000_000_000
CAMERA_PERIOD_NS = 33_333_333


@pytest.fixture(scope="module")
def node_process(tmp_path_factory):
    process = start_node(DOMAIN, tmp_path_factory.mktemp("parameters") / "predictor_node.log",
                         "--params-file", str(REPO / "config" / "predictor.yaml"), "-p", "diagnostics_period:=0.2",
                         "-p", "qos_reliability:=reliable")
    yield process
    stop_process(process)


class Camera:
    """A 30 Hz camera publishing a moving scene; ``jump`` skips its clock ahead."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.publisher = probe.publisher(reliable=True)
        self.scene = moving_scene(30, 96, 128, seed=3)
        self.stamp_ns = 7000 * SECOND
        self.count = 0
        assert probe.spin_until(lambda: self.publisher.get_subscription_count() > 0, 10)

    def publish(self) -> None:
        self.stamp_ns += CAMERA_PERIOD_NS
        self.count += 1
        self.publisher.publish(image_msg(self.scene[self.count % 30], "rgb8", self.stamp_ns, "camera_p"))

    def predictions_for_next(self, horizon: int, period: float) -> list[int]:
        """Publish one frame and wait until its ``horizon`` predicted frames and maps are the
        last ones received; return the stamps of every frame received since the publication
        (the node predicts in order, so anything else it sent since then is in the list)."""
        mark = len(self.probe.frames)
        self.publish()
        expected = predicted_stamps(self.stamp_ns, period, horizon)
        arrived = self.probe.spin_until(
            lambda: [stamp_ns(f) for f in self.probe.frames[-horizon:]] == expected
            and [stamp_ns(m) for m in self.probe.uncertainty[-horizon:]] == expected, 15)
        assert arrived, f"the last frames received are not the {horizon} predictions of the frame just sent"
        return [stamp_ns(f) for f in self.probe.frames[mark:]]


@pytest.fixture(scope="module")
def setup(node_process):
    probe = Probe(DOMAIN, name="parameters_probe")
    started = probe.spin_until(lambda: probe.diagnostics or node_process.poll() is not None, timeout=90)
    if not started or node_process.poll() is not None:
        pytest.fail(f"predictor_node did not come up:\n{node_process.log_path.read_text()}")
    params = ParameterClient(probe, "predictor_node")
    camera = Camera(probe)
    yield probe, params, camera
    probe.close()


@pytest.fixture
def node(setup):
    """The running node with a full buffer and its parameters as the module started it."""
    probe, params, camera = setup
    values = probe.diagnostics[-1][2]
    n_inputs, period = int(values["input_frames"]), prediction_period(values, CAMERA_PERIOD_NS / SECOND)
    for _ in range(n_inputs - 1):
        camera.publish()
    camera.predictions_for_next(5, period)  # and everything before it has arrived
    yield probe, params, camera, period
    results = params.set(horizon=0, max_image_width=4096, max_gap_periods=1.5, diagnostics_period=0.2, samples=1)
    assert all(r.successful for r in results), [r.reason for r in results]


def predicted_stamps(newest_ns: int, period: float, horizon: int) -> list[int]:
    return [newest_ns + round(k * period * 1e9) for k in range(1, horizon + 1)]


def test_horizon_lowered_at_run_time_gives_that_many_predictions_per_input(node):
    probe, params, camera, period = node
    assert camera.predictions_for_next(5, period) == predicted_stamps(camera.stamp_ns, period, 5)
    (result,) = params.set(horizon=3)
    assert result.successful, result.reason
    assert params.get("horizon") == [3]
    for _ in range(3):  # a 4th and 5th frame for one input would come before the next input's
        assert camera.predictions_for_next(3, period) == predicted_stamps(camera.stamp_ns, period, 3)
    assert probe.wait_for_values(lambda v: v["horizon"] == "3")

    (result,) = params.set(horizon=0)  # back to the model's own
    assert result.successful, result.reason
    assert camera.predictions_for_next(5, period) == predicted_stamps(camera.stamp_ns, period, 5)


def test_horizon_beyond_what_the_loaded_predictor_yields_is_refused_with_a_reason(node):
    probe, params, camera, period = node
    (result,) = params.set(horizon=6)
    assert not result.successful
    assert "horizon 6" in result.reason and "restart" in result.reason
    assert params.get("horizon") == [0]
    assert camera.predictions_for_next(5, period) == predicted_stamps(camera.stamp_ns, period, 5)


@pytest.mark.parametrize("name, value", [("model", "/tmp/other.onnx"), ("backend", "torch"), ("device", "cuda"),
                                         ("threads", 1), ("precision", "fp16"), ("engine_cache_dir", "/tmp/engines"),
                                         ("qos_depth", 50), ("qos_reliability", "best_effort"),
                                         ("prediction_period", 0.1)])
def test_start_up_parameters_are_refused_with_a_reason_and_left_unchanged(node, name, value):
    probe, params, camera, period = node
    before = params.get(name)
    (result,) = params.set(**{name: value})
    assert not result.successful
    assert "read-only" in result.reason and name in result.reason
    assert params.get(name) == before


def test_a_refused_change_in_an_atomic_set_applies_none_of_it(node):
    probe, params, camera, period = node
    result = params.set_atomically(horizon=2, backend="torch")
    assert not result.successful and "backend" in result.reason
    assert params.get("horizon") == [0]


def test_out_of_range_and_invalid_values_are_refused(node):
    probe, params, camera, period = node
    too_many, bad_gap = params.set(samples=65, max_gap_periods=1.2)
    assert not too_many.successful and "range" in too_many.reason, too_many.reason
    assert not bad_gap.successful and "max_gap_periods" in bad_gap.reason, bad_gap.reason
    assert params.get("samples", "max_gap_periods") == [1, 1.5]


def test_max_image_width_lowered_at_run_time_rejects_wider_images(node):
    probe, params, camera, period = node
    (result,) = params.set(max_image_width=100)
    assert result.successful, result.reason
    camera.publish()  # 128 wide
    values = probe.wait_for_values(lambda v: "exceeds the largest accepted 100x4096" in v["last_error"])
    assert int(values["frames_rejected"]) >= 1

    (result,) = params.set(max_image_width=4096)
    assert result.successful
    camera.stamp_ns -= CAMERA_PERIOD_NS  # the rejected frame took no place in the stream
    assert camera.predictions_for_next(5, period) == predicted_stamps(camera.stamp_ns, period, 5)


def test_max_gap_periods_raised_at_run_time_keeps_the_buffer_over_a_gap(node):
    probe, params, camera, period = node
    (result,) = params.set(max_gap_periods=20.0)
    assert result.successful, result.reason
    restarts = probe.diagnostics[-1][2]["buffer_restarts"]
    camera.stamp_ns += 10 * CAMERA_PERIOD_NS  # a 10-frame gap: a time jump under the default 1.5
    assert camera.predictions_for_next(5, period) == predicted_stamps(camera.stamp_ns, period, 5)  # no refill needed
    assert probe.wait_for_values(lambda v: v["frames_in_flight"] == "0")["buffer_restarts"] == restarts


def test_diagnostics_period_changed_at_run_time(node):
    probe, params, camera, period = node
    (result,) = params.set(diagnostics_period=3600.0)
    assert result.successful, result.reason
    probe.spin_for(0.3)  # a report already on its way may still come
    seen = len(probe.diagnostics)
    probe.spin_for(1.0)  # at the old 0.2 s period this would hold about 5 reports
    assert len(probe.diagnostics) == seen

    (result,) = params.set(diagnostics_period=0.2)
    assert result.successful
    assert probe.spin_until(lambda: len(probe.diagnostics) >= seen + 2, 10)


def test_samples_is_accepted_at_run_time(node):
    probe, params, camera, period = node
    (result,) = params.set(samples=4)
    assert result.successful, result.reason
    assert params.get("samples") == [4]
    assert camera.predictions_for_next(5, period) == predicted_stamps(camera.stamp_ns, period, 5)
