"""A synthetic captioned image set: two shapes per picture, described compositionally.

Each picture holds a first shape (size, texture, colour, kind) placed left of, right of,
above or below a second one (colour, kind), e.g. "a small striped red circle left of a blue
square". Everything comes from one seeded generator, so a seed always gives the same pixels
and captions. The fine-tuning tests learn from it; docs/finetuning.md's example writes
it to a folder:

    python -m tests.media_shapes /tmp/shapes --count 400
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 215),
    "yellow": (235, 200, 35),
    "purple": (145, 55, 185),
}
KINDS = ("circle", "square", "triangle")
SIZES = {"small": 0.14, "large": 0.24}  # half the shape's width, as a fraction of the side
TEXTURES = ("plain", "striped", "dotted")
RELATIONS = ("left of", "right of", "above", "below")
LAYOUTS = ("sidecar", "csv", "jsonl", "folders")


def shape_pairs(count: int, seed: int = 0, side: int = 64) -> Iterator[tuple[Image.Image, str]]:
    """`count` (image, caption) pairs, the same for the same seed."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield _one_pair(rng, side)


def write_shape_pairs(
    folder: str | Path, count: int, seed: int = 0, side: int = 64, layout: str = "sidecar"
) -> Path:
    """Write the pairs to `folder` in one of the layouts `app.py finetune --pairs` reads.

    sidecar: shape-0000.png + shape-0000.txt; csv / jsonl: images plus pairs.csv or
    pairs.jsonl (path, caption); folders: <colour of the first shape>/shape-0000.png, the
    folder name being the label. Returns what to pass to --pairs.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (image, caption) in enumerate(shape_pairs(count, seed, side)):
        name = f"shape-{i:04d}.png"
        if layout == "folders":
            name = f"{caption.split(' of ')[0].split()[-2]}/{name}"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(folder / name)
        if layout == "sidecar":
            (folder / name).with_suffix(".txt").write_text(caption + "\n")
        rows.append({"path": name, "caption": caption})
    if layout == "csv":
        with open(folder / "pairs.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "caption"])
            writer.writeheader()
            writer.writerows(rows)
        return folder / "pairs.csv"
    if layout == "jsonl":
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        (folder / "pairs.jsonl").write_text(lines)
        return folder / "pairs.jsonl"
    return folder


def _one_pair(rng: np.random.Generator, side: int) -> tuple[Image.Image, str]:
    size = str(rng.choice(list(SIZES)))
    texture = str(rng.choice(TEXTURES))
    colour, other_colour = (str(c) for c in rng.choice(list(COLOURS), 2, replace=False))
    kind, other_kind = (str(k) for k in rng.choice(KINDS, 2))
    relation = str(rng.choice(RELATIONS))

    background = np.full((side, side, 3), 225.0) + rng.normal(0, 12, 3)
    image = Image.fromarray(background.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    first_r, other_r = SIZES[size] * side, 0.15 * side
    # The pair sits along one axis, jittered across the other so positions vary.
    along, across = side * rng.uniform(0.27, 0.33), side * rng.uniform(0.35, 0.65)
    far = side - along
    first_at, other_at = {
        "left of": ((along, across), (far, across)),
        "right of": ((far, across), (along, across)),
        "above": ((across, along), (across, far)),
        "below": ((across, far), (across, along)),
    }[relation]
    _draw_shape(draw, kind, first_at, first_r, COLOURS[colour], texture)
    _draw_shape(draw, other_kind, other_at, other_r, COLOURS[other_colour], "plain")
    texture_word = "" if texture == "plain" else f"{texture} "
    caption = f"a {size} {texture_word}{colour} {kind} {relation} a {other_colour} {other_kind}"
    return image, caption


def _draw_shape(draw: ImageDraw.ImageDraw, kind, centre, radius, colour, texture) -> None:
    x, y = centre
    box = (x - radius, y - radius, x + radius, y + radius)
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x, y - radius), (x + radius, y + radius), (x - radius, y + radius)], colour)
    if texture == "striped":
        for offset in range(int(-radius), int(radius), 4):
            draw.line((x - radius, y + offset, x + radius, y + offset), fill=(255, 255, 255))
    elif texture == "dotted":
        for dx in range(int(-radius) + 2, int(radius), 5):
            for dy in range(int(-radius) + 2, int(radius), 5):
                draw.point((x + dx, y + dy), fill=(255, 255, 255))
                draw.point((x + dx + 1, y + dy), fill=(255, 255, 255))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic captioned shape set.")
    parser.add_argument("folder")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", type=int, default=64, help="image side in pixels")
    parser.add_argument("--layout", choices=LAYOUTS, default="sidecar")
    args = parser.parse_args(argv)
    target = write_shape_pairs(args.folder, args.count, args.seed, args.side, args.layout)
    print(f"{args.count} captioned pictures; pass --pairs {target}")


if __name__ == "__main__":
    main()
