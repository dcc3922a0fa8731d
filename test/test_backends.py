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
    assert md.frame_period > 0 and md.horizon >= 1
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
