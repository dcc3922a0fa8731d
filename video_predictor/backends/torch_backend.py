"""PyTorch eager backend: runs the model file's network directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from video_predictor.model_file import ModelFileError, load_model_file
from video_predictor.models import PredictorGraph, build_model
from video_predictor.predictor import Prediction, Predictor


class TorchPredictor(Predictor):
    backend_name = "torch"

    def __init__(self, path: Path, device: str = "cpu", horizon: int = 0, samples: int = 1, threads: int = 0) -> None:
        metadata, state_dict, _ = load_model_file(path)
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
        self.graph = PredictorGraph(model, self.horizon).to(self.device).eval()
        self.samples = samples

    @torch.inference_mode()
    def _run(self, frames: np.ndarray) -> Prediction:
        x = torch.from_numpy(frames).to(self.device, torch.float32)
        predicted, std = self.graph(x)
        return Prediction(predicted.cpu().numpy(), std.cpu().numpy())
