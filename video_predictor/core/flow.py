"""Classical optical-flow extrapolation (OpenCV Farneback), the contract's recipe.

It is two things at once: the flow baseline every model is scored against, and the
flow-anchored model's input (its backward flow is computed before the graph). One
definition serves both so the model's anchor and the evaluator's baseline cannot drift.
Frames are (N, H, W, C) uint8, oldest first (RGB, or grey with C = 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np


def check_frames(frames: np.ndarray, needed: int) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or frames.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 1 or 3) uint8 frames, got {frames.shape} {frames.dtype}")
    if len(frames) < needed:
        raise ValueError(f"need at least {needed} frames, got {len(frames)}")
    return frames


def check_horizon(horizon: int) -> None:
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")


def _grey(frame: np.ndarray) -> np.ndarray:
    return frame[:, :, 0] if frame.shape[-1] == 1 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


@dataclass(frozen=True)
class FlowExtrapolation:
    """Constant-motion extrapolation with OpenCV Farneback flow.

    Flow is computed from the last frame to the one before, so it points backwards in
    time; k steps ahead, pixel p takes the last frame's value at p + k * flow(p)
    (bilinear, border replicated). Grey conversion uses RGB weights: frames are RGB here,
    which gives the same grey image as the contract's BGR reference.
    """

    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2

    def describe(self) -> str:
        return (
            "OpenCV Farneback flow last->previous frame (grey; "
            f"pyr_scale {self.pyr_scale}, levels {self.levels}, winsize {self.winsize}, "
            f"iterations {self.iterations}, poly_n {self.poly_n}, poly_sigma {self.poly_sigma}); "
            "frame k ahead samples the last frame at p + k*flow(p), bilinear, border replicate"
        )

    def backward_flow(self, frames: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32 flow from the last frame to the one before."""
        frames = check_frames(frames, 2)
        return cv2.calcOpticalFlowFarneback(
            _grey(frames[-1]), _grey(frames[-2]), None,
            self.pyr_scale, self.levels, self.winsize, self.iterations, self.poly_n, self.poly_sigma, 0,
        )

    def __call__(self, frames: np.ndarray, horizon: int) -> np.ndarray:
        frames = check_frames(frames, 2)
        check_horizon(horizon)
        return self.extrapolate(frames[-1], self.backward_flow(frames), horizon)

    @staticmethod
    def extrapolate(last: np.ndarray, flow: np.ndarray, horizon: int) -> np.ndarray:
        """(horizon, H, W, C) uint8: ``last`` (H, W, C) uint8 carried k steps along the
        backward ``flow`` (H, W, 2), k = 1..horizon; one remap over the K maps stacked."""
        h, w = last.shape[:2]
        grid_x, grid_y = _pixel_grid(h, w)
        steps = np.arange(1, horizon + 1, dtype=np.float32)[:, None, None]
        map_x = (grid_x + steps * flow[..., 0]).reshape(horizon * h, w)
        map_y = (grid_y + steps * flow[..., 1]).reshape(horizon * h, w)
        warped = cv2.remap(last, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return warped.reshape((horizon,) + last.shape)  # remap drops a 1-channel axis


@lru_cache(maxsize=8)
def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False  # shared between calls
    return grid_x, grid_y
