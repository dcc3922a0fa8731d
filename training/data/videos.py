"""Video files (anything OpenCV decodes: mp4, avi, mkv, ...): one sequence per file;
``--data`` is a video file or a folder of them. Frame times follow the declared rate."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from video_predictor.io.video import VideoError, video_fps, video_frames

from .sequence import DataError, RawFrame, Sequence

NAME = "video"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def video_files(path: Path) -> list[Path]:
    """``path`` itself, or the video files under a folder, sorted."""
    if path.is_file():
        return [path] if is_video(path) else []
    return sorted(p for p in path.rglob("*") if is_video(p)) if path.is_dir() else []


def matches(path: Path) -> bool:
    return bool(video_files(path))


def video_sequence(path: Path, name: str) -> Sequence:
    def read(every: int) -> Iterator[RawFrame]:
        try:
            fps: float | None = video_fps(path)
        except VideoError:
            fps = None  # no declared rate: frames carry no time; an unopenable file fails below
        for index, frame in enumerate(video_frames(path, fps or 1.0)):
            if index % every == 0:
                yield RawFrame(frame.stamp if fps else None, frame.image, f"{path} frame {index}")

    return Sequence(name, read)


def find_sequences(path: Path) -> list[Sequence]:
    files = video_files(path)
    if not files:
        raise DataError(f"{path}: no video file ({', '.join(VIDEO_SUFFIXES)})")
    return [video_sequence(f, f.name if f == path else f.relative_to(path).as_posix()) for f in files]
