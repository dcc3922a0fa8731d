"""predictor_node over real DDS.

Part 1 runs the installed node (``predictor_node --ros-args --params-file
config/predictor.yaml``) as a separate process with the packaged default model and talks
to it from a probe node: K predictions per accepted input, stamps, frame_id, sizes,
encodings, uncertainty maps, diagnostics, rejection of bad input, clean shutdown.

Part 2 runs PredictorNode in-process with small fake predictors to reach what a real
model cannot be made to do on demand: NaN output, exceptions, a busy model.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from rclpy.parameter import Parameter

from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.predictor import Prediction, Predictor
from video_predictor.core.preprocess import fit_to_model
from video_predictor.ros.node import PredictorNode
from video_predictor.ros.parameters import ConfigError

from ros_helpers import (
    REPO,
    Probe,
    image_msg,
    moving_scene,
    node_command,
    prediction_period,
    ros_env,
    stamp_ns,
    unique_domain_id,
)

DOMAIN = unique_domain_id()
SECOND = 1_000_000_000
CAMERA_PERIOD_NS = 33_333_333  # a 30 Hz camera
MAX_SIZE = ("-p", "max_image_width:=640", "-p", "max_image_height:=480")


# -- part 1: the installed node as a separate process ------------------------------------


@pytest.fixture(scope="module")
def node_process(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("node") / "predictor_node.log"
    command = node_command("--params-file", str(REPO / "config" / "predictor.yaml"),
                           "-p", "diagnostics_period:=0.2", *MAX_SIZE)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=ros_env(DOMAIN), stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    process.log_path = log_path
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def probe(node_process):
    probe = Probe(DOMAIN)
    started = probe.spin_until(lambda: probe.diagnostics or node_process.poll() is not None, timeout=90)
    if not started or node_process.poll() is not None:
        pytest.fail(f"predictor_node did not come up:\n{node_process.log_path.read_text()}")
    yield probe
    probe.close()


def model_info(probe: Probe) -> tuple[int, int, float]:
    """(N input frames, horizon K, frame period s) as the node reports them."""
    values = probe.diagnostics[-1][2]
    return int(values["input_frames"]), int(values["horizon"]), prediction_period(values, CAMERA_PERIOD_NS / SECOND)


def wait_for_diagnostics(probe: Probe, condition, timeout: float = 10.0) -> dict[str, str]:
    assert probe.spin_until(lambda: condition(probe.diagnostics[-1][2]), timeout), probe.diagnostics[-1]
    return probe.diagnostics[-1][2]


def received_count(probe: Probe) -> int:
    return int(probe.diagnostics[-1][2]["frames_received"])


def connect(probe: Probe, publisher, first) -> dict[str, str]:
    """Publish ``first`` until the node reports receiving it, then return the node's
    counters. The node subscribes best-effort, so a sample sent before its side of the
    match completes is lost without a trace, whatever the publisher's QoS."""
    assert probe.spin_until(lambda: publisher.get_subscription_count() > 0, 10), "node's subscription not matched"
    before = received_count(probe)
    for _ in range(20):
        publisher.publish(first)
        if probe.spin_until(lambda: received_count(probe) > before, timeout=1.0):
            probe.spin_for(0.3)  # a late copy, if any, is counted (as a duplicate) before we return
            return probe.diagnostics[-1][2]
    raise AssertionError("the node never received an image")


def publish_sequence(probe, publisher, messages, n_inputs: int, horizon: int):
    """Publish ``messages[1:]`` (the first went out with ``connect``) one at a time; once
    the buffer is full, wait for each input's K frames and K maps. Returns
    [(input message, its frames, its maps)] for those inputs."""
    outputs = []
    for i, msg in enumerate(messages[1:], start=1):
        frames_before, maps_before = len(probe.frames), len(probe.uncertainty)
        publisher.publish(msg)
        if i < n_inputs - 1:  # buffer still filling: nothing to wait for
            probe.spin_for(0.05)
            continue
        arrived = probe.spin_until(lambda: len(probe.frames) >= frames_before + horizon
                                   and len(probe.uncertainty) >= maps_before + horizon, timeout=15)
        assert arrived, f"no predictions for input {i}"
        outputs.append((msg, probe.frames[frames_before:], probe.uncertainty[maps_before:]))
    probe.spin_for(0.1)  # anything extra would show up in the counts below
    return outputs


