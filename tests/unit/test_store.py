from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from search.catalog import Catalog, EncodedItem
from search.store import VectorStore, open_store, sidecar_path


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


@pytest.fixture
def catalog_with_vectors(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite3")
    vectors = unit_rows(30, 8, 6)
    catalog.save_encoded(
        [
            EncodedItem(f"/l/{i}.jpg", "image", 1, 1, f"fp{i}", 1, 1, [(None, None, None)], v[None])
            for i, v in enumerate(vectors)
        ],
        "m",
    )
    return catalog


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
