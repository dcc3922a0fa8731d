"""Model metadata: what a model file says about itself so the node configures itself.

Stored as a plain dict in a ``.pt`` checkpoint and as string properties in an ONNX
file, so either file alone is enough for the node.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

UNCERTAINTY_KINDS = ("heteroscedastic", "samples", "samples+heteroscedastic", "none")
# frame_period of a rate-agnostic model: it predicts at the camera's own frame period.
CAMERA_PERIOD = "camera"
# flow_input: the classical flow a model takes as a second graph input ("" = none).
# "farneback": video_predictor.evaluation.baselines.FlowExtrapolation's backward flow (last -> previous
# frame, grey), in pixels per prediction period.
FLOW_INPUTS = ("", "farneback")
NORMALISATIONS = ("minus_one_one",)  # uint8 x -> x / 127.5 - 1


class MetadataError(ValueError):
    """The metadata of a model file is missing or inconsistent."""


@dataclass(frozen=True)
class ModelMetadata:
    family: str  # model family name, e.g. "multiscale"
    input_frames: int  # N observed frames the model takes
    horizon: int  # K frames the (exported) rollout yields
    height: int
    width: int
    channels: int  # 3: RGB order
    frame_period: float | str  # seconds between the frames the model predicts, or "camera" (rate-agnostic)
    normalisation: str = "minus_one_one"
    uncertainty: str = "heteroscedastic"
    stochastic: bool = False
    training_data: str = ""
    model_config: dict = field(default_factory=dict)
    flow_input: str = ""

    def __post_init__(self) -> None:
        problems = []
        for name in ("input_frames", "horizon", "height", "width", "channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if self.channels not in (1, 3):
            problems.append(f"channels must be 1 or 3, got {self.channels}")
        if self.frame_period != CAMERA_PERIOD and not (
                isinstance(self.frame_period, (int, float)) and not isinstance(self.frame_period, bool) and self.frame_period > 0):
            problems.append(f"frame_period must be > 0 s or {CAMERA_PERIOD!r}, got {self.frame_period!r}")
        if self.flow_input not in FLOW_INPUTS:
            problems.append(f"unknown flow_input {self.flow_input!r}; known: {', '.join(repr(f) for f in FLOW_INPUTS)}")
        if self.normalisation not in NORMALISATIONS:
            problems.append(f"unknown normalisation {self.normalisation!r}")
        if self.uncertainty not in UNCERTAINTY_KINDS:
            problems.append(f"unknown uncertainty kind {self.uncertainty!r}")
        if problems:
            raise MetadataError("; ".join(problems))

    @property
    def rate_agnostic(self) -> bool:
        """True when the model predicts at the camera's own frame period (frame_period "camera")."""
        return self.frame_period == CAMERA_PERIOD

    @property
    def fixed_period(self) -> float | None:
        """The model's fixed frame period in seconds; None for a rate-agnostic model."""
        return None if self.rate_agnostic else float(self.frame_period)

    def describe_period(self) -> str:
        return "the camera's period (rate-agnostic)" if self.rate_agnostic else f"{float(self.frame_period):.4f} s"

    @property
    def resolution(self) -> tuple[int, int]:
        return (self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelMetadata":
        known = {f.name for f in fields(cls)}
        missing = [m for m in ("family", "input_frames", "horizon", "height", "width", "channels", "frame_period") if m not in data]
        if missing:
            raise MetadataError(f"model metadata lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_onnx_props(self) -> dict[str, str]:
        """ONNX metadata_props are strings: one JSON value per field."""
        return {f"video_predictor.{k}": json.dumps(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_onnx_props(cls, props: Mapping[str, str]) -> "ModelMetadata":
        prefix = "video_predictor."
        data = {k[len(prefix):]: json.loads(v) for k, v in props.items() if k.startswith(prefix)}
        if not data:
            raise MetadataError("ONNX file carries no video_predictor metadata (not exported by training.export?)")
        return cls.from_dict(data)
