"""Offline evaluator: scoring whole runs, metrics.json and report.md, the CLI's errors, and
the frame sources (bag, video file, frame folder). Pairing sequences with their futures:
test_eval_sources; per-horizon means: test_scoring; the document's schema: test_eval_results."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from video_predictor.backends import create_predictor, default_model_path
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.predictor import Prediction, Predictor
from video_predictor.evaluation import offline, sources
from video_predictor.evaluation.metrics import PSNR_CAP_DB
from video_predictor.io import bags, video

TOPIC = "/camera/image_raw"
SIZE = 32  # model resolution of the fake predictors
N, K = 3, 4
METHOD_KEYS = ("model", "copy_last", "flow")


class CopyLastPredictor(Predictor):
    """Predicts the last frame with a constant std. With ``nan_on_odd`` the output is NaN
    for sequences whose newest frame's first value / 10 is odd (a model failing on some inputs)."""

    backend_name = "fake"

    def __init__(self, n: int = N, k: int = K, size: int = SIZE, nan_on_odd: bool = False) -> None:
        super().__init__(ModelMetadata("fake", n, k, size, size, 3, 1 / 30), k)
        self.nan_on_odd = nan_on_odd

    def _run(self, frames: np.ndarray, flow: np.ndarray | None = None) -> Prediction:
        last = frames[:, -1:].astype(np.float32) / 255.0
        predicted = np.repeat(last, self.horizon, axis=1)
        if self.nan_on_odd:
            predicted[(frames[:, -1, 0, 0, 0] // 10) % 2 == 1] = np.nan
        return Prediction(predicted, np.full(predicted.shape[:-1], 0.02, np.float32))


def scene(count: int, moving: bool = True, size: tuple[int, int] = (48, 64)) -> list[np.ndarray]:
    """RGB frames, wider than tall (so the crop matters): a textured background with a
    bright square moving right 2 px a frame; frame i's pixel (0, 0) holds i."""
    h, w = size
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (5, 5), 1.5)
    frames = []
    for i in range(count):
        frame = background.copy()
        if moving:
            frame[16:28, 10 + 2 * i : 22 + 2 * i] = (250, 240, 30)
            frame[0, 0] = i
        frames.append(frame)
    return frames


def write_bag(path, frames_rgb, stamps, topic=TOPIC) -> None:
    bags.write_image_bag(path, (f[:, :, ::-1] for f in frames_rgb), topic, stamps, encoding="bgr8")


def run(source: sources.FrameSource, predictor: Predictor, counts: sources.StreamCounts, **kwargs) -> dict:
    """metrics.json's content of an evaluation."""
    return offline.evaluate(source, predictor, counts, progress=False, **kwargs).to_dict()


# -- a whole evaluation ----------------------------------------------------------------------


CONTRACT_KEYS = {"horizon", "frames", "resolution", "model", "copy_last", "flow", "uncertainty", "latency_ms"}
EXTRA_KEYS = {"sharpness_diff", "moving", "frame_period", "prediction_period", "prediction_period_source",
              "input_frames", "failed_predictions", "stream", "flow_method", "notes", "mode", "latency_measured"}


def check_metrics_schema(written: dict, k: int) -> None:
    """The contract's schema field by field, plus the extras every mode writes."""
    assert CONTRACT_KEYS | EXTRA_KEYS <= set(written)
    assert written["horizon"] == list(range(1, k + 1))
    assert isinstance(written["frames"], int) and written["frames"] > 0
    for method in METHOD_KEYS:
        assert set(written[method]) == {"psnr", "ssim"}
        assert len(written[method]["psnr"]) == len(written[method]["ssim"]) == k
        assert all(10 < v <= PSNR_CAP_DB for v in written[method]["psnr"])
        assert all(0 < v <= 1 for v in written[method]["ssim"])
    assert set(written["uncertainty"]) == {"coverage_2sigma", "spearman"}
    assert all(len(v) == k for v in written["uncertainty"].values())
    assert all(0 <= v <= 1 for v in written["uncertainty"]["coverage_2sigma"])
    assert set(written["latency_ms"]) == {"p50", "p99"}
    assert 0 < written["latency_ms"]["p50"] <= written["latency_ms"]["p99"]
    assert set(written["sharpness_diff"]) == set(METHOD_KEYS)
    moving = written["moving"]
    assert set(moving) == {"threshold_px", "min_fraction", "mask", "pixel_fraction", "frames", *METHOD_KEYS}
    assert moving["threshold_px"] == 0.5 and moving["min_fraction"] == 0.01 and "Farneback" in moving["mask"]
    assert len(moving["pixel_fraction"]) == len(moving["frames"]) == k
    assert all(0 <= n <= written["frames"] for n in moving["frames"])
    for method in METHOD_KEYS:
        assert set(moving[method]) == {"psnr", "ssim", "sharpness_diff"}
        assert all(len(v) == k for v in moving[method].values())
    assert set(written["stream"]) == {"read", "rejected", "kept", "skipped", "restarts", "off_schedule"}
    assert written["prediction_period_source"] in ("camera", "model", "parameter")
    assert written["prediction_period"] > 0


def test_metrics_json_follows_the_contract_schema(tmp_path):
    frames = scene(20)
    write_bag(tmp_path / "bag", frames, [100 + i / 30 for i in range(20)])
    counts = sources.StreamCounts()
    result = offline.evaluate(sources.bag_source(str(tmp_path / "bag"), TOPIC, counts), CopyLastPredictor(), counts,
                              batch_size=4, progress=False)
    offline.write_outputs(result, tmp_path / "out", figures=False)
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())

    check_metrics_schema(written, K)
    assert written["frames"] == 20 - N - K + 1  # every sequence with all K futures, no more
    assert written["resolution"] == [SIZE, SIZE]
    assert written["model"] == written["copy_last"]  # the fake model copies: same frames, same targets
    assert written["moving"]["model"] == written["moving"]["copy_last"]
    assert written["copy_last"]["psnr"] == sorted(written["copy_last"]["psnr"], reverse=True)  # moving scene
    assert written["uncertainty"]["spearman"] == [None] * K  # a constant std ranks nothing
    assert written["stream"] == {"read": 20, "rejected": 0, "kept": 20, "skipped": 0, "restarts": 0,
                                 "off_schedule": 0}
    assert (written["mode"], written["failed_predictions"], written["frame_period"], written["input_frames"]) == (
        "offline", 0, 1 / 30, N)
    assert (written["prediction_period"], written["prediction_period_source"]) == (round(1 / 30, 9), "model")
    # the square moves 4/3 px a frame at 32x32: the mask finds it, on a small part of each frame
    assert all(0.01 < f < 0.5 for f in written["moving"]["pixel_fraction"])
    assert written["moving"]["frames"] == [written["frames"]] * K
    # copying the last frame is worse where things move than over the mostly still frame
    assert all(m < w for m, w in zip(written["moving"]["copy_last"]["psnr"], written["copy_last"]["psnr"]))
    report = (tmp_path / "out" / "report.md").read_text()
    for heading in ("## Whole frames", "## Moving areas", "## Sharpness difference"):
        assert heading in report
    assert "copy-last PSNR" in report and ".png" not in report  # no figures asked for


