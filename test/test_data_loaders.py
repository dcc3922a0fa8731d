"""Training data from real recordings: every dataset layout, format detection, frame
interval and frame period, the split by sequence, robustness to bad files, the clip
cache, the moving-patch filter, and one tiny training run on a frame folder.

Every dataset here is built in tmp_path. Frames are flat colours that encode
(sequence, frame index), so a test can tell exactly which frames a clip holds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import preprocess, train
from training.config import DataSection, TrainConfig
from training.data import bags
from training.data.cache import read_cache
from training.data.dataset import load_clip_set
from training.data.formats import detect_format
from training.data.patches import moving_patch_offsets
from training.data.pool import ClipPool
from training.data.sequence import DataError
from video_predictor.core.model_file import load_model_file
from video_predictor.core.preprocess import fit_to_model
from video_predictor.io.bags import write_image_bag

LENGTH = 5  # clip length used by most tests
SMALL = {"height": 8, "width": 8}


def coded_frame(sequence: int, index: int, height: int = 12, width: int = 16) -> np.ndarray:
    """RGB frame: red = sequence, green = 8 x frame index (index < 32)."""
    return np.full((height, width, 3), (sequence, 8 * index, 100), np.uint8)


def codes(clips: np.ndarray) -> np.ndarray:
    """(M, T, 2): (sequence, frame index) of each frame of each clip, decoded from its colour."""
    centre = clips[:, :, clips.shape[2] // 2, clips.shape[3] // 2].astype(int)
    return np.stack([centre[..., 0], np.rint(centre[..., 1] / 8).astype(int)], axis=-1)


def write_pngs(folder: Path, sequence: int, count: int, name: str = "{}.png", **size) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name.format(i) for i in range(count)]
    for i, path in enumerate(paths):
        cv2.imwrite(str(path), cv2.cvtColor(coded_frame(sequence, i, **size), cv2.COLOR_RGB2BGR))
    return paths


def write_avi(path: Path, count: int, fps: float) -> Path:
    """MJPG keeps grey levels well but not colours: frame i is grey 8 * i."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (16, 16))
    for i in range(count):
        writer.write(np.full((16, 16, 3), 8 * i, np.uint8))
    writer.release()
    assert path.stat().st_size > 0
    return path


