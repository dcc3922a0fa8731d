"""What a stream teaches about its own future: a blend of predictors and a std scale, per horizon.

Whether the newest motion goes on (a pan: extrapolate it) or shakes in place (a hand-held or
vibrating camera: copy the last frame) is a property of the stream that a few buffered
frames show poorly, but every arriving frame scores the predictions made for it. The three
pieces here learn from those scores, with exponential forgetting, separately per horizon
(each ``update`` takes the horizons a frame scored as one batch):

- ``ExpertBlend``: convex weights of a few predictions (the model's, flow extrapolation,
  copy-last), fitted to minimise the recent frames' log-MSE: the weighting of PSNR averaged
  over frames. It starts as the model alone.
- ``ErrorRegression``: which pixels go wrong: a linear map of a few per-pixel cues (the
  model's std, how far the predictions are from each other) to the absolute error, fitted
  to the recent frames. It ranks the pixels; the next piece sets the scale.
- ``StdCalibration``: a scale for a std map so that the recent frames' errors fall within
  2 std at the target rate (0.95: a Gaussian's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class AdaptationSettings:
    # Weight of a frame scored n frames ago: forgetting**n (0.99: about the last 100 frames).
    forgetting: float = 0.99
    # Weight of the prior weights (horizon 1: the model alone; horizon k: horizon k−1's), in
    # frames of evidence: it decides the first frames and fades as frames are scored.
    prior_frames: float = 1.0
    # MSE floor of the log-MSE weighting ([0, 1] units; 1e-4 is 40 dB), so that a perfect
    # frame does not dominate.
    mse_floor: float = 1e-4
    coverage: float = 0.95  # the fraction of errors within 2 std that the scale aims at

    def __post_init__(self) -> None:
        if not 0.0 < self.forgetting <= 1.0:
            raise ValueError(f"forgetting must be in (0, 1], got {self.forgetting}")
        if self.prior_frames <= 0.0 or self.mse_floor <= 0.0:
            raise ValueError("prior_frames and mse_floor must be > 0")
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {self.coverage}")


def simplex_quadratic_minimum(q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """argmin of wᵀ q w − 2 cᵀ w over w >= 0, sum(w) <= 1, for one or two weights (q
    symmetric positive definite). Exact and in closed form: the unconstrained minimum where
    it is feasible, else the best of the edges' clipped one-dimensional minima. Plain
    floats: numpy's per-call overhead would be most of the cost."""
    if len(c) == 1:
        return np.array([min(max(float(c[0]) / float(q[0, 0]), 0.0), 1.0)])
    if len(c) != 2:
        raise ValueError(f"one or two weights, got {len(c)}")
    a, b, d = float(q[0, 0]), float(q[0, 1]), float(q[1, 1])
    c1, c2 = float(c[0]), float(c[1])
    det = a * d - b * b
    if det > 0.0:
        w1, w2 = (c1 * d - c2 * b) / det, (c2 * a - c1 * b) / det
        if w1 >= 0.0 and w2 >= 0.0 and w1 + w2 <= 1.0:
            return np.array([w1, w2])

    def value(w1: float, w2: float) -> float:
        return a * w1 * w1 + 2.0 * b * w1 * w2 + d * w2 * w2 - 2.0 * (c1 * w1 + c2 * w2)

    def clip01(x: float) -> float:
        return min(max(x, 0.0), 1.0)

    curvature = a - 2.0 * b + d  # of w = (t, 1 − t) along the edge w1 + w2 = 1
    t = clip01((d - b + c1 - c2) / curvature) if curvature > 0.0 else 0.0
    edges = [(clip01(c1 / a), 0.0), (0.0, clip01(c2 / d)), (t, 1.0 - t)]
    return np.array(min(edges, key=lambda w: value(*w)))


