"""Export a checkpoint to ONNX (the whole K-step rollout in one graph) and, where
TensorRT and a GPU are present, to a TensorRT engine.

    python -m training.export --checkpoint CKPT --out MODEL.onnx [--horizon K]
        [--engine MODEL.engine [--fp16] [--workspace-mb N] [--max-batch B] [--device cuda:N]]

The model metadata goes into the ONNX file, so the ONNX file alone configures the node.
ONNX Runtime's output is checked against PyTorch's before the file is kept.

Stochastic models (svg): the graph takes a second input ``noise`` (B, S, K, z_dim), standard
normal, S dynamic (the S sample paths run as one batch), and has a third output
``predicted_sample`` (the first sample); ``predicted_frames`` is the samples' per-pixel mean
and ``uncertainty`` their std. The check feeds both runtimes the same noise, with another S
than the one traced. TensorRT engines are built for single-input graphs only (not svg).

Flow-anchored models (metadata ``flow_input``): the graph's second input is ``flow``
(B, H, W, 2), the classical backward flow the runtime computes before the graph
(``video_predictor.core.predictor.flow_input``); the check feeds both runtimes the real flow
of its check frames.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from video_predictor.backends import tensorrt_available
from video_predictor.backends.tensorrt_backend import DEFAULT_MAX_BATCH
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.model_file import load_model_file
from video_predictor.core.onnx_schema import (
    FLOW_INPUT,
    FRAMES_INPUT,
    FRAMES_OUTPUT,
    NOISE_INPUT,
    SAMPLE_OUTPUT,
    UNCERTAINTY_OUTPUT,
)
from video_predictor.core.predictor import flow_input
from video_predictor.models import PredictorGraph, build_model, uncertainty_kind

log = logging.getLogger("training.export")
OPSET = 17  # GridSample (16+) and a version TensorRT 8.6+ parses
TOLERANCE = 1e-3  # max |ORT - torch| in [0, 1] units


class ExportError(RuntimeError):
    pass


def export_onnx(checkpoint: Path, out: Path, horizon: int = 0, verify_inputs: np.ndarray | None = None) -> tuple[ModelMetadata, float]:
    """Write ``out`` and return (metadata, max abs difference ORT vs torch)."""
    import onnx

    metadata, state_dict, _ = load_model_file(checkpoint)
    if horizon:
        metadata = replace(metadata, horizon=horizon)
    kind, stochastic = uncertainty_kind(metadata.family, metadata.model_config)
    if stochastic:  # the ONNX file says what its std is, whatever the checkpoint's trainer wrote
        metadata = replace(metadata, uncertainty=kind, stochastic=True)
    model = build_model(metadata.family, metadata.model_config)
    model.load_state_dict(state_dict)
    graph = PredictorGraph(model, metadata.horizon, with_sample=stochastic).eval()
    example = torch.rand(1, metadata.input_frames, metadata.height, metadata.width, metadata.channels) * 255
    args: tuple[torch.Tensor, ...] = (example,)
    input_names, output_names = [FRAMES_INPUT], [FRAMES_OUTPUT, UNCERTAINTY_OUTPUT]
    dynamic_axes = {name: {0: "batch"} for name in (*input_names, *output_names)}
    if graph.flow_input:  # the classical flow, computed before the graph (predictor.flow_input)
        args = (example, torch.randn(1, metadata.height, metadata.width, 2) * 2)
        input_names.append(FLOW_INPUT)
        dynamic_axes[FLOW_INPUT] = {0: "batch"}
    if stochastic:
        args = (example, torch.randn(model.noise_shape(1, 2, metadata.horizon)))
        input_names.append(NOISE_INPUT)
        output_names.append(SAMPLE_OUTPUT)
        dynamic_axes.update({NOISE_INPUT: {0: "batch", 1: "samples"}, SAMPLE_OUTPUT: {0: "batch"}})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    torch.onnx.export(
        graph,
        args,
        str(tmp),
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        opset_version=OPSET,
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    for key, value in metadata.to_onnx_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "video_predictor.training.export"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    inputs = verify_inputs if verify_inputs is not None else np.random.default_rng(0).integers(0, 256, (2, *example.shape[1:])).astype(np.float32)
    noise = None
    if stochastic:  # another batch and S than traced: both must stay dynamic
        noise = np.random.default_rng(1).standard_normal(model.noise_shape(len(inputs), 3, metadata.horizon)).astype(np.float32)
    if graph.flow_input:
        noise = flow_input(inputs.astype(np.uint8), metadata.flow_input)  # the second input: real flow of the check frames
    diff = _max_difference(graph, tmp, inputs.astype(np.float32), noise, FLOW_INPUT if graph.flow_input else NOISE_INPUT)
    if diff > TOLERANCE:
        tmp.unlink()
        raise ExportError(f"ONNX Runtime differs from PyTorch by {diff:.2e} (> {TOLERANCE:.0e}); file not written")
    tmp.replace(out)
    return metadata, diff


def _max_difference(graph: torch.nn.Module, onnx_path: Path, inputs: np.ndarray, noise: np.ndarray | None = None,
                    second_input: str = NOISE_INPUT) -> float:
    """Largest |ORT - torch| over all outputs, for the same inputs (and noise or flow)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = {FRAMES_INPUT: inputs} if noise is None else {FRAMES_INPUT: inputs, second_input: noise}
    ort_outputs = session.run(None, feed)
    with torch.inference_mode():
        torch_outputs = graph(torch.from_numpy(inputs)) if noise is None else graph(torch.from_numpy(inputs), torch.from_numpy(noise))
    return float(max(np.abs(o - t.numpy()).max() for o, t in zip(ort_outputs, torch_outputs)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="model file or training checkpoint (.pt)")
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--engine", default=None, help="also build a TensorRT engine here (needs TensorRT and an NVIDIA GPU)")
    parser.add_argument("--horizon", type=int, default=0, help="K steps in the graph (default: the model's)")
    engine = parser.add_argument_group("TensorRT engine (with --engine)")
    engine.add_argument("--fp16", action="store_true", help="build the engine in FP16 (inputs and outputs stay FP32)")
    engine.add_argument("--workspace-mb", type=int, default=0, help="TensorRT builder workspace limit in MiB (default: TensorRT's)")
    engine.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="largest batch the engine accepts")
    engine.add_argument("--device", default="cuda", help="GPU to build for (cuda or cuda:N)")
    args = parser.parse_args(argv)
    if not args.engine and (args.fp16 or args.workspace_mb or args.max_batch != DEFAULT_MAX_BATCH):
        parser.error("--fp16, --workspace-mb and --max-batch apply to the TensorRT engine: add --engine PATH")
    if args.workspace_mb < 0 or args.max_batch < 1:
        parser.error("--workspace-mb must be >= 0 and --max-batch >= 1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        metadata, diff = export_onnx(Path(args.checkpoint), Path(args.out), args.horizon)
    except (ExportError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    log.info("wrote %s: K=%d rollout, %dx%d, max |onnxruntime - torch| = %.2e", args.out, metadata.horizon, metadata.height, metadata.width, diff)
    if args.engine:
        return build_engine(Path(args.out), Path(args.engine), "fp16" if args.fp16 else "fp32", args.workspace_mb, args.max_batch, args.device)
    return 0


def build_engine(onnx_path: Path, engine_path: Path, precision: str, workspace_mb: int, max_batch: int, device: str) -> int:
    """Build (or confirm up to date) the engine through the node's own engine cache; exit status."""
    ok, why = tensorrt_available()
    if not ok:
        log.error("TensorRT engine not built: %s. The ONNX file works with backend onnxruntime.", why)
        return 2
    if not device.startswith("cuda"):
        log.error("TensorRT engine not built: --device must be cuda or cuda:N, got %r", device)
        return 2
    from video_predictor.backends.engine_cache import EngineCacheError
    from video_predictor.backends.tensorrt_backend import load_engine

    try:
        result, _ = load_engine(onnx_path, engine_path, precision, max_batch, workspace_mb, device)
    except (EngineCacheError, RuntimeError, OSError, ValueError) as exc:
        log.error("TensorRT engine not built: %s", exc)
        return 1
    if result.built:
        log.info("wrote %s (%s, batch 1..%d) in %.0f s, key file %s.json", engine_path, precision, max_batch, result.build_seconds, engine_path.name)
    else:
        log.info("%s is up to date for this ONNX file, TensorRT version, GPU and precision; kept it", engine_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
