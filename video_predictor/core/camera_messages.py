"""Any camera message, sensor_msgs/Image or sensor_msgs/CompressedImage (rclpy or rosbags),
to a numpy array: the one entry point of the node, the bag reader and the live evaluator.
The two are told apart by their fields alone, so no ROS package is imported."""

from __future__ import annotations

import numpy as np

from video_predictor.core.compressed import decode_compressed
from video_predictor.core.pixels import image_to_array


def decode_image_message(msg, max_width: int, max_height: int) -> tuple[np.ndarray, str]:
    """image_to_array for a sensor_msgs/Image, decode_compressed for a CompressedImage
    (told apart by its ``format`` field); the array and the encoding the node treats it as."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return decode_compressed(msg.format, msg.data, max_width, max_height)
    return image_to_array(msg, max_width, max_height)
