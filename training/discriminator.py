"""The multi-scale discriminator of Mathieu, Couprie & LeCun (2015).

One network per scale (1/8, 1/4, 1/2, 1 of the training patch), each a convolution stack,
a 2x2 max-pool (except on the coarsest scale, which is only a few pixels wide) and fully
connected layers down to one logit. Every scale sees the input frames together with the
real or predicted next frame at its resolution, so it judges whether the continuation is
coherent with the past, not only whether a frame looks real. Offline only: the node never
runs it, so it lives in ``training/``.

Fully connected layers fix the input size: D is built for the training patch size, while the
fully convolutional generator still runs on whole frames at test time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from video_predictor.models.family_config import DictConfig
from video_predictor.models.modules.blocks import downsample


@dataclass
class DiscriminatorScale:
    features: list[int]
    kernels: list[int]
    fully_connected: list[int]


def _paper_scales() -> list[DiscriminatorScale]:
    # Table 1 of the paper (32x32 patches), coarse to fine.
    return [
        DiscriminatorScale([64], [3], [512, 256]),
        DiscriminatorScale([64, 128, 128], [3, 3, 3], [1024, 512]),
        DiscriminatorScale([128, 256, 256], [5, 5, 5], [1024, 512]),
        DiscriminatorScale([128, 256, 512, 128], [7, 7, 5, 5], [1024, 512]),
    ]


@dataclass
class DiscriminatorConfig(DictConfig):
    input_frames: int = 4
    channels: int = 3
    height: int = 32  # the training patch (or frame) size D judges
    width: int = 32
    width_multiplier: float = 1.0
    scales: list[DiscriminatorScale] = field(default_factory=_paper_scales)

    def __post_init__(self) -> None:
        self.scales = [s if isinstance(s, DiscriminatorScale) else DiscriminatorScale(**s) for s in self.scales]
        for scale in self.scales:
            if len(scale.features) != len(scale.kernels):
                raise ValueError(f"discriminator scale needs one kernel per feature map count, got {scale}")
        divisor = 2 ** (len(self.scales) - 1)
        if self.height % divisor or self.width % divisor:
            raise ValueError(f"discriminator input {self.height}x{self.width} must be a multiple of {divisor}")


class ScaleDiscriminator(nn.Module):
    """Convolutions, optional 2x2 max-pool, fully connected layers, one logit."""

    def __init__(self, in_channels: int, size: tuple[int, int], scale: DiscriminatorScale, multiplier: float, pool: bool) -> None:
        super().__init__()
        features = [max(1, round(f * multiplier)) for f in scale.features]
        layers: list[nn.Module] = []
        channels = in_channels
        for c_out, k in zip(features, scale.kernels):
            layers += [nn.Conv2d(channels, c_out, k, padding=k // 2), nn.ReLU(inplace=True)]
            channels = c_out
        if pool:
            layers.append(nn.MaxPool2d(2))
        self.convs = nn.Sequential(*layers)
        h, w = (size[0] // 2, size[1] // 2) if pool else size
        fc: list[nn.Module] = []
        width = channels * h * w
        for units in scale.fully_connected:
            fc += [nn.Linear(width, max(1, round(units * multiplier))), nn.ReLU(inplace=True)]
            width = max(1, round(units * multiplier))
        fc.append(nn.Linear(width, 1))
        self.fully_connected = nn.Sequential(*fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fully_connected(self.convs(x).flatten(1)).squeeze(1)


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        in_channels = (config.input_frames + 1) * config.channels
        levels = len(config.scales)
        self.scales = nn.ModuleList()
        for i, scale in enumerate(config.scales):
            factor = 2 ** (levels - 1 - i)
            size = (config.height // factor, config.width // factor)
            self.scales.append(ScaleDiscriminator(in_channels, size, scale, config.width_multiplier, pool=i > 0))

    def forward(self, window: torch.Tensor, next_frames: list[torch.Tensor]) -> list[torch.Tensor]:
        """Logits (B,) per scale, coarse to fine: is ``next_frames[s]`` the real continuation?

        window: (B, N, C, H, W) observed frames in [-1, 1]; next_frames: one (B, C, h, w)
        frame per scale, as the generator's ``predictions`` list (or the real frame
        downsampled alike).
        """
        b, n, c, h, w = window.shape
        if (h, w) != (self.config.height, self.config.width):
            raise ValueError(f"discriminator built for {self.config.height}x{self.config.width} inputs, got {h}x{w}")
        stacked = window.reshape(b, n * c, h, w)
        levels = len(self.scales)
        logits = []
        for i, (net, frame) in enumerate(zip(self.scales, next_frames)):
            past = downsample(stacked, 2 ** (levels - 1 - i))
            logits.append(net(torch.cat([past, frame], dim=1)))
        return logits
