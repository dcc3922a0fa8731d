"""An in-memory pool of uint8 clips with a resumable, seeded batch order.

The synthetic pool is rendered once and cached as .npy, so an epoch never renders or
decodes again. ``batches(start_step)`` reproduces the exact order after a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from .patches import moving_patch_offsets
from .synthetic import SyntheticConfig, SyntheticVideoDataset
from .textures import photo_fingerprint

log = logging.getLogger(__name__)


class ClipPool:
    def __init__(
        self,
        clips: np.ndarray,
        seed: int = 0,
        augment: bool = True,
        patch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        patch_motion_threshold: float = 0.0,
    ) -> None:
        """patch > 0: each batch is cut to random patch x patch crops (the paper trains on
        32x32 patches; the network is fully convolutional, so it runs on full frames later).
        rank/world_size: distributed training; every rank follows the same seeded order and
        takes its own disjoint batch of each step.
        patch_motion_threshold > 0: the paper's movement filter, cut patches only where the
        frames change by more than this many grey levels on average (training/data/patches.py)."""
        if clips.ndim != 5 or clips.dtype != np.uint8:
            raise ValueError(f"expected uint8 clips (M, T, H, W, C), got {clips.dtype} {clips.shape}")
        self.clips = torch.from_numpy(clips)
        self.seed = seed
        self.augment = augment
        self.patch = patch
        self.patch_motion_threshold = patch_motion_threshold
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.rank, self.world_size = rank, world_size
        if patch and (patch > clips.shape[2] or patch > clips.shape[3]):
            raise ValueError(f"patch {patch} is larger than the clips ({clips.shape[2]}x{clips.shape[3]})")

    def __len__(self) -> int:
        return len(self.clips)

    def batches(self, batch_size: int, start_step: int = 0) -> Iterator[torch.Tensor]:
        """Endless batches; step s of the stream is the same whatever step we resumed at."""
        span = batch_size * self.world_size  # one step's clips over all ranks
        if self.world_size > 1 and len(self) < span:  # ranks would get unequal batches
            raise ValueError(f"{len(self)} clips cannot fill a batch of {batch_size} on each of {self.world_size} processes")
        per_epoch = max(1, len(self) // span)
        step = start_step
        while True:
            epoch, offset = divmod(step, per_epoch)
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(len(self), generator=gen)
            flips = torch.rand(len(self), generator=gen) < 0.5
            reverse = torch.rand(len(self), generator=gen) < 0.5
            for i in range(offset, per_epoch):
                first = i * span + self.rank * batch_size
                idx = order[first : first + batch_size]
                batch = self.clips[idx]
                if self.augment:  # mirrored and time-reversed motion is motion too
                    batch = torch.where(flips[idx, None, None, None, None], batch.flip(3), batch)
                    batch = torch.where(reverse[idx, None, None, None, None], batch.flip(1), batch)
                if self.patch:  # crops drawn per step, so a resumed stream cuts the same ones
                    batch = self._crop(batch, torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 100_003 + i + 1))
                yield batch
                step += 1


    def _crop(self, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        h, w, p = batch.shape[2], batch.shape[3], self.patch
        if self.patch_motion_threshold > 0:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen)))
            tops, lefts, _ = moving_patch_offsets(batch.numpy(), p, self.patch_motion_threshold, rng)
            tops, lefts = tops.tolist(), lefts.tolist()
        else:
            tops = torch.randint(0, h - p + 1, (len(batch),), generator=gen).tolist()
            lefts = torch.randint(0, w - p + 1, (len(batch),), generator=gen).tolist()
        return torch.stack([clip[:, t : t + p, l : l + p] for clip, t, l in zip(batch, tops, lefts)])


def synthetic_clips(count: int, config: SyntheticConfig, seed: int, cache_dir: Path | None) -> np.ndarray:
    """Render ``count`` clips (or load them from the cache keyed by config and seed)."""
    identity = {"config": config.to_dict(), "seed": seed, "count": count, "photos": photo_fingerprint()}
    key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    cache = cache_dir / f"synthetic-{key}.npy" if cache_dir else None
    if cache is not None and cache.is_file():
        return np.load(cache)
    dataset = SyntheticVideoDataset(count, config, seed)
    clips = np.stack([dataset[i].numpy() for i in tqdm(range(count), desc="rendering synthetic clips", leave=False, disable=None)])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")  # ranks of one torchrun may render at once
        np.save(tmp, clips)
        tmp.replace(cache)
    return clips
