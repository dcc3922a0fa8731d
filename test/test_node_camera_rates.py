"""predictor_node over real DDS at the camera's own rate: the installed node as a process
with a tiny rate-agnostic model (metadata frame_period: camera), fed cameras at 10, 15, 30
and 60 Hz in real time. Per answered input: K frames and K maps, stamped newest + k times
the camera period; at least 80 % of the inputs answered. The same for the packaged default
model where it is rate-agnostic."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
import torch

from training.export import export_onnx
from video_predictor.backends import default_model_path
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.model_file import load_model_file, save_model_file
from video_predictor.models import build_model

from ros_helpers import REPO, Probe, image_msg, moving_scene, node_command, ros_env, stamp_ns, unique_domain_id

DOMAIN = unique_domain_id(60)
SECOND = 1_000_000_000
RATES_HZ = (10, 15, 30, 60)
SECONDS_PER_RATE = 1.5
MIN_ANSWERED = 0.8
TINY_CONFIG = {"input_frames": 2, "scales": [{"features": [4], "kernels": [3, 3]}] * 2}


def tiny_rate_agnostic_model(path, frame_period: float | str = "camera") -> None:
    torch.manual_seed(0)
    model = build_model("multiscale", TINY_CONFIG)
    metadata = ModelMetadata(family="multiscale", input_frames=2, horizon=3, height=16, width=16, channels=3,
                             frame_period=frame_period, model_config=model.config.to_dict())
    save_model_file(path, metadata, model.state_dict())


def start(tmp_path, model: str, domain: int) -> tuple[subprocess.Popen, Probe]:
    log_path = tmp_path / "predictor_node.log"
    args = ["--params-file", str(REPO / "config" / "predictor.yaml"), "-p", "diagnostics_period:=0.2"]
    if model:  # the tiny model on one thread; the shipped node exactly as configured
        args += ["-p", f"model:={model}", "-p", "threads:=1"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(node_command(*args), env=ros_env(domain), stdout=log, stderr=subprocess.STDOUT,
                                   cwd=REPO)
    process.log_path = log_path
    probe = Probe(domain, name="rates_probe")
    if not probe.spin_until(lambda: probe.diagnostics or process.poll() is not None, 120) or process.poll() is not None:
        probe.close()
        process.kill()
        pytest.fail(f"predictor_node did not come up:\n{log_path.read_text()}")
    return process, probe


@pytest.fixture(scope="module")
def tiny_node(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("rates")
    tiny_rate_agnostic_model(tmp_path / "tiny.pt")
    export_onnx(tmp_path / "tiny.pt", tmp_path / "tiny.onnx")  # ONNX Runtime: 0.4 ms a call, PyTorch ~10 ms here
    process, probe = start(tmp_path, str(tmp_path / "tiny.onnx"), DOMAIN)
    yield process, probe
    probe.close()
    process.kill()
    process.wait()


def stream_at(probe: Probe, rate_hz: float, seconds: float, frame_id: str, first_s: int) -> list[int]:
    """Publish a moving scene at ``rate_hz`` in real time, stamped at the same rate; returns
    the stamps (ns) of the frames the node received (the first is repeated until it arrives)."""
    publisher = probe.publisher(reliable=True)
    assert probe.spin_until(lambda: publisher.get_subscription_count() > 0, 10), "node's subscription not matched"
    count = round(rate_hz * seconds)
    frames = moving_scene(count, 48, 64, seed=rate_hz)
    stamps = [first_s * SECOND + round(i * SECOND / rate_hz) for i in range(count)]
    received = lambda: int(probe.diagnostics[-1][2]["frames_received"])  # noqa: E731
    before = received()
    first = image_msg(frames[0], "rgb8", stamps[0], frame_id)
    for _ in range(20):  # best-effort subscription: samples before the match completes are lost
        publisher.publish(first)
        if probe.spin_until(lambda: received() > before, 1.0):
            break
    else:
        raise AssertionError("the node never received an image")
    start_time = time.monotonic()
    for i in range(1, count):
        due = start_time + i / rate_hz
        while (left := due - time.monotonic()) > 0:  # short spins: publish on time, not up to a spin's timeout late
            probe.executor.spin_once(timeout_sec=min(left, 0.003))
        publisher.publish(image_msg(frames[i], "rgb8", stamps[i], frame_id))
    probe.spin_for(1.0)  # the last predictions
    return stamps


def answered_inputs(probe: Probe, first_frame: int, horizon: int, period_ns: float, stamps: list[int]) -> dict:
    """input stamp -> its K predicted stamps, from the frames received since ``first_frame``
    (the node publishes k = 1..K of one input in order, so they come in groups of K)."""
    frames, maps = probe.frames[first_frame:], probe.uncertainty[first_frame:]
    assert len(frames) % horizon == 0 and len(maps) == len(frames)
    sets = {}
    for g in range(0, len(frames), horizon):
        group = [stamp_ns(f) for f in frames[g:g + horizon]]
        assert [stamp_ns(m) for m in maps[g:g + horizon]] == group  # each map with its frame
        input_stamp = min(stamps, key=lambda s: abs(s - (group[0] - period_ns)))
        sets[input_stamp] = group
    return sets


def check_rate(probe: Probe, rate_hz: int, frame_id: str, first_s: int) -> None:
    values = probe.diagnostics[-1][2]
    n_inputs, horizon = int(values["input_frames"]), int(values["horizon"])
    first_frame = len(probe.frames)
    stamps = stream_at(probe, rate_hz, SECONDS_PER_RATE, frame_id, first_s)
    period_ns = SECOND / rate_hz
    sets = answered_inputs(probe, first_frame, horizon, period_ns, stamps)
    for input_stamp, group in sets.items():
        assert input_stamp in stamps[n_inputs - 1:]
        expected = [input_stamp + k * period_ns for k in range(1, horizon + 1)]
        # the camera's period as measured from integer-ns stamps: within a microsecond per step
        np.testing.assert_allclose(group, expected, rtol=0, atol=1000 * horizon)
    eligible = len(stamps) - (n_inputs - 1)
    print(f"{rate_hz} Hz: {len(sets)} of {eligible} inputs answered")
    assert len(sets) >= MIN_ANSWERED * eligible, f"{len(sets)} of {eligible} inputs answered at {rate_hz} Hz"
    assert all(f.header.frame_id == frame_id for f in probe.frames[first_frame:])
    values = probe.diagnostics[-1][2]
    assert values["prediction_period_source"] == "camera"
    assert float(values["frame_period"]) == pytest.approx(1 / rate_hz, abs=1e-6)
    assert probe.diagnostics[-1][0] == 0, probe.diagnostics[-1]  # OK: predicting


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_rate_agnostic_model_predicts_at_the_cameras_own_period(tiny_node, rate_hz):
    process, probe = tiny_node
    check_rate(probe, rate_hz, f"camera_{rate_hz}hz", 1000 + 100 * rate_hz)
    assert process.poll() is None
    assert "Traceback" not in process.log_path.read_text()


def _default_model_is_rate_agnostic() -> bool:
    try:
        return load_model_file(default_model_path().with_suffix(".pt"))[0].rate_agnostic
    except Exception:  # noqa: BLE001 - not built (or only as ONNX): the test says why it skips
        return False


needs_rate_agnostic_default = pytest.mark.skipif(
    not _default_model_is_rate_agnostic(),
    reason="the packaged default model is not rate-agnostic (metadata frame_period: camera) yet")


@needs_rate_agnostic_default
@pytest.mark.parametrize("rates_hz", [
    (10, 15),
    # 60 Hz: 87 of 87 answered when run alone (the flow-anchored default takes ~5 ms a prediction),
    # but 65 of 87 once in the full suite, where the machine is shared with what ran before: slow
    pytest.param((60,), marks=pytest.mark.slow),
], ids=["10_15hz", "60hz"])
def test_the_shipped_node_answers_cameras_at_their_period(tmp_path, rates_hz):
    process, probe = start(tmp_path, "", DOMAIN + 1)
    try:
        for rate_hz in rates_hz:
            check_rate(probe, rate_hz, f"default_{rate_hz}hz", 5000 + 100 * rate_hz)
        assert process.poll() is None
    finally:
        probe.close()
        process.kill()
        process.wait()


def test_a_prediction_period_a_fixed_period_model_does_not_allow_stops_the_start_with_code_2(tmp_path):
    tiny_rate_agnostic_model(tmp_path / "fixed.pt", frame_period=0.1)
    result = subprocess.run(node_command("-p", f"model:={tmp_path / 'fixed.pt'}", "-p", "prediction_period:=0.05"),
                            env=ros_env(DOMAIN + 2), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "prediction_period 0.05 s: the model predicts at its fixed period of 0.1 s (10 Hz) only" in output
    assert "Traceback" not in output


def test_a_fixed_30hz_model_fed_a_10hz_camera_says_so_once_in_the_log_and_warns(tmp_path):
    """The issue's case: a 10 Hz camera into a model with a fixed 1/30 s period."""
    tiny_rate_agnostic_model(tmp_path / "fixed.pt", frame_period=1 / 30)
    export_onnx(tmp_path / "fixed.pt", tmp_path / "fixed.onnx")
    process, probe = start(tmp_path, str(tmp_path / "fixed.onnx"), DOMAIN + 3)
    try:
        stream_at(probe, 10, 1.5, "slow_camera", 9000)
        assert probe.frames == []
        assert probe.spin_until(lambda: probe.diagnostics[-1][0] == 1, 5), probe.diagnostics[-1]
        level, message, values = probe.diagnostics[-1]
        assert "camera at 10.0 Hz" in message and "slower than the prediction period of 0.0333 s" in message
        assert values["warning"] == message and values["prediction_period_source"] == "model"
        assert int(values["buffer_restarts"]) >= 10
        log = process.log_path.read_text()
        assert log.count("slower than the prediction period") == 1, log
        assert log.count("frame buffer restarted") <= 1, log
    finally:
        probe.close()
        process.kill()
        process.wait()
