"""Building blocks of SVG (Denton & Fergus 2018) as in the authors' code (edenton/svg):
DCGAN- and VGG-style frame encoders/decoders with skip connections, and fully connected
LSTMs (a deterministic one for the frame predictor, a Gaussian one for posterior and prior).

The LSTMs keep their state explicit (passed in and returned) rather than in the module,
so that one network can run a batch of B·S sample paths and be traced for ONNX.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LSTMState = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (h, c), each (B, hidden)
BACKBONES = ("dcgan", "vgg")


def _levels(size: int) -> int:
    """Down-sampling stages from ``size`` to the 4x4 map the last 4x4 convolution collapses."""
    levels = int(round(math.log2(size / 4))) if size >= 8 else 0
    if size < 8 or 4 * 2**levels != size:
        raise ValueError(f"svg: frame size must be a power of two >= 8 (64 or 128 in the paper), got {size}")
    return levels


def level_widths(size: int, filters: int) -> list[int]:
    """Channels per encoder level: filters * 1, 2, 4, 8, 8, ... (the authors' 64 and 128 nets)."""
    return [filters * min(2**i, 8) for i in range(_levels(size))]


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, padding: int, transposed: bool = False) -> nn.Sequential:
    conv = (nn.ConvTranspose2d if transposed else nn.Conv2d)(c_in, c_out, kernel, stride, padding)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True))


class FrameEncoder(nn.Module):
    """Frame (B, C, size, size) in [0, 1] -> (code (B, dim) in [-1, 1], skips: one feature map per level)."""

    def __init__(self, channels: int, size: int, dim: int, filters: int, backbone: str = "dcgan") -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"svg: backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
        widths = level_widths(size, filters)
        self.backbone = backbone
        self.stages = nn.ModuleList()
        c_in = channels
        for i, width in enumerate(widths):
            if backbone == "dcgan":  # one stride-2 4x4 convolution per level
                self.stages.append(_conv_bn(c_in, width, 4, 2, 1))
            else:  # VGG: 2 or 3 3x3 convolutions at the level's resolution, max-pooled before the next
                depth = 2 if i < 2 else 3
                self.stages.append(nn.Sequential(*(_conv_bn(c_in if j == 0 else width, width, 3, 1, 1) for j in range(depth))))
            c_in = width
        self.pool = nn.MaxPool2d(2) if backbone == "vgg" else nn.Identity()
        self.head = nn.Sequential(nn.Conv2d(c_in, dim, 4, 1, 0), nn.BatchNorm2d(dim), nn.Tanh())
        self.dim = dim

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = frame
        for i, stage in enumerate(self.stages):
            x = stage(self.pool(x) if i > 0 else x)
            skips.append(x)
        return self.head(self.pool(x)).flatten(1), skips


