"""SVG on Stochastic Moving MNIST: does the spread of the sampled futures after a bounce
match the true spread? (Denton & Fergus 2018, section 5.1.)

    python benchmarks/svg_bounce_spread.py --model runs/svg-smmnist/model.pt [--clips 200]
        [--samples 20] [--digits 1] [--out result.json]

For each held-out clip the generator draws ``samples`` true futures from the state at the
last observed frame (training/data/moving_mnist.py ``branched_clips``): they agree up to
the first wall hit and spread after it, since a bounce redraws the velocity. The model
draws as many futures from its prior. Per number of steps since the first bounce, it
reports the spread of the digit's position (root mean square distance of each future's
intensity centroid from their mean, in pixels) for the true and the sampled futures, the
mean per-pixel std of each set, and how much ink the samples keep (sum of intensities
over that of the truth: below 1 when the samples fade or blur). One digit by default, so
that the centroid is the digit's position.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.data.moving_mnist import MovingMNISTConfig, branched_clips  # noqa: E402
from video_predictor.core.model_file import load_model_file  # noqa: E402
from video_predictor.models import build_model  # noqa: E402

BEFORE = "before"  # the group of steps up to and including the first wall hit (futures determined)


def centroid_spread(frames: np.ndarray) -> np.ndarray:
    """frames (..., S, H, W) in [0, 1] -> (...) root mean square distance, in pixels, of the
    S intensity centroids from their mean (0 when all futures put the ink in one place)."""
    h, w = frames.shape[-2:]
    ink = frames.sum(axis=(-2, -1))
    safe = np.maximum(ink, 1e-6)
    rows = (frames.sum(axis=-1) * np.arange(h)).sum(axis=-1) / safe
    cols = (frames.sum(axis=-2) * np.arange(w)).sum(axis=-1) / safe
    # A blank future has no position: put it at the centre rather than divide by zero.
    rows = np.where(ink > 1e-6, rows, (h - 1) / 2)
    cols = np.where(ink > 1e-6, cols, (w - 1) / 2)
    d2 = (rows - rows.mean(axis=-1, keepdims=True)) ** 2 + (cols - cols.mean(axis=-1, keepdims=True)) ** 2
    return np.sqrt(d2.mean(axis=-1))


def group_by_bounce(first_bounce: np.ndarray, horizon: int) -> np.ndarray:
    """(M, K) steps since the first bounce for each clip and future step; <= 0 where the
    future is still determined (before or at the hit, or no hit within the horizon)."""
    steps = np.arange(horizon)[None, :] - first_bounce[:, None]
    return np.where(first_bounce[:, None] < 0, 0, steps)


@torch.inference_mode()
def sample_futures(model_path: Path, clips: np.ndarray, samples: int, seed: int) -> tuple[np.ndarray, dict]:
    """(M, S, K, H, W) in [0, 1] futures of the model from each clip's observed frames."""
    metadata, state_dict, _ = load_model_file(model_path)
    model = build_model(metadata.family, metadata.model_config)
    model.load_state_dict(state_dict)
    model.eval()
    if not getattr(model, "stochastic", False):
        raise SystemExit(f"{model_path}: family {metadata.family} draws no samples; this compares sampled futures")
    n, k = metadata.input_frames, metadata.horizon
    inputs = torch.from_numpy(clips[:, :n]).permute(0, 1, 4, 2, 3).float() * (2 / 255) - 1
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(model.noise_shape(len(clips), samples, k), generator=generator)
    drawn = torch.cat([model.sample(inputs[i : i + 8], k, noise[i : i + 8]) for i in range(0, len(clips), 8)])
    return drawn[:, :, :, 0].numpy(), {"input_frames": n, "horizon": k, "height": metadata.height, "width": metadata.width}


def compare(model_futures: np.ndarray, true_futures: np.ndarray, first_bounce: np.ndarray) -> list[dict]:
    """Per group of steps since the first bounce: counts and the spreads of both sets."""
    since = group_by_bounce(first_bounce, true_futures.shape[2])
    # (M, S, K, H, W) -> per (M, K)
    spread_model = centroid_spread(model_futures.transpose(0, 2, 1, 3, 4))
    spread_true = centroid_spread(true_futures.transpose(0, 2, 1, 3, 4))
    pixel_std_model = model_futures.std(axis=1, ddof=1).mean(axis=(-2, -1))
    pixel_std_true = true_futures.std(axis=1, ddof=1).mean(axis=(-2, -1))
    ink = model_futures.sum(axis=(1, 3, 4)) / np.maximum(true_futures.sum(axis=(1, 3, 4)), 1e-6)
    rows = []
    for group in [BEFORE, *range(1, int(since.max()) + 1)]:
        mask = since <= 0 if group == BEFORE else since == group
        if not mask.any():
            continue
        rows.append({
            "steps_since_bounce": group,
            "count": int(mask.sum()),
            "position_spread_px": {"true": round(float(spread_true[mask].mean()), 2), "model": round(float(spread_model[mask].mean()), 2)},
            "pixel_std": {"true": round(float(pixel_std_true[mask].mean()), 4), "model": round(float(pixel_std_model[mask].mean()), 4)},
            "ink_kept": round(float(ink[mask].mean()), 3),
        })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="svg model file or checkpoint (.pt)")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--samples", type=int, default=20, help="futures drawn per clip, by the model and by the generator")
    parser.add_argument("--digits", type=int, default=1)
    parser.add_argument("--seed", type=int, default=54321)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    metadata, _, _ = load_model_file(args.model)
    n, k = metadata.input_frames, metadata.horizon
    config = MovingMNISTConfig(height=metadata.height, width=metadata.width, clip_length=n + k, digits=args.digits)
    data = branched_clips(args.clips, config, args.seed, observed=n, branches=args.samples)
    model_futures, _ = sample_futures(args.model, data.clips, args.samples, args.seed)
    true_futures = data.futures[..., 0].astype(np.float32) / 255.0
    report = {"model": str(args.model), "clips": args.clips, "samples": args.samples, "digits": args.digits,
              "clips_with_a_bounce": int((data.first_bounce >= 0).sum()),
              "by_steps_since_bounce": compare(model_futures, true_futures, data.first_bounce)}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
