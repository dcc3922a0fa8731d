"""Performance harness: per-stage cost in process, end to end over DDS, sweeps, targets.

    .venv/bin/python benchmarks/harness.py --quick              # ~2 minutes: sanity figures
    .venv/bin/python benchmarks/harness.py                      # the full sweep (estimated 20-30 minutes)
    .venv/bin/python benchmarks/harness.py --only e2e --resolutions 64x64 --horizons 5 --samples 1 \\
        --backends onnxruntime --rates 30 --duration 600 --no-saturation --name target_10min   # the 10-minute target run

What it measures (``stages.py`` and ``e2e.py`` say exactly how):
- stages: decode, preprocess, buffer, inference, postprocess, publish, and their sum, per
  frame of the carphone clip, in this process, p50/p90/p99;
- flow: Farneback flow extrapolation (``baselines.FlowExtrapolation``) of K frames at the
  same resolution, the classical method's cost, next to the model's inference;
- e2e: the installed ``predictor_node`` as a subprocess fed over DDS at each input rate:
  published -> K-th predicted frame received (p50/p90/p99), frames dropped (the node's
  counter + messages it never received), throughput, the node's CPU use and resident memory;
- saturation: the highest input rate with no frame dropped, stepping the rate up;
- profile: ONNX Runtime's profiler by operator type, and session options timed interleaved.

Sweeps: resolution x horizon K x samples S x backend for the stages; end to end, every
resolution at the first horizon and backend over every rate (+ saturation), then the other
horizons, samples and backends at the first resolution and the reference rate (30 Hz when
listed). S > 1 applies to stochastic models only and is skipped with a note for deterministic
ones; TensorRT is skipped with the reason where it cannot run. Other resolutions and horizons
are the packaged model's weights exported again (``stages.model_variant``; the model is fully
convolutional), cached in --cache-dir.

Writes benchmarks/results/<name>.md (tables; every row with the command that reproduces it)
and <name>.json. Every figure carries the load average at the time it was taken: on a busy
machine, rerun the same command when it is quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))  # training.export, for the model variants

from video_predictor.backends import (  # noqa: E402
    PRETRAINED_DIR,  # noqa: E402
    create_predictor,
    tensorrt_available,
)

import stages  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCRIPT = "benchmarks/harness.py"
PARTS = ("stages", "flow", "e2e", "profile")

QUICK = dict(resolutions="64x64,128x128", horizons="5", samples="1,8", backends="onnxruntime,torch,tensorrt",
             rates="30", stage_frames=60, duration=10.0, saturation_start=20.0, saturation_factor=1.5,
             saturation_duration=4.0, profile_runs=30)
FULL = dict(resolutions="64x64,128x128,128x160", horizons="1,5,10", samples="1,8",
            backends="onnxruntime,torch,tensorrt", rates="10,30,60", stage_frames=150, duration=30.0,
            saturation_start=10.0, saturation_factor=1.25, saturation_duration=8.0, profile_runs=200)


def parse_resolution(text: str) -> tuple[int, int]:
    height, sep, width = text.lower().partition("x")
    if not (sep and height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0):
        raise argparse.ArgumentTypeError(f"resolution {text!r}: expected HxW, e.g. 64x64")
    return int(height), int(width)


def parse_list(text: str, kind, what: str) -> list:
    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except (ValueError, argparse.ArgumentTypeError) as error:
        raise SystemExit(f"{SCRIPT}: bad --{what} {text!r}: {error}") from None
    if not values:
        raise SystemExit(f"{SCRIPT}: --{what} is empty")
    return values


def res_text(resolution: tuple[int, int]) -> str:
    return f"{resolution[0]}x{resolution[1]}"


class Plan:
    """The sweep's values, with the reference point every one-factor sweep starts from."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.resolutions = parse_list(args.resolutions, parse_resolution, "resolutions")
        self.horizons = parse_list(args.horizons, int, "horizons")
        self.samples = parse_list(args.samples, int, "samples")
        self.backends = parse_list(args.backends, str, "backends")
        self.rates = parse_list(args.rates, float, "rates")
        if any(k < 1 for k in self.horizons) or any(s < 1 for s in self.samples) or any(r <= 0 for r in self.rates):
            raise SystemExit(f"{SCRIPT}: horizons and samples must be >= 1, rates > 0")
        unknown = set(self.backends) - {"torch", "onnxruntime", "tensorrt"}
        if unknown:
            raise SystemExit(f"{SCRIPT}: unknown backend(s) {', '.join(sorted(unknown))}")
        self.resolution = (64, 64) if (64, 64) in self.resolutions else self.resolutions[0]
        self.horizon = 5 if 5 in self.horizons else self.horizons[0]
        self.backend = "onnxruntime" if "onnxruntime" in self.backends else self.backends[0]
        self.rate = 30.0 if 30.0 in self.rates else self.rates[0]

    def command(self, **overrides) -> str:
        """The harness command that reproduces one row (``overrides``: option -> value; None = a flag)."""
        a = self.args
        options = {"--only": None, "--model": a.model or None, "--threads": a.threads or None}
        options.update(overrides)
        parts = [".venv/bin/python", SCRIPT]
        for option, value in options.items():
            if value is None or value is False:
                continue
            parts += [option] if value is True else [option, str(value)]
        return " ".join(shlex.quote(p) for p in parts)


