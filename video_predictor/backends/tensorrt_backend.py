"""TensorRT backend: the exported K-step rollout graph as a TensorRT engine on a CUDA GPU.

The engine is built from the ONNX file at the first start and cached (engine_cache.py);
inputs and outputs stay FP32 in both precisions, and device memory is held in torch CUDA
tensors (torch is a dependency already; no pycuda). Written against the TensorRT 10 Python
API; FP16 uses ``BuilderFlag.FP16``, which TensorRT 11 removed (a clear error there).

Not exercised on hardware in the session that wrote it: the GPU tests are
test/test_tensorrt.py (``pytest -m gpu``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path

import numpy as np

from video_predictor.backends.engine_cache import (
    CacheResult,
    EngineCacheError,
    default_engine_path,
    load_or_build,
    make_key,
)
from video_predictor.core.metadata import MetadataError, ModelMetadata
from video_predictor.core.onnx_schema import FLOW_INPUT, FRAMES_OUTPUT, UNCERTAINTY_OUTPUT
from video_predictor.core.predictor import Prediction, PredictionError, Predictor

log = logging.getLogger("video_predictor.backends.tensorrt")
OUTPUT_NAMES = (FRAMES_OUTPUT, UNCERTAINTY_OUTPUT)
DEFAULT_MAX_BATCH = 4


def _import_tensorrt():
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:  # OSError: the package is there, libnvinfer is not
        raise EngineCacheError(f"the tensorrt package does not import: {exc}") from exc
    return trt


@functools.lru_cache(maxsize=1)
def _trt_logger():
    """One logger for every builder and runtime: TensorRT expects the same one throughout."""
    trt = _import_tensorrt()

    severity = trt.ILogger.Severity
    levels = {severity.INTERNAL_ERROR: logging.CRITICAL, severity.ERROR: logging.ERROR, severity.WARNING: logging.WARNING}

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity, msg: str) -> None:  # forwards TensorRT's warnings and errors to Python logging
            level = levels.get(severity)
            if level is not None:  # info and verbose: thousands of lines during a build
                log.log(level, "TensorRT: %s", msg)

    return _Logger()


def _progress_monitor(trt, interval_s: float = 5.0):
    """A TensorRT IProgressMonitor that logs top-level build phases and, every few seconds, their step."""

    class _Progress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()  # TensorRT may call from several threads
            self._steps: dict[str, int] = {}
            self._top: set[str] = set()
            self._last = 0.0

        def phase_start(self, phase_name: str, parent_phase, num_steps: int) -> None:
            with self._lock:
                self._steps[phase_name] = num_steps
                if not parent_phase:
                    self._top.add(phase_name)
                    log.info("TensorRT build: %s (%d steps)", phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                now = time.monotonic()
                if phase_name in self._top and now - self._last >= interval_s:
                    self._last = now
                    log.info("TensorRT build: %s, step %d of %d", phase_name, step + 1, self._steps.get(phase_name, 0))
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                if phase_name in self._top:
                    self._top.discard(phase_name)
                    log.info("TensorRT build: %s done", phase_name)

    return _Progress()


def build_serialized_engine(onnx_path: Path, precision: str, max_batch: int, workspace_mb: int = 0) -> bytes:
    """ONNX file -> serialised engine bytes; dynamic batch 1..max_batch, FP32 inputs and outputs."""
    trt = _import_tensorrt()
    logger = _trt_logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineCacheError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if workspace_mb > 0:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise EngineCacheError(f"TensorRT {trt.__version__} has no FP16 builder flag (removed in TensorRT 11); use fp32")
        config.set_flag(trt.BuilderFlag.FP16)
    elif hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32: TF32 convolutions drift from ONNX Runtime
    if hasattr(config, "progress_monitor"):
        config.progress_monitor = _progress_monitor(trt)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        dims = tuple(tensor.shape)
        if any(d < 0 for d in dims[1:]):
            raise EngineCacheError(f"{onnx_path}: input {tensor.name} has dynamic dimensions {dims} beyond the batch")
        profile.set_shape(tensor.name, (1, *dims[1:]), (1, *dims[1:]), (max_batch, *dims[1:]))
    config.add_optimization_profile(profile)
    for i in range(network.num_outputs):  # a precision flag never changes the I/O types: keep them FP32
        if network.get_output(i).dtype != trt.float32:
            raise EngineCacheError(f"{onnx_path}: output {network.get_output(i).name} is not FP32")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineCacheError(f"TensorRT could not build an engine from {onnx_path} (see the TensorRT log above)")
    return bytes(serialized)


def _deserialiser(trt):
    runtime = trt.Runtime(_trt_logger())

    def deserialise(data: bytes):
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:  # TensorRT returns None and logs the reason
            raise EngineCacheError("TensorRT could not deserialise it (see the TensorRT log above)")
        return engine

    return deserialise, runtime


def _compute_capability(device) -> str:
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return f"{major}.{minor}"


def load_engine(
    onnx_path: Path,
    engine_path: Path | None = None,
    precision: str = "fp32",
    max_batch: int = DEFAULT_MAX_BATCH,
    workspace_mb: int = 0,
    device: str = "cuda",
    cache_dir: Path | None = None,
) -> tuple[CacheResult, object]:
    """The engine for ``onnx_path`` from the cache, built when missing or stale; returns (result, runtime).

    ``engine_path`` None: the cache's default place (beside the ONNX file or in ``cache_dir``).
    The runtime is returned because it must outlive the engine.
    """
    import torch

    trt = _import_tensorrt()
    torch_device = torch.device(device)
    with torch.cuda.device(torch_device):  # TensorRT builds for and loads onto the current device
        key = make_key(onnx_path, trt.__version__, _compute_capability(torch_device), precision, max_batch)
        path = engine_path or default_engine_path(onnx_path, key, cache_dir)
        deserialise, runtime = _deserialiser(trt)
        result = load_or_build(path, key, lambda: build_serialized_engine(onnx_path, precision, max_batch, workspace_mb), deserialise)
    return result, runtime


def read_onnx_metadata(path: Path) -> ModelMetadata:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for a broken file
        raise ValueError(f"onnx cannot read it: {exc}") from exc
    try:
        return ModelMetadata.from_onnx_props({p.key: p.value for p in proto.metadata_props})
    except MetadataError as exc:
        raise ValueError(str(exc)) from exc


class TensorRTPredictor(Predictor):
    backend_name = "tensorrt"

    def __init__(
        self,
        path: Path,
        device: str = "cuda",
        horizon: int = 0,
        samples: int = 1,
        threads: int = 0,
        precision: str = "fp32",
        cache_dir: Path | None = None,
        workspace_mb: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        import torch

        if not device.startswith("cuda"):
            raise ValueError(f"TensorRT runs on a CUDA GPU; set device to cuda or cuda:N (got {device!r})")
        if not torch.cuda.is_available():
            raise ValueError("TensorRT needs a CUDA GPU visible to torch, and there is none")
        metadata = read_onnx_metadata(path)
        if horizon and horizon > metadata.horizon:
            raise ValueError(f"the ONNX graph rolls out {metadata.horizon} steps; horizon {horizon} needs a new export")
        super().__init__(metadata, horizon or metadata.horizon)
        self.samples = samples
        self.precision = precision
        self.device = torch.device(device)
        self.cache, self._runtime = load_engine(Path(path), None, precision, max_batch, workspace_mb, device, cache_dir)
        self.engine = self.cache.engine
        trt = _import_tensorrt()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1 or any(o not in names for o in OUTPUT_NAMES):
            raise ValueError(f"engine tensors {names} are not the exported rollout (one input; outputs {OUTPUT_NAMES})")
        for name in names:
            if self.engine.get_tensor_dtype(name) != trt.float32:
                raise ValueError(f"engine tensor {name} is {self.engine.get_tensor_dtype(name)}, expected FP32")
        self._input = inputs[0]
        self.max_batch = int(self.engine.get_tensor_profile_shape(self._input, 0)[2][0])
        with torch.cuda.device(self.device):
            self.context = self.engine.create_execution_context()
            self.stream = torch.cuda.Stream(self.device)
        self.engine_note = (f"engine {self.cache.path} " + (f"built in {self.cache.build_seconds:.0f} s ({self.cache.reason})"
                                                              if self.cache.built else "reused from the cache"))
        self.warm_up()  # CUDA context, kernels and allocations now, not on the first camera frame

    def _run(self, frames: np.ndarray, flow: np.ndarray | None) -> Prediction:
        chunks = [self._run_batch(frames[i:i + self.max_batch], None if flow is None else flow[i:i + self.max_batch])
                  for i in range(0, len(frames), self.max_batch)]
        predicted = np.concatenate([c[0] for c in chunks])
        std = np.concatenate([c[1] for c in chunks])
        return Prediction(predicted[:, : self.horizon], std[:, : self.horizon])

    def _run_batch(self, frames: np.ndarray, flow: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            # uint8 over the bus, converted on the GPU; the graph takes 0..255 as FP32
            x = torch.from_numpy(frames).to(self.device).to(torch.float32)
            if not self.context.set_input_shape(self._input, tuple(x.shape)):
                raise PredictionError(f"TensorRT rejects input shape {tuple(x.shape)}")
            self.context.set_tensor_address(self._input, x.data_ptr())
            if flow is not None:
                f = torch.from_numpy(np.ascontiguousarray(flow)).to(self.device)
                if not self.context.set_input_shape(FLOW_INPUT, tuple(f.shape)):
                    raise PredictionError(f"TensorRT rejects flow shape {tuple(f.shape)}")
                self.context.set_tensor_address(FLOW_INPUT, f.data_ptr())
            outputs = {}
            for name in OUTPUT_NAMES:
                outputs[name] = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=torch.float32, device=self.device)
                self.context.set_tensor_address(name, outputs[name].data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise PredictionError("TensorRT execution failed (see the TensorRT log)")
            result = tuple(outputs[name].cpu().numpy() for name in OUTPUT_NAMES)  # .cpu() waits for the stream
        return result
