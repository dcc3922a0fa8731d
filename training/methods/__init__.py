"""Training methods: one class per method over a shared base (OpenSTL style)."""

from training.methods.base import TrainingMethod
from training.methods.generator import GeneratorMethod

METHODS = {"generator": GeneratorMethod}

__all__ = ["METHODS", "GeneratorMethod", "TrainingMethod"]
