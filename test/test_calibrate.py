"""Std calibration: per-step multipliers make ±2σ cover the target share of held-out values."""

import numpy as np
import pytest
import torch

from training.calibrate import coverage, fit_sigma_calibration, predict_clips
from video_predictor.models.flow_anchored import FlowAnchoredConfig, FlowAnchoredPredictor

SMALL = {"scales": [{"features": [8], "kernels": [3, 3]}, {"features": [4], "kernels": [3, 3]}]}


def moving_clips(count=6, seed=0):
    """Textures moving by a random whole pixel per frame, with noise: real errors to calibrate."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(count):
        base = rng.integers(0, 256, (96, 96, 3)).astype(np.float32)
        base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1)) / 3
        dx, dy = rng.integers(-2, 3, 2)
        frames = [np.roll(base, (t * dy, t * dx), (0, 1))[16:80, 16:80] + rng.normal(0, 4, (64, 64, 3)) for t in range(9)]
        clips.append(np.clip(frames, 0, 255).astype(np.uint8))
    return np.stack(clips)


def test_calibration_reaches_the_target_coverage_at_every_step():
    torch.manual_seed(0)
    model = FlowAnchoredPredictor(FlowAnchoredConfig(**SMALL))
    clips = moving_clips()
    before, after = fit_sigma_calibration(model, clips, 4, 5, "farneback", target=0.9)
    assert np.all(np.abs(after - 0.9) < 0.02)
    assert not np.allclose(before, after)  # the untrained std was not calibrated
    assert (model.sigma_calibration != 1).all()
    frames, std = predict_clips(model, clips, 4, 5, "farneback")  # the model now publishes the calibrated std
    np.testing.assert_allclose(coverage(frames - clips[:, 4:].astype(np.float32) / 255, std), after, atol=1e-6)


def test_calibration_needs_the_buffer_clips_and_a_target():
    model = FlowAnchoredPredictor(FlowAnchoredConfig(**SMALL))
    with pytest.raises(ValueError, match="target"):
        fit_sigma_calibration(model, moving_clips(2), 4, 5, "farneback", target=1.5)
    with pytest.raises(ValueError, match="no clips"):
        fit_sigma_calibration(model, moving_clips(2)[:0], 4, 5, "farneback")
    with pytest.raises(ValueError, match="sigma_calibration"):
        fit_sigma_calibration(torch.nn.Linear(1, 1), moving_clips(2), 4, 5, "farneback")
