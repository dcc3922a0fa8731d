"""Distributed training: torchrun with two gloo processes on the CPU ends with identical weights."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data.pool import ClipPool
from video_predictor.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_worker import TINY  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_ranks_draw_disjoint_shares_of_each_step():
    clips = np.arange(12 * 2 * 1 * 1 * 1, dtype=np.uint8).reshape(12, 2, 1, 1, 1)
    ids = lambda batch: set(batch[:, 0, 0, 0, 0].tolist())  # noqa: E731
    rank0 = ClipPool(clips, seed=1, augment=False, rank=0, world_size=2).batches(3)
    rank1 = ClipPool(clips, seed=1, augment=False, rank=1, world_size=2).batches(3)
    for _ in range(4):
        a, b = ids(next(rank0)), ids(next(rank1))
        assert len(a) == len(b) == 3 and not a & b
    with pytest.raises(ValueError, match="cannot fill"):
        next(ClipPool(clips, rank=1, world_size=4).batches(4))


@pytest.mark.parametrize("method", ["generator", pytest.param("adversarial", marks=pytest.mark.slow)])
def test_torchrun_two_gloo_processes_end_with_identical_weights(tmp_path, method):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(ROOT / "test" / "ddp_worker.py"), str(tmp_path), method,
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    # and they trained: the weights left the initial ones (the trainer seeds with optim.seed = 0)
    torch.manual_seed(0)
    initial = build_model("flow_anchored", TINY).state_dict()
    assert any(not torch.equal(initial[k], rank0[k]) for k in initial)
    assert (tmp_path / "run" / "model.pt").is_file()
