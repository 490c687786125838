"""Fine-tuning measured on the synthetic shape set: held-out recall@1/5/10 both ways before and
after, per objective and per part trained, and what distillation keeps of the base model.

    python bench/finetune.py     # writes bench/results/finetune.json (a few minutes)

500 rendered pictures of two shapes with compositional captions (tests/media_shapes.py, seed
1) fine-tune the untrained tiny-clip through search/finetune, the code `app.py finetune`
runs, on one thread (float sums depend on how work is split across threads, so one thread
gives one result). Every run also measures the 12 captioned demo photos
(assets/demo/descriptions.json) as the general set: how many image neighbours it keeps and
its cosine to the base model; the `--distill 1` run trains towards them. Times are each
run's own, imports and the picture set excluded. docs/finetuning.md renders
its tables from the JSON (bench/figures.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULT = ROOT / "bench" / "results" / "finetune.json"
PAIRS = 500
SEED = 1
GENERAL = ROOT / "assets" / "demo" / "descriptions.json"
# (label, FinetuneConfig fields): the default first.
RUNS = [
    ("heads, CLIP loss (default)", {}),
    ("heads, multiple-negatives ranking", {"objective": "mnrl"}),
    ("heads, triplet with mined negatives", {"objective": "triplet"}),
    ("last block of each tower, CLIP loss", {"train": "last-blocks"}),
    ("heads, CLIP loss, `--distill 1`", {"distill": 1.0}),
]


def run() -> dict:
    """Every run of RUNS on a fresh copy of the shape set; the figures as one dict."""
    import torch

    from search.finetune.train import FinetuneConfig, finetune
    from tests.media_shapes import write_shape_pairs

    torch.set_num_threads(1)
    rows, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TROVE_DATA_DIR"] = str(Path(tmp) / "data")
        pairs = write_shape_pairs(Path(tmp) / "shapes", PAIRS, seed=SEED)
        for i, (label, fields) in enumerate(RUNS):
            config = FinetuneConfig(
                pairs=str(pairs),
                model="tiny-clip",
                out=f"shapes-{i}",
                general=str(GENERAL),
                **fields,
            )
            start = time.perf_counter()
            result = finetune(config, progress=False)
            seconds = time.perf_counter() - start
            first = first or result
            rows.append(
                {
                    "run": label,
                    "config": fields,
                    "after": result.after,
                    "general": result.general,
                    "seconds": round(seconds, 1),
                    "best_epoch": result.best_epoch,
                    "epochs_run": result.epochs_run,
                }
            )
    return {
        "model": "tiny-clip",
        "pairs": PAIRS,
        "seed": SEED,
        "counts": first.counts,
        "chance": first.chance,
        "before": first.before,
        "threads": 1,
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    result = run()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["rows"]:
        after = row["after"]
        print(
            f"{row['run']:<40} t2i R@1 {100 * after['t2i_r1']:5.1f}  i2t R@1 "
            f"{100 * after['i2t_r1']:5.1f}  {row['seconds']:.0f} s"
        )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
