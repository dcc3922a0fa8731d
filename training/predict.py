"""Predict frames from a video or a folder of frames and save them to look at:
``python -m training.predict --video clip.mp4 --out out/predict [--model FILE] [--steps N]``.

Writes, for the N observed frames ending at ``--start`` and the next ``--steps`` frames:
``input_<i>.png``, ``truth_<k>.png`` (where the recording goes on), ``pred_<k>.png``,
``sigma_<k>.png`` (the uncertainty map, white = 4σ of a quarter of the intensity range or more)
and ``comparison.gif``: truth | prediction | uncertainty, the observed frames first. PSNR per
step against the truth goes to the terminal. In the spirit of the Chainer port's testmodel.py.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from video_predictor.backends import create_predictor
from video_predictor.core.predictor import ModelLoadError
from video_predictor.core.preprocess import fit_to_model
from video_predictor.evaluation import metrics
from video_predictor.io import video

from .errors import TrainingError

GIF_SCALE = 4  # 64x64 frames are too small to see


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="video file readable by OpenCV")
    source.add_argument("--frames", help="folder of PNG/JPG frames in name order")
    parser.add_argument("--model", default="", help="model file (.pt or .onnx); default: the packaged model")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime", "tensorrt"])
    parser.add_argument("--steps", type=int, default=0, help="frames to predict recursively (0 = the model's horizon)")
    parser.add_argument("--start", type=int, default=-1, help="index of the last observed frame (default: the first possible)")
    parser.add_argument("--out", required=True, help="output folder")
    return parser.parse_args(argv)


def read_frames(video_path: str | None, frames_folder: str | None, first: int, count: int) -> list[np.ndarray]:
    """Up to ``count`` RGB frames starting at index ``first`` of the video or the frame folder."""
    frames = video.video_frames(video_path) if video_path else video.folder_frames(frames_folder, fps=1.0)
    return [f.image for f in itertools.islice(frames, first, first + count)]


def uncertainty_image(std: np.ndarray) -> np.ndarray:
    """σ in [0, 1] intensity units -> uint8 grey, saturating at σ = 0.25."""
    return np.clip(std / 0.25 * 255, 0, 255).astype(np.uint8)


def to_uint8(frame01: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(frame01 * 255), 0, 255).astype(np.uint8)


def save_png(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image.squeeze()).save(path)


def write_gif(path: Path, panels: list[list[np.ndarray]], frame_ms: int = 250) -> None:
    """One GIF frame per row of panels (each panel RGB (H, W, 3)), side by side, enlarged."""
    images = []
    for row in panels:
        strip = np.concatenate(row, axis=1)
        strip = cv2.resize(strip, (strip.shape[1] * GIF_SCALE, strip.shape[0] * GIF_SCALE), interpolation=cv2.INTER_NEAREST)
        images.append(Image.fromarray(strip))
    images[0].save(path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)


def main(argv: list[str] | None = None) -> int:
    """The command line: a problem (TrainingError) ends it with its message on stderr and exit status 1."""
    args = parse_args(argv)
    try:
        write_predictions(Path(args.out), video_path=args.video, frames_folder=args.frames, model=args.model,
                          backend=args.backend, steps=args.steps, start=args.start)
    except TrainingError as error:
        raise SystemExit(str(error)) from None  # Python prints the message to stderr and exits with 1
    return 0


def write_predictions(
    out: Path, *, video_path: str | None = None, frames_folder: str | None = None, model: str = "", backend: str = "auto",
    steps: int = 0, start: int = -1,
) -> None:
    """Predict ``steps`` frames (0: the model's horizon) after the observed frames ending at index
    ``start`` (-1: the first possible) of the video or frame folder, and write the files the module
    docstring lists to ``out``; PSNR per step goes to stdout.

    Raises TrainingError where the model does not load or the recording is too short."""
    try:
        predictor, _ = create_predictor(model, backend, horizon=max(0, steps))
    except ModelLoadError as error:
        raise TrainingError(f"model: {error}") from None
    meta, k = predictor.metadata, predictor.horizon
    n = meta.input_frames
    last = start if start >= 0 else n - 1
    if last < n - 1:
        raise TrainingError(f"--start {last}: the model needs {n} observed frames, so the first possible is {n - 1}")
    try:
        raw = read_frames(video_path, frames_folder, last - n + 1, n + k)
    except video.VideoError as error:
        raise TrainingError(str(error)) from None
    if len(raw) < n:
        raise TrainingError(f"the recording has fewer than {last + 1} frames")
    frames = np.stack([fit_to_model(f, meta.height, meta.width) for f in raw])
    if frames.ndim == 3:
        frames = frames[..., None]
    observed, truth = frames[:n], frames[n:]
    prediction = predictor.predict(observed[None])
    predicted = to_uint8(prediction.frames[0])
    sigma = uncertainty_image(prediction.std[0])

    out.mkdir(parents=True, exist_ok=True)
    rgb = lambda image: np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image  # noqa: E731
    blank = np.zeros_like(rgb(observed[0]))
    rows = []
    for i, frame in enumerate(observed):
        save_png(out / f"input_{i:02d}.png", frame)
        rows.append([rgb(frame), rgb(frame), blank])
    for step in range(k):
        save_png(out / f"pred_{step + 1:02d}.png", predicted[step])
        save_png(out / f"sigma_{step + 1:02d}.png", sigma[step])
        has_truth = step < len(truth)
        if has_truth:
            save_png(out / f"truth_{step + 1:02d}.png", truth[step])
            psnr = metrics.psnr(predicted[step], truth[step])
            copy = metrics.psnr(observed[-1], truth[step])
            print(f"t+{step + 1}: PSNR {psnr:.2f} dB (copy-last {copy:.2f} dB), mean σ {prediction.std[0, step].mean():.4f}")
        rows.append([rgb(truth[step]) if has_truth else blank, rgb(predicted[step]), np.repeat(sigma[step][..., None], 3, axis=-1)])
    write_gif(out / "comparison.gif", rows)
    print(f"wrote {n} inputs, {k} predictions and comparison.gif (truth | prediction | uncertainty) to {out}")


if __name__ == "__main__":
    sys.exit(main())
