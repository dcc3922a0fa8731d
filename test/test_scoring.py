"""Scoring per horizon (video_predictor.evaluation.scoring): the NaN-aware means, the
scorer's checks; the model's NaN predictions are retried one by one."""

from __future__ import annotations

import numpy as np
import pytest

from test_evaluate import CopyLastPredictor, scene
from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.predictor import Prediction
from video_predictor.evaluation.scoring import HorizonScores, Scorer, predict_batch

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