def video_indices(clips: np.ndarray) -> np.ndarray:
    """(M, T): index of each frame of clips of grey 8 * index frames (write_avi's videos)."""
    return np.rint(clips[:, :, clips.shape[2] // 2, clips.shape[3] // 2].mean(axis=-1) / 8).astype(int)


def options(**overrides) -> DataSection:
    return DataSection(**{**SMALL, "clip_stride": 1, **overrides})


def load(path: Path, length: int = LENGTH, seed: int = 0, **overrides):
    return load_clip_set(path, options(**overrides), length, seed)


# --- one test per dataset kind -------------------------------------------------------


def test_frame_folders_are_cropped_resized_rgb_clips_in_natural_order(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "frames" / "walk"
    folder.mkdir(parents=True)
    originals = [rng.integers(0, 256, (30, 50, 3), dtype=np.uint8) for _ in range(11)]
    for i, rgb in enumerate(originals):  # frame2 must come before frame10
        cv2.imwrite(str(folder / f"frame{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    write_pngs(tmp_path / "frames" / "other", 1, 6)

    clip_set = load(tmp_path / "frames", val_fraction=0.5)

    assert clip_set.summary["format"] == "frames"
    assert clip_set.summary["sequences"] == {"train": ["walk"], "val": ["other"]} or clip_set.summary["sequences"] == {"train": ["other"], "val": ["walk"]}
    walk = clip_set.train if clip_set.summary["sequences"]["train"] == ["walk"] else clip_set.val
    assert walk.shape == (11 - LENGTH + 1, LENGTH, 8, 8, 3) and walk.dtype == np.uint8
    for start, clip in enumerate(walk):
        expected = [fit_to_model(originals[start + t], 8, 8) for t in range(LENGTH)]
        assert np.array_equal(clip, np.stack(expected))


def test_bair_layout_reads_nested_train_trajectories_and_never_test(tmp_path):
    for traj in range(3):
        write_pngs(tmp_path / "bair" / "train" / "traj_0_to_255" / str(traj), traj, 12)
    write_pngs(tmp_path / "bair" / "test" / "traj_0_to_255" / "0", 200, 12)

    clip_set = load(tmp_path / "bair")

    assert clip_set.summary["format"] == "bair"
    names = clip_set.summary["sequences"]["train"] + clip_set.summary["sequences"]["val"]
    assert sorted(names) == [f"train/traj_0_to_255/{t}" for t in range(3)]
    seen = codes(np.concatenate([clip_set.train, clip_set.val]))
    assert set(seen[..., 0].ravel()) == {0, 1, 2}  # nothing from test (sequence 200)
    assert (np.diff(seen[..., 1], axis=1) == 1).all()  # 10.png after 9.png, not after 1.png


def test_kitti_raw_uses_the_left_colour_camera_and_its_timestamps(tmp_path):
    stamps = [f"2011-09-26 13:02:{25 + 0.1036 * i:012.9f}" for i in range(8)]
    for sequence, drive_id in ((7, "0001"), (8, "0002")):
        drive = tmp_path / "kitti" / "2011_09_26" / f"2011_09_26_drive_{drive_id}_sync"
        write_pngs(drive / "image_02" / "data", sequence, 8, name="{:010d}.png")
        write_pngs(drive / "image_03" / "data", 9, 8, name="{:010d}.png")
        (drive / "image_02" / "timestamps.txt").write_text("\n".join(stamps) + "\n")

    clip_set = load(tmp_path / "kitti")

    assert clip_set.summary["format"] == "kitti"
    assert sorted(clip_set.summary["sequences"]["train"] + clip_set.summary["sequences"]["val"]) == [
        "2011_09_26/2011_09_26_drive_0001_sync", "2011_09_26/2011_09_26_drive_0002_sync"]
    assert set(codes(np.concatenate([clip_set.train, clip_set.val]))[..., 0].ravel()) == {7, 8}  # no image_03
    assert clip_set.frame_period == pytest.approx(0.1036, abs=1e-6)


def test_seed_layout_reads_images_train_only(tmp_path):
    write_pngs(tmp_path / "seed" / "images" / "train" / "video_a", 1, 9, name="frame{}.png")
    write_pngs(tmp_path / "seed" / "images" / "train" / "video_b", 2, 9, name="frame{}.png")
    write_pngs(tmp_path / "seed" / "images" / "test" / "video_c", 3, 9, name="frame{}.png")

    clip_set = load(tmp_path / "seed")

    assert clip_set.summary["format"] == "seed_images"
    assert set(codes(np.concatenate([clip_set.train, clip_set.val]))[..., 0].ravel()) == {1, 2}


def test_video_file_frame_period_comes_from_its_rate_times_the_interval(tmp_path):
    video = write_avi(tmp_path / "clip.avi", 30, fps=20.0)

    clip_set = load(video, frame_interval=2)

    assert clip_set.summary["format"] == "video"
    assert clip_set.frame_period == pytest.approx(2 / 20.0)
    assert (np.diff(video_indices(np.concatenate([clip_set.train, clip_set.val])), axis=1) == 2).all()


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_images_of_its_only_topic_with_the_period_of_its_stamps(tmp_path, storage):
    frames = [coded_frame(4, i) for i in range(12)]
    write_image_bag(tmp_path / "bag", frames, "/front/image", [1000.0 + i / 15 for i in range(12)], encoding="rgb8", storage=storage)

    clip_set = load(tmp_path / "bag")

    assert clip_set.summary["format"] == "bag"
    assert clip_set.frame_period == pytest.approx(1 / 15, abs=1e-6)
    seen = codes(np.concatenate([clip_set.train, clip_set.val]))
    assert (seen[..., 0] == 4).all() and (np.diff(seen[..., 1], axis=1) == 1).all()


def test_bag_topic_is_the_named_one_or_the_only_one_or_the_nodes(tmp_path, monkeypatch):
    bag = tmp_path / "bag"
    write_image_bag(bag, [coded_frame(6, i) for i in range(10)], "/left", [float(i) for i in range(10)], encoding="rgb8")
    with pytest.raises(DataError, match="'/right'.*/left"):  # a missing topic: the error lists the bag's topics
        load(bag, topic="/right")
    assert set(codes(load(bag, topic="/left").train)[..., 0].ravel()) == {6}

    monkeypatch.setattr(bags, "list_image_topics", lambda path: ["/a", "/camera/image_raw"])
    assert bags.image_topic(bag, "") == "/camera/image_raw"
    monkeypatch.setattr(bags, "list_image_topics", lambda path: ["/a", "/b"])
    with pytest.raises(ValueError, match="/a, /b.*data.topic"):
        bags.image_topic(bag, "")


def test_a_dropped_bag_frame_splits_the_sequence_so_no_clip_spans_the_gap(tmp_path):
    kept = [i for i in range(20) if i != 9]
    grey = [np.full((12, 16, 1), 8 * i, np.uint8) for i in kept]  # mono8: the clips get three equal channels
    write_image_bag(tmp_path / "bag", grey, "/camera/image_raw", [i / 10 for i in kept], encoding="mono8")

    clip_set = load(tmp_path / "bag")

    clips = np.concatenate([clip_set.train, clip_set.val])
    assert (clips[..., 0] == clips[..., 2]).all()
    assert (np.diff(video_indices(clips), axis=1) == 1).all()


# --- detection ---------------------------------------------------------------------


def test_format_is_detected_from_the_path_and_can_be_forced(tmp_path):
    write_pngs(tmp_path / "folder", 0, 3)
    write_pngs(tmp_path / "bair" / "train" / "0", 0, 3)
    write_pngs(tmp_path / "kitti" / "2011_09_26_drive_0001_sync" / "image_02" / "data", 0, 3)
    write_pngs(tmp_path / "seed" / "images" / "train" / "v", 0, 3)
    write_avi(tmp_path / "videos" / "a.avi", 3, 30.0)
    write_image_bag(tmp_path / "bag", [coded_frame(0, 0)], "/camera/image_raw", [1.0], encoding="rgb8")
    (tmp_path / "clips.npz").write_bytes(b"")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no data")

    detected = {name: detect_format(tmp_path / name) for name in ("folder", "bair", "kitti", "seed", "videos", "bag", "clips.npz")}
    assert detected == {"folder": "frames", "bair": "bair", "kitti": "kitti", "seed": "seed_images", "videos": "video", "bag": "bag", "clips.npz": "cache"}
    assert detect_format(tmp_path / "videos" / "a.avi") == "video"
    with pytest.raises(DataError, match="notes"):
        detect_format(tmp_path / "notes")
    with pytest.raises(DataError, match="no such"):
        detect_format(tmp_path / "missing")
    # forced: the BAIR root read as a plain folder of folders (train and test alike)
    write_pngs(tmp_path / "bair" / "test" / "0", 1, 9)
    write_pngs(tmp_path / "bair" / "train" / "1", 2, 9)
    forced = load(tmp_path / "bair", format="frames")
    assert forced.summary["format"] == "frames" and 1 in codes(np.concatenate([forced.train, forced.val]))[..., 0]
    with pytest.raises(DataError, match="data.format"):
        load(tmp_path / "bair", format="hdf5")


# --- clips, interval, split --------------------------------------------------------


def test_frame_interval_keeps_every_nth_frame_and_stride_spaces_clips(tmp_path):
    write_pngs(tmp_path / "frames" / "a", 0, 30)
    write_pngs(tmp_path / "frames" / "b", 1, 30)

    clip_set = load(tmp_path / "frames", frame_interval=3, clip_stride=2, val_fraction=0.5)

    for clips in (clip_set.train, clip_set.val):
        seen = codes(clips)[..., 1]
        assert (np.diff(seen, axis=1) == 3).all()  # recorded frames 0, 3, 6, ...
        assert seen[:, 0].tolist() == [0, 6, 12]  # clips start 2 kept frames apart


def test_split_is_by_sequence_deterministic_and_never_leaks(tmp_path):
    for s in range(10):
        write_pngs(tmp_path / "frames" / f"seq{s}", s, 8)

    first = load(tmp_path / "frames", val_fraction=0.3, seed=4)
    again = load(tmp_path / "frames", val_fraction=0.3, seed=4)

    train_seqs = set(codes(first.train)[..., 0].ravel())
    val_seqs = set(codes(first.val)[..., 0].ravel())
    assert len(val_seqs) == 3 and len(train_seqs) == 7 and not train_seqs & val_seqs
    assert np.array_equal(first.train, again.train) and np.array_equal(first.val, again.val)
    assert (codes(first.val)[..., 0] == codes(first.val)[:, :1, 0]).all()  # no clip mixes sequences


def test_two_sequences_always_give_one_for_validation(tmp_path):
    write_pngs(tmp_path / "frames" / "a", 0, 8)
    write_pngs(tmp_path / "frames" / "b", 1, 8)

    clip_set = load(tmp_path / "frames", val_fraction=0.01)

    assert len(clip_set.summary["sequences"]["val"]) == 1
    assert set(codes(clip_set.train)[..., 0].ravel()).isdisjoint(codes(clip_set.val)[..., 0].ravel())


def test_a_single_sequence_validates_on_its_tail_without_overlap(tmp_path):
    write_pngs(tmp_path / "frames", 0, 30)

    clip_set = load(tmp_path / "frames", val_fraction=0.3)

    assert codes(clip_set.train)[..., 1].max() < codes(clip_set.val)[..., 1].min()


def test_max_clips_and_val_clips_cap_the_arrays(tmp_path):
    for s in range(4):
        write_pngs(tmp_path / "frames" / f"s{s}", s, 20)

    clip_set = load(tmp_path / "frames", max_clips=7, val_clips=3, val_fraction=0.5)

    assert (len(clip_set.train), len(clip_set.val)) == (7, 3)
    assert clip_set.summary["clips"]["train_available"] > 7


# --- robustness --------------------------------------------------------------------


def test_corrupt_frame_is_skipped_named_counted_and_splits_the_run(tmp_path, caplog):
    paths = write_pngs(tmp_path / "frames" / "a", 0, 14)
    write_pngs(tmp_path / "frames" / "b", 1, 8)
    paths[6].write_bytes(b"\x89PNG truncated")

    with caplog.at_level(logging.WARNING):
        clip_set = load(tmp_path / "frames", val_fraction=0.5, seed=1)

    assert str(paths[6]) in caplog.text
    assert clip_set.summary["unreadable_frames"] == {"count": 1, "first": [str(paths[6])]}
    a = codes(np.concatenate([clip_set.train, clip_set.val]))
    a = a[a[:, 0, 0] == 0][..., 1]
    assert len(a) and not ((a[:, 0] < 6) & (a[:, -1] > 6)).any()  # no clip spans the hole
    assert 6 not in a


def test_unreadable_video_is_skipped_with_its_reason(tmp_path, caplog):
    write_avi(tmp_path / "videos" / "good.avi", 12, 30.0)
    write_avi(tmp_path / "videos" / "good2.avi", 12, 30.0)
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"not a video at all")

    with caplog.at_level(logging.WARNING):
        clip_set = load(tmp_path / "videos")

    assert "broken.mp4" in clip_set.summary["skipped_sequences"]
    assert "broken.mp4" in caplog.text
    assert sorted(clip_set.summary["sequences"]["train"] + clip_set.summary["sequences"]["val"]) == ["good.avi", "good2.avi"]


def test_too_short_sequences_are_skipped_with_a_reason(tmp_path):
    write_pngs(tmp_path / "frames" / "long1", 1, 8)
    write_pngs(tmp_path / "frames" / "long2", 2, 8)
    write_pngs(tmp_path / "frames" / "short", 3, LENGTH - 1)

    clip_set = load(tmp_path / "frames")

    assert "too short" in clip_set.summary["skipped_sequences"]["short"]
    assert 3 not in codes(np.concatenate([clip_set.train, clip_set.val]))[..., 0]


def test_no_usable_clips_is_an_error_naming_the_path_and_why(tmp_path):
    write_pngs(tmp_path / "frames" / "short", 0, 3)
    with pytest.raises(DataError, match=rf"{tmp_path / 'frames'}.*no usable clips.*too short"):
        load(tmp_path / "frames")


def test_bad_options_are_clear_errors(tmp_path):
    write_pngs(tmp_path / "frames", 0, 8)
    with pytest.raises(DataError, match="frame_interval"):
        load(tmp_path / "frames", frame_interval=0)
    with pytest.raises(DataError, match="val_fraction"):
        load(tmp_path / "frames", val_fraction=1.0)


# --- cache -------------------------------------------------------------------------


def test_preprocess_cache_round_trips_and_is_checked_against_the_config(tmp_path):
    write_avi(tmp_path / "a.avi", 30, fps=10.0)
    cache = tmp_path / "cache" / "clips.npz"
    sets = ["--set", "data.height=8", "--set", "data.width=8", "--set", "data.clip_stride=3"]

    assert preprocess.main(["--data", str(tmp_path / "a.avi"), "--out", str(cache), *sets]) == 0

    config = TrainConfig()
    config.data.height = config.data.width = 8
    length = config.data.input_frames + max(config.data.rollout, config.export_horizon)
    fresh = load_clip_set(tmp_path / "a.avi", DataSection(height=8, width=8, clip_stride=3), length, 0)
    cached = read_cache(cache, 8, 8, length)
    assert np.array_equal(cached.train, fresh.train) and np.array_equal(cached.val, fresh.val)
    assert cached.frame_period == pytest.approx(0.1)
    assert json.loads(cache.with_suffix(".json").read_text())["clips"]["train"] == len(fresh.train)
    as_data = load_clip_set(cache, DataSection(height=8, width=8), length, 0)  # what --data CACHE.npz trains on
    assert np.array_equal(as_data.train, fresh.train) and as_data.frame_period == pytest.approx(0.1)
    with pytest.raises(DataError, match="8x8.*16x16"):
        read_cache(cache, 16, 16, length)
    with pytest.raises(DataError, match="frames"):
        read_cache(cache, 8, 8, length + 1)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.npz.*not a readable clip cache"):
        read_cache(tmp_path / "junk.npz", 8, 8, length)


# --- moving-patch filter -----------------------------------------------------------


def test_moving_patch_offsets_pick_the_moving_area():
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    clips = np.repeat(np.repeat(background[None, None], 6, axis=1), 20, axis=0)
    for t in range(6):  # a square moving right in the bottom-right corner of clips 0..9
        clips[:10, t, 44:56, 40 + t : 52 + t] = 255
    offsets = moving_patch_offsets(clips, patch=16, threshold=2.0, rng=rng)

    assert offsets.moving.tolist() == [True] * 10 + [False] * 10
    for top, left in zip(offsets.tops[:10], offsets.lefts[:10]):
        assert top + 16 > 44 and top < 56 and left + 16 > 40 and left < 57  # the patch overlaps the motion
    tops, lefts = offsets.tops[10:], offsets.lefts[10:]
    assert ((0 <= tops) & (tops <= 48) & (0 <= lefts) & (lefts <= 48)).all()
    assert len(set(zip(tops.tolist(), lefts.tolist()))) > 1  # still clips: anywhere, not one fixed spot


def test_pool_cuts_training_patches_where_things_move_when_asked():
    background = np.full((64, 64, 3), 100, np.uint8)
    clips = np.repeat(np.repeat(background[None, None], 4, axis=1), 8, axis=0)
    for t in range(4):  # a bright square moving right, top-left corner only
        clips[:, t, 4:12, 4 + t : 12 + t] = 250
    filtered = next(ClipPool(clips, seed=0, augment=False, patch=16, patch_motion_threshold=1.0).batches(8))
    assert all(int(p.max()) == 250 for p in filtered)  # every patch contains the motion
    random = [next(ClipPool(clips, seed=s, augment=False, patch=16).batches(8)) for s in range(3)]
    assert any(int(p.max()) == 100 for batch in random for p in batch)  # without the filter, many do not


# --- trainer -----------------------------------------------------------------------

TINY_MODEL = {
    "input_frames": 2,
    "scales": [{"features": [4], "kernels": [3, 3]}] * 4,
}


def test_trainer_trains_on_a_frame_folder_and_takes_the_video_rate(tmp_path):
    for s in range(3):
        write_pngs(tmp_path / "frames" / f"seq{s}", s, 12, height=24, width=24)
    write_avi(tmp_path / "v.avi", 12, fps=12.5)
    common = [
        "--cache-dir", str(tmp_path / "cache"), "--no-tensorboard", "--steps", "2",
        "--config", "multiscale-small", "--set", f"model.config={TINY_MODEL}", "--set", "data.input_frames=2", "--set", "data.rollout=1",
        "--set", "data.height=16", "--set", "data.width=16", "--set", "data.patch=0", "--set", "optim.batch_size=2",
        "--set", "export_horizon=2",
    ]

    assert train.main(["--data", str(tmp_path / "frames"), "--out", str(tmp_path / "run"), *common]) == 0
    metadata, _, _ = load_model_file(tmp_path / "run" / "model.pt")
    assert (metadata.input_frames, metadata.height, metadata.width) == (2, 16, 16)

    config = train.build_config("cpu-small", ["data.source=" + str(tmp_path / "v.avi"), "data.height=16", "data.width=16",
                                              "data.input_frames=2", "data.rollout=1", "export_horizon=2"])
    train_clips, val_clips = train.load_clips(config, tmp_path / "cache")
    assert train_clips.shape[1:] == (4, 16, 16, 3) and len(val_clips)
    assert config.data.frame_period == pytest.approx(1 / 12.5)

    with pytest.raises(SystemExit, match="no such file"):
        train.main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run2"), *common])
