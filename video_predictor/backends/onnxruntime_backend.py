"""ONNX Runtime backend: runs the exported K-step rollout graph (CUDA provider where present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from video_predictor.metadata import MetadataError, ModelMetadata
from video_predictor.predictor import Prediction, Predictor


class OnnxRuntimePredictor(Predictor):
    backend_name = "onnxruntime"

    def __init__(self, path: Path, device: str = "cpu", horizon: int = 0, samples: int = 1, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError(f"device {device!r} requested but onnxruntime has no CUDA provider")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"onnxruntime cannot load it: {exc}") from exc
        try:
            metadata = ModelMetadata.from_onnx_props(self.session.get_modelmeta().custom_metadata_map)
        except MetadataError as exc:
            raise ValueError(str(exc)) from exc
        if horizon and horizon > metadata.horizon:
            raise ValueError(f"the ONNX graph rolls out {metadata.horizon} steps; horizon {horizon} needs a new export")
        super().__init__(metadata, horizon or metadata.horizon)
        self.samples = samples
        self._input = self.session.get_inputs()[0].name

    def _run(self, frames: np.ndarray) -> Prediction:
        predicted, std = self.session.run(None, {self._input: frames.astype(np.float32)})
        return Prediction(predicted[:, : self.horizon], std[:, : self.horizon])
