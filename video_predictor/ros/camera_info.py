"""The camera model of the predicted frames: the camera's K and P with the node's centre
crop and resize applied (video_predictor.core.preprocess.fit_to_model), without ROS.

The predicted frames are the camera image centre-cropped to the model's aspect ratio and
resized with area interpolation, which maps pixel centres as
``u' = (u - left + 0.5) * sx - 0.5`` (sx = model width / crop width; likewise v). As a
matrix A = [[sx, 0, (0.5 - left) sx - 0.5], [0, sy, (0.5 - top) sy - 0.5], [0, 0, 1]],
and K' = A K, P' = A P: a 3-D point projects with K' (or P') to the pixel of the predicted
frame where the image shows it. Distortion coefficients act on normalised coordinates
and are unchanged, as is R.

A camera_info with a region of interest or binning describes the full sensor; the image
is the ROI binned, so K and P are first taken to image pixels as image_geometry does
(u_image = (u_sensor - roi.x_offset) / binning_x) and the image size is the ROI's (or the
sensor's) divided by the binning. The predicted frames' CameraInfo has neither.
"""

from __future__ import annotations

import numpy as np

from video_predictor.core.preprocess import center_crop_box


def crop_scale_matrix(height: int, width: int, model_height: int, model_width: int) -> np.ndarray:
    """A (3x3): camera pixels of an ``height`` x ``width`` image -> predicted-frame pixels."""
    if height <= 0 or width <= 0:
        raise ValueError(f"camera_info has no image size ({width}x{height})")
    top, left, crop_h, crop_w = center_crop_box(height, width, model_height, model_width)
    sx, sy = model_width / crop_w, model_height / crop_h
    return np.array([[sx, 0.0, (0.5 - left) * sx - 0.5],
                     [0.0, sy, (0.5 - top) * sy - 0.5],
                     [0.0, 0.0, 1.0]])


def sensor_to_image_matrix(x_offset: int = 0, y_offset: int = 0, binning_x: int = 0, binning_y: int = 0) -> np.ndarray:
    """B (3x3): sensor pixels -> pixels of the published ROI-cropped, binned image (0 = no binning)."""
    bx, by = max(binning_x, 1), max(binning_y, 1)
    return np.array([[1.0 / bx, 0.0, -x_offset / bx], [0.0, 1.0 / by, -y_offset / by], [0.0, 0.0, 1.0]])


def image_size(width: int, height: int, roi_width: int = 0, roi_height: int = 0,
               binning_x: int = 0, binning_y: int = 0) -> tuple[int, int]:
    """(height, width) of the image a camera_info describes."""
    w, h = (roi_width, roi_height) if roi_width and roi_height else (width, height)
    return h // max(binning_y, 1), w // max(binning_x, 1)


def fitted_intrinsics(k: np.ndarray, p: np.ndarray, height: int, width: int,
                      model_height: int, model_width: int) -> tuple[np.ndarray, np.ndarray]:
    """(K', P') of the predicted frames from the camera's K (3x3) and P (3x4)."""
    a = crop_scale_matrix(height, width, model_height, model_width)
    return a @ np.asarray(k, float).reshape(3, 3), a @ np.asarray(p, float).reshape(3, 4)
