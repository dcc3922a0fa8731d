"""Online adaptation of a predictor to its stream (video_predictor.core.adaptive_predictor)."""

import threading

import cv2
import numpy as np
import pytest

from video_predictor.core.adaptive_predictor import AdaptivePredictor, describe_summary, with_adaptation
from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.predictor import Prediction, PredictionError, Predictor

N, K, SIZE = 4, 3, 32


class BrightPredictor(Predictor):
    """A poor model: the last frame, too bright by 0.15, with a constant std."""

    backend_name = "fake"

    def __init__(self, flow_input: str = "farneback", stochastic: bool = False) -> None:
        super().__init__(ModelMetadata("fake", N, K, SIZE, SIZE, 3, "camera", flow_input=flow_input,
                                       stochastic=stochastic), K)
        self.calls = 0

    def _run(self, frames: np.ndarray, flow: np.ndarray | None) -> Prediction:
        self.calls += 1
        last = frames[:, -1:].astype(np.float32) / 255.0
        predicted = np.clip(np.repeat(last, self.horizon, axis=1) + 0.15, 0.0, 1.0)
        return Prediction(predicted, np.full(predicted.shape[:-1], 0.01, np.float32))


def moving_stream(count: int, seed: int = 0, speed: float = 1.0) -> np.ndarray:
    """(count, SIZE, SIZE, 3) uint8: a smooth texture panning right ``speed`` px a frame."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, 4 * SIZE, 3)).astype(np.uint8), (7, 7), 2.0)
    frames = []
    for i in range(count):
        shift = np.float32([[1, 0, -speed * i], [0, 1, 0]])
        frames.append(cv2.warpAffine(texture, shift, (4 * SIZE, SIZE), borderMode=cv2.BORDER_REFLECT)[:, :SIZE])
    return np.stack(frames)


def windows(stream: np.ndarray) -> np.ndarray:
    return np.stack([stream[i: i + N] for i in range(len(stream) - N + 1)])


def test_first_prediction_is_the_models_with_a_std_widened_where_it_departs_from_the_last_frame():
    inner = BrightPredictor()
    window = moving_stream(N)
    expected = inner.predict(window)
    got = AdaptivePredictor(BrightPredictor()).predict(window)
    np.testing.assert_allclose(got.frames, expected.frames, atol=1e-6)
    departure = np.abs(expected.frames - window[-1].astype(np.float32) / 255.0).mean(axis=-1)
    np.testing.assert_allclose(got.std, 0.01 + departure, rtol=1e-5)


def test_it_learns_the_better_predictions_from_the_arriving_frames():
    stream = moving_stream(60)
    adaptive = AdaptivePredictor(BrightPredictor())
    outputs = np.concatenate([adaptive.predict(w).frames for w in windows(stream)[:-K]])
    raw = BrightPredictor().predict(windows(stream)[:-K]).frames
    flow = np.stack([FlowExtrapolation()(w, K) for w in windows(stream)[:-K]]).astype(np.float32) / 255.0
    targets = np.stack([stream[i + N: i + N + K] for i in range(len(outputs))]).astype(np.float32) / 255.0
    late = slice(20, None)  # after a few frames have been scored

    def mse(p):
        return float(np.mean((p[late] - targets[late]) ** 2))

    assert mse(outputs) < 0.1 * mse(raw)
    copy = np.repeat(windows(stream)[:-K, -1:], K, axis=1).astype(np.float32) / 255.0
    assert mse(outputs) <= 1.1 * mse(flow) and mse(outputs) < 0.5 * mse(copy)
    summary = adaptive.summary()
    assert summary["experts"] == ["model", "flow", "copy_last"]
    assert summary["frames_scored"] == len(outputs) - 1
    for weights in summary["weights"]:  # the model is left out, flow carries the pan
        assert weights[0] < 0.05 and weights[1] > 0.5
    assert "model 0.0" in describe_summary(summary)


def test_a_prediction_never_depends_on_frames_after_its_window():
    shared = moving_stream(20)
    other = moving_stream(30, seed=1)
    a = np.concatenate([shared, moving_stream(10, speed=2.0)])
    b = np.concatenate([shared, other[20:]])
    out_a = AdaptivePredictor(BrightPredictor()).predict(windows(a))
    out_b = AdaptivePredictor(BrightPredictor()).predict(windows(b))
    inside = len(shared) - N + 1  # windows whose frames are all shared
    np.testing.assert_array_equal(out_a.frames[:inside], out_b.frames[:inside])
    np.testing.assert_array_equal(out_a.std[:inside], out_b.std[:inside])
    assert not np.array_equal(out_a.frames[inside:], out_b.frames[inside:])


def test_one_batch_of_windows_is_the_same_as_one_call_each():
    ws = windows(moving_stream(25))
    batched = AdaptivePredictor(BrightPredictor()).predict(ws)
    one_by_one = AdaptivePredictor(BrightPredictor())
    singles = [one_by_one.predict(w) for w in ws]
    np.testing.assert_allclose(batched.frames, np.concatenate([s.frames for s in singles]), atol=1e-6)
    np.testing.assert_allclose(batched.std, np.concatenate([s.std for s in singles]), atol=1e-7)


def test_only_windows_that_continue_the_stream_teach_it():
    adaptive = AdaptivePredictor(BrightPredictor())
    stream = moving_stream(16)
    for w in windows(stream[:12]):
        adaptive.predict(w)
    scored = adaptive.summary()["frames_scored"]
    assert scored == 8
    adaptive.predict(stream[8:12])  # the same window again: nothing arrived
    assert adaptive.summary()["frames_scored"] == scored
    adaptive.predict(stream[9:13], last_interval=2.0)  # a lost frame: k steps are not k frames
    adaptive.predict(stream[10:14])  # the predictions across the loss are not scored
    assert adaptive.summary()["frames_scored"] == scored
    adaptive.predict(stream[11:15])  # on schedule again
    assert adaptive.summary()["frames_scored"] == scored + 1
    weights = adaptive.summary()["weights"]
    adaptive.predict(moving_stream(N, seed=5))  # a different stream (or a restarted buffer): starts over
    assert adaptive.summary()["frames_scored"] == 0 and adaptive.summary()["weights"] != weights
    adaptive.predict(stream[11:15])
    assert adaptive.summary()["frames_scored"] == 0


def test_a_model_without_flow_blends_with_copy_last_only():
    adaptive = AdaptivePredictor(BrightPredictor(flow_input=""))
    for w in windows(moving_stream(30)):
        adaptive.predict(w)
    summary = adaptive.summary()
    assert summary["experts"] == ["model", "copy_last"]
    assert summary["weights"][0][1] > 0.9


def test_warm_up_leaves_the_stream_state_alone():
    inner = BrightPredictor()
    adaptive = AdaptivePredictor(inner)
    adaptive.warm_up()
    assert inner.calls == 1 and adaptive.summary()["frames_scored"] == 0


def test_stochastic_models_are_left_as_they_are():
    stochastic = BrightPredictor(stochastic=True)
    with pytest.raises(ValueError, match="deterministic"):
        AdaptivePredictor(stochastic)
    predictor, note = with_adaptation(stochastic)
    assert predictor is stochastic and "off" in note
    predictor, note = with_adaptation(BrightPredictor(), enabled=False)
    assert not isinstance(predictor, AdaptivePredictor) and "off" in note
    predictor, note = with_adaptation(BrightPredictor())
    assert isinstance(predictor, AdaptivePredictor) and "model, flow, copy_last" in note


def test_a_featureless_stream_leaves_it_finite():
    """Uniform frames: flow is zero, so flow extrapolation is copy-last and two cues vanish."""
    stream = np.stack([np.full((SIZE, SIZE, 3), 10 * i, np.uint8) for i in range(20)])
    adaptive = AdaptivePredictor(BrightPredictor())
    for w in windows(stream):
        out = adaptive.predict(w)
        assert np.isfinite(out.frames).all() and np.isfinite(out.std).all() and (out.std > 0).all()
    assert adaptive.summary()["frames_scored"] == len(stream) - N
    assert all(abs(sum(w) - 1.0) < 1e-6 for w in adaptive.summary()["weights"])


class FailingPredictor(BrightPredictor):
    """BrightPredictor whose output is NaN on the calls numbered in ``failing`` (0-based)."""

    def __init__(self, failing: set[int]) -> None:
        super().__init__()
        self.failing = failing

    def _run(self, frames: np.ndarray, flow: np.ndarray | None) -> Prediction:
        prediction = super()._run(frames, flow)
        if self.calls - 1 in self.failing:
            prediction.frames[:] = np.nan
        return prediction


def stream_outputs(adaptive: AdaptivePredictor, ws: np.ndarray) -> list:
    outputs = []
    for w in ws:
        try:
            outputs.append(adaptive.predict(w))
        except PredictionError:
            outputs.append(None)
    return outputs


def test_learning_while_the_model_runs_gives_the_same_predictions_as_learning_after_it(monkeypatch):
    ws = windows(moving_stream(30))
    threads = set()
    learn = AdaptivePredictor._learn

    def recording_learn(self, *args):
        threads.add(threading.current_thread().name)
        return learn(self, *args)

    monkeypatch.setattr(AdaptivePredictor, "_learn", recording_learn)
    # a model that fails now and then: the failed window's frames are still learned from, once
    overlapped = stream_outputs(AdaptivePredictor(FailingPredictor({9, 10, 17})), ws)
    assert len(threads) == 1 and threads.pop().startswith("adaptation")
    after = stream_outputs(AdaptivePredictor(FailingPredictor({9, 10, 17}), learn_while_predicting=False), ws)
    assert threads == {threading.current_thread().name}
    assert [o is None for o in overlapped] == [o is None for o in after] and sum(o is None for o in after) == 3
    for a, b in zip(overlapped, after):
        if a is not None:
            np.testing.assert_array_equal(a.frames, b.frames)
            np.testing.assert_array_equal(a.std, b.std)


@pytest.mark.parametrize("bad", [{"frames": np.zeros((N, SIZE, SIZE, 3), np.float32)},
                                 {"frames": np.zeros((N, SIZE + 1, SIZE, 3), np.uint8)},
                                 {"last_interval": 0.0}, {"last_interval": float("nan")}])
def test_a_bad_input_is_refused_before_it_reaches_what_was_learned(bad):
    stream = moving_stream(20)
    adaptive = AdaptivePredictor(BrightPredictor(flow_input=""))  # no flow: only the adaptation checks the interval
    for w in windows(stream[:12]):
        adaptive.predict(w)
    before = adaptive.summary()
    with pytest.raises(ValueError):
        adaptive.predict(bad.get("frames", stream[9:13]), last_interval=bad.get("last_interval"))
    assert adaptive.summary() == before
    adaptive.predict(stream[9:13])  # the stream goes on where it was
    assert adaptive.summary()["frames_scored"] == before["frames_scored"] + 1
