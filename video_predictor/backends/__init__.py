"""Backends turn a model file into a ``Predictor``; ``create_predictor`` picks one.

``auto`` prefers TensorRT where it can run (the tensorrt package imports, a CUDA GPU is
visible and device is not cpu), then ONNX Runtime (its CUDA provider where it has one and
device is cuda, else its CPU provider), then PyTorch; the reason names why each faster
backend was passed over. A model given as ``.pt`` or ``.onnx`` uses a sibling file with the
same stem when the chosen backend needs the other format (the packaged default ships both).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from video_predictor.backends.engine_cache import PRECISIONS  # TensorRT engine precision; I/O stays FP32
from video_predictor.core.onnx_schema import NOISE_INPUT
from video_predictor.core.predictor import ModelLoadError, Predictor

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
_SUFFIX = {"torch": ".pt", "onnxruntime": ".onnx", "tensorrt": ".onnx"}
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


def default_model_path() -> Path:
    """The small default model shipped with the package (ONNX, with its .pt sibling)."""
    return PRETRAINED_DIR / "default.onnx"


def cuda_available() -> tuple[bool, str]:
    """Whether torch sees a CUDA GPU (the TensorRT backend and torch on cuda need it)."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed (used to probe CUDA)"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU is visible to torch"
    return True, f"CUDA GPU {torch.cuda.get_device_name(0)}"


def tensorrt_available() -> tuple[bool, str]:
    """Whether the TensorRT backend can run here: tensorrt imports and a CUDA GPU is visible."""
    if importlib.util.find_spec("tensorrt") is None:
        return False, "the tensorrt package is not installed"
    try:
        import tensorrt
    except (ImportError, OSError) as exc:  # OSError: the wheel is there, its CUDA libraries are not
        return False, f"the tensorrt package does not import ({exc})"
    ok, why = cuda_available()
    if not ok:
        return False, why
    return True, f"TensorRT {getattr(tensorrt, '__version__', '?')} and {why} are present"


