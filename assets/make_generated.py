#!/usr/bin/env python3
"""Generate the synthetic images of the Trove demo library.

Writes a handful of simple, easy-to-describe pictures into
``assets/demo/generated/``. Uses only Pillow and numpy, with a fixed random
seed, so running it again produces the same pixels. The outputs are dedicated
to the public domain (CC0), like this script.

Run from anywhere:

    python assets/make_generated.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

OUT_DIR = Path(__file__).resolve().parent / "demo" / "generated"
SEED = 2023
SIZE = 512


def red_circle() -> Image.Image:
    """A solid red circle centred on a white background."""
    img = Image.new("RGB", (SIZE, SIZE), "white")
    draw = ImageDraw.Draw(img)
    r = 160
    c = SIZE // 2
    draw.ellipse((c - r, c - r, c + r, c + r), fill=(220, 20, 30))
    return img


def blue_square() -> Image.Image:
    """A solid blue square centred on a white background."""
    img = Image.new("RGB", (SIZE, SIZE), "white")
    draw = ImageDraw.Draw(img)
    half = 150
    c = SIZE // 2
    draw.rectangle((c - half, c - half, c + half, c + half), fill=(25, 60, 210))
    return img


def sunset(rng: np.random.Generator) -> Image.Image:
    """An orange-to-purple sky with a low sun over a dark sea."""
    w, h = 640, 427
    horizon = int(h * 0.68)
    t = np.linspace(0.0, 1.0, horizon)[:, None]
    top = np.array([70, 40, 120], dtype=float)  # purple
    mid = np.array([235, 110, 60], dtype=float)  # orange
    low = np.array([255, 200, 90], dtype=float)  # yellow near the horizon
    sky = np.where(
        t < 0.6,
        top + (mid - top) * (t / 0.6),
        mid + (low - mid) * ((t - 0.6) / 0.4),
    )
    arr = np.empty((h, w, 3), dtype=float)
    arr[:horizon] = sky[:, None, :]
    # Sea: dark blue, slightly lighter towards the horizon.
    s = np.linspace(0.0, 1.0, h - horizon)[:, None]
    sea_top = np.array([60, 40, 70], dtype=float)
    sea_bot = np.array([15, 15, 40], dtype=float)
    arr[horizon:] = (sea_top + (sea_bot - sea_top) * s)[:, None, :]

    img = Image.fromarray(arr.round().clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    # The sun, half set: draw the disc, then repaint the sea over its lower half.
    cx, r = w // 2, 70
    draw.ellipse((cx - r, horizon - r, cx + r, horizon + r), fill=(255, 235, 150))
    sea = np.asarray(img).copy()
    sea[horizon:] = (arr[horizon:]).round().astype(np.uint8)
    # Seeded glints of sunlight on the water below the sun.
    for _ in range(60):
        y = int(rng.uniform(horizon + 4, h - 4))
        spread = 20 + (y - horizon) * 0.8
        x = int(rng.normal(cx, spread / 2))
        half = int(rng.uniform(4, 14))
        x0, x1 = max(0, x - half), min(w, x + half)
        sea[y : y + 2, x0:x1] = (255, 190, 110)
    return Image.fromarray(sea, "RGB")


def checkerboard() -> Image.Image:
    """An 8x8 black-and-white checkerboard."""
    n = 8
    cell = SIZE // n
    idx = np.indices((SIZE, SIZE)) // cell
    board = ((idx[0] + idx[1]) % 2 == 0).astype(np.uint8) * 255
    return Image.fromarray(board, "L").convert("RGB")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:  # Pillow >= 10.1 ships a scalable default font (needs FreeType).
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def invoice(rng: np.random.Generator) -> Image.Image:
    """A plain document page headed "INVOICE 2023"."""
    w, h = 600, 800
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((50, 50), "INVOICE 2023", fill="black", font=_font(64))
    small = _font(22)
    draw.text((50, 150), "Invoice no. 2023-0042", fill=(40, 40, 40), font=small)
    draw.text((50, 180), "Date: 14 March 2023", fill=(40, 40, 40), font=small)
    draw.line((50, 230, w - 50, 230), fill=(120, 120, 120), width=2)
    y = 250
    total = 0
    for item in ("Consulting", "Design work", "Printing", "Delivery"):
        amount = int(rng.integers(40, 900))
        total += amount
        draw.text((50, y), item, fill="black", font=small)
        draw.text((w - 200, y), f"{amount:>6d}.00", fill="black", font=small)
        y += 40
    draw.line((50, y + 10, w - 50, y + 10), fill=(120, 120, 120), width=2)
    draw.text((50, y + 30), "Total", fill="black", font=small)
    draw.text((w - 200, y + 30), f"{total:>6d}.00", fill="black", font=small)
    return img


def main() -> None:
    rng = np.random.default_rng(SEED)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    images = {
        "red-circle.png": red_circle(),
        "blue-square.png": blue_square(),
        "sunset.png": sunset(rng),
        "checkerboard.png": checkerboard(),
        "invoice-2023.png": invoice(rng),
    }
    for name, img in images.items():
        path = OUT_DIR / name
        img.save(path, "PNG", optimize=True)
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
