"""The result document (video_predictor.evaluation.results): ``to_dict()`` writes exactly the
metrics.json the evaluator wrote before the schema was typed. test/data/metrics_*.json are
those documents, written by the evaluator at commit 0595f0b from the inputs rebuilt here
(offline: latency fixed, since it is measured); every field, its value and its place in
the document must match."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from test_live_eval import model_resolution_scene, session

from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.predictor import Prediction, Predictor
from video_predictor.evaluation import live, offline, sources
from video_predictor.evaluation.results import Latency, OfflineRun, Periods

from test_evaluate import scene

DATA = Path(__file__).parent / "data"


class DriftPredictor(Predictor):
    """The last frame shifted one pixel right per k, sigma from the newest frame difference (so Spearman is defined)."""

    backend_name = "fake"

    def __init__(self) -> None:
        super().__init__(ModelMetadata("fake", 3, 4, 32, 32, 3, 1 / 30), 4)

    def _run(self, frames: np.ndarray, flow: np.ndarray | None = None) -> Prediction:
        last = frames[:, -1].astype(np.float32) / 255.0
        predicted = np.stack([np.roll(last, k, axis=-2) for k in range(1, self.horizon + 1)], axis=1)
        change = np.abs(frames[:, -1].astype(np.float32) - frames[:, -2].astype(np.float32)).mean(axis=-1) / 255.0
        std = np.repeat((0.01 + change)[:, None], self.horizon, axis=1)
        return Prediction(predicted, std.astype(np.float32))


def differences(expected, written, path: str = "") -> list[str]:
    """Every field where ``written`` differs from ``expected``: value, type, or its place among the keys."""
    if isinstance(expected, dict) and isinstance(written, dict):
        found = []
        if list(expected) != list(written):
            found.append(f"{path or '/'}: keys {list(written)}, expected {list(expected)}")
        for key in expected.keys() & written.keys():
            found += differences(expected[key], written[key], f"{path}/{key}")
        return found
    if isinstance(expected, list) and isinstance(written, list) and len(expected) == len(written):
        return [d for i, (e, w) in enumerate(zip(expected, written)) for d in differences(e, w, f"{path}[{i}]")]
    if type(expected) is not type(written) or expected != written:
        return [f"{path}: {written!r}, expected {expected!r}"]
    return []


def check_against(name: str, document: dict) -> None:
    expected_text = (DATA / name).read_text()
    assert differences(json.loads(expected_text), document) == []
    assert json.dumps(document, indent=2) + "\n" == expected_text  # as write_outputs writes it


def test_an_offline_result_is_the_metrics_json_of_before():
    frames = scene(20)
    source = sources.FrameSource(iter(sources.SourceFrame(100 + i / 30, "k", f) for i, f in enumerate(frames)), 20,
                                 "golden")
    result = offline.evaluate(source, DriftPredictor(), sources.StreamCounts(), batch_size=4, latency_runs=2,
                              progress=False)
    check_against("metrics_offline.json", replace(result, latency=Latency(1.0, 2.0)).to_dict())


def test_live_results_are_the_metrics_json_of_before():
    frames = model_resolution_scene(16)
    recording = session(frames, lambda i, k: frames[i + k] if i + k < 16 else frames[0], skip=(5, 9))
    check_against("metrics_live.json", live.score_recording(recording).to_dict())

    recording = session(frames, lambda i, k: frames[i + k] if i + k < 16 else frames[0])
    recording.diagnostics.update(prediction_period_source="camera", model_frame_period="camera", frames_failed="1")
    check_against("metrics_live_camera.json", live.score_recording(recording).to_dict())


def test_the_command_lines_model_facts_follow_the_run_in_order():
    run = OfflineRun(2, source="clip.mp4", model_file="m.onnx", backend="onnxruntime", backend_reason="")
    assert list(run.to_dict().items()) == [
        ("failed_predictions", 2), ("mode", "offline"), ("latency_measured", OfflineRun.latency_measured),
        ("source", "clip.mp4"), ("model_file", "m.onnx"), ("backend", "onnxruntime"), ("backend_reason", "")]
    assert list(OfflineRun(0).to_dict()) == ["failed_predictions", "mode", "latency_measured"]


def test_latency_and_periods_are_written_rounded():
    assert Latency(1.23456, None).to_dict() == {"p50": 1.235, "p99": None}
    assert Periods(1 / 30).to_dict() == {"frame_period": 1 / 30, "prediction_period": 0.033333333,
                                         "prediction_period_source": "model"}
    assert Periods("camera").to_dict()["prediction_period"] is None  # rate-agnostic: no period of its own
