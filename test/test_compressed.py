"""sensor_msgs/CompressedImage (JPEG, PNG): decoding without ROS, and real compressed bags
(made with rosbags from carphone frames) in the bag reader, the evaluator and the trainer."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from video_predictor.core.camera_messages import decode_image_message
from video_predictor.core.compressed import decode_compressed, encode_compressed, parse_format
from video_predictor.core.pixels import ImageError
from video_predictor.evaluation import offline
from video_predictor.io import bags
from video_predictor.io.video import carphone_clip, video_frames

REPO = Path(__file__).resolve().parents[1]
LIMIT = 4096
FPS = 29.97


def carphone(count: int, start: int = 0) -> list[np.ndarray]:
    """Real RGB frames (144x176) of the carphone clip."""
    return [f.image for f in itertools.islice(video_frames(carphone_clip()), start, start + count)]


def bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, :, ::-1])


# -- decoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, codec, source", [
    ("jpeg", "jpeg", ""), ("png", "png", ""), ("JPG", "jpeg", ""), ("", None, ""),
    ("rgb8; jpeg compressed bgr8", "jpeg", "rgb8"), ("bgr8; png compressed bgr8", "png", "bgr8"),
    ("mono8; jpeg compressed mono8", "jpeg", "mono8"),
])
def test_format_strings_image_transport_writes_are_understood(text, codec, source):
    parsed = parse_format(text)
    assert (parsed.codec, parsed.source_encoding) == (codec, source)


@pytest.mark.parametrize("text", ["16UC1; compressedDepth png", "h264", "rgb8; theora compressed"])
def test_depth_and_other_codecs_are_rejected(text):
    with pytest.raises(ImageError):
        parse_format(text)


def test_png_decodes_losslessly_to_rgb_and_keeps_the_colour_order():
    frame = carphone(1, 40)[0]
    fmt, data = encode_compressed(bgr(frame), "png", "bgr8")
    assert fmt == "bgr8; png compressed bgr8"
    image, encoding = decode_compressed(fmt, data, LIMIT, LIMIT)
    np.testing.assert_array_equal(image, frame)
    assert encoding == "bgr8"  # predictions of a bgr8 camera go out as bgr8
    fmt, data = encode_compressed(frame, "png", "rgb8")
    image, encoding = decode_compressed(fmt, data, LIMIT, LIMIT)
    np.testing.assert_array_equal(image, frame)
    assert (fmt, encoding) == ("rgb8; png compressed bgr8", "rgb8")


def test_jpeg_decodes_close_to_the_original_and_grey_stays_grey():
    frame = carphone(1, 40)[0]
    image, encoding = decode_compressed(*encode_compressed(bgr(frame), "jpeg", "bgr8", quality=95), LIMIT, LIMIT)
    assert image.shape == frame.shape and encoding == "bgr8"
    assert cv2.PSNR(image, frame) > 35  # the same picture, not a channel swap (that is ~20 dB)
    assert cv2.PSNR(image[:, :, ::-1].copy(), frame) < 30
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    image, encoding = decode_compressed(*encode_compressed(grey, "jpeg", "mono8"), LIMIT, LIMIT)
    assert image.shape == (*grey.shape, 1) and encoding == "mono8"


def test_bad_payloads_are_rejected_with_a_reason():
    frame = bgr(carphone(1, 40)[0])
    _, jpeg = encode_compressed(frame, "jpeg")
    _, png = encode_compressed(frame, "png")
    cases = {
        "empty": ("jpeg", b""),
        "not an image": ("jpeg", b"hello world, not a picture"),
        "truncated jpeg": ("jpeg", jpeg[:200]),
        "format says png": ("png", jpeg),
        "16-bit png": ("png", cv2.imencode(".png", np.zeros((4, 4), np.uint16))[1].tobytes()),
        "header only": ("png", png[:40]),
    }
    for name, (fmt, data) in cases.items():
        with pytest.raises(ImageError):
            decode_compressed(fmt, data, LIMIT, LIMIT)
            pytest.fail(name)


def test_oversized_images_are_rejected_from_the_header_before_decoding(monkeypatch):
    frame = bgr(carphone(1, 40)[0])  # 176x144
    for codec in ("jpeg", "png"):
        fmt, data = encode_compressed(frame, codec)
        monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded an oversized image"))
        with pytest.raises(ImageError, match="exceeds the largest accepted 100x480"):
            decode_compressed(fmt, data, 100, 480)
        monkeypatch.undo()


def test_decode_image_message_tells_compressed_from_raw_messages():
    class Compressed:  # the fields of sensor_msgs/CompressedImage
        format, data = encode_compressed(bgr(carphone(1, 40)[0]), "png")

    image, encoding = decode_image_message(Compressed(), LIMIT, LIMIT)
    assert image.shape == (144, 176, 3) and encoding == "bgr8"


def test_decoding_imports_no_ros_message_package():
    code = ("import sys; import video_predictor.io.bags, video_predictor.core.compressed, training.data.bags; "
            "print([m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs', 'std_msgs')])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- real compressed bags --------------------------------------------------------------------


def write_compressed_bag(path: Path, frames: list[np.ndarray], codec: str, corrupt: tuple[int, ...] = (),
                         topic: str = "/camera/image_raw/compressed") -> list[float]:
    """A rosbag2 bag of CompressedImage messages as image_transport records them (bgr8
    camera), frames at 29.97 fps from t = 100 s; the messages at ``corrupt`` are truncated."""
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    types = typestore.types
    msgtype = "sensor_msgs/msg/CompressedImage"
    stamps = [100 + i / FPS for i in range(len(frames))]
    with Writer(path, version=8) as writer:
        connection = writer.add_connection(topic, msgtype, typestore=typestore)
        for i, (frame, stamp) in enumerate(zip(frames, stamps)):
            fmt, data = encode_compressed(bgr(frame), codec, "bgr8")
            if i in corrupt:
                data = data[: len(data) // 3]
            ns = round(stamp * 1e9)
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9), frame_id="camera")
            msg = types[msgtype](header=header, format=fmt, data=np.frombuffer(data, np.uint8))
            writer.write(connection, ns, typestore.serialize_cdr(msg, msgtype))
    return stamps


@pytest.fixture(scope="module")
def frames():
    return carphone(30, 20)


def test_bag_reader_reads_compressed_topics_and_finds_them_by_the_base_topic(tmp_path, frames):
    stamps = write_compressed_bag(tmp_path / "bag", frames, "png")
    assert bags.list_image_topics(tmp_path / "bag") == ["/camera/image_raw/compressed"]
    assert bags.resolve_image_topic(tmp_path / "bag", "/camera/image_raw") == (
        "/camera/image_raw/compressed", bags.COMPRESSED_MSGTYPE)
    assert bags.count_image_messages(tmp_path / "bag", "/camera/image_raw") == len(frames)
    read = list(bags.read_image_messages(tmp_path / "bag", "/camera/image_raw"))
    np.testing.assert_allclose([m.stamp for m in read], stamps, atol=1e-8)
    for message, frame in zip(read, frames):
        np.testing.assert_array_equal(message.image, frame)  # PNG: lossless, RGB
    raw = list(bags.read_raw_images(tmp_path / "bag", "/camera/image_raw"))
    assert {r.msgtype for r in raw} == {bags.COMPRESSED_MSGTYPE} and len(raw) == len(frames)


def test_write_image_bag_writes_compressed_images(tmp_path, frames):
    bags.write_image_bag(tmp_path / "bag", [bgr(f) for f in frames[:5]], "/cam/image_raw/compressed",
                           [i / 10 for i in range(5)], encoding="bgr8", compression="jpeg")
    read = list(bags.read_image_messages(tmp_path / "bag", "/cam/image_raw"))
    assert len(read) == 5 and all(cv2.PSNR(m.image, f) > 30 for m, f in zip(read, frames))


def test_evaluate_scores_a_compressed_bag_and_counts_the_bad_messages(tmp_path, frames):
    """The default --topic /camera/image_raw finds /camera/image_raw/compressed; copy-last on
    JPEG frames scores like on the raw ones; corrupt messages are rejected and counted."""
    write_compressed_bag(tmp_path / "jpeg", frames, "jpeg", corrupt=(7,))
    bags.write_image_bag(tmp_path / "raw", [bgr(f) for f in frames], "/camera/image_raw",
                           [100 + i / FPS for i in range(len(frames))])
    scores = {}
    for name in ("jpeg", "raw"):
        out = tmp_path / f"out-{name}"
        assert offline.main(["--bag", str(tmp_path / name), "--out", str(out), "--no-progress", "--no-figures",
                              "--latency-runs", "1"]) == 0
        scores[name] = json.loads((out / "metrics.json").read_text())
    jpeg, raw = scores["jpeg"], scores["raw"]
    assert jpeg["stream"]["rejected"] == 1 and raw["stream"]["rejected"] == 0
    assert jpeg["stream"]["read"] + jpeg["stream"]["rejected"] == len(frames)
    assert jpeg["frames"] > 0
    # the restart at the corrupt frame costs sequences, the JPEG loss a little detail: within 3 dB
    assert abs(jpeg["copy_last"]["psnr"][0] - raw["copy_last"]["psnr"][0]) < 3


def test_trainer_trains_on_a_compressed_bag(tmp_path, frames):
    write_compressed_bag(tmp_path / "bag", frames, "jpeg", corrupt=(3,))
    tiny = ("{input_frames: 2, scales: [{features: [4], kernels: [3, 3]}, {features: [4], kernels: [3, 3]}, "
            "{features: [4], kernels: [3, 3]}, {features: [4], kernels: [3, 3]}]}")
    command = [sys.executable, "-m", "training.train", "--data", str(tmp_path / "bag"), "--steps", "1",
               "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--no-tensorboard",
               "--set", f"model.config={tiny}", "--set", "data.input_frames=2", "--set", "data.height=32",
               "--set", "data.width=32", "--set", "optim.batch_size=2", "--set", "optim.val_every=100",
               "--set", "optim.threads=1"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "run" / "model.pt").is_file()