class ExpertBlend:
    """Convex weights of E predictions, one set per horizon k = 1..K. The last prediction is
    the reference the others are measured from (copy-last), and every set starts as the
    first prediction alone (the model).

    A blend is ref + Σ w_i (p_i − ref), w_i >= 0, Σ w_i <= 1. Each scored frame adds its
    normal equations, divided by the frame's squared error under the weights then in use:
    iteratively reweighted least squares for the sum of log-MSE."""

    def __init__(self, experts: int, horizon: int, settings: AdaptationSettings) -> None:
        if experts not in (2, 3):
            raise ValueError(f"a blend takes 2 or 3 predictions, got {experts}")
        self.settings = settings
        n = experts - 1
        self._gram = np.zeros((horizon, n, n))
        self._cross = np.zeros((horizon, n))
        self._prior = np.eye(n)[0]
        self.frames_scored = np.zeros(horizon, dtype=np.int64)
        self._evidence = np.zeros(horizon)  # frames scored, with forgetting
        self.weights = np.tile(self._prior, (horizon, 1))  # (K, E−1): of the non-reference predictions

    def expert_weights(self) -> np.ndarray:
        """(K, E) weights of every prediction per horizon, the reference's last; rows sum to 1."""
        return np.concatenate([self.weights, 1.0 - self.weights.sum(axis=1, keepdims=True)], axis=1)

    def blend(self, predictions: Sequence[np.ndarray]) -> np.ndarray:
        """E predictions (K, ...) -> their blends (K, ...), float32."""
        reference = predictions[-1]
        out = reference.astype(np.float32, copy=True)
        shape = (-1,) + (1,) * (reference.ndim - 1)
        for w, p in zip(self.weights.T, predictions[:-1]):
            if w.any():
                out += w.astype(np.float32).reshape(shape) * (p - reference)
        return out

    def update(self, horizons: np.ndarray, predictions: np.ndarray, targets: np.ndarray) -> None:
        """Score frames that arrived: horizons (m,) 0-based, predictions (m, E, ...) made for
        them and the frames (m, ...), [0, 1]; a horizon appears at most once."""
        m = len(horizons)
        reference = predictions[:, -1].reshape(m, -1)
        d = predictions[:, :-1].reshape(m, predictions.shape[1] - 1, -1) - reference[:, None]  # (m, n, P)
        t = targets.reshape(m, -1).astype(np.float32, copy=False) - reference
        gram = np.matmul(d, d.transpose(0, 2, 1)).astype(np.float64)  # (m, n, n)
        cross = np.matmul(d, t[:, :, None])[:, :, 0].astype(np.float64)  # (m, n)
        tt = np.einsum("mp,mp->m", t, t).astype(np.float64)
        pixels = t.shape[1]
        s = self.settings
        h = np.asarray(horizons)
        w = self.weights[h]  # (m, n)
        # each frame's mean squared error under the weights in use, from the same sums
        mse = np.maximum(tt - 2.0 * np.einsum("mn,mn->m", w, cross) + np.einsum("mi,mij,mj->m", w, gram, w), 0.0) / pixels
        weight = (1.0 / (mse + s.mse_floor) / pixels)[:, None]
        self._gram[h] = s.forgetting * self._gram[h] + weight[:, :, None] * gram
        self._cross[h] = s.forgetting * self._cross[h] + weight * cross
        self._evidence[h] = s.forgetting * self._evidence[h] + 1.0
        self.frames_scored[h] += 1
        self._solve()

    def _solve(self) -> None:
        """Every horizon's weights, nearest first. The prior of horizon 1 is the model alone;
        that of horizon k is horizon k−1's weights (the blend changes smoothly with the
        horizon, and a far horizon waits k frames for its first score): a ridge worth
        ``prior_frames`` average frames of the evidence, all there is before a horizon's
        first score."""
        n = self.weights.shape[1]
        prior = self._prior
        for h in range(len(self.weights)):
            if self.frames_scored[h]:
                # per weight, on the scale of its own prediction's evidence: a prediction far
                # from the reference must not make the prior of a near one heavy
                ridge = self.settings.prior_frames * np.diag(self._gram[h]) / self._evidence[h] + 1e-12
                q = self._gram[h] + np.diag(ridge)
                self.weights[h] = simplex_quadratic_minimum(q, self._cross[h] + ridge * prior)
            else:
                self.weights[h] = prior
            prior = self.weights[h].copy()


