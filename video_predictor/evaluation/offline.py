"""Rosbag replay evaluation: score the predictor against copy-last-frame and flow extrapolation.

    python -m video_predictor.evaluate --bag PATH [--topic /camera/image_raw] [--model FILE] --out DIR
    python -m video_predictor.evaluate --live --bag PATH [--listen-only] --out DIR

Offline (the default) feeds the recorded frames through the node's own frame buffer and
predictor in this process, ROS-free and deterministic: every frame is fitted to the
model's resolution exactly as the node does it; a buffered sequence is scored at
k = 1..K against the frames the same buffer keeps k prediction periods later (the camera's
own period for a rate-agnostic model, so a recording at any rate scores), and only
sequences with all K futures on that schedule count, so every horizon averages over the
same sequences.
``--live`` scores a running predictor_node over ROS 2 instead (video_predictor.evaluation.live).

Both write DIR/metrics.json (the contract's schema plus moving-area scores, sharpness and
counts), DIR/report.md, PNG plots per horizon and image strips of the best, median and
worst sequences (video_predictor.evaluation.report).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from video_predictor.io import bags

from video_predictor.evaluation import metrics

from video_predictor.io import video
from video_predictor.backends import BACKENDS, ModelLoadError, create_predictor, default_model_path
from video_predictor.core.flow import FlowExtrapolation
from video_predictor.evaluation.baselines import copy_last
from video_predictor.evaluation.report import StripSample, StripSelector, report_markdown, write_report
from video_predictor.core.frame_buffer import FrameBuffer, choose_period
from video_predictor.core.pixels import unit_to_uint8
from video_predictor.core.metadata import CAMERA_PERIOD
from video_predictor.core.predictor import Prediction, PredictionError, Predictor
from video_predictor.evaluation.sources import (
    FrameSource,
    Sample,
    StreamCounts,
    bag_source,
    folder_source,
    model_frames,
    samples_with_futures,
    video_source,
)

DEFAULT_TOPIC = "/camera/image_raw"
METHODS = ("model", "copy_last", "flow")
# Frames whose moving area covers less of the frame than this are left out of the moving-area
# scores: 1 % is 41 pixels at 64x64.
MIN_MOVING_FRACTION = 0.01


class EvaluationError(ValueError):
    """The evaluation cannot produce numbers (e.g. no complete sequence); says why."""


# -- scoring ---------------------------------------------------------------------------------


@dataclass
class HorizonScores:
    """Per-frame scores collected per horizon: name -> list of (B, K) arrays."""

    horizon: int
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, name: str, batch: np.ndarray) -> None:
        self.values.setdefault(name, []).append(np.asarray(batch, dtype=np.float64).reshape(-1, self.horizon))

    def mean(self, name: str) -> list[float | None]:
        """Mean over frames per horizon, ignoring NaN; None where nothing is defined."""
        stacked = np.concatenate(self.values[name])
        defined = np.isfinite(stacked)
        sums = np.where(defined, stacked, 0.0).sum(axis=0)
        counts = defined.sum(axis=0)
        return [float(s / c) if c else None for s, c in zip(sums, counts)]

    def count(self, name: str) -> list[int]:
        """Frames per horizon with a defined (finite) value."""
        return [int(c) for c in np.isfinite(np.concatenate(self.values[name])).sum(axis=0)]


class Scorer:
    """Scores the model's predictions and the baselines on batches of sequences: whole
    frames and moving areas, uncertainty calibration; offers each sequence to ``strips``.

    The model's prediction is given, so the same scoring serves the in-process predictor
    (offline) and the frames a running node published (live)."""

    def __init__(self, horizon: int, flow: FlowExtrapolation, motion_threshold: float = metrics.MOTION_THRESHOLD_PX,
                 strips: StripSelector | None = None, min_moving_fraction: float = MIN_MOVING_FRACTION) -> None:
        if not motion_threshold >= 0:
            raise ValueError(f"motion threshold must be >= 0 pixels, got {motion_threshold}")
        if not 0 <= min_moving_fraction <= 1:
            raise ValueError(f"min_moving_fraction must be in [0, 1], got {min_moving_fraction}")
        self.horizon = horizon
        self.flow = flow
        self.motion_threshold = motion_threshold
        self.min_moving_fraction = min_moving_fraction
        self.strips = strips
        self.scores = HorizonScores(horizon)
        self.scored = 0

    def score(self, inputs: np.ndarray, targets: np.ndarray, prediction: Prediction,
              stamps: Iterable[float] | None = None) -> None:
        """inputs (B, N, H, W, C) and targets (B, K, H, W, C) uint8; ``prediction`` the
        model's (B, K) frames in [0, 1] and their sigma; stamps: newest input per sequence."""
        k = self.horizon
        if len(inputs) == 0:
            return
        if prediction.frames.shape[:2] != (len(inputs), k) or targets.shape[:2] != (len(inputs), k):
            raise ValueError(f"expected {len(inputs)} sequences of {k} frames, got prediction "
                             f"{prediction.frames.shape} and targets {targets.shape}")
        predicted = {
            "model": unit_to_uint8(prediction.frames),  # the 8-bit frames the node publishes
            "copy_last": np.stack([copy_last(x, k) for x in inputs]),
            "flow": np.stack([self.flow(x, k) for x in inputs]),
        }
        last = np.repeat(inputs[:, -1:], k, axis=1)
        moving = metrics.motion_mask(last, targets, self.motion_threshold)  # (B, K, H, W), one mask for all methods
        fraction = moving.mean(axis=(-2, -1))
        self.scores.add("moving_fraction", fraction)
        # a score over a handful of pixels is noise (three right pixels make 100 dB): such frames give NaN
        scored = moving & (fraction >= max(self.min_moving_fraction, 1e-12))[..., None, None]
        psnr = {}
        for method, frames in predicted.items():
            psnr[method] = metrics.psnr(frames, targets)
            ssim_map = metrics.ssim_map(frames, targets)  # each map once, for the whole frame and the mask
            gap = metrics.gradient_gap_map(frames, targets)
            self.scores.add(f"{method}.psnr", psnr[method])
            self.scores.add(f"{method}.ssim", metrics.map_mean(ssim_map))
            self.scores.add(f"{method}.sharpness", metrics.sharpness_from_gap(gap))
            self.scores.add(f"moving.{method}.psnr", metrics.masked_psnr(frames, targets, scored))
            self.scores.add(f"moving.{method}.ssim", metrics.map_mean(ssim_map, scored))
            self.scores.add(f"moving.{method}.sharpness", metrics.sharpness_from_gap(gap, scored))
        error = prediction.frames - targets.astype(np.float32) / 255.0
        self.scores.add("coverage_2sigma", metrics.coverage_2sigma(error, prediction.std))
        self.scores.add("spearman", metrics.uncertainty_spearman(error, prediction.std))
        if self.strips is not None:
            self._offer_strips(inputs, targets, predicted["model"], prediction.std, moving, psnr["model"], stamps)
        self.scored += len(inputs)

    def _offer_strips(self, inputs, targets, model_frames, std, moving, model_psnr, stamps) -> None:
        model_psnr = np.asarray(model_psnr).reshape(len(inputs), self.horizon)
        stamps = list(stamps) if stamps is not None else [math.nan] * len(inputs)
        for b in range(len(inputs)):
            def make(index: int, b: int = b) -> StripSample:
                return StripSample(index, float(stamps[b]), float(model_psnr[b].mean()), inputs[b].copy(),
                                   targets[b].copy(), model_frames[b].copy(), std[b].astype(np.float16),
                                   moving[b].copy(), tuple(float(v) for v in model_psnr[b]))
            self.strips.offer(float(model_psnr[b].mean()), make)


