"""Backend choice and model-file faults: clear errors naming the file, never a crash later."""

import numpy as np
import pytest

from video_predictor.backends import ModelLoadError, create_predictor, default_model_path


def test_packaged_default_model_loads_on_both_cpu_backends_and_they_agree():
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 64, 64, 3), dtype=np.uint8)
    ort, reason = create_predictor("", backend="auto")
    assert ort.backend_name == "onnxruntime" and "auto" in reason
    torch_pred, _ = create_predictor("", backend="torch")
    md = ort.metadata
    assert (md.input_frames, md.height, md.width, md.channels) == (4, 64, 64, 3)
    assert (md.rate_agnostic or md.frame_period > 0) and md.horizon >= 1
    a, b = ort.predict(frames), torch_pred.predict(frames)
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-4)
    assert a.frames.shape == (2, md.horizon, 64, 64, 3) and (a.std >= 0).all()


def test_default_model_files_exist():
    assert default_model_path().is_file()
    assert default_model_path().with_suffix(".pt").is_file()


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated"])
def test_broken_model_files_are_reported_with_their_name(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match="broken.pt") as error:
        create_predictor(str(path), backend="torch")
    message = str(error.value)
    assert message.count(str(path)) == 1  # named once, not once per layer
    assert "weights_only" not in message  # never advise an unsafe reload
    onnx_path = tmp_path / "broken.onnx"
    onnx_path.write_bytes(content)
    with pytest.raises(ModelLoadError, match="broken.onnx"):
        create_predictor(str(onnx_path), backend="onnxruntime")


def test_foreign_checkpoint_is_refused_without_unpickling_code(tmp_path):
    import torch

    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ModelLoadError, match="not a video_predictor model file"):
        create_predictor(str(path), backend="torch")


