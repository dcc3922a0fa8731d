"""Frame-quality and uncertainty metrics: exact values on hand-made cases, SSIM against a
slow direct implementation of its formula, and the contract's carphone reference table."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.preprocess import fit_to_model
from video_predictor.evaluation import metrics
from video_predictor.evaluation.baselines import copy_last
from video_predictor.io.video import carphone_clip

RNG = np.random.default_rng(7)


def random_image(shape=(24, 20, 3), low=0, high=256) -> np.ndarray:
    return RNG.integers(low, high, shape).astype(np.uint8)


def smooth_image(shape=(32, 32, 3)) -> np.ndarray:
    """Low-contrast smooth texture: added noise lowers its SSIM a lot."""
    noise = RNG.random(shape).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (7, 7), 2.0).reshape(shape)
    scaled = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    return (60 + 120 * scaled).astype(np.uint8)


def add_noise(image: np.ndarray, amplitude: int) -> np.ndarray:
    return np.clip(image.astype(int) + RNG.integers(-amplitude, amplitude + 1, image.shape), 0, 255).astype(np.uint8)


# -- PSNR ----------------------------------------------------------------------------------


def test_psnr_of_identical_images_is_the_documented_cap():
    image = random_image()
    assert metrics.psnr(image, image) == metrics.PSNR_CAP_DB


@pytest.mark.parametrize("offset", [1, 5, 20])
def test_psnr_of_a_constant_offset_is_20_log10_255_over_offset(offset):
    target = random_image(low=0, high=200)
    pred = target + np.uint8(offset)
    assert metrics.psnr(pred, target) == pytest.approx(20 * math.log10(255 / offset), abs=1e-9)


def test_psnr_scores_each_image_of_a_batch_on_its_own():
    target = random_image((2, 3, 16, 16, 3), high=200)
    pred = target.copy()
    pred[0, 1] += 10
    pred[1, 2] += 1
    values = metrics.psnr(pred, target)
    assert values.shape == (2, 3)
    assert values[0, 1] == pytest.approx(20 * math.log10(25.5))
    assert values[1, 2] == pytest.approx(20 * math.log10(255))
    assert values[0, 0] == metrics.PSNR_CAP_DB


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="differs"):
        metrics.psnr(random_image((8, 8, 3)), random_image((8, 9, 3)))
    with pytest.raises(ValueError, match="differs"):
        metrics.ssim(random_image((16, 16, 3)), random_image((16, 16, 1)))


# -- SSIM ----------------------------------------------------------------------------------


def slow_reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM straight from Wang et al. 2004, one pixel and one channel at a time: 11x11
    Gaussian window (sigma 1.5), borders mirrored without the edge pixel (OpenCV's
    BORDER_REFLECT_101), map averaged over all pixels, channels averaged."""
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    h, w, channels = x.shape

    def mirror(i: int, n: int) -> int:
        return -i if i < 0 else (2 * n - 2 - i if i >= n else i)

    total = 0.0
    for c in range(channels):
        a, b = x[:, :, c].astype(float), y[:, :, c].astype(float)
        for r in range(h):
            for q in range(w):
                rows = [mirror(r + d, h) for d in range(-5, 6)]
                cols = [mirror(q + d, w) for d in range(-5, 6)]
                pa, pb = a[np.ix_(rows, cols)], b[np.ix_(rows, cols)]
                mu_a, mu_b = (window * pa).sum(), (window * pb).sum()
                var_a = (window * pa * pa).sum() - mu_a ** 2
                var_b = (window * pb * pb).sum() - mu_b ** 2
                cov = (window * pa * pb).sum() - mu_a * mu_b
                total += ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return total / (h * w * channels)


def test_ssim_matches_a_direct_implementation_of_the_formula():
    target = smooth_image((14, 17, 2))
    pred = add_noise(target, 30)
    expected = slow_reference_ssim(pred, target)
    assert 0.1 < expected < 0.9  # a pair that is neither identical nor unrelated
    assert metrics.ssim(pred, target) == pytest.approx(expected, abs=1e-9)


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    image = smooth_image()
    assert metrics.ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ssim(add_noise(image, 30), image) < metrics.ssim(add_noise(image, 5), image) < 0.99


def test_ssim_of_a_batch_equals_ssim_of_each_image():
    a, b = random_image((3, 16, 16, 3)), random_image((3, 16, 16, 3))
    assert np.allclose(metrics.ssim(a, b), [metrics.ssim(a[i], b[i]) for i in range(3)])


# -- sharpness -----------------------------------------------------------------------------


def test_sharpness_difference_is_capped_for_identical_images_and_lower_for_blur():
    image = random_image((32, 32, 3))
    blurred = cv2.GaussianBlur(image, (5, 5), 2.0)
    assert metrics.sharpness_difference(image, image) == metrics.PSNR_CAP_DB
    assert metrics.sharpness_difference(blurred, image) < metrics.sharpness_difference(image, image) - 30


