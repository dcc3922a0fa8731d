"""Real recordings -> training and validation clips: find the sequences, decode them,
skip what cannot be used (and say why), split by sequence, cut clips."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..config import DataSection, TrainConfig
from . import moving_mnist
from .cache import read_cache
from .clips import ClipSet, clip_refs, gather, split_in_time, split_names, subset
from .decode import DecodedSequence, decode_sequence
from .formats import CACHE, find_sequences, resolve_format
from .sequence import DataError, Sequence

log = logging.getLogger(__name__)
LISTED_FRAMES = 5  # unreadable frames named per sequence in the log
SUMMARY_FRAMES = 50  # and in the summary
PERIOD_SPREAD = 1.1  # sequences whose periods differ more than this ratio get a warning


def clip_length(config: TrainConfig) -> int:
    """Frames per training clip: the inputs plus the longest horizon trained or exported."""
    return config.data.input_frames + max(config.data.rollout, config.export_horizon)


def check_options(data: DataSection) -> None:
    if data.frame_interval < 1:
        raise DataError(f"data.frame_interval must be >= 1, got {data.frame_interval}")
    if data.clip_stride < 1:
        raise DataError(f"data.clip_stride must be >= 1, got {data.clip_stride}")
    if not 0 < data.val_fraction < 1:
        raise DataError(f"data.val_fraction must be between 0 and 1, got {data.val_fraction}")


def decode_all(sequences: list[Sequence], data: DataSection, length: int) -> tuple[list[DecodedSequence], dict[str, str], list[str]]:
    """The sequences long enough for a clip; the others' reasons; unreadable frame labels."""
    usable, skipped, bad_frames = [], {}, []
    for sequence in tqdm(sequences, desc="decoding sequences", unit="seq", leave=False, disable=None):
        try:
            decoded = decode_sequence(sequence, data.height, data.width, data.frame_interval)
        except (ValueError, OSError, cv2.error) as error:  # DataError, VideoError and BagError are ValueErrors
            skipped[sequence.name] = f"unreadable: {error}"
            log.warning("skipping sequence %s: %s", sequence.name, skipped[sequence.name])
            continue
        if decoded.bad_frames:
            bad_frames += decoded.bad_frames
            more = len(decoded.bad_frames) - LISTED_FRAMES
            log.warning("%s: skipped %d unreadable frames: %s%s", sequence.name, len(decoded.bad_frames),
                        ", ".join(decoded.bad_frames[:LISTED_FRAMES]), f" and {more} more" if more > 0 else "")
        longest = max((len(run) for run in decoded.runs), default=0)
        if longest < length:
            skipped[sequence.name] = (f"too short: {decoded.frame_count} usable frames, longest unbroken run {longest}, "
                                      f"a clip needs {length} (data.frame_interval {data.frame_interval})")
            log.warning("skipping sequence %s: %s", sequence.name, skipped[sequence.name])
            continue
        usable.append(decoded)
    return usable, skipped, bad_frames


def combined_period(sequences: list[DecodedSequence]) -> float | None:
    measured = [s.period for s in sequences if s.period is not None]
    if not measured:
        return None
    if max(measured) > PERIOD_SPREAD * min(measured):
        log.warning("sequences differ in frame period (%.4f to %.4f s); the model file gets the median", min(measured), max(measured))
    return float(np.median(measured))


def split(usable: list[DecodedSequence], data: DataSection, length: int, seed: int) -> tuple[list[DecodedSequence], list[DecodedSequence]]:
    if len(usable) == 1:
        head, tail = split_in_time(usable[0], data.val_fraction, length)
        log.warning("only one usable sequence: training on %s, validating on %s", head.name, tail.name)
        return [head], [tail]
    train_names, val_names = split_names([s.name for s in usable], data.val_fraction, seed)
    by_name = {s.name: s for s in usable}
    return [by_name[n] for n in train_names], [by_name[n] for n in val_names]


def load_clip_set(path: Path, data: DataSection, length: int, seed: int) -> ClipSet:
    """Train and validation clips of ``length`` frames from the dataset at ``path``
    (any kind in training.data.formats, or a clip cache). Raises DataError, naming the
    path and the reason, when nothing usable is left. ``smmnist`` (not a path): the
    built-in Stochastic Moving MNIST (training/data/moving_mnist.py)."""
    if str(path) == moving_mnist.SOURCE:
        return moving_mnist.load_clip_set(data, length, seed)
    check_options(data)
    kind = resolve_format(path, data.format)
    if kind == CACHE:
        return read_cache(path, data.height, data.width, length)
    sequences = find_sequences(path, kind, data.topic)
    usable, skipped, bad_frames = decode_all(sequences, data, length)
    if not usable:
        reasons = "; ".join(f"{name}: {why}" for name, why in list(skipped.items())[:5])
        raise DataError(f"{path}: no usable clips of {length} frames in {len(sequences)} {kind} sequence(s) ({reasons})")
    train_seqs, val_seqs = split(usable, data, length, seed)
    rng = np.random.default_rng(seed)
    train_refs = clip_refs(train_seqs, length, data.clip_stride)
    val_refs = clip_refs(val_seqs, length, data.clip_stride)
    if not train_refs or not val_refs:
        raise DataError(f"{path}: {len(train_refs)} training and {len(val_refs)} validation clips of {length} frames; "
                        "need more or longer sequences (or a smaller data.frame_interval)")
    train_kept, val_kept = subset(train_refs, data.max_clips, rng), subset(val_refs, data.val_clips, rng)
    period = combined_period(usable)
    summary = {
        "source": str(path),
        "format": kind,
        "height": data.height,
        "width": data.width,
        "clip_length": length,
        "frame_interval": data.frame_interval,
        "clip_stride": data.clip_stride,
        "val_fraction": data.val_fraction,
        "seed": seed,
        "frame_period": period if period is not None else data.frame_period,
        "frame_period_measured": period is not None,
        "sequences": {"train": [s.name for s in train_seqs], "val": [s.name for s in val_seqs]},
        "clips": {"train": len(train_kept), "val": len(val_kept), "train_available": len(train_refs), "val_available": len(val_refs)},
        "skipped_sequences": skipped,
        "unreadable_frames": {"count": len(bad_frames), "first": bad_frames[:SUMMARY_FRAMES]},
    }
    log.info(
        "%s (%s): %d training clips from %d sequences, %d validation clips from %d; %d sequences skipped, %d unreadable frames; frame period %.4f s (%s)",
        path, kind, len(train_kept), len(train_seqs), len(val_kept), len(val_seqs), len(skipped), len(bad_frames),
        summary["frame_period"], "measured" if period is not None else "data.frame_period",
    )
    train = gather(train_seqs, train_kept, length, data.height, data.width)
    val = gather(val_seqs, val_kept, length, data.height, data.width)
    return ClipSet(train, val, period, summary)
