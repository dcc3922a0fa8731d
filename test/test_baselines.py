"""Classical baselines: copying the last frame and extrapolating Farneback flow."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from video_predictor.core.flow import FlowExtrapolation
from video_predictor.evaluation import metrics
from video_predictor.evaluation.baselines import copy_last

SHIFT = 2  # pixels per frame


def texture(height: int = 96, width: int = 160, seed: int = 3) -> np.ndarray:
    """A smooth RGB texture with enough structure for optical flow."""
    noise = np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (9, 9), 2.5)
    return (255 * (smooth - smooth.min()) / (smooth.max() - smooth.min())).astype(np.uint8)


def panning(count: int, shift: int = SHIFT, size: int = 48) -> np.ndarray:
    """A camera panning right over the texture: the content moves left by ``shift`` px a frame."""
    big = texture()
    return np.stack([big[20 : 20 + size, 10 + shift * t : 10 + shift * t + size] for t in range(count)])


def test_copy_last_repeats_the_newest_frame():
    frames = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (10, 20, 30)])
    predicted = copy_last(frames, 4)
    assert predicted.shape == (4, 8, 8, 3)
    assert (predicted == 30).all()


def test_copy_last_is_perfect_and_flow_nearly_so_on_a_static_scene():
    frames = np.repeat(texture()[None, :48, :48], 4, axis=0)
    assert metrics.psnr(copy_last(frames, 3), frames[:3]).tolist() == [metrics.PSNR_CAP_DB] * 3
    # Farneback finds a few hundredths of a pixel of motion in a still texture
    assert (metrics.psnr(FlowExtrapolation()(frames, 3), frames[:3]) > 50).all()


def test_backward_flow_points_to_where_the_content_was():
    frames = panning(2)
    flow = FlowExtrapolation().backward_flow(frames)
    interior = flow[12:-12, 12:-12]
    # content moves left, so in the previous frame it sat SHIFT px to the right
    assert np.median(interior[..., 0]) == pytest.approx(SHIFT, abs=0.2)
    assert np.median(interior[..., 1]) == pytest.approx(0, abs=0.2)


def test_flow_extrapolation_beats_copy_last_on_pure_translation():
    sequence = panning(4 + 3)
    observed, future = sequence[:4], sequence[4:]
    flow_psnr = metrics.psnr(FlowExtrapolation()(observed, 3), future)
    copy_psnr = metrics.psnr(copy_last(observed, 3), future)
    assert (flow_psnr > copy_psnr + 5).all(), (flow_psnr, copy_psnr)


def test_flow_extrapolation_works_on_grey_frames():
    grey = panning(5)[..., :1]
    predicted = FlowExtrapolation()(grey[:4], 2)
    assert predicted.shape == (2, 48, 48, 1)
    assert metrics.psnr(predicted[:1], grey[4:5]) > metrics.psnr(grey[3:4], grey[4:5])


@pytest.mark.parametrize("bad", [
    np.zeros((4, 8, 8, 3), np.float32),  # not uint8
    np.zeros((8, 8, 3), np.uint8),  # no time axis
    np.zeros((4, 8, 8, 2), np.uint8),  # two channels
])
def test_baselines_reject_malformed_frames(bad):
    for predict in (copy_last, FlowExtrapolation()):
        with pytest.raises(ValueError, match="expected"):
            predict(bad, 2)


def test_flow_needs_two_frames_and_a_positive_horizon():
    with pytest.raises(ValueError, match="at least 2"):
        FlowExtrapolation()(np.zeros((1, 16, 16, 3), np.uint8), 2)
    with pytest.raises(ValueError, match="horizon"):
        copy_last(np.zeros((2, 16, 16, 3), np.uint8), 0)
