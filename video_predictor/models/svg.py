"""SVG-LP: stochastic video generation with a learned prior (Denton & Fergus 2018).

A frame encoder maps each frame to a code h_t; a frame predictor LSTM maps [h_{t-1}, z_t]
to the next frame's code, which the decoder turns into a frame with the encoder's skip
connections from the last observed frame (so static content is copied). The latent z_t
comes from the posterior q(z_t | x_1:t) in training and from the learned prior
p(z_t | x_1:t-1) at test time (SVG-FP: a fixed N(0, I) prior). Trained with
reconstruction + beta * KL(q || p) by ``training.methods.svg``; layout and reference values
follow the authors' code (edenton/svg), in [0, 1] intensities with a sigmoid output.

Sampling: ``sample(frames, horizon, noise)`` runs S sample paths per input as one batch
of B·S. The standard-normal noise eps (B, S, K, z_dim) is an explicit argument, so the
exported ONNX graph takes it as an input: S is the noise's second dimension (any S per
call, one graph), runs are reproducible, and ONNX Runtime and PyTorch agree given the same
noise. ``rollout`` (the interface every family offers) draws the noise itself and returns
the per-pixel mean and the per-pixel standard deviation across the samples.

``heteroscedastic: true`` adds a per-pixel Laplace scale to the decoder (one more output
channel), trained on the decoder's own error given the right z: what no sample accounts
for (blur of the reconstruction). The published std is then the total one,
sqrt(spread of the samples^2 + mean of the head's std^2).

While the observed frames are read, the posterior's mean is used (no sampling), so this
part runs once per input and only the K future steps run per sample path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from video_predictor.models.family_config import DictConfig
from video_predictor.models.modules.step_output import MAX_STD01
from video_predictor.models.modules.svg_blocks import (
    BACKBONES,
    FrameDecoder,
    FrameEncoder,
    GaussianLSTM,
    LSTMState,
    PredictorLSTM,
    level_widths,
)

PRIORS = ("learned", "fixed", "none")


@dataclass
class SVGConfig(DictConfig):
    """CPU-sized by default; the paper's values (SM-MNIST) are in training/configs/svg-smmnist-paper.yaml:
    filters 64, g_dim 128, rnn_size 256, z_dim 10 (BAIR: 64, KTH: 24)."""

    input_frames: int = 5  # n_past: SM-MNIST 5, BAIR 2, KTH 10
    channels: int = 1
    size: int = 64  # frames are size x size (64 or 128)
    backbone: str = "dcgan"  # or "vgg"
    filters: int = 16  # channels of the first encoder level (the paper's nf = 64)
    g_dim: int = 64  # frame code size (paper 128)
    z_dim: int = 10
    rnn_size: int = 128  # LSTM units (paper 256)
    predictor_layers: int = 2
    posterior_layers: int = 1
    prior_layers: int = 1
    prior: str = "learned"  # "fixed": SVG-FP, z ~ N(0, I); "none": the deterministic baseline (z = 0)
    last_frame_skip: bool = False  # skips from the newest (also generated) frame instead of the last observed one
    heteroscedastic: bool = False  # a Laplace scale head on the decoder: sigma also covers reconstruction error

    @property
    def uncertainty_kind(self) -> str:
        """What the node's /predicted_uncertainty means for this model (ModelMetadata.uncertainty):
        the spread of sampled futures, or nothing for the deterministic baseline."""
        if self.heteroscedastic:
            return "heteroscedastic" if self.prior == "none" else "samples+heteroscedastic"
        return "none" if self.prior == "none" else "samples"

    def __post_init__(self) -> None:
        if self.input_frames < 1 or self.channels not in (1, 3):
            raise ValueError(f"svg: need input_frames >= 1 and channels 1 or 3, got {self.input_frames}, {self.channels}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"svg: backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.prior not in PRIORS:
            raise ValueError(f"svg: prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        level_widths(self.size, 1)  # raises on a size the nets cannot take
        for name in ("filters", "g_dim", "z_dim", "rnn_size", "predictor_layers", "posterior_layers", "prior_layers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"svg: {name} must be >= 1, got {getattr(self, name)}")


class SVGOutput(NamedTuple):
    """The training pass over a clip of T frames: predictions of frames 1..T-1."""

    frames: torch.Tensor  # (B, T-1, C, H, W) in [0, 1]
    mu_q: torch.Tensor  # (B, T-1, z_dim) posterior
    logvar_q: torch.Tensor
    mu_p: torch.Tensor  # (B, T-1, z_dim) prior (zeros for SVG-FP)
    logvar_p: torch.Tensor
    log_scale: torch.Tensor | None = None  # (B, T-1, 1, H, W) Laplace log-scale in [0, 1] units (heteroscedastic)


class SVG(nn.Module):
    """SVG-LP / SVG-FP. ``forward(clip, observed)`` trains; ``sample`` / ``rollout`` predict."""

    stochastic = True  # PredictorGraph and the backends draw noise for it

    def __init__(self, config: SVGConfig) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = FrameEncoder(c.channels, c.size, c.g_dim, c.filters, c.backbone)
        self.decoder = FrameDecoder(c.channels, c.size, c.g_dim, c.filters, c.backbone, scale_head=c.heteroscedastic)
        self.predictor = PredictorLSTM(c.g_dim + c.z_dim, c.g_dim, c.rnn_size, c.predictor_layers)
        # The deterministic baseline (prior "none") keeps the predictor's input width, with z = 0.
        self.posterior = GaussianLSTM(c.g_dim, c.z_dim, c.rnn_size, c.posterior_layers) if c.prior != "none" else None
        self.prior = GaussianLSTM(c.g_dim, c.z_dim, c.rnn_size, c.prior_layers) if c.prior == "learned" else None

    # -- shared ----------------------------------------------------------------------------

    def _check(self, frames: torch.Tensor, horizon: int) -> None:
        if torch.jit.is_tracing():
            return
        c = self.config
        if frames.ndim != 5 or frames.shape[1] < 1 or frames.shape[2] != c.channels or frames.shape[-2:] != (c.size, c.size):
            raise ValueError(f"svg: expected frames (B, T, {c.channels}, {c.size}, {c.size}), got {tuple(frames.shape)}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")

    def _encode(self, frames01: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """All frames (B, T, C, H, W) in one encoder batch -> codes (B, T, g), skips per level (B, T, ...)."""
        b, t = frames01.shape[:2]
        codes, skips = self.encoder(frames01.flatten(0, 1))
        return codes.reshape(b, t, -1), [s.reshape(b, t, *s.shape[1:]) for s in skips]

    def _decode(self, g: torch.Tensor, skips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Frame (B, C, H, W) in [0, 1] and, with the scale head, its log-scale (B, 1, H, W)."""
        out = self.decoder(g, skips)
        c = self.config.channels
        return (out[:, :c], out[:, c:]) if self.config.heteroscedastic else (out, None)

    def _posterior(self, h: torch.Tensor, state: LSTMState | None) -> tuple[torch.Tensor, torch.Tensor, LSTMState | None]:
        if self.posterior is None:  # deterministic baseline: z = 0, no KL
            zeros = h.new_zeros(h.shape[0], self.config.z_dim)
            return zeros, zeros, None
        return self.posterior(h, state)

    def _prior(self, h: torch.Tensor, state: LSTMState | None) -> tuple[torch.Tensor, torch.Tensor, LSTMState | None]:
        if self.prior is None:  # SVG-FP: N(0, I) whatever the past; deterministic: unused
            zeros = h.new_zeros(h.shape[0], self.config.z_dim)
            return zeros, zeros, None
        return self.prior(h, state)

    # -- training ----------------------------------------------------------------------------

    def forward(self, clip: torch.Tensor, observed: int) -> SVGOutput:
        """Teacher-forced pass as in the authors' training: frame t-1's true code and z_t from
        the posterior of the true frame t predict frame t, for t = 1..T-1; the prior sees
        frame t-1. clip (B, T, C, H, W) in [-1, 1]; ``observed`` = n_past (the skips come
        from the last observed frame for all later steps)."""
        self._check(clip, 1)
        if not 1 <= observed < clip.shape[1]:
            raise ValueError(f"svg: need 1 <= observed < T frames, got observed {observed} of {clip.shape[1]}")
        codes, skips = self._encode((clip + 1.0) * 0.5)
        h0 = codes[:, 0]
        pred_state = self.predictor.initial_state(h0)
        post_state = self.posterior.initial_state(h0) if self.posterior is not None else None
        prior_state = self.prior.initial_state(h0) if self.prior is not None else None
        frames, scales, mu_q, logvar_q, mu_p, logvar_p = [], [], [], [], [], []
        for t in range(1, clip.shape[1]):
            h = codes[:, t - 1]
            skip_t = t - 1 if self.config.last_frame_skip else min(t - 1, observed - 1)
            mq, lq, post_state = self._posterior(codes[:, t], post_state)
            mp, lp, prior_state = self._prior(h, prior_state)
            z = mq + torch.exp(0.5 * lq) * torch.randn_like(mq) if self.posterior is not None else mq
            g, pred_state = self.predictor(torch.cat([h, z], dim=1), pred_state)
            frame, log_scale = self._decode(g, [s[:, skip_t] for s in skips])
            frames.append(frame)
            scales.append(log_scale)
            mu_q.append(mq)
            logvar_q.append(lq)
            mu_p.append(mp)
            logvar_p.append(lp)
        stack = lambda xs: torch.stack(xs, dim=1)  # noqa: E731
        return SVGOutput(stack(frames), stack(mu_q), stack(logvar_q), stack(mu_p), stack(logvar_p),
                         stack(scales) if self.config.heteroscedastic else None)

    # -- prediction ----------------------------------------------------------------------------

    def noise_shape(self, batch: int, samples: int, horizon: int) -> tuple[int, int, int, int]:
        """Shape of the standard-normal noise ``sample`` takes: (B, S, K, z_dim)."""
        return (batch, samples, horizon, self.config.z_dim)

    def sample(self, frames: torch.Tensor, horizon: int, noise: torch.Tensor) -> torch.Tensor:
        """S sample futures per input, batched as B·S: frames (B, N, C, H, W) in [-1, 1],
        noise (B, S, K, z_dim) standard normal -> (B, S, K, C, H, W) in [0, 1]."""
        return self.sample_with_std(frames, horizon, noise)[0]

    def sample_with_std(self, frames: torch.Tensor, horizon: int, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``sample``'s futures and, with the scale head, each one's per-pixel std in [0, 1]
        units (B, S, K, H, W); None without it."""
        self._check(frames, horizon)
        if not torch.jit.is_tracing() and (noise.ndim != 4 or noise.shape[0] != frames.shape[0] or noise.shape[2] < horizon
                                           or noise.shape[3] != self.config.z_dim):
            raise ValueError(f"svg: noise must be (B={frames.shape[0]}, S, K>={horizon}, {self.config.z_dim}), got {tuple(noise.shape)}")
        codes, skips = self._encode((frames + 1.0) * 0.5)
        n = frames.shape[1]
        h0 = codes[:, 0]
        pred_state = self.predictor.initial_state(h0)
        post_state = self.posterior.initial_state(h0) if self.posterior is not None else None
        prior_state = self.prior.initial_state(h0) if self.prior is not None else None
        # Read the observed frames once per input, with the posterior's mean as z.
        for t in range(1, n):
            mq, _, post_state = self._posterior(codes[:, t], post_state)
            _, _, prior_state = self._prior(codes[:, t - 1], prior_state)
            _, pred_state = self.predictor(torch.cat([codes[:, t - 1], mq], dim=1), pred_state)
        # Then S paths per input: repeat the states along the batch (B -> B·S, sample-major within an input).
        samples = noise.shape[1]

        def per_path(x: torch.Tensor) -> torch.Tensor:
            return x.unsqueeze(1).expand(x.shape[0], samples, *x.shape[1:]).flatten(0, 1)

        pred_state = [(per_path(h), per_path(c)) for h, c in pred_state]
        prior_state = [(per_path(h), per_path(c)) for h, c in prior_state] if prior_state is not None else None
        h = per_path(codes[:, n - 1])
        skip = [per_path(s[:, n - 1]) for s in skips]
        eps = noise.flatten(0, 1)  # (B·S, K, z)
        outputs, stds = [], []
        for k in range(horizon):
            mu, logvar, prior_state = self._prior(h, prior_state)
            # eps * 0 keeps the noise input in an exported graph for the deterministic baseline.
            z = mu + torch.exp(0.5 * logvar) * eps[:, k] if self.posterior is not None else eps[:, k] * 0.0
            g, pred_state = self.predictor(torch.cat([h, z], dim=1), pred_state)
            frame, log_scale = self._decode(g, skip)
            outputs.append(frame)
            if log_scale is not None:
                stds.append(laplace_std(log_scale))
            if k + 1 < horizon:
                h, new_skip = self.encoder(frame)
                if self.config.last_frame_skip:
                    skip = new_skip
        out = torch.stack(outputs, dim=1)  # (B·S, K, C, H, W)
        paths = out.reshape(frames.shape[0], samples, *out.shape[1:])
        if not stds:
            return paths, None
        std = torch.stack(stds, dim=1)  # (B·S, K, H, W)
        return paths, std.reshape(frames.shape[0], samples, *std.shape[1:])

    def rollout(self, frames: torch.Tensor, horizon: int, samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel mean (B, K, C, H, W) in [-1, 1] of ``samples`` futures drawn from the
        prior, and their per-pixel std (B, K, H, W) in [0, 1] units (0 for one sample)."""
        noise = torch.randn(self.noise_shape(frames.shape[0], samples, horizon), device=frames.device, dtype=frames.dtype)
        mean, std = sample_statistics(*self.sample_with_std(frames, horizon, noise))
        return mean * 2.0 - 1.0, std


def laplace_std(log_scale: torch.Tensor) -> torch.Tensor:
    """Std sqrt(2)·b of a Laplace(b), b = exp(log_scale) in [0, 1] units, at most MAX_STD01:
    (B, 1, H, W) -> (B, H, W)."""
    return (1.4142135623730951 * torch.exp(log_scale.clamp(-12.0, 3.0))[:, 0]).clamp(max=MAX_STD01)


def sample_statistics(samples: torch.Tensor, head_std: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """samples (B, S, K, C, H, W) in [0, 1] -> per-pixel mean (B, K, C, H, W) and std (B, K, H, W).

    The std is the unbiased one across the S samples (0 when S = 1), root mean square over
    the channels; with ``head_std`` (B, S, K, H, W), each sample's own predicted std, their
    mean square is added to the variance (the law of total variance). Capped at MAX_STD01.
    S is counted with tensor ops so that an exported graph keeps it dynamic."""
    mean = samples.mean(dim=1)
    count = torch.ones_like(samples[:, :, :1, :1, :1, :1]).sum(dim=1)  # (B, 1, 1, 1, 1) = S
    squares = ((samples - mean.unsqueeze(1)) ** 2).sum(dim=1)
    variance = (squares / torch.clamp(count - 1.0, min=1.0)).mean(dim=2)
    if head_std is not None:
        variance = variance + (head_std**2).mean(dim=1)
    return mean, torch.sqrt(variance).clamp(max=MAX_STD01)
