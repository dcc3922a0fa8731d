"""Bad input over DDS: the installed predictor_node (one process for the module, the
packaged default model) gets every kind of bad message the reliability issue lists from a
real rclpy publisher, and after each one must still predict the next good frame correctly.

The node subscribes reliably here (``qos_reliability:=reliable``), so no sample is lost on
the way and every counter on /diagnostics can be checked exactly. Each test continues one
camera stream: a rejected message must leave the stream's buffer as it was (the next good
frame gets its K predictions at once); a restart (stamps backwards or far ahead, a change
of size, encoding or frame_id) must cost exactly N - 1 frames before predictions resume.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from video_predictor.core.preprocess import fit_to_model

from ros_helpers import (
    REPO,
    Probe,
    image_msg,
    moving_scene,
    prediction_period,
    stamp_ns,
    start_node,
    stop_process,
    unique_domain_id,
)

DOMAIN = unique_domain_id(103)
SECOND = 1_000_000_000
MAX_WIDTH, MAX_HEIGHT = 640, 480


@pytest.fixture(scope="module")
def node_process(tmp_path_factory):
    process = start_node(DOMAIN, tmp_path_factory.mktemp("faults") / "predictor_node.log",
                         "--params-file", str(REPO / "config" / "predictor.yaml"), "-p", "diagnostics_period:=0.2",
                         "-p", "qos_reliability:=reliable", "-p", f"max_image_width:={MAX_WIDTH}",
                         "-p", f"max_image_height:={MAX_HEIGHT}")
    yield process
    stop_process(process)


@pytest.fixture(scope="module")
def probe(node_process):
    probe = Probe(DOMAIN, name="faults_probe")
    started = probe.spin_until(lambda: probe.diagnostics or node_process.poll() is not None, timeout=90)
    if not started or node_process.poll() is not None:
        pytest.fail(f"predictor_node did not come up:\n{node_process.log_path.read_text()}")
    yield probe
    probe.close()


def to_wire(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """An RGB frame laid out as ``encoding`` puts it on the wire, (H, W, bytes per pixel)."""
    if encoding == "rgb8":
        return rgb
    if encoding == "bgr8":
        return rgb[:, :, ::-1]
    if encoding == "yuv422":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY)
    if encoding == "yuv422_yuy2":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2)
    if encoding == "bayer_rggb8":
        mosaic = rgb[:, :, 1].copy()  # green everywhere, then red and blue at their sites
        mosaic[0::2, 0::2] = rgb[0::2, 0::2, 0]
        mosaic[1::2, 1::2] = rgb[1::2, 1::2, 2]
        return mosaic[:, :, None]
    raise ValueError(encoding)


@dataclass
class Camera:
    """One camera stream at 30 Hz: moving scene frames and a stamp clock; tests change its
    size, encoding, frame_id or clock to make faults."""

    frame_id: str = "camera_f"
    encoding: str = "rgb8"
    size: tuple[int, int] = (120, 160)
    stamp_ns: int = 5000 * SECOND
    period_ns: int = 33_333_333
    index: int = 0

    def next(self) -> tuple[Image, np.ndarray]:
        """The next good message and the RGB frame it carries."""
        self.stamp_ns += self.period_ns
        self.index += 1
        rgb = moving_scene(30, *self.size, seed=7)[self.index % 30]
        return image_msg(to_wire(rgb, self.encoding), self.encoding, self.stamp_ns, self.frame_id), rgb


@dataclass
class Session:
    probe: Probe
    publisher: object
    camera: Camera
    n_inputs: int
    horizon: int
    period: float
    published: int = 0

    def publish(self, msg: Image) -> None:
        self.publisher.publish(msg)
        self.published += 1

    def mark(self) -> tuple[int, int]:
        """Where the predicted frames and maps received so far end."""
        return len(self.probe.frames), len(self.probe.uncertainty)

    def expect_predictions(self, msg: Image, rgb: np.ndarray, out_encoding: str = "rgb8",
                           since: tuple[int, int] | None = None, timeout: float = 15) -> None:
        """Publish ``msg`` and check that the predictions received since ``since`` (a mark;
        default: now) are exactly its K frames and maps, stamped newest + k*period, with its
        frame_id, in ``out_encoding``, the first close to it. The node predicts in order, so
        anything predicted for an earlier message would come first and fail the check."""
        frames_before, maps_before = since or self.mark()
        self.publish(msg)
        arrived = self.probe.spin_until(lambda: len(self.probe.frames) >= frames_before + self.horizon
                                        and len(self.probe.uncertainty) >= maps_before + self.horizon, timeout)
        assert arrived, f"no K predictions for the frame stamped {stamp_ns(msg)}"
        frames, maps = self.probe.frames[frames_before:], self.probe.uncertainty[maps_before:]
        expected = [stamp_ns(msg) + round(k * self.period * 1e9) for k in range(1, self.horizon + 1)]
        assert [stamp_ns(f) for f in frames] == expected and [stamp_ns(m) for m in maps] == expected
        assert {f.header.frame_id for f in frames + maps} == {msg.header.frame_id}
        assert {f.encoding for f in frames} == {out_encoding} and {m.encoding for m in maps} == {"32FC1"}
        first = frames[0]
        predicted = np.frombuffer(first.data, np.uint8).reshape(first.height, first.width, -1).astype(np.float32)
        truth = fit_to_model(rgb if out_encoding == "rgb8" else rgb[:, :, ::-1], first.height, first.width)
        assert np.abs(predicted - truth).mean() < 25  # a slow scene: step 1 stays close to the last frame

    def publish_all(self, messages: list[Image]) -> None:
        for msg in messages:
            self.publish(msg)
            self.probe.spin_for(0.01)

    def settled(self) -> dict[str, str]:
        """The first report that has counted every message published, none in flight."""
        return self.probe.wait_for_values(
            lambda v: int(v["frames_received"]) >= self.published and v["frames_in_flight"] == "0")


@pytest.fixture(scope="module")
def session(probe) -> Session:
    values = probe.diagnostics[-1][2]
    n_inputs, horizon = int(values["input_frames"]), int(values["horizon"])
    period = prediction_period(values, Camera.period_ns / 1e9)
    publisher = probe.publisher(reliable=True)
    assert probe.spin_until(lambda: publisher.get_subscription_count() > 0, 10), "node's subscription not matched"
    session = Session(probe, publisher, Camera(), n_inputs, horizon, period)
    for _ in range(n_inputs - 1):
        session.publish(session.camera.next()[0])
    session.expect_predictions(*session.camera.next())
    return session


def check_counting(values: dict[str, str]) -> None:
    """received = rejected + skipped + dropped + predicted + failed + in flight, exactly."""
    outcomes = ("rejected", "skipped", "dropped", "predicted", "failed", "in_flight")
    assert int(values["frames_received"]) == sum(int(values[f"frames_{o}"]) for o in outcomes), values


def short_data(msg: Image) -> None:
    msg.data = bytes(msg.data)[:-1]


def long_data(msg: Image) -> None:
    msg.data = bytes(msg.data) + b"\0"


def step_shorter_than_a_row(msg: Image) -> None:
    msg.step = msg.width * 3 - 1
    msg.data = bytes(msg.step * msg.height)  # consistent with the step: only the step is wrong


def zero_width(msg: Image) -> None:
    msg.width, msg.step, msg.data = 0, 0, b""


def zero_height(msg: Image) -> None:
    msg.height, msg.data = 0, b""


def claims_5000x5000(msg: Image) -> None:
    msg.height, msg.width, msg.step = 5000, 5000, 15000  # its data stays small: the size check comes first


def larger_than_the_maximum(msg: Image) -> None:
    pixels = np.zeros((2, MAX_WIDTH + 1, 3), np.uint8)
    msg.height, msg.width, msg.step, msg.data = 2, MAX_WIDTH + 1, 3 * (MAX_WIDTH + 1), pixels.tobytes()


def encoding(name: str):
    def change(msg: Image) -> None:
        msg.encoding = name
    return change


def zero_stamp(msg: Image) -> None:
    msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0


# case -> (how the good message is spoilt, what the node's last_error says)
BAD_INPUT = {
    "data_shorter_than_step_x_height": (short_data, "data holds"),
    "data_longer_than_step_x_height": (long_data, "data holds"),
    "step_shorter_than_a_row": (step_shorter_than_a_row, "step"),
    "zero_width": (zero_width, "empty image"),
    "zero_height": (zero_height, "empty image"),
    "claims_5000x5000_with_little_data": (claims_5000x5000, "exceeds the largest accepted 640x480"),
    "larger_than_the_maximum": (larger_than_the_maximum, "exceeds the largest accepted 640x480"),
    "16UC1": (encoding("16UC1"), "unsupported encoding '16UC1'"),
    "mono16": (encoding("mono16"), "unsupported encoding 'mono16'"),
    "bayer_rggb16": (encoding("bayer_rggb16"), "unsupported encoding 'bayer_rggb16'"),
    "unknown_encoding": (encoding("rgb9"), "unsupported encoding 'rgb9'"),
    "zero_stamp": (zero_stamp, "stamp is zero"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_message_is_rejected_with_its_reason_and_the_next_good_frame_is_predicted(session, node_process, case):
    spoil, reason = BAD_INPUT[case]
    before = session.settled()
    bad, _ = session.camera.next()
    session.camera.stamp_ns -= session.camera.period_ns  # a bad message takes no place in the stream
    spoil(bad)
    session.publish(bad)
    session.expect_predictions(*session.camera.next())  # its sequence is untouched: predicted at once

    after = session.settled()
    assert reason in after["last_error"] and after["last_error"].startswith("rejected input")
    assert int(after["frames_rejected"]) - int(before["frames_rejected"]) == 1
    assert int(after["frames_predicted"]) + int(after["frames_dropped"]) - int(before["frames_predicted"]) \
        - int(before["frames_dropped"]) == 1
    assert after["buffer_restarts"] == before["buffer_restarts"]
    check_counting(after)
    assert any(level == 1 and reason in message for level, message, _ in session.probe.diagnostics[-10:])  # WARN
    assert node_process.poll() is None


@dataclass(frozen=True)
class Restart:
    change: str  # what the test does to the camera
    reason: str  # in the node's last_buffer_restart


RESTARTS = {
    "stamps_go_backwards": Restart("clock_back", "stamp went backwards"),
    "stamps_jump_forward": Restart("clock_jump", "time jump"),
    "resolution_changes": Restart("size", "stream format changed"),
    "encoding_changes": Restart("encoding", "stream format changed"),
    "frame_id_changes": Restart("frame_id", "stream format changed"),
}


def change_camera(camera: Camera, change: str) -> None:
    if change == "clock_back":  # a bag that loops
        camera.stamp_ns -= 10 * SECOND
    elif change == "clock_jump":
        camera.stamp_ns += 100 * camera.period_ns
    elif change == "size":
        camera.size = (96, 128) if camera.size == (120, 160) else (120, 160)
    elif change == "encoding":
        camera.encoding = "bgr8" if camera.encoding == "rgb8" else "rgb8"
    elif change == "frame_id":
        camera.frame_id = camera.frame_id + "_next"


def restart_and_refill(session: Session, out_encoding: str = "rgb8") -> None:
    """The frame that restarts the buffer and the N - 2 after it get nothing; the N-th is predicted."""
    mark = session.mark()
    session.publish_all([session.camera.next()[0] for _ in range(session.n_inputs - 1)])
    session.expect_predictions(*session.camera.next(), out_encoding=out_encoding, since=mark)


@pytest.mark.parametrize("case", RESTARTS)
def test_stream_change_restarts_the_buffer_says_why_and_predictions_resume_after_n_frames(session, case):
    restart = RESTARTS[case]
    before = session.settled()
    change_camera(session.camera, restart.change)
    restart_and_refill(session, out_encoding="bgr8" if session.camera.encoding == "bgr8" else "rgb8")

    after = session.settled()
    assert int(after["buffer_restarts"]) - int(before["buffer_restarts"]) == 1
    assert restart.reason in after["last_buffer_restart"]
    assert int(after["frames_skipped"]) - int(before["frames_skipped"]) == session.n_inputs - 1
    assert after["frames_rejected"] == before["frames_rejected"]
    check_counting(after)
    if session.camera.encoding != "rgb8":  # leave the stream as the next test expects it
        change_camera(session.camera, "encoding")
        restart_and_refill(session)


def test_duplicate_stamp_is_skipped_without_a_restart(session):
    before = session.settled()
    msg, rgb = session.camera.next()
    session.expect_predictions(msg, rgb)
    mark = session.mark()
    session.publish_all([msg])  # the same message again: same stamp
    session.expect_predictions(*session.camera.next(), since=mark)
    after = session.settled()
    assert int(after["frames_skipped"]) - int(before["frames_skipped"]) == 1
    assert after["buffer_restarts"] == before["buffer_restarts"]
    check_counting(after)


def test_two_frame_ids_on_one_topic_restart_the_buffer_each_time_and_never_mix(session):
    before = session.settled()
    camera_a, camera_b = session.camera, Camera(frame_id="camera_other", stamp_ns=session.camera.stamp_ns + 1000)
    interleaved = [cam.next()[0] for _ in range(2 * session.n_inputs) for cam in (camera_b, camera_a)]
    interleaved.append(camera_b.next()[0])
    mark = session.mark()
    session.publish_all(interleaved)  # each frame restarts the buffer: nothing is predicted
    restart_and_refill(session)  # camera a alone again: predicting after N frames (the first restarts)
    assert session.mark() == (mark[0] + session.horizon, mark[1] + session.horizon)

    after = session.settled()
    assert int(after["buffer_restarts"]) - int(before["buffer_restarts"]) == len(interleaved) + 1
    assert "stream format changed" in after["last_buffer_restart"]
    check_counting(after)


@pytest.mark.parametrize("encoding_in, out_encoding", [("yuv422", "rgb8"), ("yuv422_yuy2", "rgb8"),
                                                       ("bayer_rggb8", "rgb8")])
def test_converted_camera_encodings_are_predicted_in_rgb8(session, encoding_in, out_encoding):
    session.camera.encoding = encoding_in  # a format change: the buffer restarts
    restart_and_refill(session, out_encoding)
    session.camera.encoding = "rgb8"
    restart_and_refill(session)


def test_big_endian_flag_on_8_bit_data_is_ignored(session):
    """is_bigendian says nothing about 8-bit channels: the frame is used as it is."""
    msg, rgb = session.camera.next()
    msg.is_bigendian = 1
    session.expect_predictions(msg, rgb)


def test_sigterm_while_frames_stream_in_stops_the_node_cleanly(session, node_process):
    """Last in the module: it stops the module's node."""
    for _ in range(10):
        session.publish(session.camera.next()[0])
        session.probe.spin_for(0.03)
    node_process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    while node_process.poll() is None and time.monotonic() - signalled < 20:  # the camera goes on meanwhile
        session.publish(session.camera.next()[0])
        session.probe.spin_for(0.03)
    log = node_process.log_path.read_text()
    assert node_process.poll() == 0, log
    assert "Traceback" not in log and "Exception" not in log, log
