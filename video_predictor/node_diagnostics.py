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

STATUS_NAME = "video_predictor: predictor_node"

#: every input frame ends in exactly one of rejected, skipped or a job; every job in one
#: of dropped, predicted or failed (or is still in flight)
COUNTERS = ("received", "rejected", "skipped", "dropped", "predicted", "failed", "buffer_restarts")


@dataclass(frozen=True)
class StatsSnapshot:
    counts: Mapping[str, int]
    latencies_ms: tuple[float, ...]  # oldest first, the most recent window only
    last_error: str

    def latency_ms(self, percentile: float) -> float:
        """Latency percentile over the window; NaN before the first prediction."""
        if not self.latencies_ms:
            return math.nan
        return float(np.percentile(self.latencies_ms, percentile))


class NodeStats:
    """Thread-safe counters, recent latencies and the last error message."""

    def __init__(self, latency_window: int = 300) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._latencies_ms: deque[float] = deque(maxlen=latency_window)
        self._last_error = ""

    def count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self._counts[counter] += n

    def record_latency(self, seconds: float) -> None:
        with self._lock:
            self._latencies_ms.append(seconds * 1000.0)

    def record_error(self, counter: str, message: str) -> None:
        """Count a failure and keep its message as the last error."""
        with self._lock:
            self._counts[counter] += 1
            self._last_error = message

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(dict(self._counts), tuple(self._latencies_ms), self._last_error)


def health(now: StatsSnapshot, before: StatsSnapshot | None) -> tuple[bytes, str]:
    """Level and message: ERROR on inference failures since ``before``, WARN before the
    first frame or on rejected input since ``before``, else OK."""
    def new(counter: str) -> int:
        return now.counts[counter] - (before.counts[counter] if before else 0)

    if new("failed"):
        return DiagnosticStatus.ERROR, f"{new('failed')} inference failure(s) since the last report: {now.last_error}"
    if now.counts["received"] == 0:
        return DiagnosticStatus.WARN, "no frames received yet"
    if new("rejected"):
        return DiagnosticStatus.WARN, f"{new('rejected')} input frame(s) rejected since the last report: {now.last_error}"
    if now.counts["predicted"] == 0:
        return DiagnosticStatus.OK, "receiving frames, waiting for a full buffer"
    return DiagnosticStatus.OK, "predicting"


def diagnostic_status(now: StatsSnapshot, before: StatsSnapshot | None, info: Mapping[str, object]) -> DiagnosticStatus:
    """The node's DiagnosticStatus: ``info`` (backend, model, ...) first, then latency and counters."""
    level, message = health(now, before)
    values = {str(k): str(v) for k, v in info.items()}
    values["latency_ms_last"] = _ms(now.latencies_ms[-1] if now.latencies_ms else math.nan)
    values["latency_ms_p50"] = _ms(now.latency_ms(50))
    values["latency_ms_p99"] = _ms(now.latency_ms(99))
    for counter in COUNTERS:
        key = counter if counter == "buffer_restarts" else f"frames_{counter}"
        values[key] = str(now.counts[counter])
    values["last_error"] = now.last_error
    return DiagnosticStatus(
        level=level,
        name=STATUS_NAME,
        message=message,
        hardware_id="",
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )


def _ms(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"
