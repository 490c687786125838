"""The SQLite catalog: the source of truth for items, segments and vectors.

FAISS indexes are rebuilt from here whenever they are missing or stale, so everything that
matters is written here first, in one transaction per batch. Every write transaction bumps
`generation`, which the vector store's sidecar records to detect staleness.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from search.decode.speech import Transcript
from search.errors import TroveError
from search.storage.lexical import item_fts_row

# Each step moves the schema from version i to i + 1. Never edit a released step: add one.
# Ids are AUTOINCREMENT so a deleted segment's id is never reused: an index file that is a
# little stale can then miss a segment, but never point at the wrong one.
MIGRATIONS: list[str] = [
    # 1: items, their segments (time ranges or chunks), and vectors per segment and model.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        fingerprint TEXT,
        width INTEGER,
        height INTEGER,
        added_at REAL NOT NULL,
        indexed_at REAL,
        error TEXT
    );
    CREATE INDEX items_fingerprint ON items (fingerprint);
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
        start_s REAL,
        end_s REAL,
        text TEXT
    );
    CREATE INDEX segments_item ON segments (item_id);
    CREATE TABLE vectors (
        segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (segment_id, model)
    );
    """,
    # 2: library roots remembered with their patterns, so `index` with no paths re-scans them.
    """
    CREATE TABLE roots (
        path TEXT PRIMARY KEY,
        include TEXT NOT NULL DEFAULT '',
        exclude TEXT NOT NULL DEFAULT '',
        added_at REAL NOT NULL
    );
    """,
    # 3: sound, video and documents: durations, capture dates and per-kind details (JSON),
    # and the full-text index over names, folders, details and segment text (BM25).
    """
    ALTER TABLE items ADD COLUMN duration_s REAL;
    ALTER TABLE items ADD COLUMN taken_at REAL;
    ALTER TABLE items ADD COLUMN info TEXT;
    CREATE VIRTUAL TABLE items_fts USING fts5(
        name, folder, meta, tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE VIRTUAL TABLE segments_fts USING fts5(
        body, tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
        DELETE FROM items_fts WHERE rowid = old.id;
    END;
    CREATE TRIGGER segments_fts_delete AFTER DELETE ON segments BEGIN
        DELETE FROM segments_fts WHERE rowid = old.id;
    END;
    """,
    # 4: what a root's last scan could not take as a file at all (a named pipe, a name that
    # is not UTF-8, an unreadable folder): failures without an item, listed by `status`.
    """
    CREATE TABLE scan_failures (
        path TEXT PRIMARY KEY,
        root TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX scan_failures_root ON scan_failures (root);
    """,
    # 5: what was said in sound files and videos: one transcript per item (Whisper's timed
    # lines as JSON, the model that heard them; `error` when transcription failed). Keyed by
    # the item, so a renamed or moved file keeps it; its words are searched through the speech
    # chunks in `segments`.
    """
    CREATE TABLE transcripts (
        item_id INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        seconds REAL NOT NULL,
        speech_s REAL NOT NULL,
        lines INTEGER NOT NULL,
        error TEXT,
        data TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# The migration that adds the full-text tables; existing items get their rows there.
FTS_VERSION = 3


@dataclass(frozen=True)
class Item:
    id: int
    path: str
    kind: str
    size: int
    mtime_ns: int
    fingerprint: str | None
    width: int | None
    height: int | None
    added_at: float
    indexed_at: float | None
    error: str | None
    duration_s: float | None = None
    taken_at: float | None = None
    info: str | None = None

    @property
    def details(self) -> dict:
        """Per-kind details (sample rate, tags, camera, codec, pages...) as a dict."""
        return json.loads(self.info) if self.info else {}


@dataclass(frozen=True)
class Segment:
    id: int
    item_id: int
    start_s: float | None
    end_s: float | None
    text: str | None


@dataclass(frozen=True)
class Root:
    path: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]


@dataclass(frozen=True)
class EncodedSegment:
    """A time range (audio window, video frame), a text chunk, or the whole file (all None),
    with its vector under each key (model name, or model name + ":text") it has one for."""

    start_s: float | None
    end_s: float | None
    text: str | None
    vectors: Mapping[str, np.ndarray]

    @property
    def span(self) -> tuple[float | None, float | None, str | None]:
        return (self.start_s, self.end_s, self.text)


@dataclass(frozen=True)
class EncodedItem:
    """A decoded and encoded file, ready to be written."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    fingerprint: str
    segments: Sequence[EncodedSegment]
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    taken_at: float | None = None
    info: Mapping[str, object] = field(default_factory=dict)
    # Sound and video: what was said (None: not transcribed, speech off; an older transcript
    # of the item is dropped).
    transcript: Transcript | None = None


