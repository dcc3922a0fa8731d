"""Everything that talks ROS 2: the predictor node and its lifecycle variant, their
parameters and diagnostics, image messages, the listener and the bag replayer."""
