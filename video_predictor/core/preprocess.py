"""Fitting camera images to the model's resolution, the same way everywhere.

Centre crop to the model's aspect ratio, then area interpolation: the node, the
evaluator and the baselines all use this, so every method sees the same pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def center_crop_box(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, crop_h, crop_w): the largest centred crop of an h x w image with the
    aspect ratio height:width."""
    if h * width > w * height:  # too tall
        crop_h = max(1, round(w * height / width))
        return (h - crop_h) // 2, 0, crop_h, w
    crop_w = max(1, round(h * width / height))
    return 0, (w - crop_w) // 2, h, crop_w


def center_crop_to_aspect(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Largest centred crop of ``image`` with the aspect ratio height:width (a view, no copy)."""
    top, left, crop_h, crop_w = center_crop_box(*image.shape[:2], height, width)
    return image[top : top + crop_h, left : left + crop_w]


def fit_to_model(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop to height:width and resize with area interpolation (uint8 in, uint8 out)."""
    cropped = center_crop_to_aspect(image, height, width)
    if cropped.shape[:2] == (height, width):
        return np.ascontiguousarray(cropped)
    resized = cv2.resize(cropped, (width, height), interpolation=cv2.INTER_AREA)
    if image.ndim == 3 and resized.ndim == 2:  # cv2 drops a trailing 1-channel axis
        resized = resized[:, :, None]
    return resized
