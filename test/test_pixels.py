"""video_predictor.core.pixels: every input encoding decodes to the same RGB pixels; bad messages are
rejected with a clear ImageError; output images have the documented layout."""

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from video_predictor.core.pixels import ImageError, image_to_array, match_channels, output_encoding, unit_to_uint8
from video_predictor.ros.image_messages import array_to_image, float_array_to_image

H, W = 5, 7
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
GREY = RNG.integers(0, 256, (H, W, 1), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (H, W, 1), dtype=np.uint8)

# encoding -> (pixels as laid out on the wire, what image_to_array must return)
WIRE_AND_EXPECTED = {
    "rgb8": (RGB, RGB),
    "bgr8": (RGB[:, :, ::-1], RGB),
    "rgba8": (np.concatenate([RGB, ALPHA], axis=2), RGB),
    "bgra8": (np.concatenate([RGB[:, :, ::-1], ALPHA], axis=2), RGB),
    "mono8": (GREY, GREY),
}


def make_image(pixels: np.ndarray, encoding: str, padding: int = 0, pad_byte: int = 0xAB) -> Image:
    """An Image whose rows are ``pixels`` rows followed by ``padding`` junk bytes."""
    h, w, c = pixels.shape
    rows = np.full((h, w * c + padding), pad_byte, np.uint8)
    rows[:, : w * c] = pixels.reshape(h, w * c)
    msg = Image(height=h, width=w, encoding=encoding, step=w * c + padding)
    msg.data = rows.tobytes()
    return msg


@pytest.mark.parametrize("encoding", sorted(WIRE_AND_EXPECTED))
@pytest.mark.parametrize("padding", [0, 5])
def test_every_encoding_decodes_to_the_known_pixels(encoding, padding):
    wire, expected = WIRE_AND_EXPECTED[encoding]
    array, got_encoding = image_to_array(make_image(wire, encoding, padding), 100, 100)
    assert got_encoding == encoding
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize("encoding", ["rgb8", "mono8"])
def test_rgb8_and_mono8_are_views_of_the_message_data(encoding):
    msg = make_image(WIRE_AND_EXPECTED[encoding][0], encoding, padding=3)
    array, _ = image_to_array(msg, 100, 100)
    assert np.shares_memory(array, np.frombuffer(msg.data, np.uint8))


def test_big_endian_flag_is_harmless_for_8_bit_images():
    msg = make_image(RGB[:, :, ::-1], "bgr8")
    msg.is_bigendian = 1
    np.testing.assert_array_equal(image_to_array(msg, 100, 100)[0], RGB)


@pytest.mark.parametrize("encoding", ["16UC1", "mono16", "bayer_rggb16", "32FC1", "RGB8", ""])
def test_unsupported_encoding_is_named_and_supported_ones_listed(encoding):
    msg = make_image(RGB, "rgb8")
    msg.encoding = encoding
    with pytest.raises(ImageError) as info:
        image_to_array(msg, 100, 100)
    assert repr(encoding) in str(info.value)
    for supported in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
        assert supported in str(info.value)


