"""What the backends share for stochastic models (svg): the standard-normal noise fed to
the graph, drawn on the host so that every backend sees the same numbers for a seed, and
the choice of what goes on /predicted_frames."""

from __future__ import annotations

import numpy as np

PUBLISH_CHOICES = ("mean", "sample")  # per-pixel mean of the S samples, or the first sample


def check_publish(publish: str) -> str:
    if publish not in PUBLISH_CHOICES:
        raise ValueError(f"publish must be one of {', '.join(PUBLISH_CHOICES)}, got {publish!r}")
    return publish


def check_samples(samples: int) -> int:
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    return int(samples)


def draw_noise(rng: np.random.Generator, batch: int, samples: int, horizon: int, z_dim: int) -> np.ndarray:
    """Standard-normal noise (B, S, K, z_dim) float32 for ``samples`` sample paths per input."""
    return rng.standard_normal((batch, check_samples(samples), horizon, z_dim), dtype=np.float32)