def check_predictions(outputs, horizon: int, period: float, encoding: str) -> None:
    for msg, frames, maps in outputs:
        assert len(frames) == len(maps) == horizon
        expected = [stamp_ns(msg) + round(k * period * 1e9) for k in range(1, horizon + 1)]
        assert [stamp_ns(f) for f in frames] == expected
        assert [stamp_ns(m) for m in maps] == expected
        for frame, std_map in zip(frames, maps):
            assert frame.header.frame_id == std_map.header.frame_id == msg.header.frame_id
            assert frame.encoding == encoding
            channels = 1 if encoding == "mono8" else 3
            assert frame.step == frame.width * channels and len(frame.data) == frame.step * frame.height
            assert (std_map.height, std_map.width, std_map.encoding) == (frame.height, frame.width, "32FC1")
            assert std_map.step == 4 * std_map.width and not std_map.is_bigendian
            std = np.frombuffer(std_map.data, "<f4")
            assert np.isfinite(std).all() and (std >= 0).all()


def first_prediction_error(frame_msg, last_input_wire: np.ndarray) -> float:
    """Mean absolute difference between predicted frame 1 and the last input, both in the
    wire layout, at the model's resolution."""
    predicted = np.frombuffer(frame_msg.data, np.uint8).reshape(frame_msg.height, frame_msg.width, -1)
    expected = fit_to_model(last_input_wire, frame_msg.height, frame_msg.width)
    return float(np.abs(predicted.astype(np.float32) - expected).mean())


def test_reliable_rgb8_camera_gets_k_stamped_predictions_per_input(probe):
    n_inputs, horizon, period = model_info(probe)
    scene = moving_scene(n_inputs + 2, 120, 160)
    messages = [image_msg(f, "rgb8", 1000 * SECOND + i * CAMERA_PERIOD_NS, "camera_a") for i, f in enumerate(scene)]
    publisher = probe.publisher(reliable=True)
    before = connect(probe, publisher, messages[0])
    outputs = publish_sequence(probe, publisher, messages, n_inputs, horizon)

    assert len(outputs) == 3
    check_predictions(outputs, horizon, period, "rgb8")
    # A short-horizon prediction of a slow scene stays close to the last frame, channel order included.
    assert first_prediction_error(outputs[-1][1][0], scene[-1]) < 25
    values = wait_for_diagnostics(probe, lambda v: int(v["frames_predicted"]) >= int(before["frames_predicted"]) + 3)
    assert int(values["frames_received"]) - int(before["frames_received"]) == len(messages) - 1
    assert int(values["frames_predicted"]) - int(before["frames_predicted"]) == 3
    assert int(values["frames_skipped"]) - int(before["frames_skipped"]) == n_inputs - 2
    assert values["backend"] and values["backend_reason"]
    assert 0 < float(values["latency_ms_p50"]) <= float(values["latency_ms_p99"])


def test_best_effort_bgr8_camera_restarts_the_buffer_and_gets_bgr8_predictions(probe):
    n_inputs, horizon, period = model_info(probe)
    before = probe.diagnostics[-1][2]
    scene = moving_scene(n_inputs + 1, 96, 128, seed=1)
    wire = [f[:, :, ::-1] for f in scene]
    messages = [image_msg(f, "bgr8", 2000 * SECOND + i * CAMERA_PERIOD_NS, "camera_b") for i, f in enumerate(wire)]
    publisher = probe.publisher(reliable=False)
    connect(probe, publisher, messages[0])
    outputs = publish_sequence(probe, publisher, messages, n_inputs, horizon)

    assert len(outputs) == 2
    check_predictions(outputs, horizon, period, "bgr8")
    assert first_prediction_error(outputs[-1][1][0], wire[-1]) < 25
    values = wait_for_diagnostics(probe, lambda v: int(v["frames_predicted"]) >= int(before["frames_predicted"]) + 2)
    assert int(values["buffer_restarts"]) > int(before["buffer_restarts"])


def bad_messages() -> list:
    good = np.zeros((4, 6, 3), np.uint8)
    unknown = image_msg(good, "16UC1", 3000 * SECOND, "camera_c")
    short_data = image_msg(good, "rgb8", 3000 * SECOND, "camera_c")
    short_data.data = bytes(10)
    oversized = image_msg(np.zeros((2, 641, 3), np.uint8), "rgb8", 3000 * SECOND, "camera_c")
    empty = image_msg(np.zeros((0, 6, 3), np.uint8), "rgb8", 3000 * SECOND, "camera_c")
    return [unknown, short_data, oversized, empty]


