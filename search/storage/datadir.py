"""A Trove data folder's layout, in one place: every module asks `DataDir` where the catalog,
the indexes, the bridges, the picture cache, fine-tuned models and the writer lock live."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir


class DataDir:
    """The paths inside one data folder (nothing is created here)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    @classmethod
    def default(cls) -> DataDir:
        """TROVE_DATA_DIR, else the platform's per-user data folder."""
        env = os.environ.get("TROVE_DATA_DIR")
        if env:
            return cls(env)
        return cls(user_data_dir("trove", appauthor=False))

    @property
    def catalog(self) -> Path:
        """The SQLite catalog: the truth every other file here is derived from."""
        return self.root / "catalog.sqlite3"

    @property
    def indexes(self) -> Path:
        """FAISS indexes, one per vector key, each with its sidecar."""
        return self.root / "indexes"

    @property
    def bridges(self) -> Path:
        """Fitted CLIP <-> CLAP bridges, by the pair of models."""
        return self.root / "bridges"

    @property
    def thumbnails(self) -> Path:
        """Pictures of library files (thumbnails, video stills, waveforms, page cards)."""
        return self.root / "thumbnails"

    @property
    def models(self) -> Path:
        """Fine-tuned model presets, one folder each."""
        return self.root / "models"

    @property
    def writer_lock(self) -> Path:
        """The one-writer lock file; `writer_owner` says who holds it."""
        return self.root / "indexer.lock"

    @property
    def writer_owner(self) -> Path:
        return self.root / "indexer.owner"

    def private(self) -> list[Path]:
        """What the web server must never hand out: the catalog (with SQLite's WAL and shared
        memory files), the indexes and the lock files."""
        catalog = self.catalog
        wal, shm = (catalog.with_name(catalog.name + suffix) for suffix in ("-wal", "-shm"))
        return [catalog, wal, shm, self.indexes, self.writer_lock, self.writer_owner]
