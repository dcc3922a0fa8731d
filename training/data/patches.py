"""The paper's movement filter for training patches (Mathieu, Couprie & LeCun 2015):
cut patch x patch crops only where the frames change, so that a batch is not mostly
static background that teaches nothing but copying.

Motion of a patch position = mean absolute difference between consecutive frames inside
it, in grey levels (0-255), averaged over the clip's frames and channels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CHUNK = 256  # clips per step: bounds the float32 working copy


class PatchOffsets(NamedTuple):
    tops: np.ndarray  # (M,) int, row of each clip's patch
    lefts: np.ndarray  # (M,) int
    moving: np.ndarray  # (M,) bool; False: no position passed the threshold, so a random one


def frame_difference(clips: np.ndarray) -> np.ndarray:
    """(M, H, W) float32: mean |frame[t+1] - frame[t]| over time and channels."""
    out = np.empty(clips.shape[:1] + clips.shape[2:4], np.float32)
    for i in range(0, len(clips), CHUNK):
        chunk = clips[i : i + CHUNK].astype(np.float32)
        out[i : i + CHUNK] = np.abs(np.diff(chunk, axis=1)).mean(axis=(1, 4))
    return out


def patch_motion_scores(clips: np.ndarray, patch: int) -> np.ndarray:
    """(M, H - patch + 1, W - patch + 1): the motion of every patch position of every
    clip (uint8 (M, T, H, W, C), T >= 2), by box sums over an integral image."""
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[1] < 2:
        raise ValueError(f"expected clips (M, T >= 2, H, W, C), got {clips.shape}")
    if not 0 < patch <= min(clips.shape[2:4]):
        raise ValueError(f"patch {patch} does not fit clips of {clips.shape[2]}x{clips.shape[3]}")
    diff = frame_difference(clips).astype(np.float64)
    integral = np.pad(diff.cumsum(axis=1).cumsum(axis=2), ((0, 0), (1, 0), (1, 0)))
    p = patch
    sums = integral[:, p:, p:] - integral[:, :-p, p:] - integral[:, p:, :-p] + integral[:, :-p, :-p]
    return (sums / (p * p)).astype(np.float32)


def offsets_above(scores: np.ndarray, threshold: float, rng: np.random.Generator) -> PatchOffsets:
    """Per clip, a uniformly random patch position whose motion exceeds ``threshold``,
    or any position where none does (a still clip still teaches copying)."""
    allowed = scores > threshold
    moving = allowed.any(axis=(1, 2))
    keys = rng.random(scores.shape)
    keys[~allowed & moving[:, None, None]] = -1.0  # never pick a still position of a moving clip
    flat = keys.reshape(len(keys), -1).argmax(axis=1)
    tops, lefts = np.unravel_index(flat, scores.shape[1:])
    return PatchOffsets(tops, lefts, moving)


def moving_patch_offsets(clips: np.ndarray, patch: int, threshold: float, rng: np.random.Generator) -> PatchOffsets:
    """Where to cut each clip's patch x patch training crop: ``clips[i, :, t:t+patch, l:l+patch]``
    with (t, l) = (tops[i], lefts[i])."""
    return offsets_above(patch_motion_scores(clips, patch), threshold, rng)
