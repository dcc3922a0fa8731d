"""The multi-scale discriminator and the adversarial training method."""

import pytest
import torch

from training import train
from training.config import build_config
from training.data.synthetic import SyntheticConfig, SyntheticVideoDataset
from training.discriminator import DiscriminatorConfig, MultiScaleDiscriminator
from training.methods import METHODS
from training.methods.adversarial import AdversarialLossWeights, AdversarialMethod
from video_predictor.core.model_file import load_model_file
from video_predictor.models import build_model

TINY_MODEL = {
    "input_frames": 2,
    "scales": [{"features": [4], "kernels": [3, 3]}] * 4,
}
TINY_FLOW_MODEL = {"input_frames": 2, "consistency_frames": 1, "scales": [{"features": [4], "kernels": [3, 3]}] * 2}  # the default preset's family
TINY_D = {"scales": [{"features": [8], "kernels": [3], "fully_connected": [16]}] * 4}


def tiny_method(weights: AdversarialLossWeights, d_lr: float = 0.02) -> AdversarialMethod:
    torch.manual_seed(0)
    model = build_model("multiscale", TINY_MODEL)
    d = MultiScaleDiscriminator(DiscriminatorConfig(input_frames=2, height=32, width=32, **TINY_D))
    return AdversarialMethod(model, d, input_frames=2, rollout=2, lr=1e-3, d_lr=d_lr, weights=weights)


def clips(n: int = 4, seed: int = 1) -> torch.Tensor:
    config = SyntheticConfig(height=32, width=32, clip_length=4, static_camera_probability=0.0)
    return torch.stack([SyntheticVideoDataset(n, config, seed=seed)[i] for i in range(n)])


def test_discriminator_gives_one_logit_per_scale_and_checks_its_input_size():
    d = MultiScaleDiscriminator(DiscriminatorConfig(input_frames=4, height=32, width=32))
    window = torch.zeros(3, 4, 3, 32, 32)
    nxt = [torch.zeros(3, 3, s, s) for s in (4, 8, 16, 32)]
    logits = d(window, nxt)
    assert [z.shape for z in logits] == [torch.Size([3])] * 4
    with pytest.raises(ValueError, match="32x32"):
        d(torch.zeros(1, 4, 3, 64, 64), [torch.zeros(1, 3, s, s) for s in (8, 16, 32, 64)])


def test_paper_discriminator_has_the_papers_layers():
    d = MultiScaleDiscriminator(DiscriminatorConfig())
    finest = d.scales[-1]
    convs = [m for m in finest.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 256, 512, 128]
    assert [c.kernel_size[0] for c in convs] == [7, 7, 5, 5]
    linears = [m for m in finest.fully_connected if isinstance(m, torch.nn.Linear)]
    assert [lin.out_features for lin in linears] == [1024, 512, 1]


def test_configured_weights_are_the_ones_in_the_combined_loss():
    """One public port of the paper built the combined loss from default weights instead of
    the configured ones; here the total must follow the configured λs exactly."""
    batch = clips()
    configured = AdversarialLossWeights(lp=0.3, gdl=0.7, adv=0.5, nll=0.0, sparsity=0.0, smoothness=0.0)
    method = tiny_method(configured)
    with torch.no_grad():
        total, terms = method.generator_objective(batch)
        expected = 0.3 * terms["lp"] + 0.7 * terms["gdl"] + 0.5 * terms["adv"]
        assert total.item() == pytest.approx(expected.item(), rel=1e-6)
        assert terms["adv"].item() > 0 and terms["lp"].item() > 0
        defaults = AdversarialLossWeights()
        default_total = sum(getattr(defaults, k) * v for k, v in terms.items())
        assert total.item() != pytest.approx(default_total.item(), rel=1e-3)


def test_weights_come_from_the_config_file_values():
    config = build_config("cpu-small", ["optim.method=adversarial", "optim.loss={lp: 1.0, p: 2, gdl: 1.0, adv: 0.05}", "optim.d_lr=0.02", "data.patch=32"])
    method = METHODS["adversarial"].from_config(build_model(config.model.family, config.model.config), config)
    assert (method.weights.adv, method.weights.lp, method.weights.gdl, method.weights.p) == (0.05, 1.0, 1.0, 2)
    assert method.d_optimizer.param_groups[0]["lr"] == 0.02
    assert isinstance(method.d_optimizer, torch.optim.SGD)
    assert (method.discriminator.config.height, method.discriminator.config.width) == (32, 32)
    with pytest.raises(ValueError, match="unknown loss weights"):
        METHODS["adversarial"].from_config(method.model, build_config("cpu-small", ["optim.loss={adverserial: 0.05}"]))


