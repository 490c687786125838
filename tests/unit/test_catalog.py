from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from search.errors import TroveError
from search.storage.catalog import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Catalog,
    EncodedItem,
    EncodedSegment,
    Root,
)
from search.storage.lexical import search_lexical


def encoded(path: str, fingerprint: str = "fp", vector=None, key: str = "m") -> EncodedItem:
    vector = np.ones(4, dtype=np.float32) if vector is None else vector
    segment = EncodedSegment(None, None, None, {key: vector})
    return EncodedItem(path, "image", 10, 1, fingerprint, [segment], width=3, height=2)


def test_new_catalog_is_wal_at_latest_schema(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite3")
    assert catalog.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(tmp_path / "c.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_migration_from_version_1_keeps_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0])
    old.execute(
        "INSERT INTO items (id, path, kind, size, mtime_ns, fingerprint, added_at) "
        "VALUES (1, '/p/a.jpg', 'image', 5, 7, 'abc', 0)"
    )
    old.execute("INSERT INTO segments (id, item_id) VALUES (1, 1)")
    vec = np.arange(4, dtype=np.float32)
    old.execute("INSERT INTO vectors VALUES (1, 'tiny-clip', 4, ?)", (vec.tobytes(),))
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()

    catalog = Catalog(path)
    assert catalog.schema_version == SCHEMA_VERSION == 5
    assert catalog.item_by_path("/p/a.jpg").fingerprint == "abc"
    ids, matrix = catalog.vectors("tiny-clip")
    assert ids.tolist() == [1] and np.array_equal(matrix[0], vec)
    catalog.add_root(Root("/p", ("*.jpg",), ()))
    assert catalog.roots() == [Root("/p", ("*.jpg",), ())]
    # Files catalogued before the full-text index are found by name after the upgrade.
    with catalog.reading() as db:
        assert [hit.item_id for hit in search_lexical(db, "a", 10)] == [1]


def test_catalog_from_a_newer_trove_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(TroveError, match="newer than this Trove"):
        Catalog(path)


def test_generation_moves_with_vectors_not_with_paths(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite3")
    g0 = catalog.generation
    catalog.save_encoded([encoded("/a.jpg")])
    g1 = catalog.generation
    item = catalog.item_by_path("/a.jpg")
    catalog.move_item(item.id, "/b.jpg", 10, 2)
    catalog.touch_item(item.id, 10, 3)
    catalog.add_root(Root("/", (), ()))
    catalog.set_meta("x", "y")
    assert catalog.generation == g1
    catalog.delete_items([item.id])
    assert g0 < g1 < catalog.generation


def test_reencoding_same_content_with_another_model_keeps_both_vectors(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite3")
    first = catalog.save_encoded([encoded("/a.jpg", key="old")])
    (seg,) = first.added["old"][0]
    assert first.replaced == {} and first.deleted == []
    second = catalog.save_encoded([encoded("/a.jpg", vector=np.zeros(8), key="new")])
    assert second.added["new"][0] == [seg] and second.replaced == {} and second.deleted == []
    assert catalog.vectors("old")[0].tolist() == [seg]
    assert catalog.vectors("new")[1].shape == (1, 8)
    assert catalog.vector_keys() == ["new", "old"]
    catalog.drop_vectors(["old"])
    assert len(catalog.vectors("old")[0]) == 0


def test_changed_content_replaces_segments(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite3")
    (seg,) = catalog.save_encoded([encoded("/a.jpg", "v1")]).added["m"][0]
    saved = catalog.save_encoded([encoded("/a.jpg", "v2")])
    (new_seg,) = saved.added["m"][0]
    assert saved.deleted == [seg] and new_seg != seg
    assert catalog.vectors("m")[0].tolist() == [new_seg]


def test_failure_is_recorded_and_clears_vectors(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite3")
    (seg,) = catalog.save_encoded([encoded("/a.jpg")]).added["m"][0]
    assert catalog.record_failure("/a.jpg", "image", 1, 2, "truncated") == [seg]
    assert catalog.failures() == [("/a.jpg", "truncated")]
    assert catalog.counts() == {}
    catalog.save_encoded([encoded("/a.jpg")])
    assert catalog.failures() == [] and catalog.counts() == {"image": 1}


def test_items_under_matches_whole_folder_names_only(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite3")
    catalog.save_encoded([encoded("/photos/a.jpg"), encoded("/photos-old/b.jpg")])
    assert list(catalog.items_under("/photos")) == ["/photos/a.jpg"]
