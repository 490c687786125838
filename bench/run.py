"""Trove's benchmark: prints a table and writes bench/results/latest.json.

    python bench/run.py            full sizes (under 15 minutes on 2 cores)
    python bench/run.py --quick    same keys at smaller sizes (under 3 minutes)

Real architectures with seeded random weights (speed does not depend on the values), so no
download is needed. Machines here are noisy: comparisons are ratios measured in the same
run, and every figure is the median of several repetitions with its spread (min-max).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import ann, model, pipeline, query  # noqa: E402
from bench.common import machine, random_checkpoint  # noqa: E402
from indexers.pipeline import DEFAULT_BATCH_SIZE  # noqa: E402

KEYS = (
    "model_speedup_vs_eager",
    "pipeline_over_bound",
    "pipeline_over_model",
    "text_encode_speedup",
    "text_query_p50_ms_100k",
    "rescan_20k_s",
    "ann_recall_at_10_1m",
    "ann_p50_ms_1m",
    "index_peak_rss_mb",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, same keys")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument(
        "--cache",
        type=Path,
        default=ROOT / "bench" / ".cache",
        help="generated photos and random checkpoints, reused between runs",
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    repeats = 3 if args.quick else 5
    checkpoint = random_checkpoint("ViT-B-32", str(args.cache))

    sections = {}
    sections["model"] = _section(
        "model", lambda: model.run(checkpoint, DEFAULT_BATCH_SIZE, repeats, args.quick)
    )
    sections["pipeline"] = _section(
        "pipeline", lambda: pipeline.run(args.cache, checkpoint, args.quick, repeats)
    )
    sections["query"] = _section(
        "query", lambda: query.run(checkpoint, 10_000 if args.quick else 100_000, repeats)
    )
    ann_sizes = (10_000, 100_000) if args.quick else (10_000, 100_000, 1_000_000)
    sections["ann"] = _section("ann", lambda: ann.run_ann(sizes=ann_sizes))

    summary = {
        "model_speedup_vs_eager": sections["model"]["model_speedup_vs_eager"],
        "pipeline_over_bound": sections["pipeline"]["pipeline_over_bound"],
        "pipeline_over_model": sections["pipeline"]["pipeline_over_model"],
        "text_encode_speedup": sections["model"]["text_encode_speedup"],
        "text_query_p50_ms_100k": sections["query"]["p50_ms"],
        "rescan_20k_s": sections["pipeline"]["rescan"]["seconds"]["median"],
        "ann_recall_at_10_1m": sections["ann"]["ann_recall_at_10_1m"],
        "ann_p50_ms_1m": sections["ann"]["ann_p50_ms_1m"],
        "index_peak_rss_mb": sections["pipeline"]["index_peak_rss_mb"],
    }
    result = {
        **summary,
        "quick": args.quick,
        "sizes": {
            "text_query_items": sections["query"]["items"],
            "rescan_files": sections["pipeline"]["rescan"]["files"],
            "pipeline_photos": sections["pipeline"]["photos"],
            "ann_sizes": list(ann_sizes),
        },
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "seconds": round(time.perf_counter() - started, 1),
        **sections,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(table(result))
    print(f"\nwritten to {args.out} in {result['seconds']:.0f} s")
    return 0


def _section(name: str, fn):
    start = time.perf_counter()
    print(f"[{name}] running...", file=sys.stderr, flush=True)
    out = fn()
    print(f"[{name}] {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return out


def _spread(d: dict, fmt: str = "{:.1f}") -> str:
    return f"{fmt.format(d['median'])} ({fmt.format(d['min'])}-{fmt.format(d['max'])})"


def table(r: dict) -> str:
    m, p, q, a = r["model"], r["pipeline"], r["query"], r["ann"]
    mach = r["machine"]
    lines = [
        f"Trove benchmark, {mach['cores']} cores, {mach['cpu']} ({mach['cpu_capability']}), "
        f"torch {mach['versions']['torch']}, faiss {mach['versions']['faiss-cpu']}"
        + (" [quick]" if r["quick"] else ""),
        "",
        f"Model-only, clip-vit-b-32, batch {m['batch_size']}, "
        f"{m['gflops_per_image']:.1f} GFLOP/image; GEMM peak fp32 "
        f"{_spread(m['gemm_peak_gflops']['fp32'], '{:.0f}')}, bf16 "
        f"{_spread(m['gemm_peak_gflops']['bf16'], '{:.0f}')} GFLOP/s",
        f"  {'path':<24} {'images/s median (min-max)':<28} {'of GEMM peak':>12}",
    ]
    for name, path in m["paths"].items():
        if "error" in path:
            lines.append(f"  {name:<24} not run: {path['error']}")
            continue
        extra = f"  (compile {path['compile_s']:.0f} s)" if "compile_s" in path else ""
        lines.append(
            f"  {name:<24} {_spread(path['images_per_s']):<28} "
            f"{path['gemm_peak_fraction']:>11.0%}{extra}"
        )
    lines += [
        f"  chosen: {m['chosen_path']}, {r['model_speedup_vs_eager']:.2f}x eager; min cosine to "
        f"fp32 {m['faithfulness_min_cosine_bf16']:.5f}",
        f"Text query encode, one typical query: open_clip eager "
        f"{_spread(m['text_ms_open_clip_eager'])} ms, trimmed fp32 "
        f"{_spread(m['text_ms_trimmed_fp32'])} ms (max diff {m['text_trimmed_max_abs_diff']:.1e}),"
        f" chosen {_spread(m['text_ms_chosen'])} ms -> {r['text_encode_speedup']:.1f}x",
        "",
        f"Indexing {p['photos']} JPEGs of {p['photo_size'][0]}x{p['photo_size'][1]}, "
        f"{p['precision']}, batch {p['batch_size']}, {p['decode_workers']} decode threads:",
        f"  decode {_spread(p['decode_images_per_s'])}/s, model "
        f"{_spread(p['model_images_per_s'])}/s, bound {p['bound_images_per_s']:.1f}/s, "
        f"pipeline {_spread(p['pipeline_images_per_s'])}/s",
        f"  pipeline_over_bound {r['pipeline_over_bound']:.2f}, pipeline_over_model "
        f"{r['pipeline_over_model']:.2f}, peak RSS {r['index_peak_rss_mb']:.0f} MB",
        f"Re-scan of {p['rescan']['files']} unchanged files: "
        f"{_spread(p['rescan']['seconds'], '{:.2f}')} s "
        f"({p['rescan']['files_per_s']:.0f} files/s)",
        f"Text query (parse + encode + search + catalog) at {q['items']} items: "
        f"p50 {q['p50_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms ({q['index_type']})",
        "",
        "Vector search, dim 512, one thread per query:",
        ann.format_table(a),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
