"""Vector search benchmark: exact vs approximate FAISS indexes as a library grows.

For each size and each index type Trove may choose there (exact Flat, and the IVF that
`search.storage.store.choose_index` picks above its threshold; with `compressed`, also the SQ8 and
PQ types a tight memory budget forces), it measures single-query p50 latency on one thread,
recall@10 against exact brute force, serialized bytes per vector and build time (training
included). Every figure is the median of `repeats` builds with its min-max spread.

The vectors are not uniform noise, which would make every index look bad and no index look
realistic: they are a mixture of ~1000 Gaussian clusters on the unit sphere (grouped into
super-clusters, as dog breeds sit near each other), with a power-law spectrum of
within-cluster spread. Queries are fresh draws from the same mixture with wider spread:
near the data like real queries, but never points of it (`recall_at_10`). A second set
imitates text queries against image vectors (`recall_at_10_text`): the same draws pushed
along one fixed direction (CLIP's "modality gap") until their best match has a cosine of
~0.3, as text-to-image matches do. IVF loses more recall on those than on near queries.

    python bench/ann.py                 # 10k, 100k, 1M at dim 512 (3.5-6 min on 2 cores)
    python bench/ann.py --quick         # 10k, 100k
    python bench/ann.py --flat-sweep    # exact search's p50 from 10k to 50k vectors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

if __package__ in (None, ""):  # run as a script: make `search` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import spread  # noqa: E402
from search.storage.store import FLAT, IndexChoice, VectorStore, choose_index, ivf_index  # noqa: E402

K = 10
QUERY_SPREAD = 1.3
# How far text-like queries are pushed along the gap direction (a multiple of a unit vector).
TEXT_GAP = 2.0
# Exact search at 1M costs ~0.2 s a query on one thread: time it on this many queries.
FLAT_LATENCY_QUERIES = 30


@dataclass(frozen=True)
class Mixture:
    """Clustered unit vectors resembling image embeddings."""

    centers: np.ndarray  # (clusters, dim), unit
    weights: np.ndarray  # cluster probabilities, uneven like real collections
    basis: np.ndarray  # (dim, dim): within-cluster noise with a power-law spectrum
    gap: np.ndarray  # (dim,), unit: where text-like queries sit relative to the data

    @classmethod
    def make(
        cls,
        dim: int,
        seed: int = 0,
        clusters: int = 1000,
        groups: int = 50,
        spread: float = 1.0,
        cone: float = 0.7,
    ) -> Mixture:
        """`clusters` centers in `groups` super-clusters; `spread` is the norm of the
        within-cluster noise added to a unit center (1.0: cosine ~0.7 to the center)."""
        rng = np.random.default_rng(seed)
        mean = _unit(rng.normal(size=dim))
        # All embeddings share a direction (the "cone" of CLIP spaces), clusters share groups.
        tops = _unit(_unit(rng.normal(size=(groups, dim))) + cone * mean)
        parents = tops[rng.integers(groups, size=clusters)]
        centers = _unit(parents + 0.8 * _unit(rng.normal(size=(clusters, dim))))
        weights = rng.lognormal(0.0, 0.5, clusters)
        rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        scale = np.arange(1, dim + 1) ** -0.5
        scale *= spread / np.sqrt((scale**2).sum())
        return cls(
            centers.astype(np.float32),
            weights / weights.sum(),
            (scale[:, None] * rotation).astype(np.float32),
            _unit(rng.normal(size=dim)).astype(np.float32),
        )

    def draw(self, n: int, seed: int, spread: float = 1.0, chunk: int = 100_000) -> np.ndarray:
        """n unit vectors (float32), generated in chunks to bound the temporaries."""
        rng = np.random.default_rng(seed)
        dim = self.centers.shape[1]
        out = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            labels = rng.choice(len(self.centers), size=m, p=self.weights)
            noise = rng.standard_normal((m, dim), dtype=np.float32) @ self.basis
            out[start : start + m] = _unit(self.centers[labels] + spread * noise)
        return out

    def queries(self, n: int, seed: int, text: bool = False) -> np.ndarray:
        """Query vectors near the data; `text`: offset along the gap, like text queries."""
        near = self.draw(n, seed, spread=QUERY_SPREAD)
        return _unit(near + TEXT_GAP * self.gap).astype(np.float32) if text else near


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def single_query_p50_ms(store: VectorStore, queries: np.ndarray) -> float:
    """Median latency of one query at a time, as a search box sends them (after a warm-up)."""
    for q in queries[:5]:
        store.search(q, K)
    times = []
    for q in queries:
        start = time.perf_counter()
        store.search(q, K)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top-k ids by inner product, numpy brute force in chunks (independent of faiss)."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(data), 100_000):
        scores = queries @ data[start : start + 100_000].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_s = np.hstack([best_s, np.take_along_axis(scores, top, axis=1)])
        best_i = np.hstack([best_i, top + start])
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s = np.take_along_axis(best_s, keep, axis=1)
        best_i = np.take_along_axis(best_i, keep, axis=1)
    return best_i


def candidates(count: int, dim: int, compressed: bool = False) -> list[IndexChoice]:
    """Exact search and the IVF Trove would use at `count` (below the exact threshold too);
    with `compressed`, also the SQ8 and PQ variants that a tight memory budget forces."""
    out = [IndexChoice(FLAT), ivf_index(count)]
    if compressed:
        out += [ivf_index(count, "SQ8"), ivf_index(count, f"PQ{dim // 8}np")]
    return out


def measure(
    data: np.ndarray,
    queries: dict[str, tuple[np.ndarray, np.ndarray]],
    choice: IndexChoice,
    repeats: int,
) -> dict:
    """Build `choice` over `data` `repeats` times: build time, bytes per vector, p50 latency
    of single near queries, recall@10 of each query set ({name: (queries, exact ids)})."""
    n, dim = data.shape
    ids = np.arange(n, dtype=np.int64)
    p50s, builds, sizes = [], [], []
    recalls: dict[str, list[float]] = {name: [] for name in queries}
    near, near_truth = queries["near"]
    for rep in range(repeats):
        started = time.perf_counter()
        store = VectorStore.build("bench", dim, ids, data, choice, seed=rep)
        builds.append(time.perf_counter() - started)
        if rep == 0:  # deterministic given the build: serialize once (a copy of the index)
            sizes.append(faiss.serialize_index(store.index).nbytes / n)
        p50s.append(single_query_p50_ms(store, near))
        for name, (q, truth) in queries.items():
            _, found = store.index.search(q, K)  # the same results as one by one, batched
            recalls[name].append(_recall(found, truth))
        del store
    return {
        "index": choice.factory,
        "nprobe": choice.nprobe,
        "queries": len(near),
        "p50_ms": spread(p50s),
        "recall_at_10": spread(recalls["near"]),
        **{f"recall_at_10_{name}": spread(r) for name, r in recalls.items() if name != "near"},
        "bytes_per_vector": spread(sizes),
        "build_s": spread(builds),
    }


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def run_ann(
    sizes: Sequence[int] = (10_000, 100_000, 1_000_000),
    dim: int = 512,
    repeats: int = 3,
    seed: int = 0,
    queries: int = 200,
    compressed: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Benchmark exact and approximate search at each size; JSON-able results.

    `ann_recall_at_10_1m` and `ann_p50_ms_1m` are the medians for the index Trove chooses
    at the largest size (whatever it is: `ann_sizes` says which sizes ran).
    """
    started = time.perf_counter()
    sizes = sorted(sizes)
    mixture = Mixture.make(dim, seed)
    data_all = mixture.draw(sizes[-1], seed + 1)
    query_sets = {
        "near": mixture.queries(queries, seed + 2),
        "text": mixture.queries(queries, seed + 3, text=True),
    }
    log(f"generated {sizes[-1]} x {dim} vectors in {time.perf_counter() - started:.1f} s")
    rows = []
    for n in sizes:
        data = data_all[:n]  # a prefix of an iid sample is an iid sample
        truth = {name: exact_top_k(data, q) for name, q in query_sets.items()}
        chosen = choose_index(n, dim)
        for choice in candidates(n, dim, compressed):
            q = queries
            if not choice.approximate and n * dim > 2**26:
                q = min(queries, FLAT_LATENCY_QUERIES)
            subsets = {name: (query_sets[name][:q], truth[name][:q]) for name in query_sets}
            t = time.perf_counter()
            row = measure(data, subsets, choice, repeats)
            row.update(size=n, chosen=choice == chosen)
            rows.append(row)
            log(f"  {n:>9} {choice.factory:<14} done in {time.perf_counter() - t:.1f} s")
    top = next(r for r in rows if r["size"] == sizes[-1] and r["chosen"])
    return {
        "dim": dim,
        "repeats": repeats,
        "threads_per_query": 1,
        "ann_sizes": list(sizes),
        "ann_index_1m": top["index"],
        "ann_recall_at_10_1m": top["recall_at_10"]["median"],
        "ann_recall_at_10_text_1m": top["recall_at_10_text"]["median"],
        "ann_p50_ms_1m": top["p50_ms"]["median"],
        "results": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def flat_sweep(
    sizes: Sequence[int] = (10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000, 50_000),
    dim: int = 512,
    repeats: int = 3,
    seed: int = 0,
    queries: int = 200,
) -> dict:
    """Exact search's single-query p50 (ms, one thread) by size: where the exact threshold
    (`search.storage.store.FLAT_MAX_COMPONENTS`) comes from."""
    mixture = Mixture.make(dim, seed)
    data = mixture.draw(max(sizes), seed + 1)
    query_vectors = mixture.queries(queries, seed + 2)
    out = {}
    for n in sorted(sizes):
        store = VectorStore.build("bench", dim, np.arange(n), data[:n], IndexChoice(FLAT))
        p50s = [single_query_p50_ms(store, query_vectors) for _ in range(repeats)]
        out[n] = spread(p50s)
    return {"dim": dim, "flat_p50_ms": out}


def format_table(result: dict) -> str:
    """The results as a fixed-width text table (median [min-max])."""

    def cell(s: dict, fmt: str) -> str:
        return f"{s['median']:{fmt}} [{s['min']:{fmt}}-{s['max']:{fmt}}]"

    lines = [
        f"{'size':>9}  {'index':<14} {'nprobe':>6}  {'p50 ms (1 thread)':<22} "
        f"{'recall@10 near':<22} {'recall@10 text':<22} {'bytes/vec':>9}  {'build s':<20}",
    ]
    for r in result["results"]:
        mark = "*" if r["chosen"] else " "
        lines.append(
            f"{r['size']:>9}{mark} {r['index']:<14} {r['nprobe'] or '-':>6}  "
            f"{cell(r['p50_ms'], '.2f'):<22} {cell(r['recall_at_10'], '.3f'):<22} "
            f"{cell(r['recall_at_10_text'], '.3f'):<22} "
            f"{r['bytes_per_vector']['median']:>9.0f}  {cell(r['build_s'], '.1f')}"
        )
    lines.append(
        f"* = what Trove chooses at that size; dim {result['dim']}, "
        f"{result['repeats']} builds each, total {result['seconds']} s"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="sizes 10k and 100k")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compressed", action="store_true", help="also SQ8 and PQ")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--flat-sweep", action="store_true", help="only exact search's p50 from 10k to 50k"
    )
    args = parser.parse_args(argv)
    if args.flat_sweep:
        result = flat_sweep(dim=args.dim, repeats=args.repeats, seed=args.seed)
        for n, s in result["flat_p50_ms"].items():
            print(f"{n:>9}  exact p50 {s['median']:.2f} ms [{s['min']:.2f}-{s['max']:.2f}]")
    else:
        sizes = (10_000, 100_000) if args.quick else tuple(args.sizes)
        log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
        result = run_ann(
            sizes, args.dim, args.repeats, args.seed, args.queries, args.compressed, log=log
        )
        print(format_table(result))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
