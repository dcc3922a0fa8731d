"""The ROS-free Python API: ``from video_predictor import VideoPredictor``, full-size frames
in, the node's preprocessing and buffering, predictions with their stamps out. (The same
pixels as the node's, over DDS: test/test_node_ros_conventions.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from video_predictor import FramePrediction, VideoPredictor
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.predictor import Prediction, Predictor
from video_predictor.core.preprocess import fit_to_model

REPO = Path(__file__).resolve().parents[1]


class RecordingPredictor(Predictor):
    """Copy-last with std 0.1; records what it was given."""

    backend_name = "fake"

    def __init__(self, frame_period, input_frames: int = 2, horizon: int = 3, channels: int = 3) -> None:
        super().__init__(ModelMetadata(family="fake", input_frames=input_frames, horizon=horizon, height=16, width=16,
                                       channels=channels, frame_period=frame_period), horizon)
        self.calls: list[tuple[np.ndarray, object]] = []

    def predict(self, frames, last_interval=None):
        self.calls.append((np.asarray(frames), last_interval))
        return super().predict(frames, last_interval)

    def _run(self, frames, flow):
        last = frames[:, -1:].astype(np.float32) / 255.0
        predicted = np.repeat(last, self.horizon, axis=1)
        return Prediction(predicted, np.full(predicted.shape[:4], 0.1, np.float32))


def frames(count: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def test_fixed_period_model_keeps_frames_at_its_period_by_stamp():
    fake = RecordingPredictor(0.1)
    api = VideoPredictor(predictor=fake)
    clip = frames(7)
    results = [api.add(f, 100 + i / 30) for i, f in enumerate(clip)]  # a 30 Hz camera, a 10 Hz model
    assert [r is not None for r in results] == [False, False, False, True, False, False, True]
    result = results[3]
    assert isinstance(result, FramePrediction)
    np.testing.assert_allclose(result.stamps, 100 + 0.1 + np.arange(1, 4) * 0.1)
    assert result.period == 0.1 and result.newest_stamp == pytest.approx(0.1 + 100)
    given, interval = fake.calls[0]
    np.testing.assert_array_equal(given, np.stack([fit_to_model(clip[0], 16, 16), fit_to_model(clip[3], 16, 16)]))
    assert interval == pytest.approx(1.0)
    assert result.frames.shape == (3, 16, 16, 3) and result.frames.dtype == np.uint8
    np.testing.assert_array_equal(result.frames[0], fit_to_model(clip[3], 16, 16))  # copy-last, to uint8
    assert result.std.shape == (3, 16, 16)


def test_rate_agnostic_model_predicts_at_the_cameras_measured_period():
    fake = RecordingPredictor("camera", input_frames=3)
    api = VideoPredictor(predictor=fake)
    stamps = [5.0, 5.05, 5.10, 5.16]  # 20 Hz, the last frame a little late
    results = [api.add(f, s) for f, s in zip(frames(4), stamps)]
    assert [r is not None for r in results] == [False, False, True, True]
    assert results[2].period == pytest.approx(0.05)
    np.testing.assert_allclose(results[2].stamps, 5.10 + 0.05 * np.arange(1, 4))
    assert fake.calls[0][1] == pytest.approx(1.0)
    # the node's buffer measures the period robustly (the low median of the intervals): one
    # late frame does not move it, and the late frame's gap is passed on, in prediction periods
    assert results[3].period == pytest.approx(0.05)
    np.testing.assert_allclose(results[3].stamps, 5.16 + 0.05 * np.arange(1, 4))
    assert fake.calls[1][1] == pytest.approx(0.06 / 0.05)
    # a stamp going backwards starts the buffer over
    assert api.add(frames(1)[0], 1.0) is None and api.add(frames(1)[0], 1.05) is None


def test_without_stamps_every_frame_is_kept_and_predictions_carry_no_stamps():
    api = VideoPredictor(predictor=RecordingPredictor(0.1))
    results = [api.add(f) for f in frames(3)]
    assert results[0] is None and results[1].stamps is None and results[2] is not None
    with pytest.raises(ValueError, match="stamp with every frame"):
        api.add(frames(1)[0], 1.0)


def test_a_change_of_frame_size_restarts_and_grey_frames_are_matched_to_the_model():
    api = VideoPredictor(predictor=RecordingPredictor(0.1))
    assert api.add(frames(1)[0], 1.0) is None
    assert api.add(frames(1, 60, 80)[0], 1.1) is None  # another camera size: the buffer starts over
    assert api.add(frames(1, 60, 80)[0], 1.2) is not None
    grey = np.full((60, 80), 77, np.uint8)
    assert api.add(grey, 1.3) is None  # grey after colour: another stream, as in the node
    result = api.add(grey, 1.4)
    assert result is not None and (result.frames[0] == 77).all()  # grey replicated to the model's RGB
    with pytest.raises(ValueError, match="uint8"):
        api.add(np.zeros((4, 4, 3), np.float32), 1.5)


def test_predict_frames_takes_a_list_and_leaves_the_buffer_alone():
    api = VideoPredictor(predictor=RecordingPredictor(0.1))
    clip = frames(4)
    result = api.predict_frames(clip, [0, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(result.stamps, 0.3 + 0.1 * np.arange(1, 4))
    assert api.add(clip[0], 7.0) is None  # its own buffer is still empty
    with pytest.raises(ValueError, match="need 2 frames"):
        api.predict_frames(clip[:1])


def test_the_packaged_default_model_from_full_size_frames():
    api = VideoPredictor()
    md = api.metadata
    clip = frames(md.input_frames, 480, 640)
    result = api.predict_frames(clip, [10 + i / 30 for i in range(len(clip))])
    assert result.frames.shape == (api.horizon, md.height, md.width, md.channels)
    assert np.isfinite(result.std).all() and len(result.stamps) == api.horizon


def test_importing_the_api_imports_no_ros():
    code = ("import sys; from video_predictor import VideoPredictor; "
            "print([m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs', 'std_msgs')])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
