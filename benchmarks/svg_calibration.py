"""SVG on held-out Stochastic Moving MNIST: calibration of the sampled std, the paper's
best-of-S scores, and the cost of S samples.

    python benchmarks/svg_calibration.py --model runs/svg-smmnist/model.pt [--clips 64] [--samples 8]
        [--digits 2] [--deterministic OTHER_MODEL.pt] [--latency] [--out result.json]

Per horizon step k: coverage of mean ± 2σ (fraction of true pixels inside; 95 % when
calibrated; σ is the samples' spread, plus the scale head's std for heteroscedastic models), Spearman(σ, |mean - truth|) over all pixels, PSNR/SSIM of the mean, of one
sample, of the best of S samples (per clip, the sample with the best SSIM averaged over the
horizon, as in Denton & Fergus 2018), and of copy-last-frame. ``--deterministic`` scores
another model file (any family) on the same clips. ``--latency``: median time of one
prediction (batch 1) with S = 1 and S = samples, PyTorch and ONNX Runtime, one thread.
Clips use the digits held out from training (training/data/moving_mnist.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.data.moving_mnist import MovingMNISTConfig, moving_mnist_clips  # noqa: E402
from video_predictor.backends import create_predictor  # noqa: E402
from video_predictor.core.model_file import load_model_file  # noqa: E402
from video_predictor.evaluation import metrics
from video_predictor.models import build_model  # noqa: E402
from video_predictor.models.svg import sample_statistics  # noqa: E402


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, list[float]]:
    """pred, truth (M, K, H, W, C) uint8 -> per-horizon mean PSNR and SSIM."""
    return {"psnr": np.asarray(metrics.psnr(pred, truth)).mean(axis=0).round(2).tolist(),
            "ssim": np.asarray(metrics.ssim(pred, truth)).mean(axis=0).round(4).tolist()}


@torch.inference_mode()
def evaluate(model_path: Path, clips: np.ndarray, samples: int, seed: int) -> dict:
    metadata, state_dict, _ = load_model_file(model_path)
    model = build_model(metadata.family, metadata.model_config)
    model.load_state_dict(state_dict)
    model.eval()
    n, k = metadata.input_frames, clips.shape[1] - metadata.input_frames
    inputs = torch.from_numpy(clips[:, :n]).permute(0, 1, 4, 2, 3).float() * (2 / 255) - 1
    truth_u8 = clips[:, n:]
    truth = truth_u8.astype(np.float32) / 255.0
    torch.manual_seed(seed)
    noise = torch.randn(model.noise_shape(len(clips), samples, k))
    parts = [model.sample_with_std(inputs[i : i + 8], k, noise[i : i + 8]) for i in range(0, len(clips), 8)]
    drawn = torch.cat([p[0] for p in parts])
    head = torch.cat([p[1] for p in parts]) if parts[0][1] is not None else None  # a scale head's own std
    mean, std = sample_statistics(drawn, head)
    drawn = drawn.permute(0, 1, 2, 4, 5, 3).numpy()  # (M, S, K, H, W, C)
    mean, std = mean.permute(0, 1, 3, 4, 2).numpy(), std.numpy()
    error = mean - truth
    result = {
        "coverage_2sigma": np.asarray(metrics.coverage_2sigma(error, std)).mean(axis=0).round(4).tolist(),
        "spearman": [round(metrics.spearman(std[:, j], np.abs(error[:, j]).mean(axis=-1)), 4) for j in range(k)],
        "mean_std": std.mean(axis=(0, 2, 3)).round(4).tolist(),
        "mean_abs_error": np.abs(error).mean(axis=(0, 2, 3, 4)).round(4).tolist(),
    }
    samples_u8 = to_uint8(drawn)
    ssim_per_sample = np.stack([np.asarray(metrics.ssim(samples_u8[:, s], truth_u8)) for s in range(samples)], axis=1)  # (M, S, K)
    best = ssim_per_sample.mean(axis=2).argmax(axis=1)
    result["mean"] = scores(to_uint8(mean), truth_u8)
    result["one_sample"] = scores(samples_u8[:, 0], truth_u8)
    result["best_of_s"] = scores(samples_u8[np.arange(len(clips)), best], truth_u8)
    return result


def latency(model_path: Path, samples: int, repeats: int = 20) -> dict:
    """Median ms of one prediction (batch 1), S = 1 and S = samples, torch and ONNX Runtime."""
    from training.export import export_onnx

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(model_path, onnx_path)
        for backend, path in (("torch", model_path), ("onnxruntime", onnx_path)):
            predictor, _ = create_predictor(str(path), backend=backend, threads=1, samples=1)
            md = predictor.metadata
            frames = np.random.default_rng(0).integers(0, 256, (1, md.input_frames, md.height, md.width, md.channels)).astype(np.uint8)
            for s in (1, samples):
                predictor.samples = s
                predictor.predict(frames)
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    predictor.predict(frames)
                    times.append(time.perf_counter() - start)
                out[f"{backend}_s{s}_ms"] = round(1000 * float(np.median(times)), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="svg model file or checkpoint (.pt)")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--deterministic", type=Path, default=None, help="a deterministic model file to score on the same clips")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    metadata, _, _ = load_model_file(args.model)
    config = MovingMNISTConfig(height=metadata.height, width=metadata.width, clip_length=metadata.input_frames + metadata.horizon,
                               digits=args.digits)
    clips = moving_mnist_clips(args.clips, config, args.seed, split="val")
    report = {"model": str(args.model), "clips": args.clips, "samples": args.samples, "digits": args.digits,
              "horizon": list(range(1, metadata.horizon + 1)), "svg": evaluate(args.model, clips, args.samples, args.seed)}
    n = metadata.input_frames
    report["copy_last"] = scores(np.repeat(clips[:, n - 1 : n], metadata.horizon, axis=1), clips[:, n:])
    if args.deterministic is not None:
        predictor, _ = create_predictor(str(args.deterministic), backend="torch", threads=1)
        md = predictor.metadata
        prediction = predictor.predict(clips[:, n - md.input_frames : n])
        report["deterministic"] = scores(to_uint8(prediction.frames[:, : metadata.horizon]), clips[:, n : n + min(md.horizon, metadata.horizon)])
    if args.latency:
        report["latency"] = latency(args.model, args.samples)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