def test_discriminator_learns_to_tell_real_from_predicted():
    method = tiny_method(AdversarialLossWeights())
    batch = clips(8)
    with torch.no_grad():
        _, steps = method.rollout_terms(batch)  # G held fixed: only D learns here
    before = method.discriminator_loss(batch, steps).item()
    optimizer = torch.optim.Adam(method.discriminator.parameters(), lr=3e-3)  # faster than the paper's SGD for a short test
    for _ in range(100):
        loss = method.discriminator_loss(batch, steps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert method.discriminator_loss(batch, steps).item() < 0.8 * before


def test_a_training_step_updates_both_networks_and_reports_every_term():
    method = tiny_method(AdversarialLossWeights())
    g_before = [p.detach().clone() for p in method.model.parameters()]
    d_before = [p.detach().clone() for p in method.discriminator.parameters()]
    losses = method.train_step(clips())
    assert {"loss", "d_loss", "adv", "lp", "gdl"} <= set(losses)
    assert any(not torch.equal(a, b) for a, b in zip(g_before, method.model.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, method.discriminator.parameters()))
    assert all(p.requires_grad for p in method.discriminator.parameters())


def test_trainer_trains_adversarially_and_resumes_with_the_discriminator(tmp_path):
    common = [
        "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--no-tensorboard",
        "--set", "optim.method=adversarial", "--set", f"optim.discriminator={TINY_D}",
        "--set", f"model.config={TINY_FLOW_MODEL}", "--set", "data.input_frames=2", "--set", "data.height=32",
        "--set", "data.width=32", "--set", "data.patch=16", "--set", "data.synthetic_clips=8", "--set", "data.val_clips=2",
        "--set", "optim.batch_size=4", "--set", "optim.val_every=100", "--set", "optim.schedule=cosine",
        "--set", "optim.loss={adv: 0.05, p: 2}",
    ]
    assert train.main(["--steps", "2", *common]) == 0
    _, _, checkpoint = load_model_file(tmp_path / "run" / "checkpoints" / "last.pt")
    state = checkpoint["training_state"]
    assert "discriminator" in state and "optimizer.discriminator" in state
    # The cosine schedule scales D's own rate (0.02), not the generator's.
    d_lr = state["optimizer.discriminator"]["param_groups"][0]["lr"]
    assert d_lr == pytest.approx(0.02 * train.schedule_factor(build_config("cpu-small", ["optim.steps=2", "optim.schedule=cosine"]), 1))
    assert train.main(["--steps", "3", "--resume", *common]) == 0
    assert load_model_file(tmp_path / "run" / "checkpoints" / "last.pt")[2]["step"] == 3


def test_single_output_families_are_judged_on_a_downsampled_pyramid():
    from training.methods.adversarial import scale_pyramid

    frame = torch.rand(2, 3, 32, 32)
    pyramid = scale_pyramid([frame], 4)
    assert [p.shape[-1] for p in pyramid] == [4, 8, 16, 32]
    assert torch.equal(pyramid[-1], frame)
    assert torch.allclose(pyramid[0], torch.nn.functional.avg_pool2d(frame, 8))
    own = [torch.zeros(1, 3, s, s) for s in (4, 8, 16, 32)]
    assert scale_pyramid(own, 4) is own


def test_paper_preset_is_the_papers_adversarial_setup():
    config = build_config("paper")
    method = METHODS[config.optim.method].from_config(build_model(config.model.family, config.model.config), config)
    assert isinstance(method, AdversarialMethod)
    w = method.weights
    assert (w.adv, w.lp, w.p, w.gdl, w.alpha) == (0.05, 1.0, 2, 1.0, 1.0)
    assert isinstance(method.optimizer, torch.optim.Adam) and method.optimizer.param_groups[0]["lr"] == 4e-5
    assert isinstance(method.d_optimizer, torch.optim.SGD) and method.d_optimizer.param_groups[0]["lr"] == 0.02
    assert config.optim.batch_size == 8 and config.data.input_frames == 4
    assert (method.discriminator.config.height, method.discriminator.config.width) == (32, 32)
