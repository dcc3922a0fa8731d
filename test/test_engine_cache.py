"""The TensorRT engine cache's key and rebuild logic, with build/deserialise injected (no TensorRT needed)."""

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from video_predictor.backends import engine_cache
from video_predictor.backends.engine_cache import (
    EngineCacheError,
    EngineKey,
    default_engine_path,
    key_file_path,
    load_or_build,
    make_key,
)


class FakeTensorRT:
    """Stands in for TensorRT's builder and runtime: an 'engine' is its bytes, tagged by the build count."""

    def __init__(self):
        self.builds = 0
        self.deserialised = []

    def build(self) -> bytes:
        self.builds += 1
        return b"ENGINE build %d " % self.builds + b"x" * 4096

    def deserialise(self, data: bytes) -> str:
        self.deserialised.append(data)
        if not data.startswith(b"ENGINE"):
            raise RuntimeError("not an engine")
        return data.decode()[:14]


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx graph bytes")
    return path


def key_for(onnx_file, **changes):
    args = {"tensorrt_version": "10.3.0", "compute_capability": "8.7", "precision": "fp32", "max_batch": 4} | changes
    return make_key(onnx_file, **args)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_key_changes_with_every_input_and_is_stable_otherwise(onnx_file, tmp_path):
    base = key_for(onnx_file)
    assert base == key_for(onnx_file)  # same inputs, same key
    assert base.onnx_sha256 == hashlib.sha256(b"onnx graph bytes").hexdigest()  # the file's bytes, not its name
    variants = [key_for(onnx_file, tensorrt_version="10.4.0"), key_for(onnx_file, compute_capability="8.6"),
                key_for(onnx_file, precision="fp16"), key_for(onnx_file, max_batch=8)]
    other_onnx = tmp_path / "other.onnx"
    other_onnx.write_bytes(b"onnx graph bytes!")  # one byte more
    variants.append(key_for(other_onnx))
    for variant in variants:
        assert variant != base
        assert len(variant.differences(base)) == 1  # exactly the field that was changed
    assert len(set(variants)) == len(variants)


def test_key_rejects_bad_values(onnx_file):
    with pytest.raises(ValueError, match="precision"):
        key_for(onnx_file, precision="int8")
    with pytest.raises(ValueError, match="max_batch"):
        key_for(onnx_file, max_batch=0)


def test_first_start_builds_and_second_start_reuses(onnx_file, caplog):
    trt = FakeTensorRT()
    key = key_for(onnx_file)
    path = default_engine_path(onnx_file, key)
    assert path == onnx_file.with_name("model.fp32.engine")
    with caplog.at_level(logging.INFO):
        first = load_or_build(path, key, trt.build, trt.deserialise)
    assert first.built and trt.builds == 1 and path.is_file() and key_file_path(path).is_file()
    assert "may take several minutes" in caplog.text and "built the TensorRT engine in" in caplog.text
    record = json.loads(key_file_path(path).read_text())
    assert EngineKey.from_dict(record["key"]) == key
    second = load_or_build(path, key, trt.build, trt.deserialise)
    assert not second.built and second.reason == "reused" and trt.builds == 1
    assert second.engine == first.engine == "ENGINE build 1"


@pytest.mark.parametrize("change", ["tensorrt_version", "compute_capability", "precision", "onnx"])
def test_stale_key_rebuilds_and_replaces(onnx_file, change):
    trt = FakeTensorRT()
    path = onnx_file.with_name("model.engine")
    load_or_build(path, key_for(onnx_file), trt.build, trt.deserialise)
    if change == "onnx":
        onnx_file.write_bytes(b"a re-exported graph")
        new_key = key_for(onnx_file)
    else:
        new_key = key_for(onnx_file, **{change: {"tensorrt_version": "10.5.0", "compute_capability": "9.0", "precision": "fp16"}[change]})
    result = load_or_build(path, new_key, trt.build, trt.deserialise)
    assert result.built and trt.builds == 2 and result.engine == "ENGINE build 2"
    assert "another setup" in result.reason and (change if change != "onnx" else "onnx_sha256") in result.reason
    assert EngineKey.from_dict(json.loads(key_file_path(path).read_text())["key"]) == new_key
    assert not load_or_build(path, new_key, trt.build, trt.deserialise).built  # and the new one is reused


def test_truncated_engine_is_detected_by_hash_and_rebuilt(onnx_file):
    trt = FakeTensorRT()
    key = key_for(onnx_file)
    path = onnx_file.with_name("model.engine")
    load_or_build(path, key, trt.build, trt.deserialise)
    path.write_bytes(path.read_bytes()[:100])  # a copy cut short
    trt.deserialised.clear()
    result = load_or_build(path, key, trt.build, trt.deserialise)
    assert result.built and "truncated or replaced" in result.reason
    assert all(len(d) > 100 for d in trt.deserialised)  # the short file was never handed to the runtime
    assert len(path.read_bytes()) > 4096


