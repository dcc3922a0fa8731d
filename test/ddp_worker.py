"""Run by test_distributed.py under torchrun: trains a tiny model and saves this rank's weights."""

import os
import sys
from pathlib import Path

import torch

from training import train

TINY = {"input_frames": 2, "consistency_frames": 1, "scales": [{"features": [4], "kernels": [3, 3]}] * 2}  # the default preset's family, flow_anchored

if __name__ == "__main__":
    out, method = Path(sys.argv[1]), sys.argv[2]
    overrides = [
        f"model.config={TINY}", "data.input_frames=2", "data.height=32", "data.width=32", "data.patch=16",
        "data.synthetic_clips=16", "data.val_clips=2", "optim.batch_size=4", "optim.steps=3", "optim.threads=1",
        "optim.val_every=100", "optim.ema=0.5", f"optim.method={method}", "optim.device=cpu",
        "optim.discriminator={scales: [{features: [4], kernels: [3], fully_connected: [8]}, {features: [4], kernels: [3], fully_connected: [8]}, {features: [4], kernels: [3], fully_connected: [8]}, {features: [4], kernels: [3], fully_connected: [8]}]}",
    ]
    if method == "generator":
        overrides.append("optim.loss={p: 2}")
    config = train.build_config("cpu-small", overrides)
    shipped = train.train(config, out / "run", cache_dir=out / "cache", tensorboard=False)
    torch.save({k: v.cpu() for k, v in shipped.state_dict().items()}, out / f"rank{os.environ.get('RANK', '0')}.pt")
