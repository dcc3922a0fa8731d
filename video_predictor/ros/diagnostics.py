"""The predictor node's health: counters, latency and the /diagnostics status built from them.

The subscription callback and the inference worker run on different threads, so the
counters live behind one lock and are read as consistent snapshots.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from video_predictor.contract import DIAGNOSTICS_STATUS_NAME, frames_key
from video_predictor.contract import DiagnosticKey as Key

#: Where every input frame goes. Each one is counted in ``received`` in the same atomic
#: update as its first outcome, and every later update moves it between outcomes, so any
#: snapshot satisfies, exactly:
#:     received = rejected + skipped + dropped + predicted + failed + in_flight
#: rejected: bad message (layout, encoding, size, zero stamp); skipped: not kept by the
#: buffer (faster than the model's period, duplicate stamp) or kept while the buffer
#: fills; dropped: a full sequence superseded by a newer one before inference took it;
#: failed: inference raised or gave NaN/Inf (or publishing failed); in_flight: waiting
#: for or in inference.
OUTCOMES = ("rejected", "skipped", "dropped", "predicted", "failed", "in_flight")
COUNTERS = ("received", *OUTCOMES, "buffer_restarts")


@dataclass(frozen=True)
class StatsSnapshot:
    counts: Mapping[str, int]
    latencies_ms: tuple[float, ...]  # oldest first, the most recent window only
    last_error: str
    failing: bool = False  # the most recent inference failed
    last_restart: str = ""  # why the frame buffer last started over
    warning: str = ""  # a lasting condition (e.g. a camera too slow for the prediction period), while it lasts

    def latency_ms(self, percentile: float) -> float:
        """Latency percentile over the window; NaN before the first prediction."""
        if not self.latencies_ms:
            return math.nan
        return float(np.percentile(self.latencies_ms, percentile))

    def unaccounted(self) -> int:
        """received minus every outcome: 0 unless the counting is wrong."""
        return self.counts["received"] - sum(self.counts[o] for o in OUTCOMES)


class NodeStats:
    """Thread-safe counters, recent latencies, the last error and the inference state."""

    def __init__(self, latency_window: int = 300) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._latencies_ms: deque[float] = deque(maxlen=latency_window)
        self._last_error = ""
        self._failing = False
        self._last_restart = ""
        self._warning = ""

    def add(self, error: str | None = None, **deltas: int) -> None:
        """Apply counter ``deltas`` in one step (an input moves from one outcome to the
        next without a snapshot seeing it in both or neither); ``error`` becomes the last error."""
        with self._lock:
            for counter, n in deltas.items():
                self._counts[counter] += n
            if error is not None:
                self._last_error = error

    def prediction_done(self, seconds: float) -> None:
        """An in-flight input was predicted and published, ``seconds`` after it arrived."""
        with self._lock:
            self._counts["in_flight"] -= 1
            self._counts["predicted"] += 1
            self._latencies_ms.append(seconds * 1000.0)
            self._failing = False

    def prediction_failed(self, message: str) -> None:
        """An in-flight input's inference raised or gave unusable output, or publishing failed."""
        with self._lock:
            self._counts["in_flight"] -= 1
            self._counts["failed"] += 1
            self._last_error = message
            self._failing = True

    def buffer_restarted(self, reason: str) -> None:
        with self._lock:
            self._counts["buffer_restarts"] += 1
            self._last_restart = reason

    def set_warning(self, message: str) -> None:
        """A lasting condition reported as WARN while it lasts; "" when it is over."""
        with self._lock:
            self._warning = message

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(dict(self._counts), tuple(self._latencies_ms), self._last_error, self._failing,
                                 self._last_restart, self._warning)


def health(now: StatsSnapshot, before: StatsSnapshot | None) -> tuple[bytes, str]:
    """Level and message: ERROR while inference is failing (the last attempt failed) or
    after failures since ``before``; WARN before the first frame or on rejected input
    since ``before`` or while a lasting warning holds (a camera too slow for the prediction
    period); else OK. A working inference after failures is OK again."""
    def new(counter: str) -> int:
        return now.counts[counter] - (before.counts[counter] if before else 0)

    if new("failed"):
        return DiagnosticStatus.ERROR, f"{new('failed')} inference failure(s) since the last report: {now.last_error}"
    if now.failing:  # no new input since the failure: still broken as far as anyone knows
        return DiagnosticStatus.ERROR, f"inference failing, nothing predicted since: {now.last_error}"
    if now.counts["received"] == 0:
        return DiagnosticStatus.WARN, "no frames received yet"
    if now.warning:
        return DiagnosticStatus.WARN, now.warning
    if new("rejected"):
        return DiagnosticStatus.WARN, f"{new('rejected')} input frame(s) rejected since the last report: {now.last_error}"
    if now.counts["predicted"] == 0:
        return DiagnosticStatus.OK, "receiving frames, waiting for a full buffer"
    return DiagnosticStatus.OK, "predicting"


def diagnostic_status(now: StatsSnapshot, before: StatsSnapshot | None, info: Mapping[str, object]) -> DiagnosticStatus:
    """The node's DiagnosticStatus: ``info`` (backend, model, ...) first, then latency and counters."""
    level, message = health(now, before)
    values = {str(k): str(v) for k, v in info.items()}
    values[Key.LATENCY_MS_LAST] = _ms(now.latencies_ms[-1] if now.latencies_ms else math.nan)
    values[Key.LATENCY_MS_P50] = _ms(now.latency_ms(50))
    values[Key.LATENCY_MS_P99] = _ms(now.latency_ms(99))
    for counter in COUNTERS:
        key = Key.BUFFER_RESTARTS if counter == "buffer_restarts" else frames_key(counter)
        values[key] = str(now.counts[counter])
    values[Key.LAST_ERROR] = now.last_error
    values[Key.LAST_BUFFER_RESTART] = now.last_restart
    values[Key.WARNING] = now.warning
    return DiagnosticStatus(
        level=level,
        name=DIAGNOSTICS_STATUS_NAME,
        message=message,
        hardware_id="",
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )


def _ms(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"
