"""Reading and writing camera images in ROS bags with rosbags (no ROS installation needed).

Reading accepts rosbag2 (sqlite3 or mcap) and ROS 1 bags and decodes images with the
node's own rules (video_predictor.core.pixels), so offline evaluation sees the pixels the
node would see. Image topics are sensor_msgs/Image or sensor_msgs/CompressedImage (JPEG,
PNG; video_predictor.core.compressed); asked for a topic the bag lacks, the reader takes
``<topic>/compressed`` where the bag has that (image_transport's name for it), so
``--topic /camera/image_raw`` finds a recording of ``/camera/image_raw/compressed``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

from video_predictor.contract import split_ns, stamp_to_ns
from video_predictor.core.camera_messages import decode_image_message
from video_predictor.core.compressed import encode_compressed
from video_predictor.core.pixels import BYTES_PER_PIXEL, NO_SIZE_LIMIT, ImageError

IMAGE_MSGTYPE = "sensor_msgs/msg/Image"
COMPRESSED_MSGTYPE = "sensor_msgs/msg/CompressedImage"
# rosbag2 and ROS 1 spellings -> the ROS 2 type
ROS2_MSGTYPE = {IMAGE_MSGTYPE: IMAGE_MSGTYPE, "sensor_msgs/Image": IMAGE_MSGTYPE,
                COMPRESSED_MSGTYPE: COMPRESSED_MSGTYPE, "sensor_msgs/CompressedImage": COMPRESSED_MSGTYPE}
IMAGE_MSGTYPES = tuple(ROS2_MSGTYPE)
COMPRESSED_SUFFIX = "/compressed"  # image_transport: <base topic>/compressed
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
ROSBAG2_VERSION = 8
# Offline there is no reason to reject large frames; the node's own limit is a parameter.


class BagError(ValueError):
    """A bag that cannot be read or written as asked; the message says why."""


class RawImage(NamedTuple):
    stamp_ns: int  # header stamp
    log_time_ns: int  # when the bag recorded it; paces a replay
    cdr: bytes  # the message, CDR-serialised as ROS 2 ``msgtype``
    msgtype: str = IMAGE_MSGTYPE  # sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage


class BagImage(NamedTuple):
    stamp: float  # header stamp, seconds
    frame_id: str
    encoding: str  # of the message in the bag
    image: np.ndarray  # RGB (H, W, 3) or grey (H, W, 1) uint8


def _typestore():
    return get_typestore(Stores.ROS2_HUMBLE)


def _stamp_ns(stamp_s: float) -> int:
    return round(stamp_s * 1e9)


def _ros2_image(typestore, stamp_ns: int, frame_id: str, height: int, width: int, encoding: str,
               is_bigendian: int, step: int, data: np.ndarray):
    types = typestore.types
    stamp = types["builtin_interfaces/msg/Time"](*split_ns(stamp_ns))
    return types[IMAGE_MSGTYPE](
        header=types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id),
        height=height, width=width, encoding=encoding, is_bigendian=is_bigendian, step=step, data=data,
    )


def _ros2_compressed(typestore, stamp_ns: int, frame_id: str, format_string: str, data: np.ndarray):
    types = typestore.types
    stamp = types["builtin_interfaces/msg/Time"](*split_ns(stamp_ns))
    return types[COMPRESSED_MSGTYPE](header=types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id),
                                     format=format_string, data=data)


def _image_message(typestore, frame: np.ndarray, stamp_ns: int, encoding: str, frame_id: str,
                   compression: str | None = None):
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[:, :, None]
    channels = BYTES_PER_PIXEL.get(encoding)
    if channels is None:
        raise BagError(f"cannot write encoding {encoding!r}; use one of {', '.join(BYTES_PER_PIXEL)}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != channels:
        raise BagError(f"a {encoding} frame must be (H, W, {channels}) uint8, got {frame.shape} {frame.dtype}")
    if compression is not None:
        if encoding not in ("rgb8", "bgr8", "mono8"):
            raise BagError(f"cannot compress encoding {encoding!r}; use rgb8, bgr8 or mono8")
        try:
            format_string, payload = encode_compressed(frame, compression, encoding)
        except ValueError as error:
            raise BagError(str(error)) from None
        return _ros2_compressed(typestore, stamp_ns, frame_id, format_string, np.frombuffer(payload, np.uint8))
    height, width = frame.shape[:2]
    data = np.ascontiguousarray(frame).reshape(-1)
    return _ros2_image(typestore, stamp_ns, frame_id, height, width, encoding, 0, width * channels, data)


def write_image_bag(
    path: str | Path,
    frames: Iterable[np.ndarray],
    topic: str,
    stamps: Iterable[float],
    encoding: str = "bgr8",
    frame_id: str = "camera",
    storage: str = "sqlite3",
    compression: str | None = None,
) -> int:
    """Write frames as sensor_msgs/Image messages to a new rosbag2 bag; returns the count.

    frames: (H, W, C) uint8 arrays already in ``encoding``'s channel order; stamps:
    header stamps in seconds, also used as the bag's log times. ``path`` must not exist.
    compression "jpeg" or "png": sensor_msgs/CompressedImage messages instead, with the
    format string image_transport writes (``topic`` is then usually ``.../compressed``).
    """
    if storage not in STORAGES:
        raise BagError(f"unknown storage {storage!r}; use one of {', '.join(STORAGES)}")
    path = Path(path)
    if path.exists():
        raise BagError(f"{path}: exists already; not overwriting")
    typestore = _typestore()
    count = 0
    try:
        with Writer(path, version=ROSBAG2_VERSION, storage_plugin=STORAGES[storage]) as writer:
            msgtype = IMAGE_MSGTYPE if compression is None else COMPRESSED_MSGTYPE
            connection = writer.add_connection(topic, msgtype, typestore=typestore)
            for frame, stamp in _pairs(frames, stamps):
                stamp_ns = _stamp_ns(stamp)
                msg = _image_message(typestore, frame, stamp_ns, encoding, frame_id, compression)
                writer.write(connection, stamp_ns, typestore.serialize_cdr(msg, msgtype))
                count += 1
    except (BagError, WriterError) as error:
        shutil.rmtree(path, ignore_errors=True)  # no half-written bag left behind
        raise BagError(f"{path}: {error}" if isinstance(error, WriterError) else str(error)) from None
    return count


def _pairs(frames: Iterable[np.ndarray], stamps: Iterable[float]) -> Iterator[tuple[np.ndarray, float]]:
    frames, stamps = iter(frames), iter(stamps)
    for count, frame in enumerate(frames):
        stamp = next(stamps, None)
        if stamp is None:
            raise BagError(f"more frames than stamps: only {count} stamps given")
        yield frame, stamp
    if next(stamps, None) is not None:
        raise BagError("more stamps than frames")


def _open(path: str | Path) -> AnyReader:
    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    reader = AnyReader([path], default_typestore=_typestore())
    try:
        reader.open()
    except AnyReaderError as error:
        raise BagError(f"{path}: cannot read bag: {error}") from None
    return reader


def _image_topics(reader: AnyReader) -> list[str]:
    return sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_MSGTYPES})


def list_image_topics(path: str | Path) -> list[str]:
    """Topics of the bag that carry sensor_msgs/Image or CompressedImage messages, sorted."""
    reader = _open(path)
    try:
        return _image_topics(reader)
    finally:
        reader.close()


def _image_connections(reader: AnyReader, path: str | Path, topic: str) -> list:
    """The connections of ``topic``, else of ``topic``/compressed; BagError naming the
    bag's image topics if neither is there."""
    for name in (topic, topic.rstrip("/") + COMPRESSED_SUFFIX):
        connections = [c for c in reader.connections if c.topic == name and c.msgtype in IMAGE_MSGTYPES]
        if connections:
            return connections
    topics = _image_topics(reader)
    listed = ", ".join(topics) if topics else "none"
    raise BagError(f"{path}: no sensor_msgs/Image or CompressedImage topic {topic!r}; the bag's image topics: {listed}")


