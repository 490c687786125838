"""FAISS indexes, one per embedding space: derived data, rebuilt from the catalog at will.

Vectors are keyed by catalog segment ids (IndexIDMap2), so removals and lookups need no
side table. Each index file has a sidecar JSON saying which model, dimension, count and
catalog generation it reflects; anything that does not match is rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from search.catalog import Catalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexInfo:
    model: str
    dim: int
    count: int
    generation: int
    index_type: str = "IDMap2,Flat"


class VectorStore:
    """Exact inner-product search over L2-normalised vectors (so scores are cosines)."""

    def __init__(self, model: str, dim: int, index: faiss.Index | None = None) -> None:
        self.model = model
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return self.index.ntotal

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
            self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) for one query vector, best first."""
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        scores, ids = self.index.search(query, k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def save(self, path: Path, generation: int) -> IndexInfo:
        """Write index and sidecar atomically: a reader sees the old pair or the new one."""
        info = IndexInfo(self.model, self.dim, len(self), generation)
        _atomic_write(path, faiss.serialize_index(self.index).tobytes())
        _atomic_write(sidecar_path(path), json.dumps(asdict(info), indent=2).encode())
        return info

    @classmethod
    def load(cls, path: Path) -> tuple[VectorStore, IndexInfo]:
        info = IndexInfo(**json.loads(sidecar_path(path).read_text()))
        index = faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
        if index.ntotal != info.count or index.d != info.dim:
            raise ValueError(
                f"holds {index.ntotal} vectors of dim {index.d}, sidecar says "
                f"{info.count} of dim {info.dim}"
            )
        return cls(info.model, info.dim, index), info

    @classmethod
    def from_catalog(cls, catalog: Catalog, model: str, dim: int) -> VectorStore:
        store = cls(model, dim)
        ids, vectors = catalog.vectors(model)
        store.add(ids, vectors)
        return store


def sidecar_path(index_path: Path) -> Path:
    return index_path.with_suffix(index_path.suffix + ".json")


def open_store(
    catalog: Catalog, path: Path, model: str, dim: int, save_if_rebuilt: bool = True
) -> VectorStore:
    """Load the index at `path` if it matches the catalog, else rebuild it from the catalog."""
    generation = catalog.generation
    if not path.exists() or not sidecar_path(path).exists():
        reason = "the index file is missing"
    else:
        try:
            store, info = VectorStore.load(path)
        except Exception as exc:  # faiss raises RuntimeError, json ValueError, ...: all unreadable
            reason = f"the index file is unreadable ({type(exc).__name__}: {exc})"
        else:
            if (info.model, info.dim) != (model, dim):
                reason = f"it was built for {info.model} (dim {info.dim}), the library uses {model}"
            elif info.generation != generation:
                reason = f"it reflects catalog generation {info.generation}, now {generation}"
            else:
                return store
    if catalog.vector_count(model):
        log.warning("Rebuilding the %s index from the catalog: %s.", model, reason)
    store = VectorStore.from_catalog(catalog, model, dim)
    if save_if_rebuilt:
        store.save(path, generation)
    return store


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
