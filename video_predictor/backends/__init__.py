"""Backends turn a model file into a ``Predictor``; ``create_predictor`` picks one.

``auto`` prefers TensorRT where it can run, then ONNX Runtime, then PyTorch. A model
given as ``.pt`` or ``.onnx`` uses a sibling file with the same stem when the chosen
backend needs the other format (the packaged default ships both).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from video_predictor.predictor import ModelLoadError, Predictor

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
_SUFFIX = {"torch": ".pt", "onnxruntime": ".onnx", "tensorrt": ".onnx"}
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


def default_model_path() -> Path:
    """The small default model shipped with the package (ONNX, with its .pt sibling)."""
    return PRETRAINED_DIR / "default.onnx"


def tensorrt_available() -> tuple[bool, str]:
    if importlib.util.find_spec("tensorrt") is None:
        return False, "the tensorrt package is not installed"
    try:
        import torch

        if not torch.cuda.is_available():
            return False, "no CUDA GPU is visible"
    except ImportError:
        return False, "torch is not installed (used to probe CUDA)"
    return True, "TensorRT and a CUDA GPU are present"


def _resolve_file(model: Path, backend: str) -> Path:
    wanted = _SUFFIX[backend]
    if model.suffix == wanted:
        return model
    sibling = model.with_suffix(wanted)
    if sibling.is_file():
        return sibling
    raise ModelLoadError(f"{model}: backend {backend!r} needs a {wanted} file and there is no {sibling.name} beside it")


def _choose_backend(model: Path, device: str) -> tuple[str, str]:
    has_onnx = model.suffix == ".onnx" or model.with_suffix(".onnx").is_file()
    has_pt = model.suffix == ".pt" or model.with_suffix(".pt").is_file()
    if has_onnx:
        ok, why = tensorrt_available()
        if ok and device != "cpu":
            return "tensorrt", f"auto: {why}"
        if importlib.util.find_spec("onnxruntime") is not None:
            return "onnxruntime", f"auto: ONNX file present and onnxruntime installed; TensorRT not used ({why if not ok else 'device is cpu'})"
    if has_pt:
        return "torch", "auto: only a PyTorch checkpoint is usable" if not has_onnx else "auto: onnxruntime not installed"
    raise ModelLoadError(f"{model}: not a .pt or .onnx model file")


def create_predictor(
    model: str = "", backend: str = "auto", device: str = "cpu", horizon: int = 0, samples: int = 1, threads: int = 0
) -> tuple[Predictor, str]:
    """Load ``model`` ("" = packaged default) on ``backend``; returns (predictor, reason for the choice).

    horizon 0 = the model's own K; samples is the number of stochastic samples (1 for
    deterministic models); threads 0 = the backend's default intra-op thread count.
    """
    if backend not in BACKENDS:
        raise ModelLoadError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    path = Path(model) if model else default_model_path()
    if not path.exists() and not any(path.with_suffix(s).is_file() for s in (".pt", ".onnx")):
        raise ModelLoadError(f"{path}: no such model file")
    if backend == "auto":
        backend, reason = _choose_backend(path, device)
    else:
        reason = f"backend {backend!r} requested"
    path = _resolve_file(path, backend)
    if backend == "torch":
        from video_predictor.backends.torch_backend import TorchPredictor as cls
    elif backend == "onnxruntime":
        from video_predictor.backends.onnxruntime_backend import OnnxRuntimePredictor as cls
    else:
        ok, why = tensorrt_available()
        if not ok:
            raise ModelLoadError(f"{path}: backend 'tensorrt' cannot run here: {why}")
        raise ModelLoadError(f"{path}: the TensorRT backend is not built yet (issue: deployment)")
    try:
        predictor = cls(path, device=device, horizon=horizon, samples=samples, threads=threads)
    except ModelLoadError:
        raise
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc
    return predictor, f"{reason}; model {path}"
