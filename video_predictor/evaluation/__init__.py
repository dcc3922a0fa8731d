"""Scoring predictions: frame sources, the per-horizon scorer shared by every tool,
the classical baselines, metrics, the result schema and its report; offline (bags,
videos, frame folders) and live (a running node over ROS 2).

sources: frames and the samples scored; scoring: per-horizon scores (``Scorer``,
``score_frames``); results: metrics.json, typed; report: report.md and its figures;
offline: the evaluator in this process and the command line; live: a running node;
demo: the quick-start demo."""
