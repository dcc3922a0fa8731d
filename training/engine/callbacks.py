"""What the Trainer reports through: small callbacks, each called at the Trainer's hooks.

Hooks and their ``step`` (see Trainer for when each runs):
  on_train_start(trainer)                 before the first step (after a restore)
  on_step_end(trainer, step, losses)      step: the 0-based index of the step just taken
  on_checkpoint(trainer, step)            step: steps done, every optim.checkpoint_every
  on_validation(trainer, step, scores)    step: steps done; rank 0 only
  on_train_end(trainer, step)             step: steps done, after the std calibration; not after a failure
  close()                                 always, last, also when training fails
Hooks run on every rank (but on_validation); the callbacks here log and write on rank 0 only.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from video_predictor.core.model_file import atomic_torch_save, save_model_file

from .checkpoint import checkpoint_path, cpu_state, model_file_path

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

    from .trainer import Trainer

log = logging.getLogger("training.train")  # the run's messages keep the logger name they always had


class Callback:
    """Base class: every hook does nothing, so a callback overrides only what it needs."""

    def on_train_start(self, trainer: "Trainer") -> None:
        pass

    def on_step_end(self, trainer: "Trainer", step: int, losses: dict[str, float]) -> None:
        pass

    def on_checkpoint(self, trainer: "Trainer", step: int) -> None:
        pass

    def on_validation(self, trainer: "Trainer", step: int, scores: dict) -> None:
        pass

    def on_train_end(self, trainer: "Trainer", step: int) -> None:
        pass

    def close(self) -> None:
        pass


def _log_step(trainer: "Trainer", step: int) -> bool:
    return step % trainer.config.optim.log_every == 0 and trainer.context.is_main


class ProgressBar(Callback):
    """A tqdm bar with the loss and clips/s every optim.log_every steps; without a terminal
    (tqdm disables itself) a log line every 10 x optim.log_every steps instead."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_train_start(self, trainer: "Trainer") -> None:
        self.bar = tqdm(
            total=trainer.config.optim.steps, initial=trainer.start_step, desc="training", dynamic_ncols=True,
            disable=None if trainer.context.is_main else True,
        )

    def on_step_end(self, trainer: "Trainer", step: int, losses: dict[str, float]) -> None:
        assert self.bar is not None
        if _log_step(trainer, step):
            optim = trainer.config.optim
            rate = (step + 1 - trainer.start_step) * optim.batch_size * trainer.context.world_size / (time.perf_counter() - trainer.started)
            self.bar.set_postfix(loss=f"{losses['loss']:.4f}", clips_s=f"{rate:.0f}")
            if self.bar.disable and step % (10 * optim.log_every) == 0:  # no TTY: log instead
                log.info("step %d/%d loss %.4f (%.0f clips/s)", step, optim.steps, losses["loss"], rate)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class LogValidation(Callback):
    """One log line per validation: PSNR and SSIM per horizon of the model and both baselines."""

    def on_validation(self, trainer: "Trainer", step: int, scores: dict) -> None:
        log.info(
            "step %d validation PSNR model %s | copy-last %s | flow %s; SSIM model %s | copy-last %s | flow %s",
            step, scores["model_psnr"], scores["copy_last_psnr"], scores["flow_psnr"],
            scores["model_ssim"], scores["copy_last_ssim"], scores["flow_ssim"],
        )


class TensorBoard(Callback):
    """TensorBoard event files in ``log_dir``: the losses every optim.log_every steps
    (train/<name>), validation scores and strips (log_validation)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.writer: "SummaryWriter | None" = None

    def on_train_start(self, trainer: "Trainer") -> None:
        if trainer.context.is_main:
            from torch.utils.tensorboard import SummaryWriter  # slow to import: only where it is used

            self.writer = SummaryWriter(str(self.log_dir))

    def on_step_end(self, trainer: "Trainer", step: int, losses: dict[str, float]) -> None:
        if self.writer is not None and _log_step(trainer, step):
            for name, value in losses.items():
                self.writer.add_scalar(f"train/{name}", value, step)

    def on_validation(self, trainer: "Trainer", step: int, scores: dict) -> None:
        if self.writer is not None:
            log_validation(self.writer, scores, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class CheckpointWriter(Callback):
    """``out/checkpoints/last.pt`` at every checkpoint and at the end, then ``out/model.pt``
    (the model file the node loads), on rank 0."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_checkpoint(self, trainer: "Trainer", step: int) -> None:
        if trainer.context.is_main:
            atomic_torch_save(trainer.checkpoint_payload(step), checkpoint_path(self.out))

    def on_train_end(self, trainer: "Trainer", step: int) -> None:
        if not trainer.context.is_main:
            return
        self.on_checkpoint(trainer, step)
        assert trainer.metadata is not None  # set by fit before any hook
        path = model_file_path(self.out)
        save_model_file(path, trainer.metadata, cpu_state(trainer.shipped.state_dict()))
        log.info("wrote %s (model file) after %d steps in %.0f s", path, step, time.perf_counter() - trainer.started)


def default_callbacks(out: Path, tensorboard: bool = True) -> list[Callback]:
    """What ``python -m training.train`` reports and writes: progress, validation log lines,
    TensorBoard (``out/tensorboard``) and the checkpoint and model file."""
    callbacks: list[Callback] = [ProgressBar(), LogValidation()]
    if tensorboard:
        callbacks.append(TensorBoard(out / "tensorboard"))
    callbacks.append(CheckpointWriter(out))
    return callbacks


def log_validation(writer: "SummaryWriter", scores: dict, step: int) -> None:
    """Per-horizon PSNR/SSIM against copy-last, and a strip per clip: last input | truth | prediction."""
    for k, (m, c) in enumerate(zip(scores["model_psnr"], scores["copy_last_psnr"]), start=1):
        writer.add_scalars(f"val/psnr_t+{k}", {"model": m, "copy_last": c, "flow": scores["flow_psnr"][k - 1]}, step)
    for k, (m, c) in enumerate(zip(scores["model_ssim"], scores["copy_last_ssim"]), start=1):
        writer.add_scalars(f"val/ssim_t+{k}", {"model": m, "copy_last": c, "flow": scores["flow_ssim"][k - 1]}, step)
    writer.add_images("val/last_input|truth|prediction", scores["strips"], step, dataformats="NHWC")
