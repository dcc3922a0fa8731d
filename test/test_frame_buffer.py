"""FrameBuffer: keeps frames at the model's period by stamp and starts over when the
stream stops being one sequence."""

import numpy as np
import pytest

from video_predictor.core.frame_buffer import FrameBuffer, PushResult

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


# -- camera mode (rate-agnostic models): every frame, at the camera's measured period ---------

from video_predictor.core.frame_buffer import MAX_CAMERA_PERIOD, choose_period  # noqa: E402


@pytest.mark.parametrize("rate_hz", [5, 10, 15, 30, 60])
def test_camera_mode_keeps_every_frame_and_measures_the_camera_period(rate_hz):
    buffer = FrameBuffer(length=4, period="camera")
    results = push_all(buffer, [100 + i / rate_hz for i in range(40)])
    assert set(results) == {PushResult.KEPT}
    assert buffer.period == pytest.approx(1 / rate_hz)
    sequence = buffer.sequence()
    assert sequence.period == pytest.approx(1 / rate_hz)
    assert sequence.last_interval == pytest.approx(1.0)
    assert sequence.stamps == pytest.approx([100 + i / rate_hz for i in range(36, 40)])


def test_camera_mode_at_60hz_is_not_thinned():
    results = push_all(FrameBuffer(length=3, period="camera"), [i / 60 for i in range(120)])
    assert results.count(PushResult.KEPT) == 120


@pytest.mark.parametrize("rate_hz", [10, 30, 60])
def test_camera_mode_with_20_percent_stamp_jitter_neither_restarts_nor_drifts(rate_hz):
    period = 1 / rate_hz
    jitter = np.random.default_rng(3).uniform(-0.2, 0.2, 300) * period  # each stamp off by up to 20 %
    buffer = FrameBuffer(length=4, period="camera")
    results = push_all(buffer, [50 + i * period + j for i, j in enumerate(jitter)])
    assert set(results) == {PushResult.KEPT}
    assert buffer.restarts == 0
    assert buffer.period == pytest.approx(period, rel=0.1)


def test_camera_mode_with_20_percent_interval_jitter_and_drops_does_not_restart():
    rng = np.random.default_rng(4)
    intervals = 0.1 * rng.uniform(0.8, 1.2, 300)  # every interval off by up to 20 %
    intervals[::25] *= 2  # and now and then a dropped frame on top
    buffer = FrameBuffer(length=4, period="camera")
    results = push_all(buffer, np.cumsum(intervals).tolist())
    assert PushResult.RESTARTED not in results
    assert buffer.period == pytest.approx(0.1, rel=0.1)


def test_camera_mode_single_dropped_frame_keeps_the_period_and_reports_an_interval_of_two():
    stamps = [i / 15 for i in range(20) if i != 17]  # frame 17 never arrives
    buffer = FrameBuffer(length=3, period="camera")
    results = push_all(buffer, stamps)
    assert PushResult.RESTARTED not in results
    sequence = buffer.sequence()
    assert sequence.period == pytest.approx(1 / 15)
    assert sequence.last_interval == pytest.approx(1.0)  # 18 -> 19
    buffer = FrameBuffer(length=3, period="camera")
    push_all(buffer, stamps[:18])  # ... 15, 16, 18
    assert buffer.sequence().last_interval == pytest.approx(2.0)
    assert buffer.sequence().period == pytest.approx(1 / 15)


def test_camera_mode_real_time_jump_restarts_and_measures_afresh():
    buffer = FrameBuffer(length=3, period="camera")
    push_all(buffer, [i / 30 for i in range(10)])
    assert buffer.push(9 / 30 + 0.2, frame(1), KEY) is PushResult.RESTARTED  # 6 periods: not a lost frame
    assert "time jump" in buffer.restart_reason
    assert buffer.period is None and len(buffer) == 1


