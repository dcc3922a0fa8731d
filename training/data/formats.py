"""Which kind of dataset a path is, and its sequences. Detection looks at names and
folder structure only; nothing is decoded until the sequences are read."""

from __future__ import annotations

from pathlib import Path

from . import bags, bair, frame_folders, kitti, seed_images, videos
from .sequence import DataError, Sequence

CACHE = "cache"  # a preprocessed .npz of clips (python -m training.preprocess)
CACHE_SUFFIX = ".npz"
# Most specific layout first (a KITTI or BAIR root is also a folder of frame folders),
# cheap checks before the ones that walk the whole tree.
DETECTION_ORDER = (kitti, seed_images, bair, bags, videos, frame_folders)
FORMATS = (CACHE, *(m.NAME for m in DETECTION_ORDER))


def detect_format(path: Path) -> str:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file() and path.suffix == CACHE_SUFFIX:
        return CACHE
    for module in DETECTION_ORDER:
        if module.matches(path):
            return module.NAME
    raise DataError(
        f"{path}: not a dataset this trainer reads (a video file or folder of them, a ROS bag, a folder of "
        f"image folders, a KITTI raw or BAIR root, or a {CACHE_SUFFIX} cache); set data.format to force one of {', '.join(FORMATS)}"
    )


def resolve_format(path: Path, requested: str) -> str:
    """``requested`` ("auto" or one of FORMATS) checked against the path."""
    if requested == "auto":
        return detect_format(path)
    if requested not in FORMATS:
        raise DataError(f"data.format {requested!r} is not one of auto, {', '.join(FORMATS)}")
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    return requested


def find_sequences(path: Path, kind: str, topic: str = "") -> list[Sequence]:
    """The sequences of a dataset of kind ``kind`` (not the cache, which holds clips)."""
    if kind == bags.NAME:
        return bags.find_sequences(path, topic)
    modules = {m.NAME: m for m in DETECTION_ORDER}
    if kind not in modules:
        raise DataError(f"{path}: {kind!r} data has no sequences to read")
    return modules[kind].find_sequences(path)
