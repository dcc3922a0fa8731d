"""Sequence-to-sequence ConvLSTM encoder-decoder (Shi et al. 2015; Srivastava et al. 2015).

A shared convolutional stem (stride-2 stages) encodes each frame; an encoder ConvLSTM stack
reads the N observed frames and hands its state to a decoder ConvLSTM stack with its own
weights, which then emits one frame per step from the previous frame: the last observed
one, then its own prediction (free running) or, in training with teacher forcing, the true
frame. The decoder keeps going for any K, past the length it was trained on.

Each output is decoded back to full resolution with the previous frame's stem features as
skip connections. Like the multi-scale family it can predict a change of the previous frame
(``residual``, last layer starting at zero, so an untrained model copies the last frame) and
a per-pixel Laplace log-scale (heteroscedastic uncertainty).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from video_predictor.models.family_config import DictConfig
from video_predictor.models.modules.blocks import upsample2
from video_predictor.models.modules.convlstm_cell import ConvLSTMStack
from video_predictor.models.modules.step_output import INITIAL_LOG_SCALE, StepOutput, laplace_std01


@dataclass
class ConvLSTMConfig(DictConfig):
    input_frames: int = 4  # what the node feeds; the encoder itself reads any number
    channels: int = 3
    stem: list[int] = field(default_factory=lambda: [16, 32])  # stride-2 stages; the LSTMs run at 1/2**len(stem)
    hidden: list[int] = field(default_factory=lambda: [32, 32])  # hidden channels per stacked ConvLSTM layer
    kernel: int = 3
    width_multiplier: float = 1.0
    residual: bool = True  # predict a change of the previous frame (else a tanh image)
    heteroscedastic: bool = True

    def __post_init__(self) -> None:
        if self.input_frames < 1 or self.channels not in (1, 3):
            raise ValueError("convlstm: need input_frames >= 1 and channels 1 or 3")
        if not self.hidden or any(int(h) < 1 for h in self.hidden) or any(int(f) < 1 for f in self.stem):
            raise ValueError(f"convlstm: need at least one ConvLSTM layer and positive widths, got stem {self.stem}, hidden {self.hidden}")
        if self.kernel < 1 or self.kernel % 2 == 0 or self.width_multiplier <= 0:
            raise ValueError(f"convlstm: kernel must be odd and width_multiplier > 0, got {self.kernel}, {self.width_multiplier}")

    @property
    def divisor(self) -> int:
        """Height and width must be multiples of this."""
        return 2 ** len(self.stem)

    def scaled(self, widths: list[int]) -> list[int]:
        return [max(1, round(w * self.width_multiplier)) for w in widths]


class SequenceOutput(NamedTuple):
    frames: torch.Tensor  # (B, K, C, H, W) in [-1, 1]
    log_scale: torch.Tensor | None  # (B, K, 1, H, W) Laplace log-scale in [-1, 1] units
    change: torch.Tensor  # mean |predicted change| summed over steps (for a sparsity prior)


class ConvLSTMSeq2Seq(nn.Module):
    """N frames in, K frames out; ``sequence`` for training, ``rollout`` for the node."""

    def __init__(self, config: ConvLSTMConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        stem, hidden = config.scaled(config.stem), config.scaled(config.hidden)
        self.stem = nn.ModuleList()
        c_in = c
        for width in stem:
            self.stem.append(nn.Sequential(nn.Conv2d(c_in, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)))
            c_in = width
        self.encoder = ConvLSTMStack(c_in, hidden, config.kernel)
        self.decoder = ConvLSTMStack(c_in, hidden, config.kernel)
        # Back up to full resolution, fusing the previous frame's stem features level by level.
        self.fuse = nn.ModuleList()
        u = hidden[-1]
        for level in range(len(stem), 0, -1):
            self.fuse.append(nn.Sequential(nn.Conv2d(u + stem[level - 1], stem[level - 1], 3, padding=1), nn.ReLU(inplace=True)))
            u = stem[level - 1]
        self.head = nn.Conv2d(u + c, c + (1 if config.heteroscedastic else 0), 3, padding=1)
        with torch.no_grad():
            if config.residual:  # start as copy-last-frame
                self.head.weight.zero_()
                self.head.bias.zero_()
            if config.heteroscedastic:
                self.head.bias[-1].fill_(INITIAL_LOG_SCALE)

    def _features(self, frame: torch.Tensor) -> list[torch.Tensor]:
        """[frame, stem level 1, ..., stem level S] of one frame (B, C, H, W)."""
        features = [frame]
        for stage in self.stem:
            features.append(stage(features[-1]))
        return features

    def _decode(self, top: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        u = top
        for level, fuse in zip(range(len(self.stem), 0, -1), self.fuse):
            u = upsample2(fuse(torch.cat([u, skips[level]], dim=1)))
        return self.head(torch.cat([u, skips[0]], dim=1))

    def _check(self, frames: torch.Tensor, horizon: int, targets: torch.Tensor | None) -> None:
        if torch.jit.is_tracing():
            return
        if frames.ndim != 5 or frames.shape[1] < 1 or frames.shape[2] != self.config.channels:
            raise ValueError(f"expected frames (B, N, {self.config.channels}, H, W), got {tuple(frames.shape)}")
        d = self.config.divisor
        if frames.shape[-2] % d or frames.shape[-1] % d:
            raise ValueError(f"height and width must be multiples of {d}, got {frames.shape[-2]}x{frames.shape[-1]}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if targets is not None and (targets.shape[1] < horizon - 1 or targets.shape[2:] != frames.shape[2:]):
            raise ValueError(f"teacher forcing needs {horizon - 1} target frames shaped like the inputs, got {tuple(targets.shape)}")

    def sequence(
        self, frames: torch.Tensor, horizon: int, targets: torch.Tensor | None = None, teacher_forcing: float = 0.0
    ) -> SequenceOutput:
        """Encode frames (B, N, C, H, W) in [-1, 1], decode ``horizon`` frames.

        targets (B, >= horizon - 1, C, H, W): the true future; with ``teacher_forcing`` p > 0,
        each sample's decoder input after step k is the true frame k with probability p
        (p = 1: always, classic teacher forcing) instead of the prediction.
        """
        self._check(frames, horizon, targets)
        c = self.config.channels
        states = None
        skips: list[torch.Tensor] = []
        for t in range(frames.shape[1]):
            skips = self._features(frames[:, t])
            _, states = self.encoder(skips[-1], states)
        previous = frames[:, -1]
        outputs, log_scales = [], []
        change = frames.new_zeros(())
        for k in range(horizon):
            top, states = self.decoder(skips[-1], states)
            out = self._decode(top, skips)
            if self.config.residual:
                delta = torch.tanh(out[:, :c])
                prediction = torch.clamp(previous + delta, -1.0, 1.0)
                change = change + delta.abs().mean()
            else:
                prediction = torch.tanh(out[:, :c])
            outputs.append(prediction)
            if self.config.heteroscedastic:
                log_scales.append(out[:, c:])
            if k + 1 < horizon:
                previous = prediction
                if targets is not None and teacher_forcing > 0:
                    previous = _mix(prediction, targets[:, k], teacher_forcing)
                skips = self._features(previous)
        log_scale = torch.stack(log_scales, dim=1) if log_scales else None
        return SequenceOutput(torch.stack(outputs, dim=1), log_scale, change)

    def forward(
        self, frames: torch.Tensor, horizon: int | None = None, targets: torch.Tensor | None = None, teacher_forcing: float = 0.0
    ) -> StepOutput | SequenceOutput:
        """With ``horizon``: ``sequence`` (called through forward so that wrappers such as
        DistributedDataParallel see the pass). Without: the next frame only, as a StepOutput,
        so the recursive training methods can train this family too."""
        if horizon is not None:
            return self.sequence(frames, horizon, targets, teacher_forcing)
        seq = self.sequence(frames, 1)
        log_scale = seq.log_scale[:, 0] if seq.log_scale is not None else None
        return StepOutput([seq.frames[:, 0]], log_scale, seq.change, frames.new_zeros(()))

    def rollout(self, frames: torch.Tensor, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
        """K free-running decoder steps: frames (B, K, C, H, W) in [-1, 1], std (B, K, H, W) in [0, 1] intensity units."""
        seq = self.sequence(frames, horizon)
        b, k, _, h, w = seq.frames.shape
        if seq.log_scale is None:
            return seq.frames, seq.frames.new_zeros(b, k, h, w)
        return seq.frames, laplace_std01(seq.log_scale.flatten(0, 1)).reshape(b, k, h, w)


def _mix(prediction: torch.Tensor, truth: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per sample: the true frame with probability ``ratio``, else the prediction."""
    if ratio >= 1.0:
        return truth
    use_truth = torch.rand(prediction.shape[0], 1, 1, 1, device=prediction.device) < ratio
    return torch.where(use_truth, truth, prediction)
