"""Tensor names of the exported ONNX graph, shared by training.export and the backends.

Inputs: ``frames`` (B, N, H, W, C) float32 in [0, 1]; ``flow`` (B, H, W, 2) backward
Farneback flow of the newest frame (flow-anchored models); ``noise`` (B, S, K, Z)
standard normal draws (stochastic models). Outputs: ``predicted_frames`` and
``uncertainty`` (B, K, H, W, C); ``predicted_sample`` for stochastic models.
"""

FRAMES_INPUT = "frames"
FLOW_INPUT = "flow"
NOISE_INPUT = "noise"
FRAMES_OUTPUT = "predicted_frames"
UNCERTAINTY_OUTPUT = "uncertainty"
SAMPLE_OUTPUT = "predicted_sample"
