"""Live evaluation (`python -m video_predictor.evaluate --live`).

Part 1 scores hand-made sessions (what the evaluator would have received) without ROS
traffic: matching, truth frames, drops, partial sets, latency, against the offline
evaluator on the same frames. Part 2 checks the command line. Part 3 runs the installed
predictor_node as its own process over real DDS: the evaluator replays a bag written
here into it and the JSON is checked field by field and against the offline scores of the
very sequences the node predicted; (slow) the node on simulated time, the evaluator only
listening while `python -m video_predictor.replay --clock` plays the bag.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from std_msgs.msg import Header

from video_predictor.backends import create_predictor, default_model_path
from video_predictor.contract import split_ns
from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.frame_buffer import FrameBuffer
from video_predictor.core.pixels import uncertainty_to_array
from video_predictor.core.predictor import Prediction
from video_predictor.evaluation import live as live_eval
from video_predictor.evaluation import matching, offline, scoring, sources
from video_predictor.evaluation.metrics import PSNR_CAP_DB
from video_predictor.ros.image_messages import array_to_image, float_array_to_image
from video_predictor.ros.replay import Published

from ros_helpers import REPO, ros_env, start_node, stop_process, unique_domain_id
from test_evaluate import CopyLastPredictor, check_metrics_schema, scene, write_bag

TOPIC = "/camera/image_raw"
N, K, SIZE = 3, 4, 32
PERIOD = 1 / 30
T0 = 1_700_000_000 * 1_000_000_000
LIVE_KEYS = {"camera_received", "inputs_expected", "inputs_predicted", "complete_sets", "incomplete_sets",
             "beyond_recording", "no_input_sequence", "malformed", "unmatched_frames", "unmatched_maps",
             "predicted_frames_received", "uncertainty_maps_received", "camera_published", "camera_in_bag",
             "latency_count", "interrupted", "node"}


# -- part 1: scoring a session ---------------------------------------------------------------


def stamp(i: int) -> int:
    return T0 + round(i * PERIOD * 1e9)


def message(pixels: np.ndarray, stamp_ns: int, std: float | None = None):
    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = split_ns(stamp_ns)
    if std is not None:
        return float_array_to_image(np.full(pixels.shape[:2], std, np.float32), header)
    return array_to_image(pixels, "rgb8", header)


def session(frames: list[np.ndarray], predict, skip: tuple[int, ...] = (),
            sent: bool = True) -> live_eval.LiveRecording:
    """What the evaluator receives from a node that, for every input i with a full buffer
    (i >= N-1) not in ``skip``, publishes predict(i, k) for k = 1..K, stamped input + k*period,
    each arriving 10 ms after the camera frame + 1 ms per k."""
    camera = [matching.CameraArrival(stamp(i), 10.0 + i, (SIZE, SIZE, "rgb8", "camera"), f)
              for i, f in enumerate(frames)]
    predicted, maps = [], []
    for i in range(N - 1, len(frames)):
        if i in skip:
            continue
        for k in range(1, K + 1):
            arrived = 10.0 + i + 0.010 + 0.001 * k
            predicted.append(matching.Received(stamp(i) + round(k * PERIOD * 1e9), arrived,
                                                message(predict(i, k), stamp(i) + round(k * PERIOD * 1e9))))
            maps.append(matching.Received(predicted[-1].stamp_ns, arrived,
                                           message(frames[0], predicted[-1].stamp_ns, std=0.02)))
    diagnostics = {"input_frames": str(N), "horizon": str(K), "frame_period": repr(PERIOD),
                   "resolution": f"{SIZE}x{SIZE}", "backend": "fake", "model": "fake.onnx",
                   "frames_dropped": str(len(skip)), "latency_ms_p50": "3.0"}
    published = [Published(stamp(i), 9.995 + i) for i in range(len(frames))] if sent else None
    return live_eval.LiveRecording(camera, predicted, maps, diagnostics, published, expected=len(frames),
                                   source="test")


def score(recording: live_eval.LiveRecording) -> dict:
    """metrics.json's content for a session."""
    return live_eval.score_recording(recording).to_dict()


def model_resolution_scene(count: int) -> list[np.ndarray]:
    """test_evaluate's moving scene, already at the model's resolution (the node's fitting is a no-op)."""
    return [np.ascontiguousarray(f[8:40, 16:48]) for f in scene(count)]


def score_offline(frames: list[np.ndarray]) -> dict:
    source = sources.FrameSource(iter(sources.SourceFrame(stamp(i) / 1e9, (SIZE, SIZE, "rgb8", "camera"), f)
                                      for i, f in enumerate(frames)), None, "offline")
    return offline.evaluate(source, CopyLastPredictor(N, K, SIZE), sources.StreamCounts(), progress=False,
                            latency_runs=1).to_dict()