def test_camera_mode_three_periods_is_a_jump_two_and_a_bit_is_not():
    for gap, expected in ((2.4, PushResult.KEPT), (2.6, PushResult.RESTARTED)):
        buffer = FrameBuffer(length=3, period="camera", max_gap_periods=1.5)  # jump: over 2.5 camera periods
        push_all(buffer, [i * 0.1 for i in range(5)])
        assert buffer.push(0.4 + gap * 0.1, frame(1), KEY) is expected, gap


def test_camera_mode_adapts_to_a_slower_camera_after_one_restart():
    buffer = FrameBuffer(length=3, period="camera")
    stamps = [i / 30 for i in range(30)] + [1 + i / 10 for i in range(1, 20)]
    results = push_all(buffer, stamps)
    assert results.count(PushResult.RESTARTED) == 1
    assert buffer.period == pytest.approx(0.1)


def test_camera_mode_first_interval_over_the_longest_camera_period_is_a_jump():
    buffer = FrameBuffer(length=3, period="camera")
    buffer.push(0.0, frame(0), KEY)
    assert buffer.push(MAX_CAMERA_PERIOD + 0.5, frame(1), KEY) is PushResult.RESTARTED


def test_camera_mode_backwards_format_change_and_duplicates_as_in_fixed_mode():
    buffer = FrameBuffer(length=3, period="camera")
    push_all(buffer, [0.0, 0.1, 0.2])
    assert buffer.push(0.2, frame(9), KEY) is PushResult.DUPLICATE
    assert buffer.push(0.1, frame(9), KEY) is PushResult.RESTARTED and "backwards" in buffer.restart_reason
    assert buffer.push(0.2, frame(9), ("other",)) is PushResult.RESTARTED and "format" in buffer.restart_reason


def test_prediction_period_thins_a_camera_for_a_rate_agnostic_model():
    period, source = choose_period("camera", 0.1)
    assert (period, source) == (0.1, "parameter")
    buffer = FrameBuffer(length=3, period=period)
    results = push_all(buffer, [i / 30 for i in range(30)])
    assert [i for i, r in enumerate(results) if r is PushResult.KEPT] == list(range(0, 30, 3))
    assert buffer.sequence().period == 0.1


def test_choose_period_allows_a_fixed_model_only_its_own_period():
    assert choose_period("camera") == ("camera", "camera")
    assert choose_period(1 / 30) == (1 / 30, "model")
    assert choose_period(1 / 30, 1 / 30) == (1 / 30, "model")
    with pytest.raises(ValueError, match="fixed period of 0.0333333 s.*rate-agnostic"):
        choose_period(1 / 30, 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        choose_period("camera", -1.0)


def test_fixed_period_fed_a_slower_camera_says_why_and_recovers():
    buffer = FrameBuffer(length=3, period=1 / 30)
    results = push_all(buffer, [i / 10 for i in range(10)])  # 10 Hz camera, 30 Hz model
    assert results.count(PushResult.RESTARTED) == 9  # every frame a jump, as before ...
    reason = buffer.slow_camera_reason()  # ... but now with a reason
    assert reason and "10.0 Hz" in reason and "0.0333 s" in reason
    assert buffer.camera_period == pytest.approx(0.1)
    push_all(buffer, [2 + i / 30 for i in range(30)])  # the camera speeds up
    assert buffer.slow_camera_reason() is None and buffer.ready


def test_a_single_time_jump_is_not_a_slow_camera():
    buffer = FrameBuffer(length=3, period=1 / 30)
    push_all(buffer, [i / 30 for i in range(20)] + [5 + i / 30 for i in range(5)])
    assert buffer.restarts == 1 and buffer.slow_camera_reason() is None


def test_fixed_period_sequences_report_their_period_and_last_interval():
    buffer = FrameBuffer(length=2, period=0.1)
    push_all(buffer, [0.0, 0.1, 0.2, 0.333])  # 30 Hz camera frames at 0.3 lost: the next one is kept
    sequence = buffer.sequence()
    assert sequence.period == 0.1
    assert sequence.last_interval == pytest.approx(1.33)
