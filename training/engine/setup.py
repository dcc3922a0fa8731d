"""What a run is made of, built from its config: seeds, the training method (model and
optimisers), initial weights, the clips and the model file's metadata."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from video_predictor.core.metadata import CAMERA_PERIOD, ModelMetadata
from video_predictor.core.model_file import load_model_file
from video_predictor.models import FAMILIES, build_model, uncertainty_kind

from ..config import TrainConfig
from ..data import dataset, real_mix
from ..data.pool import synthetic_clips
from ..data.synthetic import SyntheticConfig
from ..errors import TrainingError
from ..methods import METHODS, TrainingMethod

log = logging.getLogger("training.train")  # the run's messages keep the logger name they always had


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators (weight init, dropout, sampling)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_method(config: TrainConfig) -> TrainingMethod:
    """The model ``config.model`` describes inside the training method ``config.optim.method``.

    Raises TrainingError where the config names no buildable model or method."""
    try:
        model = build_model(config.model.family, config.model.config)
    except (TypeError, ValueError) as error:
        raise TrainingError(f"model: {error}") from None
    if config.optim.method not in METHODS:
        raise TrainingError(f"optim.method must be one of {', '.join(sorted(METHODS))}, got {config.optim.method!r}")
    try:
        return METHODS[config.optim.method].from_config(model, config)
    except ValueError as error:
        raise TrainingError(f"config: {error}") from None


def load_initial_weights(model: nn.Module, config: TrainConfig, path: Path) -> None:
    """Fine-tuning: the generator starts from a model file of the same family and network config.

    Raises TrainingError where the file cannot be read or holds another network."""
    try:
        metadata, state, _ = load_model_file(path)
    except (OSError, ValueError) as error:
        raise TrainingError(f"--init: {error}") from None
    if metadata.family != config.model.family or metadata.model_config != model.config.to_dict():
        raise TrainingError(f"--init {path}: a {metadata.family} model with another network config than this run's; set model.config to match")
    model.load_state_dict(state)
    log.info("initial weights from %s", path)


def load_clips(config: TrainConfig, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation clips: the built-in synthetic video, or ``data.source``
    (a recording or a clip cache). Recordings with frame times set data.frame_period.

    Raises training.data.sequence.DataError where the data cannot be used as asked."""
    d = config.data
    clip_length = dataset.clip_length(config)
    if d.source != "synthetic":
        clip_set = dataset.load_clip_set(Path(str(d.source)), d, clip_length, config.optim.seed)
        if clip_set.frame_period is not None:
            d.frame_period = clip_set.frame_period  # the model file must state the data's real rate
        return clip_set.train, clip_set.val
    synth = SyntheticConfig(**{**d.synthetic, "height": d.height, "width": d.width, "clip_length": clip_length})
    train_set = synthetic_clips(d.synthetic_clips, synth, seed=config.optim.seed, cache_dir=cache_dir)
    val_set = synthetic_clips(d.val_clips, synth, seed=config.optim.seed + 10_000, cache_dir=cache_dir)
    if d.real:
        real_train, real_val = real_mix.load_real_clips(d, clip_length, config.optim.seed)
        train_set = real_mix.mix(train_set, real_train, d.real_fraction, config.optim.seed)
        val_set = np.concatenate([val_set, *real_val])
    return train_set, val_set


def make_metadata(config: TrainConfig, model_config: dict) -> ModelMetadata:
    """What the model file says about the network it holds (read after the clips are loaded:
    real data sets the frame period)."""
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
