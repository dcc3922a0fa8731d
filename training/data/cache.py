"""A dataset decoded once: train/validation clip arrays and the summary in one .npz
(``python -m training.preprocess``), which the trainer takes as ``--data``.
The summary is also written beside it as JSON for people to read."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .clips import ClipSet
from .sequence import DataError

CACHE_VERSION = 1


def summary_path(cache: Path) -> Path:
    return cache.with_suffix(".json")


def write_cache(path: Path, clip_set: ClipSet) -> None:
    """Write atomically: an interrupted run leaves no half-written cache behind."""
    summary = {**clip_set.summary, "cache_version": CACHE_VERSION}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
        np.savez(f, train=clip_set.train, val=clip_set.val, summary=np.array(json.dumps(summary)))
    tmp.replace(path)
    summary_path(path).write_text(json.dumps(summary, indent=2) + "\n")


def read_cache(path: Path, height: int, width: int, clip_length: int) -> ClipSet:
    """The cached clips, cut to ``clip_length``; a cache made for another resolution or
    for shorter clips is an error that says how to rebuild it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            train, val, summary = data["train"], data["val"], json.loads(str(data["summary"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable clip cache ({error}); rebuild it with python -m training.preprocess") from None
    rebuild = "rebuild it with python -m training.preprocess and the same --set data.* options as training"
    for name, clips in (("train", train), ("val", val)):
        if clips.ndim != 5 or clips.dtype != np.uint8 or clips.shape[4] != 3:
            raise DataError(f"{path}: {name} clips are {clips.dtype} {clips.shape}, not uint8 (M, T, H, W, 3); {rebuild}")
        if clips.shape[2:4] != (height, width):
            raise DataError(f"{path}: clips are {clips.shape[2]}x{clips.shape[3]}, training wants {height}x{width}; {rebuild}")
        if clips.shape[1] < clip_length:
            raise DataError(f"{path}: clips have {clips.shape[1]} frames, training needs {clip_length}; {rebuild}")
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"{path}: the cache holds {len(train)} training and {len(val)} validation clips; {rebuild}")
    period = summary.get("frame_period") if summary.get("frame_period_measured") else None
    return ClipSet(np.ascontiguousarray(train[:, :clip_length]), np.ascontiguousarray(val[:, :clip_length]), period, summary)
