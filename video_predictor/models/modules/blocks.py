"""Reusable building blocks for the predictor networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_stack(in_channels: int, features: list[int], kernels: list[int], out_channels: int) -> nn.Sequential:
    """Convolutions with ReLU between them; ``kernels`` has one more entry than ``features``
    (the last maps to ``out_channels``). 'Same' padding keeps the stack fully convolutional."""
    if len(kernels) != len(features) + 1:
        raise ValueError(f"need {len(features) + 1} kernel sizes for features {features}, got {kernels}")
    layers: list[nn.Module] = []
    channels = [in_channels, *features]
    for c_in, c_out, k in zip(channels[:-1], channels[1:], kernels[:-1]):
        layers += [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(channels[-1], out_channels, kernels[-1], padding=kernels[-1] // 2))
    return nn.Sequential(*layers)


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Area downsampling (mean over factor x factor blocks)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: out(p) = image(p + flow(p)), bilinear, border replicated.

    flow: (B, 2, H, W) in pixels, channel 0 = x, channel 1 = y.
    """
    _, _, h, w = image.shape
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, dtype=image.dtype, device=image.device)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, dtype=image.dtype, device=image.device)
    base_y, base_x = torch.meshgrid(ys, xs, indexing="ij")
    grid_x = base_x + flow[:, 0] * (2.0 / w)
    grid_y = base_y + flow[:, 1] * (2.0 / h)
    grid = torch.stack((grid_x, grid_y), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def warp_many(image: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
    """Backward warp of one image by several flows: out[:, k](p) = image(p + flows[:, k](p)),
    bilinear, border replicated; the same numbers as ``warp`` (grid_sample).

    image (B, C, H, W), flows (B, K, 2, H, W) in pixels -> (B, K, C, H, W). Written with
    gathers: ONNX Runtime's GridSample kernel costs ~0.4 ms per 64x64 RGB warp on a CPU
    core, the gathers a fraction of that.
    """
    b, c, h, w = image.shape
    if h < 2 or w < 2:
        raise ValueError(f"warping needs an image of at least 2x2 pixels, got {h}x{w} (too many scales for this size?)")
    k = flows.shape[1]
    xs = torch.arange(w, dtype=image.dtype, device=image.device).view(1, 1, 1, w)
    ys = torch.arange(h, dtype=image.dtype, device=image.device).view(1, 1, h, 1)
    x = (xs + flows[:, :, 0]).clamp(0, w - 1)  # (B, K, H, W): border replicated
    y = (ys + flows[:, :, 1]).clamp(0, h - 1)
    x0 = x.floor().clamp(max=w - 2)
    y0 = y.floor().clamp(max=h - 2)
    fx = (x - x0).unsqueeze(1)  # (B, 1, K, H, W), the layout of the gathered corners
    fy = (y - y0).unsqueeze(1)
    index = (y0 * w + x0).long().reshape(b, 1, k * h * w).expand(b, c, k * h * w)
    flat = image.reshape(b, c, h * w)

    def corner(offset: int) -> torch.Tensor:
        return torch.gather(flat, 2, index + offset).reshape(b, c, k, h, w)

    v00, v01, v10, v11 = corner(0), corner(1), corner(w), corner(w + 1)
    top = v00 + fx * (v01 - v00)
    bottom = v10 + fx * (v11 - v10)
    return (top + fy * (bottom - top)).transpose(1, 2)


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions with ReLU: one U-Net level."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )
