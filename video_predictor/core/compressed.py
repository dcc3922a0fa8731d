"""sensor_msgs/CompressedImage payloads (JPEG, PNG) <-> numpy arrays, without ROS.

The node, the bag reader, the evaluator and the trainer decode compressed images here,
so they all see the same pixels. Only the message's ``format`` string and ``data`` bytes
are used, so this works on rclpy messages, rosbags messages and plain bytes alike.

``format`` is what image_transport's compressed plugin writes, ``"<source encoding>;
<codec> compressed <encoding>"`` (``"rgb8; jpeg compressed bgr8"``, ``"mono8; png
compressed mono8"``), or the older bare ``"jpeg"`` / ``"png"``; an empty format is
accepted and the codec read from the data's signature. Depth images
(``compressedDepth``), 16-bit PNGs and other codecs are rejected, as are payloads whose
header is unreadable or larger than the size limit: the dimensions are read from the
JPEG/PNG header before anything is decoded.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import cv2
import numpy as np

from video_predictor.core.pixels import ImageError

CODECS = ("jpeg", "png")
_CODEC_NAMES = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...); C4, C8 and CC are not frames
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class CompressedFormat(NamedTuple):
    codec: str | None  # "jpeg", "png", or None where the format does not say
    source_encoding: str  # the camera's encoding before compression ("" where not said)


def parse_format(format_string: str) -> CompressedFormat:
    """Understand a CompressedImage ``format``; ImageError for depth or an unknown codec."""
    text = format_string.strip().lower()
    if "compresseddepth" in text:
        raise ImageError(f"format {format_string!r}: a compressed depth image, not a camera frame")
    source, _, rest = text.partition(";") if ";" in text else ("", "", text)
    words = rest.replace(",", " ").split()
    codecs = {_CODEC_NAMES[w] for w in words if w in _CODEC_NAMES}
    if len(codecs) > 1 or (words and not codecs):
        raise ImageError(f"unsupported compressed format {format_string!r}; supported: jpeg, png")
    return CompressedFormat(codecs.pop() if codecs else None, source.strip())


def sniff_codec(data: bytes) -> str | None:
    """The codec the bytes start with, or None."""
    if data[:8] == PNG_SIGNATURE:
        return "png"
    if data[:3] == JPEG_SIGNATURE:
        return "jpeg"
    return None


def png_size(data: bytes) -> tuple[int, int, int]:
    """(width, height, bit depth) from a PNG's IHDR chunk."""
    if len(data) < 26 or data[12:16] != b"IHDR":
        raise ImageError("PNG without a readable IHDR header")
    width, height, depth = struct.unpack(">IIB", data[16:25])
    return width, height, depth


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ImageError("JPEG with a malformed segment list")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise ImageError("JPEG without a readable frame header")


def decode_compressed(format_string: str, data, max_width: int, max_height: int) -> tuple[np.ndarray, str]:
    """Decode a JPEG or PNG payload to RGB (H, W, 3) or grey (H, W, 1) uint8.

    Returns the array and the encoding the node treats the input as: ``mono8`` for a grey
    image, else ``rgb8`` where the source encoding was RGB and ``bgr8`` otherwise (what
    image_transport compresses), so the predicted frames come out in the camera's colour
    order. Raises ImageError for anything that is not a usable camera frame.
    """
    declared = parse_format(format_string)
    data = bytes(data) if not isinstance(data, bytes) else data
    if not data:
        raise ImageError("empty compressed image")
    codec = sniff_codec(data)
    if codec is None:
        raise ImageError(f"data is neither JPEG nor PNG (format {format_string!r}, starts {data[:4].hex()})")
    if declared.codec is not None and declared.codec != codec:
        raise ImageError(f"format {format_string!r} says {declared.codec} but the data is {codec}")
    if codec == "png":
        width, height, depth = png_size(data)
        if depth > 8:
            raise ImageError(f"{depth}-bit PNG: depth or raw sensor data, not an 8-bit camera frame")
    else:
        width, height = jpeg_size(data)
    if width == 0 or height == 0:
        raise ImageError(f"empty image: {width}x{height}")
    if width > max_width or height > max_height:
        raise ImageError(f"image {width}x{height} exceeds the largest accepted {max_width}x{max_height}")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ImageError(f"{codec} data could not be decoded (truncated or corrupt)")
    if decoded.dtype != np.uint8:
        raise ImageError(f"{codec} decodes to {decoded.dtype}, not an 8-bit camera frame")
    if decoded.shape[:2] != (height, width):
        raise ImageError(f"{codec} header says {width}x{height}, data decodes to {decoded.shape[1]}x{decoded.shape[0]}")
    if decoded.ndim == 2:
        return decoded[:, :, None], "mono8"
    if decoded.shape[2] == 4:
        rgb = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    elif decoded.shape[2] == 3:
        rgb = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    else:
        raise ImageError(f"{codec} with {decoded.shape[2]} channels")
    return rgb, "rgb8" if declared.source_encoding.startswith("rgb") else "bgr8"


def encode_compressed(frame: np.ndarray, codec: str = "jpeg", encoding: str = "bgr8", quality: int = 90) -> tuple[str, bytes]:
    """(format, data) of a CompressedImage holding ``frame`` as image_transport writes it.

    frame: (H, W, 3) uint8 in ``encoding``'s channel order (rgb8 or bgr8), or (H, W[, 1])
    grey for mono8.
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
    frame = np.asarray(frame)
    if encoding == "rgb8":
        wire = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    elif encoding in ("bgr8", "mono8"):
        wire = frame
    else:
        raise ValueError(f"encoding must be rgb8, bgr8 or mono8, got {encoding!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if codec == "jpeg" else []
    ok, buffer = cv2.imencode(".jpg" if codec == "jpeg" else ".png", wire, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {frame.shape} frame as {codec}")
    compressed = "mono8" if encoding == "mono8" else "bgr8"
    return f"{encoding}; {codec} compressed {compressed}", buffer.tobytes()
