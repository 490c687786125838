"""Held-out quality of the CLIP <-> CLAP bridge, both fitting methods against the baselines.

    python -m bench.bridge --out bench/results/bridge.json   # tiny towers, offline
    python -m bench.bridge --clip clip-vit-b-32 --clap clap-htsat-unfused   # real weights

Both text towers embed the shipped caption set; each method is fitted on the same 80% and
measured on the held-out 20%: mean cosine of mapped to target vectors, and recall@1 of
finding a caption's own vector among all held-out targets (chance is 1 / held-out count).
Also how alike the two towers see the captions: the correlation of their caption-to-caption
similarities (near 0 for two untrained towers, which then share no structure to map).
docs/sounds.md's table is rendered from bench/results/bridge.json by
bench/figures.py.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def run(clip_name: str, clap_name: str, clip_path=None, clap_path=None) -> dict:
    from search.bridge import METHODS, fit_bridge, load_captions
    from search.models import load_audio_encoder, load_encoder

    clip, clap = load_encoder(clip_name, clip_path), load_audio_encoder(clap_name, clap_path)
    captions = load_captions()
    start = time.perf_counter()
    clip_vectors, clap_vectors = clip.encode_texts(captions), clap.encode_texts(captions)
    embed_s = time.perf_counter() - start
    bridge = fit_bridge(clip_vectors, clap_vectors)
    rows = []
    for direction in ("clip_to_clap", "clap_to_clip"):
        for name in (*METHODS, "random", "identity"):
            quality = bridge.metrics[direction][name]
            if quality is not None:
                rows.append({"direction": direction, "map": name, **quality})
    return {
        "clip": clip_name,
        "clap": clap_name,
        "precision": getattr(clip, "precision", None),
        "captions": len(captions),
        "held_out": bridge.metrics["held_out"],
        "embed_s": round(embed_s, 1),
        "similarity_correlation": similarity_correlation(clip_vectors, clap_vectors),
        "rows": rows,
    }


def similarity_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation between the two spaces' pairwise similarities of the same texts
    (each pair once, no self-pairs)."""
    upper = np.triu_indices(len(a), k=1)
    sims_a = (a @ a.T)[upper].astype(np.float64)
    sims_b = (b @ b.T)[upper].astype(np.float64)
    return float(np.corrcoef(sims_a, sims_b)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="tiny-clip")
    parser.add_argument("--clap", default="tiny-clap")
    parser.add_argument("--clip-path")
    parser.add_argument("--clap-path")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--out", type=Path, help="also write the result to this JSON file")
    args = parser.parse_args()
    result = run(args.clip, args.clap, args.clip_path, args.clap_path)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['clip']} <-> {result['clap']}: {result['captions']} captions, "
        f"{result['held_out']} held out (recall@1 chance {1 / result['held_out']:.4f}), "
        f"embedded in {result['embed_s']} s; similarity correlation "
        f"{result['similarity_correlation']:.3f}"
    )
    print(f"{'direction':<14} {'map':<11} {'mean cosine':>11} {'recall@1':>9}")
    for row in result["rows"]:
        print(
            f"{row['direction']:<14} {row['map']:<11} {row['mean_cosine']:>11.4f} "
            f"{row['recall_at_1']:>9.4f}"
        )


if __name__ == "__main__":
    main()
