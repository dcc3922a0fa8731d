"""Offline evaluation: replay recorded camera frames through the node's frame buffer and
predictor, and score the model against copy-last-frame and flow extrapolation.

    python -m video_predictor.evaluate --bag PATH [--topic /camera/image_raw] [--model FILE] --out DIR

Every frame is fitted to the model's resolution exactly as the node does it; a buffered
sequence is scored at k = 1..K against the frames the same buffer keeps k model periods
later, and only sequences with all K futures count, so every horizon averages over the
same sequences. Writes DIR/metrics.json (the contract's schema) and DIR/report.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Iterable, Iterator, NamedTuple

import numpy as np
from tqdm import tqdm

from video_predictor import bag_io, metrics, video_io
from video_predictor.backends import BACKENDS, ModelLoadError, create_predictor, default_model_path
from video_predictor.baselines import FlowExtrapolation, copy_last
from video_predictor.frame_buffer import FrameBuffer, PushResult
from video_predictor.image_codec import match_channels, unit_to_uint8
from video_predictor.predictor import Prediction, PredictionError, Predictor
from video_predictor.preprocess import fit_to_model

DEFAULT_TOPIC = "/camera/image_raw"
METHODS = ("model", "copy_last", "flow")


class EvaluationError(ValueError):
    """The evaluation cannot produce numbers (e.g. no complete sequence); says why."""


class SourceFrame(NamedTuple):
    stamp: float  # seconds
    key: Hashable  # stream format; a change restarts the buffer, as in the node
    image: np.ndarray  # RGB (H, W, 3) or grey (H, W, 1) uint8, camera resolution


class FrameSource(NamedTuple):
    frames: Iterator[SourceFrame]
    total: int | None  # for the progress bar
    name: str


@dataclass
class StreamCounts:
    read: int = 0
    rejected: int = 0  # undecodable messages (the node would reject them too)
    kept: int = 0
    skipped: int = 0  # too soon for the model's frame period, or a duplicate stamp
    restarts: int = 0


@dataclass(frozen=True)
class Sample:
    inputs: np.ndarray  # (N, H, W, C) uint8, model resolution, oldest first
    targets: np.ndarray  # (K, H, W, C) uint8: the frames kept 1..K periods after the newest input


# -- frame sources ---------------------------------------------------------------------------


def bag_source(path: str, topic: str, counts: StreamCounts) -> FrameSource:
    total = bag_io.count_image_messages(path, topic)  # also checks the topic before any work

    def on_reject(stamp: float, reason: str) -> None:
        counts.rejected += 1
        tqdm.write(f"skipping image at {stamp:.3f} s: {reason}")

    def frames() -> Iterator[SourceFrame]:
        for msg in bag_io.read_image_messages(path, topic, on_reject=on_reject):
            key = (msg.image.shape[0], msg.image.shape[1], msg.encoding, msg.frame_id)  # the node's key
            yield SourceFrame(msg.stamp, key, msg.image)

    return FrameSource(frames(), total, f"{path} {topic}")


def _timed_source(frames: Iterator[video_io.TimedFrame], total: int | None, name: str) -> FrameSource:
    return FrameSource((SourceFrame(f.stamp, f.image.shape, f.image) for f in frames), total, name)


def video_source(path: str, fps: float | None) -> FrameSource:
    return _timed_source(video_io.video_frames(path, fps), video_io.video_frame_count(path), path)


def folder_source(folder: str, fps: float | None) -> FrameSource:
    if fps is None:
        raise video_io.VideoError(f"{folder}: a frame folder has no timing; give its frame rate with --fps")
    return _timed_source(video_io.folder_frames(folder, fps), len(video_io.frame_files(folder)), folder)


# -- sequences and their futures -------------------------------------------------------------


def samples_with_futures(
    frames: Iterable[tuple[float, Hashable, np.ndarray]], buffer: FrameBuffer, horizon: int, counts: StreamCounts
) -> Iterator[Sample]:
    """Push (stamp, key, model-resolution frame) through ``buffer``; yield every full
    sequence once the buffer has kept ``horizon`` more frames after it, without a restart."""
    waiting: deque[tuple[np.ndarray, list[np.ndarray]]] = deque()
    for stamp, key, frame in frames:
        result = buffer.push(stamp, frame, key)
        if result in (PushResult.SKIPPED, PushResult.DUPLICATE):
            counts.skipped += 1
            continue
        counts.kept += 1
        if result is PushResult.RESTARTED:
            counts.restarts += 1
            waiting.clear()  # their futures are gone with the old stream
        else:
            for _, futures in waiting:
                futures.append(frame)
            while waiting and len(waiting[0][1]) == horizon:
                inputs, futures = waiting.popleft()
                yield Sample(inputs, np.stack(futures))
        if buffer.ready:
            waiting.append((buffer.sequence().frames, []))


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


class Scorer:
    """Runs the model and the baselines on batches of samples and collects their scores."""

    def __init__(self, predictor: Predictor, flow: FlowExtrapolation) -> None:
        self.predictor = predictor
        self.flow = flow
        self.scores = HorizonScores(predictor.horizon)
        self.scored = 0
        self.failed = 0  # samples whose prediction was NaN/Inf

    def score(self, batch: list[Sample]) -> None:
        inputs = np.stack([s.inputs for s in batch])
        targets = np.stack([s.targets for s in batch])
        kept, prediction = self._predict(inputs)
        if not kept.any():
            return
        inputs, targets = inputs[kept], targets[kept]
        k = self.predictor.horizon
        predicted = {
            "model": unit_to_uint8(prediction.frames),  # the 8-bit frames the node publishes
            "copy_last": np.stack([copy_last(x, k) for x in inputs]),
            "flow": np.stack([self.flow(x, k) for x in inputs]),
        }
        for method, frames in predicted.items():
            self.scores.add(f"{method}.psnr", metrics.psnr(frames, targets))
            self.scores.add(f"{method}.ssim", metrics.ssim(frames, targets))
            self.scores.add(f"{method}.sharpness", metrics.sharpness_difference(frames, targets))
        error = prediction.frames - targets.astype(np.float32) / 255.0
        self.scores.add("coverage_2sigma", metrics.coverage_2sigma(error, prediction.std))
        self.scores.add("spearman", metrics.uncertainty_spearman(error, prediction.std))
        self.scored += len(inputs)

    def _predict(self, inputs: np.ndarray) -> tuple[np.ndarray, Prediction | None]:
        """Predict a batch; on NaN/Inf, retry one by one and drop only the bad samples."""
        try:
            return np.ones(len(inputs), bool), self.predictor.predict(inputs)
        except PredictionError:
            pass
        kept, parts = np.zeros(len(inputs), bool), []
        for i, x in enumerate(inputs):
            try:
                parts.append(self.predictor.predict(x))
                kept[i] = True
            except PredictionError as error:
                self.failed += 1
                tqdm.write(f"skipping a sequence: {error}")
        if not parts:
            return kept, None
        return kept, Prediction(np.concatenate([p.frames for p in parts]), np.concatenate([p.std for p in parts]))


def measure_latency_ms(predictor: Predictor, sequences: list[np.ndarray]) -> dict[str, float | None]:
    """p50/p99 of single-sequence predict() calls, as the node makes them (batch of one)."""
    times = []
    for sequence in sequences:
        start = time.perf_counter()
        try:
            predictor.predict(sequence)
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
) -> dict:
    """Score ``predictor`` and the baselines on ``source``; returns the metrics.json content."""
    md = predictor.metadata
    buffer = FrameBuffer(md.input_frames, md.frame_period, max_gap_periods=max_gap_periods)
    flow = FlowExtrapolation()
    scorer = Scorer(predictor, flow)
    latency_inputs: list[np.ndarray] = []
    batch: list[Sample] = []

    def fitted() -> Iterator[tuple[float, Hashable, np.ndarray]]:
        for frame in tqdm(source.frames, total=source.total, desc="evaluating", unit="frame", disable=not progress):
            counts.read += 1
            yield frame.stamp, frame.key, match_channels(fit_to_model(frame.image, md.height, md.width), md.channels)

    for sample in samples_with_futures(fitted(), buffer, predictor.horizon, counts):
        batch.append(sample)
        if len(latency_inputs) < latency_runs:
            latency_inputs.append(sample.inputs)
        if len(batch) == batch_size:
            scorer.score(batch)
            batch = []
    if batch:
        scorer.score(batch)
    if scorer.scored == 0:
        raise EvaluationError(_why_nothing_scored(counts, md.input_frames, predictor.horizon, md.frame_period))
    predictor.warm_up()
    return _metrics_dict(scorer, measure_latency_ms(predictor, latency_inputs), counts, flow)


def _why_nothing_scored(counts: StreamCounts, n: int, k: int, period: float) -> str:
    return (
        f"no sequence of {n} frames with {k} future frames at the model's period of {period:.4f} s "
        f"({1 / period:.1f} Hz): read {counts.read} frames, rejected {counts.rejected}, kept {counts.kept}, "
        f"skipped {counts.skipped}, buffer restarts {counts.restarts} (a stream slower than the model's rate, "
        "or with gaps, restarts the buffer at every frame)"
    )


def _round(values: list[float | None], digits: int) -> list[float | None]:
    return [None if v is None or not math.isfinite(v) else round(v, digits) for v in values]


def _metrics_dict(scorer: Scorer, latency: dict, counts: StreamCounts, flow: FlowExtrapolation) -> dict:
    md = scorer.predictor.metadata
    mean = scorer.scores.mean
    result = {
        "horizon": list(range(1, scorer.predictor.horizon + 1)),
        "frames": scorer.scored,
        "resolution": [md.height, md.width],
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
    result["frame_period"] = md.frame_period
    result["input_frames"] = md.input_frames
    result["failed_predictions"] = scorer.failed
    result["stream"] = vars(counts).copy()
    result["flow_method"] = flow.describe()
    result["notes"] = (
        "frames: buffered sequences scored, each with all K future frames; "
        "PSNR (peak 255, capped at 100 dB) and SSIM (11x11 Gaussian window, sigma 1.5) on 8-bit frames, "
        "averaged over sequences per horizon; uncertainty: per-frame coverage of |error| <= 2 sigma and "
        "per-frame Spearman correlation of sigma with |error|, averaged; latency: single-sequence predict() calls"
    )
    return result


# -- output ----------------------------------------------------------------------------------


def _cell(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report_markdown(result: dict) -> str:
    """A human-readable report of a metrics dict: one table row per horizon."""
    lines = [
        "# Evaluation report",
        "",
        f"- source: {result.get('source', '?')}",
        f"- model: {result.get('model_file', '?')} (backend {result.get('backend', '?')})",
        f"- scored sequences: {result['frames']}, resolution {result['resolution'][0]}x{result['resolution'][1]}",
        f"- inference latency: p50 {_cell(result['latency_ms']['p50'], 1)} ms, p99 {_cell(result['latency_ms']['p99'], 1)} ms",
        f"- flow baseline: {result.get('flow_method', '?')}",
        "",
        "| k | model PSNR | copy-last PSNR | flow PSNR | model SSIM | copy-last SSIM | flow SSIM | coverage 2σ | Spearman |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, k in enumerate(result["horizon"]):
        cells = [str(k)]
        cells += [_cell(result[m]["psnr"][i], 2) for m in METHODS]
        cells += [_cell(result[m]["ssim"][i], 4) for m in METHODS]
        cells += [_cell(result["uncertainty"]["coverage_2sigma"][i], 3), _cell(result["uncertainty"]["spearman"][i], 3)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "PSNR in dB. " + result.get("notes", "")]
    return "\n".join(lines) + "\n"


def write_outputs(result: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "report.md").write_text(report_markdown(result))


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m video_predictor.evaluate", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bag", help="rosbag2 folder (sqlite3 or mcap) or ROS 1 .bag file")
    source.add_argument("--video", help="video file readable by OpenCV")
    source.add_argument("--frames", help="folder of PNG/JPG frames in name order (needs --fps)")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help="image topic in the bag (default %(default)s)")
    parser.add_argument("--fps", type=float, help="frame rate of --frames, or to override --video's")
    parser.add_argument("--model", default="", help="model file (.pt or .onnx); default: the node's packaged model")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--horizon", type=int, default=0, help="frames K to predict; 0 = the model's own")
    parser.add_argument("--samples", type=int, default=1, help="samples per prediction for stochastic models")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for inference; 0 = the backend's default")
    parser.add_argument("--max-gap-periods", type=float, default=1.5,
                        help="as the node's parameter: a longer gap between frames restarts the buffer")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per model call while scoring")
    parser.add_argument("--latency-runs", type=int, default=50, help="single-sequence calls timed for latency_ms")
    parser.add_argument("--out", required=True, help="output folder for metrics.json and report.md")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.latency_runs < 1:
        parser.error("--batch-size and --latency-runs must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Exit code 0 on success, 2 when the input, model or arguments cannot be used."""
    args = parse_args(argv)
    counts = StreamCounts()
    try:
        if args.bag:
            source = bag_source(args.bag, args.topic, counts)
        elif args.video:
            source = video_source(args.video, args.fps)
        else:
            source = folder_source(args.frames, args.fps)
        predictor, reason = create_predictor(args.model, args.backend, args.device, args.horizon, args.samples,
                                             args.threads)
        result = evaluate(source, predictor, counts, args.batch_size, args.latency_runs, args.max_gap_periods,
                          progress=not args.no_progress)
    except (bag_io.BagError, video_io.VideoError, ModelLoadError, EvaluationError, ValueError) as error:
        print(f"evaluate: error: {error}", file=sys.stderr)
        return 2
    result.update(
        source=source.name,
        model_file=args.model or str(default_model_path()),
        backend=predictor.backend_name,
        backend_reason=reason,
    )
    out_dir = Path(args.out)
    write_outputs(result, out_dir)
    print(report_markdown(result))
    print(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
