"""benchmarks/harness.py and its parts: they run and return well-formed rows. No timing is
asserted here (the figures depend on the machine); the harness itself is never a timed test."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time

import numpy as np
import pytest

from ros_helpers import REPO, unique_domain_id

sys.path.insert(0, str(REPO / "benchmarks"))
stages = importlib.import_module("stages")
e2e = importlib.import_module("e2e")
adaptation_variants = importlib.import_module("adaptation_variants")
harness = importlib.import_module("harness")

from video_predictor.backends import create_predictor, tensorrt_available  # noqa: E402
from video_predictor.core.adaptive_predictor import AdaptivePredictor  # noqa: E402
from video_predictor.ros.replay import Published  # noqa: E402

DOMAIN = unique_domain_id(115)


def well_formed(stats: dict) -> bool:
    return set(stats) == {"p50", "p90", "p99", "mean", "n"} and 0 <= stats["p50"] <= stats["p90"] <= stats["p99"]


def test_percentiles_are_ordered_and_reject_no_samples():
    stats = stages.percentiles([1.0, 2.0, 3.0, 100.0])
    assert well_formed(stats) and stats["n"] == 4 and stats["p50"] == 2.5
    with pytest.raises(ValueError, match="no samples"):
        stages.percentiles([])


def test_stage_measurement_runs_every_stage_on_carphone_frames():
    predictor, _ = create_predictor(backend="onnxruntime")
    n = predictor.metadata.input_frames
    messages = stages.camera_messages(stages.load_clip(16), 14)
    assert (messages[0].height, messages[0].width, messages[0].encoding) == (144, 176, "rgb8")
    target = stages.PublishTarget(predictor.horizon, DOMAIN)
    try:
        assert target.frames_pub.get_subscription_count() == 1  # publish is timed against a matched reader
        times = stages.time_stages(predictor, messages, target, warmup=2)
    finally:
        target.close()
    # the first N - 1 frames only fill the buffer, then 2 warm-up predictions
    assert times.frames == 14 - (n - 1) - 2
    summary = times.summary()
    assert set(summary) == {*stages.STAGES, "total"}
    assert all(well_formed(s) and s["n"] == times.frames for s in summary.values())
    assert summary["total"]["mean"] >= summary["inference"]["mean"]


def test_stage_measurement_needs_enough_frames():
    predictor, _ = create_predictor(backend="onnxruntime")
    with pytest.raises(ValueError, match="no prediction"):
        stages.time_stages(predictor, stages.camera_messages(stages.load_clip(4), 4), None)


def test_flow_baseline_is_timed_at_the_requested_resolution():
    stats = stages.time_flow(stages.load_clip(10), 32, 48, horizon=3, input_frames=4, runs=5)
    assert well_formed(stats) and stats["n"] == 5


def test_cpu_seconds_reads_this_process():
    before = e2e.cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert e2e.cpu_seconds(os.getpid()) - before >= 0.1


def test_latency_is_published_to_kth_frame_received():
    period_ns, horizon = 33_333_333, 3
    sent = [Published(1_000 * period_ns + i * period_ns, 10.0 + i / 30) for i in range(3)]
    frames = []
    for i, p in enumerate(sent):  # k = 1..K in order, the K-th 20 ms + i ms after publication
        for k in range(1, horizon + 1):
            frames.append((p.stamp_ns + k * period_ns, p.sent_at + (0.005 * k if k < horizon else 0.020 + i / 1000)))
    latencies = e2e.latencies_ms(frames, sent, period_ns / 1e9, horizon)
    assert latencies == pytest.approx([20.0, 21.0, 22.0])


def test_node_command_carries_the_sweep_settings():
    command = e2e.node_command("/m.onnx", "torch", 1, 8, ["qos_depth:=3"])
    joined = " ".join(command)
    for part in ("--params-file", "backend:=torch", "threads:=1", "samples:=8", "model:=/m.onnx", "qos_depth:=3"):
        assert part in joined


def test_end_to_end_sweep_is_one_factor_at_a_time():
    args = argparse.Namespace(
        resolutions="64x64,128x128", horizons="1,5", samples="1,8", backends="onnxruntime,torch", rates="10,30",
        saturation=True, model="", threads=0)
    plan = harness.Plan(args)
    configs = harness.e2e_configs(plan)
    assert configs == [((64, 64), 5, 1, "onnxruntime", [10.0, 30.0], True),
                       ((128, 128), 5, 1, "onnxruntime", [10.0, 30.0], True),
                       ((64, 64), 1, 1, "onnxruntime", [30.0], False),
                       ((64, 64), 5, 8, "onnxruntime", [30.0], False),
                       ((64, 64), 5, 1, "torch", [30.0], False)]


def test_bad_sweep_values_are_refused():
    with pytest.raises(SystemExit, match="resolutions"):
        harness.main(["--resolutions", "64by64", "--only", "flow"])
    with pytest.raises(SystemExit):
        harness.main(["--only", "nothing"])


def test_quick_stage_measurement_writes_well_formed_rows(tmp_path):
    code = harness.main(["--quick", "--only", "stages,flow", "--resolutions", "64x64", "--horizons", "5",
                         "--samples", "1,8", "--backends", "onnxruntime,tensorrt", "--stage-frames", "12",
                         "--domain-id", str(DOMAIN), "--out-dir", str(tmp_path), "--name", "t"])
    assert code == 0
    data = json.loads((tmp_path / "t.json").read_text())
    rows = data["rows"]
    stage_rows = [r for r in rows if r["kind"] == "stages"]
    assert len(stage_rows) == 1
    row = stage_rows[0]
    assert row["config"] == {"resolution": "64x64", "horizon": 5, "samples": 1, "backend": "onnxruntime", "threads": 0}
    assert set(row["ms"]) == {*stages.STAGES, "total"} and all(well_formed(s) for s in row["ms"].values())
    assert len(row["load_average"]) == 3
    assert row["command"].startswith(".venv/bin/python benchmarks/harness.py --only stages --resolutions 64x64")
    flow = [r for r in rows if r["kind"] == "flow"]
    assert len(flow) == 1 and well_formed(flow[0]["ms"])
    skipped = {(r["config"].get("samples"), r["config"]["backend"]): r["reason"] for r in rows if r["kind"] == "skipped"}
    assert "deterministic" in skipped[(8, "onnxruntime")]  # the packaged model is deterministic
    if not tensorrt_available()[0]:
        assert "TensorRT cannot run here" in skipped[(None, "tensorrt")]
    report = (tmp_path / "t.md").read_text()
    assert "| 64x64 K=5 S=1 onnxruntime |" in report and row["command"] in report
    assert "inference <= 3x optical flow" in report  # the target is judged from the rows


def test_model_variant_exports_another_size_once(tmp_path):
    base = REPO / "video_predictor" / "pretrained" / "default.pt"
    path = stages.model_variant(base, 32, 48, 2, tmp_path)
    assert path.suffix == ".onnx" and path.with_suffix(".pt").is_file()
    mtime = path.stat().st_mtime_ns
    assert stages.model_variant(base, 32, 48, 2, tmp_path) == path and path.stat().st_mtime_ns == mtime  # cached
    predictor, _ = create_predictor(str(path), backend="onnxruntime")
    prediction = predictor.predict(np.zeros((4, 32, 48, 3), np.uint8))
    assert prediction.frames.shape == (1, 2, 32, 48, 3)
    assert stages.model_variant(base, 64, 64, 5, tmp_path) == base.with_suffix(".onnx")  # the model's own size


@pytest.mark.slow
def test_end_to_end_step_against_the_installed_node():
    node = e2e.NodeUnderTest("", "onnxruntime", domain_id=unique_domain_id(116))
    try:
        step = node.run_step(stages.load_clip(), 15.0, 3.0)
    finally:
        code = node.close()
    assert code == 0
    assert step.published == 45 and step.received_by_node + step.lost_in_transport == 45
    assert step.predicted > 0 and step.latency_ms is not None and well_formed(step.latency_ms)
    assert step.cpu_percent > 0 and step.rss_mb_start > 0


class FakeNode:
    """Drops frames above ``capacity_hz``."""

    def __init__(self, capacity_hz: float) -> None:
        self.capacity_hz = capacity_hz
        self.rates: list[float] = []

    def run_step(self, clip, rate_hz: float, duration_s: float):
        self.rates.append(rate_hz)
        dropped = 0 if rate_hz <= self.capacity_hz else 1
        return e2e.StepResult(rate_hz, duration_s, 10, 10, 0, dropped, 10 - dropped, 0, rate_hz, None, {}, 0.0,
                              0.0, 0.0, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("capacity, best, rates", [
    (50.0, 45.0, [20.0, 30.0, 45.0, 67.5]),  # stepping up until a step drops
    (12.0, 8.9, [20.0, 13.3, 8.9]),  # the first rate drops: stepping down
    (1.0, None, [20.0, 13.3, 8.9, 5.9, 3.9, 2.6]),  # nothing clean above the floor
    (1000.0, 101.2, [20.0, 30.0, 45.0, 67.5, 101.2]),  # the ceiling ends the search
])
def test_saturation_search_finds_the_highest_clean_rate(capacity, best, rates):
    node = FakeNode(capacity)
    found, steps = e2e.find_saturation(node, [], 20.0, 1.5, 120.0, 1.0)
    assert found == best and node.rates == rates and len(steps) == len(rates)


def test_convolution_cost_is_counted_per_scale_and_step(tmp_path):
    model = REPO / "video_predictor" / "pretrained" / "default.onnx"
    one, five = harness.convolution_mmac(model, 1), harness.convolution_mmac(model, 5)
    assert list(one) == ["scales.0", "scales.1", "scales.2"]  # the flow-anchored model's scales, coarse to fine
    assert all(v > 0 for v in one.values())
    assert five == one  # one pass gives all K steps
    # a recursive model (multiscale) runs every scale once per step
    from video_predictor.core.metadata import ModelMetadata
    from video_predictor.core.model_file import save_model_file
    from video_predictor.models import build_model

    config = {"input_frames": 2, "scales": [{"features": [4], "kernels": [3, 3]}] * 3}
    network = build_model("multiscale", config)
    save_model_file(tmp_path / "m.pt", ModelMetadata(family="multiscale", input_frames=2, horizon=5, height=32, width=32,
                                                     channels=3, frame_period=0.1, model_config=network.config.to_dict()),
                    network.state_dict())
    one, five = harness.convolution_mmac(tmp_path / "m.onnx", 1), harness.convolution_mmac(tmp_path / "m.onnx", 5)
    assert list(one) == ["scales.0", "scales.1", "scales.2"]
    assert sum(five.values()) == pytest.approx(5 * sum(one.values()), rel=0.01)


def test_adaptation_variants_replay_the_blend_the_node_publishes():
    # the script's baseline must be the shipped arithmetic, or its comparisons say nothing
    experts, targets, inputs = adaptation_variants.expert_predictions("", "carphone_pristine.mp4", 3)
    adaptive = AdaptivePredictor(create_predictor(backend="onnxruntime")[0])
    published = np.stack([adaptive.predict(window).frames[0] for window in inputs])
    replayed = adaptation_variants.replay_blend(experts, targets)
    difference = np.abs(np.round(published * 255).astype(np.int16) - replayed)
    assert difference.max() == 0
    lagged = adaptation_variants.replay_blend(experts, targets, lag=1)
    assert np.abs(lagged.astype(np.int16) - replayed).mean() > 0.01  # the variant is not the baseline
