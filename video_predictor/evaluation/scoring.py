"""Scoring predictions per horizon: every tool that reports PSNR/SSIM scores through here.

``Scorer`` scores batches of sequences for the evaluator, offline (the model in this
process, ``predict_batch``) and live (the frames a running node published): whole frames
and moving areas for the model and both baselines, uncertainty calibration, and offers
each sequence to a ``StripSelector`` for the report's image strips. ``score_frames``
scores frames already predicted, PSNR/SSIM means per horizon only: the demo's table and
training validation. Both average with ``HorizonScores`` and round with
``results.MethodScores``, so the same frames give the same numbers everywhere.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np
from tqdm import tqdm

from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.pixels import unit_to_uint8
from video_predictor.core.predictor import Prediction, PredictionError, Predictor
from video_predictor.evaluation import metrics
from video_predictor.evaluation.baselines import copy_last
from video_predictor.evaluation.results import (
    METHODS,
    MethodScores,
    MovingMethodScores,
    MovingScores,
    Scores,
    UncertaintyScores,
)

# Frames whose moving area covers less of the frame than this are left out of the moving-area
# scores: 1 % is 41 pixels at 64x64.
MIN_MOVING_FRACTION = 0.01


@dataclass
class HorizonScores:
    """Per-frame scores collected per horizon: name -> list of (B, K) arrays."""

    horizon: int
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, name: str, batch: np.ndarray) -> None:
        self.values.setdefault(name, []).append(np.asarray(batch, dtype=np.float64).reshape(-1, self.horizon))

    def mean(self, name: str) -> list[float | None]:
        """Mean over frames per horizon, ignoring NaN; None where nothing is defined."""
        stacked = np.concatenate(self.values[name])
        defined = np.isfinite(stacked)
        sums = np.where(defined, stacked, 0.0).sum(axis=0)
        counts = defined.sum(axis=0)
        return [float(s / c) if c else None for s, c in zip(sums, counts)]

    def count(self, name: str) -> list[int]:
        """Frames per horizon with a defined (finite) value."""
        return [int(c) for c in np.isfinite(np.concatenate(self.values[name])).sum(axis=0)]


def score_frames(predicted: Mapping[str, np.ndarray], truth: np.ndarray, horizon: int,
                 k: np.ndarray | None = None) -> dict[str, MethodScores]:
    """Mean PSNR and SSIM per horizon 1..``horizon`` of each method's uint8 frames against ``truth``.

    Frames are (B, K, H, W, C), K = ``horizon``, or, with ``k`` (each frame's horizon,
    1..``horizon``), (M, H, W, C): predictions that do not come in complete sets (the
    demo's). A horizon without frames scores None."""
    truth = np.asarray(truth)
    k = np.broadcast_to(np.arange(1, horizon + 1), truth.shape[:2]) if k is None else np.asarray(k)
    k = k.ravel()
    if k.size == 0:
        return {name: MethodScores([None] * horizon, [None] * horizon) for name in predicted}
    if k.min() < 1 or k.max() > horizon:
        raise ValueError(f"horizons must be in 1..{horizon}, got {k.min()}..{k.max()}")
    scores = HorizonScores(horizon)
    for name, frames in predicted.items():
        for metric, function in (("psnr", metrics.psnr), ("ssim", metrics.ssim)):
            per_frame = np.full((k.size, horizon), np.nan)  # each frame in its horizon's column
            per_frame[np.arange(k.size), k - 1] = np.ravel(function(frames, truth))
            scores.add(f"{name}.{metric}", per_frame)
    return {name: MethodScores(scores.mean(f"{name}.psnr"), scores.mean(f"{name}.ssim")) for name in predicted}


def baseline_predictions(inputs: np.ndarray, horizon: int, flow: FlowExtrapolation) -> dict[str, np.ndarray]:
    """copy_last and flow: (B, K, H, W, C) uint8 for (B, N, H, W, C) uint8 sequences."""
    return {"copy_last": np.stack([copy_last(x, horizon) for x in inputs]),
            "flow": np.stack([flow(x, horizon) for x in inputs])}


# -- the sequences the report draws ----------------------------------------------------------


@dataclass(frozen=True)
class StripSample:
    """One scored sequence, kept for drawing."""

    index: int  # position among the scored sequences, from 0
    stamp: float  # stamp of the newest input frame, seconds
    score: float  # model PSNR averaged over k (dB)
    inputs: np.ndarray  # (N, H, W, C) uint8
    targets: np.ndarray  # (K, H, W, C) uint8, the true future frames
    prediction: np.ndarray  # (K, H, W, C) uint8, the model's frames
    std: np.ndarray  # (K, H, W) float, predicted sigma in [0, 1] units
    moving: np.ndarray  # (K, H, W) bool, the moving-area mask of each horizon
    psnr: tuple[float, ...]  # model PSNR per k


class StripSelector:
    """Keeps what is needed to draw the best, median and worst sequence of a stream of any length.

    Best and worst are exact. Every score is kept (a float each), so the median score is
    exact; the frames of the sequences are kept only for a uniform random sample of
    ``reservoir`` sequences (reservoir sampling, fixed seed), and the median strip shows
    the sampled sequence whose score is nearest the median: exactly the median sequence
    whenever the stream has at most ``reservoir`` sequences.
    """

    def __init__(self, reservoir: int = 128, seed: int = 0) -> None:
        if reservoir < 1:
            raise ValueError(f"reservoir must be >= 1, got {reservoir}")
        self.reservoir = reservoir
        self._random = random.Random(seed)
        self._scores: list[float] = []
        self._best: StripSample | None = None
        self._worst: StripSample | None = None
        self._sampled: list[StripSample] = []

    @property
    def offered(self) -> int:
        return len(self._scores)

    def offer(self, score: float, make: Callable[[int], StripSample]) -> None:
        """Consider the next sequence; ``make(index)`` builds its sample only if it is kept."""
        if not math.isfinite(score):
            return
        index = len(self._scores)
        self._scores.append(score)
        sample: StripSample | None = None

        def built() -> StripSample:
            nonlocal sample
            if sample is None:
                sample = make(index)
            return sample

        if self._best is None or score > self._best.score:
            self._best = built()
        if self._worst is None or score < self._worst.score:
            self._worst = built()
        if len(self._sampled) < self.reservoir:
            self._sampled.append(built())
        else:
            slot = self._random.randrange(index + 1)
            if slot < self.reservoir:
                self._sampled[slot] = built()

    def chosen(self) -> dict[str, StripSample]:
        """{"best", "median", "worst"} -> sample; empty before any sequence was offered."""
        if self._best is None or self._worst is None:
            return {}
        median = float(np.median(self._scores))
        nearest = min(self._sampled, key=lambda s: (abs(s.score - median), s.index))
        return {"best": self._best, "median": nearest, "worst": self._worst}

    def rank(self, sample: StripSample) -> int:
        """1-based rank of ``sample``'s score among all offered, best first."""
        return 1 + sum(1 for s in self._scores if s > sample.score)


# -- the evaluator's scorer ------------------------------------------------------------------


class Scorer:
    """Scores the model's predictions and the baselines on batches of sequences: whole
    frames and moving areas, uncertainty calibration; offers each sequence to ``strips``.

    The model's prediction is given, so the same scoring serves the in-process predictor
    (offline) and the frames a running node published (live)."""

    def __init__(self, horizon: int, flow: FlowExtrapolation, motion_threshold: float = metrics.MOTION_THRESHOLD_PX,
                 strips: StripSelector | None = None, min_moving_fraction: float = MIN_MOVING_FRACTION) -> None:
        if not motion_threshold >= 0:
            raise ValueError(f"motion threshold must be >= 0 pixels, got {motion_threshold}")
        if not 0 <= min_moving_fraction <= 1:
            raise ValueError(f"min_moving_fraction must be in [0, 1], got {min_moving_fraction}")
        self.horizon = horizon
        self.flow = flow
        self.motion_threshold = motion_threshold
        self.min_moving_fraction = min_moving_fraction
        self.strips = strips
        self.scores = HorizonScores(horizon)
        self.scored = 0

    def score(self, inputs: np.ndarray, targets: np.ndarray, prediction: Prediction,
              stamps: Iterable[float] | None = None) -> None:
        """inputs (B, N, H, W, C) and targets (B, K, H, W, C) uint8; ``prediction`` the
        model's (B, K) frames in [0, 1] and their sigma; stamps: newest input per sequence."""
        k = self.horizon
        if len(inputs) == 0:
            return
        if prediction.frames.shape[:2] != (len(inputs), k) or targets.shape[:2] != (len(inputs), k):
            raise ValueError(f"expected {len(inputs)} sequences of {k} frames, got prediction "
                             f"{prediction.frames.shape} and targets {targets.shape}")
        # the 8-bit frames the node publishes
        predicted = {"model": unit_to_uint8(prediction.frames), **baseline_predictions(inputs, k, self.flow)}
        last = np.repeat(inputs[:, -1:], k, axis=1)
        moving = metrics.motion_mask(last, targets, self.motion_threshold)  # (B, K, H, W), one mask for all methods
        fraction = moving.mean(axis=(-2, -1))
        self.scores.add("moving_fraction", fraction)
        # a score over a handful of pixels is noise (three right pixels make 100 dB): such frames give NaN
        scored = moving & (fraction >= max(self.min_moving_fraction, 1e-12))[..., None, None]
        psnr = {}
        for method, frames in predicted.items():
            psnr[method] = metrics.psnr(frames, targets)
            ssim_map = metrics.ssim_map(frames, targets)  # each map once, for the whole frame and the mask
            gap = metrics.gradient_gap_map(frames, targets)
            self.scores.add(f"{method}.psnr", psnr[method])
            self.scores.add(f"{method}.ssim", metrics.map_mean(ssim_map))
            self.scores.add(f"{method}.sharpness", metrics.sharpness_from_gap(gap))
            self.scores.add(f"moving.{method}.psnr", metrics.masked_psnr(frames, targets, scored))
            self.scores.add(f"moving.{method}.ssim", metrics.map_mean(ssim_map, scored))
            self.scores.add(f"moving.{method}.sharpness", metrics.sharpness_from_gap(gap, scored))
        error = prediction.frames - targets.astype(np.float32) / 255.0
        self.scores.add("coverage_2sigma", metrics.coverage_2sigma(error, prediction.std))
        self.scores.add("spearman", metrics.uncertainty_spearman(error, prediction.std))
        if self.strips is not None:
            self._offer_strips(inputs, targets, predicted["model"], prediction.std, moving, psnr["model"], stamps)
        self.scored += len(inputs)

    def _offer_strips(self, inputs, targets, model_frames, std, moving, model_psnr, stamps) -> None:
        model_psnr = np.asarray(model_psnr).reshape(len(inputs), self.horizon)
        stamps = list(stamps) if stamps is not None else [math.nan] * len(inputs)
        for b in range(len(inputs)):
            def make(index: int, b: int = b) -> StripSample:
                return StripSample(index, float(stamps[b]), float(model_psnr[b].mean()), inputs[b].copy(),
                                   targets[b].copy(), model_frames[b].copy(), std[b].astype(np.float16),
                                   moving[b].copy(), tuple(float(v) for v in model_psnr[b]))
            self.strips.offer(float(model_psnr[b].mean()), make)

    def summary(self) -> Scores:
        """The scores so far, as the result document holds them (after at least one batch)."""
        mean = self.scores.mean
        return Scores(
            horizon=self.horizon,
            frames=self.scored,
            methods={m: MethodScores(mean(f"{m}.psnr"), mean(f"{m}.ssim")) for m in METHODS},
            uncertainty=UncertaintyScores(mean("coverage_2sigma"), mean("spearman")),
            sharpness_diff={m: mean(f"{m}.sharpness") for m in METHODS},
            moving=MovingScores(
                self.motion_threshold, self.min_moving_fraction, metrics.MOTION_MASK_METHOD, mean("moving_fraction"),
                self.scores.count("moving.model.psnr"),
                {m: MovingMethodScores(mean(f"moving.{m}.psnr"), mean(f"moving.{m}.ssim"),
                                       mean(f"moving.{m}.sharpness")) for m in METHODS}),
            flow_method=self.flow.describe(),
        )


def predict_batch(predictor: Predictor, inputs: np.ndarray,
                  last_intervals: np.ndarray | None = None) -> tuple[np.ndarray, Prediction | None, int]:
    """Predict a batch (``last_intervals``: per sequence, in prediction periods, as the node
    passes them); on NaN/Inf, retry one by one and drop only the bad sequences.
    Returns (mask of the sequences kept, their prediction, number that failed)."""
    intervals = np.ones(len(inputs)) if last_intervals is None else np.asarray(last_intervals, dtype=np.float64)
    try:
        return np.ones(len(inputs), bool), predictor.predict(inputs, last_interval=intervals), 0
    except PredictionError:
        pass
    kept, parts = np.zeros(len(inputs), bool), []
    for i, x in enumerate(inputs):
        try:
            parts.append(predictor.predict(x, last_interval=float(intervals[i])))
            kept[i] = True
        except PredictionError as error:
            tqdm.write(f"skipping a sequence: {error}")
    failed = int((~kept).sum())
    if not parts:
        return kept, None, failed
    return kept, Prediction(np.concatenate([p.frames for p in parts]), np.concatenate([p.std for p in parts])), failed
