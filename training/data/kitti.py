"""KITTI raw: ``<root>/<date>/<date>_drive_<id>_sync/image_02/data/*.png``.

One sequence per drive, from the left colour camera (image_02; 00/01 are grey, 03 is
the right camera). Frame times come from ``image_02/timestamps.txt``, so the frame
period is measured and dropped frames split the sequence.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from .frame_folders import folder_sequence
from .sequence import DataError, Sequence

NAME = "kitti"
CAMERA = Path("image_02")
NOMINAL_PERIOD = 0.1  # KITTI raw cameras run at 10 Hz; used when timestamps.txt is missing
# The root may be the dataset, one date folder or one drive folder.
DRIVE_PATTERNS = ("*_drive_*_sync", "*/*_drive_*_sync")

log = logging.getLogger(__name__)


def drive_folders(root: Path) -> list[Path]:
    candidates = [root, *(p for pattern in DRIVE_PATTERNS for p in root.glob(pattern))]
    return sorted({p for p in candidates if (p / CAMERA / "data").is_dir()})


def matches(path: Path) -> bool:
    return path.is_dir() and bool(drive_folders(path))


def parse_timestamp(line: str) -> tuple[int, float]:
    """'2011-09-26 13:02:25.964389445' -> (day number, seconds into the day)."""
    day, clock = line.split()
    hours, minutes, seconds = clock.split(":")
    return datetime.date.fromisoformat(day).toordinal(), int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def read_timestamps(path: Path, count: int) -> list[float]:
    """Seconds from the drive's first frame; nominal 10 Hz where the file is missing or bad."""
    try:
        stamps = [parse_timestamp(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as error:
        log.warning("%s: %s; assuming KITTI's nominal %.0f Hz", path, error, 1 / NOMINAL_PERIOD)
        return [i * NOMINAL_PERIOD for i in range(count)]
    if not stamps:
        return []
    first_day, first_second = stamps[0]
    return [(day - first_day) * 86400.0 + (second - first_second) for day, second in stamps]  # exact to the ns


def find_sequences(path: Path) -> list[Sequence]:
    drives = drive_folders(path)
    if not drives:
        raise DataError(f"{path}: no KITTI drive folder (*_drive_*_sync/image_02/data) under it")
    sequences = []
    for drive in drives:
        data = drive / CAMERA / "data"
        count = sum(1 for _ in data.glob("*.png"))
        stamps = read_timestamps(drive / CAMERA / "timestamps.txt", count)
        name = drive.name if drive == path else drive.relative_to(path).as_posix()
        sequences.append(folder_sequence(data, name, stamps))
    return sequences
