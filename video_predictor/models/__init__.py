"""Predictor networks (plain nn.Modules) and the graph the backends run.

Every family has a config dataclass with ``from_dict``/``to_dict`` and a module with
``rollout(frames, horizon) -> (frames in [-1, 1], std in [0, 1])``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from video_predictor.models.convlstm import ConvLSTMConfig, ConvLSTMSeq2Seq
from video_predictor.models.multiscale import MultiScaleConfig, MultiScaleGenerator
from video_predictor.models.unet import UNetConfig, UNetPredictor

# family name -> (config class, module class)
FAMILIES: dict[str, tuple[Callable[..., Any], Callable[..., nn.Module]]] = {
    "multiscale": (MultiScaleConfig, MultiScaleGenerator),
    "convlstm": (ConvLSTMConfig, ConvLSTMSeq2Seq),
    "unet": (UNetConfig, UNetPredictor),
}


def build_model(family: str, config: Mapping[str, Any]) -> nn.Module:
    """Instantiate a family's network from its config dict (as stored in model metadata)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    config_cls, module_cls = FAMILIES[family]
    return module_cls(config_cls.from_dict(config))


class PredictorGraph(nn.Module):
    """What the backends run and the ONNX export traces: the whole K-step rollout.

    In:  frames (B, N, H, W, C) float32, 0..255 (uint8 values), channel order of training (RGB).
    Out: predicted frames (B, K, H, W, C) float32 in [0, 1]; std (B, K, H, W) float32 in [0, 1] units.
    """

    def __init__(self, model: nn.Module, horizon: int) -> None:
        super().__init__()
        self.model = model
        self.horizon = horizon

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = frames.permute(0, 1, 4, 2, 3) * (2.0 / 255.0) - 1.0
        predicted, std = self.model.rollout(x, self.horizon)
        return (predicted.permute(0, 1, 3, 4, 2) + 1.0) * 0.5, std
