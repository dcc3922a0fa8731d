"""Sequence-to-sequence training (the ConvLSTM family): the model encodes the N observed
frames and decodes the K = ``data.rollout`` future ones in one pass; Lp + gradient difference
loss over the K outputs, plus the Laplace likelihood of the uncertainty head, with the same
``optim.loss`` weights as the generator method.

Teacher forcing: with ratio p, each sample's decoder input after step k is the true frame k
with probability p instead of the model's own prediction (p = 1: classic teacher forcing,
p = 0: free running as at test time, values between: scheduled-sampling style mixing).
The ratio is ``optim.teacher_forcing`` (default 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..losses import gradient_difference_loss, laplace_nll, lp_loss
from .base import to_model_range
from .generator import TERMS, GeneratorLossWeights, GeneratorMethod, RolloutStep

if TYPE_CHECKING:
    from ..config import TrainConfig


class Seq2SeqMethod(GeneratorMethod):
    """The generator method's losses and optimiser over a sequence model's K-frame output."""

    def __init__(
        self, model: nn.Module, input_frames: int, rollout: int, lr: float, weights: GeneratorLossWeights, teacher_forcing: float = 0.0
    ) -> None:
        if not callable(getattr(model, "sequence", None)):
            raise ValueError(
                f"optim.method seq2seq needs a sequence model (family convlstm); {type(model).__name__} predicts one frame at a time, "
                "train it with optim.method generator or adversarial"
            )
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher forcing ratio must be in [0, 1], got {teacher_forcing}")
        super().__init__(model, input_frames, rollout, lr, weights)
        self.teacher_forcing = teacher_forcing

    @classmethod
    def from_config(cls, model: nn.Module, config: "TrainConfig") -> "Seq2SeqMethod":
        return cls(
            model,
            config.data.input_frames,
            config.data.rollout,
            config.optim.lr,
            GeneratorLossWeights.from_dict(config.optim.loss),
            # OptimSection.teacher_forcing; absent from older configs, where it means free running.
            float(config.optim.teacher_forcing),
        )

    def rollout_terms(self, clip: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[RolloutStep]]:
        """Unweighted terms summed over the K decoded frames, and each step's prediction with
        the N frames before it (observed or predicted) as its window."""
        x = to_model_range(clip)
        n, k, w = self.input_frames, self.rollout, self.weights
        if x.shape[1] < n + k:
            raise ValueError(f"clips of {x.shape[1]} frames are too short for {n} inputs and {k} outputs")
        observed, targets = x[:, :n], x[:, n : n + k]
        # Through forward, not .sequence: a DistributedDataParallel wrapper syncs gradients only then.
        out = self.forward_model(observed, k, targets=targets, teacher_forcing=self.teacher_forcing)
        terms = {name: x.new_zeros(()) for name in TERMS}
        terms["sparsity"] = out.change
        history = torch.cat([observed, out.frames], dim=1)
        steps = []
        for step in range(k):
            prediction, target = out.frames[:, step], targets[:, step]
            terms["lp"] = terms["lp"] + lp_loss(prediction, target, w.p)
            terms["gdl"] = terms["gdl"] + gradient_difference_loss(prediction, target, w.alpha)
            if out.log_scale is not None:
                terms["nll"] = terms["nll"] + laplace_nll((prediction.detach() - target).abs(), out.log_scale[:, step])
            steps.append(RolloutStep(history[:, step : step + n], [prediction], target))
        return terms, steps