def test_ssim_of_two_constant_images_has_its_closed_form():
    # constant images have no variance or covariance: SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a, b = 100.0, 140.0
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    pred, target = np.full((16, 16, 3), a, np.uint8), np.full((16, 16, 3), b, np.uint8)
    assert metrics.ssim(pred, target) == pytest.approx(expected, abs=1e-12)
    half = np.zeros((16, 16), bool)
    half[:, :8] = True
    assert metrics.masked_ssim(pred, target, half) == pytest.approx(expected, abs=1e-12)


# -- moving areas --------------------------------------------------------------------------


def half_mask(shape=(24, 20)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[:, : shape[1] // 2] = True
    return mask


@pytest.mark.parametrize("offset", [1, 5, 20])
def test_masked_psnr_of_a_constant_shift_inside_the_mask_ignores_the_outside(offset):
    target = random_image(low=0, high=200)
    mask = half_mask()
    pred = np.where(mask[..., None], target + np.uint8(offset), random_image())  # garbage outside the mask
    assert metrics.masked_psnr(pred, target, mask) == pytest.approx(20 * math.log10(255 / offset), abs=1e-9)
    assert metrics.psnr(pred, target) < 20 * math.log10(255 / offset) - 3  # the whole frame is worse


def test_masked_scores_over_a_full_mask_equal_the_whole_frame_scores():
    target, pred = smooth_image((20, 24, 3)), add_noise(smooth_image((20, 24, 3)), 10)
    full = np.ones((20, 24), bool)
    assert metrics.masked_psnr(pred, target, full) == pytest.approx(metrics.psnr(pred, target), abs=1e-12)
    assert metrics.masked_ssim(pred, target, full) == pytest.approx(metrics.ssim(pred, target), abs=1e-12)
    assert metrics.masked_sharpness_difference(pred, target, full) == pytest.approx(
        metrics.sharpness_difference(pred, target), abs=1e-12)


def test_masked_scores_of_an_empty_mask_are_nan_per_image():
    target = random_image((2, 16, 16, 3))
    mask = np.zeros((2, 16, 16), bool)
    mask[1, 4:8, 4:8] = True
    values = metrics.masked_psnr(target, target, mask)
    assert math.isnan(values[0]) and values[1] == metrics.PSNR_CAP_DB
    assert math.isnan(metrics.masked_ssim(target, target, mask)[0])
    assert math.isnan(metrics.masked_sharpness_difference(target, target, mask)[0])


def test_masked_ssim_averages_the_ssim_map_over_the_mask():
    target = smooth_image((24, 24, 3))
    pred = target.copy()
    pred[:, 12:] = add_noise(target[:, 12:], 40)  # only the right half is damaged
    left, right = np.zeros((24, 24), bool), np.zeros((24, 24), bool)
    left[:, :12], right[:, 12:] = True, True
    ssim_map = metrics.ssim_map(pred, target)
    assert metrics.masked_ssim(pred, target, right) == pytest.approx(ssim_map[:, 12:].mean(), abs=1e-12)
    assert metrics.masked_ssim(pred, target, right) < metrics.ssim(pred, target) < metrics.masked_ssim(pred, target, left)


def test_masked_sharpness_is_capped_where_gradients_match_inside_the_mask():
    target = random_image((16, 16, 3))
    pred = target.copy()
    pred[:, 10:] = cv2.GaussianBlur(target, (5, 5), 2.0)[:, 10:]
    mask = np.zeros((16, 16), bool)
    mask[:, :8] = True  # gradients there reach column 8 at most: all untouched
    assert metrics.masked_sharpness_difference(pred, target, mask) == metrics.PSNR_CAP_DB
    assert metrics.sharpness_difference(pred, target) < 40


def test_masked_metrics_reject_a_mask_of_the_wrong_shape_or_type():
    image = random_image((8, 8, 3))
    with pytest.raises(ValueError, match="mask shape"):
        metrics.masked_psnr(image, image, np.ones((8, 7), bool))
    with pytest.raises(ValueError, match="boolean"):
        metrics.masked_psnr(image, image, np.ones((8, 8), np.uint8))


def textured(height: int, width: int) -> np.ndarray:
    """A smooth random texture that optical flow can follow."""
    noise = np.random.default_rng(3).random((height, width)).astype(np.float32)
    grey = cv2.GaussianBlur(noise, (0, 0), 2.0)
    grey = (grey - grey.min()) / (grey.max() - grey.min()) * 200 + 20
    return np.stack([grey, grey * 0.8, 255 - grey], axis=-1).astype(np.uint8)


def test_motion_mask_marks_the_moving_object_and_not_the_still_background():
    background, patch = textured(64, 64), textured(80, 80)[:16, :16]
    first, second = background.copy(), background.copy()
    first[24:40, 20:36] = patch
    second[24:40, 23:39] = patch  # moved 3 px right
    mask = metrics.motion_mask(first, second, threshold_px=1.0)
    assert mask[28:36, 26:34].all()  # the object's interior
    assert not mask[:12].any() and not mask[52:].any()  # far from it, nothing moves
    assert not metrics.motion_mask(first, first, threshold_px=0.25).any()  # (Farneback leaves < 0.2 px at borders)


def test_flow_magnitude_of_a_pure_translation_is_its_length_in_pixels():
    scene = textured(48, 80)
    first, second = scene[:, 10:58], scene[:, 8:56]  # content moves 2 px right
    magnitude = metrics.flow_magnitude(first, second)
    assert magnitude.shape == (48, 48)
    assert np.median(magnitude[8:-8, 8:-8]) == pytest.approx(2.0, abs=0.15)
    assert metrics.motion_mask(first, second, 1.5)[8:-8, 8:-8].mean() > 0.95
    assert not metrics.motion_mask(first, second, 3.0)[8:-8, 8:-8].any()


def test_motion_mask_does_not_depend_on_channel_order_and_works_on_batches():
    scene = textured(32, 48)
    pairs = np.stack([scene[:, 4:36], scene[:, 2:34]])  # (2, H, W, 3): a 2 px shift
    batch = metrics.motion_mask(pairs[None, :1].repeat(3, axis=0), pairs[None, 1:].repeat(3, axis=0))
    assert batch.shape == (3, 1, 32, 32)
    bgr = metrics.motion_mask(pairs[0, ..., ::-1], pairs[1, ..., ::-1])
    assert np.array_equal(bgr, batch[0, 0])
    with pytest.raises(ValueError, match="threshold"):
        metrics.motion_mask(pairs[0], pairs[1], threshold_px=-1)


# -- uncertainty ---------------------------------------------------------------------------


def test_rank_average_ties_shares_the_mean_rank():
    assert metrics.rank_average_ties(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_on_a_hand_computed_case_with_a_tie():
    # ranks 1..5 against 1, 2, 3.5, 5, 3.5: sum of products of deviations 8, squares 10 and 9.5
    assert metrics.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(10 * 9.5))


def test_spearman_is_one_for_any_increasing_relation_and_minus_one_for_decreasing():
    x = RNG.random(50)
    assert metrics.spearman(x, np.exp(3 * x)) == pytest.approx(1.0)
    assert metrics.spearman(x, -x ** 3) == pytest.approx(-1.0)


def test_spearman_of_a_constant_sample_is_nan():
    assert math.isnan(metrics.spearman([1, 2, 3], [4, 4, 4]))


def test_coverage_counts_errors_within_two_sigma_inclusive():
    error = np.array([0.1, 0.2, 0.25, -0.3]).reshape(1, 4, 1)  # (H, W, C)
    std = np.full((1, 4), 0.1)
    assert metrics.coverage_2sigma(error, std) == pytest.approx(0.5)  # 0.1 and exactly 2 sigma inside


def test_coverage_shares_a_pixels_sigma_across_its_channels():
    error = np.array([[[0.1, 0.5, 0.0]]])  # one pixel, three channels
    assert metrics.coverage_2sigma(error, np.array([[0.1]])) == pytest.approx(2 / 3)


def test_uncertainty_spearman_is_one_when_sigma_ranks_pixels_by_their_error():
    error = RNG.normal(size=(2, 8, 8, 3))
    std = np.abs(error).mean(axis=-1) * 0.5 + 0.01
    values = metrics.uncertainty_spearman(error, std)
    assert values.shape == (2,)
    assert np.allclose(values, 1.0)
    assert math.isnan(metrics.uncertainty_spearman(error[0], np.zeros((8, 8))))


# -- the contract's reference table --------------------------------------------------------

CARPHONE = carphone_clip()
REFERENCE = {  # CONTRACT.md: PSNR t+1..t+5, SSIM t+1..t+5
    "copy_last": ([33.79, 29.96, 28.34, 27.16, 26.01], [0.971, 0.936, 0.908, 0.885, 0.862]),
    "flow": ([33.02, 28.14, 25.69, 24.00, 22.67], [0.972, 0.924, 0.873, 0.827, 0.781]),
}


@pytest.fixture(scope="module")
def carphone_bgr() -> np.ndarray:
    capture = cv2.VideoCapture(str(CARPHONE))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(fit_to_model(frame, 64, 64))
    capture.release()
    assert len(frames) == 120
    return np.stack(frames)


@pytest.mark.parametrize("method", ["copy_last", "flow"])
def test_carphone_reference_table_is_reproduced(carphone_bgr, method):
    flow = FlowExtrapolation()
    predict = copy_last if method == "copy_last" else flow
    n = len(carphone_bgr)
    predictions, targets = [], []
    for i in range(3, n - 6):  # last observed index i = 3 .. N-7, predicting i+1 .. i+5
        rgb = carphone_bgr[i - 3 : i + 1, :, :, ::-1]  # baselines take RGB
        predictions.append(predict(np.ascontiguousarray(rgb), 5)[:, :, :, ::-1])
        targets.append(carphone_bgr[i + 1 : i + 6])
    predictions, targets = np.stack(predictions), np.stack(targets)
    psnr = metrics.psnr(predictions, targets).mean(axis=0)
    ssim = metrics.ssim(predictions, targets).mean(axis=0)
    expected_psnr, expected_ssim = REFERENCE[method]
    np.testing.assert_allclose(psnr, expected_psnr, atol=0.05)
    np.testing.assert_allclose(ssim, expected_ssim, atol=0.002)
