from __future__ import annotations

import json
import logging

import faiss
import numpy as np
import pytest

from search.storage import store as store_module
from search.storage.catalog import Catalog, EncodedItem, EncodedSegment
from search.storage.store import (
    FLAT,
    IndexChoice,
    VectorStore,
    choose_index,
    open_store,
    sidecar_path,
    stored_count,
)


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_top_k_equals_numpy_brute_force():
    vectors, ids = unit_rows(2000, 64, 0), np.arange(100, 2100)
    store = VectorStore("m", 64)
    store.add(ids, vectors)
    for query in unit_rows(20, 64, 1):
        scores, found = store.search(query, 10)
        exact = vectors @ query
        order = np.argsort(-exact)[:10]
        assert found.tolist() == ids[order].tolist()
        np.testing.assert_allclose(scores, exact[order], atol=1e-5)


def test_removed_ids_are_never_returned():
    vectors, ids = unit_rows(50, 16, 2), np.arange(50)
    store = VectorStore("m", 16)
    store.add(ids, vectors)
    store.remove(np.array([7, 8]))
    _, found = store.search(vectors[7], 50)
    assert len(store) == 48 and 7 not in found and 8 not in found


def test_k_larger_than_index():
    store = VectorStore("m", 8)
    store.add(np.array([1, 2]), unit_rows(2, 8, 3))
    scores, ids = store.search(unit_rows(1, 8, 4)[0], 10)
    assert sorted(ids.tolist()) == [1, 2]


def test_save_load_roundtrip_with_sidecar(tmp_path):
    store = VectorStore("m", 8)
    store.add(np.array([5, 6]), unit_rows(2, 8, 5))
    info = store.save(tmp_path / "m.faiss", generation=42)
    loaded, loaded_info = VectorStore.load(tmp_path / "m.faiss")
    assert loaded_info == info
    assert json.loads(sidecar_path(tmp_path / "m.faiss").read_text())["generation"] == 42
    assert loaded.search(unit_rows(2, 8, 5)[1], 1)[1].tolist() == [6]
    assert not list(tmp_path.glob(".*tmp"))


def test_stored_count_reads_the_sidecar_and_is_zero_without_one(tmp_path):
    path = tmp_path / "m.faiss"
    assert stored_count(path) == 0  # nothing indexed yet
    store = VectorStore("m", 8)
    store.add(np.arange(3), unit_rows(3, 8, 5))
    store.save(path, generation=1)
    assert stored_count(path) == 3
    sidecar_path(path).write_text("{not json")
    assert stored_count(path) == 0
    sidecar_path(path).unlink()
    assert stored_count(path) == 0


def catalog_of(path, vectors: np.ndarray) -> Catalog:
    """A catalog at `path` holding one image item per row of `vectors`, for model "m"."""
    catalog = Catalog(path)
    catalog.save_encoded(
        [
            EncodedItem(
                f"/l/{i}.jpg", "image", 1, 1, f"fp{i}", [EncodedSegment(None, None, None, {"m": v})]
            )
            for i, v in enumerate(vectors)
        ]
    )
    return catalog


@pytest.fixture
def catalog_with_vectors(tmp_path):
    return catalog_of(tmp_path / "c.sqlite3", unit_rows(30, 8, 6))


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.unlink(), "missing"),
        (lambda p: p.write_bytes(b"\x00garbage" * 10), "unreadable"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "unreadable"),
        (lambda p: sidecar_path(p).unlink(), "missing"),
    ],
)
def test_damaged_index_is_rebuilt_from_catalog(
    tmp_path, catalog_with_vectors, caplog, damage, reason
):
    path = tmp_path / "idx" / "m.faiss"
    store = open_store(catalog_with_vectors, path, "m", 8)
    expected = store.search(unit_rows(1, 8, 7)[0], 5)[1].tolist()
    damage(path)
    with caplog.at_level(logging.WARNING):
        rebuilt = open_store(catalog_with_vectors, path, "m", 8)
    assert f"Rebuilding the m index from the catalog: the index file is {reason}" in caplog.text
    assert rebuilt.search(unit_rows(1, 8, 7)[0], 5)[1].tolist() == expected
    # ...and saved, so the next open loads it silently.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        open_store(catalog_with_vectors, path, "m", 8)
    assert "Rebuilding" not in caplog.text


