"""Multi-process training through PyTorch's own engine: ``torchrun --nproc_per_node N -m
training.train ...`` starts N processes; each trains a DistributedDataParallel copy on its own
share of every batch and gradients are averaged, so all ranks keep identical weights.

NCCL on GPUs, gloo on CPUs. Without torchrun's environment it is a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .errors import TrainingError


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, validates and writes files."""
        return self.rank == 0


def init_distributed(device_request: str) -> tuple[DistributedContext, torch.device]:
    """Join the process group torchrun describes (if any) and pick this rank's device.

    device_request: "auto" (CUDA where present), "cpu", "cuda" or "cuda:N". Raises TrainingError
    where CUDA is asked for and there is none.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    context = DistributedContext(int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    wants_cuda = device_request.startswith("cuda") or (device_request == "auto" and torch.cuda.is_available())
    if wants_cuda and not torch.cuda.is_available():
        raise TrainingError(f"optim.device={device_request}: CUDA is not available on this machine")
    if wants_cuda:
        device = torch.device("cuda", context.local_rank) if context.enabled or device_request in ("auto", "cuda") else torch.device(device_request)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if context.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return context, device


def wrap_for_training(module: nn.Module, context: DistributedContext, device: torch.device) -> nn.Module:
    """The module that training runs forward through: DDP where several ranks train."""
    if not context.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def shutdown(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
