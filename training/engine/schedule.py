"""The learning-rate schedule, one factor of every optimiser's own initial rate."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from ..config import TrainConfig


def schedule_factor(config: TrainConfig, step: int) -> float:
    """Multiplier of every optimiser's initial learning rate at ``step``."""
    schedule = config.optim.schedule
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(1.0, step / max(1, config.optim.steps))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"optim.schedule must be constant or cosine, got {schedule!r}")


def learning_rate(config: TrainConfig, step: int) -> float:
    """The generator's learning rate at ``step``."""
    return config.optim.lr * schedule_factor(config, step)


def apply_schedule(optimizers: Iterable[torch.optim.Optimizer], config: TrainConfig, step: int) -> None:
    """Set every parameter group's rate for ``step``. Each optimiser keeps its own base rate
    (the discriminator's differs), remembered as ``initial_lr`` in its state so a resumed run
    scales the same base."""
    factor = schedule_factor(config, step)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
