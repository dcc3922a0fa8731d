"""Frame-quality and uncertainty metrics, as fixed by the contract.

Images are uint8 arrays shaped (..., H, W, C); every leading axis is a batch axis and
each function returns one value per image (a float for a single image). Grey images
carry a trailing channel axis of 1. Channel order does not matter (RGB and BGR score
the same), which is why the evaluator can score RGB frames against BGR reference numbers.

Moving-area variants (``masked_*``) score only the pixels of a boolean (..., H, W) mask,
usually ``motion_mask``: where the optical flow from the last observed frame to the true
future frame is longer than a threshold, as Mathieu et al. (2015) evaluate, since a
static background flatters every method. An empty mask gives NaN (nothing to score).
"""

from __future__ import annotations

import cv2
import numpy as np

PEAK = 255.0
# Identical images have infinite PSNR; capping keeps averages finite and metrics.json valid
# JSON. A one-level error on one pixel of a 64x64 RGB frame scores 89 dB, so the cap only
# ever applies to (near-)identical frames.
PSNR_CAP_DB = 100.0

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11x11 window
_SSIM_C1 = (0.01 * PEAK) ** 2
_SSIM_C2 = (0.03 * PEAK) ** 2


def _check_pair(pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    if pred.ndim < 3:
        raise ValueError(f"expected images shaped (..., H, W, C), got shape {pred.shape}")


def _per_image(values: np.ndarray) -> float | np.ndarray:
    return float(values) if values.ndim == 0 else values


def psnr(pred: np.ndarray, target: np.ndarray) -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB with peak 255, capped at ``PSNR_CAP_DB``."""
    pred, target = np.asarray(pred), np.asarray(target)
    _check_pair(pred, target)
    diff = pred.astype(np.float64) - target.astype(np.float64)
    mse = np.mean(diff * diff, axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(PEAK * PEAK / mse)
    return _per_image(np.minimum(value, PSNR_CAP_DB))


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of (..., H, W, C) ``values`` over the pixels of a (..., H, W) mask and all
    channels; NaN where the mask is empty."""
    weights = mask[..., None].astype(np.float64)
    total = np.sum(values * weights, axis=(-3, -2, -1))
    count = np.sum(weights, axis=(-3, -2, -1)) * values.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _check_mask(mask: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise ValueError(f"mask must be boolean, got {mask.dtype}")
    if mask.shape != image_shape[:-1]:
        raise ValueError(f"mask shape {mask.shape} does not match images {image_shape} without their channel axis")
    return mask


def masked_psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float | np.ndarray:
    """PSNR over the masked pixels only (peak 255, capped at ``PSNR_CAP_DB``); NaN for an empty mask."""
    pred, target = np.asarray(pred), np.asarray(target)
    _check_pair(pred, target)
    mask = _check_mask(mask, pred.shape)
    diff = pred.astype(np.float64) - target.astype(np.float64)
    mse = _masked_mean(diff * diff, mask)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 10.0 * np.log10(PEAK * PEAK / mse)
    return _per_image(np.minimum(value, PSNR_CAP_DB))


def _gaussian_taps() -> np.ndarray:
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return taps / taps.sum()


def _blur_matrix(n: int) -> np.ndarray:
    """(n, n) matrix applying the 1-D Gaussian along one axis, borders mirrored without
    repeating the edge pixel (OpenCV's default BORDER_REFLECT_101)."""
    source = np.arange(n)[:, None] + np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1)[None, :]
    source = np.abs(source)  # reflect below 0
    source = np.where(source >= n, 2 * n - 2 - source, source)  # reflect beyond n - 1
    matrix = np.zeros((n, n))
    rows = np.broadcast_to(np.arange(n)[:, None], source.shape)
    np.add.at(matrix, (rows, source), np.broadcast_to(_gaussian_taps(), source.shape))
    return matrix


def _gaussian_blur(image: np.ndarray) -> np.ndarray:
    """11x11 Gaussian filter over the H and W axes of (..., H, W, C), as OpenCV's GaussianBlur.

    Written as two matrix products so that whole batches go through BLAS at once.
    """
    planes = np.moveaxis(image, -1, -3)  # (..., C, H, W)
    blurred = _blur_matrix(image.shape[-3]) @ planes @ _blur_matrix(image.shape[-2]).T
    return np.moveaxis(blurred, -3, -1)


def ssim(pred: np.ndarray, target: np.ndarray) -> float | np.ndarray:
    """Structural similarity (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, data range 255,
    the SSIM map averaged over the whole image; colour images: mean over channels.

    This is OpenCV's reference SSIM, which reproduces the contract's figures. skimage's
    ``structural_similarity`` differs only in dropping a 5-pixel border before averaging.
    """
    return map_mean(ssim_map(pred, target))


def masked_ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float | np.ndarray:
    """The SSIM map (windows still see the whole image) averaged over the masked pixels
    and the channels; NaN for an empty mask."""
    return map_mean(ssim_map(pred, target), mask)


def map_mean(values: np.ndarray, mask: np.ndarray | None = None) -> float | np.ndarray:
    """Per image, the mean of a (..., H, W, C) map (such as ``ssim_map``) over all pixels and
    channels, or over the pixels of a boolean (..., H, W) mask (NaN where it is empty).
    Lets a caller that wants both compute the map once."""
    values = np.asarray(values)
    if mask is None:
        return _per_image(np.mean(values, axis=(-3, -2, -1)))
    return _per_image(_masked_mean(values, _check_mask(mask, values.shape)))


def ssim_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The per-pixel, per-channel SSIM map (..., H, W, C) that ``ssim`` averages."""
    pred, target = np.asarray(pred), np.asarray(target)
    _check_pair(pred, target)
    if min(pred.shape[-3], pred.shape[-2]) <= SSIM_RADIUS:
        raise ValueError(f"SSIM needs images larger than {SSIM_RADIUS}x{SSIM_RADIUS}, got {pred.shape[-3]}x{pred.shape[-2]}")
    x = pred.astype(np.float64)
    y = target.astype(np.float64)
    mu_x, mu_y = _gaussian_blur(x), _gaussian_blur(y)
    var_x = _gaussian_blur(x * x) - mu_x * mu_x
    var_y = _gaussian_blur(y * y) - mu_y * mu_y
    cov = _gaussian_blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _SSIM_C1) * (2 * cov + _SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + _SSIM_C1) * (var_x + var_y + _SSIM_C2)
    return numerator / denominator


def sharpness_difference(pred: np.ndarray, target: np.ndarray) -> float | np.ndarray:
    """Sharpness difference in dB (Mathieu et al. 2015): how well the prediction keeps the
    target's local gradients. Higher is better; blurry predictions score low."""
    return sharpness_from_gap(gradient_gap_map(pred, target))


def masked_sharpness_difference(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float | np.ndarray:
    """Sharpness difference over the masked pixels (each pixel's gradients reach right and
    down, so the last row and column drop out as in the whole-image measure); NaN for an empty mask."""
    return sharpness_from_gap(gradient_gap_map(pred, target), mask)


def gradient_gap_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """|grad target - grad pred| per pixel, (..., H-1, W-1, C), gradients as |dx| + |dy|:
    the map ``sharpness_difference`` averages."""
    pred, target = np.asarray(pred), np.asarray(target)
    _check_pair(pred, target)

    def gradient_sum(image: np.ndarray) -> np.ndarray:
        image = image.astype(np.float64)
        dy = np.abs(np.diff(image, axis=-3))[..., :, :-1, :]
        dx = np.abs(np.diff(image, axis=-2))[..., :-1, :, :]
        return dx + dy

    return np.abs(gradient_sum(target) - gradient_sum(pred))


def sharpness_from_gap(gap: np.ndarray, mask: np.ndarray | None = None) -> float | np.ndarray:
    """Sharpness difference in dB from a ``gradient_gap_map``, over the whole image or over a
    boolean (..., H, W) mask of the full-size image (NaN where it is empty)."""
    if mask is not None:
        mask = _check_mask(mask, gap.shape[:-3] + (gap.shape[-3] + 1, gap.shape[-2] + 1, gap.shape[-1]))
        mask = mask[..., :-1, :-1]
    mean_gap = map_mean(gap, mask)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 10.0 * np.log10(PEAK * PEAK / np.asarray(mean_gap))
    return _per_image(np.minimum(value, PSNR_CAP_DB))


# -- moving areas ------------------------------------------------------------------------

#: Default flow-magnitude threshold of ``motion_mask``, in pixels at the scored resolution.
MOTION_THRESHOLD_PX = 0.5
# Farneback parameters of the motion mask: the contract's flow recipe with a 7-pixel window
# instead of 15. Flow spreads motion over about half its window around a moving object; at
# the small resolutions models are scored at (64x64) a 15-pixel window would count a wide
# band of still background as moving.
_MASK_FLOW = dict(pyr_scale=0.5, levels=3, winsize=7, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
MOTION_MASK_METHOD = (
    "OpenCV Farneback flow from the last observed frame to the true future frame (grey = channel mean; "
    "pyr_scale 0.5, levels 3, winsize 7, iterations 3, poly_n 5, poly_sigma 1.2); "
    "a pixel is moving where the flow is longer than the threshold"
)


def flow_magnitude(reference: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Length in pixels of the Farneback optical flow from ``reference`` to ``target``,
    per pixel: (..., H, W) float32 for (..., H, W, C) uint8 image pairs."""
    reference, target = np.asarray(reference), np.asarray(target)
    _check_pair(reference, target)
    h, w, c = reference.shape[-3:]
    pairs = zip(reference.reshape(-1, h, w, c), target.reshape(-1, h, w, c))
    out = np.empty((reference.size // (h * w * c), h, w), np.float32)
    for i, (a, b) in enumerate(pairs):
        flow = cv2.calcOpticalFlowFarneback(_grey(a), _grey(b), None, **_MASK_FLOW)
        out[i] = np.hypot(flow[..., 0], flow[..., 1])
    return out.reshape(reference.shape[:-1])


def motion_mask(reference: np.ndarray, target: np.ndarray, threshold_px: float = MOTION_THRESHOLD_PX) -> np.ndarray:
    """Boolean (..., H, W) mask of the pixels that move between ``reference`` (the last
    observed frame) and ``target`` (the true future frame) by more than ``threshold_px``."""
    if not threshold_px >= 0:
        raise ValueError(f"motion threshold must be >= 0 pixels, got {threshold_px}")
    return flow_magnitude(reference, target) > threshold_px


def _grey(image: np.ndarray) -> np.ndarray:
    """Channel mean as uint8: the same grey for RGB and BGR, so masks do not depend on channel order."""
    if image.shape[-1] == 1:
        return np.ascontiguousarray(image[..., 0])
    return (image.astype(np.float32).mean(axis=-1) + 0.5).astype(np.uint8)


def coverage_2sigma(error: np.ndarray, std: np.ndarray) -> float | np.ndarray:
    """Fraction of values with |error| <= 2 std, per image (about 0.95 when calibrated).

    error: (..., H, W, C) prediction minus target in [0, 1] units; std: (..., H, W), the
    per-pixel standard deviation, shared by the pixel's channels.
    """
    error, std = np.asarray(error), np.asarray(std)
    if error.shape[:-1] != std.shape:
        raise ValueError(f"error shape {error.shape} does not match std shape {std.shape} plus a channel axis")
    inside = np.abs(error) <= 2.0 * std[..., None]
    return _per_image(np.mean(inside, axis=(-3, -2, -1)))


def rank_average_ties(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array; tied values share the mean of their ranks."""
    values = np.asarray(values).ravel()
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.empty(len(values), dtype=bool)
    starts_group[:1] = True
    starts_group[1:] = ordered[1:] != ordered[:-1]
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    counts = np.diff(np.append(starts, len(values)))
    mean_rank = starts + (counts + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally long samples; NaN when either is constant."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape:
        raise ValueError(f"samples differ in size: {a.size} and {b.size}")
    ra = rank_average_ties(a) - (len(a) + 1) / 2.0
    rb = rank_average_ties(b) - (len(b) + 1) / 2.0
    denominator = np.sqrt(np.sum(ra * ra) * np.sum(rb * rb))
    if denominator == 0:
        return float("nan")
    return float(np.sum(ra * rb) / denominator)


def uncertainty_spearman(error: np.ndarray, std: np.ndarray) -> float | np.ndarray:
    """Per image, the Spearman correlation between each pixel's std and its absolute error
    (mean over channels): does the model know which pixels it gets wrong? NaN where the
    std map is constant. Shapes as for ``coverage_2sigma``."""
    error, std = np.asarray(error), np.asarray(std)
    if error.shape[:-1] != std.shape:
        raise ValueError(f"error shape {error.shape} does not match std shape {std.shape} plus a channel axis")
    abs_error = np.abs(error).mean(axis=-1)
    pairs = zip(std.reshape((-1,) + std.shape[-2:]), abs_error.reshape((-1,) + std.shape[-2:]))
    values = np.array([spearman(s, e) for s, e in pairs]).reshape(std.shape[:-2])
    return _per_image(values)
