"""The training loop: one Trainer owns a run's method (model and optimisers), learning-rate
schedule, EMA weights, step count and checkpoint state; callbacks (training.engine.callbacks)
report and write files at its hooks."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.model_file import FORMAT, load_model_file

from ..calibrate import fit_sigma_calibration
from ..config import TrainConfig
from ..data.pool import ClipPool
from ..distributed import DistributedContext, wrap_for_training
from ..errors import NonFiniteLossError, TrainingError
from ..methods import TrainingMethod
from ..methods.generator import FLOW_METHOD
from .callbacks import Callback
from .checkpoint import cpu_state
from .schedule import apply_schedule
from .setup import build_method, load_initial_weights, make_metadata, seed_everything

log = logging.getLogger("training.train")  # the run's messages keep the logger name they always had

# validate(model, clips, input_frames, horizon, device) -> scores (training.train.validate)
Validator = Callable[[nn.Module, np.ndarray, int, int, torch.device], dict]


class Trainer:
    """Runs ``config.optim.steps`` steps of ``method`` and returns the network to ship.

    Per step: set the scheduled learning rates, take the method's step, update the EMA,
    stop on a non-finite loss (NonFiniteLossError), then call the callbacks' ``on_step_end``;
    every ``checkpoint_every`` steps ``on_checkpoint``; every ``val_every`` steps and after
    the last one, on rank 0, ``validate`` and ``on_validation``. After the loop the shipped
    network's std is calibrated (where it has one) and ``on_train_end`` runs; ``close`` runs
    on every callback whatever happens.

    One Trainer is one run: ``restore`` (optional) before ``fit``, ``fit`` once.
    """

    def __init__(
        self,
        config: TrainConfig,
        method: TrainingMethod,
        *,
        device: torch.device | None = None,
        context: DistributedContext | None = None,
        callbacks: Sequence[Callback] = (),
        validate: Validator | None = None,
    ) -> None:
        self.config = config
        self.method = method
        self.model = method.model
        self.model_config = self.model.config.to_dict()
        self.device = device or torch.device("cpu")
        self.context = context or DistributedContext()
        self.callbacks = list(callbacks)
        self.validate = validate
        # The averaged weights generalise better than the last iterate's noisy ones.
        # use_buffers: batch-norm statistics (SVG's encoder) are averaged along, not left at their start.
        self.ema = (
            AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.optim.ema), use_buffers=True)
            if config.optim.ema > 0 else None
        )
        self.start_step = 0  # where fit begins: 0, or the restored checkpoint's step
        self.step = 0  # steps done so far
        self.metadata: ModelMetadata | None = None  # set by fit, once the clips (and so the frame period) are known
        self.val_clips: np.ndarray | None = None  # set by fit
        self.started = time.perf_counter()  # reset when the loop starts; callbacks time the run from it

    @classmethod
    def from_config(
        cls, config: TrainConfig, *, init: Path | None = None, device: torch.device | None = None,
        context: DistributedContext | None = None, callbacks: Sequence[Callback] = (), validate: Validator | None = None,
    ) -> "Trainer":
        """Seed the global generators, build the method ``config`` names and (``init``) load a
        model file's weights into it: the seeded start every run of ``config`` shares."""
        seed_everything(config.optim.seed)  # the same on every rank: DDP starts from identical weights anyway
        if config.optim.threads > 0:
            torch.set_num_threads(config.optim.threads)
        method = build_method(config)
        if init is not None:
            load_initial_weights(method.model, config, init)
        return cls(config, method, device=device, context=context, callbacks=callbacks, validate=validate)

    @property
    def shipped(self) -> nn.Module:
        """The network the model file holds: the EMA weights where EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    def checkpoint_payload(self, step: int) -> dict[str, Any]:
        """Everything ``restore`` needs to continue after ``step`` steps exactly as if the run
        had not stopped; a model file too (its state_dict is the shipped network)."""
        if self.metadata is None:
            raise TrainingError("no checkpoint before fit: the model file's metadata needs the clips")
        return {
            "format": FORMAT,
            "metadata": self.metadata.to_dict(),
            "state_dict": cpu_state(self.shipped.state_dict()),
            "training_state": self.method.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "step": step,
            "config": self.config.to_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def restore(self, path: Path) -> None:
        """Continue from the checkpoint at ``path``: weights, optimiser, EMA, step and RNG state.

        Raises TrainingError where there is none."""
        if not path.is_file():
            raise TrainingError(f"--resume: no checkpoint at {path}")
        _, _, payload = load_model_file(path)
        self.method.load_state_dict(payload["training_state"])
        if self.ema is not None:
            self.ema.load_state_dict(payload["ema"])
        self.start_step = self.step = int(payload["step"])
        torch.set_rng_state(payload["torch_rng"])
        log.info("resumed from %s at step %d", path, self.start_step)

    def fit(self, train_clips: np.ndarray, val_clips: np.ndarray) -> nn.Module:
        """Train on ``train_clips`` (uint8 (M, T, H, W, C)), validate and calibrate on
        ``val_clips``; returns the shipped network."""
        try:
            return self._fit(train_clips, val_clips)
        finally:
            for callback in self.callbacks:
                callback.close()

    def _fit(self, train_clips: np.ndarray, val_clips: np.ndarray) -> nn.Module:
        config, context, device = self.config, self.context, self.device
        self._to_device()
        self.val_clips = val_clips
        self.metadata = make_metadata(config, self.model_config)
        # Each rank draws its own share of every step's batch from one shared order.
        pool = ClipPool(
            train_clips, seed=config.optim.seed, patch=config.data.patch, rank=context.rank, world_size=context.world_size,
            patch_motion_threshold=config.data.patch_motion_threshold,
        )
        if context.is_main:
            log.info(
                "preset %s: %s model, %d parameters, %d training clips, %d steps of batch %d x %d process(es) on %s, method %s",
                config.preset, config.model.family, sum(p.numel() for p in self.model.parameters()), len(pool),
                config.optim.steps, config.optim.batch_size, context.world_size, device, config.optim.method,
            )
        for callback in self.callbacks:
            callback.on_train_start(self)

        batches = pool.batches(config.optim.batch_size, self.start_step)
        self.started = time.perf_counter()
        for step in range(self.start_step, config.optim.steps):
            self._train_step(step, next(batches))
            self.step = step + 1
            if self.step % config.optim.checkpoint_every == 0:
                for callback in self.callbacks:
                    callback.on_checkpoint(self, self.step)
            if context.is_main and (self.step % config.optim.val_every == 0 or self.step == config.optim.steps):
                self._validate()
        if hasattr(self.shipped, "sigma_calibration"):  # every rank alike: the same clips give the same numbers
            calibrate(self.shipped, val_clips, config)
        for callback in self.callbacks:
            callback.on_train_end(self, self.step)
        return self.shipped

    def _to_device(self) -> None:
        """Move the networks (and EMA) to the training device and wrap them for DDP."""
        for module in self.method.modules().values():
            module.to(self.device)
        if self.ema is not None:
            self.ema.to(self.device)
        for optimizer in self.method.optimizers().values():  # optimiser state follows its parameters
            optimizer.load_state_dict(optimizer.state_dict())
        self.method.distribute(lambda module: wrap_for_training(module, self.context, self.device))

    def _train_step(self, step: int, batch: torch.Tensor) -> None:
        apply_schedule(self.method.optimizers().values(), self.config, step)
        losses = self.method.train_step(batch.to(self.device, non_blocking=True))
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if not all(math.isfinite(v) for v in losses.values()):
            raise NonFiniteLossError(step, losses)
        for callback in self.callbacks:
            callback.on_step_end(self, step, losses)

    def _validate(self) -> None:
        if self.validate is None:
            return
        scores = self.validate(self.shipped, self.val_clips, self.config.data.input_frames, self.config.export_horizon, self.device)
        for callback in self.callbacks:
            callback.on_validation(self, self.step, scores)


def calibrate(model: nn.Module, clips: np.ndarray, config: TrainConfig) -> None:
    """Fit the per-step std multipliers of ``model`` on the held-out ``clips`` (training.calibrate):
    all validation clips, synthetic and real together. The real ones alone (bigbuckbunny, a clean
    animation) gave multipliers of 0.7 that left a camera clip (carphone) under 0.90 coverage;
    the synthetic clips carry camera noise and JPEG, so the mix stands for camera footage better."""
    device = next(model.parameters()).device
    before, after = fit_sigma_calibration(model, clips, config.data.input_frames, config.export_horizon, FLOW_METHOD)
    model.to(device)
    log.info("calibrated the std on %d held-out clips: coverage(2 sigma) per step %s -> %s", len(clips),
             np.round(before, 3).tolist(), np.round(after, 3).tolist())
