"""The dict round trip every network config dataclass offers: configs are data (YAML
presets, model-file metadata), and a misspelt key is an error, not a silent default."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Mapping, TypeVar

ConfigT = TypeVar("ConfigT", bound="DictConfig")


class DictConfig:
    """Mixin for dataclasses: ``to_dict`` and a ``from_dict`` that rejects unknown keys."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[ConfigT], data: Mapping[str, Any]) -> ConfigT:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**dict(data))
