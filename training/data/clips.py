"""Training clips from decoded sequences, and the train/validation split by sequence.

Clips are windows of ``length`` consecutive frames inside one run, ``stride`` frames
apart; they are indexed first and gathered last, so a capped subset costs no more
memory than it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .decode import DecodedSequence


@dataclass
class ClipSet:
    train: np.ndarray  # (M, T, H, W, 3) uint8 RGB
    val: np.ndarray  # clips of other sequences than train's
    frame_period: float | None  # measured seconds between training frames; None: data without times
    summary: dict[str, Any]  # what was read, split and skipped (JSON-serialisable)


class ClipRef(NamedTuple):
    sequence: int  # index into the list of decoded sequences
    run: int
    start: int


def clip_refs(sequences: list[DecodedSequence], length: int, stride: int) -> list[ClipRef]:
    return [
        ClipRef(s, r, start)
        for s, seq in enumerate(sequences)
        for r, run in enumerate(seq.runs)
        for start in range(0, len(run) - length + 1, stride)
    ]


def gather(sequences: list[DecodedSequence], refs: list[ClipRef], length: int, height: int, width: int) -> np.ndarray:
    """(len(refs), length, H, W, 3) uint8."""
    clips = np.empty((len(refs), length, height, width, 3), np.uint8)
    for i, (s, r, start) in enumerate(refs):
        clips[i] = sequences[s].runs[r][start : start + length]
    return clips


def subset(refs: list[ClipRef], limit: int, rng: np.random.Generator) -> list[ClipRef]:
    """At most ``limit`` refs (0 = all), drawn at random but kept in dataset order."""
    if limit <= 0 or len(refs) <= limit:
        return refs
    keep = np.sort(rng.choice(len(refs), limit, replace=False))
    return [refs[i] for i in keep]


def split_names(names: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Sequences for training and for validation: a seeded shuffle of the sorted names,
    at least one of each when there are two or more, so no clip of a validation
    sequence is ever trained on."""
    ordered = sorted(names)
    if len(ordered) < 2:
        return ordered, []
    count = min(len(ordered) - 1, max(1, round(val_fraction * len(ordered))))
    shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    val = set(shuffled[:count])
    return [n for n in ordered if n not in val], [n for n in ordered if n in val]


def split_in_time(sequence: DecodedSequence, val_fraction: float, length: int) -> tuple[DecodedSequence, DecodedSequence]:
    """A lone sequence's head for training and its last ``val_fraction`` (at least one
    clip's ``length``) for validation; the cut ends runs, so no clip spans it."""
    cut = min(round(sequence.frame_count * (1 - val_fraction)), sequence.frame_count - length)
    head: list[np.ndarray] = []
    tail: list[np.ndarray] = []
    seen = 0
    for run in sequence.runs:
        inside = min(max(cut - seen, 0), len(run))
        head += [run[:inside]] if inside else []
        tail += [run[inside:]] if inside < len(run) else []
        seen += len(run)
    return (
        DecodedSequence(f"{sequence.name} (frames before {cut})", head, sequence.period),
        DecodedSequence(f"{sequence.name} (frames from {cut})", tail, sequence.period),
    )
