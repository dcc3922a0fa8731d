"""Train a predictor: ``python -m training.train [--data PATH] [--out DIR]``.

With no arguments it trains the default ``cpu-small`` preset on the built-in synthetic
video, on this machine's CPU, in minutes, and writes ``DIR/model.pt`` (a model file the
node loads) and resumable checkpoints in ``DIR/checkpoints/``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.pixels import unit_to_uint8
from video_predictor.core.predictor import flow_input

# the evaluator's scoring and rounding, so validation numbers compare with metrics.json's
from video_predictor.evaluation.scoring import baseline_predictions, score_frames
from video_predictor.models import PredictorGraph

from .config import TrainConfig, build_config
from .data.sequence import DataError
from .distributed import init_distributed, shutdown

# Kept importable from here: tests, benchmarks and tools use them as training.train.<name>.
from .engine import (  # noqa: F401
    Trainer,
    build_method,
    calibrate,
    checkpoint_path,
    default_callbacks,
    learning_rate,
    load_clips,
    load_initial_weights,
    log_validation,
    make_metadata,
    schedule_factor,
    seed_everything,
)
from .errors import TrainingError
from .methods.generator import FLOW_METHOD


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-small", help="preset name in training/configs/ or a YAML file (default: cpu-small)")
    parser.add_argument("--data", default=None, help="training data (default: built-in synthetic video)")
    parser.add_argument("--out", default=None, help="output directory (default: runs/<preset>)")
    parser.add_argument("--resume", action="store_true", help="continue from DIR/checkpoints/last.pt")
    parser.add_argument("--init", default=None, metavar="MODEL.pt", help="start from this model file's weights (fine-tuning; same family and config)")
    parser.add_argument("--steps", type=int, default=None, help="override optim.steps")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. optim.lr=3e-4 (repeatable)")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "video_predictor"), help="where rendered synthetic clips are cached")
    parser.add_argument("--no-tensorboard", action="store_true")
    return parser.parse_args(argv)


@torch.inference_mode()
def validate(model: nn.Module, clips: np.ndarray, input_frames: int, horizon: int, device: torch.device | None = None, strips: int = 4) -> dict:
    """PSNR/SSIM per horizon of the model, copy-last-frame and flow extrapolation on held-out
    clips, and image strips (last input | truth t+1 | prediction t+1) of the first ``strips`` clips."""
    model.eval()
    graph = PredictorGraph(model, horizon)
    inputs = clips[:, :input_frames]
    truth = clips[:, input_frames : input_frames + horizon]
    x = torch.from_numpy(inputs).float().to(device or "cpu")
    if graph.flow_input:
        predicted, _ = graph(x, torch.from_numpy(flow_input(inputs, FLOW_METHOD)).to(x.device))
    else:
        predicted, _ = graph(x)
    predicted = unit_to_uint8(predicted.cpu().numpy())  # the 8-bit frames the node publishes
    scores = score_frames({"model": predicted, **baseline_predictions(inputs, horizon, FlowExtrapolation())}, truth,
                          horizon)
    result: dict = {}
    for name, method_scores in scores.items():
        written = method_scores.to_dict()
        result[f"{name}_psnr"], result[f"{name}_ssim"] = written["psnr"], written["ssim"]
    result["strips"] = np.concatenate([inputs[:strips, -1], truth[:strips, 0], predicted[:strips, 0]], axis=2)
    return result


def main(argv: list[str] | None = None) -> int:
    """The command line: a run's problems (TrainingError, DataError) end it with their message
    on stderr and exit status 1, not a traceback."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"optim.steps={args.steps}")
    try:
        config = build_config(args.config, overrides)
    except (FileNotFoundError, ValueError) as error:  # no such preset, unknown keys
        raise SystemExit(str(error)) from None
    if args.data is not None:  # not through --set: a path is not YAML
        config.data.source = args.data
    out = Path(args.out or f"runs/{config.preset}")
    init = Path(args.init) if args.init else None
    try:
        train(config, out, resume=args.resume, cache_dir=Path(args.cache_dir), tensorboard=not args.no_tensorboard, init=init)
    except (TrainingError, DataError) as error:
        raise SystemExit(str(error)) from None  # Python prints the message to stderr and exits with 1
    return 0


def train(
    config: TrainConfig, out: Path, resume: bool = False, cache_dir: Path | None = None, tensorboard: bool = True, init: Path | None = None
) -> nn.Module:
    """Train as ``config`` says; writes ``out/model.pt`` and ``out/checkpoints/last.pt`` (on rank 0)
    and returns the shipped network (the EMA weights where EMA is on).

    resume: continue from ``out/checkpoints/last.pt``; init: start from this model file's weights.
    Raises TrainingError, or DataError for unusable data, where the run cannot start or go on."""
    if init is not None and resume:
        raise TrainingError("--init and --resume exclude each other: --resume continues a run, --init starts one")
    context, device = init_distributed(config.optim.device)
    try:
        trainer = Trainer.from_config(
            config, init=init, device=device, context=context, callbacks=default_callbacks(out, tensorboard), validate=validate,
        )
        if resume:
            trainer.restore(checkpoint_path(out))
        train_clips, val_clips = load_clips(config, cache_dir)
        return trainer.fit(train_clips, val_clips)
    finally:
        shutdown(context)


if __name__ == "__main__":
    sys.exit(main())
