"""Stochastic Moving MNIST: digits stay in the frame, a bounce redraws the velocity at
random (away from the wall), the data is reproducible by seed and selectable as data.source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.config import DataSection
from training.data import dataset
from training.data.moving_mnist import (
    MovingMNISTConfig,
    branched_clips,
    load_digits,
    moving_mnist_clips,
    render_clip,
    trajectory,
)
from training.data.sequence import DataError

CONFIG = MovingMNISTConfig(height=32, width=32, clip_length=30, digits=1, digit_size=12, max_speed=4)


def paths(config: MovingMNISTConfig, count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [trajectory(rng, config) for _ in range(count)]


def test_digits_stay_inside_the_frame():
    limit = np.array([CONFIG.height - CONFIG.digit_size, CONFIG.width - CONFIG.digit_size])
    for path in paths(CONFIG, 200):
        assert (path.positions >= 0).all() and (path.positions < limit).all()
    # Rendered: one digit keeps all of its ink in every frame (nothing cut off at a border).
    digits = load_digits("train", CONFIG.digit_size)
    frames, (path,) = render_clip(np.random.default_rng(1), CONFIG, digits)
    ink = frames.reshape(CONFIG.clip_length, -1).astype(np.int64).sum(axis=1)
    assert frames.shape == (30, 32, 32, 1) and frames.dtype == np.uint8
    assert ink.min() > 0 and (ink.max() - ink.min()) <= 0.01 * ink.max()


def test_velocity_is_constant_between_bounces_and_redrawn_at_random_at_a_bounce():
    m = CONFIG.max_speed
    after_top_bounce, sideways = set(), set()
    for path in paths(CONFIG, 300):
        v, p = path.velocities, path.positions
        for t in range(1, len(v)):
            if not path.bounced[t]:
                assert (v[t] == v[t - 1]).all()
                assert (p[t] == p[t - 1] + v[t - 1]).all()
            elif p[t][0] == 0 and p[t - 1][0] + v[t - 1][0] < 0 and p[t - 1][1] + v[t - 1][1] in range(0, 20):
                assert 1 <= v[t][0] <= m  # away from the top wall
                after_top_bounce.add(int(v[t][0]))
                sideways.add(int(v[t][1]))
    # New speeds and directions are random: many values, not a reflection of the old one.
    assert after_top_bounce == set(range(1, m + 1))
    assert len(sideways) >= 2 * m


def test_deterministic_variant_reflects_the_velocity():
    config = MovingMNISTConfig(height=32, width=32, clip_length=30, digits=1, digit_size=12, stochastic=False)
    reflected = 0
    for path in paths(config, 100):
        speeds = np.abs(path.velocities)
        assert (speeds == speeds[0]).all()  # speed per axis never changes
        reflected += int(path.bounced.sum())
    assert reflected > 0


def test_branched_futures_agree_until_the_first_bounce_and_spread_after_it():
    config = MovingMNISTConfig(height=32, width=32, clip_length=15, digits=1, digit_size=12, max_speed=4)
    observed = 5
    data = branched_clips(40, config, seed=5, observed=observed, branches=6)
    assert data.clips.shape == (40, 15, 32, 32, 1) and data.futures.shape == (40, 6, 10, 32, 32, 1)
    # The clips are the ones moving_mnist_clips draws for the seed (the branches use later draws).
    np.testing.assert_array_equal(data.clips[0], moving_mnist_clips(1, config, seed=5, split="val")[0])
    spread_after = 0
    for clip, futures, j in zip(data.clips, data.futures, data.first_bounce):
        settled = 10 if j < 0 else j + 1  # frames up to and including the wall hit are determined
        for future in futures:
            np.testing.assert_array_equal(future[:settled], clip[observed : observed + settled])
        if 0 <= j < 8:
            spread_after += int(any(not np.array_equal(futures[0, j + 2], f[j + 2]) for f in futures[1:]))
    assert (data.first_bounce >= 0).sum() >= 10 and spread_after >= 5
    deterministic = MovingMNISTConfig(height=32, width=32, clip_length=15, digits=1, digit_size=12, stochastic=False)
    data = branched_clips(10, deterministic, seed=5, observed=observed, branches=3)
    for clip, futures in zip(data.clips, data.futures):
        for future in futures:  # reflecting walls: one future only
            np.testing.assert_array_equal(future, clip[observed:])


def test_clips_are_reproducible_by_seed_and_use_held_out_digits_for_validation():
    config = MovingMNISTConfig(height=32, width=32, clip_length=6, digits=2, digit_size=12)
    a = moving_mnist_clips(5, config, seed=3)
    np.testing.assert_array_equal(a, moving_mnist_clips(5, config, seed=3))
    assert not np.array_equal(a, moving_mnist_clips(5, config, seed=4))
    assert a.shape == (5, 6, 32, 32, 1) and a.dtype == np.uint8
    train, val = load_digits("train", 8), load_digits("val", 8)
    assert len(train) + len(val) == 1797 and abs(len(train) - 0.8 * 1797) < 1
    with pytest.raises(ValueError, match="digits must be 1 or 2"):
        MovingMNISTConfig(digits=3)


def test_selected_as_data_source_smmnist():
    data = DataSection(source="smmnist", height=32, width=32, synthetic_clips=4, val_clips=2,
                       synthetic={"digit_size": 12, "digits": 1, "photo_probability": 0.9})  # the last: another preset's, ignored
    clip_set = dataset.load_clip_set(Path("smmnist"), data, 7, seed=0)
    assert clip_set.train.shape == (4, 7, 32, 32, 1) and clip_set.val.shape == (2, 7, 32, 32, 1)
    assert clip_set.frame_period is None and clip_set.summary["source"] == "smmnist"
    data.synthetic = {"digit_sise": 12}
    with pytest.raises(DataError, match="digit_sise"):
        dataset.load_clip_set(Path("smmnist"), data, 7, seed=0)