def predict_batch(predictor: Predictor, inputs: np.ndarray,
                  last_intervals: np.ndarray | None = None) -> tuple[np.ndarray, Prediction | None, int]:
    """Predict a batch (``last_intervals``: per sequence, in prediction periods, as the node
    passes them); on NaN/Inf, retry one by one and drop only the bad sequences.
    Returns (mask of the sequences kept, their prediction, number that failed)."""
    intervals = np.ones(len(inputs)) if last_intervals is None else np.asarray(last_intervals, dtype=np.float64)
    try:
        return np.ones(len(inputs), bool), predictor.predict(inputs, last_interval=intervals), 0
    except PredictionError:
        pass
    kept, parts = np.zeros(len(inputs), bool), []
    for i, x in enumerate(inputs):
        try:
            parts.append(predictor.predict(x, last_interval=float(intervals[i])))
            kept[i] = True
        except PredictionError as error:
            tqdm.write(f"skipping a sequence: {error}")
    failed = int((~kept).sum())
    if not parts:
        return kept, None, failed
    return kept, Prediction(np.concatenate([p.frames for p in parts]), np.concatenate([p.std for p in parts])), failed


def measure_latency_ms(predictor: Predictor, sequences: list[np.ndarray],
                       last_intervals: list[float] | None = None) -> dict[str, float | None]:
    """p50/p99 of single-sequence predict() calls, as the node makes them (batch of one)."""
    times = []
    intervals = last_intervals or [1.0] * len(sequences)
    for sequence, interval in zip(sequences, intervals):
        start = time.perf_counter()
        try:
            predictor.predict(sequence, last_interval=interval)
        except PredictionError:
            continue
        times.append((time.perf_counter() - start) * 1000.0)
    if not times:
        return {"p50": None, "p99": None}
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


