"""In-process cost of each stage the node runs per camera frame, on real carphone frames.

The stages are the node's own calls (``video_predictor/node.py``), in its order:

    decode       image_to_array(msg)                         sensor_msgs/Image -> numpy (a view for rgb8)
    preprocess   match_channels(fit_to_model(image, H, W))   centre crop + area resize to the model
    buffer       FrameBuffer.push + sequence()               the rolling buffer and its (N, H, W, C) stack
    inference    Predictor.predict(frames)                   the backend, all K steps (and S samples)
    postprocess  unit_to_uint8 + array_to_image + float_array_to_image, k = 1..K   message building
    publish      Publisher.publish of the K frames and K maps, with a matched reliable reader

Messages are CDR round-tripped first, so ``msg.data`` has the type a subscription callback
gets. The publish stage's reader lives in a second rclpy context of this process and is never
spun: it measures serialisation and the DDS write, not a consumer (the end-to-end run in
``e2e.py`` has a real one in another process).

Also: ``model_variant`` (the default model at another resolution or horizon, exported once and
cached) and ``time_flow`` (the classical Farneback baseline at the same resolution).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from video_predictor.contract import split_ns, stamp_to_ns
from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.frame_buffer import FrameBuffer
from video_predictor.core.pixels import image_to_array, match_channels, unit_to_uint8
from video_predictor.core.predictor import Predictor
from video_predictor.core.preprocess import fit_to_model
from video_predictor.io.video import carphone_clip, video_frames
from video_predictor.ros.image_messages import array_to_image, float_array_to_image

STAGES = ("decode", "preprocess", "buffer", "inference", "postprocess", "publish")
CAMERA_PERIOD_NS = round(1e9 / 30.0)
FIRST_STAMP_NS = 1_000_000 * 1_000_000_000  # far from zero and from wall time
NO_LIMIT = 1 << 30


def percentiles(values_ms: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p90/p99 and the mean, in ms, rounded to 0.01 ms."""
    values = np.asarray(values_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no samples to summarise")
    return {"p50": round(float(np.percentile(values, 50)), 2), "p90": round(float(np.percentile(values, 90)), 2),
            "p99": round(float(np.percentile(values, 99)), 2), "mean": round(float(values.mean()), 2),
            "n": int(values.size)}


def load_clip(frames: int = 0) -> list[np.ndarray]:
    """The carphone clip (176x144 RGB, 120 frames); ``frames`` > 0 keeps the first ones."""
    clip = [frame.image for frame in video_frames(carphone_clip())]
    return clip[:frames] if frames > 0 else clip


# -- model variants --------------------------------------------------------------------------


def model_variant(base_pt: Path, height: int, width: int, horizon: int, cache_dir: Path) -> Path:
    """An ONNX file (with its .pt sibling) of ``base_pt``'s weights at height x width and K = horizon.

    The multi-scale model is fully convolutional, so the same weights run at any size whose
    sides divide by 2**(scales - 1); only the metadata and the exported graph change. Built
    with ``training.export`` (which checks ONNX Runtime against PyTorch) and cached under
    ``cache_dir`` by the source file's hash; returns the base model's own ONNX sibling when
    nothing changes."""
    from video_predictor.core.model_file import load_model_file, save_model_file

    metadata, state_dict, _ = load_model_file(base_pt)
    if (metadata.height, metadata.width, metadata.horizon) == (height, width, horizon) \
            and base_pt.with_suffix(".onnx").is_file():
        return base_pt.with_suffix(".onnx")
    digest = hashlib.sha256(base_pt.read_bytes()).hexdigest()[:12]
    stem = cache_dir / f"{base_pt.stem}-{digest}-{height}x{width}-k{horizon}"
    onnx_path = stem.with_suffix(".onnx")
    if onnx_path.is_file() and stem.with_suffix(".pt").is_file():
        return onnx_path
    from training.export import export_onnx  # offline tool: benchmarks may use it, the runtime never does

    cache_dir.mkdir(parents=True, exist_ok=True)
    save_model_file(stem.with_suffix(".pt"), replace(metadata, height=height, width=width, horizon=horizon),
                    state_dict)
    export_onnx(stem.with_suffix(".pt"), onnx_path)
    return onnx_path


# -- per-stage timing ---------------------------------------------------------------------------


def camera_messages(clip: list[np.ndarray], count: int, period_ns: int = CAMERA_PERIOD_NS):
    """``count`` rgb8 Image messages of the looping clip, stamped ``period_ns`` apart (30 Hz by
    default; give the model's period so that the buffer keeps every frame), as a subscription gets them."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    messages = []
    for i in range(count):
        rgb = clip[i % len(clip)]
        h, w, _ = rgb.shape
        msg = Image(height=h, width=w, encoding="rgb8", step=3 * w, data=rgb.tobytes())
        msg.header.frame_id = "camera"
        msg.header.stamp.sec, msg.header.stamp.nanosec = split_ns(FIRST_STAMP_NS + i * period_ns)
        messages.append(deserialize_message(serialize_message(msg), Image))
    return messages


class PublishTarget:
    """The node's two output publishers (its QoS) with a matched, never-spun reliable reader."""

    def __init__(self, horizon: int, domain_id: int) -> None:
        import rclpy
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(5, horizon), reliability=ReliabilityPolicy.RELIABLE)
        self.contexts = [rclpy.Context(), rclpy.Context()]
        for context in self.contexts:
            rclpy.init(context=context, domain_id=domain_id)
        self.nodes = [Node(f"bench_stages_pub_k{horizon}", context=self.contexts[0]),
                      Node(f"bench_stages_sub_k{horizon}", context=self.contexts[1])]
        self.frames_pub = self.nodes[0].create_publisher(Image, "/bench/predicted_frames", qos)
        self.maps_pub = self.nodes[0].create_publisher(Image, "/bench/predicted_uncertainty", qos)
        for topic in ("/bench/predicted_frames", "/bench/predicted_uncertainty"):
            self.nodes[1].create_subscription(Image, topic, lambda _msg: None, qos)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (self.frames_pub.get_subscription_count()
                                                   and self.maps_pub.get_subscription_count()):
            time.sleep(0.02)

    def close(self) -> None:
        import rclpy

        for node, context in zip(self.nodes, self.contexts):
            node.destroy_node()
            rclpy.try_shutdown(context=context)


