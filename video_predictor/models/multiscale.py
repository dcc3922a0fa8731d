"""Multi-scale generator of Mathieu, Couprie & LeCun (2015), "Deep multi-scale video
prediction beyond mean square error".

Four scales (1/8, 1/4, 1/2, 1). Each scale's network sees the stacked input frames at its
resolution plus the upsampled prediction of the coarser scale; the whole network is fully
convolutional and predicts one frame, applied recursively for K steps.

Two output heads:
- ``pixels``: the paper's form, a tanh image per scale.
- ``warp`` (default): each scale refines a flow field that warps the last observed frame,
  plus a tanh residual for what warping cannot explain. Its last layers start at zero, so
  an untrained model copies the last frame and learning only adds motion (see FINDINGS.md).
Both heads can also emit a per-pixel Laplace log-scale (heteroscedastic uncertainty).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from video_predictor.models.family_config import DictConfig
from video_predictor.models.modules.blocks import conv_stack, downsample, upsample2, warp
from video_predictor.models.modules.step_output import INITIAL_LOG_SCALE, StepOutput, laplace_std01

HEADS = ("warp", "pixels")
# Laplace scale at initialisation, in [-1, 1] units (about 3 grey levels of std).


@dataclass
class ScaleConfig:
    features: list[int]
    kernels: list[int]


@dataclass
class MultiScaleConfig(DictConfig):
    input_frames: int = 4
    channels: int = 3
    head: str = "warp"
    width_multiplier: float = 1.0
    heteroscedastic: bool = True
    # Coarse to fine: the i-th of n scales works at 1 / 2**(n-1-i) of full resolution.
    scales: list[ScaleConfig] = field(
        default_factory=lambda: [
            ScaleConfig([32, 64, 32], [3, 3, 3, 3]),
            ScaleConfig([32, 64, 32], [3, 3, 3, 3]),
            ScaleConfig([16, 32, 16], [3, 3, 3, 3]),
            ScaleConfig([8, 16, 8], [3, 3, 3, 3]),
        ]
    )

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.input_frames < 1 or self.channels not in (1, 3) or not self.scales:
            raise ValueError("need input_frames >= 1, channels 1 or 3 and at least one scale")
        self.scales = [s if isinstance(s, ScaleConfig) else ScaleConfig(**s) for s in self.scales]

    @property
    def divisor(self) -> int:
        """Height and width must be multiples of this."""
        return 2 ** (len(self.scales) - 1)


class MultiScaleGenerator(nn.Module):
    """Predicts the next frame from N frames; ``rollout`` applies it K times."""

    def __init__(self, config: MultiScaleConfig) -> None:
        super().__init__()
        self.config = config
        c, n = config.channels, config.input_frames
        # warp head: 2 flow + C residual; pixels head: C image. Plus 1 log-scale channel.
        self._image_channels = c if config.head == "pixels" else 2 + c
        out_channels = self._image_channels + (1 if config.heteroscedastic else 0)
        self.scales = nn.ModuleList()
        for i, scale in enumerate(config.scales):
            features = [max(1, round(f * config.width_multiplier)) for f in scale.features]
            coarser = 0 if i == 0 else (c if config.head == "pixels" else c + 2)
            self.scales.append(conv_stack(n * c + coarser, features, scale.kernels, out_channels))
        if config.head == "warp":
            for stack in self.scales:  # start as copy-last-frame
                nn.init.zeros_(stack[-1].weight)
                nn.init.zeros_(stack[-1].bias)
        if config.heteroscedastic:
            for stack in self.scales:
                with torch.no_grad():
                    stack[-1].bias[-1].fill_(INITIAL_LOG_SCALE)

    def forward(self, frames: torch.Tensor) -> StepOutput:
        """One step. frames: (B, N, C, H, W) in [-1, 1]."""
        b, n, c, h, w = frames.shape
        d = self.config.divisor
        if not torch.jit.is_tracing() and (h % d or w % d):
            raise ValueError(f"height and width must be multiples of {d}, got {h}x{w}")
        stacked = frames.reshape(b, n * c, h, w)
        last = frames[:, -1]
        predictions: list[torch.Tensor] = []
        flow = prediction = log_scale = None
        change = frames.new_zeros(())
        roughness = frames.new_zeros(())
        for i, stack in enumerate(self.scales):
            factor = 2 ** (len(self.scales) - 1 - i)
            inputs = [downsample(stacked, factor)]
            if prediction is not None:
                prediction = upsample2(prediction)
                inputs.append(prediction)
                if flow is not None:
                    flow = upsample2(flow) * 2.0  # pixels at the finer scale
                    inputs.append(flow)
            out = stack(torch.cat(inputs, dim=1))
            image_out = out[:, : self._image_channels]
            if self.config.head == "pixels":
                prediction = torch.tanh(image_out)
            else:
                flow = image_out[:, :2] if flow is None else flow + image_out[:, :2]
                residual = torch.tanh(image_out[:, 2:])
                prediction = torch.clamp(warp(downsample(last, factor), flow) + residual, -1.0, 1.0)
                change = change + image_out[:, :2].abs().mean() + residual.abs().mean()
                roughness = roughness + (flow[..., 1:, :] - flow[..., :-1, :]).abs().mean() + (flow[..., 1:] - flow[..., :-1]).abs().mean()
            predictions.append(prediction)
            if self.config.heteroscedastic:
                log_scale = out[:, -1:]
        return StepOutput(predictions, log_scale, change, roughness)

    def rollout(self, frames: torch.Tensor, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Recursive K-step prediction.

        frames: (B, N, C, H, W) in [-1, 1]. Returns predicted frames (B, K, C, H, W) in
        [-1, 1] and their per-pixel standard deviation (B, K, H, W) in [0, 1] intensity units.
        """
        window = frames
        outputs, stds = [], []
        for _ in range(horizon):
            predictions, log_scale, *_ = self(window)
            nxt = predictions[-1]
            outputs.append(nxt)
            stds.append(laplace_std01(log_scale) if log_scale is not None else torch.zeros_like(nxt[:, 0]))
            window = torch.cat([window[:, 1:], nxt.unsqueeze(1)], dim=1)
        return torch.stack(outputs, dim=1), torch.stack(stds, dim=1)
