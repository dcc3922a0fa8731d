"""The result document of an evaluation, typed: ``EvaluationResult.to_dict()`` is metrics.json.

Key order and rounding are part of the format (users diff metrics.json files), so both
are fixed here and nowhere else: the contract's fields first (horizon, frames,
resolution, per-method PSNR/SSIM per horizon, uncertainty, latency_ms), then the extras
(sharpness, moving areas, periods, input frames, stream counts, the flow baseline,
notes), then what kind of run it was (``OfflineRun`` or ``LiveRun``).

Values are kept as computed and rounded only when written, by one rule: dB (PSNR,
sharpness difference) to ``DB_DIGITS`` places, quantities in [-1, 1] (SSIM, coverage,
Spearman, pixel fractions) to ``UNIT_DIGITS``. The demo's table and training validation
round through ``MethodScores`` too, so every tool prints the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import ClassVar, Iterable

from video_predictor.core.metadata import CAMERA_PERIOD
from video_predictor.evaluation.sources import StreamCounts

METHODS = ("model", "copy_last", "flow")  # the model and the two baselines, in the document's order
DB_DIGITS = 3
UNIT_DIGITS = 4
LATENCY_DIGITS = 3  # milliseconds
PERIOD_DIGITS = 9  # seconds: to the nanosecond of the stamps

Series = list[float | None]  # one value per horizon k = 1..K; None where nothing was defined

NOTES = (
    "frames: buffered sequences scored, each with all K future frames; "
    "PSNR (peak 255, capped at 100 dB) and SSIM (11x11 Gaussian window, sigma 1.5) on 8-bit frames, "
    "averaged over sequences per horizon; moving: the same on the pixels whose flow from the last observed "
    "frame to the true future frame exceeds threshold_px, averaged over the frames where such pixels cover at "
    "least min_fraction of the frame (moving.frames per horizon); "
    "uncertainty: per-frame coverage of |error| <= 2 sigma and per-frame Spearman correlation of sigma with "
    "|error|, averaged"
)


def rounded(values: Iterable[float | None], digits: int) -> Series:
    """``values`` to ``digits`` places; None where a value is missing or not finite (JSON has no NaN)."""
    return [None if v is None or not math.isfinite(v) else round(v, digits) for v in values]


# -- scores ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodScores:
    """Mean PSNR (dB) and SSIM per horizon of one method's predictions."""

    psnr: Series
    ssim: Series

    def to_dict(self) -> dict[str, Series]:
        return {"psnr": rounded(self.psnr, DB_DIGITS), "ssim": rounded(self.ssim, UNIT_DIGITS)}


@dataclass(frozen=True)
class MovingMethodScores(MethodScores):
    """The same over the moving areas, with the sharpness difference (dB)."""

    sharpness_diff: Series

    def to_dict(self) -> dict[str, Series]:
        return {**super().to_dict(), "sharpness_diff": rounded(self.sharpness_diff, DB_DIGITS)}


@dataclass(frozen=True)
class UncertaintyScores:
    coverage_2sigma: Series  # share of values with |error| <= 2 sigma (0.95 when calibrated)
    spearman: Series  # rank correlation of sigma with |error|

    def to_dict(self) -> dict[str, Series]:
        return {"coverage_2sigma": rounded(self.coverage_2sigma, UNIT_DIGITS),
                "spearman": rounded(self.spearman, UNIT_DIGITS)}


@dataclass(frozen=True)
class MovingScores:
    """Scores on the pixels that move from the last observed frame to the true future frame."""

    threshold_px: float
    min_fraction: float  # frames whose moving area covers less are left out
    mask: str  # how the mask is computed
    pixel_fraction: Series
    frames: list[int]  # per horizon, the frames with a moving area to score
    methods: dict[str, MovingMethodScores]  # by METHODS

    def to_dict(self) -> dict:
        document = {"threshold_px": self.threshold_px, "min_fraction": self.min_fraction, "mask": self.mask,
                    "pixel_fraction": rounded(self.pixel_fraction, UNIT_DIGITS), "frames": list(self.frames)}
        document.update((method, self.methods[method].to_dict()) for method in METHODS)
        return document


@dataclass(frozen=True)
class Scores:
    """What the frames gave: a finished scorer's summary (``scoring.Scorer.summary``)."""

    horizon: int
    frames: int  # sequences scored, each with all K futures
    methods: dict[str, MethodScores]  # by METHODS
    uncertainty: UncertaintyScores
    sharpness_diff: dict[str, Series]  # by METHODS, whole frames (dB)
    moving: MovingScores
    flow_method: str  # the flow baseline, described


# -- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    p50: float | None  # ms; None when nothing was timed
    p99: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {name: None if v is None else round(v, LATENCY_DIGITS) for name, v in asdict(self).items()}