class ErrorRegression:
    """Per horizon, |error| ≈ cues · β: least squares over the scored pixels, with
    forgetting and a ridge towards ``initial`` worth ``prior_frames`` frames (per cue, on the
    scale of its own evidence). Cues are per-pixel maps, the last one usually constant."""

    def __init__(self, cues: int, horizon: int, initial: Sequence[float], settings: AdaptationSettings) -> None:
        if len(initial) != cues:
            raise ValueError(f"initial has {len(initial)} coefficients for {cues} cues")
        self.settings = settings
        self._initial = np.asarray(initial, dtype=np.float64)
        self._gram = np.zeros((horizon, cues, cues))
        self._cross = np.zeros((horizon, cues))
        self._evidence = np.zeros(horizon)
        self.coefficients = np.tile(self._initial, (horizon, 1))

    def predict(self, cues: np.ndarray) -> np.ndarray:
        """cues (K, ..., cues) -> the expected |error| (K, ...), float32, at least 1e-4."""
        k, c = cues.shape[0], cues.shape[-1]
        beta = self.coefficients.astype(np.float32)[:, :, None]  # (K, c, 1)
        out = np.matmul(cues.reshape(k, -1, c), beta).reshape(cues.shape[:-1])  # matmul: einsum is slower
        return np.maximum(out, 1e-4)

    def update(self, horizons: np.ndarray, cues: np.ndarray, abs_errors: np.ndarray) -> None:
        """horizons (m,) 0-based, once each; cues (m, ..., cues) and the |errors| (m, ...)."""
        m, c = len(horizons), cues.shape[-1]
        x = cues.reshape(m, -1, c).astype(np.float32, copy=False)
        e = abs_errors.reshape(m, -1, 1).astype(np.float32, copy=False)
        pixels = x.shape[1]
        gram = np.matmul(x.transpose(0, 2, 1), x).astype(np.float64) / pixels
        cross = np.matmul(x.transpose(0, 2, 1), e)[..., 0].astype(np.float64) / pixels
        s = self.settings
        h = np.asarray(horizons)
        self._gram[h] = s.forgetting * self._gram[h] + gram
        self._cross[h] = s.forgetting * self._cross[h] + cross
        self._evidence[h] = s.forgetting * self._evidence[h] + 1.0
        ridge = s.prior_frames * np.diagonal(self._gram[h], axis1=1, axis2=2) / self._evidence[h, None] + 1e-12
        a = self._gram[h] + ridge[:, :, None] * np.eye(c)
        b = self._cross[h] + ridge * self._initial
        try:
            self.coefficients[h] = np.linalg.solve(a, b[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # cues that never vary: the least-squares solution
            self.coefficients[h] = [np.linalg.lstsq(ai, bi, rcond=None)[0] for ai, bi in zip(a, b)]


class StdCalibration:
    """Per horizon, a factor for a std map, so that about ``coverage`` of the recent errors
    lie within 2 std. Keeps a forgetting histogram of log(|error| / std) over every pixel
    and channel scored; the factor is its ``coverage`` quantile over 2. 1 until a frame is
    scored."""

    LOG_RANGE = (-10.0, 10.0)
    BINS = 400  # 0.05 apart in log: a 5 % resolution of the factor

    def __init__(self, horizon: int, settings: AdaptationSettings) -> None:
        self.settings = settings
        self._histogram = np.zeros((horizon, self.BINS))
        self.scale = np.ones(horizon)

    def update(self, horizons: np.ndarray, abs_errors: np.ndarray, stds: np.ndarray) -> None:
        """horizons (m,) 0-based, once each; abs_errors (m, H, W, C) and the uncalibrated
        stds (m, H, W) they were predicted with, [0, 1] units."""
        m = len(horizons)
        ratio = abs_errors / np.maximum(stds, 1e-8)[..., None]
        lo, hi = self.LOG_RANGE
        logs = np.log(np.maximum(ratio, math.exp(lo))).reshape(m, -1)
        bins = np.clip(((logs - lo) * (self.BINS / (hi - lo))).astype(np.int64), 0, self.BINS - 1)
        bins += np.arange(m)[:, None] * self.BINS
        counts = np.bincount(bins.ravel(), minlength=m * self.BINS).reshape(m, self.BINS) / logs.shape[1]
        h = np.asarray(horizons)
        self._histogram[h] = self.settings.forgetting * self._histogram[h] + counts
        cumulative = np.cumsum(self._histogram[h], axis=1)
        # the first bin whose cumulative share reaches the coverage, and its upper edge
        edge = np.minimum((cumulative < self.settings.coverage * cumulative[:, -1:]).sum(axis=1), self.BINS - 1)
        self.scale[h] = np.exp(lo + (edge + 1) * (hi - lo) / self.BINS) / 2.0
