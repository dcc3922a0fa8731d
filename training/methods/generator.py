"""Generator alone: Lp + gradient difference loss over all scales and rollout steps,
plus the Laplace likelihood for the uncertainty head (Mathieu et al. 2015 without the
adversarial term)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from video_predictor.core.predictor import flow_input

from ..losses import gradient_difference_loss, laplace_nll, log_mse_loss, lp_loss
from .base import TrainingMethod, to_model_range

FLOW_METHOD = "farneback"  # the runtime's flow input (ModelMetadata.flow_input of the exported file)

if TYPE_CHECKING:
    from ..config import TrainConfig


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
    # log(MSE + log_eps) per frame (losses.log_mse_loss): the metric's own weighting, which
    # makes the small errors of still scenes as costly as they are in dB. log_eps is in
    # [-1, 1] units squared (1e-4: an rms error of 1.3 grey levels).
    log_mse: float = 0.0
    log_eps: float = 1e-4

    @classmethod
    def from_dict(cls, data: dict) -> "GeneratorLossWeights":
        known = set(asdict(cls()))
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown loss weights {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**data)


# Unweighted loss terms; each is multiplied by the GeneratorLossWeights field of its name.
TERMS = ("lp", "log_mse", "gdl", "nll", "sparsity", "smoothness")


class RolloutStep(NamedTuple):
    window: torch.Tensor  # (B, N, C, H, W) the frames the step saw, in [-1, 1]
    predictions: list[torch.Tensor]  # per scale, coarse to fine
    target: torch.Tensor  # (B, C, H, W) the true next frame


class GeneratorMethod(TrainingMethod):
    def __init__(self, model: nn.Module, input_frames: int, rollout: int, lr: float, weights: GeneratorLossWeights) -> None:
        super().__init__(model, input_frames, rollout)
        self.weights = weights
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    @classmethod
    def from_config(cls, model: nn.Module, config: "TrainConfig") -> "GeneratorMethod":
        return cls(model, config.data.input_frames, config.data.rollout, config.optim.lr, GeneratorLossWeights.from_dict(config.optim.loss))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.optimizer}

    def rollout_terms(self, clip: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[RolloutStep]]:
        """Unweighted reconstruction terms of a recursive rollout, summed over scales and
        steps (gradients flow through the recursion), and each step's predictions.
        A flow-input model (flow_anchored) predicts all steps in one pass instead."""
        if getattr(self.model, "flow_input", False):
            return self.one_pass_terms(clip)
        x = to_model_range(clip)
        n, w = self.input_frames, self.weights
        window = x[:, :n]
        terms = {name: x.new_zeros(()) for name in TERMS}
        steps = []
        for step in range(self.rollout):
            target = x[:, n + step]
            predictions, log_scale, change, roughness = self.forward_model(window)
            terms["sparsity"] = terms["sparsity"] + change
            terms["smoothness"] = terms["smoothness"] + roughness
            for pred in predictions:
                factor = target.shape[-1] // pred.shape[-1]
                scaled_target = F.avg_pool2d(target, factor) if factor > 1 else target
                terms["lp"] = terms["lp"] + lp_loss(pred, scaled_target, w.p)
                terms["log_mse"] = terms["log_mse"] + log_mse_loss(pred, scaled_target, w.log_eps)
                terms["gdl"] = terms["gdl"] + gradient_difference_loss(pred, scaled_target, w.alpha)
            if log_scale is not None:
                terms["nll"] = terms["nll"] + laplace_nll((predictions[-1].detach() - target).abs(), log_scale)
            steps.append(RolloutStep(window, predictions, target))
            window = torch.cat([window[:, 1:], predictions[-1].unsqueeze(1)], dim=1)
        return terms, steps

    def one_pass_terms(self, clip: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[RolloutStep]]:
        """The same terms for a model that sees the classical flow of the newest observed pair
        (computed here as the runtime does) and predicts ``rollout`` steps in one pass. Each
        step's window, for the discriminator, is the observed frames continued by the
        predicted ones, as a recursive rollout would have seen them."""
        x = to_model_range(clip)
        n, w, k = self.input_frames, self.weights, self.rollout
        observed = clip[:, :n].detach().cpu().numpy()
        flow = torch.from_numpy(flow_input(observed, FLOW_METHOD)).permute(0, 3, 1, 2).to(x.device)
        predictions, log_scale, change, roughness = self.forward_model(x[:, :n], flow, k)
        terms = {name: x.new_zeros(()) for name in TERMS}
        terms["sparsity"], terms["smoothness"] = change, roughness
        targets = x[:, n : n + k]  # (B, k, C, H, W)
        for pred in predictions:  # (B, k, C, h, w) per scale
            factor = targets.shape[-1] // pred.shape[-1]
            scaled = targets.flatten(0, 1)
            scaled = F.avg_pool2d(scaled, factor) if factor > 1 else scaled
            terms["lp"] = terms["lp"] + k * lp_loss(pred.flatten(0, 1), scaled, w.p)
            terms["log_mse"] = terms["log_mse"] + k * log_mse_loss(pred.flatten(0, 1), scaled, w.log_eps)
            terms["gdl"] = terms["gdl"] + k * gradient_difference_loss(pred.flatten(0, 1), scaled, w.alpha)
        finest = predictions[-1]
        if log_scale is not None:
            error = (finest.detach() - targets).abs().flatten(0, 1)
            terms["nll"] = k * laplace_nll(error, log_scale.flatten(0, 1).unsqueeze(1))
        steps = []
        for step in range(k):
            window = torch.cat([x[:, :n], finest[:, :step]], dim=1)[:, -n:]
            steps.append(RolloutStep(window, [p[:, step] for p in predictions], targets[:, step]))
        return terms, steps

    def weighted_sum(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The combined loss with this method's configured weights (never defaults)."""
        return sum((float(getattr(self.weights, name)) * value for name, value in terms.items()), start=torch.zeros(()))

    def generator_losses(self, clip: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        terms, _ = self.rollout_terms(clip)
        return self.weighted_sum(terms), {name: value.item() for name, value in terms.items()}

    def train_step(self, clip: torch.Tensor) -> dict[str, float]:
        self.model.train()
        loss, parts = self.generator_losses(clip)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), **parts}
