"""SVG-LP / SVG-FP (Denton & Fergus 2018): shapes, the posterior and prior's causal inputs,
the KL term, batched sampling (S paths in one call) and the samples' statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from video_predictor.models import FAMILIES, PredictorGraph, build_model, uncertainty_kind
from video_predictor.models.modules.svg_blocks import FrameDecoder, FrameEncoder, gaussian_kl
from video_predictor.models.svg import SVG, SVGConfig, sample_statistics

TINY = {"input_frames": 3, "channels": 1, "size": 16, "filters": 4, "g_dim": 8, "z_dim": 3, "rnn_size": 8}


def tiny(**overrides) -> SVG:
    torch.manual_seed(0)
    return build_model("svg", {**TINY, **overrides})


def clip(batch: int = 2, frames: int = 6, channels: int = 1, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, channels, size, size, generator=g) * 2 - 1


def test_registered_as_a_stochastic_family_with_sampled_uncertainty():
    assert FAMILIES["svg"] == (SVGConfig, SVG)
    assert uncertainty_kind("svg", TINY) == ("samples", True)
    assert uncertainty_kind("convlstm", {}) == ("heteroscedastic", False)
    assert uncertainty_kind("convlstm", {"heteroscedastic": False}) == ("none", False)


def test_training_pass_shapes_and_prior_posterior_inputs():
    model = tiny().train()
    x = clip(frames=6)
    out = model(x, observed=3)
    assert out.frames.shape == (2, 5, 1, 16, 16)
    assert out.frames.min() >= 0 and out.frames.max() <= 1  # sigmoid output
    for t in (out.mu_q, out.logvar_q, out.mu_p, out.logvar_p):
        assert t.shape == (2, 5, 3)
    # The posterior of step t sees frame t; the prior only frames before it: changing the
    # last frame moves the last posterior, never the prior.
    model.eval()
    a = model(x, 3)
    changed = x.clone()
    changed[:, -1] = -changed[:, -1]
    b = model(changed, 3)
    torch.testing.assert_close(a.mu_p, b.mu_p)
    torch.testing.assert_close(a.mu_q[:, :-1], b.mu_q[:, :-1])
    assert (a.mu_q[:, -1] - b.mu_q[:, -1]).abs().max() > 1e-6


def test_kl_is_zero_for_equal_gaussians_and_positive_otherwise():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(100, 5, generator=g), torch.randn(100, 5, generator=g)
    torch.testing.assert_close(gaussian_kl(mu, logvar, mu, logvar), torch.zeros(100, 5))
    other_mu, other_logvar = torch.randn(100, 5, generator=g), torch.randn(100, 5, generator=g)
    kl = gaussian_kl(mu, logvar, other_mu, other_logvar)
    assert (kl >= 0).all() and kl.sum() > 0
    # against N(0, 1): the closed form 0.5 * (var + mu^2 - 1 - logvar)
    torch.testing.assert_close(gaussian_kl(mu, logvar, torch.zeros_like(mu), torch.zeros_like(mu)),
                               0.5 * (logvar.exp() + mu**2 - 1 - logvar))


def test_samples_are_batched_differ_and_are_reproducible_given_the_noise():
    model = tiny().eval()
    x = clip(batch=2, frames=3)
    noise = torch.randn(2, 4, 5, 3, generator=torch.Generator().manual_seed(2))
    calls = []
    model.decoder.register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    with torch.no_grad():
        samples = model.sample(x, 5, noise)
    assert samples.shape == (2, 4, 5, 1, 16, 16)
    assert calls == [2 * 4] * 5  # one decoder call per step for all B·S paths: batched, not a loop over S
    with torch.no_grad():
        for s in range(4):  # each path is what a call with its own noise alone gives
            torch.testing.assert_close(samples[:, s], model.sample(x, 5, noise[:, s : s + 1])[:, 0], atol=1e-5, rtol=0)
        torch.testing.assert_close(model.sample(x, 5, noise), samples)
    assert (samples[:, 0] - samples[:, 1]).abs().max() > 0  # different noise, different futures


def test_sample_statistics_are_the_unbiased_spread_and_zero_for_one_sample():
    g = torch.Generator().manual_seed(3)
    samples = torch.rand(2, 5, 3, 3, 4, 4, generator=g)
    samples[:, :, :, :, 0, 0] = 0.25  # one pixel where all samples agree
    mean, std = sample_statistics(samples)
    assert mean.shape == (2, 3, 3, 4, 4) and std.shape == (2, 3, 4, 4)
    expected = np.sqrt(samples.numpy().var(axis=1, ddof=1).mean(axis=2))
    np.testing.assert_allclose(std.numpy(), expected, rtol=1e-5)
    assert (std[:, :, 0, 0] == 0).all() and (std[:, :, 1:, 1:] > 0).all()
    _, single = sample_statistics(samples[:, :1])
    assert (single == 0).all()


def test_rollout_and_graph_give_mean_and_spread_of_the_samples():
    model = tiny().eval()
    x = clip(batch=1, frames=3)
    noise = torch.randn(1, 6, 4, 3, generator=torch.Generator().manual_seed(4))
    graph = PredictorGraph(model, 4, with_sample=True)
    frames = (x.permute(0, 1, 3, 4, 2) + 1) * 127.5
    with torch.no_grad():
        mean, std, first = graph(frames, noise)
        samples = model.sample(x, 4, noise)
    assert mean.shape == (1, 4, 16, 16, 1) and std.shape == (1, 4, 16, 16) and first.shape == mean.shape
    torch.testing.assert_close(mean, samples.mean(dim=1).permute(0, 1, 3, 4, 2))
    torch.testing.assert_close(first, samples[:, 0].permute(0, 1, 3, 4, 2))
    differs = (samples.amax(dim=1) - samples.amin(dim=1))[:, :, 0] > 0
    assert ((std > 0) == differs).all()  # std > 0 exactly where the samples differ
    # Without noise the graph draws its own for `samples` paths; the trainer's validation uses that.
    with torch.no_grad():
        m, s = PredictorGraph(model, 4, samples=3)(frames)
        mr, sr = model.rollout(x, 4, samples=3)
    assert m.shape == (1, 4, 16, 16, 1) and s.shape == sr.shape == (1, 4, 16, 16) and mr.shape == (1, 4, 1, 16, 16)


def test_fixed_prior_variant_has_no_prior_network_and_a_standard_normal_prior():
    model = tiny(prior="fixed").train()
    assert model.prior is None and not any(name.startswith("prior.") for name, _ in model.named_parameters())
    out = model(clip(frames=5), 3)
    assert (out.mu_p == 0).all() and (out.logvar_p == 0).all()
    model.eval()
    noise = torch.randn(2, 3, 2, 3)
    with torch.no_grad():
        assert model.sample(clip(frames=3), 2, noise).shape == (2, 3, 2, 1, 16, 16)


def test_deterministic_baseline_ignores_noise_has_no_kl_and_no_uncertainty():
    model = tiny(prior="none").train()
    assert model.posterior is None and model.prior is None
    assert uncertainty_kind("svg", {**TINY, "prior": "none"}) == ("none", True)
    out = model(clip(frames=5), 3)
    assert (out.mu_q == 0).all() and (out.mu_p == 0).all()
    assert float(gaussian_kl(out.mu_q, out.logvar_q, out.mu_p, out.logvar_p).sum()) == 0.0
    model.eval()
    x = clip(frames=3)
    with torch.no_grad():
        a = model.sample(x, 3, torch.randn(2, 4, 3, 3))
        b = model.sample(x, 3, torch.randn(2, 4, 3, 3) * 5)
    torch.testing.assert_close(a, b)  # the same future whatever the noise
    torch.testing.assert_close(a[:, 0], a[:, 3], atol=1e-6, rtol=0)  # all S paths alike
    # Trained on the posterior's z, an svg with a prior does move with the noise.
    with torch.no_grad():
        lp = tiny().eval()
        assert (lp.sample(x, 3, torch.randn(2, 2, 3, 3))[:, 0] - lp.sample(x, 3, torch.randn(2, 2, 3, 3))[:, 0]).abs().max() > 0


def test_scale_head_gives_each_sample_a_std_and_the_total_adds_the_variances():
    model = tiny(heteroscedastic=True).train()
    assert uncertainty_kind("svg", {**TINY, "heteroscedastic": True}) == ("samples+heteroscedastic", True)
    assert uncertainty_kind("svg", {**TINY, "heteroscedastic": True, "prior": "none"}) == ("heteroscedastic", True)
    out = model(clip(frames=5), 3)
    assert out.log_scale.shape == (2, 4, 1, 16, 16) and out.frames.shape == (2, 4, 1, 16, 16)
    assert out.frames.min() >= 0 and out.frames.max() <= 1  # the sigmoid stays on the frame's channels only
    model.eval()
    x = clip(batch=1, frames=3)
    noise = torch.randn(1, 3, 2, 3, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        samples, head = model.sample_with_std(x, 2, noise)
        torch.testing.assert_close(model.sample(x, 2, noise), samples)
    assert samples.shape == (1, 3, 2, 1, 16, 16) and head.shape == (1, 3, 2, 16, 16) and (head > 0).all()
    mean, std = sample_statistics(samples, head)
    spread = samples.var(dim=1, unbiased=True)[:, :, 0]
    expected = torch.sqrt(spread + (head**2).mean(dim=1)).clamp(max=0.5)
    torch.testing.assert_close(std, expected)
    # One sample: the head's std alone (without the head it would be 0).
    _, single = sample_statistics(samples[:, :1], head[:, :1])
    torch.testing.assert_close(single, head[:, 0].clamp(max=0.5))
    # The graph publishes the total.
    with torch.no_grad():
        _, graph_std, _ = PredictorGraph(model, 2, with_sample=True)((x.permute(0, 1, 3, 4, 2) + 1) * 127.5, noise)
    torch.testing.assert_close(graph_std, std)


@pytest.mark.parametrize("backbone, size, channels", [("dcgan", 32, 3), ("vgg", 16, 1), ("vgg", 32, 3)])
def test_backbones_map_frames_to_a_code_and_back(backbone, size, channels):
    enc = FrameEncoder(channels, size, 8, 4, backbone)
    dec = FrameDecoder(channels, size, 8, 4, backbone)
    code, skips = enc(torch.rand(2, channels, size, size))
    assert code.shape == (2, 8) and code.abs().max() <= 1
    assert [s.shape[-1] for s in skips] == ([size // 2 ** (i + 1) for i in range(len(skips))] if backbone == "dcgan"
                                            else [size // 2**i for i in range(len(skips))])
    out = dec(code, skips)
    assert out.shape == (2, channels, size, size) and out.min() >= 0 and out.max() <= 1


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="power of two"):
        SVGConfig(size=48)
    with pytest.raises(ValueError, match="prior"):
        SVGConfig(prior="gaussian")
    with pytest.raises(ValueError, match="unknown keys"):
        SVGConfig.from_dict({"z": 3})
    model = tiny().eval()
    with pytest.raises(ValueError, match="expected frames"):
        model.sample(clip(size=32, frames=3), 2, torch.randn(2, 1, 2, 3))
    with pytest.raises(ValueError, match="noise"):
        model.sample(clip(frames=3), 2, torch.randn(2, 1, 2, 5))
    with pytest.raises(ValueError, match="observed"):
        model(clip(frames=3), 3)
