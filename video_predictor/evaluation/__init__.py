"""Scoring predictions: frame sources, the per-horizon scorer shared by every tool,
the classical baselines, metrics, the result schema and its report; offline (bags,
videos, frame folders) and live (a running node over ROS 2)."""
