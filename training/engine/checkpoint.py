"""Where a run's checkpoint lives and how weights are copied into it."""

from __future__ import annotations

from pathlib import Path

import torch


def checkpoint_path(out: Path) -> Path:
    """The resumable checkpoint of the run writing to ``out`` (``--resume`` reads it)."""
    return out / "checkpoints" / "last.pt"


def model_file_path(out: Path) -> Path:
    """The model file (what the node loads) of the run writing to ``out``."""
    return out / "model.pt"


def cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached CPU copies: files must load on machines without the training device."""
    return {k: v.detach().cpu() for k, v in state.items()}
