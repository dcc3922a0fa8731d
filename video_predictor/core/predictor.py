"""The predictor interface that the node and the evaluator program against.

A backend (PyTorch, ONNX Runtime, TensorRT) turns a model file into a ``Predictor``.
Frames go in as uint8 RGB at the model's resolution; predictions come out in [0, 1].
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.metadata import ModelMetadata

# The flow-input models' flow: the evaluator's flow baseline, so that an untrained
# flow-anchored model reproduces that baseline.
FLOW_METHODS = {"farneback": FlowExtrapolation()}


class ModelLoadError(ValueError):
    """The model file cannot be used: names the file and the problem."""


class PredictionError(RuntimeError):
    """Inference failed or produced unusable output (NaN/Inf)."""


@dataclass
class Prediction:
    """K predicted frames for each of B inputs.

    frames: (B, K, H, W, C) float32 in [0, 1], RGB (C = 3) or grey (C = 1).
    std:    (B, K, H, W) float32, per-pixel standard deviation of the predicted
            intensity in units of the [0, 1] range.
    """

    frames: np.ndarray
    std: np.ndarray

    def check_finite(self) -> None:
        if not (np.isfinite(self.frames).all() and np.isfinite(self.std).all()):
            raise PredictionError("model output contains NaN or Inf")


class Predictor(ABC):
    """Runs one model: N observed frames in, K future frames and their std out."""

    #: short backend name for logs and diagnostics ("torch", "onnxruntime", ...)
    backend_name: str = "abstract"

    def __init__(self, metadata: ModelMetadata, horizon: int) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.metadata = metadata
        self.horizon = horizon
        #: the flow input of the latest predict() call, (B, H, W, 2); None without one
        self.last_flow: np.ndarray | None = None

    @abstractmethod
    def _run(self, frames: np.ndarray, flow: np.ndarray | None) -> Prediction:
        """frames: (B, N, H, W, C) uint8, already validated; flow: (B, H, W, 2) float32 for
        models with a flow input (metadata.flow_input), else None."""

    def predict(self, frames: np.ndarray, last_interval: float | np.ndarray | None = None) -> Prediction:
        """Predict ``horizon`` frames ahead of each sequence.

        frames: (B, N, H, W, C) or (N, H, W, C) uint8 at the model's resolution,
        oldest first. last_interval: time between the two newest frames, in prediction
        periods (scalar or (B,)); None = 1 (evenly spaced). A flow-input model's flow is
        divided by it, so that the flow it sees is the motion of one prediction period.
        Raises ValueError on a wrong shape, PredictionError on NaN/Inf.
        """
        frames = self.checked_frames(frames)
        flow = flow_input(frames, self.metadata.flow_input, last_interval) if self.metadata.flow_input else None
        self.last_flow = flow
        prediction = self._run(frames, flow)
        prediction.check_finite()
        return prediction

    def checked_frames(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` as predict() takes them, (B, N, H, W, C) uint8 and contiguous; raises
        ValueError on a wrong shape or type."""
        frames = np.asarray(frames)
        if frames.ndim == 4:
            frames = frames[None]
        md = self.metadata
        expected = (md.input_frames, md.height, md.width, md.channels)
        if frames.ndim != 5 or frames.shape[1:] != expected:
            raise ValueError(f"expected frames of shape (B, {', '.join(map(str, expected))}), got {frames.shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames, got {frames.dtype}")
        return np.ascontiguousarray(frames)

    def warm_up(self) -> None:
        """One prediction on a blank input, so the first real frame pays no set-up cost."""
        md = self.metadata
        self.predict(np.zeros((1, md.input_frames, md.height, md.width, md.channels), np.uint8))


def flow_input(frames: np.ndarray, method: str, last_interval: float | np.ndarray | None = None) -> np.ndarray:
    """(B, H, W, 2) float32 backward flow (newest -> previous frame) of each sequence in
    ``frames`` (B, N, H, W, C) uint8, in pixels per prediction period."""
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow input {method!r}; known: {', '.join(FLOW_METHODS)}")
    estimator = FLOW_METHODS[method]
    flow = np.stack([estimator.backward_flow(x) for x in frames]).astype(np.float32, copy=False)
    if last_interval is not None:
        interval = checked_intervals(last_interval, len(frames)).astype(np.float32)
        flow = flow / interval[:, None, None, None]
    return flow


def checked_intervals(last_interval: float | np.ndarray | None, batch: int) -> np.ndarray:
    """(batch,) float64 intervals between the two newest frames, in prediction periods (None:
    1); raises ValueError unless each is finite and > 0."""
    interval = np.broadcast_to(np.asarray(1.0 if last_interval is None else last_interval, dtype=np.float64), (batch,))
    if not (np.isfinite(interval).all() and (interval > 0).all()):
        raise ValueError(f"last_interval must be > 0 prediction periods, got {last_interval!r}")
    return interval
