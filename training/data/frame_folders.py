"""A folder of numbered image files is one sequence; a folder of such folders (at any
depth) is a dataset of them. Also the building block of the KITTI, BAIR and seed layouts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator
from typing import Sequence as Seq

import cv2
import numpy as np

from video_predictor.io.video import IMAGE_SUFFIXES, frame_files

from .sequence import DataError, RawFrame, Sequence

NAME = "frames"


def image_folders(root: Path) -> list[Path]:
    """Every folder under ``root`` (itself included) that directly holds image files, sorted."""
    found = [Path(d) for d, _, files in os.walk(root) if any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files)]
    return sorted(found)


def has_image_folder(root: Path) -> bool:
    """Whether ``image_folders(root)`` is non-empty; stops at the first one found."""
    return any(any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files) for _, _, files in os.walk(root))


def matches(path: Path) -> bool:
    return path.is_dir() and has_image_folder(path)


def read_image(path: Path) -> np.ndarray | None:
    """RGB uint8, or None when the file is not a readable image (truncated, not an image)."""
    try:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def folder_sequence(folder: Path, name: str, stamps: Seq[float] | None = None) -> Sequence:
    """The folder's images in natural name order; ``stamps`` (one per file) where known."""

    def read(every: int) -> Iterator[RawFrame]:
        files = frame_files(folder)
        if stamps is not None and len(stamps) != len(files):
            raise DataError(f"{folder}: {len(files)} images but {len(stamps)} timestamps")
        for index in range(0, len(files), every):
            stamp = None if stamps is None else stamps[index]
            yield RawFrame(stamp, read_image(files[index]), str(files[index]))

    return Sequence(name, read)


def folder_sequences(root: Path, folders: list[Path]) -> list[Sequence]:
    """One sequence per folder, named by its path relative to ``root``."""
    return [folder_sequence(f, f.name if f == root else f.relative_to(root).as_posix()) for f in folders]


def find_sequences(path: Path) -> list[Sequence]:
    folders = image_folders(path)
    if not folders:
        raise DataError(f"{path}: no folder of {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images under it")
    return folder_sequences(path, folders)


def split_sequences(root: Path, split: Path) -> list[Sequence]:
    """The sequences of a dataset's training split ``root/split`` (test splits are for
    evaluation and never read), named by their path relative to ``root``."""
    folders = image_folders(root / split)
    if not folders:
        raise DataError(f"{root / split}: no folder of images under it")
    return folder_sequences(root, folders)
