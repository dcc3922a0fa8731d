"""An rclpy node in a context of its own, spun by a daemon thread: for tools (the live
evaluator, the demo, the soak and benchmark scripts) that listen to predictor_node while
their main thread replays, waits or measures."""

from __future__ import annotations

import threading
import time
from typing import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


def wait_until(condition: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
    """Poll ``condition`` (set by the background node's callbacks) until it holds; False
    when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


class BackgroundNode:
    def __init__(self, name: str, domain_id: int | None = None) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Spin in the background; call once the subscriptions exist."""
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{self.node.get_name()}-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutting the context down ends the spin
            pass

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        if self._thread is not None:
            self._thread.join(timeout=5)
