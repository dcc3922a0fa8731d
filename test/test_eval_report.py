"""The evaluation report: which sequences the strips show (scoring.StripSelector), and what
report.md says and links. (The PNG files themselves are written in test_evaluate's CLI test.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from video_predictor.evaluation.report import StripFile, report_markdown
from video_predictor.evaluation.scoring import StripSample, StripSelector

K = 3


def sample(index: int, score: float) -> StripSample:
    frames = np.zeros((K, 8, 8, 3), np.uint8)
    return StripSample(index, index / 30, score, frames[:2], frames, frames, np.zeros((K, 8, 8)),
                       np.zeros((K, 8, 8), bool), (score,) * K)


def offer_all(selector: StripSelector, scores: list[float]) -> list[int]:
    """Offer every score; returns the indices whose sample was built."""
    built = []

    def maker(score: float):
        def make(index: int) -> StripSample:
            built.append(index)
            return sample(index, score)
        return make

    for score in scores:
        selector.offer(score, maker(score))
    return built


def test_best_median_and_worst_are_exact_for_a_short_stream():
    selector = StripSelector(reservoir=8)
    offer_all(selector, [5.0, 1.0, 9.0, 3.0, 7.0])
    chosen = selector.chosen()
    assert {label: s.index for label, s in chosen.items()} == {"best": 2, "median": 0, "worst": 1}
    assert [selector.rank(chosen[label]) for label in ("best", "median", "worst")] == [1, 3, 5]
    assert selector.offered == 5


def test_undefined_scores_are_not_offered():
    selector = StripSelector()
    offer_all(selector, [math.nan, 20.0, math.inf, 10.0])
    assert selector.offered == 2
    assert (selector.chosen()["best"].score, selector.chosen()["worst"].score) == (20.0, 10.0)
    assert StripSelector().chosen() == {}


def test_a_long_stream_keeps_few_sequences_but_exact_extremes_and_a_near_median():
    scores = [float(s) for s in np.random.default_rng(0).permutation(2000)]
    selector = StripSelector(reservoir=32, seed=1)
    built = offer_all(selector, scores)
    chosen = selector.chosen()
    assert (chosen["best"].score, chosen["worst"].score) == (1999.0, 0.0)
    assert 900 <= chosen["median"].score <= 1100  # the sampled sequence nearest the median (999.5)
    assert len(built) < 32 + 200  # frames copied for a small part of the stream only


def test_report_links_the_plots_and_the_strips_and_tabulates_moving_areas():
    k_values = list(range(1, K + 1))
    method = {"psnr": [30.0, 28.0, None], "ssim": [0.9, 0.8, 0.7]}
    moving_method = {"psnr": [25.0, 24.0, 23.0], "ssim": [0.8, 0.7, 0.6], "sharpness_diff": [35.0, 34.0, 33.0]}
    result = {
        "horizon": k_values, "frames": 7, "resolution": [8, 8], "mode": "live",
        "model": method, "copy_last": method, "flow": method,
        "uncertainty": {"coverage_2sigma": [0.95] * K, "spearman": [0.5] * K},
        "latency_ms": {"p50": 12.0, "p99": 20.0}, "latency_measured": "end to end: x",
        "sharpness_diff": {"model": [40.0] * K, "copy_last": [41.0] * K, "flow": [39.0] * K},
        "moving": {"threshold_px": 0.5, "min_fraction": 0.01, "mask": "a flow mask", "pixel_fraction": [0.1, 0.2, 0.3],
                   "frames": [5, 6, 7], "model": moving_method, "copy_last": moving_method, "flow": moving_method},
        "frames_dropped": 2, "live": {"camera_received": 20, "node": {"frames_dropped": 2}},
    }
    strips = [StripFile("best", "strip_best.png", sample(4, 31.0), 1, 7)]
    report = report_markdown(result, {"psnr": "psnr_per_horizon.png"}, strips)
    assert "![PSNR per horizon](psnr_per_horizon.png)" in report
    assert "![best sequence](strip_best.png)" in report and "sequence 4 (rank 1 of 7)" in report
    assert "| 3 | 30.0 % | 7 | 23.00 |" in report  # moving-area row: fraction, frames, model PSNR
    assert "| 3 | n/a |" in report  # an undefined score reads n/a
    assert "end to end: x" in report and "frames dropped" in report and "camera received 20" in report
    assert "at least 1 % of the frame" in report and "longer than 0.5 px" in report


@pytest.mark.parametrize("bad", [0, -1])
def test_a_selector_needs_room_for_a_sequence(bad):
    with pytest.raises(ValueError, match="reservoir"):
        StripSelector(reservoir=bad)
