"""Helpers for tests that talk to predictor_node over real DDS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import GetParameters, SetParameters, SetParametersAtomically
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from video_predictor.contract import split_ns, stamp_to_ns
from video_predictor.ros.listener import diagnostic_values

REPO = Path(__file__).resolve().parents[1]


def unique_domain_id(offset: int = 0) -> int:
    """A ROS domain per test run, so parallel runs on one machine do not hear each other;
    ``offset`` (0..130) separates the modules of one run, whose node processes share a
    status name on /diagnostics."""
    return 1 + os.getpid() % 100 + offset


def ros_env(domain_id: int) -> dict[str, str]:
    return dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")


def node_command(*ros_args: str) -> list[str]:
    """The installed console script (the contract's .venv/bin/predictor_node), else the module."""
    script = Path(sys.executable).parent / "predictor_node"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "video_predictor.ros.main"]
    return command + ["--ros-args", *ros_args]


def start_node(domain_id: int, log_path: Path, *ros_args: str) -> subprocess.Popen:
    """predictor_node as its own process, output to ``log_path`` (kept as ``.log_path``)."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(node_command(*ros_args), env=ros_env(domain_id), stdout=log,
                                   stderr=subprocess.STDOUT, cwd=REPO)
    process.log_path = log_path
    return process


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def qos(reliable: bool, depth: int = 10) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)


def stamp_ns(msg) -> int:
    return stamp_to_ns(msg.header.stamp)


def image_msg(pixels: np.ndarray, encoding: str, stamp: int, frame_id: str) -> Image:
    """An Image with ``pixels`` (H, W, C) laid out as given, stamped ``stamp`` ns."""
    h, w, c = pixels.shape
    msg = Image(height=h, width=w, encoding=encoding, step=w * c)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = split_ns(stamp)
    msg.data = np.ascontiguousarray(pixels).tobytes()
    return msg


def moving_scene(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """RGB frames of a textured background with a red square moving right by 2 px a frame."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    background = np.stack([x * 200 // width, y * 200 // height, np.full_like(x, 160)], axis=2)
    background = (background + rng.integers(0, 30, background.shape)).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        top, left = height // 3, width // 4 + 2 * i
        frame[top : top + height // 3, left : left + width // 4] = (230, 20, 20)
        frames.append(frame)
    return frames


def prediction_period(values: dict[str, str], camera_period_s: float) -> float:
    """The period the node stamps predictions at, from its /diagnostics ``values``: the camera's
    own for a rate-agnostic model (``camera_period_s``, what the test's camera sends at; the node
    reports it only once measured), else the fixed one it reports."""
    if values.get("prediction_period_source") == "camera":
        return camera_period_s
    return float(values["frame_period"])


class ProbeNode:
    """A test-side ROS node in its own context, spun on demand: unlike the tools' listener
    (video_predictor.ros.listener), which spins in a thread, a test decides when callbacks run."""

    def __init__(self, domain_id: int, name: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.02)
        return True

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


class Probe(ProbeNode):
    """Publishes camera images and records everything the predictor publishes."""

    def __init__(self, domain_id: int, name: str = "test_probe") -> None:
        super().__init__(domain_id, name)
        self.frames: list[Image] = []
        self.uncertainty: list[Image] = []
        self.diagnostics: list[tuple[int, str, dict[str, str]]] = []
        self.node.create_subscription(Image, "/predicted_frames", self.frames.append, qos(reliable=True, depth=100))
        self.node.create_subscription(Image, "/predicted_uncertainty", self.uncertainty.append,
                                      qos(reliable=True, depth=100))
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_diagnostics(self, array: DiagnosticArray) -> None:
        values = diagnostic_values(array)
        if values is not None:
            self.diagnostics.append(values)

    def publisher(self, reliable: bool, topic: str = "/camera/image_raw"):
        return self.node.create_publisher(Image, topic, qos(reliable))

    def wait_for_values(self, condition: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> dict[str, str]:
        """The values of the first /diagnostics report from now on that satisfies ``condition``."""
        seen = len(self.diagnostics)
        met = self.spin_until(lambda: any(condition(d[2]) for d in self.diagnostics[seen:]), timeout)
        assert met, f"no /diagnostics report met the condition; last: {self.diagnostics[-1:]}"
        return next(d[2] for d in self.diagnostics[seen:] if condition(d[2]))

    def call(self, client, request, timeout: float = 10.0):
        """Call a service from this probe and wait for the response."""
        assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout), f"no response from {client.srv_name}"
        return future.result()


class ParameterClient:
    """Sets and reads another node's parameters through its parameter services, as
    ``ros2 param set`` does."""

    def __init__(self, probe: Probe, node_name: str) -> None:
        self.probe = probe
        self._set = probe.node.create_client(SetParameters, f"/{node_name}/set_parameters")
        self._set_atomically = probe.node.create_client(SetParametersAtomically,
                                                        f"/{node_name}/set_parameters_atomically")
        self._get = probe.node.create_client(GetParameters, f"/{node_name}/get_parameters")

    def set(self, **values) -> list[SetParametersResult]:
        """One result per parameter, in the order given."""
        request = SetParameters.Request(parameters=[Parameter(n, value=v).to_parameter_msg() for n, v in values.items()])
        return list(self.probe.call(self._set, request).results)

    def set_atomically(self, **values) -> SetParametersResult:
        request = SetParametersAtomically.Request(
            parameters=[Parameter(n, value=v).to_parameter_msg() for n, v in values.items()])
        return self.probe.call(self._set_atomically, request).result

    def get(self, *names: str) -> list:
        response = self.probe.call(self._get, GetParameters.Request(names=list(names)))
        return [parameter_value_to_python(v) for v in response.values]
