"""TensorRT backend on a real NVIDIA GPU: engine from the packaged ONNX model, numbers against
ONNX Runtime for every K step, the engine cache across starts, and latency against PyTorch eager.

Skipped, with the reason, where the tensorrt package does not import or torch sees no CUDA
GPU (CI, this project's CPU machines). Run on a GPU machine with:

    .venv/bin/python -m pytest -m gpu -s test/test_tensorrt.py
"""

import json
import shutil
import time

import numpy as np
import pytest
import torch

from training.export import main as export_main
from video_predictor.backends import create_predictor, default_model_path
from video_predictor.backends.engine_cache import EngineKey, key_file_path, store_engine

try:
    import tensorrt as trt
except (ImportError, OSError) as exc:  # OSError: the wheel is installed but its CUDA libraries are not
    pytest.skip(f"the tensorrt package does not import ({exc}); TensorRT tests need it and an NVIDIA GPU",
                allow_module_level=True)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU is visible to torch (TensorRT needs one)"),
]

FP32_ATOL = 2e-3  # TF32 is off in fp32 engines; what is left is kernel summation order over K recursive steps
FP16_MAX_ATOL = 6e-2  # worst pixel; half precision over K recursive steps
FP16_MEAN_ATOL = 5e-3


@pytest.fixture
def model_dir(tmp_path):
    """The packaged default model copied out, so engines are cached in tmp_path and not in the package."""
    for suffix in (".onnx", ".pt"):
        shutil.copy(default_model_path().with_suffix(suffix), tmp_path / f"default{suffix}")
    return tmp_path


def frames_for(predictor, batch=3, seed=0):
    md = predictor.metadata
    return np.random.default_rng(seed).integers(0, 256, (batch, md.input_frames, md.height, md.width, md.channels), dtype=np.uint8)


def test_fp32_engine_matches_onnxruntime_for_every_step(model_dir):
    onnx = str(model_dir / "default.onnx")
    trt_pred, reason = create_predictor(onnx, backend="tensorrt", device="cuda", precision="fp32")
    assert trt_pred.backend_name == "tensorrt" and "built" in reason
    ort_pred, _ = create_predictor(onnx, backend="onnxruntime", device="cpu")
    frames = frames_for(trt_pred, batch=6)  # above the profile's max batch of 4: exercised in chunks
    a, b = trt_pred.predict(frames), ort_pred.predict(frames)
    assert a.frames.shape == b.frames.shape == (6, trt_pred.horizon, *a.frames.shape[2:])
    for k in range(trt_pred.horizon):
        np.testing.assert_allclose(a.frames[:, k], b.frames[:, k], atol=FP32_ATOL, err_msg=f"step {k + 1}")
        np.testing.assert_allclose(a.std[:, k], b.std[:, k], atol=FP32_ATOL, err_msg=f"std, step {k + 1}")


def test_fp16_engine_is_close_to_onnxruntime_with_fp32_io(model_dir):
    onnx = str(model_dir / "default.onnx")
    trt_pred, _ = create_predictor(onnx, backend="tensorrt", device="cuda", precision="fp16")
    assert trt_pred.engine.get_tensor_dtype("predicted_frames") == trt.float32  # I/O stays FP32
    ort_pred, _ = create_predictor(onnx, backend="onnxruntime", device="cpu")
    frames = frames_for(trt_pred)
    a, b = trt_pred.predict(frames), ort_pred.predict(frames)
    assert a.frames.dtype == np.float32
    for k in range(trt_pred.horizon):
        diff = np.abs(a.frames[:, k] - b.frames[:, k])
        assert diff.max() < FP16_MAX_ATOL and diff.mean() < FP16_MEAN_ATOL, f"step {k + 1}: max {diff.max():.3g}, mean {diff.mean():.3g}"


def test_engine_cache_is_reused_on_second_start_and_rebuilt_when_corrupt(model_dir):
    onnx = str(model_dir / "default.onnx")
    first, reason = create_predictor(onnx, backend="tensorrt", device="cuda")
    engine_path = model_dir / "default.fp32.engine"
    assert first.cache.built and engine_path.is_file() and key_file_path(engine_path).is_file()
    stamp = engine_path.stat().st_mtime_ns
    start = time.perf_counter()
    second, reason = create_predictor(onnx, backend="tensorrt", device="cuda")
    print(f"\nsecond start (engine reused) took {time.perf_counter() - start:.2f} s; first build {first.cache.build_seconds:.1f} s")
    assert not second.cache.built and "reused" in reason and engine_path.stat().st_mtime_ns == stamp
    frames = frames_for(first)
    np.testing.assert_array_equal(first.predict(frames).frames, second.predict(frames).frames)
    # garbage with a consistent key file: TensorRT itself refuses it, and the cache rebuilds
    key = EngineKey.from_dict(json.loads(key_file_path(engine_path).read_text())["key"])
    store_engine(engine_path, key, b"\0" * 1000)
    third, reason = create_predictor(onnx, backend="tensorrt", device="cuda")
    assert third.cache.built and "could not be deserialised" in third.cache.reason
    np.testing.assert_allclose(third.predict(frames).frames, first.predict(frames).frames, atol=1e-6)


def test_export_builds_the_engine_the_node_then_reuses(model_dir):
    out = model_dir / "exported.onnx"
    engine = model_dir / "exported.fp32.engine"  # the node's cache name for exported.onnx
    code = export_main(["--checkpoint", str(model_dir / "default.pt"), "--out", str(out), "--engine", str(engine)])
    assert code == 0 and engine.is_file() and key_file_path(engine).is_file()
    predictor, reason = create_predictor(str(out), backend="tensorrt", device="cuda")
    assert not predictor.cache.built, reason


def test_latency_tensorrt_fp32_fp16_against_torch_eager_on_this_gpu(model_dir):
    """Prints p50 per K-step rollout (batch 1); no timed assertion."""
    onnx = str(model_dir / "default.onnx")
    predictors = {
        "torch eager (cuda)": create_predictor(str(model_dir / "default.pt"), backend="torch", device="cuda")[0],
        "tensorrt fp32": create_predictor(onnx, backend="tensorrt", device="cuda", precision="fp32")[0],
        "tensorrt fp16": create_predictor(onnx, backend="tensorrt", device="cuda", precision="fp16")[0],
    }
    frames = frames_for(predictors["tensorrt fp32"], batch=1)
    medians = {}
    for name, predictor in predictors.items():
        for _ in range(20):
            predictor.predict(frames)
        times = []
        for _ in range(200):
            start = time.perf_counter()
            predictor.predict(frames)  # includes host->device and device->host copies, as the node sees it
            times.append((time.perf_counter() - start) * 1e3)
        medians[name] = float(np.median(times))
        print(f"\n{name:<20} p50 {medians[name]:.3f} ms  p99 {np.percentile(times, 99):.3f} ms")
    print(f"{torch.cuda.get_device_name(0)}, TensorRT {trt.__version__}: torch/trt fp32 "
          f"{medians['torch eager (cuda)'] / medians['tensorrt fp32']:.2f}x, torch/trt fp16 "
          f"{medians['torch eager (cuda)'] / medians['tensorrt fp16']:.2f}x")
    assert all(m > 0 for m in medians.values())
