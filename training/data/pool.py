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
    def __init__(self, clips: np.ndarray, seed: int = 0, augment: bool = True, patch: int = 0) -> None:
        """patch > 0: each batch is cut to random patch x patch crops (the paper trains on
        32x32 patches; the network is fully convolutional, so it runs on full frames later)."""
        if clips.ndim != 5 or clips.dtype != np.uint8:
            raise ValueError(f"expected uint8 clips (M, T, H, W, C), got {clips.dtype} {clips.shape}")
        self.clips = torch.from_numpy(clips)
        self.seed = seed
        self.augment = augment
        self.patch = patch
        if patch and (patch > clips.shape[2] or patch > clips.shape[3]):
            raise ValueError(f"patch {patch} is larger than the clips ({clips.shape[2]}x{clips.shape[3]})")

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
                if self.patch:
                    batch = self._crop(batch, gen)
                yield batch
                step += 1


    def _crop(self, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        h, w, p = batch.shape[2], batch.shape[3], self.patch
        tops = torch.randint(0, h - p + 1, (len(batch),), generator=gen).tolist()
        lefts = torch.randint(0, w - p + 1, (len(batch),), generator=gen).tolist()
        return torch.stack([clip[:, t : t + p, l : l + p] for clip, t, l in zip(batch, tops, lefts)])


def synthetic_clips(count: int, config: SyntheticConfig, seed: int, cache_dir: Path | None) -> np.ndarray:
    """Render ``count`` clips (or load them from the cache keyed by config and seed)."""
    key = hashlib.sha1(json.dumps({"config": config.to_dict(), "seed": seed, "count": count}, sort_keys=True).encode()).hexdigest()[:12]
    cache = cache_dir / f"synthetic-{key}.npy" if cache_dir else None
    if cache is not None and cache.is_file():
        return np.load(cache)
    dataset = SyntheticVideoDataset(count, config, seed)
    clips = np.stack([dataset[i].numpy() for i in tqdm(range(count), desc="rendering synthetic clips", leave=False, disable=None)])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, clips)
        tmp.replace(cache)
    return clips
