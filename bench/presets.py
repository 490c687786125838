"""The CLIP presets side by side on this machine: image encoding throughput and one text
query's encoding time, with seeded random weights (speed does not depend on the values).

    python bench/presets.py     # writes bench/results/presets.json (a few minutes on 2 cores)

Each preset's real architecture is built by open_clip with random weights, saved as a
checkpoint in bench/.cache and loaded through Trove's own encoder (the path indexing takes),
in fp32 so that every machine compares the same arithmetic, on one thread: on a shared,
loaded machine multi-threaded kernels stall waiting for each other (a first run on 2 threads
under load timed ViT-B/32's text query at 780 ms), while one thread slows every preset
alike. Images: batches of 8 at the preset's input size; text: one typical query at a time.
Medians of 3 with their spread.
docs/models.md renders its table from the JSON (bench/figures.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULT = ROOT / "bench" / "results" / "presets.json"
PRESETS = ("clip-vit-b-32", "mobileclip2-s0", "clip-vit-l-14")
BATCH = 8
REPEATS = 3


def measure(preset: str, cache: Path) -> dict:
    """One preset's image rate and text query time (fp32, this process's threads)."""
    import torch

    from bench.common import random_checkpoint, repeat, timed
    from bench.model import TYPICAL_QUERIES, images_per_second
    from search.models import ClipEncoder, get_preset

    spec = get_preset(preset)
    checkpoint = random_checkpoint(spec.architecture, str(cache))
    encoder = ClipEncoder(spec, checkpoint, "cpu", precision="fp32").load()
    batch = torch.randn(BATCH, 3, spec.image_size, spec.image_size)
    images = images_per_second(encoder.encode_image_tensors, batch, REPEATS)
    query = TYPICAL_QUERIES[3]
    encoder.encode_texts([query])  # warm-up
    text_ms = repeat(lambda: 1000 * timed(lambda: encoder.encode_texts([query])), REPEATS)
    return {"architecture": spec.architecture, "images_per_s": images, "text_query_ms": text_ms}


def main() -> int:
    import torch

    from bench.common import machine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    presets = {}
    for preset in PRESETS:
        presets[preset] = measure(preset, args.cache)
        rate = presets[preset]["images_per_s"]["median"]
        text = presets[preset]["text_query_ms"]["median"]
        print(f"{preset:<16} {rate:6.1f} images/s  text query {text:5.1f} ms", flush=True)
    result = {
        "batch_size": BATCH,
        "repeats": REPEATS,
        "precision": "fp32",
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "baseline": PRESETS[0],
        "presets": presets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
