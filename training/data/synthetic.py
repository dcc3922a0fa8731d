"""Built-in training data that needs no download: FlyingChairs-style synthetic video.

Textured objects (crops of real photos or procedural noise) move over a moving, zooming
background, rendered at 2x and area-downsampled so sub-pixel motion looks like a real
camera's. Motion statistics follow real robot/handheld footage rather than the uniform
fast motion of toy generators: many clips have a static camera, most motion is a fraction
of a pixel per frame, a few objects are fast (see FINDINGS.md and
``benchmarks/motion_statistics.py``, which compares flow-magnitude histograms).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .textures import random_texture


@dataclass
class SyntheticConfig:
    height: int = 64
    width: int = 64
    clip_length: int = 9  # input frames + predicted frames
    # Every clip is taken at one of these frame intervals of the motion below (3: the same
    # scene seen by a camera at a third of the rate, motion 3x as large per frame), so the
    # motion statistics cover 10 Hz cameras as well as 30 Hz ones.
    frame_intervals: tuple[int, ...] = (1,)
    render_scale: int = 2
    static_camera_probability: float = 0.3
    # A camera that shakes in place (a hand, a vehicle, a robot's vibration) without moving
    # on: zero drift, a velocity of little persistence. Its newest flow says little about the
    # next frames' motion, and extrapolating it loses to copying the newest frame.
    shaky_camera_probability: float = 0.0
    shake_median: float = 0.15  # velocity std, output pixels per frame (log-normal, jitter_sigma)
    shake_persistence: tuple[float, float] = (0.0, 0.6)
    camera_speed_median: float = 0.3  # output pixels per frame (log-normal)
    camera_speed_sigma: float = 0.9
    zoom_probability: float = 0.2
    max_zoom_rate: float = 0.006  # relative scale change per frame
    max_objects: int = 3
    # An object that moves about a fixed place (a talking head, a hand-held object, a branch
    # in the wind): no drift, the velocity of a shaking camera (shake_median, shake_persistence).
    shaky_object_probability: float = 0.0
    object_speed_median: float = 0.3
    object_speed_sigma: float = 0.8
    max_speed: float = 2.0
    rotation_probability: float = 0.3
    max_rotation_deg: float = 1.5  # per frame
    photo_probability: float = 0.6  # textures from real photos, else procedural noise
    max_noise_sigma: float = 2.0  # grey levels, at the render resolution
    # Real motion is not constant velocity: at 30 Hz a handheld or vehicle camera jitters,
    # and the velocity seen over the last frames only partly predicts the next one. Each
    # trajectory's velocity is an AR(1) process around its mean drift with a persistence
    # drawn per trajectory; without this the model extrapolates with a confidence real
    # footage does not allow.
    persistence: tuple[float, float] = (0.0, 0.9)  # lag-1 correlation of the velocity
    jitter_median: float = 0.1  # std of the velocity's random part, output pixels per frame
    jitter_sigma: float = 0.8
    jpeg_probability: float = 0.3
    jpeg_quality: tuple[int, int] = (50, 95)
    brightness_drift: float = 0.004  # relative, per frame

    def to_dict(self) -> dict:
        return asdict(self)


def _log_normal_speed(rng: np.random.Generator, median: float, sigma: float, cap: float) -> np.ndarray:
    speed = min(cap, float(median * np.exp(sigma * rng.standard_normal())))
    angle = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(angle), np.sin(angle)]) * speed


def _trajectory(rng: np.random.Generator, drift: np.ndarray, length: int, config: SyntheticConfig, scale: float = 1.0,
                jitter_median: float | None = None, persistence: tuple[float, float] | None = None) -> np.ndarray:
    """Positions (length, 2) starting at 0; velocity = drift + an AR(1) jitter (see SyntheticConfig;
    ``jitter_median`` and ``persistence`` override the config's)."""
    rho = rng.uniform(*(persistence or config.persistence))
    median = config.jitter_median if jitter_median is None else jitter_median
    jitter = median * np.exp(config.jitter_sigma * rng.standard_normal()) * scale
    deviation = rng.normal(0, jitter, 2)
    steps = [np.zeros(2)]
    for _ in range(length - 1):
        steps.append(drift + deviation)
        deviation = rho * deviation + rng.normal(0, jitter * np.sqrt(1 - rho * rho), 2)
    return np.cumsum(steps, axis=0)


def _object_path(rng: np.random.Generator, length: int, config: SyntheticConfig) -> np.ndarray:
    """An object's positions (length, 2) at the render resolution: shaking in place or drifting."""
    s = config.render_scale
    if config.shaky_object_probability > 0 and rng.random() < config.shaky_object_probability:
        return _trajectory(rng, np.zeros(2), length, config, scale=s,
                           jitter_median=config.shake_median, persistence=config.shake_persistence)
    drift = _log_normal_speed(rng, config.object_speed_median, config.object_speed_sigma, config.max_speed) * s
    return _trajectory(rng, drift, length, config, scale=s)


def _shape_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """A filled ellipse or polygon, float32 in [0, 1], anti-aliased."""
    mask = np.zeros((size, size), np.uint8)
    c = size / 2
    if rng.random() < 0.5:
        axes = (int(rng.uniform(0.25, 0.48) * size), int(rng.uniform(0.25, 0.48) * size))
        cv2.ellipse(mask, (int(c), int(c)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
    else:
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.25, 0.48, n) * size
        pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA)
    return mask.astype(np.float32) / 255.0


def render_clip(rng: np.random.Generator, config: SyntheticConfig) -> np.ndarray:
    """One clip, (T, H, W, 3) uint8 RGB."""
    intervals = config.frame_intervals
    interval = int(rng.choice(intervals)) if len(intervals) > 1 else int(intervals[0])
    span = (config.clip_length - 1) * interval + 1  # time steps of the motion the clip samples
    s = config.render_scale
    rh, rw = config.height * s, config.width * s
    side = max(rh, rw)
    background = random_texture(rng, int(side * rng.uniform(1.2, 2.0)), config.photo_probability).astype(np.float32)
    bg_center = np.array(background.shape[1::-1], np.float64) / 2
    out_center = np.array([rw, rh], np.float64) / 2

    kind = rng.random()  # fixed mount, shaking in place, or moving (one draw: old configs render as before)
    if kind < config.static_camera_probability:  # a camera on a fixed mount: no jitter either
        cam_path = np.zeros((span, 2))
    elif kind < config.static_camera_probability + config.shaky_camera_probability:
        cam_path = _trajectory(rng, np.zeros(2), span, config,
                               jitter_median=config.shake_median, persistence=config.shake_persistence)
    else:
        cam_velocity = _log_normal_speed(rng, config.camera_speed_median, config.camera_speed_sigma, config.max_speed)
        cam_path = _trajectory(rng, cam_velocity, span, config)
    zoom = rng.uniform(-config.max_zoom_rate, config.max_zoom_rate) if rng.random() < config.zoom_probability else 0.0
    base_scale = rng.uniform(0.6, 1.0)

    objects = []
    for _ in range(int(rng.integers(0, config.max_objects + 1))):
        size = int(side * rng.uniform(0.15, 0.6))
        spin = rng.uniform(-1, 1) * np.deg2rad(config.max_rotation_deg) if rng.random() < config.rotation_probability else 0.0
        objects.append(
            {
                "texture": random_texture(rng, size, config.photo_probability).astype(np.float32),
                "mask": _shape_mask(rng, size),
                "start": rng.uniform([0, 0], [rw, rh]),
                "path": _object_path(rng, span, config),
                "angle": rng.uniform(0, 2 * np.pi),
                "spin": spin,
            }
        )
    noise_sigma = rng.uniform(0, config.max_noise_sigma)
    drift = rng.uniform(-config.brightness_drift, config.brightness_drift)
    jpeg_quality = int(rng.integers(*config.jpeg_quality)) if rng.random() < config.jpeg_probability else 0

    frames = np.empty((config.clip_length, config.height, config.width, 3), np.uint8)
    for t in range(config.clip_length):
        u = t * interval  # the motion's time step
        # inverse map: output pixel -> background pixel, the camera at cam_path[u]
        scale = base_scale * (1 + zoom) ** u
        offset = bg_center + cam_path[u] * s - scale * out_center
        m = np.array([[scale, 0, offset[0]], [0, scale, offset[1]]])
        frame = cv2.warpAffine(background, m, (rw, rh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        for obj in objects:
            angle = obj["angle"] + obj["spin"] * u
            center = obj["start"] + obj["path"][u]
            half = obj["mask"].shape[0] / 2
            cos, sin = np.cos(angle), np.sin(angle)
            fwd = np.array([[cos, -sin, center[0] - (cos - sin) * half], [sin, cos, center[1] - (sin + cos) * half]])
            tex = cv2.warpAffine(obj["texture"], fwd, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            alpha = cv2.warpAffine(obj["mask"], fwd, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
            frame = frame * (1 - alpha) + tex * alpha
        # Sensor noise and compression happen at the camera's resolution; the area
        # downsampling to the model's resolution then averages most of them away, as it
        # does for a real camera (noise that survives teaches the model to denoise).
        frame = np.clip(np.rint(frame * (1 + drift * u) + rng.normal(0, noise_sigma, frame.shape)), 0, 255).astype(np.uint8)
        if jpeg_quality:
            _, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            frame = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
        frames[t] = cv2.resize(frame, (config.width, config.height), interpolation=cv2.INTER_AREA)
    return frames


class SyntheticVideoDataset(Dataset):
    """``length`` clips, each a deterministic function of (seed, index): uint8 (T, H, W, 3)."""

    def __init__(self, length: int, config: SyntheticConfig | None = None, seed: int = 0) -> None:
        self.length = length
        self.config = config or SyntheticConfig()
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, index])
        return torch.from_numpy(render_clip(rng, self.config))
