"""Generator alone: Lp + gradient difference loss over all scales and rollout steps,
plus the Laplace likelihood for the uncertainty head (Mathieu et al. 2015 without the
adversarial term)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.losses import gradient_difference_loss, laplace_nll, lp_loss
from training.methods.base import TrainingMethod, to_model_range


@dataclass
class GeneratorLossWeights:
    lp: float = 1.0
    p: int = 1
    gdl: float = 1.0
    alpha: float = 1.0
    nll: float = 0.05
    # L1 prior on the warp head's flow increments and residuals: most pixels of real footage
    # do not change, and without it small output errors everywhere cost copy-last's accuracy
    # on static regions (the L2 gradient of a 1-grey-level error is too small to remove them).
    sparsity: float = 0.0
    # Total-variation prior on the flow: real motion fields are piecewise smooth, and a
    # noisy flow estimate costs far more on textured real footage than on synthetic clips.
    smoothness: float = 0.0


class GeneratorMethod(TrainingMethod):
    def __init__(self, model: nn.Module, input_frames: int, rollout: int, lr: float, weights: GeneratorLossWeights) -> None:
        super().__init__(model, input_frames, rollout)
        self.weights = weights
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.optimizer}

    def generator_losses(self, clip: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Reconstruction losses of a recursive rollout; gradients flow through the recursion."""
        x = to_model_range(clip)
        n, w = self.input_frames, self.weights
        window = x[:, :n]
        total = x.new_zeros(())
        parts = {"lp": 0.0, "gdl": 0.0, "nll": 0.0, "sparsity": 0.0, "smoothness": 0.0}
        for step in range(self.rollout):
            target = x[:, n + step]
            predictions, log_scale, change, roughness = self.model(window)
            if w.sparsity > 0:
                total = total + w.sparsity * change
                parts["sparsity"] += change.item()
            if w.smoothness > 0:
                total = total + w.smoothness * roughness
                parts["smoothness"] += roughness.item()
            for pred in predictions:
                factor = target.shape[-1] // pred.shape[-1]
                scaled_target = F.avg_pool2d(target, factor) if factor > 1 else target
                lp = lp_loss(pred, scaled_target, w.p)
                gdl = gradient_difference_loss(pred, scaled_target, w.alpha)
                total = total + w.lp * lp + w.gdl * gdl
                parts["lp"] += lp.item()
                parts["gdl"] += gdl.item()
            if log_scale is not None and w.nll > 0:
                nll = laplace_nll((predictions[-1].detach() - target).abs(), log_scale)
                total = total + w.nll * nll
                parts["nll"] += nll.item()
            window = torch.cat([window[:, 1:], predictions[-1].unsqueeze(1)], dim=1)
        return total, parts

    def train_step(self, clip: torch.Tensor) -> dict[str, float]:
        self.model.train()
        loss, parts = self.generator_losses(clip)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), **parts}
