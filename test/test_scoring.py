"""Scoring per horizon (video_predictor.evaluation.scoring): the NaN-aware means, the frame
scores the demo and training validation report, and that they agree with the evaluator's
Scorer on the same frames; the model's NaN predictions are retried one by one."""

from __future__ import annotations

import numpy as np
import pytest

from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.pixels import unit_to_uint8
from video_predictor.core.predictor import Prediction
from video_predictor.evaluation import metrics
from video_predictor.evaluation.results import METHODS
from video_predictor.evaluation.scoring import (
    HorizonScores,
    Scorer,
    baseline_predictions,
    predict_batch,
    score_frames,
)

from test_evaluate import CopyLastPredictor, scene

N, K, SIZE = 3, 4, 32


def test_horizon_means_ignore_undefined_values():
    scores = HorizonScores(2)
    scores.add("x", np.array([[1.0, np.nan], [3.0, np.nan]]))
    scores.add("x", np.array([[5.0, np.nan]]))
    assert scores.mean("x") == [3.0, None]
    assert scores.count("x") == [3, 0]


def sequences(count: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """(B, N) inputs and (B, K) true futures of a moving scene cut to the model's size."""
    frames = np.stack([np.ascontiguousarray(f[8:40, 16:48]) for f in scene(count + N + K - 1)])
    inputs = np.stack([frames[b : b + N] for b in range(count)])
    targets = np.stack([frames[b + N : b + N + K] for b in range(count)])
    return inputs, targets


def test_frame_scores_are_per_horizon_means_rounded_as_metrics_json():
    inputs, truth = sequences()
    predicted = baseline_predictions(inputs, K, FlowExtrapolation())
    scores = score_frames(predicted, truth, K)
    for name, frames in predicted.items():
        psnr = np.asarray(metrics.psnr(frames, truth)).mean(axis=0)
        ssim = np.asarray(metrics.ssim(frames, truth)).mean(axis=0)
        assert scores[name].psnr == pytest.approx(psnr.tolist(), abs=1e-9)
        assert scores[name].to_dict() == {"psnr": [round(float(v), 3) for v in psnr],
                                          "ssim": [round(float(v), 4) for v in ssim]}


def test_frame_scores_of_single_predictions_go_to_their_horizon():
    inputs, truth = sequences(2)
    copied = baseline_predictions(inputs, K, FlowExtrapolation())["copy_last"]
    # k = 1 of both sequences and k = 3 of the first: k = 2 and 4 have nothing to score
    frames, targets, k = (np.stack([copied[0, 0], copied[1, 0], copied[0, 2]]),
                          np.stack([truth[0, 0], truth[1, 0], truth[0, 2]]), np.array([1, 1, 3]))
    scores = score_frames({"copy_last": frames}, targets, K, k)["copy_last"]
    full = score_frames({"copy_last": copied}, truth, K)["copy_last"]
    assert scores.psnr[0] == pytest.approx(full.psnr[0]) and scores.psnr[1] is None and scores.psnr[3] is None
    assert scores.ssim[2] == pytest.approx(float(metrics.ssim(copied[0, 2], truth[0, 2])))
    assert score_frames({"model": np.array([])}, np.array([]), K, np.array([], int))["model"].to_dict() == {
        "psnr": [None] * K, "ssim": [None] * K}
    with pytest.raises(ValueError, match="horizons must be in 1..4"):
        score_frames({"copy_last": frames}, targets, K, np.array([1, 1, 5]))


def test_frame_scores_agree_with_the_evaluators_scorer():
    """The demo and training validation print what metrics.json would say for the same frames."""
    inputs, truth = sequences()
    prediction = CopyLastPredictor(N, K, SIZE).predict(inputs)
    flow = FlowExtrapolation()
    scorer = Scorer(K, flow)
    scorer.score(inputs, truth, prediction)
    predicted = {"model": unit_to_uint8(prediction.frames), **baseline_predictions(inputs, K, flow)}
    frame_scores = score_frames(predicted, truth, K)
    summary = scorer.summary()
    assert summary.frames == len(inputs) and list(frame_scores) == list(METHODS)
    for method in METHODS:
        assert frame_scores[method].to_dict() == summary.methods[method].to_dict()


def test_a_batch_with_nan_predictions_keeps_the_good_sequences():
    inputs = np.stack([np.full((N, SIZE, SIZE, 3), 10 * i, np.uint8) for i in range(5)])  # odd i: NaN
    kept, prediction, failed = predict_batch(CopyLastPredictor(N, K, SIZE, nan_on_odd=True), inputs)
    assert kept.tolist() == [True, False, True, False, True] and failed == 2
    assert prediction.frames.shape[:2] == (3, K) and not np.isnan(prediction.frames).any()
    kept, prediction, failed = predict_batch(CopyLastPredictor(N, K, SIZE, nan_on_odd=True), inputs[1::2])
    assert (kept.any(), prediction, failed) == (False, None, 2)


def test_the_scorer_refuses_misshapen_batches():
    inputs, truth = sequences(2)
    frames = np.zeros((2, K - 1, SIZE, SIZE, 3), np.float32)
    with pytest.raises(ValueError, match="expected 2 sequences of 4 frames"):
        Scorer(K, FlowExtrapolation()).score(inputs, truth, Prediction(frames, frames[..., 0]))
