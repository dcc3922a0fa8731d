"""Console entry point of ``predictor_node``.

Importing the node (rclpy, numpy, the backends) takes about half a second; a SIGINT in that
window would end in a KeyboardInterrupt traceback and a SIGTERM in exit code -15. Raising
SystemExit from the handler is not enough: inside an extension module's initialisation
(rclpy's) it becomes an ImportError with a traceback. So a signal during the imports is only
remembered, and acted on (exit code 0) once they are done; from then until ``node.main``
installs its own handlers, a signal exits at once.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Callable

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []


def _remember(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _install(handler: Callable[[int, FrameType | None], None]) -> None:
    for signum in _SIGNALS:
        signal.signal(signum, handler)


def _signalled_while_importing() -> bool:
    """Call after the imports: the quiet handlers go in, then whether a signal came before."""
    _install(_exit_quietly)
    return bool(_received)  # checked after the handlers are in: none can be missed in between


def main() -> int:
    _install(_remember)
    from video_predictor.ros.node import main as node_main

    return 0 if _signalled_while_importing() else node_main()


def lifecycle_main() -> int:
    """``predictor_lifecycle_node``: the same node as a managed (lifecycle) node."""
    _install(_remember)
    from video_predictor.ros.lifecycle_node import main as lifecycle_node_main

    return 0 if _signalled_while_importing() else lifecycle_node_main()


if __name__ == "__main__":
    sys.exit(main())
