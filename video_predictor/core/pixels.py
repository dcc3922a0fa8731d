"""Camera pixels to numpy arrays, without ROS: image messages' fields decoded.

Input: rgb8, bgr8, rgba8, bgra8 and mono8 become RGB (H, W, 3) or grey (H, W, 1)
uint8 arrays, as zero-copy views of ``msg.data`` where no conversion is needed. The
common 8-bit camera formats that are not RGB are converted to RGB with OpenCV, with the
conversions cv_bridge uses: YUV 4:2:2 (``yuv422`` = UYVY, ``yuv422_yuy2`` = YUYV, and
their newer names ``uyvy``/``yuyv``; BT.601 video range) and 8-bit Bayer mosaics
(``bayer_rggb8``, ``bayer_bggr8``, ``bayer_gbrg8``, ``bayer_grbg8``; bilinear
demosaicing). Everything else (16-bit and float images such as ``16UC1``, ``mono16``,
``32FC1``, 16-bit Bayer) is rejected: those are depth or raw sensor data, not frames a
model trained on 8-bit video can use without a scaling the node cannot guess.
Header fields are checked before the pixel data is touched, so an oversized or
malformed message costs nothing. Decoding is plain numpy, not cv_bridge: cv_bridge's
Python decoder divides ``step`` by the pixel size (misreading rows padded by a part of
a pixel) and byte-swaps with ``ndarray.newbyteorder`` (gone in NumPy 2) when
``is_bigendian`` is set; both are valid 8-bit images here.

Output: predicted frames go out in the colour family of the input (rgb8, bgr8 or
mono8) and uncertainty maps as little-endian 32FC1.

Decoding reads only the message's fields, so rosbags messages decode alike, and this
module imports no ROS message package until an Image is built (the bag reader, the
evaluator and the trainer decode without ROS). sensor_msgs/CompressedImage (JPEG, PNG)
is decoded by video_predictor.core.compressed; video_predictor.core.camera_messages takes either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from sensor_msgs.msg import Image

#: input encoding -> OpenCV conversion to RGB (the codes cv_bridge uses; OpenCV names a
#: Bayer pattern by its second row's first two pixels, hence rggb -> BayerBG)
CONVERTED_TO_RGB = {
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2,
    "yuyv": cv2.COLOR_YUV2RGB_YUY2,
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}
_YUV422 = ("yuv422", "uyvy", "yuv422_yuy2", "yuyv")

#: encoding -> bytes per pixel on the wire (all 8-bit per channel)
BYTES_PER_PIXEL = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1,
                   **{e: 2 if e in _YUV422 else 1 for e in CONVERTED_TO_RGB}}
SUPPORTED_ENCODINGS = tuple(BYTES_PER_PIXEL)

#: input encoding -> encoding of the predicted frames published for it
OUTPUT_ENCODING = {"rgb8": "rgb8", "rgba8": "rgb8", "bgr8": "bgr8", "bgra8": "bgr8", "mono8": "mono8",
                   **dict.fromkeys(CONVERTED_TO_RGB, "rgb8")}


# for tools reading recordings, which take any size; the node has max_image_width/height
NO_SIZE_LIMIT = 1 << 30


class ImageError(ValueError):
    """A sensor_msgs/Image that the node cannot use; the message says why."""


def check_image_header(msg: Image, max_width: int, max_height: int) -> int:
    """Validate encoding, size, step and data length; return bytes per pixel.

    Reads ``len(msg.data)`` but never the pixels themselves.
    """
    encoding = msg.encoding
    if encoding not in BYTES_PER_PIXEL:
        raise ImageError(f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    width, height, step = msg.width, msg.height, msg.step
    if width == 0 or height == 0:
        raise ImageError(f"empty image: {width}x{height}")
    if width > max_width or height > max_height:
        raise ImageError(f"image {width}x{height} exceeds the largest accepted {max_width}x{max_height}")
    if encoding in _YUV422 and width % 2:  # two pixels share one U and one V sample
        raise ImageError(f"{encoding} needs an even width, got {width}")
    if encoding.startswith("bayer_") and (width < 2 or height < 2):
        raise ImageError(f"a {encoding} mosaic needs at least 2x2 pixels, got {width}x{height}")
    bpp = BYTES_PER_PIXEL[encoding]
    if step < width * bpp:
        raise ImageError(f"step {step} is shorter than a {encoding} row of width {width} ({width * bpp} bytes)")
    if len(msg.data) != step * height:
        raise ImageError(f"data holds {len(msg.data)} bytes, expected step*height = {step}*{height} = {step * height}")
    return bpp


def image_to_array(msg: Image, max_width: int, max_height: int) -> tuple[np.ndarray, str]:
    """Decode an image message to RGB (H, W, 3) or, for mono8, grey (H, W, 1) uint8.

    Returns the array and the input encoding. For rgb8 and mono8 the array is a view of
    ``msg.data`` (row padding skipped); the other encodings are converted into a copy
    (YUV 4:2:2 and Bayer to RGB, see the module docstring).
    Raises ImageError for anything the node cannot use. ``is_bigendian`` does not
    matter for 8-bit channels and is ignored.
    """
    bpp = check_image_header(msg, max_width, max_height)
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    pixels = rows[:, : msg.width * bpp].reshape(msg.height, msg.width, bpp)  # still a view
    if msg.encoding in ("rgb8", "mono8"):
        return pixels, msg.encoding
    if msg.encoding == "rgba8":
        return np.ascontiguousarray(pixels[:, :, :3]), msg.encoding
    if msg.encoding in CONVERTED_TO_RGB:
        wire = np.ascontiguousarray(pixels if bpp > 1 else pixels[:, :, 0])
        return cv2.cvtColor(wire, CONVERTED_TO_RGB[msg.encoding]), msg.encoding
    return np.ascontiguousarray(pixels[:, :, 2::-1]), msg.encoding  # bgr8 / bgra8: channels 2, 1, 0


def uncertainty_to_array(msg: Image) -> np.ndarray:
    """A 32FC1 Image (an uncertainty map) as an (H, W) float32 array."""
    if msg.encoding != "32FC1":
        raise ImageError(f"expected a 32FC1 uncertainty map, got encoding {msg.encoding!r}")
    if msg.step < 4 * msg.width or len(msg.data) != msg.step * msg.height:
        raise ImageError(f"32FC1 map {msg.width}x{msg.height} with step {msg.step} holds {len(msg.data)} bytes")
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : 4 * msg.width]
    return np.ascontiguousarray(rows).view(">f4" if msg.is_bigendian else "<f4").astype(np.float32)


def output_encoding(input_encoding: str) -> str:
    """Encoding of the predicted frames for an input in ``input_encoding``."""
    try:
        return OUTPUT_ENCODING[input_encoding]
    except KeyError:
        raise ImageError(f"unsupported encoding {input_encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}") from None


def match_channels(frame: np.ndarray, channels: int) -> np.ndarray:
    """Give an (H, W, C) uint8 frame the model's channel count: grey is replicated to
    RGB, RGB is averaged to grey."""
    have = frame.shape[2]
    if have == channels:
        return frame
    if have == 1 and channels == 3:
        return np.repeat(frame, 3, axis=2)
    if have == 3 and channels == 1:
        return _mean_to_uint8(frame)
    raise ImageError(f"cannot turn a {have}-channel frame into {channels} channels")


def unit_to_uint8(frame: np.ndarray) -> np.ndarray:
    """A float frame in [0, 1] to uint8, rounded to nearest (out-of-range values clipped)."""
    return (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _mean_to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32).mean(axis=2, keepdims=True) + 0.5).astype(np.uint8)