def resolve_image_topic(path: str | Path, topic: str) -> tuple[str, str]:
    """(topic, ROS 2 message type) that reading ``topic`` from the bag uses: ``topic``
    itself, or ``topic``/compressed where only that is recorded."""
    reader = _open(path)
    try:
        connection = _image_connections(reader, path, topic)[0]
        return connection.topic, ROS2_MSGTYPE[connection.msgtype]
    finally:
        reader.close()


def count_image_messages(path: str | Path, topic: str) -> int:
    """Number of image messages on ``topic`` (from the bag's index, nothing decoded)."""
    reader = _open(path)
    try:
        return sum(c.msgcount for c in _image_connections(reader, path, topic))
    finally:
        reader.close()


def read_image_messages(
    path: str | Path, topic: str, on_reject: Callable[[float, str], None] | None = None
) -> Iterator[BagImage]:
    """Decode the images on ``topic`` in log-time order.

    A message the node would reject (unknown encoding, wrong data length, undecodable
    JPEG/PNG, ...) raises BagError, or, with ``on_reject``, is reported as
    on_reject(stamp_s, reason) and skipped.
    """
    reader = _open(path)
    try:
        connections = _image_connections(reader, path, topic)
        for connection, _, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            try:
                image, encoding = decode_image_message(msg, NO_SIZE_LIMIT, NO_SIZE_LIMIT)
            except ImageError as error:
                if on_reject is None:
                    raise BagError(f"{path}: image at {stamp:.6f} s on {topic}: {error}") from None
                on_reject(stamp, str(error))
                continue
            yield BagImage(stamp, msg.header.frame_id, encoding, image)
    finally:
        reader.close()


def read_raw_images(path: str | Path, topic: str) -> Iterator[RawImage]:
    """The image messages on ``topic`` as ROS 2 CDR bytes, in log-time order, for replaying
    them unchanged (ROS 1 bags are re-encoded; a ROS 1 header's seq has no ROS 2 field)."""
    reader = _open(path)
    typestore = _typestore()
    try:
        for connection, log_time, raw in reader.messages(connections=_image_connections(reader, path, topic)):
            msg = reader.deserialize(raw, connection.msgtype)
            stamp_ns = stamp_to_ns(msg.header.stamp)
            msgtype = ROS2_MSGTYPE[connection.msgtype]
            if not reader.is2 and msgtype == IMAGE_MSGTYPE:
                ros2 = _ros2_image(typestore, stamp_ns, msg.header.frame_id, msg.height, msg.width, msg.encoding,
                                   msg.is_bigendian, msg.step, msg.data)
                raw = typestore.serialize_cdr(ros2, msgtype)
            elif not reader.is2:
                ros2 = _ros2_compressed(typestore, stamp_ns, msg.header.frame_id, msg.format, msg.data)
                raw = typestore.serialize_cdr(ros2, msgtype)
            yield RawImage(stamp_ns, log_time, bytes(raw), msgtype)
    finally:
        reader.close()
