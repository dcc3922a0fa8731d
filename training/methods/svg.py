"""SVG training (Denton & Fergus 2018): reconstruction + beta * KL(posterior || prior).

Per clip of n_past + n_future frames (``data.input_frames`` + ``data.rollout``), the model
predicts every frame from the true previous one and z from the posterior of the true frame
(the authors' teacher-forced training); the loss is, as in their code, the per-step mean
squared error in [0, 1] intensities summed over the steps, plus beta times the KL summed
over the latent dimensions and steps and averaged over the batch. The learned prior is
trained by the KL term alone (SVG-FP: the KL to N(0, I)).

``optim.loss`` takes ``beta`` (default 1e-4, the paper's) and, for a model with the scale
head (``model.config.heteroscedastic``), ``nll``: the weight of the head's Laplace negative
log-likelihood of the (detached) per-pixel error; ``optim.lr`` is the Adam learning rate
(the paper: 2e-3, betas 0.9, 0.999).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from video_predictor.models.modules.svg_blocks import gaussian_kl

from ..losses import laplace_nll
from .base import TrainingMethod, to_model_range

if TYPE_CHECKING:
    from ..config import TrainConfig


@dataclass
class SVGLossWeights:
    beta: float = 1e-4
    nll: float = 0.01  # Laplace NLL of the scale head (heteroscedastic models only)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SVGLossWeights":
        unknown = set(data) - {"beta", "nll"}
        if unknown:
            raise ValueError(f"svg method: unknown loss weights {', '.join(sorted(unknown))}; known: beta, nll")
        weights = cls(**dict(data))
        if weights.beta < 0 or weights.nll < 0:
            raise ValueError(f"svg method: beta and nll must be >= 0, got {weights.beta}, {weights.nll}")
        return weights


class SVGMethod(TrainingMethod):
    def __init__(self, model: nn.Module, input_frames: int, rollout: int, lr: float, weights: SVGLossWeights) -> None:
        if not getattr(model, "stochastic", False) or not callable(getattr(model, "noise_shape", None)):
            raise ValueError(f"optim.method svg trains the svg family; {type(model).__name__} is not one (use generator, seq2seq or adversarial)")
        if input_frames < 1 or rollout < 1:
            raise ValueError(f"svg method: need input_frames >= 1 and rollout >= 1, got {input_frames}, {rollout}")
        super().__init__(model, input_frames, rollout)
        self.weights = weights
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))

    @classmethod
    def from_config(cls, model: nn.Module, config: "TrainConfig") -> "SVGMethod":
        return cls(model, config.data.input_frames, config.data.rollout, config.optim.lr, SVGLossWeights.from_dict(config.optim.loss))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.optimizer}

    def losses(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted terms and the total on uint8 clips (B, T >= n_past + n_future, H, W, C)."""
        n, k = self.input_frames, self.rollout
        if clip.shape[1] < n + k:
            raise ValueError(f"clips of {clip.shape[1]} frames are too short for {n} inputs and {k} outputs")
        x = to_model_range(clip[:, : n + k])
        # Through forward: a DistributedDataParallel wrapper syncs gradients only then.
        out = self.forward_model(x, n)
        target = (x[:, 1:] + 1.0) * 0.5
        mse = F.mse_loss(out.frames, target, reduction="none").flatten(2).mean(dim=2).sum(dim=1).mean()
        kl = gaussian_kl(out.mu_q, out.logvar_q, out.mu_p, out.logvar_p).sum(dim=(1, 2)).mean()
        terms = {"loss": mse + self.weights.beta * kl, "mse": mse, "kl": kl}
        if out.log_scale is not None:
            # The error is detached: the head learns the decoder's error given the right z
            # (what the samples' spread cannot show) without bending the frames toward it.
            error = (out.frames.detach() - target).abs().flatten(0, 1)
            nll = laplace_nll(error, out.log_scale.flatten(0, 1))
            terms["nll"] = nll
            terms["loss"] = terms["loss"] + self.weights.nll * nll
        return terms

    def train_step(self, clip: torch.Tensor) -> dict[str, float]:
        self.model.train()
        terms = self.losses(clip)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.optimizer.step()
        return {name: value.item() for name, value in terms.items()}
