"""Predicting a camera's next frames from Python, without ROS.

    from video_predictor import VideoPredictor

    predictor = VideoPredictor()                     # the packaged default model; or VideoPredictor("my.onnx")
    for stamp, frame in camera:                      # full-size RGB (H, W, 3) or grey uint8 frames
        result = predictor.add(frame, stamp)         # None until N frames are buffered
        if result is not None:
            result.frames, result.std, result.stamps  # (K, h, w, C) uint8, (K, h, w) float32, (K,) seconds

Frames go through the node's own preprocessing (centre crop to the model's aspect ratio,
area resize, channel matching: video_predictor.core.preprocess) and, with stamps, the node's
rolling buffer (video_predictor.core.frame_buffer): a fixed-period model keeps frames at its
period by stamp (a 30 Hz camera and a 10 Hz model: every third frame); a rate-agnostic
model (frame_period "camera") keeps every frame and predicts at the camera's period,
measured from the stamps by the same buffer. Without stamps every frame is kept and taken
to be one period after the previous. A stamp going backwards, a time jump or a change of
frame size restarts the buffer, as in the node.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_predictor.backends import create_predictor
from video_predictor.core.adaptive_predictor import AdaptivePredictor, with_adaptation
from video_predictor.core.frame_buffer import BufferedSequence, FrameBuffer, PushResult, choose_period
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.pixels import match_channels, unit_to_uint8
from video_predictor.core.predictor import Predictor
from video_predictor.core.preprocess import fit_to_model


@dataclass(frozen=True)
class FramePrediction:
    """K predicted frames ahead of the newest observed one."""

    frames: np.ndarray  # (K, h, w, C) uint8 at the model's resolution, RGB (C = 3) or grey (C = 1)
    std: np.ndarray  # (K, h, w) float32, per-pixel std of the intensity in units of [0, 1]
    stamps: np.ndarray | None  # (K,) seconds: newest stamp + k * period; None without stamps
    period: float | None  # seconds between predicted frames; None without stamps (rate-agnostic)
    newest_stamp: float | None  # stamp of the newest observed frame


class VideoPredictor:
    """A model file and the last N frames of one camera; ``add`` frames, get predictions."""

    def __init__(self, model: str | Path = "", *, backend: str = "auto", device: str = "auto", horizon: int = 0,
                 samples: int = 1, threads: int = 0, max_gap_periods: float = 1.5, prediction_period: float = 0.0,
                 adapt: bool = True, predictor: Predictor | None = None) -> None:
        """model: .pt or .onnx file ("" = the packaged default); the rest as the node's
        parameters of the same names (``adapt``: online adaptation to the stream,
        video_predictor.core.adaptive_predictor). ``predictor``: an already built one instead."""
        if predictor is None:
            predictor, self.backend_reason = create_predictor(
                model=str(model), backend=backend, device=device, horizon=horizon, samples=samples, threads=threads)
        else:
            self.backend_reason = "given"
        self.predictor, self.adaptation_note = with_adaptation(predictor, adapt)
        self.max_gap_periods = max_gap_periods
        self.period, self.period_source = choose_period(predictor.metadata.frame_period, prediction_period)
        self.reset()

    @property
    def metadata(self) -> ModelMetadata:
        return self.predictor.metadata

    @property
    def input_frames(self) -> int:
        return self.metadata.input_frames

    @property
    def horizon(self) -> int:
        return self.predictor.horizon

    def reset(self) -> None:
        """Forget the buffered frames and what the stream taught (a new camera, a jump in time)."""
        if isinstance(self.predictor, AdaptivePredictor):
            self.predictor.reset()
        md = self.metadata
        # with stamps: the node's buffer; without: every frame, one period apart
        self._buffer = FrameBuffer(md.input_frames, self.period, max_gap_periods=self.max_gap_periods)
        self._frames: deque[np.ndarray] = deque(maxlen=md.input_frames)
        self._key = None
        self._stamped: bool | None = None

    def fit(self, frame: np.ndarray) -> np.ndarray:
        """A full-size frame as the model sees it: (h, w, C) uint8, the node's preprocessing."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            raise ValueError(f"expected a uint8 frame, got {frame.dtype}")
        if frame.ndim == 2:
            frame = frame[:, :, None]
        if frame.ndim != 3 or frame.shape[2] not in (1, 3) or 0 in frame.shape:
            raise ValueError(f"expected an RGB (H, W, 3) or grey (H, W[, 1]) frame, got shape {frame.shape}")
        md = self.metadata
        return match_channels(fit_to_model(frame, md.height, md.width), md.channels)

    def add(self, frame: np.ndarray, stamp: float | None = None) -> FramePrediction | None:
        """Buffer a full-size frame (stamp in seconds, or None) and, once N frames are
        buffered and this one was kept, predict from them; else None."""
        stamped = stamp is not None
        if self._stamped is not None and stamped != self._stamped:
            raise ValueError("give a stamp with every frame or with none")
        self._stamped = stamped
        fitted, key = self.fit(frame), np.asarray(frame).shape
        if stamped:
            result = self._buffer.push(float(stamp), fitted, key)
            if result not in (PushResult.KEPT, PushResult.RESTARTED) or not self._buffer.ready:
                return None
            return self._predict(self._buffer.sequence())
        if key != self._key:
            self._frames.clear()
        self._key = key
        self._frames.append(fitted)
        if len(self._frames) < self.input_frames:
            return None
        prediction = self.predictor.predict(np.stack(self._frames))  # evenly spaced by assumption
        return FramePrediction(unit_to_uint8(prediction.frames[0]), prediction.std[0], None, self.metadata.fixed_period, None)

    def predict_frames(self, frames: list[np.ndarray], stamps: list[float] | None = None) -> FramePrediction:
        """Predict from a list of full-size frames (oldest first), without touching the
        buffer of ``add``: the frames the buffer would keep of them, the newest N."""
        other = VideoPredictor(predictor=self.predictor, max_gap_periods=self.max_gap_periods,
                               prediction_period=self.period if self.period_source == "parameter" else 0.0)
        result = None
        for i, frame in enumerate(frames):
            result = other.add(frame, None if stamps is None else stamps[i]) or result
        if result is None:
            raise ValueError(f"need {self.input_frames} frames the buffer keeps, got {len(frames)} frames")
        return result

    def _predict(self, sequence: BufferedSequence) -> FramePrediction:
        prediction = self.predictor.predict(sequence.frames, last_interval=sequence.last_interval)
        k = np.arange(1, self.horizon + 1)
        return FramePrediction(unit_to_uint8(prediction.frames[0]), prediction.std[0],
                               sequence.newest_stamp + k * sequence.period, sequence.period, sequence.newest_stamp)
