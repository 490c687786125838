"""Files the tests generate: photo-like images and broken ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_photo(path: Path, seed: int, size: tuple[int, int] = (320, 240), **save_args) -> Path:
    """A photo-like image: a sky/ground gradient, shapes and sensor noise, deterministic."""
    rng = np.random.default_rng(seed)
    w, h = size
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp) * np.ones((h, w, 3))
    im = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    im = im.filter(ImageFilter.GaussianBlur(1))
    noisy = np.asarray(im, dtype=np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, **save_args)
    return path