# -- the whole run ---------------------------------------------------------------------------


def evaluate(
    source: FrameSource,
    predictor: Predictor,
    counts: StreamCounts,
    batch_size: int = 16,
    latency_runs: int = 50,
    max_gap_periods: float = 1.5,
    progress: bool = True,
    motion_threshold: float = metrics.MOTION_THRESHOLD_PX,
    strips: StripSelector | None = None,
    min_moving_fraction: float = MIN_MOVING_FRACTION,
    prediction_period: float = 0.0,
) -> dict:
    """Score ``predictor`` and the baselines on ``source``; returns the metrics.json content.
    ``strips``, when given, collects the sequences the report draws. ``prediction_period``:
    as the node's parameter (0: the camera's own for a rate-agnostic model, else the model's);
    ValueError where the model does not allow it."""
    md = predictor.metadata
    period, period_source = choose_period(md.frame_period, prediction_period)
    buffer = FrameBuffer(md.input_frames, period, max_gap_periods=max_gap_periods)
    flow = FlowExtrapolation()
    scorer = Scorer(predictor.horizon, flow, motion_threshold, strips, min_moving_fraction)
    failed = 0
    latency_inputs: list[Sample] = []
    periods: list[float] = []  # of the sequences scored
    batch: list[Sample] = []

    def score(batch: list[Sample]) -> int:
        inputs = np.stack([s.inputs for s in batch])
        kept, prediction, failed = predict_batch(predictor, inputs, np.array([s.last_interval for s in batch]))
        periods.extend(s.period for s, keep in zip(batch, kept) if keep)
        if prediction is not None:
            scorer.score(inputs[kept], np.stack([s.targets for s in batch])[kept], prediction,
                         [s.stamp for s, keep in zip(batch, kept) if keep])
        return failed

    frames = model_frames(source, md.height, md.width, md.channels, counts, progress)
    for sample in samples_with_futures(frames, buffer, predictor.horizon, counts):
        batch.append(sample)
        if len(latency_inputs) < latency_runs:
            latency_inputs.append(sample)
        if len(batch) == batch_size:
            failed += score(batch)
            batch = []
    if batch:
        failed += score(batch)
    if scorer.scored == 0:
        raise EvaluationError(_why_nothing_scored(counts, md.input_frames, predictor.horizon, buffer))
    predictor.warm_up()
    latency = measure_latency_ms(predictor, [s.inputs for s in latency_inputs],
                                 [s.last_interval for s in latency_inputs])
    result = metrics_dict(scorer, latency, counts, (md.height, md.width), md.frame_period, md.input_frames,
                          float(np.median(periods)), period_source)
    result.update(failed_predictions=failed, mode="offline",
                  latency_measured="single-sequence predict() calls in this process")
    return result


