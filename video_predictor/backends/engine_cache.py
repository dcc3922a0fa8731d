"""TensorRT engine cache: build once, reuse while the key matches, rebuild when it does not.

A serialised TensorRT engine is only valid for the ONNX graph, TensorRT version, GPU
architecture and precision it was built with; loading one built for anything else is the
failure users of other TensorRT nodes report most. So every engine file ``X.engine`` has a
key file ``X.engine.json`` beside it holding its ``EngineKey`` and the sha256 of the engine
bytes. At start:

- key file matches and the engine bytes hash to what it records -> deserialise and reuse;
- no engine, no/unreadable key file, a different key, or bytes that do not match
  (truncated, replaced) -> rebuild;
- deserialisation of a matching file fails -> warn and rebuild.

A freshly built engine is deserialised before it is stored (a bad build is never cached),
then written to a temporary file and renamed, engine first and key file second, so a crash
or a failing build never leaves a half-written file that a later start would trust.

Pure Python on purpose: the build and deserialise steps are passed in, so this logic is
tested on machines without TensorRT or a GPU (test/test_engine_cache.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Generic, TypeVar

PRECISIONS = ("fp32", "fp16")
KEY_FORMAT = 1  # bump when the key file's layout changes
log = logging.getLogger("video_predictor.backends.engine_cache")
Engine = TypeVar("Engine")


class EngineCacheError(RuntimeError):
    """An engine could not be built or loaded (names the file and the reason)."""


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialised engine depends on; a different value means a rebuild."""

    onnx_sha256: str  # the ONNX file's bytes
    tensorrt_version: str  # e.g. "10.3.0"
    compute_capability: str  # the GPU's, e.g. "8.7" (Jetson Orin)
    precision: str  # "fp32" or "fp16" (inputs and outputs stay FP32 either way)
    max_batch: int = 1  # upper end of the optimisation profile's batch range

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {self.max_batch!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EngineKey":
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    def differences(self, other: "EngineKey") -> list[str]:
        """'field old -> new' for every field that differs (for the rebuild log line)."""
        return [
            f"{f.name} {getattr(other, f.name)!s:.12} -> {getattr(self, f.name)!s:.12}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


@dataclass
class CacheResult(Generic[Engine]):
    engine: Engine
    path: Path  # the engine file (may not exist if storing it failed)
    built: bool  # True: built at this start; False: reused from the cache
    reason: str  # why it was built, or "reused"
    build_seconds: float = 0.0


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def make_key(onnx_path: Path, tensorrt_version: str, compute_capability: str, precision: str, max_batch: int = 1) -> EngineKey:
    return EngineKey(file_sha256(onnx_path), str(tensorrt_version), str(compute_capability), precision, max_batch)


def key_file_path(engine_path: Path) -> Path:
    return engine_path.with_name(engine_path.name + ".json")


def default_engine_path(
    onnx_path: Path,
    key: EngineKey,
    cache_dir: Path | None = None,
    fallback_dir: Path | None = None,
    is_writable: Callable[[Path], bool] | None = None,
) -> Path:
    """Where the engine for ``onnx_path`` lives.

    Beside the ONNX file as ``STEM.PRECISION.engine``; in ``cache_dir`` when given, or in
    ``fallback_dir`` (default: the user's cache folder) when the ONNX file's folder is not
    writable (a package installed read-only). In a shared folder the name also carries the
    start of the ONNX hash, so models with the same file name do not evict each other.
    """
    writable = is_writable or (lambda folder: os.access(folder, os.W_OK))
    if cache_dir is None and writable(onnx_path.parent):
        return onnx_path.with_name(f"{onnx_path.stem}.{key.precision}.engine")
    folder = cache_dir if cache_dir is not None else (fallback_dir or user_cache_dir())
    return folder / f"{onnx_path.stem}-{key.onnx_sha256[:12]}.{key.precision}.engine"


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "video_predictor" / "engines"


def _cached_bytes(engine_path: Path, key: EngineKey) -> tuple[bytes | None, str]:
    """(engine bytes, "") when the cache entry is usable, else (None, why not)."""
    if not engine_path.is_file():
        return None, f"no engine at {engine_path} yet"
    key_path = key_file_path(engine_path)
    try:
        record = json.loads(key_path.read_text())
        stored = EngineKey.from_dict(record["key"])
        expected_sha = record["engine_sha256"]
    except FileNotFoundError:
        return None, f"{engine_path} has no key file {key_path.name}, so what it was built for is unknown"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"key file {key_path} is unreadable ({exc})"
    if stored != key:
        return None, f"{engine_path} was built for another setup ({'; '.join(key.differences(stored))})"
    data = engine_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected_sha:
        return None, f"{engine_path} does not match its key file (truncated or replaced: {len(data)} bytes)"
    return data, ""


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, rename: readers see old or new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_engine(engine_path: Path, key: EngineKey, data: bytes) -> None:
    """Engine first, key file second: a crash in between leaves a key file whose hash does not match."""
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(engine_path, data)
    record = {"format": KEY_FORMAT, "key": key.to_dict(), "engine_sha256": hashlib.sha256(data).hexdigest(),
              "engine_bytes": len(data), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_atomically(key_file_path(engine_path), (json.dumps(record, indent=1) + "\n").encode())


def load_or_build(
    engine_path: Path,
    key: EngineKey,
    build: Callable[[], bytes],
    deserialise: Callable[[bytes], Engine],
    logger: logging.Logger = log,
) -> CacheResult[Engine]:
    """Reuse the engine at ``engine_path`` if its key matches and it deserialises, else build and store it.

    ``build()`` returns the serialised engine; ``deserialise(bytes)`` returns the runtime
    engine or raises. A failure to store the engine (read-only folder, full disk) is
    logged and not fatal: the built engine is used, and the next start builds again.
    """
    data, reason = _cached_bytes(engine_path, key)
    if data is not None:
        try:
            return CacheResult(deserialise(data), engine_path, built=False, reason="reused")
        except Exception as exc:  # TensorRT raises several types; any failure means: rebuild
            reason = f"cached engine {engine_path} could not be deserialised ({exc})"
            logger.warning("%s; rebuilding it", reason)
    else:
        logger.info("TensorRT engine: %s", reason)
    logger.warning(
        "building a TensorRT engine (%s, max batch %d) for GPU sm_%s; this may take several minutes, "
        "later starts reuse %s", key.precision, key.max_batch, key.compute_capability.replace(".", ""), engine_path)
    start = time.monotonic()
    data = build()
    elapsed = time.monotonic() - start
    if not data:
        raise EngineCacheError(f"TensorRT returned no engine for {engine_path} (see the TensorRT log above)")
    try:
        engine = deserialise(bytes(data))
    except Exception as exc:
        raise EngineCacheError(f"the engine just built for {engine_path} does not deserialise: {exc}") from exc
    try:
        store_engine(engine_path, key, bytes(data))
        logger.warning("built the TensorRT engine in %.1f s and stored it at %s (%.1f MB)", elapsed, engine_path, len(data) / 1e6)
    except OSError as exc:
        logger.warning("built the TensorRT engine in %.1f s but could not store it at %s (%s); "
                       "the next start builds it again", elapsed, engine_path, exc)
    return CacheResult(engine, engine_path, built=True, reason=reason, build_seconds=elapsed)