@dataclass
class StageTimes:
    """Milliseconds of each stage for every predicted frame (one list entry per frame, same order)."""

    times_ms: dict[str, list[float]]

    @property
    def frames(self) -> int:
        return len(self.times_ms["inference"])

    def summary(self) -> dict[str, dict[str, float]]:
        """Percentiles per stage, and of the per-frame sum of all stages (``total``)."""
        rows = {stage: percentiles(values) for stage, values in self.times_ms.items() if values}
        rows["total"] = percentiles(np.sum([values for values in self.times_ms.values() if values], axis=0))
        return rows


def time_stages(predictor: Predictor, messages: list, publish: PublishTarget | None, warmup: int = 5) -> StageTimes:
    """Run every message through the node's stages, timing each with perf_counter.

    Frames that only fill the buffer, and the first ``warmup`` predictions, are run but not
    recorded. Without ``publish`` the publish stage is left out."""
    md = predictor.metadata
    horizon = predictor.horizon
    buffer = FrameBuffer(md.input_frames, md.frame_period)
    times = {stage: [] for stage in STAGES}
    predicted = seen = 0
    clock = time.perf_counter
    for msg in messages:
        t0 = clock()
        image, encoding = image_to_array(msg, NO_LIMIT, NO_LIMIT)
        t1 = clock()
        frame = match_channels(fit_to_model(image, md.height, md.width), md.channels)
        t2 = clock()
        stamp_ns = stamp_to_ns(msg.header.stamp)
        buffer.push(stamp_ns / 1e9, frame, (msg.height, msg.width, encoding, msg.header.frame_id))
        sequence = buffer.sequence() if buffer.ready else None
        t3 = clock()
        if sequence is None:
            continue
        prediction = predictor.predict(sequence.frames, last_interval=sequence.last_interval)
        t4 = clock()
        built = []
        for k in range(horizon):
            stamp = stamp_ns + round((k + 1) * sequence.period * 1e9)
            header = Header(stamp=Time(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000),
                            frame_id=msg.header.frame_id)
            built.append((array_to_image(unit_to_uint8(prediction.frames[0, k]), "rgb8", header),
                          float_array_to_image(prediction.std[0, k], header)))
        t5 = clock()
        if publish is not None:
            for frame_msg, map_msg in built:
                publish.frames_pub.publish(frame_msg)
                publish.maps_pub.publish(map_msg)
        t6 = clock()
        seen += 1
        if seen <= warmup:
            continue
        predicted += 1
        for stage, (a, b) in zip(STAGES, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6))):
            if stage != "publish" or publish is not None:
                times[stage].append((b - a) * 1e3)
    if predicted == 0:
        raise ValueError(f"{len(messages)} messages gave no prediction after {warmup} warm-up ones; give more frames")
    return StageTimes({stage: values for stage, values in times.items() if values})


def time_flow(clip: list[np.ndarray], height: int, width: int, horizon: int, input_frames: int,
              runs: int) -> dict[str, float]:
    """Farneback flow extrapolation (``baselines.FlowExtrapolation``, the contract's settings) of
    ``horizon`` frames from sequences of the clip fitted to height x width: ms per call."""
    fitted = [fit_to_model(frame, height, width) for frame in clip]
    flow = FlowExtrapolation()
    times = []
    for i in range(runs + 3):
        start = (i % (len(fitted) - input_frames))
        sequence = np.stack(fitted[start : start + input_frames])
        t0 = time.perf_counter()
        flow(sequence, horizon)
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return percentiles(times)


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages, to judge how busy the machine was."""
    return [round(x, 2) for x in os.getloadavg()]
