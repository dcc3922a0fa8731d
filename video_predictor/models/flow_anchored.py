"""Flow-anchored multi-scale predictor: classical flow extrapolation plus learned corrections.

The classical optical flow of the newest frame pair (computed before the graph, an input
of the exported ONNX graph: ``predictor.flow_input``) is extrapolated as the evaluator's
flow baseline does: frame k ahead samples the newest frame at p + k·flow(p). A multi-scale
network in the structure of Mathieu, Couprie & LeCun (2015) (coarse to fine, each scale
refining the upsampled output of the coarser one) learns, per pixel,

- a correction of the flow,
- a gain per horizon step (how the motion extrapolates: slowing down, speeding up),
- a blend per step of the flow-warped and the newest frame (still areas, occlusions,
  unreliable flow),
- a residual per step for what warping cannot explain (new content), and
- a Laplace log-scale per step: the uncertainty, high where flow fails.

All K frames come from one pass, so the cost does not grow with K the way a recursive
rollout's does. The last layer of every scale starts at zero, so the untrained model *is*
the flow baseline, and training can only add what flow cannot do (FINDINGS.md, round 2).
The network sees the newest frames, the flow, and how well the flow explains the newest
pair (|newest − previous warped by the flow|) next to how well copying does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from video_predictor.models.family_config import DictConfig
from video_predictor.models.modules.blocks import conv_stack, downsample, warp_many
from video_predictor.models.modules.step_output import INITIAL_LOG_SCALE, MAX_STD01, StepOutput
from video_predictor.models.multiscale import ScaleConfig

# Laplace scale at initialisation, in [-1, 1] units (about 3 grey levels of std).


@dataclass
class FlowAnchoredConfig(DictConfig):
    input_frames: int = 4
    channels: int = 3
    horizon: int = 5  # K frames per pass; a graph may use the first k <= K
    heteroscedastic: bool = True
    frames_seen: int = 2  # newest frames stacked into the network's input (<= input_frames)
    # How well constant motion explains the past: |newest − frame t−j warped by j·flow| for
    # j = 1..consistency_frames (<= input_frames − 1; 0 = all past frames). Where motion
    # changes from frame to frame the error grows with j, and extrapolating it is a gamble.
    consistency_frames: int = 0
    flow_scale: float = 0.25  # flow in pixels -> network input units
    # Frame-wide means of the flow and of the motion-consistency and copy errors, as extra
    # constant input maps: whether the whole view moves steadily (a pan: extrapolate) or
    # shakes in place (copy) is a property of the frame, which 3x3 layers see only locally.
    global_features: bool = False
    # Resolution factor of the finest network scale: 2 = half resolution, its control maps
    # upsampled to full resolution (the frames are still warped at full resolution).
    finest_factor: int = 2
    # Coarse to fine: the i-th of n scales works at 1 / 2**(n-1-i) of full resolution.
    # Wide layers at the coarse scales, a thin full-resolution scale (FINDINGS.md).
    scales: list[ScaleConfig] = field(
        default_factory=lambda: [
            ScaleConfig([24, 24], [3, 3, 3]),
            ScaleConfig([16, 16], [3, 3, 3]),
            ScaleConfig([8], [3, 3]),
        ]
    )

    def __post_init__(self) -> None:
        if self.input_frames < 2 or self.channels not in (1, 3) or not self.scales or self.horizon < 1:
            raise ValueError("need input_frames >= 2, channels 1 or 3, horizon >= 1 and at least one scale")
        if self.finest_factor not in (1, 2, 4):
            raise ValueError(f"finest_factor must be 1, 2 or 4, got {self.finest_factor}")
        if not 0 <= self.consistency_frames < self.input_frames:
            raise ValueError(f"consistency_frames must be in 0..input_frames-1 (0: all), got {self.consistency_frames}")
        if not 1 <= self.frames_seen <= self.input_frames:
            raise ValueError(f"frames_seen must be in 1..input_frames, got {self.frames_seen}")
        self.scales = [s if isinstance(s, ScaleConfig) else ScaleConfig(**s) for s in self.scales]

    @property
    def past_frames_checked(self) -> int:
        return self.consistency_frames or self.input_frames - 1

    @property
    def divisor(self) -> int:
        """Height and width must be multiples of this."""
        return self.finest_factor * 2 ** (len(self.scales) - 1)


def _upsample_controls(controls: torch.Tensor, factor: int) -> torch.Tensor:
    """Control maps at ``factor`` times the resolution (bilinear); the flow correction, in
    pixels, scaled with it."""
    up = nn.functional.interpolate(controls, scale_factor=float(factor), mode="bilinear", align_corners=False)
    return torch.cat([up[:, :2] * float(factor), up[:, 2:]], dim=1)


class Controls:
    """Channel layout of the per-pixel control maps every scale refines."""

    def __init__(self, horizon: int, channels: int, heteroscedastic: bool) -> None:
        k, c = horizon, channels
        self.flow = slice(0, 2)
        self.gain = slice(2, 2 + k)
        self.blend = slice(2 + k, 2 + 2 * k)
        self.residual = slice(2 + 2 * k, 2 + 2 * k + k * c)
        end = 2 + 2 * k + k * c
        self.log_scale = slice(end, end + k) if heteroscedastic else None
        self.count = end + (k if heteroscedastic else 0)


class FlowAnchoredPredictor(nn.Module):
    """(frames, flow) -> K future frames in one pass; ``rollout`` is the graph's entry point."""

    flow_input = True

    def __init__(self, config: FlowAnchoredConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.controls = Controls(config.horizon, c, config.heteroscedastic)
        # frames seen, flow (2), constant-motion errors (one per past frame checked), copy error
        features = config.frames_seen * c + 3 + config.past_frames_checked
        if config.global_features:  # their frame-wide means: flow (2), |flow|, errors, copy error
            features += 4 + config.past_frames_checked
        self.scales = nn.ModuleList()
        for i, scale in enumerate(config.scales):
            coarser = 0 if i == 0 else self.controls.count
            self.scales.append(conv_stack(features + coarser, scale.features, scale.kernels, self.controls.count))
        for stack in self.scales:  # start as the flow baseline
            nn.init.zeros_(stack[-1].weight)
            nn.init.zeros_(stack[-1].bias)
        # Per-step std multiplier, fitted after training on held-out clips (training.calibrate).
        self.register_buffer("sigma_calibration", torch.ones(config.horizon))

    def _features(self, frames: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        last, prev = frames[:, -1], frames[:, -2]
        b, _, c, h, w = frames.shape
        seen = frames[:, -self.config.frames_seen:].reshape(b, self.config.frames_seen * c, h, w)
        # past frame t−j warped by j·flow: the newest frame again where the motion is constant.
        # The j past frames go through one warp as a batch of B·j images (fewer graph kernels).
        j = self.config.past_frames_checked
        past = frames[:, -1 - j : -1].flip(1).reshape(b * j, c, h, w)  # t−1, t−2, ..., t−j
        multiples = torch.arange(1, j + 1, dtype=flow.dtype, device=flow.device).view(1, j, 1, 1, 1)
        warped = warp_many(past, (flow.unsqueeze(1) * multiples).reshape(b * j, 1, 2, h, w)).reshape(b, j, c, h, w)
        errors = (last.unsqueeze(1) - warped).abs().mean(dim=2)  # (B, j, H, W)
        copy_error = (last - prev).abs().mean(dim=1, keepdim=True)
        motion = [flow * self.config.flow_scale, errors, copy_error]
        if self.config.global_features:
            speed = flow.norm(dim=1, keepdim=True) * self.config.flow_scale
            means = torch.cat([m.mean(dim=(2, 3), keepdim=True) for m in (motion[0], speed, errors, copy_error)], dim=1)
            motion.append(means.expand(-1, -1, h, w))  # constant maps (B, n, H, W)
        return torch.cat([seen, *motion], dim=1)

    def forward(self, frames: torch.Tensor, flow: torch.Tensor, horizon: int | None = None, all_scales: bool = True) -> StepOutput:
        """frames (B, N, C, H, W) in [-1, 1]; flow (B, 2, H, W) backward flow newest -> previous
        in pixels per prediction period. Returns per-scale predictions (B, k, C, h, w), coarse
        to fine (only the finest unless ``all_scales``), and the finest log-scale (B, k, H, W)."""
        _, _, c, h, w = frames.shape
        k = self.config.horizon if horizon is None else horizon
        if not 1 <= k <= self.config.horizon:
            raise ValueError(f"horizon must be in 1..{self.config.horizon}: the model predicts that many steps in one pass (its config horizon), got {k}")
        d = self.config.divisor
        if not torch.jit.is_tracing() and (h % d or w % d):
            raise ValueError(f"height and width must be multiples of {d}, got {h}x{w}")
        features = self._features(frames, flow)
        last = frames[:, -1]
        n = len(self.scales)
        controls = None
        predictions: list[torch.Tensor] = []
        change = frames.new_zeros(())
        roughness = frames.new_zeros(())
        for i, stack in enumerate(self.scales):
            factor = self.config.finest_factor * 2 ** (n - 1 - i)
            inputs = [downsample(features, factor)]
            if controls is not None:
                controls = _upsample_controls(controls, 2)
                inputs.append(controls)
            out = stack(torch.cat(inputs, dim=1))
            controls = out if controls is None else controls + out
            if not all_scales:  # inference: the finest frames only, no training priors
                continue
            change = change + out[:, : 2 + 2 * self.config.horizon].abs().mean()
            corr = controls[:, self.controls.flow]
            roughness = roughness + (corr[..., 1:, :] - corr[..., :-1, :]).abs().mean() + (corr[..., 1:] - corr[..., :-1]).abs().mean()
            if i < n - 1 or self.config.finest_factor > 1:  # this scale's frames, for the multi-scale loss
                predictions.append(self._frames(downsample(last, factor), downsample(flow, factor) / factor, controls, k))
        if self.config.finest_factor > 1:  # frames are warped at full resolution
            controls = _upsample_controls(controls, self.config.finest_factor)
        predictions.append(self._frames(last, flow, controls, k))
        log_scale = None
        if self.controls.log_scale is not None:
            log_scale = controls[:, self.controls.log_scale][:, :k] + INITIAL_LOG_SCALE
        return StepOutput(predictions, log_scale, change, roughness)

    def _frames(self, last: torch.Tensor, flow: torch.Tensor, controls: torch.Tensor, k: int) -> torch.Tensor:
        """The k frames at one scale: warp by k·(flow + correction)·(1 + gain), blend with the
        newest frame, add the residual. (B, k, C, h, w) in [-1, 1]."""
        cc = self.controls
        b, c, h, w = last.shape
        corrected = (flow + controls[:, cc.flow]).unsqueeze(1)  # (B, 1, 2, h, w)
        steps = torch.arange(1, k + 1, dtype=last.dtype, device=last.device).view(1, k, 1, 1, 1)
        gains = controls[:, cc.gain][:, :k].unsqueeze(2)  # (B, k, 1, h, w)
        blends = controls[:, cc.blend][:, :k].unsqueeze(2)
        residuals = torch.tanh(controls[:, cc.residual]).reshape(b, self.config.horizon, c, h, w)[:, :k]
        warped = warp_many(last, corrected * steps * (1.0 + gains))  # (B, k, C, h, w)
        blended = warped + blends * (last.unsqueeze(1) - warped)
        return torch.clamp(blended + residuals, -1.0, 1.0)

    def rollout(self, frames: torch.Tensor, horizon: int, flow: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """K frames (B, K, C, H, W) in [-1, 1] and their std (B, K, H, W) in [0, 1] units."""
        if flow is None:
            raise ValueError("the flow-anchored model needs the flow input")
        predictions, log_scale, *_ = self(frames, flow, horizon, all_scales=False)
        predicted = predictions[-1]
        if log_scale is None:
            return predicted, torch.zeros_like(predicted[:, :, 0])
        # Laplace std sqrt(2)·b, b in [-1, 1] units -> [0, 1] units: / 2
        std = (math.sqrt(2.0) / 2.0) * torch.exp(log_scale.clamp(-12.0, 3.0)) * self.sigma_calibration[:horizon, None, None]
        return predicted, std.clamp(max=MAX_STD01)