def test_bad_input_is_rejected_and_counted_and_the_node_keeps_predicting(probe, node_process):
    n_inputs, horizon, period = model_info(probe)
    scene = moving_scene(n_inputs, 120, 160, seed=2)
    messages = [image_msg(f, "rgb8", 3001 * SECOND + i * CAMERA_PERIOD_NS, "camera_c") for i, f in enumerate(scene)]
    publisher = probe.publisher(reliable=True)
    before = connect(probe, publisher, messages[0])  # bad input amid a good stream
    for msg in bad_messages():
        publisher.publish(msg)
        probe.spin_for(0.05)
    rejected = int(before["frames_rejected"]) + 4
    assert probe.spin_until(lambda: int(probe.diagnostics[-1][2]["frames_rejected"]) >= rejected, 10)
    level, message, values = next(d for d in probe.diagnostics if int(d[2]["frames_rejected"]) >= rejected)
    assert level == 1, message  # WARN: input rejected since the last report
    assert "rejected" in values["last_error"]
    assert node_process.poll() is None

    outputs = publish_sequence(probe, publisher, messages, n_inputs, horizon)
    assert len(outputs) == 1
    check_predictions(outputs, horizon, period, "rgb8")
    assert int(probe.diagnostics[-1][2]["frames_rejected"]) == rejected


def test_sigint_stops_the_node_with_exit_code_0_and_no_traceback(probe, node_process):
    node_process.send_signal(signal.SIGINT)
    assert node_process.wait(timeout=20) == 0
    assert "Traceback" not in node_process.log_path.read_text()


