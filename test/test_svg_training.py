"""SVG end to end: the svg training method, the trainer with the svg preset on SM-MNIST,
export with the noise input, and both backends drawing S samples in one call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training import train
from training.export import export_onnx
from training.methods import METHODS, SVGMethod
from training.methods.svg import SVGLossWeights
from video_predictor.backends.onnxruntime_backend import OnnxRuntimePredictor
from video_predictor.backends.torch_backend import TorchPredictor
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.model_file import load_model_file, save_model_file
from video_predictor.models import build_model

TINY = {"input_frames": 3, "channels": 1, "size": 16, "filters": 4, "g_dim": 8, "z_dim": 3, "rnn_size": 8}
# The svg-smmnist preset, shrunk: 16x16 frames, tiny nets, a handful of clips.
TINY_RUN = [
    "--config", "svg-smmnist", "--no-tensorboard",
    "--set", "model.config={input_frames: 3, channels: 1, size: 16, filters: 4, g_dim: 8, z_dim: 3, rnn_size: 8}",
    "--set", "data.height=16", "--set", "data.width=16", "--set", "data.input_frames=3", "--set", "data.rollout=3",
    "--set", "export_horizon=3", "--set", "data.synthetic_clips=8", "--set", "data.val_clips=2",
    "--set", "data.synthetic={digits: 1, digit_size: 8}", "--set", "optim.batch_size=4", "--set", "optim.threads=1",
]


def moving_square_clips(count: int, frames: int, size: int = 16) -> torch.Tensor:
    clips = np.zeros((count, frames, size, size, 1), np.uint8)
    for i in range(count):
        for t in range(frames):
            c = (i + t) % (size - 4)
            clips[i, t, 4:8, c : c + 4] = 255
    return torch.from_numpy(clips)


def test_registered_and_refuses_a_deterministic_family():
    assert METHODS["svg"] is SVGMethod
    with pytest.raises(ValueError, match="svg family"):
        SVGMethod(build_model("unet", {"features": [4, 8]}), 3, 2, 1e-3, SVGLossWeights())
    with pytest.raises(ValueError, match="unknown loss weights"):
        SVGLossWeights.from_dict({"beta": 1e-4, "lp": 1.0})


def test_loss_is_reconstruction_plus_beta_kl_and_training_lowers_it():
    torch.manual_seed(0)
    method = SVGMethod(build_model("svg", TINY), 3, 3, 5e-3, SVGLossWeights(beta=0.5))
    batch = moving_square_clips(4, 6)
    torch.manual_seed(1)
    terms = method.losses(batch)
    assert terms["kl"] >= 0 and terms["mse"] > 0
    torch.testing.assert_close(terms["loss"], terms["mse"] + 0.5 * terms["kl"])
    first = [method.train_step(batch)["loss"] for _ in range(3)]
    for _ in range(15):
        last = method.train_step(batch)["loss"]
    assert last < 0.5 * np.mean(first)
    with pytest.raises(ValueError, match="too short"):
        method.losses(batch[:, :5])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The trainer's CLI, svg preset on SM-MNIST, 2 steps: a model file and its ONNX export."""
    out = tmp_path_factory.mktemp("svg")
    assert train.main(["--steps", "2", "--out", str(out), *TINY_RUN]) == 0
    return out


def test_trainer_cli_trains_the_svg_preset_on_smmnist(trained):
    metadata, state_dict, _ = load_model_file(trained / "model.pt")
    assert metadata.family == "svg" and metadata.channels == 1 and metadata.horizon == 3
    _, _, checkpoint = load_model_file(trained / "checkpoints" / "last.pt")
    assert checkpoint["step"] == 2 and checkpoint["config"]["optim"]["method"] == "svg"
    assert any(k.startswith("prior.") for k in state_dict)