def test_a_perfect_node_scores_the_cap_and_the_baselines_match_offline():
    frames = model_resolution_scene(16)
    result = score(session(frames, lambda i, k: frames[i + k] if i + k < 16 else frames[0]))

    check_metrics_schema(result, K)
    expected = score_offline(frames)
    assert result["frames"] == expected["frames"] == 16 - N - K + 1
    assert result["model"] == {"psnr": [PSNR_CAP_DB] * K, "ssim": [1.0] * K}
    for method in ("copy_last", "flow"):  # the same sequences and truths as offline, so the same numbers
        assert result[method] == expected[method]
        assert result["moving"][method] == expected["moving"][method]
    assert result["stream"] == expected["stream"]
    assert result["resolution"] == [SIZE, SIZE] and result["input_frames"] == N and result["frame_period"] == PERIOD
    assert result["uncertainty"]["coverage_2sigma"] == [1.0] * K
    assert set(result["live"]) == LIVE_KEYS
    live = result["live"]
    assert (live["inputs_expected"], live["inputs_predicted"], live["complete_sets"]) == (16 - N + 1,) * 3
    assert live["beyond_recording"] == K  # the last K inputs predict past the end of the recording
    assert result["frames_dropped"] == 0 and live["node"] == {"frames_dropped": 0}
    assert result["latency_ms"] == {"p50": pytest.approx(15.0 + K), "p99": pytest.approx(15.0 + K)}
    assert live["latency_count"] == 16 - N + 1 and "published by the replayer" in result["latency_measured"]
    assert (result["mode"], result["backend"], result["model_file"]) == ("live", "fake", "fake.onnx")


def test_a_node_at_the_cameras_own_period_is_scored_with_the_camera_mode_buffer():
    frames = model_resolution_scene(16)
    recording = session(frames, lambda i, k: frames[i + k] if i + k < 16 else frames[0])
    recording.diagnostics.update(prediction_period_source="camera", model_frame_period="camera")
    result = score(recording)
    assert result["frames"] == 16 - N - K + 1 and result["model"]["psnr"] == [PSNR_CAP_DB] * K
    assert (result["frame_period"], result["prediction_period"], result["prediction_period_source"]) == (
        "camera", pytest.approx(PERIOD, abs=1e-9), "camera")


def test_a_node_that_copies_scores_as_copy_last_and_its_drops_are_counted():
    frames = model_resolution_scene(16)
    recording = session(frames, lambda i, k: frames[i], skip=(4, 7))
    recording.frames.append(matching.Received(stamp(100), 99.0, message(frames[0], stamp(100))))  # for no input
    del recording.frames[-2], recording.uncertainty[-1]  # the last input's set lacks its k = K frame and map
    result = score(recording)

    live = result["live"]
    assert result["frames_dropped"] == 2 and live["inputs_predicted"] == live["inputs_expected"] - 2
    assert (live["unmatched_frames"], live["incomplete_sets"], live["beyond_recording"]) == (1, 1, K - 1)
    assert result["frames"] == 16 - N - K + 1 - 2
    assert result["model"] == result["copy_last"]  # copying the input is what copy-last does


def test_listening_only_measures_latency_from_the_arrival_of_the_input():
    frames = model_resolution_scene(12)
    result = score(session(frames, lambda i, k: frames[i], sent=False))
    assert result["latency_ms"]["p50"] == pytest.approx(10.0 + K)  # 10 ms + 1 ms per k, from arrival here
    assert "received by the evaluator" in result["latency_measured"] and result["live"]["camera_published"] is None


def test_a_late_or_lost_truth_frame_leaves_its_predictions_unscored():
    frames = model_resolution_scene(14)
    recording = session(frames, lambda i, k: frames[i])
    del recording.camera[8]  # never arrived here: our buffer restarts, and nothing can be scored against it
    result = score(recording)
    live = result["live"]
    assert result["stream"]["restarts"] == 1
    assert live["no_input_sequence"] > 0 and result["frames"] < score_offline(frames)["frames"]


def test_sessions_without_what_scoring_needs_are_clear_errors():
    frames = model_resolution_scene(8)
    recording = session(frames, lambda i, k: frames[i])
    recording.diagnostics = None
    with pytest.raises(live_eval.LiveError, match="use_sim_time"):
        live_eval.score_recording(recording)
    recording = session(frames, lambda i, k: frames[i], skip=tuple(range(8)))
    with pytest.raises(live_eval.LiveError, match="no prediction on /predicted_frames"):
        live_eval.score_recording(recording)