def base_model(args: argparse.Namespace) -> Path:
    path = Path(args.model) if args.model else PRETRAINED_DIR / "default.pt"
    pt = path.with_suffix(".pt")
    if not pt.is_file():
        raise SystemExit(f"{SCRIPT}: {pt}: the harness needs the model's .pt file to build other sizes")
    return pt


def variant(plan: Plan, resolution: tuple[int, int], horizon: int) -> Path:
    return stages.model_variant(base_model(plan.args), *resolution, horizon, plan.args.cache_dir)


def stochastic(model: Path) -> bool:
    """Whether the model samples (S applies), from its family as the backends decide it."""
    from video_predictor.core.model_file import load_model_file
    from video_predictor.models import uncertainty_kind

    metadata = load_model_file(model.with_suffix(".pt"))[0]
    return metadata.stochastic or uncertainty_kind(metadata.family, metadata.model_config)[1]


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or None."""
    if backend == "tensorrt":
        ok, why = tensorrt_available()
        return None if ok else f"TensorRT cannot run here: {why}"
    return None


def fmt(stats: dict | None) -> str:
    return "-" if not stats else f"{stats['p50']:.2f} / {stats['p90']:.2f} / {stats['p99']:.2f}"


# -- the parts ---------------------------------------------------------------------------------


def run_stages(plan: Plan, clip: list[np.ndarray], rows: list[dict]) -> None:
    from stages import PublishTarget, camera_messages, time_stages

    args = plan.args
    messages_by_period: dict[int, list] = {}  # stamped at the model's period: every frame is kept
    publish_cache: dict[int, PublishTarget] = {}
    try:
        for backend in plan.backends:
            reason = backend_unavailable(backend)
            if reason:
                rows.append(dict(kind="skipped", part="stages", config={"backend": backend}, reason=reason))
                continue
            for resolution in plan.resolutions:
                for horizon in plan.horizons:
                    try:
                        model = variant(plan, resolution, horizon)
                    except ValueError as error:  # e.g. a one-pass model asked for more than its K
                        rows.append(dict(kind="skipped", part="stages", config={
                            "resolution": res_text(resolution), "horizon": horizon, "backend": backend}, reason=str(error)))
                        continue
                    predictor, _ = create_predictor(str(model), backend=backend, threads=args.threads,
                                                    device="cuda" if backend == "tensorrt" else "cpu")
                    for samples in plan.samples:
                        config = {"resolution": res_text(resolution), "horizon": horizon, "samples": samples,
                                  "backend": backend, "threads": args.threads}
                        if samples > 1 and not predictor.metadata.stochastic:
                            rows.append(dict(kind="skipped", part="stages", config=config, reason=(
                                "deterministic model (metadata stochastic: false): samples do not apply; rerun "
                                "with --model on a stochastic (SVG) model file")))
                            continue
                        if hasattr(predictor, "samples"):
                            predictor.samples = samples
                        publish = publish_cache.setdefault(horizon, PublishTarget(horizon, args.domain_id))
                        print(f"stages: {config}", flush=True)
                        md = predictor.metadata  # a rate-agnostic model: the 30 Hz camera's own period
                        period_ns = stages.CAMERA_PERIOD_NS if md.rate_agnostic else round(md.fixed_period * 1e9)
                        messages = messages_by_period.setdefault(
                            period_ns, camera_messages(clip, args.stage_frames, period_ns))
                        times = time_stages(predictor, messages, publish)
                        rows.append(dict(kind="stages", config=config, frames=times.frames, ms=times.summary(),
                                         load_average=stages.load_average(), command=plan.command(
                                             **{"--only": "stages", "--resolutions": res_text(resolution),
                                                "--horizons": horizon, "--samples": samples, "--backends": backend,
                                                "--stage-frames": args.stage_frames})))
    finally:
        for target in publish_cache.values():
            target.close()


def run_flow(plan: Plan, clip: list[np.ndarray], rows: list[dict]) -> None:
    args = plan.args
    input_frames = 4
    for resolution in plan.resolutions:
        for horizon in plan.horizons:
            config = {"resolution": res_text(resolution), "horizon": horizon, "method": "Farneback flow extrapolation"}
            print(f"flow: {config}", flush=True)
            rows.append(dict(kind="flow", config=config,
                             ms=stages.time_flow(clip, *resolution, horizon, input_frames, args.stage_frames),
                             load_average=stages.load_average(),
                             command=plan.command(**{"--only": "flow", "--resolutions": res_text(resolution),
                                                     "--horizons": horizon, "--stage-frames": args.stage_frames})))


def e2e_configs(plan: Plan) -> list[tuple[tuple[int, int], int, int, str, list[float], bool]]:
    """(resolution, K, S, backend, rates, saturation) per node run, one factor at a time."""
    configs = [(resolution, plan.horizon, 1, plan.backend, plan.rates, plan.args.saturation)
               for resolution in plan.resolutions]
    configs += [(plan.resolution, k, 1, plan.backend, [plan.rate], False) for k in plan.horizons if k != plan.horizon]
    configs += [(plan.resolution, plan.horizon, s, plan.backend, [plan.rate], False) for s in plan.samples if s != 1]
    configs += [(plan.resolution, plan.horizon, 1, b, [plan.rate], False) for b in plan.backends if b != plan.backend]
    return configs


def run_e2e(plan: Plan, clip: list[np.ndarray], rows: list[dict]) -> None:
    from e2e import NodeUnderTest, find_saturation

    args = plan.args
    for resolution, horizon, samples, backend, rates, saturation in e2e_configs(plan):
        config = {"resolution": res_text(resolution), "horizon": horizon, "samples": samples, "backend": backend,
                  "threads": args.threads, "qos": "config/predictor.yaml (best effort, depth 5)"}
        reason = backend_unavailable(backend)
        try:
            model = variant(plan, resolution, horizon)
        except ValueError as error:  # e.g. a one-pass model asked for more than its K
            model, reason = None, reason or str(error)
        if reason is None and samples > 1 and not stochastic(model):
            reason = "deterministic model (metadata stochastic: false): samples do not apply"
        if reason:
            rows.append(dict(kind="skipped", part="e2e", config=config, reason=reason))
            continue
        command = dict(**{"--only": "e2e", "--resolutions": res_text(resolution), "--horizons": horizon,
                          "--samples": samples, "--backends": backend})
        print(f"e2e: starting predictor_node {config}", flush=True)
        node = NodeUnderTest(str(model), backend, args.threads, samples, domain_id=args.domain_id)
        try:
            config["node_backend"] = node.backend
            for rate in rates:
                step = node.run_step(clip, rate, args.duration)
                print(f"  {rate:g} Hz: {step.predicted} predicted, {step.dropped} dropped, latency {fmt(step.latency_ms)}"
                      f" ms, cpu {step.cpu_percent}%, load {step.load_average[0]}", flush=True)
                rows.append(dict(kind="e2e", config=config, **asdict(step), command=plan.command(
                    **command, **{"--rates": f"{rate:g}", "--duration": f"{args.duration:g}", "--no-saturation": True})))
            if saturation:
                best, steps = find_saturation(node, clip, args.saturation_start, args.saturation_factor,
                                              args.saturation_max, args.saturation_duration)
                for step in steps:
                    print(f"  saturation step {step.rate_hz:g} Hz: {step.dropped} dropped "
                          f"({step.dropped_by_node} by the node, {step.lost_in_transport} lost), "
                          f"throughput {step.throughput_hz} Hz, cpu {step.cpu_percent}%", flush=True)
                rows.append(dict(kind="saturation", config=config, saturation_hz=best,
                                 steps=[asdict(s) for s in steps], load_average=stages.load_average(),
                                 command=plan.command(**command, **{
                                     "--rates": f"{rates[0]:g}", "--duration": f"{args.duration:g}",
                                     "--saturation-start": f"{args.saturation_start:g}",
                                     "--saturation-factor": f"{args.saturation_factor:g}",
                                     "--saturation-duration": f"{args.saturation_duration:g}"})))
        finally:
            code = node.close()
            if code not in (0, None):
                print(f"  predictor_node exited with code {code}; its log: {node.log_path}", flush=True)


def convolution_mmac(model: Path, horizon: int) -> dict[str, float]:
    """Multiply-accumulates of the convolutions in one K-step rollout, in millions, per
    top-level submodule (for the multi-scale model: per scale, coarse to fine)."""
    import torch

    from video_predictor.core.model_file import load_model_file
    from video_predictor.models import build_model

    metadata, state_dict, _ = load_model_file(model.with_suffix(".pt"))
    network = build_model(metadata.family, metadata.model_config)
    network.load_state_dict(state_dict)
    totals: dict[str, float] = {}

    def count(name: str):
        def hook(module, _inputs, output) -> None:
            per_output = module.in_channels // module.groups * int(np.prod(module.kernel_size))
            totals[name] = totals.get(name, 0.0) + output[0].numel() * per_output / 1e6
        return hook

    for name, module in network.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(count(".".join(name.split(".")[:2])))
    frames = torch.zeros(1, metadata.input_frames, metadata.channels, metadata.height, metadata.width)
    extra = {"flow": torch.zeros(1, 2, metadata.height, metadata.width)} if metadata.flow_input else {}
    with torch.inference_mode():
        network.rollout(frames, horizon, **extra)
    return {name: round(value, 1) for name, value in totals.items()}


def run_profile(plan: Plan, rows: list[dict]) -> None:
    """ONNX Runtime's profiler by operator type at the reference point, and session options
    timed interleaved (so that the machine's load hits every variant alike)."""
    import collections

    import onnx
    import onnxruntime as ort

    args = plan.args
    model = variant(plan, plan.resolution, plan.horizon)
    h, w = plan.resolution
    frames = np.random.default_rng(0).integers(0, 256, (1, 4, h, w, 3)).astype(np.float32)
    ort.set_default_logger_severity(3)

    def session(threads: int = 0, level: str = "ORT_ENABLE_ALL", spinning: bool = True, fixed_batch: bool = False,
                profile: bool = False) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        if threads:
            options.intra_op_num_threads = threads
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if fixed_batch:
            options.add_free_dimension_override_by_name("batch", 1)
        if profile:
            options.enable_profiling = True
            options.profile_file_prefix = str(args.cache_dir / "ort_profile")
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    profile_command = {"--only": "profile", "--resolutions": res_text(plan.resolution), "--horizons": plan.horizon,
                       "--profile-runs": args.profile_runs}
    # operator types: where the kernel time goes
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    profiled = session(profile=True)
    for _ in range(args.profile_runs):
        profiled.run(None, {"frames": frames})
    events = json.loads(Path(profiled.end_profiling()).read_text())
    by_op, nodes, runs = collections.Counter(), collections.Counter(), 0
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
            nodes[event["args"]["op_name"]] += 1
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            runs += 1
    total = sum(by_op.values())
    conv = sum(d for op, d in by_op.items() if "Conv" in op)
    graph_nodes = len(onnx.load(str(model)).graph.node)
    rows.append(dict(kind="profile_ops", config={"resolution": res_text(plan.resolution), "horizon": plan.horizon,
                                                 "graph_nodes": graph_nodes},
                     conv_mmac=convolution_mmac(model, plan.horizon),
                     kernel_ms_per_run=round(total / runs / 1000, 2), conv_share=round(conv / total, 3),
                     kernels_per_run=sum(nodes.values()) // runs,
                     ops=[{"op": op, "ms_per_run": round(d / runs / 1000, 3), "share": round(d / total, 3),
                           "kernels_per_run": nodes[op] // runs} for op, d in by_op.most_common(12)],
                     load_average=stages.load_average(), command=plan.command(**profile_command)))

    variants = {"ORT defaults (ORT_ENABLE_ALL, its threads, spinning)": {},
                "intra-op threads 1": {"threads": 1}, "intra-op threads 2": {"threads": 2},
                "no spinning (the backend's setting)": {"spinning": False},
                "no spinning, batch fixed to 1 (free-dimension override)": {"spinning": False, "fixed_batch": True},
                "batch fixed to 1": {"fixed_batch": True}, "ORT_ENABLE_BASIC": {"level": "ORT_ENABLE_BASIC"}}
    sessions = {name: session(**options) for name, options in variants.items()}
    wall = {name: [] for name in sessions}
    cpu = {name: [] for name in sessions}
    for i in range(args.profile_runs + 10):
        for name, s in sessions.items():
            c0, w0 = time.process_time(), time.perf_counter()
            s.run(None, {"frames": frames})
            if i >= 10:
                wall[name].append((time.perf_counter() - w0) * 1e3)
                cpu[name].append((time.process_time() - c0) * 1e3)
    for name in sessions:
        rows.append(dict(kind="profile_options", config={"variant": name, "resolution": res_text(plan.resolution),
                                                         "horizon": plan.horizon},
                         ms=stages.percentiles(wall[name]), cpu_ms_p50=round(float(np.median(cpu[name])), 2),
                         load_average=stages.load_average(), command=plan.command(**profile_command)))


# -- report ------------------------------------------------------------------------------------


def targets(plan: Plan, rows: list[dict]) -> list[str]:
    """The issue's three targets, judged on the rows measured (or said to be unmeasured)."""
    lines = []
    ref = {"resolution": "64x64", "horizon": 5, "samples": 1, "backend": "onnxruntime"}

    def matches(row, **want) -> bool:
        return all(row["config"].get(k) == v for k, v in want.items())

    e2e30 = [r for r in rows if r["kind"] == "e2e" and matches(r, **ref) and r["rate_hz"] == 30.0]
    if e2e30:
        r = e2e30[-1]
        p99 = r["latency_ms"]["p99"] if r["latency_ms"] else float("nan")
        ok = p99 < 33.0 and r["dropped_by_node"] + r["lost_in_transport"] == 0
        lines.append(f"- 64x64 K=5 S=1 ONNX Runtime, 30 Hz, end-to-end p99 < 33 ms with no frame dropped: "
                     f"**{'met' if ok else 'missed'}** over {r['duration_s']:.0f} s (p99 {p99:.1f} ms, "
                     f"{r['dropped_by_node']} dropped by the node, {r['lost_in_transport']} lost; load {r['load_average'][0]})"
                     + ("" if r["duration_s"] >= 590 else "; the target asks for 10 minutes: `--duration 600`"))
    else:
        lines.append("- 64x64 K=5 30 Hz end-to-end target: not measured in this run")
    sat = [r for r in rows if r["kind"] == "saturation" and matches(r, resolution="128x128", horizon=5,
                                                                      backend="onnxruntime")]
    if sat:
        best = sat[-1]["saturation_hz"]
        most = max(s["throughput_hz"] for s in sat[-1]["steps"])
        lines.append(f"- 128x128 K=5 sustained >= 15 Hz: **{'met' if best and best >= 15 else 'missed'}** "
                     f"(highest rate without a drop: {best} Hz; most predictions per second in any step: {most}; "
                     f"load {sat[-1]['load_average'][0]})")
    else:
        lines.append("- 128x128 K=5 >= 15 Hz: not measured in this run")
    for res in plan.resolutions:
        inference = [r for r in rows if r["kind"] == "stages" and matches(r, resolution=res_text(res), horizon=5,
                                                                             samples=1, backend="onnxruntime")]
        flow = [r for r in rows if r["kind"] == "flow" and matches(r, resolution=res_text(res), horizon=5)]
        if inference and flow:
            ratio = inference[-1]["ms"]["inference"]["p50"] / flow[-1]["ms"]["p50"]
            lines.append(f"- {res_text(res)} K=5 inference <= 3x optical flow: **{'met' if ratio <= 3 else 'missed'}** "
                         f"(ONNX Runtime p50 {inference[-1]['ms']['inference']['p50']:.2f} ms vs flow "
                         f"{flow[-1]['ms']['p50']:.2f} ms: {ratio:.1f}x)")
    return lines


def markdown(plan: Plan, rows: list[dict], header: dict) -> str:
    out = [f"# Benchmark: {header['name']}", "",
           f"Command: `{header['command']}`  ", f"Started {header['started']}, {header['elapsed_s']:.0f} s; "
           f"{header['machine']}; load average at start {header['load_average_start']}.  ",
           "Latencies in ms as p50 / p90 / p99. `load` is the 1-minute load average when the row was taken "
           "(2 cores: above 2 means other work waited for the CPU).", ""]
    out += ["## Targets", "", *targets(plan, rows), ""]
    stage_rows = [r for r in rows if r["kind"] == "stages"]
    if stage_rows:
        out += ["## Per stage, in process (carphone 176x144 rgb8 in, stamped at the model's frame period)", "",
                "| config | decode | preprocess | buffer | inference | postprocess | publish | total | frames | load | command |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in stage_rows:
            c, ms = r["config"], r["ms"]
            out.append(f"| {c['resolution']} K={c['horizon']} S={c['samples']} {c['backend']} | "
                       + " | ".join(fmt(ms.get(s)) for s in (*stages.STAGES, "total"))
                       + f" | {r['frames']} | {r['load_average'][0]} | `{r['command']}` |")
        out.append("")
    flow_rows = [r for r in rows if r["kind"] == "flow"]
    if flow_rows:
        out += ["## Classical reference: Farneback flow extrapolation vs the model's inference", "",
                "| resolution | K | flow | model inference (ONNX Runtime) | ratio of p50s | load | command |",
                "|---|---|---|---|---|---|---|"]
        for r in flow_rows:
            c = r["config"]
            inf = [s for s in stage_rows if s["config"]["resolution"] == c["resolution"]
                   and s["config"]["horizon"] == c["horizon"] and s["config"]["backend"] == "onnxruntime"
                   and s["config"]["samples"] == 1]
            inf_ms = inf[-1]["ms"]["inference"] if inf else None
            ratio = f"{inf_ms['p50'] / r['ms']['p50']:.1f}x" if inf_ms else "-"
            out.append(f"| {c['resolution']} | {c['horizon']} | {fmt(r['ms'])} | {fmt(inf_ms)} | {ratio} | "
                       f"{r['load_average'][0]} | `{r['command']}` |")
        out.append("")
    e2e_rows = [r for r in rows if r["kind"] == "e2e"]
    sat_rows = [r for r in rows if r["kind"] == "saturation"]
    if e2e_rows or sat_rows:
        out += ["## End to end over DDS (predictor_node subprocess)", "",
                "Published -> K-th predicted frame received. dropped = by the node (superseded while busy) + lost "
                "in transport (never received). CPU: the node process, % of one core.", "",
                "| config | rate Hz | s | published | dropped (node + lost) | predicted | throughput Hz | latency | "
                "node's own latency p50/p99 | CPU % | RSS MB start -> end (growth after warm-up) | load | command |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in e2e_rows + [dict(s, config=x["config"], command=x["command"] + "  (saturation step)")
                             for x in sat_rows for s in x["steps"]]:
            c = r["config"]
            out.append(f"| {c['resolution']} K={c['horizon']} S={c['samples']} {c['backend']} | {r['rate_hz']:g} | "
                       f"{r['duration_s']:.0f} | {r['published']} | {r['dropped_by_node'] + r['lost_in_transport']} "
                       f"({r['dropped_by_node']} + {r['lost_in_transport']}) | {r['predicted']} | {r['throughput_hz']} | "
                       f"{fmt(r['latency_ms'])} | {r['node_latency_ms']['p50']} / {r['node_latency_ms']['p99']} | "
                       f"{r['cpu_percent']} | {r['rss_mb_start']} -> {r['rss_mb_end']}"
                       + (f" ({r['rss_growth_mb']:+.2f})" if r.get("rss_growth_mb") is not None else "")
                       + f" | {r['load_average'][0]} | "
                       f"`{r['command']}` |")
        out.append("")
    if sat_rows:
        out += ["### Saturation: the highest input rate with no frame dropped", "",
                "| config | saturation Hz | most predicted per s | rates tried (dropped) | command |", "|---|---|---|---|---|"]
        for r in sat_rows:
            c = r["config"]
            tried = ", ".join(f"{s['rate_hz']:g} ({s['dropped_by_node'] + s['lost_in_transport']})" for s in r["steps"])
            out.append(f"| {c['resolution']} K={c['horizon']} S={c['samples']} {c['backend']} | {r['saturation_hz']} | "
                       f"{max(s['throughput_hz'] for s in r['steps'])} | {tried} | `{r['command']}` |")
        out.append("")
    ops = [r for r in rows if r["kind"] == "profile_ops"]
    if ops:
        r = ops[-1]
        out += ["## ONNX Runtime profile (enable_profiling), by operator type", "",
                f"{r['config']['resolution']} K={r['config']['horizon']}: {r['config']['graph_nodes']} nodes in the "
                f"exported graph, {r['kernels_per_run']} kernels run per inference, {r['kernel_ms_per_run']} ms of "
                f"kernel time per run (profiling on), convolutions {100 * r['conv_share']:.0f} % of it; load "
                f"{r['load_average'][0]}. Convolution MMAC per rollout: {sum(r['conv_mmac'].values()):.1f} ("
                + ", ".join(f"{k} {v}" for k, v in r["conv_mmac"].items()) + f"). Command: `{r['command']}`", "",
                "| op | ms per run | share | kernels per run |", "|---|---|---|---|"]
        out += [f"| {o['op']} | {o['ms_per_run']} | {100 * o['share']:.1f} % | {o['kernels_per_run']} |" for o in r["ops"]]
        out.append("")
    options = [r for r in rows if r["kind"] == "profile_options"]
    if options:
        out += ["### Session options, timed interleaved", "", "| variant | wall ms | CPU ms p50 (all threads) | load |",
                "|---|---|---|---|"]
        out += [f"| {r['config']['variant']} | {fmt(r['ms'])} | {r['cpu_ms_p50']} | {r['load_average'][0]} |"
                for r in options]
        out.append("")
    skipped = [r for r in rows if r["kind"] == "skipped"]
    if skipped:
        out += ["## Skipped", "", "| part | config | why |", "|---|---|---|"]
        out += [f"| {r['part']} | {', '.join(f'{k}={v}' for k, v in r['config'].items())} | {r['reason']} |"
                for r in skipped]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SCRIPT, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sweeps and short runs (~2 minutes)")
    parser.add_argument("--name", default="", help="results file stem (default: quick or full)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to run, of {','.join(PARTS)}")
    parser.add_argument("--model", default="", help="model file (.pt; its .onnx sibling is used where present); "
                                                     "default: the packaged model")
    parser.add_argument("--resolutions", help="HxW list (full: 64x64,128x128,128x160)")
    parser.add_argument("--horizons", help="K list (full: 1,5,10)")
    parser.add_argument("--samples", help="S list (full: 1,8); S > 1 needs a stochastic model")
    parser.add_argument("--backends", help="list of torch, onnxruntime, tensorrt")
    parser.add_argument("--rates", help="input rates in Hz for the end-to-end runs (full: 10,30,60)")
    parser.add_argument("--duration", type=float, help="seconds per end-to-end rate (full: 30; the target: 600)")
    parser.add_argument("--stage-frames", type=int, help="camera frames per stage measurement (full: 150)")
    parser.add_argument("--no-saturation", dest="saturation", action="store_false", help="skip the saturation search")
    parser.add_argument("--saturation-start", type=float, help="first rate of the search, Hz")
    parser.add_argument("--saturation-factor", type=float, help="rate multiplier per step")
    parser.add_argument("--saturation-duration", type=float, help="seconds per step")
    parser.add_argument("--saturation-max", type=float, default=240.0, help="stop the search here (Hz)")
    parser.add_argument("--profile-runs", type=int, help="inferences per profiled session option")
    parser.add_argument("--threads", type=int, default=0, help="the node's threads parameter (0: backend default)")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "out" / "bench_models",
                        help="exported model variants and profiler files (default out/bench_models)")
    parser.add_argument("--domain-id", type=int, default=150 + os.getpid() % 80, help="ROS domain of the runs")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where the .md and .json go")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    parts = parse_list(args.only, str, "only")
    if set(parts) - set(PARTS):
        parser.error(f"--only: unknown part(s) {', '.join(sorted(set(parts) - set(PARTS)))}; of {', '.join(PARTS)}")
    if args.stage_frames < 10 or args.duration <= 0 or args.saturation_factor <= 1:
        parser.error("--stage-frames must be >= 10, --duration > 0, --saturation-factor > 1")
    plan = Plan(args)
    name = args.name or ("quick" if args.quick else "full")
    header = dict(name=name, command=" ".join([".venv/bin/python", SCRIPT, *(argv if argv is not None else sys.argv[1:])]),
                  started=time.strftime("%Y-%m-%d %H:%M:%S"), load_average_start=stages.load_average(),
                  machine=f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}")
    # SIGTERM as Ctrl-C: the node under test is stopped and what was measured is written
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    start = time.monotonic()
    clip = stages.load_clip()
    rows: list[dict] = []
    try:
        if "stages" in parts:
            run_stages(plan, clip, rows)
        if "flow" in parts:
            run_flow(plan, clip, rows)
        if "profile" in parts:
            run_profile(plan, rows)
        if "e2e" in parts:
            run_e2e(plan, clip, rows)
    except KeyboardInterrupt:
        print("interrupted: writing what was measured", file=sys.stderr)
    header["elapsed_s"] = time.monotonic() - start
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{name}.json").write_text(json.dumps(dict(header, rows=rows), indent=1, default=str))
    report = markdown(plan, rows, header)
    (args.out_dir / f"{name}.md").write_text(report + "\n")
    print("\n".join(targets(plan, rows)))
    print(f"wrote {args.out_dir / (name + '.md')} and .json ({header['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
