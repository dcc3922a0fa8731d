"""Rolling buffer of the last N observed frames, sampled at the model's frame period by stamp.

A 30 Hz camera feeding a model trained at 10 Hz keeps every third frame. The buffer
starts over when the stream stops being one sequence at the model's period: a stamp
going backwards, a gap longer than ``max_gap_periods`` periods, or a change of the
stream's key (size, encoding, frame_id).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Hashable

import numpy as np


class PushResult(Enum):
    KEPT = "kept"  # appended to the buffer
    SKIPPED = "skipped"  # too soon after the last kept frame for the model's period
    DUPLICATE = "duplicate"  # same stamp as the last kept frame
    RESTARTED = "restarted"  # buffer cleared (see ``restart_reason``), then this frame kept


@dataclass(frozen=True)
class BufferedSequence:
    frames: np.ndarray  # (N, H, W, C) uint8, oldest first
    stamps: tuple[float, ...]  # seconds, oldest first

    @property
    def newest_stamp(self) -> float:
        return self.stamps[-1]


class FrameBuffer:
    def __init__(self, length: int, period: float, tolerance: float = 0.25, max_gap_periods: float = 1.5) -> None:
        """length: N frames kept; period: model frame period in seconds; tolerance: fraction of a
        period a frame may come early and still be kept; max_gap_periods: a longer gap is a time jump."""
        if length < 1:
            raise ValueError("length must be >= 1")
        if period <= 0:
            raise ValueError("period must be > 0")
        if not 0 <= tolerance < 1:
            raise ValueError("tolerance must be in [0, 1)")
        self.length = length
        self.period = period
        self.tolerance = tolerance
        self.max_gap_periods = max_gap_periods
        self._frames: deque[np.ndarray] = deque(maxlen=length)
        self._stamps: deque[float] = deque(maxlen=length)
        self._key: Hashable = None
        self._next_due = 0.0
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

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def ready(self) -> bool:
        return len(self._frames) == self.length

    def clear(self) -> None:
        self._frames.clear()
        self._stamps.clear()
        self._key = None

    def push(self, stamp: float, frame: np.ndarray, key: Hashable = None) -> PushResult:
        """Offer a frame with its stamp (seconds); ``key`` identifies the stream's format."""
        if not self._stamps:
            result = PushResult.KEPT
            self._next_due = stamp + self.period
        elif (reason := self._restart_reason(stamp, key)) is not None:
            self.clear()
            self.restart_reason = reason
            self.restarts += 1
            result = PushResult.RESTARTED
            self._next_due = stamp + self.period  # the old sequence's schedule no longer applies
        elif stamp == self._stamps[-1]:
            return PushResult.DUPLICATE
        elif stamp < self._next_due - self.tolerance * self.period:
            return PushResult.SKIPPED
        else:
            result = PushResult.KEPT
            self._next_due = max(self._next_due + self.period, stamp + (1 - self.tolerance) * self.period)
        self._key = key
        self._frames.append(frame)
        self._stamps.append(stamp)
        return result

    def _restart_reason(self, stamp: float, key: Hashable) -> str | None:
        last = self._stamps[-1]
        if key != self._key:
            return f"stream format changed from {self._key} to {key}"
        if stamp < last:
            return f"stamp went backwards by {last - stamp:.3f} s"
        if stamp - last > self.max_gap_periods * self.period:
            return f"time jump of {stamp - last:.3f} s ({(stamp - last) / self.period:.1f} frame periods)"
        return None

    def sequence(self) -> BufferedSequence:
        """The buffered frames, oldest first (a stacked copy). Only when ``ready``."""
        if not self.ready:
            raise RuntimeError(f"buffer holds {len(self)} of {self.length} frames")
        return BufferedSequence(np.stack(self._frames), tuple(self._stamps))
