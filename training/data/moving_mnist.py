"""Stochastic Moving MNIST (Denton & Fergus 2018) as built-in data: ``data.source=smmnist``.

One or two grey digits bounce around a 64x64 frame. Between bounces a digit moves at a
constant integer velocity; when it hits a wall it gets a random new velocity pointing away
from that wall (the SM-MNIST rule of the authors' generator), so the future after a bounce
is genuinely uncertain and its distribution is known: per axis, the new speed away from the
wall is uniform on 1..max_speed and the other component uniform on -max_speed..max_speed.
``stochastic=False`` gives the classic deterministic Moving MNIST (velocity reflected).

MNIST itself is not downloaded: the digits are scikit-learn's 8x8 digits (1797 images,
shipped with the package), upscaled to ``digit_size``. Training and validation clips use
disjoint digit images (a fixed 80/20 split of the 1797), as the paper's test set uses
MNIST's test digits.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, NamedTuple

import cv2
import numpy as np

from .clips import ClipSet
from .sequence import DataError
from .synthetic import SyntheticConfig

log = logging.getLogger(__name__)

SOURCE = "smmnist"  # the data.source value that selects this data
TRAIN_DIGIT_FRACTION = 0.8
_DIGIT_SPLIT_SEED = 0


@dataclass
class MovingMNISTConfig:
    height: int = 64
    width: int = 64
    clip_length: int = 15  # n_past + n_future: 5 + 10 in the paper
    digits: int = 2  # per clip: 1 or 2
    digit_size: int = 32  # the authors' generator scales MNIST digits to 32x32
    max_speed: int = 4  # pixels per frame per axis
    stochastic: bool = True  # False: reflect the velocity at a wall (deterministic Moving MNIST)

    def __post_init__(self) -> None:
        if self.digits not in (1, 2):
            raise ValueError(f"smmnist: digits must be 1 or 2, got {self.digits}")
        if not 8 <= self.digit_size < min(self.height, self.width):
            raise ValueError(f"smmnist: digit_size must be >= 8 and smaller than the frame, got {self.digit_size} in {self.height}x{self.width}")
        if self.max_speed < 1 or self.clip_length < 1:
            raise ValueError(f"smmnist: need max_speed >= 1 and clip_length >= 1, got {self.max_speed}, {self.clip_length}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trajectory(NamedTuple):
    positions: np.ndarray  # (T, 2) int (row, col) of the digit's top-left corner, as drawn
    velocities: np.ndarray  # (T, 2) int (d_row, d_col) applied after frame t is drawn
    bounced: np.ndarray  # (T,) bool: a wall was hit (and the velocity redrawn) before frame t was drawn


def load_digits(split: str, size: int) -> np.ndarray:
    """scikit-learn's digits of one split ("train" or "val"), as float32 (M, size, size) in [0, 1]."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be train or val, got {split!r}")
    from sklearn.datasets import load_digits as sklearn_digits  # bundled with scikit-learn, no download

    images = sklearn_digits().images.astype(np.float32) / 16.0
    order = np.random.default_rng(_DIGIT_SPLIT_SEED).permutation(len(images))
    cut = int(TRAIN_DIGIT_FRACTION * len(images))
    chosen = images[order[:cut] if split == "train" else order[cut:]]
    # Cubic up-sampling smooths the 8x8 blocks into strokes; clip its overshoot.
    return np.stack([np.clip(cv2.resize(d, (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0) for d in chosen])


def trajectory(rng: np.random.Generator, config: MovingMNISTConfig) -> Trajectory:
    """One digit's path, following the authors' generator: draw at the position, then move;
    a position past a wall is put back at the wall and the velocity redrawn (pointing away
    from it) or, for deterministic Moving MNIST, reflected."""
    m = config.max_speed
    limit = (config.height - config.digit_size, config.width - config.digit_size)  # top-left corner in [0, limit - 1]
    pos = [int(rng.integers(0, limit[0])), int(rng.integers(0, limit[1]))]
    vel = [int(rng.integers(-m, m + 1)), int(rng.integers(-m, m + 1))]
    return _walk(rng, config, pos, vel, config.clip_length)


def branch(rng: np.random.Generator, config: MovingMNISTConfig, path: Trajectory, observed: int, steps: int) -> Trajectory:
    """Another draw of the ``steps`` frames after the first ``observed`` of ``path``: the same
    state (position and velocity), fresh random bounces. Until the first wall the motion is
    determined, so every branch agrees there; after it the branches are the true spread."""
    if not 1 <= observed <= len(path.positions):
        raise ValueError(f"observed must be in 1..{len(path.positions)}, got {observed}")
    pos, vel = path.positions[observed - 1], path.velocities[observed - 1]
    return _walk(rng, config, [int(pos[0] + vel[0]), int(pos[1] + vel[1])], [int(vel[0]), int(vel[1])], steps)


def _walk(rng: np.random.Generator, config: MovingMNISTConfig, pos: list[int], vel: list[int], steps: int) -> Trajectory:
    m = config.max_speed
    limit = (config.height - config.digit_size, config.width - config.digit_size)
    positions, velocities, bounced = [], [], []
    for _ in range(steps):
        hit = False
        for axis in (0, 1):
            other = 1 - axis
            if pos[axis] < 0 or pos[axis] >= limit[axis]:
                low_wall = pos[axis] < 0
                pos[axis] = 0 if low_wall else limit[axis] - 1
                hit = True
                if config.stochastic:
                    vel[axis] = int(rng.integers(1, m + 1)) if low_wall else int(rng.integers(-m, 0))
                    vel[other] = int(rng.integers(-m, m + 1))
                else:
                    vel[axis] = -vel[axis]
        positions.append(tuple(pos))
        velocities.append(tuple(vel))
        bounced.append(hit)
        pos = [pos[0] + vel[0], pos[1] + vel[1]]
    return Trajectory(np.array(positions), np.array(velocities), np.array(bounced))


def draw(config: MovingMNISTConfig, images: list[np.ndarray], paths: list[Trajectory]) -> np.ndarray:
    """Frames (T, H, W, 1) uint8 of digit ``images[i]`` along ``paths[i]`` (overlaps add up,
    saturating at white); T is the paths' length."""
    length = len(paths[0].positions)
    canvas = np.zeros((length, config.height, config.width), np.float32)
    s = config.digit_size
    for digit, path in zip(images, paths):
        for t, (r, c) in enumerate(path.positions):
            canvas[t, r : r + s, c : c + s] += digit
    return np.rint(np.clip(canvas, 0.0, 1.0) * 255.0).astype(np.uint8)[..., None]


def _choose(rng: np.random.Generator, config: MovingMNISTConfig, digits: np.ndarray) -> tuple[list[np.ndarray], list[Trajectory]]:
    images, paths = [], []
    for _ in range(config.digits):
        images.append(digits[int(rng.integers(0, len(digits)))])
        paths.append(trajectory(rng, config))
    return images, paths


def render_clip(rng: np.random.Generator, config: MovingMNISTConfig, digits: np.ndarray) -> tuple[np.ndarray, list[Trajectory]]:
    """One clip (T, H, W, 1) uint8 of ``config.digits`` digits drawn from ``digits``, and each digit's trajectory."""
    images, paths = _choose(rng, config, digits)
    return draw(config, images, paths), paths


class BranchedClips(NamedTuple):
    clips: np.ndarray  # (M, T, H, W, 1) uint8
    futures: np.ndarray  # (M, R, T - observed, H, W, 1) uint8: R true futures of each clip's observed frames
    first_bounce: np.ndarray  # (M,) int: future step (0-based) of the first wall hit, -1 when none within the clip


def branched_clips(count: int, config: MovingMNISTConfig, seed: int, observed: int, branches: int, split: str = "val") -> BranchedClips:
    """Clips as ``moving_mnist_clips`` draws them, each with ``branches`` other true futures
    after its first ``observed`` frames: samples of the distribution a predictor should match."""
    digits = load_digits(split, config.digit_size)
    rng = np.random.default_rng(seed)
    steps = config.clip_length - observed
    clips, futures, first = [], [], []
    for _ in range(count):
        images, paths = _choose(rng, config, digits)
        clips.append(draw(config, images, paths))
        futures.append(np.stack([draw(config, images, [branch(rng, config, p, observed, steps) for p in paths])
                                 for _ in range(branches)]))
        hits = np.flatnonzero(np.any([p.bounced[observed:] for p in paths], axis=0))
        first.append(int(hits[0]) if len(hits) else -1)
    return BranchedClips(np.stack(clips), np.stack(futures), np.array(first))


def moving_mnist_clips(count: int, config: MovingMNISTConfig, seed: int, split: str = "train") -> np.ndarray:
    """``count`` clips (count, T, H, W, 1) uint8 with the digits of ``split``; the same for the same seed."""
    if count < 1:
        raise ValueError(f"smmnist: need at least one clip, got {count}")
    digits = load_digits(split, config.digit_size)
    rng = np.random.default_rng(seed)
    return np.stack([render_clip(rng, config, digits)[0] for _ in range(count)])


def config_from_overrides(overrides: Mapping[str, Any], height: int, width: int, clip_length: int) -> MovingMNISTConfig:
    """MovingMNISTConfig from ``data.synthetic``: its own keys are used; keys of the synthetic
    video's config (another preset's) are ignored with a warning; any other key is an error."""
    own = {f.name for f in fields(MovingMNISTConfig)} - {"height", "width", "clip_length"}
    video = {f.name for f in fields(SyntheticConfig)}
    unknown = set(overrides) - own - video
    if unknown:
        raise ValueError(f"data.synthetic for smmnist: unknown keys {', '.join(sorted(unknown))}; known: {', '.join(sorted(own))}")
    ignored = (set(overrides) - own) & video
    if ignored:
        log.warning("smmnist: ignoring data.synthetic keys of the synthetic video: %s", ", ".join(sorted(ignored)))
    return MovingMNISTConfig(height=height, width=width, clip_length=clip_length, **{k: v for k, v in overrides.items() if k in own})


def load_clip_set(data: Any, length: int, seed: int) -> ClipSet:
    """Training and validation clips for ``data.source=smmnist`` (``data`` a DataSection):
    data.synthetic_clips training clips and data.val_clips validation clips with held-out
    digits, at data.height x data.width, grey; data.synthetic overrides MovingMNISTConfig."""
    try:
        config = config_from_overrides(dict(data.synthetic), data.height, data.width, length)
    except ValueError as error:
        raise DataError(str(error)) from None
    train = moving_mnist_clips(int(data.synthetic_clips), config, seed, "train")
    val = moving_mnist_clips(int(data.val_clips), config, seed + 10_000, "val")
    log.info("smmnist: %d training and %d validation clips of %d frames (%d digit(s), %s)", len(train), len(val), length,
             config.digits, "stochastic bounces" if config.stochastic else "reflecting walls")
    summary = {"source": SOURCE, "config": config.to_dict(), "seed": seed, "clips": {"train": len(train), "val": len(val)}}
    return ClipSet(train, val, None, summary)
