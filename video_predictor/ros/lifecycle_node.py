"""predictor_lifecycle_node: predictor_node as a managed (lifecycle) node.

    ros2 run video_predictor predictor_lifecycle_node --ros-args --params-file config/predictor.yaml
    ros2 lifecycle set /predictor_node configure   # loads the model, creates publishers (diagnostics start)
    ros2 lifecycle set /predictor_node activate    # subscribes to the camera: predictions flow
    ros2 lifecycle set /predictor_node deactivate  # drops the subscription (and the buffered frames)
    ros2 lifecycle set /predictor_node cleanup     # unloads the model; configure again reads the parameters anew

Parameters are declared at construction, as in predictor_node, and read by configure, so
values set before configure apply. A model that does not load fails the configure
transition (the node stays unconfigured and says why) instead of ending the process.
Topics, parameters and behaviour once active are those of predictor_node.
"""

from __future__ import annotations

import sys

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from video_predictor.backends import ModelLoadError, create_predictor
from video_predictor.core.predictor import PredictionError
from video_predictor.ros.node import NODE_NAME, PredictorFactory, PredictorNode
from video_predictor.ros.node import main as node_main
from video_predictor.ros.parameters import PARAMETERS, ConfigError, NodeSettings, declare_settings


class PredictorLifecycleNode(PredictorNode, LifecycleNode):
    """PredictorNode whose set-up runs in the configure and activate transitions."""

    def __init__(self, predictor_factory: PredictorFactory = create_predictor, **node_kwargs) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **node_kwargs)
        self.settings = declare_settings(self)
        self._predictor_factory = predictor_factory
        self._jobs = None
        self.image_sub = None

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.settings = NodeSettings(**{name: self.get_parameter(name).value for name in PARAMETERS})
            self._configure(self._predictor_factory)
        except (ConfigError, ModelLoadError, PredictionError) as error:
            self.get_logger().error(f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._activate()
        self.get_logger().info(f"active: subscribed to {self.image_sub.topic_name}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._jobs = None
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.image_sub is not None:
            self._deactivate()
        if self._jobs is not None:
            self._release()
            self._jobs = None
        return super().on_shutdown(state)


def main(args: list[str] | None = None) -> int:
    return node_main(args, node_class=PredictorLifecycleNode)


if __name__ == "__main__":
    sys.exit(main())
