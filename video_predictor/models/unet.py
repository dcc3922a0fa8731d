"""Skip-connection convolutional autoencoder (U-Net, Ronneberger et al. 2015) predicting the
next frame from N stacked frames, applied recursively for K steps.

Encoder levels of two 3x3 convolutions with 2x2 max-pooling between them (feature maps
32-64-128-256-512 at ``width_multiplier`` 1, the seeds' size); the decoder upsamples with
2x2 transposed convolutions and concatenates the encoder's maps of the same resolution.
Like the multi-scale family it can predict a change of the last frame (``residual``, last
layer starting at zero, so an untrained model copies the last frame) and a per-pixel Laplace
log-scale (heteroscedastic uncertainty).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from video_predictor.models.family_config import DictConfig
from video_predictor.models.modules.blocks import double_conv
from video_predictor.models.modules.step_output import INITIAL_LOG_SCALE, StepOutput, laplace_std01


@dataclass
class UNetConfig(DictConfig):
    input_frames: int = 4
    channels: int = 3
    features: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])  # per level, fine to coarse
    width_multiplier: float = 0.25  # 1.0 = the paper-size maps above; 0.25 runs on a CPU
    residual: bool = True  # predict a change of the last frame (else a tanh image)
    heteroscedastic: bool = True

    def __post_init__(self) -> None:
        if self.input_frames < 1 or self.channels not in (1, 3):
            raise ValueError("unet: need input_frames >= 1 and channels 1 or 3")
        if not self.features or any(int(f) < 1 for f in self.features) or self.width_multiplier <= 0:
            raise ValueError(f"unet: need at least one level of positive width and width_multiplier > 0, got {self.features}, {self.width_multiplier}")

    @property
    def divisor(self) -> int:
        """Height and width must be multiples of this."""
        return 2 ** (len(self.features) - 1)


class UNetPredictor(nn.Module):
    """Predicts the next frame from N frames; ``rollout`` applies it K times."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        c, n = config.channels, config.input_frames
        widths = [max(1, round(f * config.width_multiplier)) for f in config.features]
        self.down = nn.ModuleList()
        c_in = n * c
        for width in widths:
            self.down.append(double_conv(c_in, width))
            c_in = width
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for coarse, fine in zip(widths[:0:-1], widths[-2::-1]):  # coarse to fine
            self.up.append(nn.ConvTranspose2d(coarse, fine, 2, stride=2))
            self.merge.append(double_conv(2 * fine, fine))
        self.head = nn.Conv2d(widths[0], c + (1 if config.heteroscedastic else 0), 1)
        with torch.no_grad():
            if config.residual:  # start as copy-last-frame
                self.head.weight.zero_()
                self.head.bias.zero_()
            if config.heteroscedastic:
                self.head.bias[-1].fill_(INITIAL_LOG_SCALE)

    def forward(self, frames: torch.Tensor) -> StepOutput:
        """One step. frames: (B, N, C, H, W) in [-1, 1]."""
        n, c, h, w = frames.shape[1:]
        if not torch.jit.is_tracing():
            if (n, c) != (self.config.input_frames, self.config.channels):
                raise ValueError(f"expected {self.config.input_frames} frames of {self.config.channels} channels, got {n} of {c}")
            d = self.config.divisor
            if h % d or w % d:
                raise ValueError(f"height and width must be multiples of {d}, got {h}x{w}")
        x = frames.flatten(1, 2)  # stack the N frames' channels
        c = self.config.channels  # a constant, so the exported graph's output shape is static
        skips = []
        for i, level in enumerate(self.down):
            x = level(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, skips[-2::-1]):
            x = merge(torch.cat([up(x), skip], dim=1))
        out = self.head(x)
        change = frames.new_zeros(())
        if self.config.residual:
            delta = torch.tanh(out[:, :c])
            prediction = torch.clamp(frames[:, -1] + delta, -1.0, 1.0)
            change = delta.abs().mean()
        else:
            prediction = torch.tanh(out[:, :c])
        log_scale = out[:, c:] if self.config.heteroscedastic else None
        return StepOutput([prediction], log_scale, change, frames.new_zeros(()))

    def rollout(self, frames: torch.Tensor, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Recursive K-step prediction: frames (B, K, C, H, W) in [-1, 1], std (B, K, H, W) in [0, 1] intensity units."""
        window = frames
        outputs, stds = [], []
        for _ in range(horizon):
            predictions, log_scale, *_ = self(window)
            nxt = predictions[-1]
            outputs.append(nxt)
            stds.append(laplace_std01(log_scale) if log_scale is not None else torch.zeros_like(nxt[:, 0]))
            window = torch.cat([window[:, 1:], nxt.unsqueeze(1)], dim=1)
        return torch.stack(outputs, dim=1), torch.stack(stds, dim=1)
