"""Replays a bag's camera images into a ROS 2 topic at the recorded rate (rclpy), for
installations without the ros2 CLI's ``ros2 bag play``.

    python -m video_predictor.replay --bag PATH [--topic /camera/image_raw] [--to TOPIC] [--rate 1.0] [--clock]

Messages go out unchanged (original header stamps and frame_id) on a reliable publisher,
paced by the times the bag recorded them. A sensor_msgs/CompressedImage topic is replayed
as CompressedImage; ``--topic /camera/image_raw`` finds ``/camera/image_raw/compressed``
where only that is recorded (then published there, image_transport's name for it). With ``--clock`` the recorded time of every
message is published on /clock just before it, as ``ros2 bag play --clock`` does, so
nodes run with ``use_sim_time:=true`` follow the bag's time.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Iterable, NamedTuple

import rclpy
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image

from video_predictor.contract import ROOT_CAMERA_TOPIC, split_ns
from video_predictor.io import bags

CLOCK_TOPIC = "/clock"
MESSAGE_CLASSES = {bags.IMAGE_MSGTYPE: Image, bags.COMPRESSED_MSGTYPE: CompressedImage}


class Published(NamedTuple):
    stamp_ns: int  # header stamp of the message
    sent_at: float  # time.monotonic() just after publishing


class ImageReplayer:
    """Publishes recorded images (``msgtype``: bags.IMAGE_MSGTYPE or COMPRESSED_MSGTYPE)
    on ``topic`` from ``node``; with ``clock``, also their recorded times on /clock."""

    def __init__(self, node: Node, topic: str = ROOT_CAMERA_TOPIC, depth: int = 10, clock: bool = False,
                 msgtype: str = bags.IMAGE_MSGTYPE) -> None:
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = node.create_publisher(MESSAGE_CLASSES[msgtype], topic, qos)
        # rclcpp's ClockQoS, as ros2 bag play uses: only the newest time matters
        clock_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.clock_publisher = node.create_publisher(Clock, CLOCK_TOPIC, clock_qos) if clock else None

    def wait_for_subscribers(self, timeout: float, count: int = 1) -> bool:
        """Wait until ``count`` subscriptions match, so the first frames are not lost."""
        deadline = time.monotonic() + timeout
        while self.publisher.get_subscription_count() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def play(self, images: Iterable[bags.RawImage], rate: float = 1.0) -> list[Published]:
        """Publish every image when its recorded time comes (``rate`` 2 = twice as fast)."""
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        sent: list[Published] = []
        start_wall = first_log = None
        for image in images:
            if start_wall is None:
                start_wall, first_log = time.monotonic(), image.log_time_ns
            due = start_wall + (image.log_time_ns - first_log) / 1e9 / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if self.clock_publisher is not None:
                sec, nanosec = split_ns(image.log_time_ns)
                self.clock_publisher.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))
            self.publisher.publish(image.cdr)  # raw CDR: the recorded message, unchanged
            sent.append(Published(image.stamp_ns, time.monotonic()))
        return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m video_predictor.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bag", required=True, help="rosbag2 folder (sqlite3 or mcap) or ROS 1 .bag file")
    parser.add_argument("--topic", default=ROOT_CAMERA_TOPIC, help="image topic in the bag (default %(default)s)")
    parser.add_argument("--to", help="topic to publish on (default: the bag's topic)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default %(default)s)")
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to wait for subscribers before playing")
    parser.add_argument("--subscribers", type=int, default=1,
                        help="subscriptions to wait for, e.g. 2 for the node and a listening evaluator (default 1)")
    parser.add_argument("--clock", action="store_true",
                        help="publish each message's recorded time on /clock (for nodes with use_sim_time:=true)")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be > 0")
    if args.subscribers < 0:
        parser.error("--subscribers must be >= 0")
    try:
        count = bags.count_image_messages(args.bag, args.topic)
        topic, msgtype = bags.resolve_image_topic(args.bag, args.topic)
    except bags.BagError as error:
        print(f"replay: error: {error}", file=sys.stderr)
        return 2
    to = args.to or topic
    rclpy.init()
    node = Node("bag_replayer")
    try:
        replayer = ImageReplayer(node, to, clock=args.clock, msgtype=msgtype)
        if not replayer.wait_for_subscribers(args.wait, args.subscribers):
            print(f"replay: fewer than {args.subscribers} subscriber(s) on {to} after {args.wait} s; "
                  "playing anyway", file=sys.stderr)
        sent = replayer.play(bags.read_raw_images(args.bag, topic), args.rate)
        print(f"replayed {len(sent)} of {count} images ({msgtype.rsplit('/', 1)[-1]}) to {to}")
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
