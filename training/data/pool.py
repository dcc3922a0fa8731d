"""An in-memory pool of uint8 clips with a resumable, seeded batch order.

The synthetic pool is rendered once and cached as .npy, so an epoch never renders or
decodes again. ``batches(start_step)`` reproduces the exact order after a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from training.data.synthetic import SyntheticConfig, SyntheticVideoDataset

log = logging.getLogger(__name__)


class ClipPool:
    def __init__(self, clips: np.ndarray, seed: int = 0, augment: bool = True) -> None:
        if clips.ndim != 5 or clips.dtype != np.uint8:
            raise ValueError(f"expected uint8 clips (M, T, H, W, C), got {clips.dtype} {clips.shape}")
        self.clips = torch.from_numpy(clips)
        self.seed = seed
        self.augment = augment

    def __len__(self) -> int:
        return len(self.clips)

    def batches(self, batch_size: int, start_step: int = 0) -> Iterator[torch.Tensor]:
        """Endless batches; step s of the stream is the same whatever step we resumed at."""
        per_epoch = max(1, len(self) // batch_size)
        step = start_step
        while True:
            epoch, offset = divmod(step, per_epoch)
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(len(self), generator=gen)
            flips = torch.rand(len(self), generator=gen) < 0.5
            reverse = torch.rand(len(self), generator=gen) < 0.5
            for i in range(offset, per_epoch):
                idx = order[i * batch_size : (i + 1) * batch_size]
                batch = self.clips[idx]
                if self.augment:  # mirrored and time-reversed motion is motion too
                    batch = torch.where(flips[idx, None, None, None, None], batch.flip(3), batch)
                    batch = torch.where(reverse[idx, None, None, None, None], batch.flip(1), batch)
                yield batch
                step += 1


def synthetic_clips(count: int, config: SyntheticConfig, seed: int, cache_dir: Path | None) -> np.ndarray:
    """Render ``count`` clips (or load them from the cache keyed by config and seed)."""
    key = hashlib.sha1(json.dumps({"config": config.to_dict(), "seed": seed, "count": count}, sort_keys=True).encode()).hexdigest()[:12]
    cache = cache_dir / f"synthetic-{key}.npy" if cache_dir else None
    if cache is not None and cache.is_file():
        return np.load(cache)
    dataset = SyntheticVideoDataset(count, config, seed)
    clips = np.stack([dataset[i].numpy() for i in tqdm(range(count), desc="rendering synthetic clips", leave=False)])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, clips)
        tmp.replace(cache)
    return clips
