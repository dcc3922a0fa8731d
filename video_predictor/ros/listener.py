"""The one listener to predictor_node: an rclpy node in a context of its own, spun by a
daemon thread, subscribed to the node's outputs. Tools (the live evaluator, the demo,
the soak and benchmark scripts) and the tests listen with it while their main thread
replays, waits or measures."""

from __future__ import annotations

import threading
import time
from typing import Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from video_predictor.contract import DIAGNOSTICS_STATUS_NAME, DIAGNOSTICS_TOPIC, FRAMES_TOPIC, UNCERTAINTY_TOPIC


def wait_until(condition: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
    """Poll ``condition`` (set by the listener's callbacks) until it holds; False when
    ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def diagnostic_values(array: DiagnosticArray) -> tuple[int, str, dict[str, str]] | None:
    """(level, message, values) of predictor_node's status in ``array``, or None if absent."""
    for status in array.status:
        if status.name == DIAGNOSTICS_STATUS_NAME:
            level = status.level[0] if isinstance(status.level, bytes) else int(status.level)
            return level, status.message, {kv.key: kv.value for kv in status.values}
    return None


def reliable_qos(depth: int) -> QoSProfile:
    """Reliable and deep: the node publishes K frames per input in a burst, and a listener
    that measures must not lose any of them to its own queue."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)


class PredictorListener:
    """Subscribes to ``predicted_frames``, ``predicted_uncertainty`` (under ``namespace``) and
    /diagnostics, and hands each message to ``on_frame`` / ``on_uncertainty`` / ``on_status``
    (override them; callbacks run on the executor thread). The latest status is kept.

    Create publishers and further subscriptions on ``self.node`` before ``start()``.
    """

    def __init__(self, name: str, domain_id: int | None = None, depth: int = 200, namespace: str = "",
                 outputs: bool = True) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self._thread: threading.Thread | None = None
        self.namespace = namespace.rstrip("/")
        self.diagnostics: dict[str, str] | None = None
        self.diagnostics_arrived = 0.0  # time.monotonic() of the latest status
        self.node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics, 10)
        if outputs:
            self.node.create_subscription(Image, self.topic(FRAMES_TOPIC),
                                          lambda msg: self.on_frame(msg, time.monotonic()), reliable_qos(depth))
            self.node.create_subscription(Image, self.topic(UNCERTAINTY_TOPIC),
                                          lambda msg: self.on_uncertainty(msg, time.monotonic()), reliable_qos(depth))

    def topic(self, relative: str) -> str:
        """A node output's topic under this listener's namespace (root by default)."""
        return f"{self.namespace}/{relative}"

    # -- hooks -----------------------------------------------------------------------------

    def on_frame(self, msg: Image, arrived: float) -> None:
        """A predicted frame arrived at ``arrived`` (time.monotonic())."""

    def on_uncertainty(self, msg: Image, arrived: float) -> None:
        """An uncertainty map arrived."""

    def on_status(self, level: int, message: str, values: dict[str, str], arrived: float) -> None:
        """predictor_node's DiagnosticStatus arrived (already kept in ``diagnostics``)."""

    def _on_diagnostics(self, array: DiagnosticArray) -> None:
        status = diagnostic_values(array)
        if status is not None:
            level, message, values = status
            self.diagnostics, self.diagnostics_arrived = values, time.monotonic()
            self.on_status(level, message, values, self.diagnostics_arrived)

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Spin in the background; call once the subscriptions and publishers exist."""
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{self.node.get_name()}-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutting the context down ends the spin
            pass

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        return wait_until(condition, timeout)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        if self._thread is not None:
            self._thread.join(timeout=5)
