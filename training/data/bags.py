"""ROS bags (rosbag2 sqlite3 or mcap, and ROS 1): the images of one topic are one
sequence; ``--data`` is a bag or a folder of bags. Frame times are the header stamps."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from video_predictor.contract import ROOT_CAMERA_TOPIC
from video_predictor.io.bags import BagError, list_image_topics, read_image_messages

from .sequence import DataError, RawFrame, Sequence

NAME = "bag"
BAG_FILE_SUFFIXES = (".bag", ".mcap", ".db3")


def _is_rosbag2_folder(path: Path) -> bool:
    return (path / "metadata.yaml").is_file()


def bag_paths(path: Path) -> list[Path]:
    """``path`` as a bag (a rosbag2 folder, or a bag file), or the bags under a folder."""
    if path.is_file() and path.suffix in BAG_FILE_SUFFIXES:
        return [path.parent if _is_rosbag2_folder(path.parent) else path]
    if not path.is_dir():
        return []
    if _is_rosbag2_folder(path):
        return [path]
    folders = {p.parent for p in path.rglob("metadata.yaml")}
    ros1 = {p for p in path.rglob("*.bag") if not any(f in p.parents for f in folders)}
    return sorted(folders | ros1)


def matches(path: Path) -> bool:
    return bool(bag_paths(path))


def image_topic(bag: Path, topic: str) -> str:
    """``topic`` if given, else the bag's only image topic, else the node's default topic."""
    if topic:
        return topic  # read_image_messages names the bag's image topics if it is missing
    topics = list_image_topics(bag)
    if len(topics) == 1:
        return topics[0]
    if ROOT_CAMERA_TOPIC in topics:  # the node's input topic
        return ROOT_CAMERA_TOPIC
    listed = ", ".join(topics) if topics else "none"
    raise BagError(f"{bag}: cannot choose an image topic (the bag's image topics: {listed}); set data.topic")


def bag_sequence(bag: Path, name: str, topic: str) -> Sequence:
    def read(every: int) -> Iterator[RawFrame]:
        chosen = image_topic(bag, topic)
        rejected: list[str] = []
        messages = read_image_messages(bag, chosen, on_reject=lambda stamp, why: rejected.append(f"{stamp:.6f} s: {why}"))
        index = 0

        def holes() -> Iterator[RawFrame]:  # messages the node would reject leave holes
            nonlocal index
            for reason in rejected:
                if index % every == 0:
                    yield RawFrame(None, None, f"{bag} {chosen} at {reason}")
                index += 1
            rejected.clear()

        for message in messages:
            yield from holes()
            if index % every == 0:
                yield RawFrame(message.stamp, message.image, f"{bag} {chosen} at {message.stamp:.6f} s")
            index += 1
        yield from holes()

    return Sequence(name, read)


def find_sequences(path: Path, topic: str = "") -> list[Sequence]:
    bags = bag_paths(path)
    if not bags:
        raise DataError(f"{path}: no ROS bag (a rosbag2 folder with metadata.yaml, or {'/'.join(BAG_FILE_SUFFIXES)})")
    return [bag_sequence(b, b.relative_to(path).as_posix() if path in b.parents else b.name, topic) for b in bags]
