"""benchmarks/svg_bounce_spread.py and svg_calibration.py: the spread measure is right on
known futures, and both scripts run on a tiny trained svg model."""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pytest

from training import train

from ros_helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
bounce = importlib.import_module("svg_bounce_spread")
calibration = importlib.import_module("svg_calibration")

TINY_RUN = [
    "--config", "svg-smmnist", "--no-tensorboard",
    "--set", "model.config={input_frames: 3, channels: 1, size: 64, filters: 4, g_dim: 8, z_dim: 3, rnn_size: 8}",
    "--set", "data.height=64", "--set", "data.width=64", "--set", "data.input_frames=3", "--set", "data.rollout=4",
    "--set", "export_horizon=4", "--set", "data.synthetic_clips=8", "--set", "data.val_clips=2",
    "--set", "data.synthetic={digits: 1}", "--set", "optim.batch_size=4", "--set", "optim.threads=1",
]


def blob(size: int, row: int, col: int) -> np.ndarray:
    frame = np.zeros((size, size), np.float32)
    frame[row : row + 3, col : col + 3] = 1.0
    return frame


def test_centroid_spread_is_the_rms_distance_of_positions_in_pixels():
    same = np.stack([blob(16, 5, 5)] * 4)
    assert bounce.centroid_spread(same) == pytest.approx(0.0)
    # Two futures 6 px apart along a row: each 3 px from the mean.
    apart = np.stack([blob(16, 5, 2), blob(16, 5, 8)])
    assert bounce.centroid_spread(apart) == pytest.approx(3.0)
    # Scaled ink (a faded future) has the same position.
    assert bounce.centroid_spread(np.stack([blob(16, 5, 2), 0.3 * blob(16, 5, 8)])) == pytest.approx(3.0)


def test_groups_count_steps_after_the_first_bounce():
    since = bounce.group_by_bounce(np.array([-1, 0, 2]), horizon=4)
    np.testing.assert_array_equal(since, [[0, 0, 0, 0], [0, 1, 2, 3], [-2, -1, 0, 1]])


def test_compare_reports_the_true_spread_and_a_model_without_any():
    rng = np.random.default_rng(0)
    m, s, k, size = 6, 5, 3, 16
    first_bounce = np.array([0] * m)  # spread from the second future step on
    truth = np.zeros((m, s, k, size, size), np.float32)
    for i in range(m):
        for j in range(s):
            truth[i, j, 0] = blob(size, 6, 6)
            truth[i, j, 1:] = blob(size, 6, int(rng.integers(0, 12)))
    frozen = np.repeat(truth[:, :1], s, axis=1)  # every sample is the first true future
    rows = {r["steps_since_bounce"]: r for r in bounce.compare(frozen, truth, first_bounce)}
    assert set(rows) == {bounce.BEFORE, 1, 2} and rows[bounce.BEFORE]["count"] == m
    assert rows[bounce.BEFORE]["position_spread_px"] == {"true": 0.0, "model": 0.0}
    assert rows[1]["position_spread_px"]["true"] > 1.0 and rows[1]["position_spread_px"]["model"] == 0.0
    assert rows[1]["ink_kept"] == pytest.approx(1.0)
    same = {r["steps_since_bounce"]: r for r in bounce.compare(truth, truth, first_bounce)}
    assert same[2]["position_spread_px"]["true"] == same[2]["position_spread_px"]["model"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("svg_bench")
    assert train.main(["--steps", "1", "--out", str(out), *TINY_RUN]) == 0
    return out / "model.pt"


def test_bounce_spread_script_runs_on_a_model(trained, tmp_path, monkeypatch):
    out = tmp_path / "spread.json"
    monkeypatch.setattr(sys, "argv", ["svg_bounce_spread", "--model", str(trained), "--clips", "6", "--samples", "3", "--out", str(out)])
    assert bounce.main() == 0
    report = json.loads(out.read_text())
    rows = report["by_steps_since_bounce"]
    assert rows[0]["steps_since_bounce"] == bounce.BEFORE and sum(r["count"] for r in rows) == 6 * 4
    assert rows[0]["position_spread_px"]["true"] == 0.0  # determined until the wall


def test_calibration_script_scores_svg_deterministic_and_copy_last(trained, tmp_path, monkeypatch):
    out = tmp_path / "calibration.json"
    monkeypatch.setattr(sys, "argv", ["svg_calibration", "--model", str(trained), "--clips", "4", "--samples", "3", "--digits", "1",
                                      "--deterministic", str(trained), "--out", str(out)])
    assert calibration.main() == 0
    report = json.loads(out.read_text())
    for key in ("coverage_2sigma", "spearman", "mean_std"):
        assert len(report["svg"][key]) == 4
    for key in ("mean", "one_sample", "best_of_s"):
        assert len(report["svg"][key]["psnr"]) == 4
    # Best of S picks, per clip, the sample with the best mean SSIM: never worse than one sample on average.
    assert np.mean(report["svg"]["best_of_s"]["ssim"]) >= np.mean(report["svg"]["one_sample"]["ssim"]) - 1e-9
    assert len(report["copy_last"]["psnr"]) == len(report["deterministic"]["psnr"]) == 4