@dataclass
class Saved:
    """What a batch write changed in the vectors, for the indexes to follow: per key, the
    new (segment ids, vectors) and the ids whose vector under that key was replaced; and
    the segments that are gone altogether (from every index)."""

    added: dict[str, tuple[list[int], list[np.ndarray]]] = field(default_factory=dict)
    replaced: dict[str, list[int]] = field(default_factory=dict)
    deleted: list[int] = field(default_factory=list)


ITEM_COLUMNS = ", ".join(Item.__dataclass_fields__)


class Catalog:
    """One SQLite file in WAL mode: many readers, one writer, readers never block."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        """`read_only` opens an existing catalog for reading only (a data folder on a
        read-only disk): no journal change, no migration, every write refused by SQLite."""
        self.path = Path(path)
        self._lock = threading.RLock()
        self.read_only = read_only
        if read_only:
            self._db = _connect_read_only(self.path)
            self._check_readable_version()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        self.migrate()

    def _check_readable_version(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise TroveError(
                f"The catalog {self.path} has schema version {self.schema_version} and this "
                f"Trove reads version {SCHEMA_VERSION}; it can only be upgraded with write "
                f"access. Open it once where its folder is writable."
            )

    def close(self) -> None:
        self._db.close()

    # -- schema -------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise TroveError(
                    f"The catalog {self.path} has schema version {version}, newer than this "
                    f"Trove understands ({SCHEMA_VERSION}). Update Trove to open it."
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _statements(MIGRATIONS[target - 1]):
                        self._db.execute(statement)
                    if target == FTS_VERSION:
                        _fill_item_fts(self._db)
                    self._db.execute(f"PRAGMA user_version = {target}")
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise

    @contextmanager
    def write(self, changes_vectors: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction. One that adds or removes segments or vectors bumps the
        generation the FAISS sidecars compare against; moving or touching a file does not,
        since an index maps segment ids and paths are looked up at query time."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                if changes_vectors:
                    self._db.execute(
                        "INSERT INTO meta (key, value) VALUES ('generation', '1') "
                        "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
                    )
                self._db.execute("COMMIT")
            except BaseException:
                # Ctrl-C can land just after COMMIT: then there is nothing to roll back, and
                # a failing ROLLBACK must not hide the interrupt.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # -- meta ---------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.write(changes_vectors=False) as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- roots --------------------------------------------------------------------------

    def roots(self) -> list[Root]:
        rows = self._query("SELECT path, include, exclude FROM roots ORDER BY path")
        return [Root(p, _split(inc), _split(exc)) for p, inc, exc in rows]

    def add_root(self, root: Root) -> None:
        with self.write(changes_vectors=False) as db:
            db.execute(
                "INSERT INTO roots (path, include, exclude, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET include = excluded.include, "
                "exclude = excluded.exclude",
                (root.path, "\n".join(root.include), "\n".join(root.exclude), time.time()),
            )

    def remove_root(self, path: str) -> None:
        """Forget a library folder (its items are removed separately, with their vectors)."""
        with self.write(changes_vectors=False) as db:
            db.execute("DELETE FROM roots WHERE path = ?", (path,))
            db.execute("DELETE FROM scan_failures WHERE root = ?", (path,))

    def replace_scan_failures(self, root: str, failures: Sequence[tuple[str, str]]) -> None:
        """What the latest scan of `root` could not take as a file, as (path, reason)."""
        had = self._query("SELECT 1 FROM scan_failures WHERE root = ? LIMIT 1", (root,))
        if not failures and not had:
            return  # a clean scan of a clean folder: no transaction, nothing to change
        with self.write(changes_vectors=False) as db:
            db.execute("DELETE FROM scan_failures WHERE root = ?", (root,))
            db.executemany(
                "INSERT OR REPLACE INTO scan_failures (path, root, reason) VALUES (?, ?, ?)",
                [(path, root, reason) for path, reason in failures],
            )

    # -- items --------------------------------------------------------------------------

    def items_under(self, root: str) -> dict[str, Item]:
        """Every item whose path lies inside `root` (an absolute folder path)."""
        prefix = root.rstrip("/") + "/"
        # A range on the path's unique index: every path that starts with the prefix sorts
        # between it and the prefix with its last character ('/') bumped to '0'.
        rows = self._query(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE path >= ? AND path < ?",
            (prefix, prefix[:-1] + "0"),
        )
        return {row[1]: Item(*row) for row in rows}

    def items_by_fingerprint(self, fingerprint: str) -> list[Item]:
        rows = self._query(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE fingerprint = ? AND error IS NULL",
            (fingerprint,),
        )
        return [Item(*row) for row in rows]

    def item_by_path(self, path: str) -> Item | None:
        rows = self._query(f"SELECT {ITEM_COLUMNS} FROM items WHERE path = ?", (path,))
        return Item(*rows[0]) if rows else None

    def save_encoded(self, batch: Sequence[EncodedItem]) -> Saved:
        """Write a batch of encoded files in one transaction.

        An item whose content and segments are unchanged keeps its segments and gains (or
        replaces) vectors under the batch's keys, so a model switch leaves the old vectors
        searchable until it completes.
        """
        saved = Saved()
        now = time.time()
        with self.write() as db:
            for enc in batch:
                item_id, reuse = self._upsert_item(db, enc, now)
                self._index_item_text(db, item_id, enc)
                self._save_transcript(db, item_id, enc.transcript, now)
                if reuse is None:
                    saved.deleted += [
                        r[0]
                        for r in db.execute("SELECT id FROM segments WHERE item_id = ?", (item_id,))
                    ]
                    db.execute("DELETE FROM segments WHERE item_id = ?", (item_id,))
                    reuse = [self._insert_segment(db, item_id, seg) for seg in enc.segments]
                for seg_id, seg in zip(reuse, enc.segments, strict=True):
                    for key, vector in seg.vectors.items():
                        vector = np.ascontiguousarray(vector, dtype=np.float32)
                        if db.execute(
                            "SELECT 1 FROM vectors WHERE segment_id = ? AND model = ?",
                            (seg_id, key),
                        ).fetchone():
                            saved.replaced.setdefault(key, []).append(seg_id)
                        db.execute(
                            "INSERT OR REPLACE INTO vectors (segment_id, model, dim, vector) "
                            "VALUES (?, ?, ?, ?)",
                            (seg_id, key, vector.shape[0], vector.tobytes()),
                        )
                        ids, vectors = saved.added.setdefault(key, ([], []))
                        ids.append(seg_id)
                        vectors.append(vector)
        return saved

    @staticmethod
    def _insert_segment(db: sqlite3.Connection, item_id: int, seg: EncodedSegment) -> int:
        seg_id = db.execute(
            "INSERT INTO segments (item_id, start_s, end_s, text) VALUES (?, ?, ?, ?)",
            (item_id, *seg.span),
        ).lastrowid
        if seg.text:
            db.execute("INSERT INTO segments_fts (rowid, body) VALUES (?, ?)", (seg_id, seg.text))
        return seg_id

    @staticmethod
    def _save_transcript(
        db: sqlite3.Connection, item_id: int, transcript: Transcript | None, now: float
    ) -> None:
        if transcript is None:
            db.execute("DELETE FROM transcripts WHERE item_id = ?", (item_id,))
            return
        db.execute(
            "INSERT OR REPLACE INTO transcripts (item_id, model, seconds, speech_s, lines, "
            "error, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item_id,
                transcript.model,
                transcript.seconds,
                transcript.speech_s,
                len(transcript.lines),
                transcript.error,
                json.dumps(transcript.to_dict(), ensure_ascii=False),
                now,
            ),
        )

    @staticmethod
    def _index_item_text(db: sqlite3.Connection, item_id: int, enc: EncodedItem) -> None:
        db.execute("DELETE FROM items_fts WHERE rowid = ?", (item_id,))
        db.execute(
            "INSERT INTO items_fts (rowid, name, folder, meta) VALUES (?, ?, ?, ?)",
            (item_id, *item_fts_row(enc.path, enc.info)),
        )

    @staticmethod
    def _upsert_item(
        db: sqlite3.Connection, enc: EncodedItem, now: float
    ) -> tuple[int, list[int] | None]:
        """Insert or update the item row; returns its id and its segment ids when the
        content and segmentation are unchanged (else None: segments must be rebuilt)."""
        columns = {
            "kind": enc.kind,
            "size": enc.size,
            "mtime_ns": enc.mtime_ns,
            "fingerprint": enc.fingerprint,
            "width": enc.width,
            "height": enc.height,
            "duration_s": enc.duration_s,
            "taken_at": enc.taken_at,
            "info": json.dumps(dict(enc.info), ensure_ascii=False) if enc.info else None,
            "indexed_at": now,
            "error": None,
        }
        row = db.execute(
            "SELECT id, fingerprint, error FROM items WHERE path = ?", (enc.path,)
        ).fetchone()
        if row is None:
            names = ", ".join(["path", "added_at", *columns])
            marks = ", ".join("?" * (len(columns) + 2))
            item_id = db.execute(
                f"INSERT INTO items ({names}) VALUES ({marks})",
                (enc.path, now, *columns.values()),
            ).lastrowid
            return item_id, None
        item_id, old_fingerprint, old_error = row
        assignments = ", ".join(f"{name} = ?" for name in columns)
        db.execute(f"UPDATE items SET {assignments} WHERE id = ?", (*columns.values(), item_id))
        if old_fingerprint != enc.fingerprint or old_error is not None:
            return item_id, None
        existing = db.execute(
            "SELECT id, start_s, end_s, text FROM segments WHERE item_id = ? ORDER BY id",
            (item_id,),
        ).fetchall()
        if [tuple(r[1:]) for r in existing] != [seg.span for seg in enc.segments]:
            return item_id, None
        return item_id, [r[0] for r in existing]

    def record_failure(
        self, path: str, kind: str, size: int, mtime_ns: int, reason: str
    ) -> list[int]:
        """Mark a file as failed with its reason; returns segment ids it no longer has."""
        now = time.time()
        with self.write() as db:
            row = db.execute("SELECT id FROM items WHERE path = ?", (path,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO items (path, kind, size, mtime_ns, added_at, error) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (path, kind, size, mtime_ns, now, reason),
                )
                return []
            gone = [r[0] for r in db.execute("SELECT id FROM segments WHERE item_id = ?", row)]
            db.execute("DELETE FROM segments WHERE item_id = ?", row)
            db.execute("DELETE FROM transcripts WHERE item_id = ?", row)
            db.execute(
                "UPDATE items SET kind = ?, size = ?, mtime_ns = ?, fingerprint = NULL, "
                "error = ?, indexed_at = ? WHERE id = ?",
                (kind, size, mtime_ns, reason, now, row[0]),
            )
            return gone

    def move_item(self, item_id: int, new_path: str, size: int, mtime_ns: int) -> None:
        with self.write(changes_vectors=False) as db:
            db.execute(
                "UPDATE items SET path = ?, size = ?, mtime_ns = ? WHERE id = ?",
                (new_path, size, mtime_ns, item_id),
            )
            # The name and folder are searchable words: a moved file is found by its new ones.
            (info,) = db.execute("SELECT info FROM items WHERE id = ?", (item_id,)).fetchone()
            db.execute("DELETE FROM items_fts WHERE rowid = ?", (item_id,))
            db.execute(
                "INSERT INTO items_fts (rowid, name, folder, meta) VALUES (?, ?, ?, ?)",
                (item_id, *item_fts_row(new_path, json.loads(info) if info else {})),
            )

    def touch_item(self, item_id: int, size: int, mtime_ns: int) -> None:
        with self.write(changes_vectors=False) as db:
            db.execute(
                "UPDATE items SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, item_id)
            )

    def delete_items(self, item_ids: Sequence[int]) -> list[int]:
        """Remove items (and their segments and vectors); returns the removed segment ids."""
        if not item_ids:
            return []
        gone: list[int] = []
        with self.write() as db:
            for item_id in item_ids:
                gone += [
                    r[0]
                    for r in db.execute("SELECT id FROM segments WHERE item_id = ?", (item_id,))
                ]
                db.execute("DELETE FROM items WHERE id = ?", (item_id,))
        return gone

    def items_missing_vectors(self, key_by_kind: Mapping[str, str]) -> list[Item]:
        """Healthy items without a vector under their kind's key (e.g. after a model
        change): `key_by_kind` maps a kind to the key every item of it must have."""
        rows: list[tuple] = []
        for kind, key in key_by_kind.items():
            rows += self._query(
                f"SELECT {ITEM_COLUMNS} FROM items i WHERE kind = ? AND error IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM segments s JOIN vectors v "
                "ON v.segment_id = s.id WHERE s.item_id = i.id AND v.model = ?)",
                (kind, key),
            )
        return [Item(*row) for row in rows]

    def items_processed_before(self, kind: str, since: float) -> list[int]:
        """Ids of the healthy items of `kind` last encoded before the time `since`."""
        rows = self._query(
            "SELECT id FROM items WHERE kind = ? AND error IS NULL AND indexed_at < ?",
            (kind, since),
        )
        return [r[0] for r in rows]

    def drop_vectors(self, keys: Iterable[str]) -> None:
        with self.write() as db:
            db.executemany("DELETE FROM vectors WHERE model = ?", [(k,) for k in keys])

    def vector_dim(self, key: str) -> int | None:
        rows = self._query("SELECT dim FROM vectors WHERE model = ? LIMIT 1", (key,))
        return rows[0][0] if rows else None

    def vector_keys(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT model FROM vectors ORDER BY model")]

    # -- vectors ------------------------------------------------------------------------

    def vector_count(self, model: str) -> int:
        return self._query("SELECT count(*) FROM vectors WHERE model = ?", (model,))[0][0]

    def vectors(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """All (segment ids, vectors) of one model, for rebuilding its index."""
        with self._lock:
            cur = self._db.execute(
                "SELECT segment_id, dim, vector FROM vectors WHERE model = ? ORDER BY segment_id",
                (model,),
            )
            ids, blobs, dim = [], [], None
            for seg_id, d, blob in cur:
                dim = d
                ids.append(seg_id)
                blobs.append(blob)
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), dim)
        return np.asarray(ids, dtype=np.int64), matrix

    def sample_vectors(self, key: str, count: int, seed: int = 0) -> np.ndarray:
        """Up to `count` vectors under `key`, chosen at random with a fixed seed: the same
        library gives the same sample."""
        ids = [r[0] for r in self._query("SELECT segment_id FROM vectors WHERE model = ?", (key,))]
        if len(ids) > count:
            ids = np.random.default_rng(seed).choice(ids, count, replace=False).tolist()
        rows: list[tuple] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows += self._query(
                f"SELECT dim, vector FROM vectors WHERE model = ? AND segment_id IN ({marks})",
                (key, *chunk),
            )
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])

    def item_vectors(
        self, item_ids: Sequence[int], key: str
    ) -> list[tuple[int, Item, Segment, np.ndarray]]:
        """Every segment of these items with a vector under `key`, with that vector."""
        if not item_ids:
            return []
        marks = ",".join("?" * len(item_ids))
        cols = ", ".join(f"i.{c}" for c in Item.__dataclass_fields__)
        rows = self._query(
            f"SELECT v.vector, s.id, s.item_id, s.start_s, s.end_s, s.text, {cols} "
            f"FROM vectors v JOIN segments s ON s.id = v.segment_id "
            f"JOIN items i ON i.id = s.item_id WHERE v.model = ? AND s.item_id IN ({marks})",
            (key, *item_ids),
        )
        return [
            (row[2], Item(*row[6:]), Segment(*row[1:6]), np.frombuffer(row[0], dtype=np.float32))
            for row in rows
        ]

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for a read that runs its own SQL (full-text search)."""
        with self._lock:
            yield self._db

    def resolve_segments(self, segment_ids: Sequence[int]) -> dict[int, tuple[Item, Segment]]:
        if not segment_ids:
            return {}
        marks = ",".join("?" * len(segment_ids))
        cols = ", ".join(f"i.{c}" for c in Item.__dataclass_fields__)
        rows = self._query(
            f"SELECT s.id, s.item_id, s.start_s, s.end_s, s.text, {cols} FROM segments s "
            f"JOIN items i ON i.id = s.item_id WHERE s.id IN ({marks})",
            [int(s) for s in segment_ids],
        )
        return {row[0]: (Item(*row[5:]), Segment(*row[:5])) for row in rows}

    # -- transcripts --------------------------------------------------------------------

    def transcript(self, item_id: int) -> Transcript | None:
        """The stored transcript of an item (None when it was never transcribed)."""
        rows = self._query("SELECT data FROM transcripts WHERE item_id = ?", (item_id,))
        return Transcript.from_dict(json.loads(rows[0][0])) if rows else None

    def transcript_for(self, fingerprint: str, model: str) -> Transcript | None:
        """A transcript `model` made of a file with this content (the same file processed
        again for another setting, or a copy of it), so it is not transcribed twice."""
        rows = self._query(
            "SELECT t.data FROM transcripts t JOIN items i ON i.id = t.item_id "
            "WHERE i.fingerprint = ? AND t.model = ? AND t.error IS NULL LIMIT 1",
            (fingerprint, model),
        )
        return Transcript.from_dict(json.loads(rows[0][0])) if rows else None

    def items_to_transcribe(
        self, model: str, text_key: str | None = None, retry_failed: bool = False
    ) -> list[int]:
        """Healthy sound files and videos without a transcript by `model` (never
        transcribed, or by another speech model; with `retry_failed`, also those whose
        transcription failed), and those whose passages lack a vector under `text_key` (the
        library's text model changed)."""
        rows = self._query(
            "SELECT i.id FROM items i LEFT JOIN transcripts t ON t.item_id = i.id "
            "WHERE i.kind IN ('audio', 'video') AND i.error IS NULL "
            "AND (t.model IS NULL OR t.model != ? OR (? AND t.error IS NOT NULL))",
            (model, retry_failed),
        )
        if text_key is not None:
            rows += self._query(
                "SELECT DISTINCT s.item_id FROM segments s JOIN items i ON i.id = s.item_id "
                "WHERE i.kind IN ('audio', 'video') AND i.error IS NULL AND s.text IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.segment_id = s.id "
                "AND v.model = ?)",
                (text_key,),
            )
        return [r[0] for r in rows]

    def speech_counts(self) -> dict[str, float]:
        """Transcribed files (those with words), hours of sound heard and of speech found,
        and transcriptions that failed."""
        ((files, heard, speech, failed),) = self._query(
            "SELECT count(CASE WHEN lines > 0 THEN 1 END), coalesce(sum(seconds), 0), "
            "coalesce(sum(speech_s), 0), count(error) FROM transcripts"
        )
        return {
            "files": files,
            "hours": heard / 3600.0,
            "speech_hours": speech / 3600.0,
            "failed": failed,
        }

    def transcript_failures(self) -> list[tuple[str, str]]:
        return self._query(
            "SELECT i.path, t.error FROM transcripts t JOIN items i ON i.id = t.item_id "
            "WHERE t.error IS NOT NULL ORDER BY i.path"
        )

    # -- reporting ----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        rows = self._query(
            "SELECT kind, count(*) FROM items WHERE error IS NULL GROUP BY kind ORDER BY kind"
        )
        return dict(rows)

    def failures(self) -> list[tuple[str, str]]:
        """Every file the library could not index, with its reason: files that failed to
        decode, and what the scans could not take as a file."""
        return self._query(
            "SELECT path, error FROM items WHERE error IS NOT NULL "
            "UNION ALL SELECT path, reason FROM scan_failures ORDER BY path"
        )


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection. WAL readers normally need to create the -shm file beside the
    catalog; when the folder forbids that, `immutable` reads the file as it is (no other
    process can be writing to a read-only disk anyway)."""
    uri = path.resolve().as_uri()
    for mode in ("mode=ro", "immutable=1"):
        db = sqlite3.connect(
            f"{uri}?{mode}", uri=True, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA user_version").fetchone()
            return db
        except sqlite3.OperationalError:
            db.close()
    raise sqlite3.OperationalError(f"unable to open database file {path} for reading")


def _fill_item_fts(db: sqlite3.Connection) -> None:
    """Names and folders of items catalogued before the full-text index existed."""
    rows = db.execute("SELECT id, path FROM items").fetchall()
    db.executemany(
        "INSERT INTO items_fts (rowid, name, folder, meta) VALUES (?, ?, ?, ?)",
        [(item_id, *item_fts_row(path, {})) for item_id, path in rows],
    )


def _statements(script: str) -> list[str]:
    """Split a migration into statements; a trigger's body holds semicolons of its own."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def _split(patterns: str) -> tuple[str, ...]:
    return tuple(p for p in patterns.split("\n") if p)
