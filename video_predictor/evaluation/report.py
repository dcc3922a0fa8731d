"""The evaluator's human-facing output: report.md, PNG plots per horizon and image strips.

The evaluator (offline or live) computes ``metrics.json``; this module turns it into:

- ``psnr_per_horizon.png``, ``ssim_per_horizon.png``: model vs copy-last vs flow per
  horizon k, whole frames (solid) and moving areas (dashed);
- ``strip_best.png``, ``strip_median.png``, ``strip_worst.png``: for the sequences with the
  best, median and worst model PSNR averaged over k (kept while scoring by
  ``scoring.StripSelector``), rows of input frames, ground truth, prediction, uncertainty σ
  and absolute error (moving area outlined);
- ``report.md``, which tabulates the numbers and links the pictures.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas directly,
never through pyplot, so nothing global (backend, current figure) is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_predictor.evaluation.results import METHODS
from video_predictor.evaluation.scoring import StripSample, StripSelector

METHOD_LABELS = {"model": "model", "copy_last": "copy-last", "flow": "flow"}
STRIP_LABELS = ("best", "median", "worst")
PLOT_FILES = {"psnr": "psnr_per_horizon.png", "ssim": "ssim_per_horizon.png"}


# -- drawing ---------------------------------------------------------------------------------


def _values(series: list | None) -> list[float]:
    return [math.nan if v is None else float(v) for v in (series or [])]


def plot_per_horizon(result: dict, metric: str, path: Path) -> Path:
    """Line plot of ``metric`` ("psnr" or "ssim") per horizon for every method; moving
    areas dashed where the result has them."""
    from matplotlib.figure import Figure

    horizon = result["horizon"]
    figure = Figure(figsize=(6.4, 4.0))
    figure.subplots_adjust(left=0.11, right=0.97, top=0.92, bottom=0.12)  # fixed: layout engines cost seconds
    axes = figure.add_subplot()
    moving = result.get("moving", {})
    for i, method in enumerate(METHODS):
        colour = f"C{i}"
        axes.plot(horizon, _values(result[method][metric]), "o-", color=colour, label=METHOD_LABELS[method])
        if method in moving:
            axes.plot(horizon, _values(moving[method][metric]), "s--", color=colour, alpha=0.8,
                      label=f"{METHOD_LABELS[method]}, moving areas")
    axes.set_xlabel("horizon k (prediction periods ahead)")
    axes.set_ylabel("PSNR (dB)" if metric == "psnr" else "SSIM")
    axes.set_xticks(horizon)
    axes.set_title(f"{metric.upper()} per horizon ({result['frames']} sequences)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="upper right")  # "best" searches every position
    figure.savefig(path, dpi=100)
    return path


GAP_PX = 2  # between the frames of a strip row


def _mosaic(tiles: list[np.ndarray], columns: int, fill: float) -> np.ndarray:
    """Tiles (H, W[, C]) side by side, ``GAP_PX`` apart, padded with ``fill`` to ``columns`` tiles."""
    h, w = tiles[0].shape[:2]
    shape = (h, columns * (w + GAP_PX) - GAP_PX) + tiles[0].shape[2:]
    row = np.full(shape, fill, dtype=np.float32 if tiles[0].dtype.kind == "f" else tiles[0].dtype)
    for j, tile in enumerate(tiles):
        row[:, j * (w + GAP_PX) : j * (w + GAP_PX) + w] = tile
    return row


def _label_tiles(axes, labels: list[str], width: int) -> None:
    for j, label in enumerate(labels):
        axes.text(j * (width + GAP_PX) + width / 2, -1.5, label, ha="center", va="bottom", fontsize=7)


def draw_strip(sample: StripSample, path: Path, heading: str) -> Path:
    """Five rows: input frames, ground truth, prediction, uncertainty sigma, |error| (moving area outlined).

    Each row is one mosaic image (one imshow per row, not per frame), which keeps drawing fast."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    n, k = len(sample.inputs), len(sample.targets)
    h, w = sample.targets.shape[1:3]
    columns = max(n, k)

    def rgb(frames: np.ndarray) -> list[np.ndarray]:
        return [np.repeat(f, 3, axis=-1) if f.shape[-1] == 1 else f for f in frames]

    error = np.abs(sample.prediction.astype(np.float32) - sample.targets.astype(np.float32)).mean(axis=-1) / 255.0
    std = sample.std.astype(np.float32)
    rows = [
        ("inputs", _mosaic(rgb(sample.inputs), columns, 255), [f"t{i - n + 1:+d}" if i < n - 1 else "t (last)"
                                                               for i in range(n)]),
        ("ground truth", _mosaic(rgb(sample.targets), columns, 255), [f"t+{j + 1}" for j in range(k)]),
        ("prediction", _mosaic(rgb(sample.prediction), columns, 255),
         [f"t+{j + 1}: {sample.psnr[j]:.1f} dB" for j in range(k)]),
        ("uncertainty σ", _mosaic(list(std), columns, np.nan), [f"t+{j + 1}" for j in range(k)]),
        ("|error|", _mosaic(list(error), columns, np.nan), [f"t+{j + 1}" for j in range(k)]),
    ]
    # every row gets the same width and the exact aspect of its mosaic: placed by hand, in inches
    inch_per_px = 1.1 / w
    row_w, row_h = rows[0][1].shape[1] * inch_per_px, h * inch_per_px
    left, right, top, title, gap = 0.45, 1.0, 0.45, 0.2, 0.1
    fig_w, fig_h = left + row_w + right, top + 5 * (title + row_h) + 4 * gap + 0.1
    figure = Figure(figsize=(fig_w, fig_h))
    colour_maps = {3: colormaps["viridis"].with_extremes(bad="white"),
                   4: colormaps["magma"].with_extremes(bad="white")}
    limits = {3: max(float(std.max()), 1e-6), 4: max(float(error.max()), 1e-6)}
    grid = []
    for r, (name, image, labels) in enumerate(rows):
        bottom = fig_h - top - (r + 1) * (title + row_h) - r * gap
        axes = figure.add_axes((left / fig_w, bottom / fig_h, row_w / fig_w, row_h / fig_h))
        if r in colour_maps:
            shown = axes.imshow(image, cmap=colour_maps[r], vmin=0.0, vmax=limits[r], interpolation="nearest")
            bar = figure.add_axes(((left + row_w + 0.1) / fig_w, bottom / fig_h, 0.12 / fig_w, row_h / fig_h))
            figure.colorbar(shown, cax=bar)
            bar.tick_params(labelsize=7)
            bar.set_ylabel("[0, 1] units", fontsize=7)
        else:
            axes.imshow(image, interpolation="nearest")
        _label_tiles(axes, labels, w)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_frame_on(False)
        axes.set_ylabel(name, fontsize=8)
        grid.append(axes)
    moving = _mosaic([m.astype(np.float32) for m in sample.moving], columns, np.nan)  # NaN gaps: no contour there
    if np.nanmax(moving) > 0 and np.nanmin(moving) < 1:
        grid[4].contour(moving, levels=[0.5], colors="cyan", linewidths=0.6)
    figure.suptitle(heading, fontsize=9)
    figure.savefig(path, dpi=100)
    return path


