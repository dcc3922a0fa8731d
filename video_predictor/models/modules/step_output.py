"""What every family's one-step forward returns, and the uncertainty head's conversion,
shared so that every training method and the backends treat all families alike."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

# every family starts its Laplace log-scale here: about 3 grey levels of std, before training
INITIAL_LOG_SCALE = math.log(0.02)

# An intensity in [0, 1] cannot have a standard deviation above 0.5.
MAX_STD01 = 0.5


class StepOutput(NamedTuple):
    predictions: list[torch.Tensor]  # per scale, coarse to fine, (B, C, h, w) in [-1, 1]; single-scale families give one
    log_scale: torch.Tensor | None  # (B, 1, H, W) Laplace log-scale at full resolution
    change: torch.Tensor  # mean |flow increment| + mean |residual| summed over scales (for a sparsity prior)
    roughness: torch.Tensor  # mean |spatial gradient of the flow| summed over scales (for a smoothness prior)


def laplace_std01(log_scale: torch.Tensor) -> torch.Tensor:
    """Std of a Laplace(b) in [0, 1] units from its log b in [-1, 1] units: sqrt(2) * b / 2,
    at most ``MAX_STD01``. log_scale (B, 1, H, W) -> (B, H, W)."""
    return ((math.sqrt(2.0) / 2.0) * torch.exp(log_scale.clamp(-12.0, 3.0))[:, 0]).clamp(max=MAX_STD01)
