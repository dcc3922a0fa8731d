"""ONNX export: one graph for the whole rollout, metadata inside, same numbers as PyTorch."""

import numpy as np
import pytest
import torch

from training.export import export_onnx
from training.export import main as export_main
from video_predictor.backends import create_predictor
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.model_file import save_model_file
from video_predictor.models import build_model

onnx = pytest.importorskip("onnx")


# A small config of every model family: each must export and run on every backend alike.
FAMILY_CONFIGS = {
    "multiscale": {
        "input_frames": 3,
        "scales": [{"features": [8], "kernels": [3, 3]}] * 2 + [{"features": [4], "kernels": [3, 3]}] * 2,
    },
    "convlstm": {"input_frames": 3, "stem": [4, 8], "hidden": [8, 8]},
    "unet": {"input_frames": 3, "features": [4, 8, 16], "width_multiplier": 1.0},
}


@pytest.fixture(params=sorted(FAMILY_CONFIGS))
def trained_like_checkpoint(tmp_path, request):
    """A small model with random (non-identity) weights, so the comparison means something."""
    torch.manual_seed(0)
    family = request.param
    model = build_model(family, FAMILY_CONFIGS[family])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    metadata = ModelMetadata(family=family, input_frames=3, horizon=4, height=32, width=32, channels=3,
                             frame_period=0.1, model_config=model.config.to_dict())
    path = tmp_path / "model.pt"
    save_model_file(path, metadata, model.state_dict())
    return path


def test_onnx_carries_metadata_and_matches_torch_for_every_step(trained_like_checkpoint, tmp_path):
    out = tmp_path / "model.onnx"
    metadata, diff = export_onnx(trained_like_checkpoint, out)
    assert diff < 1e-3
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props}
    assert ModelMetadata.from_onnx_props(props) == metadata
    # one graph: outputs carry all K steps
    shapes = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert shapes["predicted_frames"][:2] == ["batch", 4] and shapes["predicted_frames"][-1] == 3
    assert shapes["uncertainty"][:2] == ["batch", 4] and len(shapes["uncertainty"]) == 4

    frames = np.random.default_rng(1).integers(0, 256, (3, 3, 32, 32, 3), dtype=np.uint8)
    torch_pred, _ = create_predictor(str(trained_like_checkpoint), backend="torch")
    ort_pred, reason = create_predictor(str(out), backend="auto")
    assert ort_pred.backend_name == "onnxruntime", reason
    a, b = torch_pred.predict(frames), ort_pred.predict(frames)
    assert a.frames.shape == (3, 4, 32, 32, 3)
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-4)
    np.testing.assert_allclose(a.std, b.std, atol=1e-5)
    assert np.abs(a.frames[:, 0] - frames[:, -1] / 255).max() > 1e-3  # really not the identity


def test_export_horizon_override_and_engine_without_gpu(trained_like_checkpoint, tmp_path):
    out = tmp_path / "k2.onnx"
    code = export_main(["--checkpoint", str(trained_like_checkpoint), "--out", str(out), "--horizon", "2", "--engine", str(tmp_path / "m.engine")])
    assert out.is_file()  # ONNX is written even when the engine cannot be
    predictor, _ = create_predictor(str(out), backend="onnxruntime")
    assert predictor.horizon == 2
    if not torch.cuda.is_available():
        assert code == 2 and not (tmp_path / "m.engine").exists()