def test_stale_index_is_rebuilt_after_catalog_changes(tmp_path, catalog_with_vectors, caplog):
    path = tmp_path / "m.faiss"
    assert len(open_store(catalog_with_vectors, path, "m", 8)) == 30
    catalog_with_vectors.delete_items([catalog_with_vectors.item_by_path("/l/0.jpg").id])
    with caplog.at_level(logging.WARNING):
        assert len(open_store(catalog_with_vectors, path, "m", 8)) == 29
    assert "reflects catalog generation" in caplog.text


def test_index_of_another_model_is_rebuilt(tmp_path, catalog_with_vectors, caplog):
    path = tmp_path / "m.faiss"
    VectorStore("other", 8).save(path, catalog_with_vectors.generation)
    with caplog.at_level(logging.WARNING):
        assert len(open_store(catalog_with_vectors, path, "m", 8)) == 30
    assert "built for other" in caplog.text


def clustered_rows(n: int, dim: int, seed: int, spread: float = 1.0) -> np.ndarray:
    """Unit vectors from a mixture of 1000 Gaussian clusters (grouped in 50 super-clusters)
    with a power-law within-cluster spectrum: neighbours cross cluster borders, as in real
    embeddings. `spread` scales the within-cluster noise; the mixture itself is fixed."""
    rng = np.random.default_rng(1234)
    groups = unit_rows(50, dim, 1235)
    centers = groups[rng.integers(50, size=1000)] + 0.8 * unit_rows(1000, dim, 1236)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    scale = np.arange(1, dim + 1) ** -0.5
    basis = (scale / np.linalg.norm(scale))[:, None] * np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    draw = np.random.default_rng(seed)
    x = centers[draw.integers(1000, size=n)] + spread * draw.normal(size=(n, dim)) @ basis
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at_10(store: VectorStore, vectors: np.ndarray, ids: np.ndarray, queries) -> float:
    hits = 0
    for query in queries:
        exact = ids[np.argsort(-(vectors @ query))[:10]]
        hits += len(set(store.search(query, 10)[1].tolist()) & set(exact.tolist()))
    return hits / (10 * len(queries))


def level(choice: IndexChoice) -> int:
    if not choice.approximate:
        return 0
    codec = choice.factory.split(",")[1]
    return {"Flat": 1, "SQ8": 2}.get(codec, 3)


def test_choose_index_is_pure_and_monotone_in_size():
    counts = [0, 1, 1000, 10_000, 2**15, 2**15 + 1, 100_000, 10**6, 10**7, 10**8, 10**9]
    for budget in [2**20, 2**30, 4 * 2**30, 2**40]:
        choices = [choose_index(n, 512, budget) for n in counts]
        assert choices == [choose_index(n, 512, budget) for n in counts]  # same in, same out
        levels = [level(c) for c in choices]
        assert levels == sorted(levels), (budget, choices)
        nlists = [c.nlist or 0 for c in choices]
        assert nlists == sorted(nlists), (budget, choices)
        pq_bytes = [int(c.factory.split("PQ")[1][:-2]) for c in choices if level(c) == 3]
        assert pq_bytes == sorted(pq_bytes, reverse=True) and all(512 % m == 0 for m in pq_bytes)
    assert choose_index(1000, 512) == IndexChoice(FLAT)
    # The exact threshold: 2**24 components, 32k vectors at dim 512, half that at 1024.
    assert choose_index(2**15, 512) == IndexChoice(FLAT)
    assert choose_index(2**15 + 1, 512).approximate
    assert choose_index(2**14 + 1, 1024).approximate
    big = choose_index(10**6, 512)
    assert big == IndexChoice("IVF1024,Flat", 24) and big.nlist == 1024


