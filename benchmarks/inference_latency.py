"""Latency of one K-step rollout of a model, per backend, in one process on the same inputs.

    .venv/bin/python benchmarks/inference_latency.py [--model FILE] [--runs 200] [--threads 2]

Prints p50/p90/p99 per backend and the torch/onnxruntime ratio of medians, plus the
cost of the optical-flow extrapolation baseline at the same resolution for reference, and
of ONNX Runtime with the node's online adaptation (parameter ``adapt``), fed consecutive
windows of one stream so that every call scores the frame that arrived: as the node runs it
(the scoring on a worker thread while the model runs) and, for comparison, all on the
calling thread (``learn_while_predicting=False``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from video_predictor.backends import create_predictor
from video_predictor.core.adaptive_predictor import AdaptivePredictor
from video_predictor.core.flow import FlowExtrapolation


def time_calls(fn, runs: int, warmup: int = 10) -> np.ndarray:
    for _ in range(warmup):
        fn()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn()
        times[i] = (time.perf_counter() - start) * 1e3
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="model file (default: the packaged default model)")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows, predictors = {}, {}
    for backend in ("torch", "onnxruntime"):
        predictor = predictors[backend] = create_predictor(args.model, backend=backend, threads=args.threads)[0]
        md = predictor.metadata
        frames = np.random.default_rng(0).integers(0, 256, (1, md.input_frames, md.height, md.width, md.channels), dtype=np.uint8)
        rows[backend] = time_calls(lambda: predictor.predict(frames), args.runs)
    stream = np.random.default_rng(1).integers(0, 256, (args.runs + 20 + md.input_frames, md.height, md.width,
                                                         md.channels), dtype=np.uint8)
    for name, overlapped in (("onnxruntime+adapt", True), ("+adapt, serial", False)):
        adaptive = AdaptivePredictor(predictors["onnxruntime"], learn_while_predicting=overlapped)
        position = iter(range(len(stream)))

        def next_window() -> None:
            i = next(position)
            adaptive.predict(stream[i: i + md.input_frames])

        rows[name] = time_calls(next_window, args.runs)
    flow = FlowExtrapolation()
    rows["flow baseline"] = time_calls(lambda: flow(frames[0], predictor.horizon), args.runs)
    print(f"model {args.model or 'default'}: {md.height}x{md.width}, N={md.input_frames}, K={predictor.horizon}, threads={args.threads}, {args.runs} runs")
    print(f"{'backend':<16}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for name, t in rows.items():
        print(f"{name:<16}{np.percentile(t, 50):9.2f}{np.percentile(t, 90):9.2f}{np.percentile(t, 99):9.2f}")
    ratio = np.median(rows["torch"]) / np.median(rows["onnxruntime"])
    print(f"torch eager / onnxruntime (median): {ratio:.2f}x")
    for name in ("onnxruntime", "onnxruntime+adapt", "+adapt, serial"):
        print(f"{name} / flow baseline (median): {np.median(rows[name]) / np.median(rows['flow baseline']):.2f}x")


if __name__ == "__main__":
    main()
