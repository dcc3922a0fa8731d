"""The trainer's engine: a Trainer that owns the training loop and the callbacks it reports
through. ``python -m training.train`` (training/train.py) assembles one from the command line."""

from ..errors import NonFiniteLossError, TrainingError
from .callbacks import (
    Callback,
    CheckpointWriter,
    LogValidation,
    ProgressBar,
    TensorBoard,
    default_callbacks,
    log_validation,
)
from .checkpoint import checkpoint_path, cpu_state, model_file_path
from .schedule import apply_schedule, learning_rate, schedule_factor
from .setup import build_method, load_clips, load_initial_weights, make_metadata, seed_everything
from .trainer import Trainer, Validator, calibrate

__all__ = [
    "Callback", "CheckpointWriter", "LogValidation", "NonFiniteLossError", "ProgressBar", "TensorBoard", "Trainer",
    "TrainingError", "Validator", "apply_schedule", "build_method", "calibrate", "checkpoint_path", "cpu_state",
    "default_callbacks", "learning_rate", "load_clips", "load_initial_weights", "log_validation", "make_metadata",
    "model_file_path", "schedule_factor", "seed_everything",
]
