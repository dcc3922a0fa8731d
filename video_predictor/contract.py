"""The surface users rely on, defined once: topic names, stamp arithmetic and the
/diagnostics keys of predictor_node (docs/node.md describes them for users).

Topic names are relative, so that a namespace (``-r __ns:=/robot1``,
the launch file's ``namespace``) and remapping move them, as in any ROS node.

The camera's CompressedImage and CameraInfo topics are found from the resolved camera
topic the way image_transport does: ``<image topic>/compressed`` and ``camera_info``
beside the image topic, so remapping the camera topic moves all three.
"""

from __future__ import annotations

CAMERA_TOPIC = "camera/image_raw"
FRAMES_TOPIC = "predicted_frames"
UNCERTAINTY_TOPIC = "predicted_uncertainty"
# one message per input holding all K frames (stacked vertically), stamped with the input's stamp
SEQUENCE_TOPIC = "predicted_sequence"
SEQUENCE_UNCERTAINTY_TOPIC = "predicted_sequence_uncertainty"
# the predicted frames' camera model, one per predicted frame (same header)
PREDICTED_CAMERA_INFO_TOPIC = "predicted_camera_info"
DIAGNOSTICS_TOPIC = "/diagnostics"  # absolute: the diagnostics aggregator's topic

# as resolved for a node in the root namespace: the tools' defaults (bags record absolute names)
ROOT_CAMERA_TOPIC = "/" + CAMERA_TOPIC
ROOT_FRAMES_TOPIC = "/" + FRAMES_TOPIC
ROOT_UNCERTAINTY_TOPIC = "/" + UNCERTAINTY_TOPIC


def compressed_topic(image_topic: str) -> str:
    """image_transport's compressed topic of a (resolved) image topic."""
    return image_topic.rstrip("/") + "/compressed"


def camera_info_topic(image_topic: str) -> str:
    """The camera_info topic beside a (resolved) image topic: /ns/camera/image_raw -> /ns/camera/camera_info."""
    parent = image_topic.rstrip("/").rpartition("/")[0]
    return f"{parent}/camera_info"


# -- stamps ----------------------------------------------------------------------------------

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    """A builtin_interfaces/Time (rclpy or rosbags) as integer nanoseconds."""
    return stamp.sec * NS_PER_S + stamp.nanosec


def split_ns(ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec) of a builtin_interfaces/Time."""
    return divmod(int(ns), NS_PER_S)


def prediction_stamps_ns(newest_ns: int, period_s: float, horizon: int) -> list[int]:
    """Stamps of predictions k = 1..horizon: newest + k*period, to the nearest nanosecond
    (each rounded on its own, so rounding errors do not add up over k)."""
    return [newest_ns + round(k * period_s * 1e9) for k in range(1, horizon + 1)]


# -- /diagnostics ----------------------------------------------------------------------------

DIAGNOSTICS_STATUS_NAME = "video_predictor: predictor_node"


class DiagnosticKey:
    """Keys of the node's DiagnosticStatus values (all strings on the wire)."""

    BACKEND = "backend"
    BACKEND_REASON = "backend_reason"
    MODEL = "model"
    INPUT_FRAMES = "input_frames"
    HORIZON = "horizon"
    RESOLUTION = "resolution"  # "HxW"
    FRAME_PERIOD = "frame_period"  # the prediction period in use, seconds (repr of a float)
    PREDICTION_PERIOD_SOURCE = "prediction_period_source"  # camera, model or parameter
    MODEL_FRAME_PERIOD = "model_frame_period"  # the model's metadata: seconds or "camera"
    CAMERA_PERIOD = "camera_period"
    # online adaptation (parameter adapt): per horizon, the weights of the blended predictions
    # ("model 0.61 flow 0.00 copy_last 0.39; ..."), the std factors, and the frames scored
    ADAPTATION = "adaptation"
    LATENCY_MS_LAST = "latency_ms_last"
    LATENCY_MS_P50 = "latency_ms_p50"
    LATENCY_MS_P99 = "latency_ms_p99"
    LAST_ERROR = "last_error"
    LAST_BUFFER_RESTART = "last_buffer_restart"
    WARNING = "warning"
    BUFFER_RESTARTS = "buffer_restarts"


def format_resolution(height: int, width: int) -> str:
    """The model resolution as /diagnostics write it: "HxW"."""
    return f"{height}x{width}"


def parse_resolution(text: str) -> tuple[int, int] | None:
    """(height, width) from "HxW"; None for anything else."""
    height, _, width = text.partition("x")
    return (int(height), int(width)) if height.isdigit() and width.isdigit() else None


FRAMES_KEY_PREFIX = "frames_"  # every input-frame counter: frames_received, frames_predicted, ...


def frames_key(outcome: str) -> str:
    """The counter key of an input-frame outcome: received -> frames_received, ..."""
    return FRAMES_KEY_PREFIX + outcome
