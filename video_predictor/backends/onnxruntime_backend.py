"""ONNX Runtime backend: runs the exported K-step rollout graph (CUDA provider where present).

A stochastic model's graph (svg) has a second input, ``noise`` (B, S, K, z_dim): S sample
paths run as one batch, S chosen per call by the noise this predictor draws (``seed``:
reproducible). Outputs: the samples' per-pixel mean, their std and the first sample
(``publish`` picks mean or sample for the frames).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from video_predictor.backends.sampling import check_publish, check_samples, draw_noise
from video_predictor.core.metadata import MetadataError, ModelMetadata
from video_predictor.core.onnx_schema import (
    FLOW_INPUT,
    FRAMES_INPUT,
    FRAMES_OUTPUT,
    NOISE_INPUT,
    SAMPLE_OUTPUT,
    UNCERTAINTY_OUTPUT,
)
from video_predictor.core.predictor import Prediction, Predictor


class OnnxRuntimePredictor(Predictor):
    backend_name = "onnxruntime"

    def __init__(
        self, path: Path, device: str = "cpu", horizon: int = 0, samples: int = 1, threads: int = 0,
        publish: str = "mean", seed: int | None = None,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            options.intra_op_num_threads = threads
        # Idle intra-op threads sleep instead of spinning between the graph's ~1400 small
        # kernels: spinning takes the cores the node's executor and DDS threads need, and on
        # a shared 2-core machine cost 30 % in wall time and CPU (benchmarks/harness.py --only profile).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError(f"device {device!r} requested but onnxruntime has no CUDA provider")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"onnxruntime cannot load it: {exc}") from exc
        # The node predicts one sequence at a time. With the batch axis fixed at 1 the graph
        # optimiser folds the dynamic-shape arithmetic away: 611 kernels instead of 1431 and
        # about 25 % less latency (benchmarks/harness.py --only profile). Other batch sizes
        # (the evaluator's) use the dynamic session.
        self._session_one = None
        batch_axis = self.session.get_inputs()[0].shape[0]
        if isinstance(batch_axis, str):
            options.add_free_dimension_override_by_name(batch_axis, 1)
            self._session_one = ort.InferenceSession(str(path), options, providers=providers)
        try:
            metadata = ModelMetadata.from_onnx_props(self.session.get_modelmeta().custom_metadata_map)
        except MetadataError as exc:
            raise ValueError(str(exc)) from exc
        if horizon and horizon > metadata.horizon:
            raise ValueError(f"the ONNX graph rolls out {metadata.horizon} steps; horizon {horizon} needs a new export")
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        self.stochastic = NOISE_INPUT in inputs
        if self.stochastic:
            if SAMPLE_OUTPUT not in outputs:
                raise ValueError(f"the graph takes noise but has no {SAMPLE_OUTPUT!r} output (outputs {outputs}); re-export it")
            z_dim = inputs[NOISE_INPUT].shape[-1]
            if not isinstance(z_dim, int):
                raise ValueError(f"the noise input's last dimension must be fixed, got {inputs[NOISE_INPUT].shape}")
            self._z_dim = z_dim
            # Exports record the kind (svg: samples, samples+heteroscedastic; its deterministic baseline: none).
            kind = metadata.uncertainty if metadata.stochastic else "samples"
            metadata = replace(metadata, uncertainty=kind, stochastic=True)
        super().__init__(metadata, horizon or metadata.horizon)
        self.samples = check_samples(samples)  # may be changed between calls (node parameter)
        self.publish = check_publish(publish)
        self.rng = np.random.default_rng(seed)
        self._input = FRAMES_INPUT if FRAMES_INPUT in inputs else self.session.get_inputs()[0].name
        self._outputs = outputs

    def _session_for(self, batch: int):
        return self._session_one if batch == 1 and self._session_one is not None else self.session

    def _run(self, frames: np.ndarray, flow: np.ndarray | None) -> Prediction:
        feed = {self._input: frames.astype(np.float32)}
        if flow is not None:
            feed[FLOW_INPUT] = flow
        session = self._session_for(len(frames))
        if not self.stochastic:
            predicted, std = session.run(None, feed)[:2]
            return Prediction(predicted[:, : self.horizon], std[:, : self.horizon])
        # The graph rolls out its own K; noise for all K, outputs cut to the horizon asked for.
        feed[NOISE_INPUT] = draw_noise(self.rng, len(frames), self.samples, self.metadata.horizon, self._z_dim)
        results = dict(zip(self._outputs, session.run(None, feed)))
        chosen = results[FRAMES_OUTPUT] if check_publish(self.publish) == "mean" else results[SAMPLE_OUTPUT]
        return Prediction(chosen[:, : self.horizon], results[UNCERTAINTY_OUTPUT][:, : self.horizon])
