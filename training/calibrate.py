"""Calibrate a model's uncertainty: one std multiplier per horizon step, fitted on held-out
clips so that the true frame lies within ±2σ of the prediction for ``target`` of the pixel
values (0.94: what a Laplace error with the predicted scale gives, in the middle of the
0.90–0.98 a planner can rely on).

The multipliers live in the model's ``sigma_calibration`` buffer (flow_anchored), so they
travel in the model file and the exported graph. The trainer calls this at the end of a run
on its real validation clips; ``python -m training.calibrate`` refits an existing model file
on a team's own recording.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from video_predictor.core.predictor import flow_input
from video_predictor.models import PredictorGraph

log = logging.getLogger("training.calibrate")
TARGET_COVERAGE = 0.94


def predict_clips(model: nn.Module, clips: np.ndarray, input_frames: int, horizon: int, flow_method: str,
                  batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The graph's (frames in [0, 1] (M, K, H, W, C), std (M, K, H, W)) for every clip."""
    graph = PredictorGraph(model, horizon).eval()
    device = next(model.parameters()).device
    frames, stds = [], []
    with torch.inference_mode():
        for start in range(0, len(clips), batch):
            inputs = clips[start:start + batch, :input_frames]
            x = torch.from_numpy(inputs).float().to(device)
            if graph.flow_input:
                out = graph(x, torch.from_numpy(flow_input(inputs, flow_method)).to(device))
            else:
                out = graph(x)
            frames.append(out[0].cpu().numpy())
            stds.append(out[1].cpu().numpy())
    return np.concatenate(frames), np.concatenate(stds)


def coverage(error: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per horizon step: the fraction of pixel values with |error| <= 2σ."""
    return (np.abs(error) <= 2.0 * std[..., None]).mean(axis=(0, 2, 3, 4))


def fit_sigma_calibration(model: nn.Module, clips: np.ndarray, input_frames: int, horizon: int, flow_method: str,
                          target: float = TARGET_COVERAGE) -> tuple[np.ndarray, np.ndarray]:
    """Set ``model.sigma_calibration`` so that ±2σ covers ``target`` of the held-out values at
    every step; returns (coverage before, coverage after), per step."""
    if not hasattr(model, "sigma_calibration"):
        raise ValueError(f"{type(model).__name__} has no sigma_calibration buffer")
    if not 0 < target < 1:
        raise ValueError(f"target coverage must be in (0, 1), got {target}")
    if len(clips) == 0:
        raise ValueError("no clips to calibrate on")
    truth = clips[:, input_frames:input_frames + horizon].astype(np.float32) / 255.0
    with torch.no_grad():
        model.sigma_calibration[:horizon] = 1.0
    predicted, std = predict_clips(model, clips, input_frames, horizon, flow_method)
    error = predicted - truth
    before = coverage(error, std * model.sigma_calibration[:horizon].cpu().numpy()[None, :, None, None])
    # |e| <= 2·s·σ for a `target` share of the values: s is that quantile of |e| / (2σ)
    ratio = np.abs(error) / (2.0 * np.maximum(std, 1e-6)[..., None])
    scales = np.quantile(ratio.transpose(1, 0, 2, 3, 4).reshape(horizon, -1), target, axis=1)
    scales = np.clip(scales, 1e-3, 1e3).astype(np.float32)
    with torch.no_grad():
        model.sigma_calibration[:horizon] = torch.from_numpy(scales)
    after = coverage(error, np.minimum(std * scales[None, :, None, None], 0.5))
    log.info("sigma calibration on %d clips: multipliers %s; coverage(2σ) %s -> %s", len(clips),
             np.round(scales, 3).tolist(), np.round(before, 3).tolist(), np.round(after, 3).tolist())
    return before, after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model file (.pt) with a sigma_calibration buffer (flow_anchored)")
    parser.add_argument("--data", required=True, help="held-out recording: video, frame folder, bag, ... (as training --data)")
    parser.add_argument("--out", required=True, help="model file to write (export it again for ONNX)")
    parser.add_argument("--target", type=float, default=TARGET_COVERAGE, help="coverage of ±2σ (default %(default)s)")
    parser.add_argument("--frame-interval", type=int, default=1, help="keep every n-th recorded frame")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dataclasses import replace

    from video_predictor.core.model_file import load_model_file, save_model_file
    from video_predictor.models import build_model

    from .config import DataSection
    from .data.dataset import load_clip_set
    from .data.sequence import DataError

    try:
        metadata, state, _ = load_model_file(args.model)
        model = build_model(metadata.family, metadata.model_config)
        model.load_state_dict(state)
        data = replace(DataSection(), height=metadata.height, width=metadata.width, input_frames=metadata.input_frames,
                       frame_interval=args.frame_interval, val_fraction=0.5, clip_stride=1)
        clip_set = load_clip_set(Path(args.data), data, metadata.input_frames + metadata.horizon, seed=0)
        clips = np.concatenate([clip_set.train, clip_set.val])
        fit_sigma_calibration(model, clips, metadata.input_frames, metadata.horizon, metadata.flow_input, args.target)
    except (DataError, ValueError, OSError) as error:
        log.error("%s", error)
        return 1
    save_model_file(args.out, metadata, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
