"""Losses of Mathieu et al. (2015) plus the heteroscedastic likelihood, each per scale."""

from __future__ import annotations

import torch


def lp_loss(pred: torch.Tensor, target: torch.Tensor, p: int = 2) -> torch.Tensor:
    """Mean |pred - target|^p (p = 1 or 2)."""
    diff = (pred - target).abs()
    return diff.mean() if p == 1 else diff.pow(p).mean()


def log_mse_loss(pred: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean over frames of log(MSE + eps): the evaluation's metric, PSNR averaged in dB per
    frame, up to sign and scale. Unlike the pooled MSE it weighs a 1-grey-level error on a
    nearly still frame as much as a 10-level error on a fast one. pred, target (B, C, H, W)."""
    mse = (pred - target).pow(2).flatten(1).mean(dim=1)
    return torch.log(mse + eps).mean()


def gradient_difference_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """GDL: penalises differences of neighbouring-pixel gradients, which sharpens predictions."""
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x[..., 1:, :] - x[..., :-1, :]).abs(), (x[..., :, 1:] - x[..., :, :-1]).abs()

    pred_y, pred_x = grads(pred)
    target_y, target_x = grads(target)
    return (pred_y - target_y).abs().pow(alpha).mean() + (pred_x - target_x).abs().pow(alpha).mean()


def laplace_nll(error: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of |error| under Laplace(0, b), b = exp(log_scale), up to a constant.

    error: (B, C, H, W) absolute error, detached from the mean so the uncertainty head
    learns to describe the predictor's error without changing the prediction itself.
    log_scale: (B, 1, H, W); the per-pixel error is the channel mean.
    """
    log_scale = log_scale.clamp(-12.0, 3.0)
    return (error.mean(dim=1, keepdim=True) * torch.exp(-log_scale) + log_scale).mean()
