"""BAIR robot pushing as the SVG-LP code prepares it: ``<root>/train/<traj>/<n>.png``,
possibly one level deeper (``train/traj_0_to_255/<traj>/<n>.png``), or the same under
``<root>/processed_data/``. Only the train split is read; test is for evaluation."""

from __future__ import annotations

from pathlib import Path

from .frame_folders import has_image_folder, split_sequences
from .sequence import DataError, Sequence

NAME = "bair"
TRAIN_SPLITS = (Path("train"), Path("processed_data") / "train")


def train_split(root: Path) -> Path | None:
    return next((s for s in TRAIN_SPLITS if (root / s).is_dir() and has_image_folder(root / s)), None)


def matches(path: Path) -> bool:
    return path.is_dir() and train_split(path) is not None


def find_sequences(path: Path) -> list[Sequence]:
    split = train_split(path)
    if split is None:
        raise DataError(f"{path}: no train/<trajectory>/<n>.png folders (BAIR layout)")
    return split_sequences(path, split)