def test_uncertainty_maps_decode_in_either_byte_order():
    values = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    msg = float_array_to_image(values, Header())
    assert np.array_equal(uncertainty_to_array(msg), values)
    msg.data = values.astype(">f4").tobytes()
    msg.is_bigendian = 1
    assert np.array_equal(uncertainty_to_array(msg), values)
    msg.encoding = "mono8"
    with pytest.raises(ValueError, match="32FC1"):
        uncertainty_to_array(msg)


# -- part 2: the command line ----------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--live", "--video", "x.mp4"], "use --bag"),
    (["--live"], "needs --bag"),
    (["--live", "--bag", "b", "--model", "m.onnx"], "node's model parameter"),
    (["--live", "--listen-only", "--clock"], "ros2 bag play --clock"),
    (["--bag", "b", "--listen-only"], "belong to --live"),
    (["--live", "--bag", "b", "--rate", "0"], "must be > 0"),
])
def test_cli_rejects_options_that_do_not_fit_live_mode(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        offline.parse_args([*argv, "--out", "out"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_the_stream_key_stays_the_cameras_when_the_model_size_becomes_known_mid_stream():
    # the race CI met: diagnostics naming the model size arrived after the first camera frames;
    # a key taken after fitting changed mid-stream, and the replayed buffer started over
    collector = live_eval.Collector(unique_domain_id(offset=117), record_camera=True, replay=False)
    try:
        frames = scene(6, size=(72, 96))
        for i, f in enumerate(frames):
            if i == 2:
                collector._set_model_size((SIZE, SIZE))
            collector._on_camera(message(f, stamp(i)))
    finally:
        collector.close()
    assert {a.key for a in collector.camera} == {(72, 96, "rgb8", "camera")}
    assert {a.image.shape for a in collector.camera} == {(SIZE, SIZE, 3)}
    counts = sources.StreamCounts()
    model = live_eval.NodeModel(N, K, PERIOD, (SIZE, SIZE), "fake", "fake.onnx", period_source="camera")
    assert len(live_eval._replay_buffer(collector.camera, model, 1.5, counts)) == len(frames) - N + 1
    assert counts.restarts == 0


def test_cli_live_reports_a_bag_without_the_topic_before_touching_ros(tmp_path, capsys):
    write_bag(tmp_path / "bag", scene(2), [0.1, 0.2], topic="/front/image")
    assert offline.main(["--live", "--bag", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 2
    assert "image topics: /front/image" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- part 3: the installed node over DDS -----------------------------------------------------

DOMAIN = unique_domain_id(offset=110)  # apart from the other modules' node processes
needs_default_model = pytest.mark.skipif(
    not (default_model_path().is_file() or default_model_path().with_suffix(".pt").is_file()),
    reason="the packaged default model (video_predictor/pretrained) is not built yet")


@pytest.fixture(scope="module")
def node_process(tmp_path_factory):
    # adapt off: the offline side below predicts the scored sequences only, and the online
    # adaptation's state depends on every input the node saw (any it dropped on a busy machine)
    process = start_node(DOMAIN, tmp_path_factory.mktemp("node") / "predictor_node.log",
                         "--params-file", str(REPO / "config" / "predictor.yaml"), "-p", "diagnostics_period:=0.2",
                         "-p", "adapt:=false")
    yield process
    stop_process(process)


def scored_input_stamps(recording: live_eval.LiveRecording, horizon: int, period: float) -> set[int]:
    """Inputs with all K frames and maps whose K-th future was recorded: what live mode can score."""
    stamps = [a.stamp_ns for a in recording.camera]
    sets = [matching.assign_horizons(r, stamps, period, horizon)[0] for r in (recording.frames, recording.uncertainty)]
    complete = [{m.input_stamp_ns for m in matched if m.k == horizon} for matched in sets]
    last = max(stamps)
    return {s for s in complete[0] & complete[1] if s + round(horizon * period * 1e9) <= last + 1_000_000}


@needs_default_model
def test_live_evaluation_of_a_replayed_bag_matches_offline_on_the_same_sequences(tmp_path, node_process,
                                                                                  monkeypatch):
    count = 20
    write_bag(tmp_path / "bag", scene(count, size=(72, 96)), [1000 + i / 30 for i in range(count)])
    recordings = []
    record = live_eval.record
    monkeypatch.setattr(live_eval, "record", lambda options: recordings.append(record(options)) or recordings[-1])
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    code = offline.main(["--live", "--bag", str(tmp_path / "bag"), "--out", str(tmp_path / "out"),
                          "--domain-id", str(DOMAIN), "--rate", "0.5", "--idle-timeout", "0.5", "--wait", "60",
                          "--no-progress", "--no-figures"])
    assert code == 0, node_process.log_path.read_text()[-2000:]
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    predictor, _ = create_predictor()
    md, k = predictor.metadata, predictor.horizon

    # the schema, field by field
    check_metrics_schema(written, k)
    assert written["resolution"] == [md.height, md.width] and written["input_frames"] == md.input_frames
    if md.rate_agnostic:  # predicted at the bag's 30 Hz, as the node measured it
        assert written["frame_period"] == "camera" and written["prediction_period_source"] == "camera"
        assert written["prediction_period"] == pytest.approx(1 / 30, abs=1e-6)
    else:
        assert written["frame_period"] == pytest.approx(md.frame_period, abs=1e-9)
    assert written["mode"] == "live" and set(written["live"]) == LIVE_KEYS
    live = written["live"]
    assert live["camera_published"] == live["camera_in_bag"] == live["camera_received"] == count
    assert live["inputs_expected"] == count - md.input_frames + 1
    assert (live["unmatched_frames"], live["unmatched_maps"], live["malformed"], live["no_input_sequence"]) == (0,) * 4
    # every expected input is scored, predicted past the recording's end, or dropped by the node
    assert written["frames"] + live["beyond_recording"] + written["frames_dropped"] == live["inputs_expected"], live
    if live["node"]["frames_received"] == count:  # (its best-effort subscription may lose frames on a busy machine)
        assert written["frames_dropped"] == live["node"]["frames_dropped"], live  # our count agrees with the node's
    assert live["latency_count"] == live["inputs_predicted"] and written["latency_ms"]["p50"] > 0
    assert written["stream"] == {"read": count, "rejected": 0, "kept": count, "skipped": 0, "restarts": 0,
                                 "off_schedule": 0}

    # the same sequences offline: identical baselines, the same model within rounding
    recording = recordings[0]
    scored = scored_input_stamps(recording, k, written["prediction_period"])
    assert len(scored) == written["frames"] > 0
    counts = sources.StreamCounts()
    fitted = sources.model_frames(sources.bag_source(str(tmp_path / "bag"), TOPIC, counts), md.height, md.width,
                                  md.channels, counts)
    samples = [s for s in sources.samples_with_futures(fitted, FrameBuffer(md.input_frames, md.frame_period), k,
                                                        counts) if round(s.stamp * 1e9) in scored]
    assert len(samples) == len(scored)
    scorer = scoring.Scorer(k, FlowExtrapolation())
    inputs, targets = np.stack([s.inputs for s in samples]), np.stack([s.targets for s in samples])
    prediction = predictor.predict(inputs)
    scorer.score(inputs, targets, Prediction(prediction.frames, prediction.std))
    expected = {method: scores.to_dict() for method, scores in scorer.summary().methods.items()}
    for method in ("copy_last", "flow"):
        assert written[method] == expected[method]
    np.testing.assert_allclose(written["model"]["psnr"], expected["model"]["psnr"], atol=0.05)
    np.testing.assert_allclose(written["model"]["ssim"], expected["model"]["ssim"], atol=0.001)


@pytest.mark.slow
@needs_default_model
def test_listening_to_a_node_on_simulated_time_while_the_replayer_publishes_the_clock(tmp_path):
    domain = DOMAIN + 5
    count = 24
    write_bag(tmp_path / "bag", scene(count, size=(72, 96)), [500 + i / 30 for i in range(count)])
    node = start_node(domain, tmp_path / "node.log", "--params-file", str(REPO / "config" / "predictor.yaml"),
                      "-p", "diagnostics_period:=0.1", "-p", "use_sim_time:=true")
    outcome = {}
    argv = ["--live", "--listen-only", "--bag", str(tmp_path / "bag"), "--out", str(tmp_path / "out"),
            "--domain-id", str(domain), "--idle-timeout", "2", "--wait", "60", "--no-progress", "--no-figures"]
    listener = threading.Thread(target=lambda: outcome.setdefault("code", offline.main(argv)))
    try:
        listener.start()
        replay = subprocess.run([sys.executable, "-m", "video_predictor.replay", "--bag", str(tmp_path / "bag"),
                                 "--clock", "--wait", "60", "--subscribers", "2"],  # the node and us
                                env=ros_env(domain), capture_output=True, text=True, timeout=120, cwd=REPO)
        assert replay.returncode == 0, replay.stderr
        listener.join(timeout=120)
    finally:
        stop_process(node)
    assert outcome.get("code") == 0, node.log_path.read_text()[-2000:]
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    check_metrics_schema(written, written["horizon"][-1])
    assert written["frames"] > 0 and written["live"]["camera_published"] is None
    assert written["live"]["camera_in_bag"] == count and written["live"]["camera_received"] > 0
    assert "received by the evaluator" in written["latency_measured"]
