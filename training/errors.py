"""Errors the training package raises when a run cannot start or go on as asked.

Library code raises these (or ``training.data.sequence.DataError`` for unusable data);
only the command-line ``main()`` functions turn them into a message and an exit status,
so the functions stay usable from tests, notebooks and other programs.
"""

from __future__ import annotations


class TrainingError(Exception):
    """A run (of the trainer, or of a tool beside it: preprocess, predict) cannot start or go on
    as asked; the message says why and what to change."""


class NonFiniteLossError(TrainingError):
    """A training step's loss was NaN or infinite: the run stops before it poisons the weights."""

    def __init__(self, step: int, losses: dict[str, float]) -> None:
        super().__init__(f"step {step}: loss is not finite ({losses}); lower optim.lr")
        self.step = step  # the 0-based index of the step whose loss it was
        self.losses = dict(losses)
