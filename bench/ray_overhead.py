"""Ray's overhead on one machine, the throughput of one Ray worker, and the vector-index side
of indexing 10 M and 100 M items (docs/scale.md, rendered from bench/results/ray.json).

1. The same photos indexed by the plain pipeline and by `--ray` on a local Ray instance
   (all of this machine's cores), with CLIP ViT-B/32 (seeded random weights: the speed does
   not depend on their values): the overhead as a ratio of wall times, with and without
   Ray's start (instance, probe, actors loading the model), and files per second per actor.
2. IVF-SQ8, the index Trove chooses when float vectors outgrow its memory budget, built by
   Trove's own VectorStore over clustered synthetic vectors (bench/ann.py's mixture) at the
   largest sizes this machine's memory and two shared cores allow: build time, bytes per
   vector, single-query p50 and recall@10. Larger sizes are extrapolated, and say so.
3. The plan's arithmetic for 10 M and 100 M items from those figures, the decode rate of
   12 MP photos measured by bench/pipeline.py (bench/results/latest.json) and a published
   GPU rate.

    python bench/ray_overhead.py            # 1,000 photos; IVF-SQ8 at 250k and 1M x 512
    python bench/ray_overhead.py --quick    # 200 photos; 100k and 250k
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a script: make `search` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ann import Mixture, exact_top_k, measure  # noqa: E402
from bench.common import machine, random_checkpoint  # noqa: E402
from indexers.pipeline import Indexer, ProgressEvent  # noqa: E402
from indexers.ray_runner import RayRunner  # noqa: E402
from search.library import Library  # noqa: E402
from search.models.encoders import Encoders  # noqa: E402
from search.storage.catalog import Root  # noqa: E402
from search.storage.store import ID_BYTES, ivf_index  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PHOTO_SIZE = (640, 480)
DIM = 512
# Published: clip-retrieval's `clip inference` runs ViT-B/32 at "1500 sample/s on a 3080"
# (its README; it reads pre-resized images from webdataset shards, so this is the GPU's
# encoding rate, not a rate for decoding full-size photos).
GPU_RATE = {
    "images_per_s": 1500.0,
    "gpu": "RTX 3080",
    "model": "ViT-B/32",
    "source": "https://github.com/rom1504/clip-retrieval (README: clip inference)",
}
# The plan's machines: CPU-only nodes and GPU nodes of a typical cloud shape.
CPU_NODE_CORES = 16
GPU_NODE_CORES = 32
PLAN_SIZES = (10_000_000, 100_000_000)
# Product-quantised codes of 64 bytes (dim / 8): Trove's IVF-PQ at dim 512 when only PQ fits.
PQ_BYTES = DIM // 8


def make_photos(folder: Path, count: int) -> Path:
    """`count` small JPEGs in ten folders, each its own content (colour waves and noise)."""
    rng = np.random.default_rng(0)
    w, h = PHOTO_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(count):
        a, b = rng.uniform(0, 2 * np.pi, 2)
        waves = [
            np.sin(xx / (40 + 7 * k) + a * k) * np.cos(yy / (30 + 5 * k) + b) for k in (1, 2, 3)
        ]
        pixels = 127 + 100 * np.stack(waves, axis=-1) + rng.normal(0, 12, (h, w, 3))
        path = folder / f"set{i % 10}" / f"IMG_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=85)
    return folder


def index_run(photos: Path, data: Path, encoders: Encoders, runner=None) -> dict:
    """One index run's wall time and when each batch came back (seconds from its start)."""
    library = Library(data)
    times: list[tuple[float, int]] = []
    started = time.monotonic()

    def progress(event: ProgressEvent) -> None:
        times.append((time.monotonic() - started, event.done))

    indexer = Indexer(library, encoders, progress=False, on_progress=progress, runner=runner)
    summary = indexer.run([Root(str(photos), (), ())])
    seconds = time.monotonic() - started
    library.close()
    assert summary.indexed == times[-1][1] and not summary.failed, summary.report()
    first = next(t for t, done in times if done)
    done_after_first = summary.indexed - next(done for _, done in times if done)
    return {
        "files": summary.indexed,
        "seconds": seconds,
        "first_result_s": first,
        "files_per_s": summary.indexed / seconds,
        # After the first batch is back: the pipeline running, its start paid.
        "steady_files_per_s": done_after_first / max(seconds - first, 1e-9),
    }


def ray_overhead(count: int, work: Path) -> dict:
    photos = make_photos(work / "photos", count)
    checkpoint = random_checkpoint("ViT-B-32", str(work))
    encoders = Encoders("clip-vit-b-32", "tiny-clap", clip_path=checkpoint)
    local = index_run(photos, work / "local", encoders)
    print(f"plain pipeline: {local['files_per_s']:.1f} files/s")
    started = time.monotonic()
    with RayRunner("local", [str(photos)]) as runner:
        start_s = time.monotonic() - started
        ray = index_run(
            photos, work / "ray", Encoders("clip-vit-b-32", clip_path=checkpoint), runner
        )
        plan = runner.plan
    assert plan is not None
    ray["start_s"] = start_s
    ray["actors"] = plan.actors
    ray["cpus_per_actor"] = plan.cpus_per_actor
    ray["per_worker_files_per_s"] = ray["steady_files_per_s"] / plan.actors
    print(f"Ray: {ray['files_per_s']:.1f} files/s end to end, start {start_s:.1f} s")
    return {
        "photos": count,
        "photo_size": list(PHOTO_SIZE),
        "model": "clip-vit-b-32 (random weights)",
        "local": local,
        "ray": ray,
        # Wall time of a --ray run over a plain run's: with Ray's start, and without it.
        "overhead_ratio": (start_s + ray["seconds"]) / local["seconds"],
        "steady_overhead_ratio": local["steady_files_per_s"] / ray["steady_files_per_s"],
    }