# -- report.md -------------------------------------------------------------------------------


def _cell(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _period_text(result: dict) -> str:
    """The model's frame period and the one predicted at (metrics.json may predate the latter)."""
    model = result.get("frame_period")
    model_text = "the camera's (rate-agnostic)" if model == "camera" else f"{_cell(model, 4)} s"
    text = f"model frame period {model_text}"
    if result.get("prediction_period") is not None:
        text += (f", prediction period {result['prediction_period']:.4f} s "
                 f"({result.get('prediction_period_source', '?')})")
    return text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _header_lines(result: dict) -> list[str]:
    latency = result["latency_ms"]
    mode = result.get("mode", "offline")
    lines = [
        f"- mode: {mode}",
        f"- source: {result.get('source', '?')}",
        f"- model: {result.get('model_file', '?')} (backend {result.get('backend', '?')})",
        f"- scored sequences: {result['frames']}, resolution {result['resolution'][0]}x{result['resolution'][1]}, "
        f"{_period_text(result)}, {result.get('input_frames', '?')} input frames",
        f"- latency ({result.get('latency_measured', 'single-sequence predict() calls')}): "
        f"p50 {_cell(latency['p50'], 1)} ms, p99 {_cell(latency['p99'], 1)} ms",
        f"- flow baseline: {result.get('flow_method', '?')}",
    ]
    live = result.get("live")
    if live:
        lines.append(f"- frames dropped (inputs with a full buffer that got no prediction): {result.get('frames_dropped')}")
        lines.append("- live counts: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in live.items()
                                                   if not isinstance(v, dict)))
    return lines


def _whole_frame_table(result: dict) -> list[str]:
    header = ["k", "model PSNR", "copy-last PSNR", "flow PSNR", "model SSIM", "copy-last SSIM", "flow SSIM",
              "coverage 2σ", "Spearman σ~\\|err\\|"]
    rows = []
    for i, k in enumerate(result["horizon"]):
        row = [str(k)] + [_cell(result[m]["psnr"][i], 2) for m in METHODS]
        row += [_cell(result[m]["ssim"][i], 4) for m in METHODS]
        row += [_cell(result["uncertainty"]["coverage_2sigma"][i], 3), _cell(result["uncertainty"]["spearman"][i], 3)]
        rows.append(row)
    return _table(header, rows)


