"""Fitting camera images to the model's resolution, the same way everywhere.

Centre crop to the model's aspect ratio, then area interpolation: the node, the
evaluator and the baselines all use this, so every method sees the same pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def center_crop_to_aspect(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Largest centred crop of ``image`` with the aspect ratio height:width (a view, no copy)."""
    h, w = image.shape[:2]
    if h * width > w * height:  # too tall
        crop_h = max(1, round(w * height / width))
        top = (h - crop_h) // 2
        return image[top : top + crop_h]
    crop_w = max(1, round(h * width / height))
    left = (w - crop_w) // 2
    return image[:, left : left + crop_w]


def fit_to_model(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop to height:width and resize with area interpolation (uint8 in, uint8 out)."""
    cropped = center_crop_to_aspect(image, height, width)
    if cropped.shape[:2] == (height, width):
        return np.ascontiguousarray(cropped)
    resized = cv2.resize(cropped, (width, height), interpolation=cv2.INTER_AREA)
    if image.ndim == 3 and resized.ndim == 2:  # cv2 drops a trailing 1-channel axis
        resized = resized[:, :, None]
    return resized
