"""Console entry point of ``predictor_node``.

Importing the node (rclpy, numpy, the backends) takes about half a second; a SIGINT in that
window would end in a KeyboardInterrupt traceback and a SIGTERM in exit code -15. Quiet
handlers go in first, before any of those imports; ``node.main`` then installs its own.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _quiet_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_quietly)


def main() -> int:
    _quiet_signals()
    from video_predictor.ros.node import main as node_main

    return node_main()


def lifecycle_main() -> int:
    """``predictor_lifecycle_node``: the same node as a managed (lifecycle) node."""
    _quiet_signals()
    from video_predictor.ros.lifecycle_node import main as lifecycle_node_main

    return lifecycle_node_main()


if __name__ == "__main__":
    sys.exit(main())