class FrameDecoder(nn.Module):
    """(code (B, dim), encoder skips) -> frame (B, C, size, size) in [0, 1] (sigmoid); with
    ``scale_head`` one more, unbounded channel: a per-pixel Laplace log-scale."""

    def __init__(self, channels: int, size: int, dim: int, filters: int, backbone: str = "dcgan", scale_head: bool = False) -> None:
        super().__init__()
        self.channels = channels
        out_channels = channels + int(scale_head)
        if backbone not in BACKBONES:
            raise ValueError(f"svg: backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
        widths = level_widths(size, filters)
        self.backbone = backbone
        self.dim = dim
        self.head = _conv_bn(dim, widths[-1], 4, 1, 0, transposed=True)  # 1x1 -> 4x4
        self.stages = nn.ModuleList()
        # From the coarsest level up: each stage sees [decoder features, the encoder's skip].
        for i in range(len(widths) - 1, -1, -1):
            c_in = 2 * widths[i]
            if i == 0:  # last stage: to the image
                if backbone == "dcgan":
                    out = nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1)
                else:
                    out = nn.Sequential(_conv_bn(c_in, widths[0], 3, 1, 1), nn.ConvTranspose2d(widths[0], out_channels, 3, 1, 1))
                self.stages.append(nn.Sequential(out))  # the sigmoid is applied in forward, to the frame's channels only
            elif backbone == "dcgan":
                self.stages.append(_conv_bn(c_in, widths[i - 1], 4, 2, 1, transposed=True))
            else:
                depth = 2 if i < 2 else 3  # the authors' vgg decoder: 3, 3, 2 layers, then the image stage
                layers = [_conv_bn(c_in if j == 0 else widths[i], widths[i], 3, 1, 1) for j in range(depth - 1)]
                layers.append(_conv_bn(widths[i], widths[i - 1], 3, 1, 1))
                self.stages.append(nn.Sequential(*layers))
        self.up = nn.Upsample(scale_factor=2, mode="nearest") if backbone == "vgg" else nn.Identity()

    def forward(self, code: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        x = self.head(code.reshape(code.shape[0], self.dim, 1, 1))
        # dcgan: the stride-2 transposed convolutions up-sample; vgg: nearest up-sampling before each stage.
        for stage, skip in zip(self.stages, reversed(skips)):
            x = stage(torch.cat([self.up(x), skip], dim=1))
        if x.shape[1] == self.channels:
            return torch.sigmoid(x)
        return torch.cat([torch.sigmoid(x[:, : self.channels]), x[:, self.channels :]], dim=1)


class LSTMCell(nn.Module):
    """A fully connected LSTM cell; one linear map computes the four gates from [x, h]."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Linear(in_features + hidden, 4 * hidden)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class _EmbeddedLSTM(nn.Module):
    """Linear embedding, then stacked LSTM cells (the authors' ``lstm`` and ``gaussian_lstm`` body)."""

    def __init__(self, in_features: int, hidden: int, layers: int) -> None:
        super().__init__()
        if hidden < 1 or layers < 1:
            raise ValueError(f"svg: LSTM needs hidden >= 1 and layers >= 1, got {hidden}, {layers}")
        self.hidden = hidden
        self.embed = nn.Linear(in_features, hidden)
        self.cells = nn.ModuleList(LSTMCell(hidden, hidden) for _ in range(layers))

    def initial_state(self, like: torch.Tensor) -> LSTMState:
        zeros = like.new_zeros(like.shape[0], self.hidden)
        return [(zeros, zeros) for _ in self.cells]

    def _run(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        h_in = self.embed(x)
        new_state = []
        for cell, layer_state in zip(self.cells, state):
            h, c = cell(h_in, layer_state)
            new_state.append((h, c))
            h_in = h
        return h_in, new_state


class PredictorLSTM(_EmbeddedLSTM):
    """The frame predictor: [h_{t-1}, z_t] -> the next frame's code, tanh like the encoder's."""

    def __init__(self, in_features: int, out_features: int, hidden: int, layers: int) -> None:
        super().__init__(in_features, hidden, layers)
        self.output = nn.Sequential(nn.Linear(hidden, out_features), nn.Tanh())

    def forward(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        top, state = self._run(x, state)
        return self.output(top), state


class GaussianLSTM(_EmbeddedLSTM):
    """Posterior q(z_t | x_1:t) or learned prior p(z_t | x_1:t-1): a code -> (mu, logvar) of z_t."""

    def __init__(self, in_features: int, z_dim: int, hidden: int, layers: int) -> None:
        super().__init__(in_features, hidden, layers)
        self.mu = nn.Linear(hidden, z_dim)
        self.logvar = nn.Linear(hidden, z_dim)

    def forward(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        top, state = self._run(x, state)
        return self.mu(top), self.logvar(top), state


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) per element (>= 0), the authors' ``kl_criterion`` before its sum."""
    return 0.5 * (logvar_p - logvar_q) + (logvar_q.exp() + (mu_q - mu_p) ** 2) / (2.0 * logvar_p.exp()) - 0.5
