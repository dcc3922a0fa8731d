"""Frame sources and the samples the evaluator scores: every buffered sequence paired with
the frames the node's buffer keeps 1..K periods after it (video_predictor.evaluation.sources)."""

from __future__ import annotations

import numpy as np

from video_predictor.core.frame_buffer import FrameBuffer
from video_predictor.evaluation import sources

from test_evaluate import scene


def tagged(stamps: list[float]) -> list[tuple[float, str, np.ndarray]]:
    """(stamp, key, frame) with frame value = index, so a sample's content shows which frames it got."""
    return [(s, "k", np.full((2, 2, 1), i, np.uint8)) for i, s in enumerate(stamps)]


def values(frames: np.ndarray) -> list[int]:
    return [int(f[0, 0, 0]) for f in frames]


def test_every_full_sequence_gets_the_next_k_kept_frames():
    counts = sources.StreamCounts()
    samples = list(sources.samples_with_futures(tagged([i / 30 for i in range(8)]), FrameBuffer(2, 1 / 30), 3, counts))
    assert [(values(s.inputs), values(s.targets)) for s in samples] == [
        ([0, 1], [2, 3, 4]), ([1, 2], [3, 4, 5]), ([2, 3], [4, 5, 6]), ([3, 4], [5, 6, 7])]
    assert (counts.kept, counts.skipped, counts.restarts) == (8, 0, 0)


def test_a_faster_camera_is_sampled_at_the_model_period_for_inputs_and_targets():
    counts = sources.StreamCounts()
    stream = tagged([i / 60 for i in range(10)])  # 60 Hz camera, 30 Hz model: every other frame
    samples = list(sources.samples_with_futures(stream, FrameBuffer(2, 1 / 30), 2, counts))
    assert [(values(s.inputs), values(s.targets)) for s in samples] == [([0, 2], [4, 6]), ([2, 4], [6, 8])]
    assert counts.skipped == 5


def test_a_time_jump_drops_sequences_whose_futures_it_cut_off():
    counts = sources.StreamCounts()
    stamps = [i / 30 for i in range(4)] + [10 + i / 30 for i in range(5)]
    samples = list(sources.samples_with_futures(tagged(stamps), FrameBuffer(2, 1 / 30), 2, counts))
    # before the jump only ([0, 1] -> [2, 3]) completes; after it, frames 4..8 start over
    assert [(values(s.inputs), values(s.targets)) for s in samples] == [
        ([0, 1], [2, 3]), ([4, 5], [6, 7]), ([5, 6], [7, 8])]
    assert counts.restarts == 1


def test_a_lost_frame_at_the_cameras_own_period_leaves_its_sequences_off_schedule():
    counts = sources.StreamCounts()
    stamps = [i / 30 for i in range(5)] + [i / 30 for i in range(6, 9)]  # frame 5 lost; no restart in camera mode
    samples = list(sources.samples_with_futures(tagged(stamps), FrameBuffer(2, "camera"), 2, counts))
    # the sequences whose futures would span the gap are not scored against the frame after it
    assert [(values(s.inputs), values(s.targets)) for s in samples] == [
        ([0, 1], [2, 3]), ([1, 2], [3, 4]), ([4, 5], [6, 7])]
    assert counts.off_schedule == 2 and counts.restarts == 0


def test_model_frames_are_fitted_to_the_model_and_counted():
    counts = sources.StreamCounts()
    frames = scene(3)  # 48x64 RGB
    source = sources.FrameSource(iter(sources.SourceFrame(i / 30, "k", f) for i, f in enumerate(frames)), 3, "s")
    fitted = list(sources.model_frames(source, 16, 16, 1, counts))
    assert [(stamp, key, frame.shape) for stamp, key, frame in fitted] == [(i / 30, "k", (16, 16, 1)) for i in range(3)]
    assert counts.read == 3
