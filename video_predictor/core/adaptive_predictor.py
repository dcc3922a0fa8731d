"""A predictor that learns from its own errors as the stream goes on.

It wraps a deterministic model's predictor. Each prediction it publishes is, per horizon
k, a convex blend of the model's frame, flow extrapolation's (for flow-input models, whose
flow is computed anyway) and the last frame's; its std is an expected error, mapped from the
model's std and how far the predictions are apart, times a coverage factor. The weights, the
map and the factor are refitted from every frame that arrives (``online_blend``). Only past frames are used: a
frame scores the predictions made for it before it was seen.

Consecutive calls are recognised by their frames: a window whose older frames are the
previous window's newer ones has moved on by that many frames, and those frames are the
ones that arrived. A window that shares no frame with the previous one (the first call, a
restarted buffer, a different stream) starts over: the predictions then depend only on
the frames since the buffer last started, in the node, the Python API and the evaluator
alike. A lost frame (``last_interval`` off 1: k steps ahead are not k frames ahead) drops
the predictions still waiting for their frames and keeps what was learned. A batch is
taken as consecutive windows, in order.

Scoring the frames that arrived needs only those frames and the predictions made for them,
not the model's new output: for a single window (the node's case) it runs on a worker thread
while the model runs (ONNX Runtime and OpenCV release the GIL), which hides most of its cost
from the latency; the results are the same, in the same order, as without it.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.online_blend import AdaptationSettings, ErrorRegression, ExpertBlend, StdCalibration
from video_predictor.core.predictor import Prediction, Predictor, checked_intervals

# A window is on schedule for learning when its newest frames are this close to one
# prediction period apart (the futures it is scored against are one period apart).
INTERVAL_TOLERANCE = 0.25
MAX_STD = 0.5  # in [0, 1] units: wider says nothing more


# Frames are scored on every other pixel in each direction: a quarter of the work, and
# still a thousand pixels or more per frame.
SCORED = (slice(None), slice(None, None, 2), slice(None, None, 2))  # of (K, H, W, ...)


@dataclass
class _Waiting:
    """A published prediction still waiting for some of its frames, on the scored pixels."""

    experts: np.ndarray  # (E, K, h, w, C) float32 in [0, 1]: model, [flow,] copy
    frames: np.ndarray  # (K, h, w, C): what was published
    cues: np.ndarray  # (K, h, w, cues): what the expected error was computed from
    raw_std: np.ndarray  # (K, h, w): the expected error, before the factor
    age: int = 0  # frames seen since its newest input frame


class AdaptivePredictor(Predictor):
    """``inner``'s predictions, blended and calibrated online (module docstring)."""

    def __init__(self, inner: Predictor, settings: AdaptationSettings | None = None,
                 learn_while_predicting: bool = True) -> None:
        if inner.metadata.stochastic:
            raise ValueError(f"online adaptation needs a deterministic model; {inner.metadata.family} samples its futures")
        super().__init__(inner.metadata, inner.horizon)
        self.inner = inner
        self.backend_name = inner.backend_name
        self.settings = settings or AdaptationSettings()
        self.experts = ("model", "flow", "copy_last") if inner.metadata.flow_input else ("model", "copy_last")
        # one worker: the scoring of a window's arrivals, while the model runs (module docstring)
        self._learner = ThreadPoolExecutor(1, thread_name_prefix="adaptation") if learn_while_predicting else None
        self.reset()

    def reset(self) -> None:
        """Forget everything learned (a new camera)."""
        self._blend = ExpertBlend(len(self.experts), self.horizon, self.settings)
        self._calibration = StdCalibration(self.horizon, self.settings)
        # cues: the model's std, |model − copy|, [|flow − copy|, |model − flow|,] 1; at first
        # the model's std widened where the model departs from the last frame
        initial = [1.0, 1.0] + [0.0] * (len(self.experts) - 2) * 2 + [0.0]
        self._errors = ErrorRegression(len(initial), self.horizon, initial, self.settings)
        self._waiting: deque[_Waiting] = deque()
        self._previous: np.ndarray | None = None

    def summary(self) -> dict:
        """Current weights per horizon (one per expert), std factors and frames scored."""
        return {
            "experts": list(self.experts),
            "weights": np.round(self._blend.expert_weights(), 4).tolist(),
            "std_scale": np.round(self._calibration.scale, 4).tolist(),
            "frames_scored": int(self._blend.frames_scored[0]),
        }

    def warm_up(self) -> None:
        self.inner.warm_up()  # a blank input must not enter the stream's state

    def _run(self, frames: np.ndarray, flow: np.ndarray | None) -> Prediction:
        return self.inner._run(frames, flow)  # the interface's; predict() goes through inner.predict

    def predict(self, frames: np.ndarray, last_interval: float | np.ndarray | None = None) -> Prediction:
        # checked first: a bad input must not reach the stream's state
        windows = self.inner.checked_frames(frames)
        intervals = checked_intervals(last_interval, len(windows))
        learned = None
        if self._learner is not None and len(windows) == 1:
            learned = self._learner.submit(self._learn, windows[0], float(intervals[0]))
        try:
            prediction = self.inner.predict(frames, last_interval)  # runs the model on the input as given
        finally:
            schedule = learned.result() if learned is not None else None  # also where the model failed
        flow = self.last_flow = self.inner.last_flow  # the flow expert reuses the model's flow input
        out_frames = np.empty_like(prediction.frames)
        out_std = np.empty_like(prediction.std)
        for b in range(len(windows)):
            if schedule is None or b:
                schedule = self._learn(windows[b], float(intervals[b]))
            out_frames[b], out_std[b] = self._publish(windows[b], None if flow is None else flow[b],
                                                      prediction.frames[b], prediction.std[b], *schedule)
        return Prediction(out_frames, out_std)

    # -- one window ----------------------------------------------------------------------

    def _learn(self, window: np.ndarray, interval: float) -> tuple[int | None, bool]:
        """Score what arrived with ``window`` (or start over); returns how far the stream
        moved on (``_shift``) and whether the window is on schedule."""
        shift = self._shift(window)
        on_schedule = abs(interval - 1.0) <= INTERVAL_TOLERANCE
        if shift is None:
            self.reset()
        elif not on_schedule:
            self._waiting.clear()
        elif shift:
            self._score_arrivals(window, shift)
        self._previous = window
        return shift, on_schedule

    def _publish(self, window: np.ndarray, flow: np.ndarray | None, model_frames: np.ndarray,
                 model_std: np.ndarray, shift: int | None, on_schedule: bool) -> tuple[np.ndarray, np.ndarray]:
        """The blend and std published for ``window``, which waits for its frames."""
        k = self.horizon
        last = window[-1].astype(np.float32) / 255.0
        copy = np.broadcast_to(last, (k,) + last.shape)
        experts = [model_frames.astype(np.float32, copy=False)]
        if flow is not None:
            experts.append(np.multiply(FlowExtrapolation.extrapolate(window[-1], flow, k), 1.0 / 255.0, dtype=np.float32))
        experts.append(copy)  # E predictions (K, H, W, C), the reference last
        frames = np.clip(self._blend.blend(experts), 0.0, 1.0)
        raw_std, cues = self._expected_error(experts, model_std)
        scales = self._calibration.scale.astype(np.float32)[:, None, None]
        std = np.minimum(raw_std * scales, MAX_STD)
        if shift != 0 and on_schedule:
            self._waiting.append(_Waiting(np.stack([e[SCORED] for e in experts]), frames[SCORED], cues[SCORED],
                                          raw_std[SCORED]))
        return frames, std

    def _expected_error(self, experts: list[np.ndarray], model_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The expected |error| per pixel (K, H, W) and the cues (K, H, W, n) it comes from:
        the model's std and how far apart the predictions are (where they disagree, the one
        published is a gamble), weighed as the recent errors say."""
        model, copy = experts[0], experts[-1]
        cues = [model_std.astype(np.float32, copy=False), _channel_mean(np.abs(model - copy))]
        if len(experts) == 3:
            cues += [_channel_mean(np.abs(experts[1] - copy)), _channel_mean(np.abs(model - experts[1]))]
        cues.append(np.ones_like(cues[0]))
        cues = np.stack(cues, axis=-1)
        return self._errors.predict(cues), cues

    def _shift(self, window: np.ndarray) -> int | None:
        """How many frames the stream moved on since the previous window (0: the same
        window again), or None where this window does not continue it."""
        previous = self._previous
        if previous is None or previous.shape != window.shape:
            return None
        n = len(window)
        for shift in range(n):
            if np.array_equal(window[: n - shift], previous[shift:]):
                return shift
        return None

    def _score_arrivals(self, window: np.ndarray, shift: int) -> None:
        """The newest ``shift`` frames of ``window`` arrived: score every prediction made for them."""
        n = len(window)
        kept: deque[_Waiting] = deque()
        scored: list[tuple[int, _Waiting, int]] = []  # (horizon index, prediction, frame index in window)
        for waiting in self._waiting:
            waiting.age += shift
            # horizon k's frame is (age − k) frames older than the newest; new ones are < shift old
            for k in range(max(1, waiting.age - shift + 1), min(waiting.age, self.horizon) + 1):
                scored.append((k - 1, waiting, n - 1 - (waiting.age - k)))
            if waiting.age < self.horizon:
                kept.append(waiting)
        self._waiting = kept
        if not scored:
            return
        horizons = np.array([h for h, _, _ in scored])
        targets = np.stack([window[i][SCORED[1:]] for _, _, i in scored]).astype(np.float32) / 255.0
        experts = np.stack([w.experts[:, h] for h, w, _ in scored])
        published = np.stack([w.frames[h] for h, w, _ in scored])
        raw_std = np.stack([w.raw_std[h] for h, w, _ in scored])
        cues = np.stack([w.cues[h] for h, w, _ in scored])
        # a horizon is scored at most once per arriving frame; with several frames at once, in turn
        for step in sorted(set(i for _, _, i in scored)):
            rows = np.array([j for j, (_, _, i) in enumerate(scored) if i == step])
            self._blend.update(horizons[rows], experts[rows], targets[rows])
            abs_errors = np.abs(published[rows] - targets[rows])
            self._calibration.update(horizons[rows], abs_errors, raw_std[rows])
            self._errors.update(horizons[rows], cues[rows], _channel_mean(abs_errors))


def _channel_mean(x: np.ndarray) -> np.ndarray:
    """Mean over the last (channel) axis, as a product: numpy reduces a length-3 axis slowly."""
    channels = x.shape[-1]
    return x @ np.full(channels, 1.0 / channels, np.float32)


def with_adaptation(predictor: Predictor, enabled: bool = True) -> tuple[Predictor, str]:
    """``predictor`` wrapped in an ``AdaptivePredictor`` where ``enabled`` and its model is
    deterministic; also says what was done, for the log."""
    if isinstance(predictor, AdaptivePredictor):
        return predictor, "online adaptation on (given)"
    if not enabled:
        return predictor, "online adaptation off"
    if predictor.metadata.stochastic:
        return predictor, f"online adaptation off: the {predictor.metadata.family} model samples its futures"
    adaptive = AdaptivePredictor(predictor)
    return adaptive, "online adaptation on: blending " + ", ".join(adaptive.experts) + " per horizon"


def describe_summary(summary: dict) -> str:
    """One line of an ``AdaptivePredictor.summary()``, for logs and diagnostics."""
    weights = "; ".join(" ".join(f"{name} {w:.2f}" for name, w in zip(summary["experts"], ws))
                        for ws in summary["weights"])
    scales = " ".join(f"{s:.2f}" for s in summary["std_scale"])
    return f"weights per horizon: {weights}; std factors: {scales}; frames scored: {summary['frames_scored']}"
