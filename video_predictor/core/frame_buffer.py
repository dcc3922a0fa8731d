"""Rolling buffer of the last N observed frames at the prediction period, by stamp.

Two modes, chosen by ``period``:

- a fixed period in seconds (a fixed-period model, or the node's ``prediction_period``): a
  30 Hz camera feeding a model trained at 10 Hz keeps every third frame. The buffer starts
  over when the stream stops being one sequence at that period: a stamp going backwards, a
  gap longer than ``max_gap_periods`` periods, or a change of the stream's key (size,
  encoding, frame_id). A camera slower than that (every frame a gap) is reported by
  ``slow_camera_reason``.
- ``"camera"`` (a rate-agnostic model): every frame is kept and the prediction period is the
  camera's own, measured from the stamps: the low median of the last ``window`` intervals of
  the current sequence, seeded from its first ones. Jitter and a single dropped frame (one
  interval of 2 periods) leave it and the sequence alone; a gap longer than
  ``max_gap_periods + 1`` periods (one lost frame allowed on top of the fixed-period rule)
  is a time jump, as is, before there is an estimate, one longer than ``MAX_CAMERA_PERIOD``.

The buffer is the one owner of this logic: the node and the evaluators read the period in
use from it (``period``, ``BufferedSequence.period``) and the interval between the two
newest frames in periods (``BufferedSequence.last_interval``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum
from statistics import median_low
from typing import Hashable

import numpy as np

from video_predictor.core.metadata import CAMERA_PERIOD

#: The longest camera frame period the camera mode accepts (1 Hz): a longer interval with
#: no estimate yet is a time jump, and a camera measured slower than this is reported.
MAX_CAMERA_PERIOD = 1.0
#: Intervals the camera period is measured over.
PERIOD_WINDOW = 15
#: Intervals measured before a camera counts as too slow for a fixed period.
MIN_INTERVALS_FOR_RATE = 3


class PushResult(Enum):
    KEPT = "kept"  # appended to the buffer
    SKIPPED = "skipped"  # too soon after the last kept frame for the model's period
    DUPLICATE = "duplicate"  # same stamp as the last kept frame
    RESTARTED = "restarted"  # buffer cleared (see ``restart_reason``), then this frame kept


@dataclass(frozen=True)
class BufferedSequence:
    frames: np.ndarray  # (N, H, W, C) uint8, oldest first
    stamps: tuple[float, ...]  # seconds, oldest first
    period: float = math.nan  # the prediction period for this sequence, seconds

    @property
    def newest_stamp(self) -> float:
        return self.stamps[-1]

    @property
    def last_interval(self) -> float:
        """Time between the two newest frames in prediction periods (2.0 after one dropped
        frame in camera mode); 1.0 for a single frame or an unknown period."""
        if len(self.stamps) < 2 or not self.period > 0:
            return 1.0
        return (self.stamps[-1] - self.stamps[-2]) / self.period


def choose_period(model_period: float | str, requested: float = 0.0) -> tuple[float | str, str]:
    """The buffer's period and where it comes from ("camera", "model" or "parameter"), for a
    model whose metadata frame_period is ``model_period`` and a requested prediction period
    (0: the camera's or the model's). A rate-agnostic model takes any period; a fixed-period
    model only its own. ValueError, naming both, otherwise."""
    if not (isinstance(requested, (int, float)) and requested >= 0 and math.isfinite(requested)):
        raise ValueError(f"prediction_period must be >= 0 s, got {requested!r}")
    if model_period == CAMERA_PERIOD:
        return (float(requested), "parameter") if requested > 0 else (CAMERA_PERIOD, "camera")
    model_period = float(model_period)
    if requested == 0 or math.isclose(requested, model_period, rel_tol=1e-6, abs_tol=1e-9):
        return model_period, "model"
    raise ValueError(
        f"prediction_period {requested} s: the model predicts at its fixed period of {model_period:.6g} s "
        f"({1 / model_period:.3g} Hz) only; set prediction_period to 0 (or {model_period!r}), or use a "
        "rate-agnostic model (metadata frame_period: camera)")


class FrameBuffer:
    def __init__(self, length: int, period: float | str, tolerance: float = 0.25, max_gap_periods: float = 1.5,
                 window: int = PERIOD_WINDOW) -> None:
        """length: N frames kept; period: prediction period in seconds, or "camera" (every frame,
        at the camera's measured period); tolerance: fraction of a period a frame may come early
        and still be kept (fixed period); max_gap_periods: a longer gap is a time jump (camera
        mode: one lost frame more); window: intervals the camera period is measured over."""
        if length < 1:
            raise ValueError("length must be >= 1")
        self.camera_mode = period == CAMERA_PERIOD
        if not self.camera_mode and not (isinstance(period, (int, float)) and period > 0):
            raise ValueError(f"period must be > 0 s or {CAMERA_PERIOD!r}, got {period!r}")
        if not 0 <= tolerance < 1:
            raise ValueError("tolerance must be in [0, 1)")
        if window < 1:
            raise ValueError("window must be >= 1")
        self.length = length
        self.fixed_period = None if self.camera_mode else float(period)
        self.tolerance = tolerance
        self.max_gap_periods = max_gap_periods
        self._frames: deque[np.ndarray] = deque(maxlen=length)
        self._stamps: deque[float] = deque(maxlen=length)
        self._key: Hashable = None
        self._next_due = 0.0
        # intervals between successive arrivals of one stream (the camera's rate, whatever is kept)
        self._arrivals: deque[float] = deque(maxlen=window)
        self._last_arrival: float | None = None
        # camera mode: intervals between the kept frames of the current sequence (the estimate)
        self._intervals: deque[float] = deque(maxlen=window)
        self.restart_reason: str | None = None  # why the last RESTARTED happened
        self.restarts = 0

    @property
    def max_gap_periods(self) -> float:
        """A gap between stamps longer than this many periods is a time jump (a restart)."""
        return self._max_gap_periods

    @max_gap_periods.setter
    def max_gap_periods(self, value: float) -> None:
        if value <= 1 + self.tolerance:
            raise ValueError("max_gap_periods must exceed 1 + tolerance")
        self._max_gap_periods = value

    @property
    def period(self) -> float | None:
        """The prediction period in use, seconds: the fixed one, or the camera's as measured
        over the current sequence (None before its second frame)."""
        if not self.camera_mode:
            return self.fixed_period
        return median_low(self._intervals) if self._intervals else None

    @property
    def camera_period(self) -> float | None:
        """The camera's frame period as measured from the recent arrivals (every frame offered,
        kept or not), seconds; None before two frames of one stream."""
        return median_low(self._arrivals) if self._arrivals else None

    def slow_camera_reason(self) -> str | None:
        """Why the camera is too slow to predict from, while it is; else None. Fixed period:
        its frames come further apart than ``max_gap_periods`` periods (every frame is a time
        jump); camera mode: slower than ``MAX_CAMERA_PERIOD``."""
        if len(self._arrivals) < MIN_INTERVALS_FOR_RATE:
            return None
        camera = self.camera_period
        if self.camera_mode:
            if camera > MAX_CAMERA_PERIOD:
                return (f"camera at {1 / camera:.2f} Hz (frame period {camera:.3f} s) is slower than the "
                        f"{1 / MAX_CAMERA_PERIOD:g} Hz the buffer accepts: every frame is a time jump, nothing is predicted")
            return None
        limit = self.max_gap_periods * self.fixed_period
        if camera > limit:
            return (f"camera at {1 / camera:.1f} Hz (frame period {camera:.4f} s) is slower than the prediction period "
                    f"of {self.fixed_period:.4f} s ({1 / self.fixed_period:.1f} Hz) allows (gaps over "
                    f"{self.max_gap_periods:g} periods restart the buffer): every frame restarts it and nothing is "
                    "predicted; use a rate-agnostic model or a camera at the model's rate or faster")
        return None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def ready(self) -> bool:
        return len(self._frames) == self.length

    def clear(self) -> None:
        self._frames.clear()
        self._stamps.clear()
        self._intervals.clear()
        self._key = None

    def push(self, stamp: float, frame: np.ndarray, key: Hashable = None) -> PushResult:
        """Offer a frame with its stamp (seconds); ``key`` identifies the stream's format."""
        self._measure_arrival(stamp, key)
        if not self._stamps:
            result = PushResult.KEPT
            self._next_due = stamp + (self.fixed_period or 0.0)
        elif (reason := self._restart_reason(stamp, key)) is not None:
            self.clear()
            self.restart_reason = reason
            self.restarts += 1
            result = PushResult.RESTARTED
            self._next_due = stamp + (self.fixed_period or 0.0)  # the old sequence's schedule no longer applies
        elif stamp == self._stamps[-1]:
            return PushResult.DUPLICATE
        elif self.camera_mode:
            result = PushResult.KEPT
            self._intervals.append(stamp - self._stamps[-1])
        elif stamp < self._next_due - self.tolerance * self.fixed_period:
            return PushResult.SKIPPED
        else:
            result = PushResult.KEPT
            period = self.fixed_period
            self._next_due = max(self._next_due + period, stamp + (1 - self.tolerance) * period)
        self._key = key
        self._frames.append(frame)
        self._stamps.append(stamp)
        return result

    def _measure_arrival(self, stamp: float, key: Hashable) -> None:
        last = self._last_arrival
        if last is not None and key == self._key and stamp == last:
            return  # a duplicate says nothing about the rate
        if last is None or key != self._key or stamp < last:
            self._arrivals.clear()  # another stream, or the same one started over
        else:
            self._arrivals.append(stamp - last)
        self._last_arrival = stamp

    def _restart_reason(self, stamp: float, key: Hashable) -> str | None:
        last = self._stamps[-1]
        if key != self._key:
            return f"stream format changed from {self._key} to {key}"
        if stamp < last:
            return f"stamp went backwards by {last - stamp:.3f} s"
        gap = stamp - last
        if self.camera_mode:
            estimate = self.period
            if estimate is None:
                if gap > MAX_CAMERA_PERIOD:
                    return f"time jump of {gap:.3f} s (longer than the {MAX_CAMERA_PERIOD:g} s a camera period may be)"
            elif gap > (self.max_gap_periods + 1) * estimate:
                return f"time jump of {gap:.3f} s ({gap / estimate:.1f} camera frame periods of {estimate:.4f} s)"
            return None
        if gap > self.max_gap_periods * self.fixed_period:
            return f"time jump of {gap:.3f} s ({gap / self.fixed_period:.1f} frame periods)"
        return None

    def sequence(self) -> BufferedSequence:
        """The buffered frames, oldest first (a stacked copy), with the period in use. Only when ``ready``."""
        if not self.ready:
            raise RuntimeError(f"buffer holds {len(self)} of {self.length} frames")
        period = self.period
        if period is None:  # camera mode with a single frame (length 1): no interval to measure
            period = self.camera_period or math.nan
        return BufferedSequence(np.stack(self._frames), tuple(self._stamps), float(period))
