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

This module runs the offline evaluation and the command line; the frames come from
``sources``, are scored by ``scoring`` and written as a ``results.EvaluationResult``, the
same pieces live mode uses (which is why live never imports this module).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from video_predictor.backends import BACKENDS, ModelLoadError, create_predictor, default_model_path
from video_predictor.contract import ROOT_CAMERA_TOPIC
from video_predictor.core.adaptive_predictor import AdaptivePredictor, with_adaptation
from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.frame_buffer import FrameBuffer, choose_period
from video_predictor.core.predictor import PredictionError, Predictor
from video_predictor.evaluation import metrics
from video_predictor.evaluation.report import report_markdown, write_report
from video_predictor.evaluation.results import EvaluationResult, Latency, OfflineRun, Periods
from video_predictor.evaluation.scoring import MIN_MOVING_FRACTION, Scorer, StripSelector, predict_batch
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
from video_predictor.io import bags, video


class EvaluationError(ValueError):
    """The evaluation cannot produce numbers (e.g. no complete sequence); says why."""


def measure_latency(predictor: Predictor, sequences: list[np.ndarray],
                    last_intervals: list[float] | None = None) -> Latency:
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
        return Latency(None, None)
    return Latency(float(np.percentile(times, 50)), float(np.percentile(times, 99)))


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
) -> EvaluationResult:
    """Score ``predictor`` and the baselines on ``source``; ``to_dict()`` of the result is
    the metrics.json content. ``strips``, when given, collects the sequences the report
    draws. ``prediction_period``: as the node's parameter (0: the camera's own for a
    rate-agnostic model, else the model's); ValueError where the model does not allow it."""
    md = predictor.metadata
    period, period_source = choose_period(md.frame_period, prediction_period)
    buffer = FrameBuffer(md.input_frames, period, max_gap_periods=max_gap_periods)
    scorer = Scorer(predictor.horizon, FlowExtrapolation(), motion_threshold, strips, min_moving_fraction)
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
    adaptation = predictor.summary() if isinstance(predictor, AdaptivePredictor) else None
    predictor.warm_up()
    latency = measure_latency(predictor, [s.inputs for s in latency_inputs], [s.last_interval for s in latency_inputs])
    return EvaluationResult(scorer.summary(), latency, (md.height, md.width),
                            Periods(md.frame_period, float(np.median(periods)), period_source), md.input_frames,
                            counts, OfflineRun(failed, adaptation=adaptation))


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


# -- output ----------------------------------------------------------------------------------


def write_outputs(result: EvaluationResult, out_dir: Path, strips: StripSelector | None = None,
                  figures: bool = True) -> dict:
    """metrics.json, then report.md with its plots and strips; returns the metrics.json content."""
    document = result.to_dict()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(document, indent=2) + "\n")
    write_report(document, out_dir, strips, figures)
    return document


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m video_predictor.evaluate", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--bag", help="rosbag2 folder (sqlite3 or mcap) or ROS 1 .bag file")
    source.add_argument("--video", help="video file readable by OpenCV (offline only)")
    source.add_argument("--frames", help="folder of PNG/JPG frames in name order (needs --fps; offline only)")
    parser.add_argument("--topic", default=ROOT_CAMERA_TOPIC,
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
    offline.add_argument("--no-adapt", action="store_true",
                         help="score the model's output as it is, without the node's online adaptation (its "
                              "parameter adapt: blending with flow and copy-last, refitted as frames arrive)")
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


def _run_offline(args: argparse.Namespace, strips: StripSelector) -> EvaluationResult:
    counts = StreamCounts()
    if args.bag:
        source = bag_source(args.bag, args.topic, counts)
    elif args.video:
        source = video_source(args.video, args.fps)
    else:
        source = folder_source(args.frames, args.fps)
    predictor, reason = create_predictor(args.model, args.backend, args.device, args.horizon, args.samples,
                                         args.threads)
    predictor, adaptation = with_adaptation(predictor, not args.no_adapt)
    result = evaluate(source, predictor, counts, args.batch_size, args.latency_runs, args.max_gap_periods,
                      progress=not args.no_progress, motion_threshold=args.motion_threshold, strips=strips,
                      min_moving_fraction=args.min_moving_fraction, prediction_period=args.prediction_period)
    loaded = replace(result.run, source=source.name, model_file=args.model or str(default_model_path()),
                     backend=predictor.backend_name, backend_reason=reason, adaptation_note=adaptation)
    return replace(result, run=loaded)


def _run_live(args: argparse.Namespace, strips: StripSelector) -> EvaluationResult:
    from video_predictor.evaluation import live  # rclpy and the message packages: only for --live

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
    document = write_outputs(result, out_dir, strips, figures=not args.no_figures)
    print(report_markdown(document))
    print(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'report.md'}"
          + ("" if args.no_figures else " and its figures"))
    return 0
