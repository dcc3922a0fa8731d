"""One sequence -> runs of model-resolution RGB frames with no hole and no time jump.

An unreadable frame, a stamp going backwards or a gap of more than MAX_GAP_PERIODS
typical periods (a dropped frame) ends a run, so no training clip spans one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from video_predictor.core.preprocess import fit_to_model

from .sequence import RawFrame, Sequence

MAX_GAP_PERIODS = 1.5  # as the node's frame buffer: a longer step means frames are missing


@dataclass
class DecodedSequence:
    name: str
    runs: list[np.ndarray]  # each (n, H, W, 3) uint8 RGB, consecutive kept frames
    period: float | None  # measured seconds between kept frames; None: the source has no times
    bad_frames: list[str] = field(default_factory=list)  # labels of unreadable frames

    @property
    def frame_count(self) -> int:
        return sum(len(run) for run in self.runs)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Grey (H, W) or (H, W, 1) and RGBA become RGB; RGB passes through."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def measured_period(pieces: list[list[RawFrame]]) -> float | None:
    """Median step between consecutive stamps, or None when most steps are not forward
    (no stamps, or a driver that stamps every frame alike)."""
    steps = np.array([b.stamp - a.stamp for piece in pieces for a, b in zip(piece, piece[1:]) if a.stamp is not None and b.stamp is not None])
    if len(steps) == 0 or np.mean(steps > 0) < 0.5:
        return None
    return float(np.median(steps[steps > 0]))


def split_at_time_jumps(piece: list[RawFrame], period: float) -> list[list[RawFrame]]:
    runs = [[piece[0]]] if piece else []
    for previous, frame in zip(piece, piece[1:]):
        step = frame.stamp - previous.stamp
        if not 0 < step <= MAX_GAP_PERIODS * period:
            runs.append([])
        runs[-1].append(frame)
    return runs


def decode_sequence(sequence: Sequence, height: int, width: int, every: int) -> DecodedSequence:
    """Every ``every``-th frame, centre-cropped and area-resized to height x width.
    Whole-sequence failures (an unopenable file, a bad bag) raise to the caller."""
    pieces: list[list[RawFrame]] = [[]]
    bad: list[str] = []
    for raw in sequence.read(every):
        if raw.image is None:
            bad.append(raw.label)
            pieces.append([])
            continue
        pieces[-1].append(raw._replace(image=fit_to_model(to_rgb(raw.image), height, width)))
    period = measured_period(pieces)
    if period is not None:
        pieces = [run for piece in pieces for run in split_at_time_jumps(piece, period)]
    runs = [np.stack([f.image for f in piece]) for piece in pieces if piece]
    return DecodedSequence(sequence.name, runs, period, bad)
