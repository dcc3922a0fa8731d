"""FrameBuffer: keeps frames at the model's period by stamp and starts over when the
stream stops being one sequence."""

import numpy as np
import pytest

from video_predictor.frame_buffer import FrameBuffer, PushResult

KEY = (480, 640, "rgb8", "camera")


def frame(value: int) -> np.ndarray:
    return np.full((2, 2, 3), value, np.uint8)


def push_all(buffer: FrameBuffer, stamps, key=KEY) -> list[PushResult]:
    return [buffer.push(t, frame(i % 256), key) for i, t in enumerate(stamps)]


def test_30hz_camera_into_10hz_model_keeps_every_third_frame():
    buffer = FrameBuffer(length=4, period=0.1)
    results = push_all(buffer, [i / 30 for i in range(30)])
    kept = [i for i, r in enumerate(results) if r is PushResult.KEPT]
    assert kept == list(range(0, 30, 3))
    assert all(r is PushResult.SKIPPED for i, r in enumerate(results) if i % 3)
    assert buffer.sequence().stamps == pytest.approx([18 / 30, 21 / 30, 24 / 30, 27 / 30])


def test_30hz_camera_with_jittered_stamps_still_keeps_every_third_frame():
    jitter = np.random.default_rng(1).uniform(-0.004, 0.004, 60)
    results = push_all(FrameBuffer(length=4, period=0.1), [i / 30 + j for i, j in enumerate(jitter)])
    assert [i for i, r in enumerate(results) if r is PushResult.KEPT] == list(range(0, 60, 3))


def test_29_97hz_camera_into_30hz_model_keeps_every_frame():
    buffer = FrameBuffer(length=4, period=1 / 30)
    results = push_all(buffer, [i / 29.97 for i in range(300)])
    assert set(results) == {PushResult.KEPT}
    assert buffer.restarts == 0


def test_60hz_camera_into_30hz_model_keeps_every_other_frame():
    results = push_all(FrameBuffer(length=4, period=1 / 30), [i / 60 for i in range(40)])
    assert [i for i, r in enumerate(results) if r is PushResult.KEPT] == list(range(0, 40, 2))


def test_one_lost_camera_frame_at_10hz_does_not_restart():
    stamps = [i / 30 for i in range(30) if i != 6]  # frame 6 (t = 0.2 s) never arrives
    buffer = FrameBuffer(length=4, period=0.1)
    results = push_all(buffer, stamps)
    assert PushResult.RESTARTED not in results
    assert buffer.ready


def fill(buffer: FrameBuffer, n: int, period: float, key=KEY) -> None:
    push_all(buffer, [i * period for i in range(n)], key)


def test_stamp_going_backwards_restarts_with_reason():
    buffer = FrameBuffer(length=3, period=0.1)
    fill(buffer, 3, 0.1)
    assert buffer.push(0.05, frame(9), KEY) is PushResult.RESTARTED
    assert "backwards" in buffer.restart_reason
    assert len(buffer) == 1 and not buffer.ready
    assert buffer.restarts == 1


def test_time_jump_restarts_with_reason():
    buffer = FrameBuffer(length=3, period=0.1, max_gap_periods=1.5)
    fill(buffer, 3, 0.1)
    assert buffer.push(0.2 + 0.16, frame(9), KEY) is PushResult.RESTARTED
    assert "time jump" in buffer.restart_reason
    assert len(buffer) == 1


def test_gap_just_under_the_limit_is_not_a_jump():
    buffer = FrameBuffer(length=3, period=0.1, max_gap_periods=1.5)
    fill(buffer, 3, 0.1)
    assert buffer.push(0.2 + 0.14, frame(9), KEY) is PushResult.KEPT


@pytest.mark.parametrize("new_key", [(240, 320, "rgb8", "camera"), (480, 640, "bgr8", "camera"),
                                     (480, 640, "rgb8", "other_camera")])
def test_change_of_size_encoding_or_frame_id_restarts_with_reason(new_key):
    buffer = FrameBuffer(length=3, period=0.1)
    fill(buffer, 3, 0.1)
    assert buffer.push(0.3, frame(9), new_key) is PushResult.RESTARTED
    assert "format changed" in buffer.restart_reason
    assert len(buffer) == 1


def test_duplicate_stamp_is_not_kept():
    buffer = FrameBuffer(length=3, period=0.1)
    fill(buffer, 2, 0.1)
    assert buffer.push(0.1, frame(99), KEY) is PushResult.DUPLICATE
    assert len(buffer) == 2


def test_first_frame_is_kept_not_restarted():
    buffer = FrameBuffer(length=2, period=0.1)
    assert buffer.push(5.0, frame(0), KEY) is PushResult.KEPT
    assert buffer.restarts == 0


def test_sequence_is_oldest_first_and_holds_only_the_last_n():
    buffer = FrameBuffer(length=3, period=0.1)
    for i in range(5):
        buffer.push(i * 0.1, frame(i), KEY)
    sequence = buffer.sequence()
    assert sequence.frames.shape == (3, 2, 2, 3)
    assert sequence.frames[:, 0, 0, 0].tolist() == [2, 3, 4]
    assert sequence.stamps == pytest.approx([0.2, 0.3, 0.4])
    assert sequence.newest_stamp == pytest.approx(0.4)


def test_sequence_before_the_buffer_is_full_raises():
    buffer = FrameBuffer(length=3, period=0.1)
    fill(buffer, 2, 0.1)
    assert not buffer.ready
    with pytest.raises(RuntimeError, match="2 of 3"):
        buffer.sequence()


def test_sequence_is_a_copy_that_later_pushes_do_not_change():
    buffer = FrameBuffer(length=2, period=0.1)
    fill(buffer, 2, 0.1)
    sequence = buffer.sequence()
    buffer.push(0.2, frame(50), KEY)
    assert sequence.frames[:, 0, 0, 0].tolist() == [0, 1]


@pytest.mark.parametrize("kwargs", [dict(length=0, period=0.1), dict(length=2, period=0.0),
                                    dict(length=2, period=0.1, tolerance=1.0),
                                    dict(length=2, period=0.1, max_gap_periods=1.2)])
def test_invalid_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        FrameBuffer(**kwargs)


@pytest.mark.parametrize("restart_at", [0.0, 50.0], ids=["backwards", "time_jump"])
def test_after_a_restart_30hz_into_10hz_keeps_every_third_frame_again(restart_at):
    buffer = FrameBuffer(length=4, period=0.1)
    push_all(buffer, [10 + i / 30 for i in range(30)])
    results = push_all(buffer, [restart_at + i / 30 for i in range(30)])
    assert results[0] is PushResult.RESTARTED
    assert [i for i, r in enumerate(results) if r is not PushResult.SKIPPED] == list(range(0, 30, 3))
    assert buffer.restarts == 1
    assert buffer.ready
