"""predictor_node's parameters: declared with descriptions and ranges, validated at start.

The defaults here and config/predictor.yaml agree (a test checks it). The parameters in
RUNTIME_PARAMETERS can be changed while the node runs (``ros2 param set``); the others
choose the model, the backend and the subscription, which are set up once, so they are
declared read-only and the parameter service refuses to change them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import ReliabilityPolicy

from video_predictor.backends import BACKENDS, PRECISIONS
from video_predictor.backends.sampling import PUBLISH_CHOICES
from video_predictor.core.frame_buffer import FrameBuffer

RELIABILITIES = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
# image_transport names: raw = sensor_msgs/Image on the camera topic, compressed =
# sensor_msgs/CompressedImage (JPEG, PNG) on <camera topic>/compressed
TRANSPORTS = ("raw", "compressed")


class ConfigError(ValueError):
    """A parameter value the node cannot run with."""


@dataclass(frozen=True)
class NodeSettings:
    model: str
    backend: str
    device: str
    horizon: int
    samples: int
    publish: str
    threads: int
    precision: str
    engine_cache_dir: str
    qos_depth: int
    qos_reliability: str
    image_transport: str
    max_image_width: int
    max_image_height: int
    max_gap_periods: float
    diagnostics_period: float
    prediction_period: float = 0.0
    adapt: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            problems.append(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.publish not in PUBLISH_CHOICES:
            problems.append(f"publish must be one of {', '.join(PUBLISH_CHOICES)}, got {self.publish!r}")
        if self.qos_reliability not in RELIABILITIES:
            problems.append(f"qos_reliability must be one of {', '.join(RELIABILITIES)}, got {self.qos_reliability!r}")
        if not self.prediction_period >= 0:
            problems.append(f"prediction_period must be >= 0 s, got {self.prediction_period}")
        if self.image_transport not in TRANSPORTS:
            problems.append(f"image_transport must be one of {', '.join(TRANSPORTS)}, got {self.image_transport!r}")
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


#: parameters that take effect while the node runs; the rest are read at start-up only
RUNTIME_PARAMETERS = ("horizon", "samples", "publish", "max_image_width", "max_image_height",
                      "max_gap_periods", "diagnostics_period")
_AT_START_UP = " Read at start-up only: restart the node to change it."
_AT_RUN_TIME = " Can be changed while the node runs."


def _descriptor(name: str, description: str, **fields) -> ParameterDescriptor:
    runtime = name in RUNTIME_PARAMETERS
    return ParameterDescriptor(description=description + (_AT_RUN_TIME if runtime else _AT_START_UP),
                               read_only=not runtime, **fields)


# name -> (default, descriptor)
PARAMETERS: dict[str, tuple[object, ParameterDescriptor]] = {
    "model": ("", _descriptor(
        "model", "Model file (.pt or .onnx) carrying its own metadata; empty: the packaged default model.")),
    "backend": ("auto", _descriptor(
        "backend", "Inference backend; auto picks the fastest one available for the model file and device.",
        additional_constraints="one of: " + ", ".join(BACKENDS))),
    "device": ("auto", _descriptor(
        "device", "Where inference runs; auto: the CUDA GPU where one can be used, else the CPU.",
        additional_constraints="auto, cpu, cuda or cuda:N")),
    "horizon": (0, _descriptor(
        "horizon", "Frames K predicted per input; 0: the model's own horizon. At run time: 1 up to the horizon "
        "the node started with (0 again: that one).", integer_range=_int_range(0, 100))),
    "samples": (1, _descriptor(
        "samples", "Future samples S drawn per input frame by stochastic models (svg), run as one batch; "
        "/predicted_uncertainty is their per-pixel std (0 when S = 1). Deterministic models ignore it.",
        integer_range=_int_range(1, 64))),
    "publish": ("mean", _descriptor(
        "publish", "What a stochastic model publishes on /predicted_frames: mean (per-pixel mean of the S samples) "
        "or sample (one sampled future, sharp but one of many). Deterministic models ignore it.",
        additional_constraints="one of: " + ", ".join(PUBLISH_CHOICES))),
    "threads": (0, _descriptor(
        "threads", "CPU threads the backend may use for inference; 0: the backend's default.",
        integer_range=_int_range(0, 256))),
    "precision": ("fp32", _descriptor(
        "precision", "TensorRT engine precision (inputs and outputs stay FP32); other backends ignore it.",
        additional_constraints="one of: " + ", ".join(PRECISIONS))),
    "engine_cache_dir": ("", _descriptor(
        "engine_cache_dir", "Folder of cached TensorRT engines; empty: beside the ONNX file, or the user's cache "
        "folder where that is read-only.")),
    "qos_depth": (5, _descriptor(
        "qos_depth", "Keep-last depth of the input subscription.", integer_range=_int_range(1, 1000))),
    "qos_reliability": ("best_effort", _descriptor(
        "qos_reliability", "Input subscription reliability; best_effort (sensor-data QoS) matches reliable and "
        "best-effort cameras.", additional_constraints="one of: " + ", ".join(RELIABILITIES))),
    "image_transport": ("raw", _descriptor(
        "image_transport", "How the camera's images arrive: raw (sensor_msgs/Image on camera/image_raw) or "
        "compressed (sensor_msgs/CompressedImage, JPEG or PNG, on camera/image_raw/compressed, as "
        "image_transport publishes it).", additional_constraints="one of: " + ", ".join(TRANSPORTS))),
    "max_image_width": (4096, _descriptor(
        "max_image_width", "Widest input image accepted, in pixels; wider ones are rejected unread.",
        integer_range=_int_range(1, 65535))),
    "max_image_height": (4096, _descriptor(
        "max_image_height", "Tallest input image accepted, in pixels; taller ones are rejected unread.",
        integer_range=_int_range(1, 65535))),
    "prediction_period": (0.0, _descriptor(
        "prediction_period", "Seconds between the predicted frames (their stamps are newest + k * this); 0: the "
        "camera's own frame period, measured from the stamps, for a rate-agnostic model (metadata frame_period: "
        "camera), the model's fixed period otherwise. A rate-agnostic model takes any value (the camera is thinned "
        "to it); a fixed-period model only 0 or its own period.",
        floating_point_range=_float_range(0.0, 3600.0))),
    "adapt": (True, _descriptor(
        "adapt", "Learn from the stream's own frames as they arrive: publish, per horizon, a blend of the model's "
        "frame with flow extrapolation's and the last frame's, weighted by how well each predicted the recent "
        "frames, and fit the uncertainty to the recent errors (95 % of them within 2 std) "
        "(video_predictor.core.adaptive_predictor). Deterministic models only; false: the model's output as it is.")),
    "max_gap_periods": (1.5, _descriptor(
        "max_gap_periods", "A gap between frames longer than this many prediction periods restarts the buffer "
        "(time jump); at the camera's own period one lost frame more is allowed (a gap of up to "
        "max_gap_periods + 1 camera periods).", additional_constraints="> 1.25")),
    "diagnostics_period": (1.0, _descriptor(
        "diagnostics_period", "Seconds between /diagnostics messages.",
        floating_point_range=_float_range(0.05, 3600.0))),
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


def updated_settings(settings: NodeSettings, changes: Iterable[Parameter], loaded_horizon: int) -> NodeSettings:
    """``settings`` with ``changes`` applied, for a node whose predictor was loaded with
    ``loaded_horizon`` frames; ConfigError, whose message is the reason, if the running
    node cannot take them. (Types, ranges and read-only flags are checked by rclpy first.)"""
    values = {}
    for parameter in changes:
        if parameter.name not in PARAMETERS:
            continue  # not ours: leave it to whoever declared it
        if parameter.name not in RUNTIME_PARAMETERS:
            raise ConfigError(f"{parameter.name} is read at start-up only; restart the node to change it")
        values[parameter.name] = parameter.value
    updated = replace(settings, **values)  # NodeSettings validates itself
    if updated.horizon > loaded_horizon:
        raise ConfigError(
            f"horizon {updated.horizon}: the predictor was loaded for {loaded_horizon} frames at start-up; "
            f"restart the node with horizon:={updated.horizon} (where the model file allows it) to predict further")
    return updated
