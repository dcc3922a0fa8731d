"""Train a predictor: ``python -m training.train [--data PATH] [--out DIR]``.

With no arguments it trains the default ``cpu-small`` preset on the built-in synthetic
video, on this machine's CPU, in minutes, and writes ``DIR/model.pt`` (a model file the
node loads) and resumable checkpoints in ``DIR/checkpoints/``.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from .calibrate import fit_sigma_calibration
from .config import TrainConfig, build_config
from .data import dataset, real_mix
from .data.pool import ClipPool, synthetic_clips
from .data.sequence import DataError
from .data.synthetic import SyntheticConfig
from .distributed import DistributedContext, init_distributed, shutdown, wrap_for_training
from .methods import METHODS, TrainingMethod
from video_predictor.evaluation import metrics
from .methods.generator import FLOW_METHOD
from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.metadata import CAMERA_PERIOD, ModelMetadata
from video_predictor.core.model_file import atomic_torch_save, load_model_file, save_model_file
from video_predictor.models import FAMILIES, PredictorGraph, build_model, uncertainty_kind
from video_predictor.core.predictor import flow_input

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

log = logging.getLogger("training.train")


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


def make_metadata(config: TrainConfig, model_config: dict) -> ModelMetadata:
    d = config.data
    uncertainty, stochastic = uncertainty_kind(config.model.family, model_config)
    flow_model = bool(getattr(FAMILIES[config.model.family][1], "flow_input", False))
    return ModelMetadata(
        family=config.model.family,
        input_frames=d.input_frames,
        horizon=config.export_horizon,
        height=d.height,
        width=d.width,
        channels=int(model_config.get("channels", 3)),
        frame_period=CAMERA_PERIOD if d.rate_agnostic else float(d.frame_period),
        uncertainty=uncertainty,
        stochastic=stochastic,
        training_data=f"{d.source}; preset {config.preset}",
        model_config=model_config,
        flow_input="farneback" if flow_model else "",
    )


def load_clips(config: TrainConfig, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation clips: the built-in synthetic video, or ``data.source``
    (a recording or a clip cache). Recordings with frame times set data.frame_period."""
    d = config.data
    clip_length = dataset.clip_length(config)
    if d.source != "synthetic":
        try:
            clip_set = dataset.load_clip_set(Path(str(d.source)), d, clip_length, config.optim.seed)
        except DataError as error:
            raise SystemExit(str(error)) from None
        if clip_set.frame_period is not None:
            d.frame_period = clip_set.frame_period  # the model file must state the data's real rate
        return clip_set.train, clip_set.val
    synth = SyntheticConfig(**{**d.synthetic, "height": d.height, "width": d.width, "clip_length": clip_length})
    train_set = synthetic_clips(d.synthetic_clips, synth, seed=config.optim.seed, cache_dir=cache_dir)
    val_set = synthetic_clips(d.val_clips, synth, seed=config.optim.seed + 10_000, cache_dir=cache_dir)
    if d.real:
        try:
            real_train, real_val = real_mix.load_real_clips(d, clip_length, config.optim.seed)
        except DataError as error:
            raise SystemExit(str(error)) from None
        train_set = real_mix.mix(train_set, real_train, d.real_fraction, config.optim.seed)
        val_set = np.concatenate([val_set, *real_val])
    return train_set, val_set


@torch.inference_mode()
def validate(model: nn.Module, clips: np.ndarray, input_frames: int, horizon: int, device: torch.device | None = None, strips: int = 4) -> dict:
    """PSNR/SSIM per horizon of the model, copy-last-frame and flow extrapolation on held-out
    clips, and image strips (last input | truth t+1 | prediction t+1) of the first ``strips`` clips."""
    # the evaluator's scoring and rounding, so validation numbers compare with metrics.json's
    from video_predictor.core.pixels import unit_to_uint8
    from video_predictor.evaluation.scoring import baseline_predictions, score_frames

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


def schedule_factor(config: TrainConfig, step: int) -> float:
    """Multiplier of every optimiser's initial learning rate at ``step``."""
    schedule = config.optim.schedule
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(1.0, step / max(1, config.optim.steps))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"optim.schedule must be constant or cosine, got {schedule!r}")


