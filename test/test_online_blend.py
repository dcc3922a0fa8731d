"""The online blend of predictions and the online std factor (video_predictor.core.online_blend)."""

import itertools

import numpy as np
import pytest

from video_predictor.core.online_blend import (
    AdaptationSettings,
    ErrorRegression,
    ExpertBlend,
    StdCalibration,
    simplex_quadratic_minimum,
)


def _objective(q, c, w):
    return w @ q @ w - 2 * c @ w


@pytest.mark.parametrize("n", [1, 2])
def test_simplex_minimum_is_the_best_point_of_a_fine_grid(n):
    rng = np.random.default_rng(n)
    grid = [w for w in itertools.product(np.linspace(0, 1, 41), repeat=n) if sum(w) <= 1 + 1e-9]
    grid = np.array(grid)
    for _ in range(100):
        a = rng.normal(size=(n, n))
        q = a @ a.T + 0.05 * np.eye(n)
        c = rng.normal(size=n)
        w = simplex_quadratic_minimum(q, c)
        assert (w >= 0).all() and w.sum() <= 1 + 1e-9
        grid_best = min(_objective(q, c, g) for g in grid)
        assert _objective(q, c, w) <= grid_best + 1e-9


def _three_predictions(rng, size=(16, 16, 3)):
    return np.stack([rng.random(size, dtype=np.float32) for _ in range(3)])


def test_a_new_blend_is_the_first_prediction_at_every_horizon():
    blend = ExpertBlend(3, 2, AdaptationSettings())
    rng = np.random.default_rng(0)
    predictions = np.stack([_three_predictions(rng) for _ in range(2)], axis=1)  # (E, K, ...)
    np.testing.assert_allclose(blend.blend(predictions), predictions[0], atol=1e-6)
    np.testing.assert_array_equal(blend.expert_weights(), [[1.0, 0.0, 0.0]] * 2)


def test_each_horizon_finds_the_mixture_its_frames_are_made_of():
    rng = np.random.default_rng(1)
    blend = ExpertBlend(3, 2, AdaptationSettings())
    for _ in range(60):
        p = np.stack([_three_predictions(rng) for _ in range(2)])  # (m = 2 horizons, E, ...)
        noise = rng.normal(0, 0.01, p[:, 0].shape).astype(np.float32)
        targets = np.stack([0.3 * p[0, 0] + 0.7 * p[0, 2], 0.5 * p[1, 1] + 0.5 * p[1, 2]]) + noise
        blend.update(np.array([0, 1]), p, targets)
    np.testing.assert_allclose(blend.expert_weights(), [[0.3, 0.0, 0.7], [0.0, 0.5, 0.5]], atol=0.02)
    np.testing.assert_array_equal(blend.frames_scored, [60, 60])
    # the blend of new predictions uses each horizon's own weights
    p = np.stack([_three_predictions(rng) for _ in range(2)], axis=1)
    expected = [0.3 * p[0, 0] + 0.7 * p[2, 0], 0.5 * p[1, 1] + 0.5 * p[2, 1]]
    np.testing.assert_allclose(blend.blend(p), expected, atol=0.03)


def test_weights_stay_convex_when_the_frames_lie_outside_every_blend():
    rng = np.random.default_rng(2)
    blend = ExpertBlend(3, 1, AdaptationSettings())
    for _ in range(30):
        p = _three_predictions(rng)
        blend.update(np.array([0]), p[None], (2.0 * p[0] - p[2])[None])  # beyond the model, away from the reference
    w = blend.expert_weights()[0]
    assert (w >= -1e-12).all() and w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w, [1.0, 0.0, 0.0], atol=1e-6)


def test_forgetting_follows_a_stream_that_changes():
    rng = np.random.default_rng(3)
    blend = ExpertBlend(2, 1, AdaptationSettings(forgetting=0.9, prior_frames=0.01))  # no pull to the prior
    for mix in (0.9, 0.1):
        for _ in range(80):
            p = np.stack([rng.random((8, 8, 3), dtype=np.float32) for _ in range(2)])
            blend.update(np.array([0]), p[None], (mix * p[0] + (1 - mix) * p[1])[None])
    assert blend.weights[0, 0] == pytest.approx(0.1, abs=0.02)


def test_std_factor_reaches_the_target_coverage_per_horizon():
    rng = np.random.default_rng(4)
    calibration = StdCalibration(2, AdaptationSettings())
    np.testing.assert_array_equal(calibration.scale, [1.0, 1.0])
    raw = np.full((2, 32, 32), 0.02, np.float32)
    for _ in range(40):
        errors = np.abs(np.stack([rng.normal(0, 0.05, (32, 32, 3)), rng.normal(0, 0.01, (32, 32, 3))]))
        calibration.update(np.array([0, 1]), errors, raw)
    # |N(0, s)| <= 1.96 s for 95 %: a factor of 1.96 s / (2 * 0.02)
    np.testing.assert_allclose(calibration.scale, [1.96 * 0.05 / 0.04, 1.96 * 0.01 / 0.04], rtol=0.06)
    errors = np.abs(rng.normal(0, 0.05, (64, 64, 3)))
    assert np.mean(errors <= 2 * calibration.scale[0] * 0.02) == pytest.approx(0.95, abs=0.02)


def test_error_regression_finds_which_cues_predict_the_error():
    rng = np.random.default_rng(5)
    regression = ErrorRegression(3, 2, [1.0, 0.0, 0.0], AdaptationSettings(prior_frames=0.01))
    cues = rng.random((2, 8, 8, 3), dtype=np.float32)
    cues[..., 2] = 1.0
    np.testing.assert_allclose(regression.predict(cues), cues[..., 0], rtol=1e-6)  # the initial coefficients
    for _ in range(80):
        cues = rng.random((2, 16, 16, 3), dtype=np.float32)
        cues[..., 2] = 1.0
        errors = np.stack([0.5 * cues[0, ..., 1] + 0.02, 2.0 * cues[1, ..., 0]])
        regression.update(np.array([0, 1]), cues, errors + rng.normal(0, 0.01, errors.shape))
    np.testing.assert_allclose(regression.coefficients, [[0.0, 0.5, 0.02], [2.0, 0.0, 0.0]], atol=0.03)
    assert (regression.predict(np.zeros((2, 4, 4, 3), np.float32)) >= 1e-4).all()  # never a zero std


def test_settings_are_checked():
    with pytest.raises(ValueError, match="forgetting"):
        AdaptationSettings(forgetting=0.0)
    with pytest.raises(ValueError, match="coverage"):
        AdaptationSettings(coverage=1.0)
    with pytest.raises(ValueError, match="2 or 3"):
        ExpertBlend(1, 5, AdaptationSettings())