def yuv422_wire(rgb: tuple[int, int, int], height: int, width: int, order: str) -> np.ndarray:
    """A flat colour as UYVY or YUYV bytes (H, W, 2), BT.601 video range, computed by hand."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    chroma = np.tile(np.array([u, v]), width // 2)  # U for even pixels, V for odd ones
    pairs = np.stack([chroma, np.full(width, y)], axis=1) if order == "uyvy" else np.stack(
        [np.full(width, y), chroma], axis=1)
    return np.broadcast_to(np.round(pairs), (height, width, 2)).astype(np.uint8)


@pytest.mark.parametrize("encoding, order", [("yuv422", "uyvy"), ("uyvy", "uyvy"), ("yuv422_yuy2", "yuyv"),
                                             ("yuyv", "yuyv")])
@pytest.mark.parametrize("padding", [0, 3])
def test_yuv422_is_converted_to_rgb(encoding, order, padding):
    colour = (200, 80, 30)
    msg = make_image(yuv422_wire(colour, H, 6, order), encoding, padding=padding)
    array, got_encoding = image_to_array(msg, 100, 100)
    assert got_encoding == encoding and array.shape == (H, 6, 3)
    assert np.abs(array.astype(int) - colour).max() <= 2
    assert output_encoding(encoding) == "rgb8"


@pytest.mark.parametrize("encoding, first_rows", [("bayer_rggb8", ("RG", "GB")), ("bayer_bggr8", ("BG", "GR")),
                                                  ("bayer_gbrg8", ("GB", "RG")), ("bayer_grbg8", ("GR", "BG"))])
def test_bayer_mosaics_are_demosaiced_to_rgb(encoding, first_rows):
    colour = {"R": 200, "G": 80, "B": 30}
    mosaic = np.zeros((8, 10, 1), np.uint8)
    for row in range(2):
        for col in range(2):
            mosaic[row::2, col::2] = colour[first_rows[row][col]]
    array, _ = image_to_array(make_image(mosaic, encoding, padding=1), 100, 100)
    np.testing.assert_array_equal(array[2:-2, 2:-2], np.broadcast_to((200, 80, 30), (4, 6, 3)))
    assert output_encoding(encoding) == "rgb8"


def test_yuv422_with_an_odd_width_and_a_bayer_mosaic_under_2x2_are_rejected():
    odd = make_image(np.zeros((2, 5, 2), np.uint8), "yuv422")
    with pytest.raises(ImageError, match="even width"):
        image_to_array(odd, 100, 100)
    with pytest.raises(ImageError, match="2x2"):
        image_to_array(make_image(np.zeros((1, 6, 1), np.uint8), "bayer_rggb8"), 100, 100)


def test_step_shorter_than_a_row_is_rejected():
    msg = make_image(RGB, "rgb8")
    msg.step = W * 3 - 1
    msg.data = bytes(msg.step * H)  # consistent length, so only the step is wrong
    with pytest.raises(ImageError, match="step"):
        image_to_array(msg, 100, 100)


@pytest.mark.parametrize("delta", [-1, 1, -W * 3])
def test_data_length_other_than_step_times_height_is_rejected(delta):
    msg = make_image(RGB, "rgb8")
    msg.data = bytes(W * 3 * H + delta)
    with pytest.raises(ImageError, match="data holds"):
        image_to_array(msg, 100, 100)


@pytest.mark.parametrize("height, width", [(0, W), (H, 0), (0, 0)])
def test_zero_sized_image_is_rejected(height, width):
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    with pytest.raises(ImageError, match="empty"):
        image_to_array(msg, 100, 100)


class _UntouchableData:
    """A message stand-in whose pixel data must never be accessed."""

    def __init__(self, height, width):
        self.height, self.width, self.encoding, self.step, self.is_bigendian = height, width, "rgb8", width * 3, 0

    @property
    def data(self):
        raise AssertionError("the data of an oversized image was read")


@pytest.mark.parametrize("height, width", [(H, 101), (101, W), (5000, 5000)])
def test_oversized_image_is_rejected_before_its_data_is_read(height, width):
    with pytest.raises(ImageError, match="exceeds"):
        image_to_array(_UntouchableData(height, width), max_width=100, max_height=100)


def test_image_at_the_size_limit_is_accepted():
    assert image_to_array(make_image(RGB, "rgb8"), max_width=W, max_height=H)[0].shape == (H, W, 3)


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


@pytest.mark.parametrize("given, expected", [("rgb8", "rgb8"), ("rgba8", "rgb8"), ("bgr8", "bgr8"),
                                             ("bgra8", "bgr8"), ("mono8", "mono8")])
def test_predictions_use_the_colour_family_of_the_input(given, expected):
    assert output_encoding(given) == expected


def test_output_encoding_of_an_unknown_input_is_an_image_error():
    with pytest.raises(ImageError):
        output_encoding("16UC1")


def test_grey_is_replicated_for_an_rgb_model_and_rgb_averaged_for_a_grey_model():
    np.testing.assert_array_equal(match_channels(GREY, 3), np.concatenate([GREY] * 3, axis=2))
    pixel = np.array([[[10, 20, 40]]], np.uint8)  # mean 23.33 -> 23
    assert match_channels(pixel, 1).tolist() == [[[23]]]
    assert match_channels(RGB, 3) is RGB


def test_unit_floats_round_to_nearest_uint8_and_clip():
    floats = np.array([0.0, 1.0, 0.5, 0.2, -0.3, 1.7], np.float32)
    assert unit_to_uint8(floats).tolist() == [0, 255, 128, 51, 0, 255]


HEADER = Header(frame_id="camera_optical")
HEADER.stamp.sec, HEADER.stamp.nanosec = 12, 345


def test_rgb8_output_round_trips_and_keeps_the_header():
    msg = array_to_image(RGB, "rgb8", HEADER)
    assert (msg.height, msg.width, msg.step, msg.encoding, msg.is_bigendian) == (H, W, W * 3, "rgb8", 0)
    assert msg.header.frame_id == "camera_optical"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    np.testing.assert_array_equal(image_to_array(msg, 100, 100)[0], RGB)


def test_bgr8_output_has_reversed_channels_on_the_wire():
    msg = array_to_image(RGB, "bgr8", HEADER)
    wire = np.frombuffer(msg.data, np.uint8).reshape(H, W, 3)
    np.testing.assert_array_equal(wire, RGB[:, :, ::-1])


def test_mono8_output_averages_rgb_back_to_grey():
    msg = array_to_image(RGB, "mono8", HEADER)
    assert (msg.step, msg.encoding) == (W, "mono8")
    expected = np.round(RGB.astype(np.float64).mean(axis=2))
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.uint8).reshape(H, W), expected)


def test_grey_prediction_published_as_rgb8_is_replicated():
    msg = array_to_image(GREY[:, :, 0], "rgb8", HEADER)
    np.testing.assert_array_equal(image_to_array(msg, 100, 100)[0], np.concatenate([GREY] * 3, axis=2))


def test_output_rejects_float_arrays_and_unpublishable_encodings():
    with pytest.raises(ImageError, match="uint8"):
        array_to_image(RGB.astype(np.float32), "rgb8", HEADER)
    with pytest.raises(ImageError, match="rgba8"):
        array_to_image(RGB, "rgba8", HEADER)
    with pytest.raises(ImageError, match="shape"):
        array_to_image(np.zeros((H, W, 2), np.uint8), "rgb8", HEADER)


def test_32fc1_layout_is_little_endian_float32_with_step_4w():
    std = RNG.random((H, W)) * 0.3  # float64 in: converted
    msg = float_array_to_image(std, HEADER)
    assert (msg.height, msg.width, msg.step, msg.encoding, msg.is_bigendian) == (H, W, 4 * W, "32FC1", 0)
    assert len(msg.data) == 4 * W * H
    assert bytes(msg.data) == std.astype("<f4").tobytes()
    np.testing.assert_allclose(np.frombuffer(msg.data, "<f4").reshape(H, W), std, rtol=1e-6)
    assert msg.header.frame_id == "camera_optical"


def test_32fc1_needs_a_2d_array():
    with pytest.raises(ImageError, match="32FC1"):
        float_array_to_image(np.zeros((H, W, 1), np.float32), HEADER)