def resolve_device(device: str) -> tuple[str, str]:
    """``device`` "auto" -> ("cuda", why) where a CUDA GPU can be used, else ("cpu", why);
    any other value is returned as it is. torch is imported to probe the GPU only where a
    GPU stack is installed, so that a CPU-only node does not pay for it."""
    if device != "auto":
        return device, ""
    stack = (importlib.util.find_spec("tensorrt") is not None or "CUDAExecutionProvider" in (onnxruntime_providers() or [])
             or Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia").exists())
    if not stack:
        return "cpu", "device auto: cpu (no NVIDIA driver, TensorRT or CUDA-enabled ONNX Runtime found)"
    ok, why = cuda_available()
    return ("cuda", f"device auto: cuda ({why})") if ok else ("cpu", f"device auto: cpu ({why})")


def onnxruntime_providers() -> list[str] | None:
    """ONNX Runtime's execution providers, or None when onnxruntime is not installed."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    return list(onnxruntime.get_available_providers())


@dataclass(frozen=True)
class BackendChoice:
    backend: str
    device: str  # may differ from the requested one: cpu where the backend has no CUDA path here
    reason: str


def _resolve_file(model: Path, backend: str) -> Path:
    wanted = _SUFFIX[backend]
    if model.suffix == wanted:
        return model
    sibling = model.with_suffix(wanted)
    if sibling.is_file():
        return sibling
    raise ModelLoadError(f"{model}: backend {backend!r} needs a {wanted} file and there is no {sibling.name} beside it")


def _is_stochastic(onnx_path: Path) -> bool:
    """Whether an exported graph draws samples (SVG: a second, ``noise`` input)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    return any(i.name == NOISE_INPUT for i in graph.input if i.name not in initializers)


def _choose_backend(model: Path, device: str) -> BackendChoice:
    """The ``auto`` choice: TensorRT, else ONNX Runtime (CUDA, else CPU), else PyTorch."""
    has_onnx = model.suffix == ".onnx" or model.with_suffix(".onnx").is_file()
    has_pt = model.suffix == ".pt" or model.with_suffix(".pt").is_file()
    if not (has_onnx or has_pt):
        raise ModelLoadError(f"{model}: not a .pt or .onnx model file")
    on_gpu = device != "cpu"
    passed_over = []
    if not has_onnx:
        passed_over.append("TensorRT and ONNX Runtime not used: there is no .onnx file for this model")
    else:
        if not on_gpu:
            passed_over.append("TensorRT not used: device is cpu")
        else:
            ok, why = tensorrt_available()
            if ok and _is_stochastic(model.with_suffix(".onnx")):
                ok, why = False, "the model is stochastic (a noise input), which the TensorRT backend does not take yet"
            if ok:
                return BackendChoice("tensorrt", device, f"auto: TensorRT, as {why}")
            passed_over.append(f"TensorRT not used: {why}")
        providers = onnxruntime_providers()
        if providers is None:
            passed_over.append("ONNX Runtime not used: onnxruntime is not installed")
        elif on_gpu and "CUDAExecutionProvider" in providers:
            return BackendChoice("onnxruntime", device, "auto: ONNX Runtime with its CUDA provider; " + "; ".join(passed_over))
        else:
            if on_gpu:
                passed_over.append(f"onnxruntime has no CUDA provider (only {', '.join(providers)}), so it runs on cpu")
            return BackendChoice("onnxruntime", "cpu", "auto: ONNX Runtime on cpu; " + "; ".join(passed_over))
    if not has_pt:
        raise ModelLoadError(f"{model}: no backend can run it here ({'; '.join(passed_over)}) and there is no .pt file for PyTorch")
    torch_device = device
    if on_gpu:
        ok, why = cuda_available()
        if not ok:
            torch_device = "cpu"
            passed_over.append(f"PyTorch on cpu: {why}")
    return BackendChoice("torch", torch_device, "auto: PyTorch eager; " + "; ".join(passed_over))


def create_predictor(
    model: str = "",
    backend: str = "auto",
    device: str = "cpu",
    horizon: int = 0,
    samples: int = 1,
    threads: int = 0,
    precision: str = "fp32",
    engine_cache_dir: str = "",
) -> tuple[Predictor, str]:
    """Load ``model`` ("" = packaged default) on ``backend``; returns (predictor, reason for the choice).

    device is cpu, cuda, cuda:N or auto (cuda where a CUDA GPU can be used, else cpu);
    horizon 0 = the model's own K; samples is the number of stochastic samples (1 for
    deterministic models); threads 0 = the backend's default intra-op thread count.
    precision and engine_cache_dir apply to TensorRT only: the engine's precision, and where
    engines are cached ("" = beside the ONNX file, or the user's cache folder if that is
    read-only).
    """
    if backend not in BACKENDS:
        raise ModelLoadError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ModelLoadError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    path = Path(model) if model else default_model_path()
    if not path.exists() and not any(path.with_suffix(s).is_file() for s in (".pt", ".onnx")):
        raise ModelLoadError(f"{path}: no such model file")
    device, device_note = resolve_device(device)
    if backend == "auto":
        choice = _choose_backend(path, device)
        backend, device, reason = choice.backend, choice.device, choice.reason
    else:
        reason = f"backend {backend!r} requested"
    if device_note:
        reason = f"{device_note}; {reason}"
    path = _resolve_file(path, backend)
    extra = {}
    if backend == "torch":
        from video_predictor.backends.torch_backend import TorchPredictor as cls
    elif backend == "onnxruntime":
        from video_predictor.backends.onnxruntime_backend import OnnxRuntimePredictor as cls
    else:
        ok, why = tensorrt_available()
        if not ok:
            raise ModelLoadError(f"{path}: backend 'tensorrt' cannot run here: {why}")
        if device == "cpu":
            raise ModelLoadError(f"{path}: backend 'tensorrt' runs on a CUDA GPU; set device to cuda or cuda:N")
        from video_predictor.backends.tensorrt_backend import TensorRTPredictor as cls

        extra = {"precision": precision, "cache_dir": Path(engine_cache_dir) if engine_cache_dir else None}
    try:
        predictor = cls(path, device=device, horizon=horizon, samples=samples, threads=threads, **extra)
    except ModelLoadError:
        raise
    except (ValueError, RuntimeError, OSError) as exc:  # EngineCacheError is a RuntimeError
        raise ModelLoadError(f"{path}: {exc}") from exc
    note = getattr(predictor, "engine_note", "")
    return predictor, f"{reason}; model {path}" + (f"; {note}" if note else "")
