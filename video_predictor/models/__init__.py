"""Predictor networks (plain nn.Modules) and the graph the backends run.

Every family has a config dataclass with ``from_dict``/``to_dict`` and a module with
``rollout(frames, horizon) -> (frames in [-1, 1], std in [0, 1])``. Stochastic families
(``stochastic = True`` on the module: svg) also offer ``noise_shape`` and
``sample(frames, horizon, noise)``; their std is the spread of S sampled futures.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from video_predictor.models.convlstm import ConvLSTMConfig, ConvLSTMSeq2Seq
from video_predictor.models.flow_anchored import FlowAnchoredConfig, FlowAnchoredPredictor
from video_predictor.models.multiscale import MultiScaleConfig, MultiScaleGenerator
from video_predictor.models.svg import SVG, SVGConfig, sample_statistics
from video_predictor.models.unet import UNetConfig, UNetPredictor

# family name -> (config class, module class)
FAMILIES: dict[str, tuple[Callable[..., Any], Callable[..., nn.Module]]] = {
    "multiscale": (MultiScaleConfig, MultiScaleGenerator),
    "flow_anchored": (FlowAnchoredConfig, FlowAnchoredPredictor),
    "convlstm": (ConvLSTMConfig, ConvLSTMSeq2Seq),
    "unet": (UNetConfig, UNetPredictor),
    "svg": (SVGConfig, SVG),
}


def build_model(family: str, config: Mapping[str, Any]) -> nn.Module:
    """Instantiate a family's network from its config dict (as stored in model metadata)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    config_cls, module_cls = FAMILIES[family]
    return module_cls(config_cls.from_dict(config))


def uncertainty_kind(family: str, config: Mapping[str, Any]) -> tuple[str, bool]:
    """(ModelMetadata.uncertainty, ModelMetadata.stochastic) of a family's network:
    stochastic families say (svg: "samples", "samples+heteroscedastic", or for its
    deterministic baseline "none" or "heteroscedastic"), else "heteroscedastic" or "none" by its head."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    config_cls, module_cls = FAMILIES[family]
    if getattr(module_cls, "stochastic", False):  # its config says what the sampled std means
        return str(config_cls.from_dict(config).uncertainty_kind), True
    return ("heteroscedastic" if config.get("heteroscedastic", True) else "none"), False


class PredictorGraph(nn.Module):
    """What the backends run and the ONNX export traces: the whole K-step rollout.

    In:  frames (B, N, H, W, C) float32, 0..255 (uint8 values), channel order of training (RGB).
    Out: predicted frames (B, K, H, W, C) float32 in [0, 1]; std (B, K, H, W) float32 in [0, 1] units.

    Flow-input models (``flow_input = True`` on the module: flow_anchored) take flow
    (B, H, W, 2) float32 instead: the backward flow newest -> previous frame in pixels per
    prediction period (channel 0 = x), computed before the graph (predictor.flow_input).

    Stochastic models also take noise (B, S, K, z_dim), standard normal (drawn here for
    ``samples`` paths when not given); the frames out are the per-pixel mean of the S
    samples and std their spread; ``with_sample`` adds a third output, the first sample
    (B, K, H, W, C), for a node that publishes a sample rather than the mean.
    """

    def __init__(self, model: nn.Module, horizon: int, samples: int = 1, with_sample: bool = False) -> None:
        super().__init__()
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.model = model
        self.horizon = horizon
        self.stochastic = bool(getattr(model, "stochastic", False))
        self.flow_input = bool(getattr(model, "flow_input", False))
        self.samples = samples
        self.with_sample = with_sample

    def forward(self, frames: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """``noise`` is the second input: the noise of a stochastic model, the flow of a flow-input one."""
        x = frames.permute(0, 1, 4, 2, 3) * (2.0 / 255.0) - 1.0
        if self.flow_input:
            if noise is None:
                raise ValueError("this model takes a flow input (B, H, W, 2)")
            predicted, std = self.model.rollout(x, self.horizon, flow=noise.permute(0, 3, 1, 2))
            return (predicted.permute(0, 1, 3, 4, 2) + 1.0) * 0.5, std
        if not self.stochastic:
            predicted, std = self.model.rollout(x, self.horizon)
            return (predicted.permute(0, 1, 3, 4, 2) + 1.0) * 0.5, std
        if noise is None:
            noise = torch.randn(self.model.noise_shape(x.shape[0], self.samples, self.horizon), device=x.device, dtype=x.dtype)
        samples, head_std = self.model.sample_with_std(x, self.horizon, noise)  # (B, S, K, C, H, W) in [0, 1]
        mean, std = sample_statistics(samples, head_std)
        if self.with_sample:
            return mean.permute(0, 1, 3, 4, 2), std, samples[:, 0].permute(0, 1, 3, 4, 2)
        return mean.permute(0, 1, 3, 4, 2), std
