"""What every training method offers the trainer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

if TYPE_CHECKING:
    from ..config import TrainConfig


def to_model_range(clip: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, C) -> float (B, T, C, H, W) in [-1, 1]."""
    return clip.permute(0, 1, 4, 2, 3).float() * (2.0 / 255.0) - 1.0


class TrainingMethod(ABC):
    """Owns the networks' optimisers and turns a batch of clips into one update."""

    def __init__(self, model: nn.Module, input_frames: int, rollout: int) -> None:
        self.model = model  # what is checkpointed and shipped
        self.forward_model = model  # what training runs forward through (DDP-wrapped on several ranks)
        self.input_frames = input_frames
        self.rollout = rollout

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Run training forward passes through ``wrap(network)`` (DistributedDataParallel),
        while checkpoints keep the plain networks' weights."""
        self.forward_model = wrap(self.model)

    @classmethod
    @abstractmethod
    def from_config(cls, model: nn.Module, config: "TrainConfig") -> "TrainingMethod":
        """The method with its optimisers and loss weights as the training config says."""

    @abstractmethod
    def train_step(self, clip: torch.Tensor) -> dict[str, float]:
        """One optimisation step on uint8 clips (B, T, H, W, C); returns named losses."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        ...

    def modules(self) -> dict[str, nn.Module]:
        """Networks whose weights are checkpointed (the generator is always "model")."""
        return {"model": self.model}

    def state_dict(self) -> dict[str, Any]:
        state = {f"{name}": m.state_dict() for name, m in self.modules().items()}
        state.update({f"optimizer.{name}": opt.state_dict() for name, opt in self.optimizers().items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state[name])
        for name, opt in self.optimizers().items():
            opt.load_state_dict(state[f"optimizer.{name}"])
