"""PyTorch eager backend: runs the model file's network directly.

Stochastic models (svg) get ``samples`` sample paths per input in one batched call, with
noise drawn from this predictor's generator (``seed``: reproducible); the frames out are
the samples' per-pixel mean or, with ``publish="sample"``, the first sample, and the std
is the samples' spread.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from video_predictor.backends.sampling import check_publish, check_samples, draw_noise
from video_predictor.core.model_file import ModelFileError, load_model_file
from video_predictor.core.predictor import Prediction, Predictor
from video_predictor.models import PredictorGraph, build_model, uncertainty_kind


class TorchPredictor(Predictor):
    backend_name = "torch"

    def __init__(
        self, path: Path, device: str = "cpu", horizon: int = 0, samples: int = 1, threads: int = 0,
        publish: str = "mean", seed: int | None = None,
    ) -> None:
        metadata, state_dict, _ = load_model_file(path)
        kind, stochastic = uncertainty_kind(metadata.family, metadata.model_config)
        if stochastic:  # a model file written before its trainer recorded the kind still says what it gives
            metadata = replace(metadata, uncertainty=kind, stochastic=True)
        super().__init__(metadata, horizon or metadata.horizon)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        model = build_model(metadata.family, metadata.model_config)
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise ModelFileError(f"{path}: weights do not fit the {metadata.family} config in its metadata: {exc}") from exc
        self.graph = PredictorGraph(model, self.horizon, with_sample=True).to(self.device).eval()
        self.samples = check_samples(samples)  # may be changed between calls (node parameter)
        self.publish = check_publish(publish)
        self.rng = np.random.default_rng(seed)

    @torch.inference_mode()
    def _run(self, frames: np.ndarray, flow: np.ndarray | None) -> Prediction:
        x = torch.from_numpy(frames).to(self.device, torch.float32)
        if self.graph.flow_input:
            predicted, std = self.graph(x, torch.from_numpy(flow).to(self.device))
            return Prediction(predicted.cpu().numpy(), std.cpu().numpy())
        if not self.graph.stochastic:
            predicted, std = self.graph(x)
            return Prediction(predicted.cpu().numpy(), std.cpu().numpy())
        shape = self.graph.model.noise_shape(len(frames), self.samples, self.horizon)
        noise = torch.from_numpy(draw_noise(self.rng, *shape)).to(self.device)
        mean, std, sample = self.graph(x, noise)
        chosen = mean if check_publish(self.publish) == "mean" else sample
        return Prediction(chosen.cpu().numpy(), std.cpu().numpy())
