"""Text query latency as a user sees it: SearchEngine.search (parse, encode, search the
library's index, look the hits up in the catalog) on a library of `items` photos."""

from __future__ import annotations

import tempfile
import time

import numpy as np

from bench.model import TYPICAL_QUERIES


def run(checkpoint: str, items: int, repeats: int) -> dict:
    from bench.ann import Mixture
    from search.engine import SearchEngine
    from search.library import Library
    from search.models.encoders import meta_key
    from search.storage.catalog import EncodedItem, EncodedSegment

    with tempfile.TemporaryDirectory() as data:
        library = Library(data)
        library.catalog.set_meta(meta_key("clip"), "clip-vit-b-32")
        vectors = Mixture.make(512, seed=1).draw(items, seed=2)
        for start in range(0, items, 10_000):
            library.catalog.save_encoded(
                [
                    EncodedItem(
                        f"/bench/{i}.jpg",
                        "image",
                        1,
                        1,
                        f"fp{i}",
                        [EncodedSegment(None, None, None, {"clip-vit-b-32": vectors[i]})],
                    )
                    for i in range(start, min(items, start + 10_000))
                ],
            )
        engine = SearchEngine(library, model_path=checkpoint)
        engine.search(TYPICAL_QUERIES[0])  # loads the model and the index
        latencies = []
        for _ in range(repeats * 4):
            for query in TYPICAL_QUERIES:
                start = time.perf_counter()
                results = engine.search(query, k=10)
                latencies.append((time.perf_counter() - start) * 1000)
                assert len(results) == 10
        index_type = engine.store.index_type
        library.close()
    return {
        "items": items,
        "queries": len(latencies),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
        "index_type": index_type,
    }