@dataclass(frozen=True)
class Periods:
    frame_period: float | str  # the model's, from its metadata: seconds, or "camera" (rate-agnostic)
    prediction_period: float | None = None  # seconds predicted at; None: the model's fixed period, if it has one
    source: str = "model"  # camera, model or parameter: what set the prediction period

    def to_dict(self) -> dict:
        period = self.prediction_period
        if period is None and self.frame_period != CAMERA_PERIOD:
            period = float(self.frame_period)
        return {"frame_period": self.frame_period,
                "prediction_period": None if period is None else round(period, PERIOD_DIGITS),
                "prediction_period_source": self.source}


@dataclass(frozen=True)
class OfflineRun:
    """The model ran in this process (``offline.evaluate``)."""

    failed_predictions: int  # sequences left out: the model gave NaN or Inf
    # What the command line loaded; None (not written) for a caller with a predictor of its own.
    source: str | None = None
    model_file: str | None = None
    backend: str | None = None
    backend_reason: str | None = None
    adaptation_note: str | None = None
    # the online adaptation's state when the last sequence was scored (AdaptivePredictor.summary)
    adaptation: dict | None = None
    notes: ClassVar[str] = ""
    latency_measured: ClassVar[str] = "single-sequence predict() calls in this process"

    def to_dict(self) -> dict:
        loaded = {"source": self.source, "model_file": self.model_file, "backend": self.backend,
                  "backend_reason": self.backend_reason, "adaptation_note": self.adaptation_note,
                  "adaptation": self.adaptation}
        return {"failed_predictions": self.failed_predictions, "mode": "offline",
                "latency_measured": self.latency_measured, **{k: v for k, v in loaded.items() if v is not None}}


@dataclass
class LiveCounts:
    """metrics.json ``live``: what a live session received and what became of it."""

    camera_received: int = 0
    inputs_expected: int = 0  # arrivals that completed a full buffer: the node should predict on them
    inputs_predicted: int = 0  # of those, inputs with at least one prediction
    complete_sets: int = 0  # inputs with all K frames and all K maps
    incomplete_sets: int = 0
    beyond_recording: int = 0  # complete sets whose future frames never arrived (end of the bag, lost frames)
    no_input_sequence: int = 0  # complete sets for an input our buffer did not have full (a frame lost here)
    malformed: int = 0  # predictions that could not be decoded or had the wrong size
    unmatched_frames: int = 0
    unmatched_maps: int = 0
    predicted_frames_received: int = 0
    uncertainty_maps_received: int = 0
    camera_published: int | None = None  # by our replayer; None when listening only
    camera_in_bag: int | None = None
    latency_count: int = 0  # inputs whose end-to-end latency was measured
    interrupted: bool = False  # Ctrl-C: what had arrived was scored
    node: dict[str, int] = field(default_factory=dict)  # the node's own counters, from /diagnostics


@dataclass(frozen=True)
class LiveRun:
    """A running node was scored over ROS 2 (``live.score_recording``)."""

    source: str
    model_file: str
    backend: str
    latency_measured: str
    frames_dropped: int  # inputs that completed a full buffer but got no prediction
    live: LiveCounts
    failed_predictions: int | None  # the node's count of failed inferences, if its diagnostics say
    notes: ClassVar[str] = (
        "; live: each prediction is scored against the camera frame that arrived at its stamp (nearest within half "
        "a camera period); frames_dropped: inputs that completed a full buffer but got no prediction")

    def to_dict(self) -> dict:
        return {"mode": "live", "source": self.source, "model_file": self.model_file, "backend": self.backend,
                "latency_measured": self.latency_measured, "frames_dropped": self.frames_dropped,
                "live": asdict(self.live), "failed_predictions": self.failed_predictions}


# -- the document ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationResult:
    scores: Scores
    latency: Latency
    resolution: tuple[int, int]  # (height, width) scored at: the model's
    periods: Periods
    input_frames: int
    stream: StreamCounts
    run: OfflineRun | LiveRun | None = None  # None: only the scores (a caller's own scoring)

    def to_dict(self) -> dict:
        """metrics.json, key by key in the format's order."""
        scores = self.scores
        document: dict = {"horizon": list(range(1, scores.horizon + 1)), "frames": scores.frames,
                          "resolution": list(self.resolution)}
        document.update((method, scores.methods[method].to_dict()) for method in METHODS)
        document["uncertainty"] = scores.uncertainty.to_dict()
        document["latency_ms"] = self.latency.to_dict()
        # extras beyond the contract's schema
        document["sharpness_diff"] = {method: rounded(scores.sharpness_diff[method], DB_DIGITS) for method in METHODS}
        document["moving"] = scores.moving.to_dict()
        document.update(self.periods.to_dict())
        document["input_frames"] = self.input_frames
        document["stream"] = asdict(self.stream)
        document["flow_method"] = scores.flow_method
        document["notes"] = NOTES + (self.run.notes if self.run is not None else "")
        if self.run is not None:
            document.update(self.run.to_dict())
        return document