def test_export_round_trip_agrees_with_torch_given_the_same_noise(trained):
    onnx_path = trained / "model.onnx"
    metadata, diff = export_onnx(trained / "model.pt", onnx_path)
    assert diff < 1e-3 and metadata.uncertainty == "samples" and metadata.stochastic
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16, 1)).astype(np.uint8)
    by_torch = TorchPredictor(trained / "model.pt", samples=5, seed=7)
    by_ort = OnnxRuntimePredictor(onnx_path, samples=5, seed=7)
    for predictor in (by_torch, by_ort):
        assert predictor.metadata.uncertainty == "samples" and predictor.metadata.stochastic
    a, b = by_torch.predict(frames), by_ort.predict(frames)
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-4)
    np.testing.assert_allclose(a.std, b.std, atol=1e-4)
    by_torch.publish = by_ort.publish = "sample"
    a, b = by_torch.predict(frames), by_ort.predict(frames)
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_backend_predicts_mean_and_std_of_s_samples(trained, backend):
    if backend == "onnxruntime" and not (trained / "model.onnx").is_file():
        export_onnx(trained / "model.pt", trained / "model.onnx")
    cls, path = {"torch": (TorchPredictor, "model.pt"), "onnxruntime": (OnnxRuntimePredictor, "model.onnx")}[backend]
    predictor = cls(trained / path, samples=4, seed=0)
    frames = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 1)).astype(np.uint8)
    mean = predictor.predict(frames)
    assert mean.frames.shape == (1, 3, 16, 16, 1) and mean.std.shape == (1, 3, 16, 16)
    assert mean.std.max() > 0 and (mean.std >= 0).all()
    predictor.samples, predictor.publish = 1, "mean"
    single = predictor.predict(frames)
    assert (single.std == 0).all()  # one sample: no spread
    predictor.samples, predictor.publish, predictor.rng = 4, "sample", np.random.default_rng(0)
    sample = predictor.predict(frames)
    assert sample.frames.shape == mean.frames.shape and not np.allclose(sample.frames, mean.frames)
    np.testing.assert_allclose(sample.std, mean.std, atol=1e-6)  # same noise, same spread
    predictor.samples = 0
    with pytest.raises(ValueError, match="samples"):
        predictor.predict(frames)


def test_a_model_file_with_the_old_uncertainty_kind_is_read_as_sampled(tmp_path):
    model = build_model("svg", TINY)
    metadata = ModelMetadata(family="svg", input_frames=3, horizon=2, height=16, width=16, channels=1,
                             frame_period=0.1, uncertainty="heteroscedastic", model_config=model.config.to_dict())
    save_model_file(tmp_path / "m.pt", metadata, model.state_dict())
    predictor = TorchPredictor(tmp_path / "m.pt", samples=2)
    assert predictor.metadata.uncertainty == "samples" and predictor.metadata.stochastic
    with pytest.raises(ValueError, match="publish"):
        TorchPredictor(tmp_path / "m.pt", publish="median")


def test_deterministic_baseline_trains_exports_and_says_it_has_no_uncertainty(tmp_path):
    out = tmp_path / "det"
    assert train.main(["--steps", "2", "--out", str(out), *TINY_RUN, "--set", "model.config.prior=none"]) == 0
    metadata, state_dict, _ = load_model_file(out / "model.pt")
    assert metadata.uncertainty == "none" and not any(k.startswith(("prior.", "posterior.")) for k in state_dict)
    exported, diff = export_onnx(out / "model.pt", out / "model.onnx")
    assert diff < 1e-3 and exported.uncertainty == "none"
    frames = np.random.default_rng(2).integers(0, 256, (3, 16, 16, 1)).astype(np.uint8)
    results = []
    for predictor in (TorchPredictor(out / "model.pt", samples=4, seed=0), OnnxRuntimePredictor(out / "model.onnx", samples=4, seed=0)):
        assert predictor.metadata.uncertainty == "none"
        result = predictor.predict(frames)
        assert np.abs(result.std).max() < 1e-5  # every sample is the same future
        results.append(result.frames)
    np.testing.assert_allclose(results[0], results[1], atol=1e-4)


def test_scale_head_is_trained_by_its_nll_and_its_std_reaches_both_backends(tmp_path):
    model = build_model("svg", {**TINY, "heteroscedastic": True})
    method = SVGMethod(model, 3, 2, 2e-3, SVGLossWeights(beta=1e-4, nll=0.5))
    clips = moving_square_clips(4, 5)
    terms = method.losses(clips)
    assert set(terms) == {"loss", "mse", "kl", "nll"}
    torch.testing.assert_close(terms["loss"], terms["mse"] + 1e-4 * terms["kl"] + 0.5 * terms["nll"])
    before = method.losses(clips)["nll"].item()
    for _ in range(30):
        method.train_step(clips)
    assert method.losses(clips)["nll"].item() < before  # the head learns the error's size
    out = tmp_path / "het"
    assert train.main(["--steps", "2", "--out", str(out), *TINY_RUN, "--set", "model.config.heteroscedastic=true"]) == 0
    exported, diff = export_onnx(out / "model.pt", out / "model.onnx")
    assert diff < 1e-3 and exported.uncertainty == "samples+heteroscedastic"
    frames = np.random.default_rng(3).integers(0, 256, (3, 16, 16, 1)).astype(np.uint8)
    by_torch = TorchPredictor(out / "model.pt", samples=1, seed=1)
    by_ort = OnnxRuntimePredictor(out / "model.onnx", samples=1, seed=1)
    a, b = by_torch.predict(frames), by_ort.predict(frames)
    assert by_ort.metadata.uncertainty == "samples+heteroscedastic"
    assert (a.std > 0).all()  # one sample, and still a std: the head's
    np.testing.assert_allclose(a.std, b.std, atol=1e-4)
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-4)
