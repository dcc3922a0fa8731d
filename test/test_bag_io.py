"""Bag reading and writing with rosbags: round trips in both rosbag2 storages, ROS 1 bags,
raw messages for replay, and clear errors for missing topics and bad messages."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Image

from video_predictor.io import bags

TOPIC = "/camera/image_raw"
EPOCH = 1_700_000_000.0  # camera stamps are wall-clock times


def bgr_frames(count: int, height: int = 6, width: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (height, width, 3)).astype(np.uint8) for _ in range(count)]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_round_trip_keeps_pixels_stamps_encoding_and_frame_id(tmp_path, storage):
    frames = bgr_frames(5)
    stamps = [EPOCH + i / 30 for i in range(5)]
    bag = tmp_path / "bag"
    assert bags.write_image_bag(bag, frames, TOPIC, stamps, encoding="bgr8", frame_id="cam_left", storage=storage) == 5

    assert bags.list_image_topics(bag) == [TOPIC]
    assert bags.count_image_messages(bag, TOPIC) == 5
    read = list(bags.read_image_messages(bag, TOPIC))
    assert [m.stamp for m in read] == pytest.approx(stamps, abs=1e-6)
    assert {m.frame_id for m in read} == {"cam_left"}
    assert {m.encoding for m in read} == {"bgr8"}
    for written, message in zip(frames, read):
        assert np.array_equal(message.image, written[:, :, ::-1])  # decoded to RGB, as the node does


@pytest.mark.parametrize("encoding, channels", [("rgb8", 3), ("mono8", 1), ("rgba8", 4)])
def test_other_encodings_decode_to_rgb_or_grey(tmp_path, encoding, channels):
    frame = np.arange(4 * 5 * channels, dtype=np.uint8).reshape(4, 5, channels)
    bags.write_image_bag(tmp_path / "bag", [frame], TOPIC, [1.0], encoding=encoding)
    (message,) = bags.read_image_messages(tmp_path / "bag", TOPIC)
    assert message.encoding == encoding
    assert np.array_equal(message.image, frame[:, :, :3])  # rgba drops alpha; mono stays (H, W, 1)


def test_raw_images_carry_exact_stamps_and_deserialise_as_ros2_images(tmp_path):
    frames = bgr_frames(3)
    stamps = [EPOCH + i / 30 for i in range(3)]
    bags.write_image_bag(tmp_path / "bag", frames, TOPIC, stamps)
    raw = list(bags.read_raw_images(tmp_path / "bag", TOPIC))
    assert [r.stamp_ns for r in raw] == [round(s * 1e9) for s in stamps]
    assert [r.log_time_ns for r in raw] == [r.stamp_ns for r in raw]
    msg = deserialize_message(raw[1].cdr, Image)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == divmod(raw[1].stamp_ns, 1_000_000_000)
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("bgr8", 6, 8, 24)
    assert bytes(msg.data) == frames[1].tobytes()


def test_missing_topic_error_lists_the_image_topics(tmp_path):
    bags.write_image_bag(tmp_path / "bag", bgr_frames(1), "/front/image", [1.0])
    with pytest.raises(bags.BagError, match=r"'/camera/image_raw'.*image topics: /front/image"):
        list(bags.read_image_messages(tmp_path / "bag", TOPIC))
    with pytest.raises(bags.BagError, match="/front/image"):
        bags.count_image_messages(tmp_path / "bag", TOPIC)


def test_a_missing_bag_is_a_clear_error(tmp_path):
    with pytest.raises(bags.BagError, match="no such bag"):
        bags.list_image_topics(tmp_path / "nothing")


def write_ros2_messages(path, messages):
    """A bag of hand-built Image messages, valid or not: (stamp_ns, encoding, height, width, step, data)."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    t = store.types
    with Writer2(path, version=8) as writer:
        connection = writer.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=store)
        for stamp, encoding, height, width, step, data in messages:
            header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=stamp, nanosec=0), frame_id="c")
            msg = t["sensor_msgs/msg/Image"](header=header, height=height, width=width, encoding=encoding,
                                              is_bigendian=0, step=step, data=np.asarray(data, np.uint8))
            writer.write(connection, stamp * 1_000_000_000, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def test_undecodable_messages_raise_or_are_reported_and_skipped(tmp_path):
    write_ros2_messages(tmp_path / "bag", [
        (1, "rgb8", 1, 2, 6, range(6)),
        (2, "16UC1", 1, 2, 4, range(4)),  # encoding the node does not take
        (3, "rgb8", 1, 2, 6, range(5)),  # data shorter than step * height
        (4, "mono8", 1, 2, 2, range(2)),
    ])
    with pytest.raises(bags.BagError, match="16UC1"):
        list(bags.read_image_messages(tmp_path / "bag", TOPIC))
    rejected = []
    good = list(bags.read_image_messages(tmp_path / "bag", TOPIC, on_reject=lambda s, why: rejected.append((s, why))))
    assert [m.stamp for m in good] == [1.0, 4.0]
    assert [s for s, _ in rejected] == [2.0, 3.0]
    assert "unsupported encoding" in rejected[0][1] and "data holds 5 bytes" in rejected[1][1]


def test_ros1_bags_read_and_replay_as_ros2_messages(tmp_path):
    store = get_typestore(Stores.ROS1_NOETIC)
    t = store.types
    path = tmp_path / "old.bag"
    with Writer1(path) as writer:
        connection = writer.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=store)
        for i in range(2):
            header = t["std_msgs/msg/Header"](seq=i, stamp=t["builtin_interfaces/msg/Time"](sec=5, nanosec=i * 1000),
                                              frame_id="ros1cam")
            msg = t["sensor_msgs/msg/Image"](header=header, height=1, width=2, encoding="rgb8", is_bigendian=0,
                                              step=6, data=np.arange(6, dtype=np.uint8) + i)
            writer.write(connection, 5_000_000_000 + i, store.serialize_ros1(msg, "sensor_msgs/msg/Image"))

    decoded = list(bags.read_image_messages(path, TOPIC))
    assert [m.frame_id for m in decoded] == ["ros1cam"] * 2
    assert decoded[1].image.tolist() == [[[1, 2, 3], [4, 5, 6]]]
    raw = list(bags.read_raw_images(path, TOPIC))
    msg = deserialize_message(raw[1].cdr, Image)
    assert (raw[1].stamp_ns, msg.header.frame_id, list(msg.data)) == (5_000_001_000, "ros1cam", [1, 2, 3, 4, 5, 6])


def test_writing_refuses_bad_input_and_leaves_no_half_written_bag(tmp_path):
    bag = tmp_path / "bag"
    with pytest.raises(bags.BagError, match="more frames than stamps"):
        bags.write_image_bag(bag, bgr_frames(3), TOPIC, [1.0])
    assert not bag.exists()
    with pytest.raises(bags.BagError, match=r"bgr8 frame must be \(H, W, 3\)"):
        bags.write_image_bag(bag, [np.zeros((4, 4), np.uint8)], TOPIC, [1.0])
    assert not bag.exists()
    with pytest.raises(bags.BagError, match="storage"):
        bags.write_image_bag(bag, bgr_frames(1), TOPIC, [1.0], storage="csv")
    bags.write_image_bag(bag, bgr_frames(1), TOPIC, [1.0])
    with pytest.raises(bags.BagError, match="exists already"):
        bags.write_image_bag(bag, bgr_frames(1), TOPIC, [1.0])