def _why_nothing_scored(counts: StreamCounts, n: int, k: int, buffer: FrameBuffer) -> str:
    at = ("at the camera's own period" if buffer.camera_mode
          else f"at the prediction period of {buffer.fixed_period:.4f} s ({1 / buffer.fixed_period:.1f} Hz)")
    slow = buffer.slow_camera_reason()
    return (
        f"no sequence of {n} frames with {k} future frames {at}: read {counts.read} frames, rejected "
        f"{counts.rejected}, kept {counts.kept}, skipped {counts.skipped}, buffer restarts {counts.restarts}, "
        f"off schedule {counts.off_schedule} "
        + (f"({slow})" if slow else "(a stream slower than the prediction period, or with gaps, restarts the buffer "
                                     "at every frame; a short one has too few frames)")
    )


def _round(values: list[float | None], digits: int) -> list[float | None]:
    return [None if v is None or not math.isfinite(v) else round(v, digits) for v in values]


def metrics_dict(scorer: Scorer, latency: dict, counts: StreamCounts, resolution: tuple[int, int],
                 frame_period: float | str, input_frames: int, prediction_period: float | None = None,
                 prediction_period_source: str = "model") -> dict:
    """The metrics.json content of a finished ``scorer``: the contract's fields first, then extras.
    frame_period: the model's (metadata: seconds or "camera"); prediction_period: the seconds
    actually predicted at (the median over the sequences scored at the camera's own period)."""
    mean = scorer.scores.mean
    result = {
        "horizon": list(range(1, scorer.horizon + 1)),
        "frames": scorer.scored,
        "resolution": list(resolution),
    }
    for method in METHODS:
        result[method] = {"psnr": _round(mean(f"{method}.psnr"), 3), "ssim": _round(mean(f"{method}.ssim"), 4)}
    result["uncertainty"] = {
        "coverage_2sigma": _round(mean("coverage_2sigma"), 4),
        "spearman": _round(mean("spearman"), 4),
    }
    result["latency_ms"] = {name: None if v is None else round(v, 3) for name, v in latency.items()}
    # extras beyond the contract's schema
    result["sharpness_diff"] = {method: _round(mean(f"{method}.sharpness"), 3) for method in METHODS}
    result["moving"] = {
        "threshold_px": scorer.motion_threshold,
        "min_fraction": scorer.min_moving_fraction,
        "mask": metrics.MOTION_MASK_METHOD,
        "pixel_fraction": _round(mean("moving_fraction"), 4),
        "frames": scorer.scores.count("moving.model.psnr"),
    }
    for method in METHODS:
        result["moving"][method] = {
            "psnr": _round(mean(f"moving.{method}.psnr"), 3),
            "ssim": _round(mean(f"moving.{method}.ssim"), 4),
            "sharpness_diff": _round(mean(f"moving.{method}.sharpness"), 3),
        }
    result["frame_period"] = frame_period
    if prediction_period is None:  # not given: the model's fixed period (unknown for a rate-agnostic one)
        prediction_period = None if frame_period == CAMERA_PERIOD else float(frame_period)
    result["prediction_period"] = None if prediction_period is None else round(prediction_period, 9)
    result["prediction_period_source"] = prediction_period_source
    result["input_frames"] = input_frames
    result["stream"] = vars(counts).copy()
    result["flow_method"] = scorer.flow.describe()
    result["notes"] = (
        "frames: buffered sequences scored, each with all K future frames; "
        "PSNR (peak 255, capped at 100 dB) and SSIM (11x11 Gaussian window, sigma 1.5) on 8-bit frames, "
        "averaged over sequences per horizon; moving: the same on the pixels whose flow from the last observed "
        "frame to the true future frame exceeds threshold_px, averaged over the frames where such pixels cover at "
        "least min_fraction of the frame (moving.frames per horizon); "
        "uncertainty: per-frame coverage of |error| <= 2 sigma and per-frame Spearman correlation of sigma with "
        "|error|, averaged"
    )
    return result


