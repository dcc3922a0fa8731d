"""predictor_node's parameters: declared with descriptions and ranges, validated at start.

The defaults here and config/predictor.yaml agree (a test checks it). Every parameter is
read-only: the model, QoS and buffer are set up once at start.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy

from video_predictor.backends import BACKENDS
from video_predictor.frame_buffer import FrameBuffer

RELIABILITIES = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


class ConfigError(ValueError):
    """A parameter value the node cannot run with."""


@dataclass(frozen=True)
class NodeSettings:
    model: str
    backend: str
    device: str
    horizon: int
    samples: int
    threads: int
    qos_depth: int
    qos_reliability: str
    max_image_width: int
    max_image_height: int
    max_gap_periods: float
    diagnostics_period: float

    def __post_init__(self) -> None:
        problems = []
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            problems.append(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        if self.qos_reliability not in RELIABILITIES:
            problems.append(f"qos_reliability must be one of {', '.join(RELIABILITIES)}, got {self.qos_reliability!r}")
        try:  # the buffer owns the rule; a throw-away one checks the value before the model loads
            FrameBuffer(1, 1.0, max_gap_periods=self.max_gap_periods)
        except ValueError as error:
            problems.append(f"max_gap_periods={self.max_gap_periods}: {error}")
        if problems:
            raise ConfigError("invalid parameters: " + "; ".join(problems))


def _int_range(low: int, high: int) -> list[IntegerRange]:
    return [IntegerRange(from_value=low, to_value=high, step=1)]


def _float_range(low: float, high: float) -> list[FloatingPointRange]:
    return [FloatingPointRange(from_value=low, to_value=high, step=0.0)]


# name -> (default, descriptor)
PARAMETERS: dict[str, tuple[object, ParameterDescriptor]] = {
    "model": ("", ParameterDescriptor(
        description="Model file (.pt or .onnx) carrying its own metadata; empty: the packaged default model.",
        read_only=True)),
    "backend": ("auto", ParameterDescriptor(
        description="Inference backend; auto picks the fastest one available for the model file and device.",
        additional_constraints="one of: " + ", ".join(BACKENDS), read_only=True)),
    "device": ("cpu", ParameterDescriptor(
        description="Where inference runs.", additional_constraints="cpu, cuda or cuda:N", read_only=True)),
    "horizon": (0, ParameterDescriptor(
        description="Frames K predicted per input; 0: the model's own horizon.",
        integer_range=_int_range(0, 100), read_only=True)),
    "samples": (1, ParameterDescriptor(
        description="Samples drawn per prediction to estimate uncertainty (stochastic models); deterministic models use 1.",
        integer_range=_int_range(1, 64), read_only=True)),
    "threads": (0, ParameterDescriptor(
        description="CPU threads the backend may use for inference; 0: the backend's default.",
        integer_range=_int_range(0, 256), read_only=True)),
    "qos_depth": (5, ParameterDescriptor(
        description="Keep-last depth of the input subscription.", integer_range=_int_range(1, 1000), read_only=True)),
    "qos_reliability": ("best_effort", ParameterDescriptor(
        description="Input subscription reliability; best_effort (sensor-data QoS) matches reliable and best-effort cameras.",
        additional_constraints="one of: " + ", ".join(RELIABILITIES), read_only=True)),
    "max_image_width": (4096, ParameterDescriptor(
        description="Widest input image accepted, in pixels; wider ones are rejected unread.",
        integer_range=_int_range(1, 65535), read_only=True)),
    "max_image_height": (4096, ParameterDescriptor(
        description="Tallest input image accepted, in pixels; taller ones are rejected unread.",
        integer_range=_int_range(1, 65535), read_only=True)),
    "max_gap_periods": (1.5, ParameterDescriptor(
        description="A gap between frames longer than this many model frame periods restarts the buffer (time jump).",
        additional_constraints="> 1.25", read_only=True)),
    "diagnostics_period": (1.0, ParameterDescriptor(
        description="Seconds between /diagnostics messages.", floating_point_range=_float_range(0.05, 3600.0),
        read_only=True)),
}


def declare_settings(node: Node) -> NodeSettings:
    """Declare every parameter on ``node`` and return the validated values."""
    values = {}
    for name, (default, descriptor) in PARAMETERS.items():
        try:
            values[name] = node.declare_parameter(name, default, descriptor).value
        except ParameterException as error:  # wrong type or out of range in the params file
            raise ConfigError(f"invalid parameter {name}: {error}") from None
    return NodeSettings(**values)