def test_sigterm_stops_a_node_started_with_built_in_defaults(tmp_path):
    domain = DOMAIN + 102  # apart from the module's node, which shares the status name
    with open(tmp_path / "node.log", "w") as log:
        process = subprocess.Popen(node_command("-p", "diagnostics_period:=0.2"), env=ros_env(domain),
                                   stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    probe = Probe(domain, name="sigterm_probe")
    try:
        assert probe.spin_until(lambda: probe.diagnostics or process.poll() is not None, 90)
        assert process.poll() is None, (tmp_path / "node.log").read_text()
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=20)
        log = (tmp_path / "node.log").read_text()
        assert exit_code == 0 and "Traceback" not in log, log
    finally:
        probe.close()
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_parameter_exits_with_code_2_and_a_clear_message(tmp_path):
    result = subprocess.run(node_command("--params-file", str(REPO / "config" / "predictor.yaml"),
                                         "-p", "backend:=fastest", "-p", "qos_reliability:=sometimes"),
                            env=ros_env(DOMAIN), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "backend must be one of auto, torch, onnxruntime, tensorrt, got 'fastest'" in output
    assert "qos_reliability" in output
    assert "Traceback" not in output


def test_out_of_range_parameter_exits_with_code_2(tmp_path):
    result = subprocess.run(node_command("-p", "samples:=0"), env=ros_env(DOMAIN), capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert "samples" in result.stderr and "Traceback" not in result.stderr


class _TouchesAFileWhenUnpickled:
    """A checkpoint payload that runs code if anyone unpickles it unsafely."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_a_truncated_model_file_stops_the_start_with_code_2_naming_the_file(tmp_path):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes((REPO / "video_predictor" / "pretrained" / "default.onnx").read_bytes()[:5000])
    result = subprocess.run(node_command("-p", f"model:={truncated}"), env=ros_env(DOMAIN), capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"cannot start: {truncated}: onnxruntime cannot load it" in output and "Traceback" not in output, output


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    import torch

    from video_predictor.backends import ModelLoadError, create_predictor

    marker, evil = tmp_path / "unpickled", tmp_path / "evil.pt"
    torch.save({"format": "video_predictor.model/1", "payload": _TouchesAFileWhenUnpickled(marker)}, evil)
    with pytest.raises(ModelLoadError, match="evil.pt: not a video_predictor model file"):
        create_predictor(str(evil), backend="torch")
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the check above means something: an unsafe load runs it
    assert marker.exists()


# -- part 2: the node in-process with fake predictors ------------------------------------

FAKE = ModelMetadata(family="fake", input_frames=2, horizon=3, height=8, width=8, channels=3, frame_period=0.1)
FAKE_PERIOD_NS = 100_000_000


class FakePredictor(Predictor):
    """Predicts the last frame K times with std 0.05; can output NaN or Inf, raise, or block."""

    backend_name = "fake"

    def __init__(self) -> None:
        super().__init__(FAKE, FAKE.horizon)
        self.mode = "copy"
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.inputs: list[np.ndarray] = []

    def _run(self, frames: np.ndarray, flow: np.ndarray | None = None) -> Prediction:
        self.started.set()
        self.release.wait(timeout=20)
        self.inputs.append(frames[0])
        if self.mode == "raise":
            raise RuntimeError("backend crashed")
        last = frames[:, -1].astype(np.float32) / 255.0
        predicted = np.repeat(last[:, None], self.horizon, axis=1)
        std = np.full(predicted.shape[:4], 0.05, np.float32)
        if self.mode == "nan":
            predicted[:] = np.nan
        if self.mode == "inf":
            std[:, -1] = np.inf
        return Prediction(predicted, std)


@pytest.fixture
def fake_node():
    probe = Probe(DOMAIN + 101, name="fake_probe")  # its own domain: the process node above must not hear it
    fake = FakePredictor()
    node = PredictorNode(predictor_factory=lambda **_: (fake, "fake backend for tests"), context=probe.context,
                         parameter_overrides=[Parameter("diagnostics_period", value=0.1)])
    probe.executor.add_node(node)
    publisher = probe.publisher(reliable=True)
    assert probe.spin_until(lambda: publisher.get_subscription_count() > 0, 10)
    yield probe, node, fake, publisher
    probe.executor.remove_node(node)
    node.destroy_node()
    probe.close()


def test_start_up_parameters_reach_the_backend_factory_and_bad_ones_stop_the_start():
    probe = Probe(DOMAIN + 102, name="factory_probe")
    received = {}

    def factory(**kwargs):
        received.update(kwargs)
        return FakePredictor(), "fake backend for tests"

    overrides = [Parameter("device", value="cuda:1"), Parameter("precision", value="fp16"),
                 Parameter("engine_cache_dir", value="/var/cache/engines"), Parameter("threads", value=1)]
    node = PredictorNode(predictor_factory=factory, context=probe.context, parameter_overrides=overrides)
    node.destroy_node()
    assert received == {"model": "", "backend": "auto", "device": "cuda:1", "horizon": 0, "samples": 1, "threads": 1,
                        "precision": "fp16", "engine_cache_dir": "/var/cache/engines"}
    with pytest.raises(ConfigError, match="precision must be one of fp32, fp16"):
        PredictorNode(predictor_factory=factory, context=probe.context, parameter_overrides=[Parameter("precision", value="int8")])
    probe.close()


def counts(node: PredictorNode) -> dict[str, int]:
    return node.stats.snapshot().counts


def fake_frame(i: int) -> np.ndarray:
    return np.full((8, 8, 3), (10 * i, 100, 200 - 10 * i), np.uint8)


def send(probe, publisher, node, i: int, encoding: str = "rgb8", frame_id: str = "cam") -> None:
    received = counts(node)["received"]
    publisher.publish(image_msg(fake_frame(i), encoding, 50 * SECOND + i * FAKE_PERIOD_NS, frame_id))
    assert probe.spin_until(lambda: counts(node)["received"] > received, 10)


@pytest.mark.parametrize("mode, error", [("nan", "NaN"), ("inf", "Inf"), ("raise", "backend crashed")])
def test_failed_inference_publishes_nothing_reports_error_and_the_node_recovers(fake_node, mode, error):
    probe, node, fake, publisher = fake_node
    fake.mode = mode
    send(probe, publisher, node, 0)
    for i, failures in ((1, 1), (2, 2)):  # one at a time, so neither replaces the other
        send(probe, publisher, node, i)
        assert probe.spin_until(lambda: counts(node)["failed"] == failures, 10)
    seen = len(probe.diagnostics)  # reports after the failures, with no new input: ERROR until a prediction works
    assert probe.spin_until(lambda: len(probe.diagnostics) >= seen + 3, 5)
    assert all(level == 2 for level, _, _ in probe.diagnostics[seen:])
    level, message, values = probe.diagnostics[-1]
    assert error in values["last_error"] and error in message
    assert probe.frames == [] and probe.uncertainty == []
    assert publisher.get_subscription_count() == 1  # the subscription stays

    fake.mode = "copy"
    send(probe, publisher, node, 3)
    assert probe.spin_until(lambda: len(probe.frames) == 3 and len(probe.uncertainty) == 3, 10)
    c = counts(node)
    assert (c["predicted"], c["failed"], c["in_flight"]) == (1, 2, 0)
    assert c["received"] == c["rejected"] + c["skipped"] + c["dropped"] + c["predicted"] + c["failed"]
    assert probe.spin_until(lambda: probe.diagnostics[-1][:2] == (0, "predicting"), 5)  # OK again


def test_sequences_arriving_while_busy_replace_the_pending_one(fake_node):
    probe, node, fake, publisher = fake_node
    fake.started.clear()
    fake.release.clear()
    send(probe, publisher, node, 0)
    send(probe, publisher, node, 1)  # first full sequence: inference starts and blocks
    assert fake.started.wait(10)
    for i in (2, 3, 4):  # each replaces the one waiting before it
        send(probe, publisher, node, i)
    fake.release.set()
    assert probe.spin_until(lambda: len(probe.frames) == 6, 10)
    probe.spin_for(0.2)

    c = counts(node)
    assert (c["predicted"], c["dropped"], c["skipped"]) == (2, 2, 1)
    assert c["received"] == c["rejected"] + c["skipped"] + c["dropped"] + c["predicted"] + c["failed"]
    np.testing.assert_array_equal(fake.inputs[-1], np.stack([fake_frame(3), fake_frame(4)]))  # the newest
    newest = 50 * SECOND + 4 * FAKE_PERIOD_NS
    assert [stamp_ns(f) for f in probe.frames[3:]] == [newest + k * FAKE_PERIOD_NS for k in (1, 2, 3)]


@pytest.mark.parametrize("encoding, out_encoding", [("rgb8", "rgb8"), ("rgba8", "rgb8"), ("bgr8", "bgr8"),
                                                    ("bgra8", "bgr8"), ("mono8", "mono8")])
def test_predictions_come_back_in_the_colour_family_of_the_input(fake_node, encoding, out_encoding):
    probe, node, fake, publisher = fake_node
    rgb = fake_frame(1)
    wire = {"rgb8": rgb, "rgba8": np.dstack([rgb, np.full((8, 8), 255, np.uint8)]), "bgr8": rgb[:, :, ::-1],
            "bgra8": np.dstack([rgb[:, :, ::-1], np.zeros((8, 8), np.uint8)]), "mono8": rgb[:, :, :1]}[encoding]
    for i in range(2):
        publisher.publish(image_msg(wire, encoding, 60 * SECOND + i * FAKE_PERIOD_NS, "cam"))
    assert probe.spin_until(lambda: len(probe.frames) == 3, 10)
    expected = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "mono8": rgb[:, :, :1]}[out_encoding]
    for frame in probe.frames:
        assert frame.encoding == out_encoding
        np.testing.assert_array_equal(np.frombuffer(frame.data, np.uint8).reshape(expected.shape), expected)


def test_diagnostics_warn_before_the_first_frame(fake_node):
    probe, node, fake, publisher = fake_node
    assert probe.spin_until(lambda: probe.diagnostics, 5)
    level, message, values = probe.diagnostics[0]
    assert (level, message) == (1, "no frames received yet")
    assert values["backend"] == "fake" and values["backend_reason"] == "fake backend for tests"
    assert values["latency_ms_p50"] == "nan" and values["frames_received"] == "0"


# The node module replaced by one that is signalled halfway through its own import, as a
# SIGINT can land inside rclpy's extension initialisation (where a SystemExit raised by the
# handler turns into an ImportError and a traceback).
SIGNALLED_IMPORT = """
import importlib.abc, importlib.util, os, signal, sys

class SignalledNode(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name == "video_predictor.ros.node" else None

    def exec_module(self, module):
        os.kill(os.getpid(), signal.{signum})
        print("import finished", flush=True)
        module.main = lambda: print("node started", flush=True) or 0

sys.meta_path.insert(0, SignalledNode())
import video_predictor.ros.main as entry
sys.exit(entry.main())
"""


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_inside_an_import_is_acted_on_once_the_imports_are_done(signum):
    done = subprocess.run([sys.executable, "-c", SIGNALLED_IMPORT.format(signum=signum)], capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "import finished" in done.stdout  # the import was not interrupted
    assert "node started" not in done.stdout  # and the node never started


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_node_is_still_importing_exits_quietly(tmp_path, signum):
    """0.3 s after the start the console script is importing rclpy and the backends."""
    with open(tmp_path / "node.log", "w") as log:
        process = subprocess.Popen(node_command(), env=ros_env(DOMAIN + 103), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    time.sleep(0.3)
    process.send_signal(signum)
    exit_code = process.wait(timeout=30)
    log_text = (tmp_path / "node.log").read_text()
    assert exit_code == 0 and "Traceback" not in log_text, log_text
