"""Where the evaluator's frames come from, and the scored samples built from them.

A ``FrameSource`` yields the camera's frames as recorded (a bag topic, a video file, a
folder of images); ``samples_with_futures`` pushes them, fitted to the model, through the
node's own frame buffer and pairs every buffered sequence with the frames the same
buffer keeps 1..K prediction periods later. ``StreamCounts`` says what happened to the
stream on the way (metrics.json ``stream``). ROS-free: a bag is read with rosbags.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Hashable, Iterable, Iterator, NamedTuple

import numpy as np
from tqdm import tqdm

from video_predictor.core.frame_buffer import FrameBuffer, PushResult
from video_predictor.core.pixels import match_channels
from video_predictor.core.preprocess import fit_to_model
from video_predictor.io import bags, video


class SourceFrame(NamedTuple):
    stamp: float  # seconds
    key: Hashable  # stream format; a change restarts the buffer, as in the node
    image: np.ndarray  # RGB (H, W, 3) or grey (H, W, 1) uint8, camera resolution


class FrameSource(NamedTuple):
    frames: Iterator[SourceFrame]
    total: int | None  # for the progress bar
    name: str


@dataclass
class StreamCounts:
    read: int = 0
    rejected: int = 0  # undecodable messages (the node would reject them too)
    kept: int = 0
    skipped: int = 0  # too soon for the model's frame period, or a duplicate stamp
    restarts: int = 0
    off_schedule: int = 0  # full sequences left out: a future frame was not k periods ahead (a lost frame)

    def record(self, pushed: PushResult) -> bool:
        """Count what the buffer did with a frame; True when it kept it."""
        if pushed in (PushResult.SKIPPED, PushResult.DUPLICATE):
            self.skipped += 1
            return False
        self.kept += 1
        if pushed is PushResult.RESTARTED:
            self.restarts += 1
        return True


@dataclass(frozen=True)
class Sample:
    inputs: np.ndarray  # (N, H, W, C) uint8, model resolution, oldest first
    targets: np.ndarray  # (K, H, W, C) uint8: the frames kept 1..K periods after the newest input
    stamp: float = math.nan  # of the newest input, seconds
    period: float = math.nan  # the prediction period of this sequence, seconds
    last_interval: float = 1.0  # between its two newest frames, in prediction periods (for predict)


# -- frame sources ---------------------------------------------------------------------------


def bag_source(path: str, topic: str, counts: StreamCounts) -> FrameSource:
    """The images on ``topic``; undecodable ones are counted in ``counts.rejected`` and skipped."""
    total = bags.count_image_messages(path, topic)  # also checks the topic before any work

    def on_reject(stamp: float, reason: str) -> None:
        counts.rejected += 1
        tqdm.write(f"skipping image at {stamp:.3f} s: {reason}")

    def frames() -> Iterator[SourceFrame]:
        for msg in bags.read_image_messages(path, topic, on_reject=on_reject):
            key = (msg.image.shape[0], msg.image.shape[1], msg.encoding, msg.frame_id)  # the node's key
            yield SourceFrame(msg.stamp, key, msg.image)

    return FrameSource(frames(), total, f"{path} {topic}")


def _timed_source(frames: Iterator[video.TimedFrame], total: int | None, name: str) -> FrameSource:
    return FrameSource((SourceFrame(f.stamp, f.image.shape, f.image) for f in frames), total, name)


def video_source(path: str, fps: float | None) -> FrameSource:
    """A video file's frames at its own rate, or at ``fps``."""
    return _timed_source(video.video_frames(path, fps), video.video_frame_count(path), path)


def folder_source(folder: str, fps: float | None) -> FrameSource:
    """Image files in name order; ``fps`` is required, since files carry no timing."""
    if fps is None:
        raise video.VideoError(f"{folder}: a frame folder has no timing; give its frame rate with --fps")
    return _timed_source(video.folder_frames(folder, fps), len(video.frame_files(folder)), folder)


# -- sequences and their futures -------------------------------------------------------------


def model_frames(source: FrameSource, height: int, width: int, channels: int, counts: StreamCounts,
                 progress: bool = False) -> Iterator[tuple[float, Hashable, np.ndarray]]:
    """(stamp, key, frame) of ``source``, every frame fitted to the model's resolution and
    channels exactly as the node fits it; counts ``counts.read``."""
    for frame in tqdm(source.frames, total=source.total, desc="evaluating", unit="frame", disable=not progress):
        counts.read += 1
        yield frame.stamp, frame.key, match_channels(fit_to_model(frame.image, height, width), channels)


def samples_with_futures(
    frames: Iterable[tuple[float, Hashable, np.ndarray]], buffer: FrameBuffer, horizon: int, counts: StreamCounts
) -> Iterator[Sample]:
    """Push (stamp, key, model-resolution frame) through ``buffer``; yield every full
    sequence once the buffer has kept ``horizon`` more frames after it, without a restart
    and each within 1.5 of the sequence's periods of the one before (at the camera's own
    period a lost frame does not restart the buffer, but the frame after it is not the
    future the sequence would be scored against: such sequences are ``off_schedule``)."""
    waiting: deque[tuple[Sample, list[np.ndarray], list[float]]] = deque()
    for stamp, key, frame in frames:
        result = buffer.push(stamp, frame, key)
        if not counts.record(result):
            continue
        if result is PushResult.RESTARTED:
            waiting.clear()  # their futures are gone with the old stream
        else:
            kept = deque()
            for sample, futures, previous in waiting:
                if stamp - previous[0] <= 1.5 * sample.period:
                    futures.append(frame)
                    previous[0] = stamp
                    kept.append((sample, futures, previous))
                else:
                    counts.off_schedule += 1
            waiting = kept
            while waiting and len(waiting[0][1]) == horizon:
                sample, futures, _ = waiting.popleft()
                yield Sample(sample.inputs, np.stack(futures), sample.stamp, sample.period, sample.last_interval)
        if buffer.ready:
            sequence = buffer.sequence()
            waiting.append((Sample(sequence.frames, sequence.frames[:0], stamp, sequence.period,
                                   sequence.last_interval), [], [stamp]))