def learning_rate(config: TrainConfig, step: int) -> float:
    """The generator's learning rate at ``step``."""
    return config.optim.lr * schedule_factor(config, step)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"optim.steps={args.steps}")
    config = build_config(args.config, overrides)
    if args.data is not None:  # not through --set: a path is not YAML
        config.data.source = args.data
    out = Path(args.out or f"runs/{config.preset}")
    if args.init and args.resume:
        raise SystemExit("--init and --resume exclude each other: --resume continues a run, --init starts one")
    init = Path(args.init) if args.init else None
    train(config, out, resume=args.resume, cache_dir=Path(args.cache_dir), tensorboard=not args.no_tensorboard, init=init)
    return 0


def build_method(config: TrainConfig) -> TrainingMethod:
    try:
        model = build_model(config.model.family, config.model.config)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"model: {error}") from None
    if config.optim.method not in METHODS:
        raise SystemExit(f"optim.method must be one of {', '.join(sorted(METHODS))}, got {config.optim.method!r}")
    try:
        return METHODS[config.optim.method].from_config(model, config)
    except ValueError as error:
        raise SystemExit(f"config: {error}") from None


def train(
    config: TrainConfig, out: Path, resume: bool = False, cache_dir: Path | None = None, tensorboard: bool = True, init: Path | None = None
) -> nn.Module:
    """Train as ``config`` says; writes ``out/model.pt`` and ``out/checkpoints/last.pt`` (on rank 0)
    and returns the shipped network (the EMA weights where EMA is on)."""
    context, device = init_distributed(config.optim.device)
    try:
        return _train(config, out, resume, cache_dir, tensorboard, context, device, init)
    finally:
        shutdown(context)


