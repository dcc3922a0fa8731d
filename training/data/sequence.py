"""One recorded sequence of camera frames, whatever file layout it came from.

Every dataset kind (frame folders, KITTI, BAIR, videos, bags) turns its files into
``Sequence`` objects; reading is lazy, so finding a dataset's sequences decodes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

import numpy as np


class DataError(ValueError):
    """Training data that cannot be used as asked; the message names the path and why."""


class RawFrame(NamedTuple):
    stamp: float | None  # seconds, where the source records time (video rate, bag stamps)
    image: np.ndarray | None  # RGB (H, W, 3) or grey (H, W, 1) uint8; None: unreadable
    label: str  # names the frame in warnings: a file path, or "<video> frame 12"


@dataclass(frozen=True)
class Sequence:
    name: str  # unique within a dataset; the unit of the train/validation split
    read: Callable[[int], Iterator[RawFrame]]  # read(every): every n-th frame, in order