def test_missing_file_unknown_backend_and_tensorrt_without_gpu(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file"):
        create_predictor(str(tmp_path / "nope.onnx"))
    with pytest.raises(ModelLoadError, match="unknown backend"):
        create_predictor("", backend="magic")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(ModelLoadError, match="tensorrt"):
            create_predictor("", backend="tensorrt")


def test_wrong_input_shape_is_a_value_error():
    predictor, _ = create_predictor("", backend="onnxruntime")
    with pytest.raises(ValueError, match="expected frames of shape"):
        predictor.predict(np.zeros((1, 3, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(np.zeros((1, 4, 64, 64, 3), np.float32))


# --- backend: auto, the choice logic (availability monkeypatched; nothing here runs on a GPU) ---

def _fake_availability(monkeypatch, tensorrt=False, providers=("CPUExecutionProvider",), cuda=False):
    import video_predictor.backends as backends

    monkeypatch.setattr(backends, "tensorrt_available",
                        lambda: (True, "TensorRT 10.3 and a GPU are present") if tensorrt else (False, "the tensorrt package is not installed"))
    monkeypatch.setattr(backends, "onnxruntime_providers", lambda: None if providers is None else list(providers))
    monkeypatch.setattr(backends, "cuda_available", lambda: (True, "a GPU") if cuda else (False, "no CUDA GPU is visible to torch"))
    return backends._choose_backend


@pytest.fixture
def both_files(tmp_path):
    for suffix in (".onnx", ".pt"):
        (tmp_path / f"m{suffix}").write_bytes(b"")
    return tmp_path / "m.onnx"


def test_auto_prefers_tensorrt_on_a_gpu_device_only(monkeypatch, both_files):
    choose = _fake_availability(monkeypatch, tensorrt=True, providers=("CUDAExecutionProvider", "CPUExecutionProvider"), cuda=True)
    choice = choose(both_files, "cuda:0")
    assert (choice.backend, choice.device) == ("tensorrt", "cuda:0") and "TensorRT 10.3" in choice.reason
    choice = choose(both_files, "cpu")  # the user asked for the CPU: no GPU backend, even where one could run
    assert (choice.backend, choice.device) == ("onnxruntime", "cpu") and "device is cpu" in choice.reason


def test_auto_uses_onnxruntime_cuda_provider_when_tensorrt_cannot_run(monkeypatch, both_files):
    choose = _fake_availability(monkeypatch, tensorrt=False, providers=("CUDAExecutionProvider", "CPUExecutionProvider"), cuda=True)
    choice = choose(both_files, "cuda")
    assert (choice.backend, choice.device) == ("onnxruntime", "cuda")
    assert "CUDA provider" in choice.reason and "tensorrt package is not installed" in choice.reason


def test_auto_falls_back_to_onnxruntime_cpu_without_a_cuda_provider(monkeypatch, both_files):
    choose = _fake_availability(monkeypatch, tensorrt=False, providers=("CPUExecutionProvider",))
    choice = choose(both_files, "cuda")
    assert (choice.backend, choice.device) == ("onnxruntime", "cpu")
    assert "no CUDA provider" in choice.reason and "TensorRT not used" in choice.reason


def test_auto_falls_back_to_torch_without_onnxruntime_or_onnx_file(monkeypatch, both_files, tmp_path):
    choose = _fake_availability(monkeypatch, tensorrt=True, providers=None, cuda=True)
    choice = choose(both_files, "cpu")
    assert (choice.backend, choice.device) == ("torch", "cpu") and "onnxruntime is not installed" in choice.reason
    only_pt = tmp_path / "solo.pt"
    only_pt.write_bytes(b"")
    choice = choose(only_pt, "cuda")  # TensorRT could run, but it needs an ONNX file
    assert (choice.backend, choice.device) == ("torch", "cuda") and "no .onnx file" in choice.reason
    _fake_availability(monkeypatch, cuda=False)
    choice = choose(only_pt, "cuda")
    assert (choice.backend, choice.device) == ("torch", "cpu") and "no CUDA GPU" in choice.reason


def test_auto_with_onnx_only_and_no_runtime_is_a_clear_error(monkeypatch, tmp_path):
    choose = _fake_availability(monkeypatch, tensorrt=False, providers=None)
    only_onnx = tmp_path / "solo.onnx"
    only_onnx.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="no backend can run it here.*onnxruntime is not installed"):
        choose(only_onnx, "cpu")


def test_auto_on_cuda_without_gpu_really_runs_onnxruntime_on_cpu():
    """Real availability (this test does not pretend): asking for cuda where there is none still works."""
    import video_predictor.backends as backends

    if backends.tensorrt_available()[0] or "CUDAExecutionProvider" in (backends.onnxruntime_providers() or []):
        pytest.skip("this machine has a GPU path; the fallback is covered by the monkeypatched tests")
    predictor, reason = create_predictor("", backend="auto", device="cuda")
    assert predictor.backend_name == "onnxruntime" and "on cpu" in reason
    assert predictor.session.get_providers() == ["CPUExecutionProvider"]


def test_tensorrt_backend_errors_name_the_reason(monkeypatch):
    import video_predictor.backends as backends

    monkeypatch.setattr(backends, "tensorrt_available", lambda: (False, "no CUDA GPU is visible to torch"))
    with pytest.raises(ModelLoadError, match="cannot run here: no CUDA GPU"):
        create_predictor("", backend="tensorrt", device="cuda")
    monkeypatch.setattr(backends, "tensorrt_available", lambda: (True, "pretend"))  # refused before anything runs
    with pytest.raises(ModelLoadError, match="runs on a CUDA GPU; set device to cuda"):
        create_predictor("", backend="tensorrt", device="cpu")
    with pytest.raises(ModelLoadError, match="unknown precision"):
        create_predictor("", backend="onnxruntime", precision="int8")


def test_auto_does_not_give_tensorrt_a_stochastic_graph(monkeypatch, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in ("frames", "noise")]
    output = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Add", ["frames", "noise"], ["out"])], "g", inputs, [output])
    onnx.save(helper.make_model(graph), tmp_path / "svg.onnx")
    choose = _fake_availability(monkeypatch, tensorrt=True, providers=("CUDAExecutionProvider", "CPUExecutionProvider"), cuda=True)
    choice = choose(tmp_path / "svg.onnx", "cuda")
    assert (choice.backend, choice.device) == ("onnxruntime", "cuda") and "stochastic" in choice.reason


def test_onnxruntime_batch_one_session_agrees_with_the_dynamic_batch_one():
    import itertools

    from video_predictor.backends import default_model_path
    from video_predictor.backends.onnxruntime_backend import OnnxRuntimePredictor
    from video_predictor.core.preprocess import fit_to_model
    from video_predictor.io.video import carphone_clip, video_frames

    predictor = OnnxRuntimePredictor(default_model_path().with_suffix(".onnx"))
    assert predictor._session_one is not None  # the node's one-sequence calls take the fixed-batch graph
    frames = np.stack([fit_to_model(f.image, 64, 64) for f in itertools.islice(video_frames(carphone_clip()), 30, 38)])
    sequences = np.stack([frames[:4], frames[4:]])
    both = predictor.predict(sequences)
    for i in range(2):
        one = predictor.predict(sequences[i : i + 1])
        np.testing.assert_allclose(one.frames[0], both.frames[i], atol=1e-5)
        np.testing.assert_allclose(one.std[0], both.std[i], atol=1e-5)


def test_device_auto_is_cuda_only_where_a_gpu_can_be_used(monkeypatch):
    import video_predictor.backends as backends

    assert backends.resolve_device("cuda:1") == ("cuda:1", "")
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(backends, "onnxruntime_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(backends, "Path", lambda p: type("Missing", (), {"exists": lambda self: False})())

    def no_probe():
        raise AssertionError("torch must not be imported to probe a GPU where no GPU stack is installed")

    monkeypatch.setattr(backends, "cuda_available", no_probe)
    device, why = backends.resolve_device("auto")
    assert device == "cpu" and "no NVIDIA driver" in why
    monkeypatch.setattr(backends, "onnxruntime_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(backends, "cuda_available", lambda: (True, "CUDA GPU H100"))
    assert backends.resolve_device("auto") == ("cuda", "device auto: cuda (CUDA GPU H100)")
    monkeypatch.setattr(backends, "cuda_available", lambda: (False, "no CUDA GPU is visible to torch"))
    assert backends.resolve_device("auto") == ("cpu", "device auto: cpu (no CUDA GPU is visible to torch)")


def test_device_auto_on_this_machine_is_reported_in_the_reason():
    """Real availability: the packaged model loads with device auto, and the reason says what auto chose."""
    import video_predictor.backends as backends

    predictor, reason = create_predictor("", backend="auto", device="auto")
    expected, _ = backends.resolve_device("auto")
    assert reason.startswith(f"device auto: {expected}")
    if expected == "cpu":
        assert predictor.backend_name == "onnxruntime"
