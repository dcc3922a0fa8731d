"""The predicted frames' camera model: K and P with the node's crop and resize applied.

Checked against the pixels themselves: a bright dot drawn where K projects a 3-D point
lands, after fit_to_model, where K' projects it."""

import numpy as np
import pytest

from video_predictor.core.preprocess import fit_to_model
from video_predictor.ros.camera_info import crop_scale_matrix, fitted_intrinsics


def dot_centroid(image: np.ndarray) -> tuple[float, float]:
    weights = image.astype(float)
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    return (weights * xs).sum() / weights.sum(), (weights * ys).sum() / weights.sum()


@pytest.mark.parametrize("height, width, model", [(480, 640, (64, 64)), (144, 176, (64, 64)), (480, 640, (96, 64)),
                                                  (600, 800, (120, 160))])
def test_points_project_with_the_fitted_k_where_the_fitted_image_shows_them(height, width, model):
    f = 0.8 * width
    k = np.array([[f, 0.0, width / 2 + 7.3], [0.0, 0.99 * f, height / 2 - 4.1], [0.0, 0.0, 1.0]])
    p = np.hstack([k, [[-26.0], [0.0], [0.0]]])  # a right stereo camera: Tx = -fx * baseline
    k2, p2 = fitted_intrinsics(k, p, height, width, *model)
    for point in ([0.3, -0.2, 4.0], [-0.5, 0.4, 3.0], [0.05, 0.1, 5.0]):
        u, v, w = k @ point
        u, v = u / w, v / w
        image = np.zeros((height, width), np.uint8)
        y, x = np.mgrid[:height, :width]
        image[(x - u) ** 2 + (y - v) ** 2 <= 36] = 255  # radius 6 px
        fitted = fit_to_model(image, *model)
        seen = dot_centroid(fitted)
        u2, v2, w2 = k2 @ point
        np.testing.assert_allclose(seen, (u2 / w2, v2 / w2), atol=0.08)
        up, vp, wp = p2 @ [*point, 1.0]
        ur, vr, wr = p @ [*point, 1.0]
        a = crop_scale_matrix(height, width, *model)
        np.testing.assert_allclose((up / wp, vp / wp), (a @ [ur / wr, vr / wr, 1.0])[:2], atol=1e-9)


def test_an_image_already_at_the_model_size_keeps_its_k():
    k = np.array([[100.0, 0.0, 31.5], [0.0, 100.0, 31.5], [0.0, 0.0, 1.0]])
    k2, _ = fitted_intrinsics(k, np.hstack([k, np.zeros((3, 1))]), 64, 64, 64, 64)
    np.testing.assert_allclose(k2, k)


def test_no_image_size_is_an_error():
    with pytest.raises(ValueError, match="no image size"):
        crop_scale_matrix(0, 0, 64, 64)


def test_roi_and_binning_are_taken_to_image_pixels_first():
    """A 1280x960 sensor, ROI 800x600 at (200, 100), binned 2x2: the image is 400x300, and a
    point at sensor pixel (u, v) is at ((u - 200) / 2, (v - 100) / 2) in it."""
    from video_predictor.ros.camera_info import image_size, sensor_to_image_matrix

    assert image_size(1280, 960, 800, 600, 2, 2) == (300, 400)
    assert image_size(1280, 960) == (960, 1280)
    b = sensor_to_image_matrix(200, 100, 2, 2)
    k = np.array([[900.0, 0.0, 640.0], [0.0, 900.0, 480.0], [0.0, 0.0, 1.0]])
    point = np.array([0.1, -0.05, 2.0])
    u, v, w = k @ point
    ui, vi, wi = (b @ k) @ point
    np.testing.assert_allclose((ui / wi, vi / wi), ((u / w - 200) / 2, (v / w - 100) / 2))
    np.testing.assert_allclose(sensor_to_image_matrix(), np.eye(3))
