"""The offline evaluator at any camera rate: a rate-agnostic model (metadata frame_period:
camera) scores a 10 fps video of real frames (carphone), a jittered bag with a lost frame
and a frame folder, at the camera's own period, and metrics.json says the period it
predicted at; a fixed-period model fed the same 10 fps video is a clear error naming the
slow camera."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.model_file import save_model_file
from video_predictor.core.predictor import Prediction, Predictor
from video_predictor.evaluation import offline, sources
from video_predictor.io import bags, video
from video_predictor.models import build_model

N, K, SIZE = 3, 3, 32


class CopyLast(Predictor):
    """Copies the last frame K times; records the last_interval of every call."""

    backend_name = "fake"

    def __init__(self, frame_period: float | str = "camera") -> None:
        super().__init__(ModelMetadata("fake", N, K, SIZE, SIZE, 3, frame_period), K)
        self.intervals: list = []

    def predict(self, frames, last_interval=None) -> Prediction:
        self.intervals.append(last_interval)
        return super().predict(frames, last_interval)

    def _run(self, frames: np.ndarray, flow: np.ndarray | None) -> Prediction:
        predicted = np.repeat(frames[:, -1:].astype(np.float32) / 255.0, self.horizon, axis=1)
        return Prediction(predicted, np.full(predicted.shape[:-1], 0.02, np.float32))


def carphone_frames(step: int, count: int) -> list[np.ndarray]:
    """Every ``step``-th RGB frame of the carphone clip (step 3: a 10 fps camera's frames)."""
    frames = [f.image for f in video.video_frames(video.carphone_clip())]
    return frames[::step][:count]


@pytest.fixture(scope="module")
def video_10fps(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "carphone_10fps.avi"
    frames = carphone_frames(3, 40)
    h, w, _ = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    assert video.video_fps(path) == pytest.approx(10.0)
    return path


def run(source, predictor, counts, **kwargs) -> dict:
    return offline.evaluate(source, predictor, counts, progress=False, latency_runs=2, **kwargs).to_dict()


def test_a_rate_agnostic_model_scores_a_10fps_video_at_its_period(video_10fps):
    counts = sources.StreamCounts()
    predictor = CopyLast()
    result = run(sources.video_source(str(video_10fps), None), predictor, counts)
    assert result["frames"] == 40 - N - K + 1  # every sequence with all K futures
    assert (result["prediction_period"], result["prediction_period_source"]) == (pytest.approx(0.1), "camera")
    assert result["frame_period"] == "camera"
    assert counts.restarts == 0 and counts.skipped == 0
    # frames three times further apart than carphone's own: copying the last one is worse than at 30 fps
    assert 20 < result["copy_last"]["psnr"][0] < 33.79
    assert result["copy_last"]["psnr"] == sorted(result["copy_last"]["psnr"], reverse=True)
    assert all(i is None or np.allclose(i, 1.0) for i in predictor.intervals)


def test_a_fixed_period_model_on_the_10fps_video_names_the_slow_camera(video_10fps):
    counts = sources.StreamCounts()
    with pytest.raises(offline.EvaluationError, match=r"restarts 39.*camera at 10\.0 Hz.*slower than the prediction "
                                                       r"period of 0\.0333 s"):
        run(sources.video_source(str(video_10fps), None), CopyLast(1 / 30), counts)


def test_a_jittered_15hz_bag_with_a_lost_frame_scores_with_the_interval_passed(tmp_path):
    rng = np.random.default_rng(5)
    frames = carphone_frames(2, 45)
    stamps = [200 + i / 15 + rng.uniform(-0.1, 0.1) / 15 for i in range(45)]  # intervals off by up to 20 %
    del frames[20], stamps[20]  # one frame lost
    bags.write_image_bag(tmp_path / "bag", (f[:, :, ::-1] for f in frames), "/camera/image_raw", stamps,
                           encoding="bgr8")
    counts = sources.StreamCounts()
    predictor = CopyLast()
    result = run(sources.bag_source(str(tmp_path / "bag"), "/camera/image_raw", counts), predictor, counts)
    assert counts.restarts == 0
    assert result["prediction_period"] == pytest.approx(1 / 15, rel=0.1)
    # the sequences whose futures span the lost frame are off schedule, not scored against the wrong frame
    assert counts.off_schedule == K  # newest frame 17, 18 or 19: a future after the loss at 20
    assert result["frames"] == len(frames) - N - K + 1 - counts.off_schedule
    intervals = np.concatenate([np.atleast_1d(i) for i in predictor.intervals if i is not None])
    assert intervals.max() == pytest.approx(2.0, abs=0.5)  # the sequence ending just after the loss
    assert np.median(intervals) == pytest.approx(1.0, abs=0.2)


def test_prediction_period_thins_a_frame_folder_for_a_rate_agnostic_model(tmp_path):
    for i, frame in enumerate(carphone_frames(1, 36)):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), frame[:, :, ::-1])
    counts = sources.StreamCounts()
    result = run(sources.folder_source(str(tmp_path), 30.0), CopyLast(), counts, prediction_period=0.1)
    assert (result["prediction_period"], result["prediction_period_source"]) == (0.1, "parameter")
    assert counts.kept == 12 and result["frames"] == 12 - N - K + 1


def tiny_model_file(path, frame_period) -> None:
    torch.manual_seed(0)
    model = build_model("multiscale", {"input_frames": 2, "scales": [{"features": [4], "kernels": [3, 3]}] * 2})
    save_model_file(path, ModelMetadata("multiscale", 2, 2, 16, 16, 3, frame_period,
                                        model_config=model.config.to_dict()), model.state_dict())


def test_cli_scores_a_10fps_video_with_a_rate_agnostic_model_file(tmp_path, video_10fps):
    tiny_model_file(tmp_path / "tiny.pt", "camera")
    out = tmp_path / "out"
    assert offline.main(["--video", str(video_10fps), "--model", str(tmp_path / "tiny.pt"), "--out", str(out),
                          "--no-progress", "--no-figures", "--latency-runs", "2"]) == 0
    written = json.loads((out / "metrics.json").read_text())
    assert written["frames"] == 40 - 2 - 2 + 1
    assert written["prediction_period"] == pytest.approx(0.1) and written["prediction_period_source"] == "camera"
    assert "prediction period 0.1000 s (camera)" in (out / "report.md").read_text()


def test_cli_refuses_a_prediction_period_a_fixed_model_does_not_allow(tmp_path, video_10fps, capsys):
    tiny_model_file(tmp_path / "fixed.pt", 0.1)
    assert offline.main(["--video", str(video_10fps), "--model", str(tmp_path / "fixed.pt"), "--out",
                          str(tmp_path / "out"), "--no-progress", "--prediction-period", "0.05"]) == 2
    assert "the model predicts at its fixed period of 0.1 s" in capsys.readouterr().err