def _moving_table(result: dict) -> list[str]:
    moving = result["moving"]
    header = ["k", "moving pixels", "frames with motion", "model PSNR", "copy-last PSNR", "flow PSNR",
              "model SSIM", "copy-last SSIM", "flow SSIM"]
    rows = []
    for i, k in enumerate(result["horizon"]):
        fraction = moving["pixel_fraction"][i]
        row = [str(k), "n/a" if fraction is None else f"{100 * fraction:.1f} %", str(moving["frames"][i])]
        row += [_cell(moving[m]["psnr"][i], 2) for m in METHODS]
        row += [_cell(moving[m]["ssim"][i], 4) for m in METHODS]
        rows.append(row)
    return _table(header, rows)


def _sharpness_table(result: dict) -> list[str]:
    whole, moving = result.get("sharpness_diff", {}), result.get("moving", {})
    header = ["k"] + [METHOD_LABELS[m] for m in METHODS if m in whole]
    header += [f"{METHOD_LABELS[m]} (moving)" for m in METHODS if m in moving]
    rows = []
    for i, k in enumerate(result["horizon"]):
        row = [str(k)] + [_cell(whole[m][i], 2) for m in METHODS if m in whole]
        row += [_cell(moving[m]["sharpness_diff"][i], 2) for m in METHODS if m in moving]
        rows.append(row)
    return _table(header, rows)


@dataclass(frozen=True)
class StripFile:
    label: str  # best, median, worst
    file: str  # name inside the output folder
    sample: StripSample
    rank: int
    of: int


def report_markdown(result: dict, plots: dict[str, str] | None = None, strips: list[StripFile] | None = None) -> str:
    """The report: run facts, tables per horizon, plots and strips (file names relative to report.md)."""
    lines = ["# Evaluation report", ""] + _header_lines(result) + ["", "## Whole frames", ""]
    lines += _whole_frame_table(result)
    lines += ["", "PSNR in dB (peak 255, capped at 100 dB), SSIM with an 11×11 Gaussian window (σ 1.5); "
              "coverage: share of pixels within the predicted mean ± 2σ (0.95 when calibrated); "
              "Spearman: rank correlation of σ with the absolute error, per frame, averaged."]
    if plots:
        lines += [""] + [f"![{metric.upper()} per horizon]({name})" for metric, name in plots.items()]
    if "moving" in result:
        moving = result["moving"]
        lines += ["", "## Moving areas", "",
                  f"Only pixels whose optical flow from the last observed frame to the true future frame is longer "
                  f"than {moving['threshold_px']} px (at the scored resolution) count, as Mathieu et al. (2015) "
                  "evaluate: a static background flatters every method. Averages are over the frames whose moving "
                  f"area covers at least {100 * moving.get('min_fraction', 0):g} % of the frame "
                  f"(frames with motion). Mask: {moving['mask']}.", ""]
        lines += _moving_table(result)
    if "sharpness_diff" in result:
        lines += ["", "## Sharpness difference", "",
                  "Mathieu et al.'s sharpness measure in dB: how well the prediction keeps the true frame's "
                  "local gradients; higher is sharper.", ""]
        lines += _sharpness_table(result)
    if strips:
        lines += ["", "## Sequences", "",
                  "Ranked by the model's PSNR averaged over k. Rows: input frames, ground truth, prediction, "
                  "predicted uncertainty σ, absolute error with the moving area outlined in cyan.", ""]
        for strip in strips:
            s = strip.sample
            lines += [f"### {strip.label.capitalize()}: sequence {s.index} (rank {strip.rank} of {strip.of}), "
                      f"newest input at {s.stamp:.3f} s, model PSNR {s.score:.2f} dB", "",
                      f"![{strip.label} sequence]({strip.file})", ""]
    if result.get("notes"):
        lines += ["", "Notes: " + result["notes"]]
    return "\n".join(lines).rstrip() + "\n"


def write_report(result: dict, out_dir: Path, selector: StripSelector | None = None, figures: bool = True) -> Path:
    """Write report.md (and, with ``figures``, the plots and the strips it links) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    strips: list[StripFile] = []
    if figures:
        for metric, name in PLOT_FILES.items():
            plot_per_horizon(result, metric, out_dir / name)
            plots[metric] = name
        if selector is not None:
            for label, sample in selector.chosen().items():
                name = f"strip_{label}.png"
                rank = selector.rank(sample)
                draw_strip(sample, out_dir / name,
                           f"{label} sequence: #{sample.index} (rank {rank} of {selector.offered}), "
                           f"newest input {sample.stamp:.3f} s, model PSNR {sample.score:.2f} dB averaged over k")
                strips.append(StripFile(label, name, sample, rank, selector.offered))
    path = out_dir / "report.md"
    path.write_text(report_markdown(result, plots, strips))
    return path