def _train(
    config: TrainConfig, out: Path, resume: bool, cache_dir: Path | None, tensorboard: bool, context: DistributedContext,
    device: torch.device, init: Path | None = None,
) -> nn.Module:
    ckpt_path = out / "checkpoints" / "last.pt"
    seed_everything(config.optim.seed)  # the same on every rank: DDP starts from identical weights anyway
    if config.optim.threads > 0:
        torch.set_num_threads(config.optim.threads)

    method = build_method(config)
    model = method.model
    model_config = model.config.to_dict()
    if init is not None:
        load_initial_weights(model, config, init)
    # The averaged weights generalise better than the last iterate's noisy ones.
    # use_buffers: batch-norm statistics (SVG's encoder) are averaged along, not left at their start.
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.optim.ema), use_buffers=True) if config.optim.ema > 0 else None
    shipped = (lambda: ema.module) if ema is not None else (lambda: model)  # noqa: E731
    start_step = 0
    if resume:
        if not ckpt_path.is_file():
            raise SystemExit(f"--resume: no checkpoint at {ckpt_path}")
        _, _, payload = load_model_file(ckpt_path)
        method.load_state_dict(payload["training_state"])
        if ema is not None:
            ema.load_state_dict(payload["ema"])
        start_step = int(payload["step"])
        torch.set_rng_state(payload["torch_rng"])
        log.info("resumed from %s at step %d", ckpt_path, start_step)
    for module in method.modules().values():
        module.to(device)
    if ema is not None:
        ema.to(device)
    for optimizer in method.optimizers().values():  # optimiser state follows its parameters
        optimizer.load_state_dict(optimizer.state_dict())
    method.distribute(lambda module: wrap_for_training(module, context, device))

    train_clips, val_clips = load_clips(config, cache_dir)
    metadata = make_metadata(config, model_config)  # after loading: real data sets the frame period
    # Each rank draws its own share of every step's batch from one shared order.
    pool = ClipPool(
        train_clips, seed=config.optim.seed, patch=config.data.patch, rank=context.rank, world_size=context.world_size,
        patch_motion_threshold=config.data.patch_motion_threshold,
    )
    n_params = sum(p.numel() for p in model.parameters())
    if context.is_main:
        log.info(
            "preset %s: %s model, %d parameters, %d training clips, %d steps of batch %d x %d process(es) on %s, method %s",
            config.preset, config.model.family, n_params, len(pool), config.optim.steps, config.optim.batch_size,
            context.world_size, device, config.optim.method,
        )

    writer = None
    if tensorboard and context.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"))

    def checkpoint(step: int) -> None:
        if not context.is_main:
            return
        atomic_torch_save(
            {
                "format": "video_predictor.model/1",
                "metadata": metadata.to_dict(),
                "state_dict": _cpu(shipped().state_dict()),
                "training_state": method.state_dict(),
                "ema": ema.state_dict() if ema is not None else {},
                "step": step,
                "config": config.to_dict(),
                "torch_rng": torch.get_rng_state(),
            },
            ckpt_path,
        )

    batches = pool.batches(config.optim.batch_size, start_step)
    progress = tqdm(
        range(start_step, config.optim.steps), initial=start_step, total=config.optim.steps, desc="training",
        dynamic_ncols=True, disable=None if context.is_main else True,
    )
    started = time.perf_counter()
    step = start_step
    for step in progress:
        for optimizer in method.optimizers().values():
            for group in optimizer.param_groups:  # each optimiser keeps its own base rate (D's differs)
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * schedule_factor(config, step)
        losses = method.train_step(next(batches).to(device, non_blocking=True))
        if ema is not None:
            ema.update_parameters(model)
        if not all(math.isfinite(v) for v in losses.values()):
            raise SystemExit(f"step {step}: loss is not finite ({losses}); lower optim.lr")
        if step % config.optim.log_every == 0 and context.is_main:
            rate = (step + 1 - start_step) * config.optim.batch_size * context.world_size / (time.perf_counter() - started)
            progress.set_postfix(loss=f"{losses['loss']:.4f}", clips_s=f"{rate:.0f}")
            if progress.disable and step % (10 * config.optim.log_every) == 0:  # no TTY: log instead
                log.info("step %d/%d loss %.4f (%.0f clips/s)", step, config.optim.steps, losses["loss"], rate)
            if writer:
                for name, value in losses.items():
                    writer.add_scalar(f"train/{name}", value, step)
        if (step + 1) % config.optim.checkpoint_every == 0:
            checkpoint(step + 1)
        if context.is_main and ((step + 1) % config.optim.val_every == 0 or step + 1 == config.optim.steps):
            scores = validate(shipped(), val_clips, config.data.input_frames, config.export_horizon, device)
            log.info(
                "step %d validation PSNR model %s | copy-last %s | flow %s; SSIM model %s | copy-last %s | flow %s",
                step + 1, scores["model_psnr"], scores["copy_last_psnr"], scores["flow_psnr"],
                scores["model_ssim"], scores["copy_last_ssim"], scores["flow_ssim"],
            )
            if writer:
                log_validation(writer, scores, step + 1)
    steps_done = max(step + 1, start_step)
    if hasattr(shipped(), "sigma_calibration"):  # every rank alike: the same clips give the same numbers
        calibrate(shipped(), val_clips, config)
    checkpoint(steps_done)
    if context.is_main:
        save_model_file(out / "model.pt", metadata, _cpu(shipped().state_dict()))
        log.info("wrote %s (model file) after %d steps in %.0f s", out / "model.pt", steps_done, time.perf_counter() - started)
    if writer:
        writer.close()
    return shipped()


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


def load_initial_weights(model: nn.Module, config: TrainConfig, path: Path) -> None:
    """Fine-tuning: the generator starts from a model file of the same family and network config."""
    try:
        metadata, state, _ = load_model_file(path)
    except (OSError, ValueError) as error:
        raise SystemExit(f"--init: {error}") from None
    if metadata.family != config.model.family or metadata.model_config != model.config.to_dict():
        raise SystemExit(f"--init {path}: a {metadata.family} model with another network config than this run's; set model.config to match")
    model.load_state_dict(state)
    log.info("initial weights from %s", path)


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def log_validation(writer: "SummaryWriter", scores: dict, step: int) -> None:
    """Per-horizon PSNR/SSIM against copy-last, and a strip per clip: last input | truth | prediction."""
    for k, (m, c) in enumerate(zip(scores["model_psnr"], scores["copy_last_psnr"]), start=1):
        writer.add_scalars(f"val/psnr_t+{k}", {"model": m, "copy_last": c, "flow": scores["flow_psnr"][k - 1]}, step)
    for k, (m, c) in enumerate(zip(scores["model_ssim"], scores["copy_last_ssim"]), start=1):
        writer.add_scalars(f"val/ssim_t+{k}", {"model": m, "copy_last": c, "flow": scores["flow_ssim"][k - 1]}, step)
    writer.add_images("val/last_input|truth|prediction", scores["strips"], step, dataformats="NHWC")


if __name__ == "__main__":
    sys.exit(main())
