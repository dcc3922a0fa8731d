"""The prediction command: PNGs and a GIF from a folder of frames or a video."""

import numpy as np
import pytest
from PIL import Image

from training import predict
from video_predictor.io.video import carphone_clip


def write_frames(folder, count):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (80, 120, 3), dtype=np.uint8)
    for i in range(count):
        Image.fromarray(np.ascontiguousarray(texture[:, i : i + 96])).save(folder / f"frame{i}.png")


def test_predict_writes_inputs_predictions_truth_and_an_animation(tmp_path, capsys):
    write_frames(tmp_path / "frames", 12)
    assert predict.main(["--frames", str(tmp_path / "frames"), "--steps", "3", "--out", str(tmp_path / "out"), "--backend", "torch"]) == 0
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["comparison.gif"] + [f"input_{i:02d}.png" for i in range(4)]
        + [f"{kind}_{k:02d}.png" for kind in ("pred", "truth", "sigma") for k in (1, 2, 3)]
    )
    assert np.asarray(Image.open(out / "pred_01.png")).shape == (64, 64, 3)
    gif = Image.open(out / "comparison.gif")
    assert gif.n_frames == 4 + 3 and gif.size == (3 * 64 * predict.GIF_SCALE, 64 * predict.GIF_SCALE)
    printed = capsys.readouterr().out
    assert printed.count("PSNR") == 3 and "copy-last" in printed


def test_predict_beyond_the_end_of_the_recording_has_no_truth(tmp_path):
    write_frames(tmp_path / "frames", 5)
    assert predict.main(["--frames", str(tmp_path / "frames"), "--steps", "3", "--out", str(tmp_path / "out"), "--backend", "torch"]) == 0
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert "truth_01.png" in names and "truth_02.png" not in names and "pred_03.png" in names


def test_predict_says_why_it_cannot_start(tmp_path):
    with pytest.raises(SystemExit, match="first possible is 3"):
        predict.main(["--video", str(carphone_clip()), "--start", "1", "--out", str(tmp_path)])
    write_frames(tmp_path / "short", 2)
    with pytest.raises(SystemExit, match="fewer than"):
        predict.main(["--frames", str(tmp_path / "short"), "--out", str(tmp_path / "o")])