def sq8_simulation(sizes: list[int], queries: int = 200) -> dict:
    mixture = Mixture.make(DIM, 0)
    data_all = mixture.draw(sizes[-1], 1)
    near = mixture.queries(queries, 2)
    text = mixture.queries(queries, 3, text=True)
    rows = []
    for n in sizes:
        data = data_all[:n]
        sets = {
            "near": (near, exact_top_k(data, near)),
            "text": (text, exact_top_k(data, text)),
        }
        row = measure(data, sets, ivf_index(n, "SQ8"), repeats=1)
        row["size"] = n
        rows.append(row)
        build, p50 = row["build_s"]["median"], row["p50_ms"]["median"]
        print(f"IVF-SQ8 {n}: build {build:.1f} s, p50 {p50:.2f} ms")
    return {"dim": DIM, "rows": rows}


def _exponent(rows: list[dict], key: str) -> float:
    """The measured e of key ~ size**e between the smallest and the largest size."""
    (n0, y0), (n1, y1) = [(r["size"], r[key]["median"]) for r in (rows[0], rows[-1])]
    return math.log(y1 / y0) / math.log(n1 / n0)


# Extrapolating IVF past the sizes measured: with ~sqrt(N) lists (search/storage/store.py),
# assigning N vectors to their lists costs N * sqrt(N), and a query scans nprobe lists of
# ~sqrt(N) vectors each: build time grows as N**1.5 and query time as N**0.5 at most. (The
# exponents measured between two small sizes are lower: fixed costs and the capped k-means
# training still weigh there.)
BUILD_EXPONENT = 1.5
QUERY_EXPONENT = 0.5


def scale_plan(overhead: dict, sq8: dict, latest: dict) -> dict:
    """The 10 M / 100 M arithmetic from the measured rates (see docs/scale.md)."""
    ray = overhead["ray"]
    # Encoding only (small photos: decoding them is cheap), per CPU a worker holds.
    encode_per_core = ray["per_worker_files_per_s"] / ray["cpus_per_actor"]
    pipe = latest["pipeline"]
    decode_per_core = pipe["decode_images_per_s"]["median"] / pipe["decode_workers"]
    # A core that decodes and encodes 12 MP photos does one after the other.
    photo_per_core = 1 / (1 / decode_per_core + 1 / encode_per_core)
    cpu_node = CPU_NODE_CORES * photo_per_core
    gpu_node = min(GPU_RATE["images_per_s"], GPU_NODE_CORES * decode_per_core)
    largest = sq8["rows"][-1]
    sq8_bytes = largest["bytes_per_vector"]["median"]
    sizes = []
    for n in PLAN_SIZES:
        sizes.append(
            {
                "items": n,
                # bench/pipeline.py's 12 MP photos through the plain pipeline, 2 cores
                "hours_this_machine": n / pipe["pipeline_images_per_s"]["median"] / 3600,
                "cpu_nodes_for_24h": math.ceil(n / (cpu_node * 24 * 3600)),
                "hours_on_8_gpu_nodes": n / (8 * gpu_node) / 3600,
                "hours_on_32_gpu_nodes": n / (32 * gpu_node) / 3600,
                "memory_gb": {
                    "ivf_flat": n * (4 * DIM + ID_BYTES) / 1e9,
                    "ivf_sq8": n * sq8_bytes / 1e9,
                    "ivf_pq64": n * (PQ_BYTES + ID_BYTES) / 1e9,
                },
                "catalog_vectors_gb": n * 4 * DIM / 1e9,
                "sq8_build_hours_extrapolated": largest["build_s"]["median"]
                * (n / largest["size"]) ** BUILD_EXPONENT
                / 3600,
                "sq8_p50_ms_extrapolated": largest["p50_ms"]["median"]
                * (n / largest["size"]) ** QUERY_EXPONENT,
                "sq8_nlist": int(ivf_index(n, "SQ8").factory[3:].split(",")[0]),
            }
        )
    return {
        "encode_per_core_files_per_s": encode_per_core,
        "decode_12mp_per_core_per_s": decode_per_core,
        "photo_12mp_per_core_per_s": photo_per_core,
        "cpu_node_cores": CPU_NODE_CORES,
        "cpu_node_photos_per_s": cpu_node,
        "gpu_node_cores": GPU_NODE_CORES,
        "gpu_node_photos_per_s": gpu_node,
        "gpu_rate": GPU_RATE,
        "sq8_build_exponent_measured": _exponent(sq8["rows"], "build_s"),
        "sq8_p50_exponent_measured": _exponent(sq8["rows"], "p50_ms"),
        "sq8_build_exponent_used": BUILD_EXPONENT,
        "sq8_p50_exponent_used": QUERY_EXPONENT,
        "sizes": sizes,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 photos; 100k and 250k vectors")
    parser.add_argument("--out", default=str(RESULTS / "ray.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="trove-ray-bench-"))
    try:
        overhead = ray_overhead(200 if args.quick else 1000, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sq8 = sq8_simulation([100_000, 250_000] if args.quick else [250_000, 1_000_000])
    latest = json.loads((RESULTS / "latest.json").read_text())
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "quick": args.quick,
        **overhead,
        "sq8": sq8,
        "plan": scale_plan(overhead, sq8, latest),
        "seconds": round(time.monotonic() - started, 1),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
