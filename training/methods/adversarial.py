"""Adversarial training of the multi-scale generator (Mathieu, Couprie & LeCun 2015).

Each step alternates as in the paper's algorithm: first the multi-scale discriminator D
learns to tell (past frames, real next frame) from (past frames, predicted next frame) at
every scale; then the generator G minimises
λ_adv·L_adv + λ_lp·L_p + λ_gdl·L_gdl (+ the uncertainty head's likelihood), every term
summed over the four scales and the rollout steps, with the configured weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F
from torch import nn

from video_predictor.models.modules.blocks import downsample

from ..discriminator import DiscriminatorConfig, MultiScaleDiscriminator
from .base import to_model_range
from .generator import GeneratorLossWeights, GeneratorMethod, RolloutStep

if TYPE_CHECKING:
    from ..config import TrainConfig


@dataclass
class AdversarialLossWeights(GeneratorLossWeights):
    # The paper's values: λ_adv 0.05, λ_lp 1 with p = 2, λ_gdl 1 with α = 1.
    adv: float = 0.05
    p: int = 2


def scale_pyramid(predictions: list[torch.Tensor], levels: int) -> list[torch.Tensor]:
    """One frame per discriminator scale, coarse to fine. Families with a single output
    (U-Net, ConvLSTM) are area-downsampled; the multi-scale generator gives its own."""
    if len(predictions) == levels:
        return predictions
    finest = predictions[-1]
    return [downsample(finest, 2 ** (levels - 1 - i)) for i in range(levels)]


def _bce(logits: list[torch.Tensor], real: bool) -> torch.Tensor:
    """Binary cross-entropy of every scale's logits against one label, summed over scales."""
    return sum((F.binary_cross_entropy_with_logits(z, torch.full_like(z, float(real))) for z in logits), start=torch.zeros(()))


class AdversarialMethod(GeneratorMethod):
    def __init__(
        self,
        model: nn.Module,
        discriminator: MultiScaleDiscriminator,
        input_frames: int,
        rollout: int,
        lr: float,
        d_lr: float,
        weights: AdversarialLossWeights,
    ) -> None:
        super().__init__(model, input_frames, rollout, lr, weights)
        self.discriminator = discriminator
        self.forward_discriminator = discriminator  # the D step's (DDP-wrapped on several ranks)
        self.d_optimizer = torch.optim.SGD(discriminator.parameters(), lr=d_lr)  # the paper's choice for D

    @classmethod
    def from_config(cls, model: nn.Module, config: "TrainConfig") -> "AdversarialMethod":
        d = config.data
        size = d.patch if d.patch > 0 else None
        d_config = DiscriminatorConfig.from_dict(
            {
                "input_frames": d.input_frames,
                "channels": model.config.channels,
                "height": size or d.height,
                "width": size or d.width,
                **config.optim.discriminator,
            }
        )
        return cls(
            model,
            MultiScaleDiscriminator(d_config),
            d.input_frames,
            d.rollout,
            config.optim.lr,
            config.optim.d_lr,
            AdversarialLossWeights.from_dict(config.optim.loss),
        )

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.optimizer, "discriminator": self.d_optimizer}

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        super().distribute(wrap)
        # Only the D step goes through DDP: the G step's D is frozen, and a DDP forward whose
        # parameters get no gradient would leave its reducer waiting.
        self.forward_discriminator = wrap(self.discriminator)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "discriminator": self.discriminator}

    def _real_pairs(self, clip: torch.Tensor, steps: list[RolloutStep]) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """(observed window, real next frame per scale) for every rollout step."""
        x = to_model_range(clip)
        n = self.input_frames
        pairs = []
        levels = len(self.discriminator.scales)
        for i, step in enumerate(steps):
            per_scale = [downsample(step.target, 2 ** (levels - 1 - s)) for s in range(levels)]
            pairs.append((x[:, i : i + n], per_scale))
        return pairs

    def discriminator_loss(self, clip: torch.Tensor, steps: list[RolloutStep]) -> torch.Tensor:
        loss = torch.zeros(())
        for (window, real), step in zip(self._real_pairs(clip, steps), steps):
            fake = [p.detach() for p in scale_pyramid(step.predictions, len(self.discriminator.scales))]
            d = self.forward_discriminator
            loss = loss + _bce(d(window, real), True) + _bce(d(step.window.detach(), fake), False)
        return loss

    def adversarial_term(self, steps: list[RolloutStep]) -> torch.Tensor:
        """L_adv of G: D should take every predicted continuation for a real one."""
        levels = len(self.discriminator.scales)
        return sum((_bce(self.discriminator(s.window, scale_pyramid(s.predictions, levels)), True) for s in steps), start=torch.zeros(()))

    def train_step(self, clip: torch.Tensor) -> dict[str, float]:
        self.model.train()
        self.discriminator.train()
        terms, steps = self.rollout_terms(clip)
        # D step on the generator's predictions, detached (the paper's alternation; one
        # rollout serves both steps).
        d_loss = self.discriminator_loss(clip, steps)
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()
        # G step against the updated D, whose weights stay fixed meanwhile.
        self.discriminator.requires_grad_(False)
        try:
            terms["adv"] = self.adversarial_term(steps)
            loss = self.weighted_sum(terms)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        finally:
            self.discriminator.requires_grad_(True)
        return {"loss": loss.item(), "d_loss": d_loss.item(), **{name: value.item() for name, value in terms.items()}}

    def generator_objective(self, clip: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator's combined loss with the configured weights, and its unweighted terms."""
        terms, steps = self.rollout_terms(clip)
        terms["adv"] = self.adversarial_term(steps)
        return self.weighted_sum(terms), terms
