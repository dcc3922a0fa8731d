"""Matching what a running node published to what happened, without ROS: which input and
horizon k each received prediction belongs to, and the end-to-end latency. The live
evaluator, the demo and the e2e benchmark all match with these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple

import numpy as np

from video_predictor.contract import stamp_to_ns

if TYPE_CHECKING:
    from video_predictor.ros.replay import Published

STAMP_TOLERANCE_NS = 500_000  # diagnostics give the frame period to 1 us; k*period stays well within this


class Received(NamedTuple):
    stamp_ns: int
    arrived: float  # time.monotonic()
    msg: Any  # the sensor_msgs/Image as it arrived


class CameraArrival(NamedTuple):
    stamp_ns: int
    arrived: float  # time.monotonic()
    key: tuple  # (height, width, encoding, frame_id): the node's stream key
    image: np.ndarray  # RGB (H, W, 3) or grey (H, W, 1) uint8; at the model's resolution once that is known


def stamp_ns(msg) -> int:
    return stamp_to_ns(msg.header.stamp)


@dataclass(frozen=True)
class Matched:
    input_stamp_ns: int
    k: int
    received: Received


def nearest_stamp(sorted_stamps: np.ndarray, stamp: float, tolerance: float) -> int | None:
    """The stamp in ``sorted_stamps`` nearest ``stamp``, if within ``tolerance`` (all ns)."""
    if len(sorted_stamps) == 0:
        return None
    i = int(np.searchsorted(sorted_stamps, stamp))
    candidates = sorted_stamps[max(0, i - 1) : i + 1]
    best = candidates[np.argmin(np.abs(candidates - stamp))]
    return int(best) if abs(best - stamp) <= tolerance else None


def assign_horizons(received: Iterable[Received], input_stamps_ns: Iterable[int], period_s: float,
                    horizon: int) -> tuple[list[Matched], int]:
    """Which input and horizon k each prediction belongs to; returns (matched, unmatched count).

    The node publishes k = 1..K in order for one input, stamped newest + k*period, so a
    message continues the previous one's set when its stamp is one period further; else
    it opens a set (k = 1) for the input stamped one period before it. Arrival order
    decides: stamps alone are ambiguous when camera and model rates nearly agree.
    """
    inputs = np.array(sorted(input_stamps_ns), dtype=np.int64)
    period_ns = period_s * 1e9
    matched, unmatched, previous = [], 0, None
    for r in received:
        if previous is not None and previous.k < horizon:
            expected = previous.input_stamp_ns + (previous.k + 1) * period_ns
            if abs(r.stamp_ns - expected) <= STAMP_TOLERANCE_NS:
                previous = Matched(previous.input_stamp_ns, previous.k + 1, r)
                matched.append(previous)
                continue
        source = nearest_stamp(inputs, r.stamp_ns - period_ns, STAMP_TOLERANCE_NS)
        if source is None:
            unmatched += 1
            previous = None
            continue
        previous = Matched(source, 1, r)
        matched.append(previous)
    return matched, unmatched


def end_to_end_latency_ms(matched: list[Matched], sent: list[Published], horizon: int) -> dict[str, float | None]:
    """Input published -> its K-th prediction received, p50 and p99."""
    sent_at = {p.stamp_ns: p.sent_at for p in sent}
    latencies = [(m.received.arrived - sent_at[m.input_stamp_ns]) * 1000.0
                 for m in matched if m.k == horizon and m.input_stamp_ns in sent_at]
    if not latencies:
        return {"p50": None, "p99": None, "count": 0}
    return {"p50": round(float(np.percentile(latencies, 50)), 2), "p99": round(float(np.percentile(latencies, 99)), 2),
            "count": len(latencies)}
