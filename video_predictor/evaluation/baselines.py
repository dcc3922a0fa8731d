"""Classical predictors every model is compared against: copy the last frame here, and
the last frame's optical flow extrapolated (video_predictor.core.flow, which the
flow-anchored model also takes as input).

Both take (N, H, W, C) uint8 frames, oldest first (RGB, or grey with C = 1), and return
(K, H, W, C) uint8 predictions for 1..K frames ahead.
"""

from __future__ import annotations

import numpy as np

from video_predictor.core.flow import check_frames, check_horizon


def copy_last(frames: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed frame, repeated for every future step."""
    frames = check_frames(frames, 1)
    check_horizon(horizon)
    return np.repeat(frames[-1:], horizon, axis=0)