# -- output ----------------------------------------------------------------------------------


def write_outputs(result: dict, out_dir: Path, strips: StripSelector | None = None, figures: bool = True) -> None:
    """metrics.json, then report.md with its plots and strips (eval_report)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    write_report(result, out_dir, strips, figures)


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m video_predictor.evaluate", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--bag", help="rosbag2 folder (sqlite3 or mcap) or ROS 1 .bag file")
    source.add_argument("--video", help="video file readable by OpenCV (offline only)")
    source.add_argument("--frames", help="folder of PNG/JPG frames in name order (needs --fps; offline only)")
    parser.add_argument("--topic", default=DEFAULT_TOPIC,
                        help="image topic in the bag; live: also the topic replayed and listened to (default %(default)s)")
    parser.add_argument("--fps", type=float, help="frame rate of --frames, or to override --video's")
    parser.add_argument("--out", required=True, help="output folder for metrics.json, report.md and the figures")
    parser.add_argument("--motion-threshold", type=float, default=metrics.MOTION_THRESHOLD_PX,
                        help="moving-area mask: flow magnitude in pixels, at the scored resolution, from the last "
                             "observed frame to the true future frame above which a pixel counts as moving "
                             "(default %(default)s)")
    parser.add_argument("--min-moving-fraction", type=float, default=MIN_MOVING_FRACTION,
                        help="moving-area scores leave out frames whose moving area covers less than this fraction "
                             "of the frame (default %(default)s)")
    parser.add_argument("--prediction-period", type=float, default=0.0,
                        help="as the node's parameter: seconds between predicted frames; 0 = the camera's own period "
                             "for a rate-agnostic model, else the model's (offline only; live: the node's)")
    parser.add_argument("--max-gap-periods", type=float, default=1.5,
                        help="as the node's parameter: a longer gap between frames restarts the buffer")
    parser.add_argument("--no-figures", action="store_true", help="no PNG plots or image strips")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    offline = parser.add_argument_group("offline (the default): the model runs in this process")
    offline.add_argument("--model", default="", help="model file (.pt or .onnx); default: the node's packaged model")
    offline.add_argument("--backend", default="auto", choices=BACKENDS)
    offline.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    offline.add_argument("--horizon", type=int, default=0, help="frames K to predict; 0 = the model's own")
    offline.add_argument("--samples", type=int, default=1, help="samples per prediction for stochastic models")
    offline.add_argument("--threads", type=int, default=0, help="CPU threads for inference; 0 = the backend's default")
    offline.add_argument("--batch-size", type=int, default=16, help="sequences per model call while scoring")
    offline.add_argument("--latency-runs", type=int, default=50, help="single-sequence calls timed for latency_ms")

    live = parser.add_argument_group("live: a running predictor_node over ROS 2")
    live.add_argument("--live", action="store_true",
                      help="score a running predictor_node: replay --bag to it (or listen) and score what it publishes")
    live.add_argument("--listen-only", action="store_true",
                      help="do not replay; listen while you play the bag yourself (ros2 bag play --clock BAG)")
    live.add_argument("--rate", type=float, default=1.0, help="replay speed factor (default %(default)s)")
    live.add_argument("--clock", action="store_true",
                      help="publish the bag's recorded times on /clock while replaying (a node with use_sim_time:=true)")
    live.add_argument("--domain-id", type=int, default=None, help="ROS domain (default: ROS_DOMAIN_ID, else 0)")
    live.add_argument("--wait", type=float, default=60.0,
                      help="seconds to wait for the node (replaying) or the first image (listening) (default %(default)s)")
    live.add_argument("--idle-timeout", type=float, default=3.0,
                      help="stop listening once nothing arrived for this many seconds (default %(default)s)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.latency_runs < 1:
        parser.error("--batch-size and --latency-runs must be >= 1")
    if not args.motion_threshold >= 0:
        parser.error("--motion-threshold must be >= 0 pixels")
    if not 0 <= args.min_moving_fraction <= 1:
        parser.error("--min-moving-fraction must be in [0, 1]")
    if not args.prediction_period >= 0:
        parser.error("--prediction-period must be >= 0 s")
    if args.live:
        if args.prediction_period:
            parser.error("--live scores the running node at its own period: set the node's prediction_period instead")
        if args.video or args.frames:
            parser.error("--live replays a bag: use --bag (or --listen-only)")
        if not args.bag and not args.listen_only:
            parser.error("--live needs --bag to replay, or --listen-only")
        if args.model:
            parser.error("--live scores the running node's own model: set the node's model parameter instead of --model")
        if args.clock and args.listen_only:
            parser.error("--clock publishes /clock while replaying; with --listen-only, ros2 bag play --clock does")
        if args.rate <= 0 or args.wait <= 0 or args.idle_timeout <= 0:
            parser.error("--rate, --wait and --idle-timeout must be > 0")
    else:
        if not (args.bag or args.video or args.frames):
            parser.error("one of --bag, --video or --frames is required")
        if args.listen_only or args.clock:
            parser.error("--listen-only and --clock belong to --live")
    return args


def _run_offline(args: argparse.Namespace, strips: StripSelector) -> dict:
    counts = StreamCounts()
    if args.bag:
        source = bag_source(args.bag, args.topic, counts)
    elif args.video:
        source = video_source(args.video, args.fps)
    else:
        source = folder_source(args.frames, args.fps)
    predictor, reason = create_predictor(args.model, args.backend, args.device, args.horizon, args.samples,
                                         args.threads)
    result = evaluate(source, predictor, counts, args.batch_size, args.latency_runs, args.max_gap_periods,
                      progress=not args.no_progress, motion_threshold=args.motion_threshold, strips=strips,
                      min_moving_fraction=args.min_moving_fraction, prediction_period=args.prediction_period)
    result.update(
        source=source.name,
        model_file=args.model or str(default_model_path()),
        backend=predictor.backend_name,
        backend_reason=reason,
    )
    return result


def _run_live(args: argparse.Namespace, strips: StripSelector) -> dict:
    from video_predictor.evaluation import live

    options = live.LiveOptions(
        bag=args.bag, topic=args.topic, listen_only=args.listen_only, rate=args.rate, clock=args.clock,
        domain_id=args.domain_id, wait=args.wait, idle_timeout=args.idle_timeout, progress=not args.no_progress)
    try:
        return live.run(options, args.motion_threshold, args.max_gap_periods, strips, args.min_moving_fraction)
    except live.LiveError as error:
        raise EvaluationError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    """Exit code 0 on success, 2 when the input, model or arguments cannot be used or nothing could be scored."""
    args = parse_args(argv)
    strips = StripSelector()
    try:
        result = _run_live(args, strips) if args.live else _run_offline(args, strips)
    except (bags.BagError, video.VideoError, ModelLoadError, EvaluationError, ValueError) as error:
        print(f"evaluate: error: {error}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    write_outputs(result, out_dir, strips, figures=not args.no_figures)
    print(report_markdown(result))
    print(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'report.md'}"
          + ("" if args.no_figures else " and its figures"))
    return 0