def test_memory_budget_forces_compression_sq8_before_pq():
    gib = 2**30
    assert choose_index(10**6, 512, 4 * gib).factory == "IVF1024,Flat"  # 2 GB of floats fit
    assert choose_index(10**6, 512, 1 * gib).factory == "IVF1024,SQ8"  # 520 MB of bytes fit
    assert choose_index(10**6, 512, 200 * 2**20).factory == "IVF1024,PQ128np"
    assert choose_index(10**6, 512, 1).factory == "IVF1024,PQ1np"  # the smallest there is
    # Small libraries are exact whatever the budget: a few MB are not worth approximating.
    assert choose_index(5000, 512, 1) == IndexChoice(FLAT)


def test_ivf_reaches_recall_on_clustered_vectors(monkeypatch):
    # Past the exact threshold at a test-sized count: what choose_index would pick there.
    monkeypatch.setattr(store_module, "FLAT_MAX_COMPONENTS", 0)
    n, dim = 20_000, 256
    vectors, ids = clustered_rows(n, dim, 0), np.arange(10, n + 10) * 3
    choice = choose_index(n, dim)
    assert choice == IndexChoice("IVF128,Flat", 24)
    store = VectorStore.build("m", dim, ids, vectors)
    assert store.choice == choice
    queries = clustered_rows(200, dim, 1, spread=1.3)  # near the data, not from it
    assert recall_at_10(store, vectors, ids, queries) >= 0.95
    # The data is not trivially separable: visiting only the nearest list misses neighbours.
    one_probe = VectorStore(
        "m", dim, faiss.clone_index(store.index), IndexChoice(choice.factory, 1)
    )
    assert recall_at_10(one_probe, vectors, ids, queries) < 0.9
    # Scores stay cosines.
    scores, found = store.search(queries[0], 5)
    np.testing.assert_allclose(scores, vectors[found // 3 - 10] @ queries[0], atol=1e-5)


def test_removals_and_adds_on_ivf():
    vectors, ids = clustered_rows(3000, 32, 2), np.arange(1000, 4000)
    store = VectorStore.build("m", 32, ids, vectors, IndexChoice("IVF32,Flat", 32))
    gone = ids[::7]
    store.remove(gone)
    assert len(store) == 3000 - len(gone)
    for i in range(0, 3000, 7 * 20):
        _, found = store.search(vectors[i], 20)
        assert ids[i] not in found and not set(found.tolist()) & set(gone.tolist())
    # A trained IVF takes new vectors directly.
    extra = clustered_rows(10, 32, 3)
    store.add(np.arange(9000, 9010), extra)
    assert store.search(extra[4], 1)[1].tolist() == [9004]


def test_ivf_search_visits_more_lists_rather_than_return_fewer_than_k():
    vectors, ids = clustered_rows(3000, 16, 10), np.arange(3000)
    store = VectorStore.build("m", 16, ids, vectors, IndexChoice("IVF32,Flat", 2))
    query = clustered_rows(1, 16, 11)[0]
    scores, found = store.search(query, 1000)  # two lists hold ~200
    assert len(found) == len(set(found.tolist())) == 1000
    assert np.all(np.diff(scores) <= 1e-6)
    assert len(store.search(query, 5000)[1]) == 3000
    assert faiss.extract_index_ivf(store.index).nprobe == 2  # only for that search


def test_ivf_save_load_keeps_type_and_nprobe(tmp_path):
    vectors, ids = clustered_rows(2000, 16, 4), np.arange(2000)
    store = VectorStore.build("m", 16, ids, vectors, IndexChoice("IVF16,SQ8", 5))
    info = store.save(tmp_path / "m.faiss", generation=3)
    sidecar = json.loads(sidecar_path(tmp_path / "m.faiss").read_text())
    assert (sidecar["index_type"], sidecar["nprobe"]) == ("IVF16,SQ8", 5)
    loaded, loaded_info = VectorStore.load(tmp_path / "m.faiss")
    assert loaded_info == info and loaded.choice == IndexChoice("IVF16,SQ8", 5)
    assert loaded.index_type == "IVF16,SQ8"
    assert faiss.extract_index_ivf(loaded.index).nprobe == 5
    for q in clustered_rows(5, 16, 5):
        assert loaded.search(q, 10)[1].tolist() == store.search(q, 10)[1].tolist()


def test_old_sidecar_without_nprobe_still_loads(tmp_path):
    path = tmp_path / "m.faiss"
    VectorStore("m", 8).save(path, 1)
    old = json.loads(sidecar_path(path).read_text())
    del old["nprobe"], old["index_type"]
    sidecar_path(path).write_text(json.dumps(old))
    assert VectorStore.load(path)[0].choice == IndexChoice(FLAT)


@pytest.fixture
def catalog_1500(tmp_path):
    return catalog_of(tmp_path / "c.sqlite3", clustered_rows(1500, 8, 6))


def test_open_store_rebuilds_when_the_chosen_type_changes(
    tmp_path, catalog_1500, caplog, monkeypatch
):
    path = tmp_path / "m.faiss"
    assert open_store(catalog_1500, path, "m", 8).choice == IndexChoice(FLAT)
    # The library has outgrown exact search (here: the thresholds move below it).
    monkeypatch.setattr(store_module, "FLAT_MAX_COMPONENTS", 1000 * 8)
    monkeypatch.setattr(store_module, "MIN_APPROXIMATE_COUNT", 1000)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        store = open_store(catalog_1500, path, "m", 8)
    assert (
        "Rebuilding the m index from the catalog: it is IDMap2,Flat, and 1500 vectors of "
        "dim 8 now call for IVF32,Flat." in caplog.text
    )
    assert store.choice == IndexChoice("IVF32,Flat", 24) and len(store) == 1500
    assert json.loads(sidecar_path(path).read_text())["index_type"] == "IVF32,Flat"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert open_store(catalog_1500, path, "m", 8).choice.factory == "IVF32,Flat"
    assert "Rebuilding" not in caplog.text
    # A new search parameter applies without a rebuild.
    monkeypatch.setattr(store_module, "NPROBE", 4)
    with caplog.at_level(logging.WARNING):
        store = open_store(catalog_1500, path, "m", 8)
    assert "Rebuilding" not in caplog.text and store.choice.nprobe == 4
    assert faiss.extract_index_ivf(store.index).nprobe == 4
    # ...and back to exact search once the library is small enough again.
    monkeypatch.setattr(store_module, "FLAT_MAX_COMPONENTS", 2000 * 8)
    with caplog.at_level(logging.WARNING):
        assert open_store(catalog_1500, path, "m", 8).choice == IndexChoice(FLAT)
    assert "it is IVF32,Flat, and 1500 vectors of dim 8 now call for IDMap2,Flat" in caplog.text


def test_single_query_search_runs_on_one_thread_and_restores():
    store = VectorStore("m", 8)
    store.add(np.arange(100), unit_rows(100, 8, 8))
    real, seen = store.index, []

    class Spy:
        ntotal = real.ntotal

        def search(self, query, k):
            seen.append(faiss.omp_get_max_threads())
            return real.search(query, k)

    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(2)
        store.index = Spy()
        store.search(unit_rows(1, 8, 9)[0], 3)
        assert seen == [1] and faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)


def test_an_empty_catalog_builds_an_exact_store(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite3")
    store = VectorStore.from_catalog(catalog, "m", 8)
    assert len(store) == 0 and store.choice == IndexChoice(FLAT)