def test_static_scene_scores_copy_last_as_perfect(tmp_path):
    counts = sources.StreamCounts()
    frames = scene(10, moving=False)
    source = sources.FrameSource(iter(sources.SourceFrame(i / 30, "k", f) for i, f in enumerate(frames)), None, "static")
    result = run(source, CopyLastPredictor(), counts)
    assert result["copy_last"]["psnr"] == [PSNR_CAP_DB] * K
    assert result["copy_last"]["ssim"] == [1.0] * K
    assert result["sharpness_diff"]["copy_last"] == [PSNR_CAP_DB] * K
    assert result["uncertainty"]["coverage_2sigma"] == [1.0] * K  # zero error is within any 2 sigma
    # nothing moves: no moving area, so no moving-area score
    assert result["moving"]["pixel_fraction"] == [0.0] * K and result["moving"]["frames"] == [0] * K
    assert result["moving"]["copy_last"]["psnr"] == [None] * K


def translating_scene(count: int, step: int = 1, size: int = 32) -> list[np.ndarray]:
    """A smooth texture sliding right by ``step`` px a frame, already at the model's size."""
    rng = np.random.default_rng(5)
    noise = cv2.GaussianBlur(rng.random((size, size + step * count + 8)).astype(np.float32), (0, 0), 2.0)
    grey = ((noise - noise.min()) / (noise.max() - noise.min()) * 200 + 25).astype(np.uint8)
    texture = np.stack([grey, 255 - grey, grey // 2 + 60], axis=-1)
    start = step * count
    return [np.ascontiguousarray(texture[:, start - step * i : start - step * i + size]) for i in range(count)]


def test_flow_extrapolation_beats_copy_last_on_a_pure_translation():
    counts = sources.StreamCounts()
    frames = translating_scene(14)
    source = sources.FrameSource(iter(sources.SourceFrame(i / 30, "k", f) for i, f in enumerate(frames)), None, "pan")
    result = run(source, CopyLastPredictor(), counts, latency_runs=1)
    assert result["frames"] == 14 - N - K + 1
    for whole_or_moving in (result, result["moving"]):
        flow, copy = whole_or_moving["flow"], whole_or_moving["copy_last"]
        assert all(f > c + 3 for f, c in zip(flow["psnr"], copy["psnr"])), (flow, copy)
        assert all(f > c for f, c in zip(flow["ssim"], copy["ssim"]))
    assert all(f > 0.6 for f in result["moving"]["pixel_fraction"])  # the whole view moves, borders aside


def test_failed_predictions_are_skipped_and_counted():
    counts = sources.StreamCounts()
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(16)]  # uniform: survives the resize
    source = sources.FrameSource(iter(sources.SourceFrame(i / 30, "k", f) for i, f in enumerate(frames)), None, "s")
    result = run(source, CopyLastPredictor(nan_on_odd=True), counts, batch_size=4)
    # complete sequences end at frames 2..12; those ending at an odd frame give NaN
    assert (result["frames"], result["failed_predictions"]) == (5, 5)
    assert result["copy_last"]["psnr"][0] == pytest.approx(20 * math.log10(255 / 10), abs=1e-3)  # rounded in json


def test_a_stream_slower_than_the_model_is_a_clear_error():
    counts = sources.StreamCounts()
    frames = scene(12)
    source = sources.FrameSource(iter(sources.SourceFrame(i / 10, "k", f) for i, f in enumerate(frames)), None, "s")
    with pytest.raises(offline.EvaluationError, match="no sequence of 3 frames.*restarts 11"):
        run(source, CopyLastPredictor(), counts)


def test_evaluator_on_carphone_reproduces_the_contract_copy_last_figures():
    counts = sources.StreamCounts()
    source = sources.video_source(str(video.carphone_clip()), None)
    result = run(source, CopyLastPredictor(n=4, k=5, size=64), counts, batch_size=32, latency_runs=2)
    # the contract scores last indices 3..N-7; the evaluator also scores the final complete sequence
    assert result["frames"] == 112
    np.testing.assert_allclose(result["copy_last"]["psnr"], [33.79, 29.96, 28.34, 27.16, 26.01], atol=0.05)
    np.testing.assert_allclose(result["copy_last"]["ssim"], [0.971, 0.936, 0.908, 0.885, 0.862], atol=0.003)
    np.testing.assert_allclose(result["flow"]["psnr"], [33.02, 28.14, 25.69, 24.00, 22.67], atol=0.05)


needs_default_model = pytest.mark.skipif(
    not (default_model_path().is_file() or default_model_path().with_suffix(".pt").is_file()),
    reason="the packaged default model (video_predictor/pretrained) is not built yet")


@needs_default_model
def test_cli_evaluates_a_bag_with_the_packaged_default_model(tmp_path):
    frames = scene(14, size=(72, 96))
    write_bag(tmp_path / "bag", frames, [50 + i / 30 for i in range(14)])
    out = tmp_path / "out"
    assert offline.main(["--bag", str(tmp_path / "bag"), "--out", str(out), "--no-progress", "--latency-runs", "3"]) == 0
    written = json.loads((out / "metrics.json").read_text())
    predictor, _ = create_predictor()
    md = predictor.metadata
    assert written["horizon"] == list(range(1, predictor.horizon + 1))
    assert written["resolution"] == [md.height, md.width]
    assert written["frames"] == 14 - md.input_frames - predictor.horizon + 1
    for method in METHOD_KEYS:
        assert all(math.isfinite(v) and v > 10 for v in written[method]["psnr"])
    assert all(0 <= v <= 1 for v in written["uncertainty"]["coverage_2sigma"])
    assert written["backend"] == predictor.backend_name and written["model_file"] == str(default_model_path())
    check_metrics_schema(written, predictor.horizon)
    report = (out / "report.md").read_text()
    for name in ("psnr_per_horizon.png", "ssim_per_horizon.png", "strip_best.png", "strip_median.png",
                 "strip_worst.png"):
        assert f"]({name})" in report, name  # linked from the report ...
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name  # ... and written as a PNG
    # as the node does by default, the predictions adapted to the stream as its frames arrived
    adaptation = written["adaptation"]
    assert adaptation["experts"] == ["model", "flow", "copy_last"]
    assert adaptation["frames_scored"] == written["frames"] - 1  # each window scores the one before
    assert all(sum(w) == pytest.approx(1.0, abs=1e-3) for w in adaptation["weights"])
    assert written["adaptation_note"].startswith("online adaptation on")


@needs_default_model
def test_cli_scores_the_model_as_it_is_with_no_adapt(tmp_path):
    frames = scene(14, size=(72, 96))
    write_bag(tmp_path / "bag", frames, [50 + i / 30 for i in range(14)])
    runs = {}
    for flags in ((), ("--no-adapt",)):
        out = tmp_path / ("raw" if flags else "adapted")
        assert offline.main(["--bag", str(tmp_path / "bag"), "--out", str(out), "--no-progress", "--no-figures",
                             "--latency-runs", "1", *flags]) == 0
        runs[flags] = json.loads((out / "metrics.json").read_text())
    raw, adapted = runs[("--no-adapt",)], runs[()]
    assert "adaptation" not in raw and raw["adaptation_note"] == "online adaptation off"
    assert raw["copy_last"] == adapted["copy_last"] and raw["flow"] == adapted["flow"]
    assert raw["model"]["psnr"][0] != adapted["model"]["psnr"][0]  # the same frames, scored differently


# -- command line errors ---------------------------------------------------------------------


def test_cli_reports_a_missing_topic_with_the_bags_topics(tmp_path, capsys):
    write_bag(tmp_path / "bag", scene(2), [0.0, 0.1], topic="/front/image")
    assert offline.main(["--bag", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 2
    assert "image topics: /front/image" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_missing_bag_and_a_folder_without_fps(tmp_path, capsys):
    assert offline.main(["--bag", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    assert "no such bag" in capsys.readouterr().err
    (tmp_path / "frames").mkdir()
    assert offline.main(["--frames", str(tmp_path / "frames"), "--out", str(tmp_path / "out")]) == 2
    assert "--fps" in capsys.readouterr().err


def test_cli_reports_an_unusable_model(tmp_path, capsys):
    write_bag(tmp_path / "bag", scene(2), [0.0, 0.1])
    assert offline.main(["--bag", str(tmp_path / "bag"), "--model", str(tmp_path / "m.onnx"),
                          "--out", str(tmp_path / "out")]) == 2
    assert "m.onnx" in capsys.readouterr().err


# -- frame sources ---------------------------------------------------------------------------


def test_frame_folder_is_read_in_natural_order_at_the_given_rate(tmp_path):
    frames = scene(11)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), frame[:, :, ::-1])
    (tmp_path / "notes.txt").write_text("not an image")
    read = list(video.folder_frames(tmp_path, fps=10))
    assert [f.stamp for f in read] == pytest.approx([i / 10 for i in range(11)])
    assert all(np.array_equal(f.image, frame) for f, frame in zip(read, frames))  # RGB, frame_10 last


def test_video_file_frames_come_with_the_files_rate(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (64, 48))
    for frame in scene(6):
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    read = list(video.video_frames(path))
    assert len(read) == 6
    assert [f.stamp for f in read] == pytest.approx([i / 15 for i in range(6)])
    assert read[0].image.shape == (48, 64, 3)
    assert read[0].image[20, 15, 0] > 200 and read[0].image[20, 15, 2] < 80  # yellow square, in RGB order
    assert [f.stamp for f in video.video_frames(path, fps=30)][1] == pytest.approx(1 / 30)


def test_unreadable_sources_are_clear_errors(tmp_path):
    with pytest.raises(video.VideoError, match="no such video"):
        video.video_frames(tmp_path / "none.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(video.VideoError, match="no png"):
        video.folder_frames(tmp_path / "empty", fps=10)
    with pytest.raises(video.VideoError, match="fps must be > 0"):
        video.folder_frames(tmp_path / "empty", fps=0)
