"""The seed projects' layout: ``<root>/images/train/<video>/frameN.png`` (and
``images/test``, which is for evaluation and never read)."""

from __future__ import annotations

from pathlib import Path

from .frame_folders import has_image_folder, split_sequences
from .sequence import DataError, Sequence

NAME = "seed_images"
TRAIN_SPLIT = Path("images") / "train"


def matches(path: Path) -> bool:
    return (path / TRAIN_SPLIT).is_dir() and has_image_folder(path / TRAIN_SPLIT)


def find_sequences(path: Path) -> list[Sequence]:
    if not matches(path):
        raise DataError(f"{path}: no images/train/<video>/ frame folders (seed layout)")
    return split_sequences(path, TRAIN_SPLIT)
