"""The ``.pt`` model file: metadata plus weights, loaded without unpickling code.

Layout: {"format": "video_predictor.model/1", "metadata": {...}, "state_dict": {...}}.
Training checkpoints use the same keys plus optimiser state, so either loads here.
The file is torch's format, so torch is imported where a file is read or written: core
stays importable without torch (ONNX-only deployments).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from video_predictor.core.metadata import MetadataError, ModelMetadata
from video_predictor.core.predictor import ModelLoadError

if TYPE_CHECKING:
    import torch

FORMAT = "video_predictor.model/1"


class ModelFileError(ModelLoadError):
    """A model file is missing, truncated, or not one of ours."""


def save_model_file(path: str | Path, metadata: ModelMetadata, state_dict: dict[str, torch.Tensor], **extra: Any) -> None:
    """Write atomically (temp file, then rename) so a crash never leaves half a file."""
    payload = {"format": FORMAT, "metadata": metadata.to_dict(), "state_dict": state_dict, **extra}
    atomic_torch_save(payload, path)


def atomic_torch_save(payload: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    import torch

    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; model files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model_file(path: str | Path) -> tuple[ModelMetadata, dict[str, torch.Tensor], dict[str, Any]]:
    """Return (metadata, state_dict, whole payload). weights_only=True: no code is unpickled."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's text here advises an unsafe reload: not ours to give
        raise ModelFileError(f"{path}: not a video_predictor model file (holds more than plain weights, or is corrupt)") from exc
    except Exception as exc:  # truncated zip, empty file, ...
        first_line = str(exc).partition("\n")[0]
        raise ModelFileError(f"{path}: not a loadable video_predictor model file ({type(exc).__name__}: {first_line})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a video_predictor model file (expected format {FORMAT!r})")
    try:
        metadata = ModelMetadata.from_dict(payload["metadata"])
    except (MetadataError, TypeError, KeyError) as exc:
        raise ModelFileError(f"{path}: bad metadata: {exc}") from exc
    return metadata, payload["state_dict"], payload
