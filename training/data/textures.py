"""Textures for the synthetic generator: real photos that installed packages ship, and
procedural noise. Real photo statistics (edges, colour, faces, foliage, text) without any
download."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import cv2
import numpy as np

# Natural photos in scikit-image's wheel (its synthetic test patterns are left out) and
# matplotlib's sample data. None of them is a frame of an evaluation clip.
SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
    "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
    "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
)
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg",)


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # locate without importing the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _read_rgb(path: Path) -> np.ndarray | None:
    from PIL import Image  # Pillow, not OpenCV: libpng warns on one of these files' colour profile

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def sample_photos() -> tuple[np.ndarray, ...]:
    """RGB uint8 photos: scikit-learn's two sample images, plus scikit-image's and
    matplotlib's sample photos where those packages are installed."""
    from sklearn.datasets import load_sample_images

    photos = [np.ascontiguousarray(img) for img in load_sample_images().images]
    for package, folder, names in (
        ("skimage", "data", SKIMAGE_PHOTOS),
        ("matplotlib", "mpl-data/sample_data", MATPLOTLIB_PHOTOS),
    ):
        root = _package_dir(package)
        for name in names if root else ():
            image = _read_rgb(root / folder / name)
            if image is not None and min(image.shape[:2]) >= 64:
                photos.append(image)
    return tuple(photos)


@functools.lru_cache(maxsize=1)
def photo_fingerprint() -> str:
    """Identifies the photo set, so cached synthetic clips change when it does (another
    scikit-image version, or scikit-image not installed)."""
    digest = hashlib.sha1()
    for photo in sample_photos():
        digest.update(str(photo.shape).encode())
        digest.update(np.ascontiguousarray(photo[::16, ::16]).tobytes())
    return digest.hexdigest()[:12]


def procedural_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Multi-octave value noise with a random colour ramp, RGB uint8 (size x size)."""
    acc = np.zeros((size, size), np.float32)
    amplitude, total = 1.0, 0.0
    for octave in range(int(rng.integers(2, 6))):
        cells = 2 ** (octave + 2)
        grid = rng.random((cells, cells)).astype(np.float32)
        acc += amplitude * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= float(rng.uniform(0.4, 0.7))
    acc = np.clip(acc / total, 0, 1)
    if rng.random() < 0.3:  # stripes or checks: strong straight edges
        period = float(rng.uniform(6, 24))
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        angle = float(rng.uniform(0, np.pi))
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0
        acc = 0.5 * acc + 0.5 * wave.astype(np.float32)
    low, high = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
    image = low[None, None] + acc[..., None] * (high - low)[None, None]
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def random_texture(rng: np.random.Generator, size: int, photo_probability: float = 0.6) -> np.ndarray:
    """A size x size RGB patch: a random crop of a sample photo, or procedural noise."""
    if rng.random() < photo_probability:
        photo = sample_photos()[int(rng.integers(len(sample_photos())))]
        h, w = photo.shape[:2]
        crop = int(min(h, w, max(8, size * rng.uniform(0.5, 2.0))))
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        patch = photo[y : y + crop, x : x + crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        interp = cv2.INTER_AREA if crop > size else cv2.INTER_LINEAR
        patch = cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=interp)
        # colour jitter so two photos give many looks
        gain = rng.uniform(0.7, 1.3, 3).astype(np.float32)
        bias = rng.uniform(-25, 25, 3).astype(np.float32)
        return np.clip(patch.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    return procedural_texture(rng, size)
