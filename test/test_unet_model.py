"""The U-Net family: shapes, paper-size widths, recursion, uncertainty, training by the
generator and adversarial methods, and the trainer CLI."""

import numpy as np
import pytest
import torch

from training import train
from training.data.synthetic import SyntheticConfig, SyntheticVideoDataset
from training.discriminator import DiscriminatorConfig, MultiScaleDiscriminator
from training.methods.adversarial import AdversarialLossWeights, AdversarialMethod
from training.methods.generator import GeneratorLossWeights, GeneratorMethod
from video_predictor.backends import create_predictor
from video_predictor.core.model_file import load_model_file
from video_predictor.models import build_model
from video_predictor.models.unet import UNetConfig, UNetPredictor

TINY = {"input_frames": 3, "features": [4, 8, 8], "width_multiplier": 1.0}


def frames(batch=2, n=3, h=16, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, 3, h, w, generator=g) * 2 - 1


def perturbed(config: dict, seed: int = 0) -> UNetPredictor:
    torch.manual_seed(seed)
    model = UNetPredictor(UNetConfig(**config))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def clips(n=4, length=4, seed=5):
    config = SyntheticConfig(height=32, width=32, clip_length=length, static_camera_probability=0.0, camera_speed_median=1.0, photo_probability=0.0)
    return torch.stack([SyntheticVideoDataset(n, config, seed=seed)[i] for i in range(n)])


def test_one_step_shapes_and_range():
    model = perturbed(TINY)
    step = model(frames())
    assert len(step.predictions) == 1 and step.predictions[0].shape == (2, 3, 16, 24)
    assert step.predictions[0].abs().max() <= 1.0
    assert step.log_scale.shape == (2, 1, 16, 24) and step.change.item() > 0


def test_feature_maps_are_the_papers_at_width_one_and_scale_with_the_multiplier():
    def level_widths(model):
        return [level[0].out_channels for level in model.down]

    assert level_widths(UNetPredictor(UNetConfig(width_multiplier=1.0))) == [32, 64, 128, 256, 512]
    assert level_widths(UNetPredictor(UNetConfig())) == [8, 16, 32, 64, 128]  # the CPU default
    assert UNetConfig().divisor == 16


def test_untrained_residual_model_copies_the_last_frame():
    model = UNetPredictor(UNetConfig(**TINY))
    x = frames()
    predicted, std = model.rollout(x, horizon=5)
    assert predicted.shape == (2, 5, 3, 16, 24) and std.shape == (2, 5, 16, 24)
    torch.testing.assert_close(predicted, x[:, -1:].expand_as(predicted), atol=1e-6, rtol=0)
    assert (std > 0).all() and (std <= 1).all()


def test_rollout_feeds_predictions_back_recursively():
    model = perturbed({**TINY, "residual": False})
    x = frames()
    with torch.no_grad():
        rolled, _ = model.rollout(x, horizon=3)
        first = model(x).predictions[0]
        second = model(torch.cat([x[:, 1:], first.unsqueeze(1)], 1)).predictions[0]
        third = model(torch.cat([x[:, 2:], first.unsqueeze(1), second.unsqueeze(1)], 1)).predictions[0]
    torch.testing.assert_close(rolled[:, 0], first)
    torch.testing.assert_close(rolled[:, 1], second)
    torch.testing.assert_close(rolled[:, 2], third)


def test_std_is_the_laplace_std_of_the_head_in_unit_intensity_range():
    model = perturbed(TINY)
    with torch.no_grad():
        model.head.weight[-1].zero_()
        model.head.bias[-1].fill_(float(np.log(0.1)))  # b = 0.1 in [-1, 1] units = 0.05 in [0, 1]
        _, std = model.rollout(frames(), 2)
    torch.testing.assert_close(std, torch.full_like(std, 0.05 * np.sqrt(2)))  # Laplace std = sqrt(2) b
    _, none = UNetPredictor(UNetConfig(**TINY, heteroscedastic=False)).rollout(frames(), 2)
    assert none.shape == (2, 2, 16, 24) and (none == 0).all()


def test_bad_inputs_and_configs_are_rejected():
    model = UNetPredictor(UNetConfig(**TINY))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(frames(h=18))
    with pytest.raises(ValueError, match="expected 3 frames"):
        model(frames(n=2))
    with pytest.raises(ValueError, match="unknown keys scales"):
        build_model("unet", {"scales": []})
    with pytest.raises(ValueError, match="positive width"):
        UNetConfig(features=[])
    config = UNetConfig(**{**TINY, "residual": False})
    assert build_model("unet", config.to_dict()).config == config


def test_generator_training_steps_decrease_the_loss():
    torch.manual_seed(0)
    model = UNetPredictor(UNetConfig(input_frames=2, features=[8, 16, 16], width_multiplier=1.0))
    method = GeneratorMethod(model, input_frames=2, rollout=2, lr=5e-3, weights=GeneratorLossWeights(p=2, gdl=0.1, nll=0.0))
    batch = clips()
    losses = [method.train_step(batch)["loss"] for _ in range(15)]
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3])


def test_adversarial_method_trains_it_with_a_downsampled_pyramid():
    torch.manual_seed(0)
    model = UNetPredictor(UNetConfig(input_frames=2, features=[4, 8], width_multiplier=1.0))
    tiny_d = {"scales": [{"features": [4], "kernels": [3], "fully_connected": [8]}] * 4}
    d = MultiScaleDiscriminator(DiscriminatorConfig(input_frames=2, height=32, width=32, **tiny_d))
    method = AdversarialMethod(model, d, 2, 1, 1e-3, 0.02, AdversarialLossWeights())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = method.train_step(clips(n=2, length=3))
    assert np.isfinite(losses["loss"]) and losses["adv"] > 0 and losses["d_loss"] > 0
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("selection", [["--config", "unet"], ["--set", "model.family=unet"]])
def test_trainer_cli_trains_checkpoints_resumes_and_the_node_backend_loads_it(tmp_path, selection):
    """Selected by its preset, or by the family flag on the default preset."""
    common = [
        *selection, "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--no-tensorboard",
        "--set", "model.config={input_frames: 2, features: [4, 8], width_multiplier: 1.0}", "--set", "data.input_frames=2",
        "--set", "data.height=32", "--set", "data.width=32", "--set", "data.synthetic_clips=8", "--set", "data.val_clips=2",
        "--set", "data.synthetic={photo_probability: 0.0}", "--set", "optim.batch_size=2", "--set", "optim.checkpoint_every=2",
        "--set", "optim.val_every=100", "--set", "optim.threads=1", "--set", "export_horizon=3",
    ]
    assert train.main(["--steps", "2", *common]) == 0
    metadata, state, _ = load_model_file(tmp_path / "run" / "model.pt")
    assert (metadata.family, metadata.input_frames, metadata.horizon, metadata.uncertainty) == ("unet", 2, 3, "heteroscedastic")
    assert train.main(["--steps", "3", "--resume", *common]) == 0
    _, _, resumed = load_model_file(tmp_path / "run" / "checkpoints" / "last.pt")
    assert resumed["step"] == 3
    assert any(not torch.equal(state[k], resumed["state_dict"][k]) for k in state)
    predictor, _ = create_predictor(str(tmp_path / "run" / "model.pt"), backend="torch")
    prediction = predictor.predict(np.zeros((1, 2, 32, 32, 3), np.uint8))
    assert prediction.frames.shape == (1, 3, 32, 32, 3) and prediction.std.shape == (1, 3, 32, 32)
