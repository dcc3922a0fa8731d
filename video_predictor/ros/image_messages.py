"""numpy arrays -> sensor_msgs/Image for publishing: predicted frames in rgb8, bgr8 or
mono8 (the input's colour family, see video_predictor.core.pixels.output_encoding) and
uncertainty maps as little-endian 32FC1."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from video_predictor.core.pixels import ImageError, match_channels


def array_to_image(array: np.ndarray, encoding: str, header: Header) -> Image:
    """Build an rgb8, bgr8 or mono8 Image from an RGB (H, W, 3) or grey (H, W[, 1]) uint8 array.

    The array is converted to ``encoding``: RGB is reversed for bgr8 and averaged for
    mono8, grey is replicated for rgb8/bgr8.
    """
    if array.dtype != np.uint8:
        raise ImageError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ImageError(f"expected an (H, W, 3) or (H, W, 1) array, got shape {array.shape}")
    if encoding == "mono8":
        pixels = match_channels(array, 1)
    elif encoding in ("rgb8", "bgr8"):
        pixels = match_channels(array, 3)
        if encoding == "bgr8":
            pixels = pixels[:, :, ::-1]
    else:
        raise ImageError(f"cannot publish encoding {encoding!r}; use rgb8, bgr8 or mono8")
    height, width, channels = pixels.shape
    return _image(header, height, width, encoding, width * channels, np.ascontiguousarray(pixels).tobytes())


def float_array_to_image(array: np.ndarray, header: Header) -> Image:
    """Build a 32FC1 Image (little-endian float32, step = 4*W) from an (H, W) array."""
    if array.ndim != 2:
        raise ImageError(f"expected an (H, W) array for 32FC1, got shape {array.shape}")
    height, width = array.shape
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return _image(header, height, width, "32FC1", 4 * width, data)


def _image(header: Header, height: int, width: int, encoding: str, step: int, data: bytes) -> Image:
    msg = Image()
    msg.header = header
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = step
    msg.data = data
    return msg