def test_engine_that_does_not_deserialise_is_rebuilt_with_a_warning(onnx_file, caplog):
    trt = FakeTensorRT()
    key = key_for(onnx_file)
    path = onnx_file.with_name("model.engine")
    engine_cache.store_engine(path, key, b"GARBAGE with a consistent key file")  # hash matches, runtime refuses
    with caplog.at_level(logging.WARNING):
        result = load_or_build(path, key, trt.build, trt.deserialise)
    assert result.built and trt.builds == 1 and result.engine == "ENGINE build 1"
    assert "could not be deserialised" in caplog.text and "rebuilding" in caplog.text
    assert path.read_bytes().startswith(b"ENGINE")


def test_engine_without_key_file_or_with_broken_key_file_is_rebuilt(onnx_file):
    trt = FakeTensorRT()
    key = key_for(onnx_file)
    path = onnx_file.with_name("model.engine")
    path.write_bytes(trt.build())  # a valid engine of unknown origin
    result = load_or_build(path, key, trt.build, trt.deserialise)
    assert result.built and "no key file" in result.reason
    key_file_path(path).write_text("{not json")
    result = load_or_build(path, key, trt.build, trt.deserialise)
    assert result.built and "unreadable" in result.reason


def test_failing_build_leaves_no_file_and_keeps_the_old_engine(onnx_file):
    trt = FakeTensorRT()
    path = onnx_file.with_name("model.engine")
    load_or_build(path, key_for(onnx_file), trt.build, trt.deserialise)
    old = path.read_bytes()

    def failing_build():
        raise EngineCacheError("out of memory while building")

    with pytest.raises(EngineCacheError, match="out of memory"):
        load_or_build(path, key_for(onnx_file, precision="fp16"), failing_build, trt.deserialise)
    assert path.read_bytes() == old and leftovers(path.parent) == []
    with pytest.raises(EngineCacheError, match="returned no engine"):
        load_or_build(path, key_for(onnx_file, precision="fp16"), lambda: b"", trt.deserialise)
    # a build whose result does not load is not cached either
    with pytest.raises(EngineCacheError, match="does not deserialise"):
        load_or_build(path, key_for(onnx_file, precision="fp16"), lambda: b"junk", trt.deserialise)
    assert path.read_bytes() == old and leftovers(path.parent) == []


def test_interrupted_write_leaves_no_half_written_file(onnx_file, monkeypatch, caplog):
    trt = FakeTensorRT()
    key = key_for(onnx_file)
    path = onnx_file.with_name("model.engine")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine_cache.os, "fsync", disk_full)
    with caplog.at_level(logging.WARNING):
        result = load_or_build(path, key, trt.build, trt.deserialise)
    assert result.engine == "ENGINE build 1"  # the engine still runs; only storing it failed
    assert "could not store it" in caplog.text
    assert not path.exists() and leftovers(path.parent) == []
    monkeypatch.undo()
    assert load_or_build(path, key, trt.build, trt.deserialise).built  # next start builds and stores


def test_crash_between_engine_and_key_file_is_not_trusted(onnx_file, monkeypatch):
    """Engine replaced, key file still the old build's: the hash no longer matches, so it is rebuilt."""
    trt = FakeTensorRT()
    key = key_for(onnx_file)
    path = onnx_file.with_name("model.engine")
    load_or_build(path, key, trt.build, trt.deserialise)
    path.write_bytes(b"ENGINE from another build, key file not yet written")
    result = load_or_build(path, key, trt.build, trt.deserialise)
    assert result.built and "truncated or replaced" in result.reason


def test_engine_path_beside_onnx_in_cache_dir_or_fallback_when_read_only(onnx_file, tmp_path):
    key = key_for(onnx_file, precision="fp16")
    assert default_engine_path(onnx_file, key) == onnx_file.with_name("model.fp16.engine")
    in_dir = default_engine_path(onnx_file, key, cache_dir=tmp_path / "cache")
    assert in_dir.parent == tmp_path / "cache" and in_dir.name == f"model-{key.onnx_sha256[:12]}.fp16.engine"
    fallback = default_engine_path(onnx_file, key, fallback_dir=tmp_path / "user", is_writable=lambda folder: False)
    assert fallback.parent == tmp_path / "user"
    trt = FakeTensorRT()
    assert load_or_build(in_dir, key, trt.build, trt.deserialise).built and in_dir.is_file()  # creates the folder


def test_user_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert engine_cache.user_cache_dir() == tmp_path / "video_predictor" / "engines"
    assert os.fspath(engine_cache.user_cache_dir()).startswith(str(tmp_path))


def test_export_engine_options_need_engine(capsys):
    from training.export import main as export_main

    with pytest.raises(SystemExit) as exit_info:
        export_main(["--checkpoint", "x.pt", "--out", "x.onnx", "--fp16"])
    assert exit_info.value.code == 2 and "add --engine PATH" in capsys.readouterr().err


def test_export_engine_without_tensorrt_says_so(monkeypatch, tmp_path, caplog):
    """Where TensorRT cannot run, --engine fails clearly with status 2 and writes nothing."""
    import training.export as export

    monkeypatch.setattr(export, "tensorrt_available", lambda: (False, "the tensorrt package is not installed"))
    with caplog.at_level(logging.ERROR):
        code = export.build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", "fp16", 0, 4, "cuda")
    assert code == 2 and "tensorrt package is not installed" in caplog.text and list(tmp_path.iterdir()) == []
