"""Topic names of predictor_node: relative, so that a namespace (``-r __ns:=/robot1``,
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


def compressed_topic(image_topic: str) -> str:
    """image_transport's compressed topic of a (resolved) image topic."""
    return image_topic.rstrip("/") + "/compressed"


def camera_info_topic(image_topic: str) -> str:
    """The camera_info topic beside a (resolved) image topic: /ns/camera/image_raw -> /ns/camera/camera_info."""
    parent = image_topic.rstrip("/").rpartition("/")[0]
    return f"{parent}/camera_info"
