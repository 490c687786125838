"""FAISS indexes, one per embedding space: derived data, rebuilt from the catalog at will.

Vectors are keyed by catalog segment ids (IndexIDMap2 for exact search, the inverted lists'
own ids for IVF), so removals and lookups need no side table. Which index type a library
gets is a pure function of its size, dimension and memory budget (`choose_index`): exact
search while it is fast, IVF above that. Each index file says in its header (and a sidecar
JSON beside it says again, for people and tools) which model, dimension, count, catalog
generation, index type and search parameters it reflects; anything that does not match the
catalog (or the type the catalog's size now calls for) is rebuilt.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from search.storage.catalog import Catalog
from search.testhooks import pause_point

log = logging.getLogger(__name__)

FLAT = "IDMap2,Flat"

# Exact search reads count*dim floats per query. Single-threaded at dim 512 on the 2-core
# machine Trove was measured on (`python bench/ann.py --flat-sweep`), flat search's p50 is
# 2.7 ms at 25k vectors, 4.0 ms at 30k and 7.8 ms at 35k (it leaves the cache): it crosses
# ~5 ms at 2**15 vectors of dim 512, so exact search stays up to 2**24 components.
FLAT_MAX_COMPONENTS = 2**24
# Float vectors beyond this go to 8-bit scalar quantisation, and only then to PQ.
DEFAULT_MEMORY_BUDGET = 4 * 2**30
# Below this, exact search whatever the dimension or budget says: a few MB are not worth
# approximating, and IVF lists and PQ codebooks would have too little to train on.
MIN_APPROXIMATE_COUNT = 10_000
# IVF trains its coarse centroids on this many vectors per list, at most MAX_TRAIN.
TRAIN_PER_LIST = 50
MAX_TRAIN = 256_000
# IVF lists visited per search. On clustered vectors (bench/ann.py, 1M x 512, 1024 lists),
# queries near the data reach recall@10 0.998 with 16 probes already, but text-like queries
# (best match at cosine ~0.3) only 0.955 with 16, 0.968 with 24, 0.977 with 32; p50 on one
# thread 3.5, 4.9 and 7.0 ms. 24 keeps text queries clear of 0.95 well under 10 ms.
NPROBE = 24
# PQ codebooks have 256 centroids each: faiss wants ~39 training points per centroid.
MIN_PQ_TRAIN = 39 * 256
# An index file starts with this, then a 4-byte header length and the header (IndexInfo as
# JSON), then the FAISS index.
INDEX_MAGIC = b"TROVEIX1"
# faiss keeps an int64 id per vector in the inverted lists (IDMap2 adds a reverse map).
ID_BYTES = 8


@dataclass(frozen=True)
class IndexChoice:
    """A FAISS index-factory description (inner-product metric) and its search parameter.

    `nprobe` is how many inverted lists an IVF search visits; None for exact search.
    """

    factory: str
    nprobe: int | None = None

    @property
    def approximate(self) -> bool:
        return self.factory != FLAT

    @property
    def nlist(self) -> int | None:
        if not self.factory.startswith("IVF"):
            return None
        return int(self.factory[3:].split(",", 1)[0])


def choose_index(
    count: int, dim: int, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET
) -> IndexChoice:
    """The index Trove uses for `count` vectors of `dim` floats. Pure and monotone in `count`.

    Exact inner-product search ("IDMap2,Flat") up to FLAT_MAX_COMPONENTS; above it IVF with
    full float vectors ("IVF{nlist},Flat"); when the float vectors do not fit
    `memory_budget_bytes`, IVF with 8-bit scalar quantisation ("IVF{nlist},SQ8"), and only
    when those do not fit either, IVF-PQ with the largest code that fits.
    """
    if count < 0 or dim <= 0:
        raise ValueError(f"no index for {count} vectors of dim {dim}")
    floats_fit = count * (4 * dim + ID_BYTES) <= memory_budget_bytes
    if (floats_fit and count * dim <= FLAT_MAX_COMPONENTS) or count < MIN_APPROXIMATE_COUNT:
        return IndexChoice(FLAT)
    if floats_fit:
        return ivf_index(count)
    if count * (dim + ID_BYTES) <= memory_budget_bytes:
        return ivf_index(count, "SQ8")
    codes = [m for m in range(dim // 2, 0, -1) if dim % m == 0 and m <= 256]
    fitting = [m for m in codes if count * (m + ID_BYTES) <= memory_budget_bytes]
    # "np": no polysemous training, which takes minutes and serves a Hamming pre-filter
    # Trove does not use.
    return ivf_index(count, f"PQ{fitting[0] if fitting else codes[-1]}np")


# A library whose size sits on a threshold of `choose_index` (exact/IVF, or IVF's number of
# lists) keeps the index type it has while a size this much smaller or larger would still
# choose that type: adding and deleting a few files does not rebuild it back and forth.
HYSTERESIS = 0.1


def settled_index(
    current: str | None, count: int, dim: int, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET
) -> IndexChoice:
    """`choose_index` with hysteresis: the index of type `current` (a factory string; None
    for no index yet) is kept while `choose_index` would pick it for `count` give or take
    HYSTERESIS; otherwise the type for `count`."""
    choice = choose_index(count, dim, memory_budget_bytes)
    if current is None or current == choice.factory:
        return choice
    for nearby in (int(count * (1 - HYSTERESIS)), int(count * (1 + HYSTERESIS))):
        kept = choose_index(nearby, dim, memory_budget_bytes)
        if kept.factory == current:
            return kept
    return choice


def ivf_index(count: int, codec: str = "Flat") -> IndexChoice:
    """The IVF index (lists and probes) for `count` vectors stored as `codec`: "Flat" (float
    vectors), "SQ8" (8-bit scalar quantised) or "PQ{m}np" (m-byte product quantised)."""
    nlist = _nlist(count)
    return IndexChoice(f"IVF{nlist},{codec}", _nprobe(nlist))


def _nlist(count: int) -> int:
    # ~sqrt(count) lists, a power of two: rather than faiss's 4*sqrt(count), because k-means
    # and assigning every vector cost nlist times more on the 2-core machines Trove targets
    # (bench/ann.py: 40-75 s to build 1M x 512 with 1024 lists).
    return 2 ** round(math.log2(math.sqrt(count)))


def _nprobe(nlist: int) -> int:
    return min(nlist, NPROBE)


class VectorStore:
    """Inner-product search over L2-normalised vectors (so scores are cosines).

    A new store is exact (FLAT); `from_catalog` builds the type `choose_index` picks for the
    catalog's size. Adds to a trained IVF go straight into its lists.
    """

    def __init__(
        self,
        model: str,
        dim: int,
        index: faiss.Index | None = None,
        choice: IndexChoice | None = None,
    ) -> None:
        self.model = model
        self.dim = dim
        self.choice = choice = choice or IndexChoice(FLAT)
        if index is None:
            if choice.approximate:
                raise ValueError(f"{choice.factory} needs training: use VectorStore.build")
            index = _new_index(choice, dim)
        self.index = index
        self._ivf = faiss.try_extract_index_ivf(index)
        if self._ivf is not None and choice.nprobe is not None:
            self._ivf.nprobe = choice.nprobe

    @classmethod
    def build(
        cls,
        model: str,
        dim: int,
        ids: np.ndarray,
        vectors: np.ndarray,
        choice: IndexChoice | None = None,
        seed: int = 0,
    ) -> VectorStore:
        """A store of `choice` (default: `choose_index` for this many vectors) holding `vectors`.

        IVF is trained on a sample of them: TRAIN_PER_LIST per list, at most MAX_TRAIN.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
        choice = choice or choose_index(len(vectors), dim)
        index = _new_index(choice, dim)
        if not index.is_trained:
            index.train(_training_sample(vectors, choice, seed))
        store = cls(model, dim, index, choice)
        store.add(ids, vectors)
        return store

    def __len__(self) -> int:
        return self.index.ntotal

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
            self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    @property
    def index_type(self) -> str:
        """The index-factory description of this store's index, e.g. "IVF1024,Flat"."""
        return self.choice.factory

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) for one query vector, best first. Runs on one thread.

        Fewer than k only when the store holds fewer: an IVF search whose lists run out
        before k hits is repeated with more lists visited.
        """
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        ivf = self._ivf
        with one_thread():
            scores, ids = self.index.search(query, k)
            nprobe = ivf.nprobe if ivf is not None else 0
            while ids[0, -1] < 0 and ivf is not None and nprobe < ivf.nlist:
                nprobe = min(ivf.nlist, nprobe * 4)
                params = faiss.SearchParametersIVF(nprobe=nprobe)
                scores, ids = self.index.search(query, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def save(self, path: Path, generation: int) -> IndexInfo:
        """Write the index atomically, what it reflects in its own header, so a reader gets
        the old index or the new one and never one with another's description; then the
        sidecar, the same description for people and tools."""
        info = IndexInfo(
            self.model, self.dim, len(self), generation, self.choice.factory, self.choice.nprobe
        )
        header = json.dumps(asdict(info)).encode()
        body = faiss.serialize_index(self.index).tobytes()
        _atomic_write(path, INDEX_MAGIC + len(header).to_bytes(4, "little") + header + body)
        pause_point("store.save.between-index-and-sidecar")
        _atomic_write(sidecar_path(path), json.dumps(asdict(info), indent=2).encode())
        return info

    @classmethod
    def load(cls, path: Path) -> tuple[VectorStore, IndexInfo]:
        """The index at `path` and the description saved with it.

        Index files written before the header existed are described by their sidecar.
        """
        data = np.fromfile(path, dtype=np.uint8)
        if data[: len(INDEX_MAGIC)].tobytes() == INDEX_MAGIC:
            start = len(INDEX_MAGIC) + 4
            length = int.from_bytes(data[len(INDEX_MAGIC) : start].tobytes(), "little")
            info = IndexInfo(**json.loads(data[start : start + length].tobytes()))
            data = data[start + length :]
        else:
            info = IndexInfo(**json.loads(sidecar_path(path).read_text()))
        index = faiss.deserialize_index(data)
        if index.ntotal != info.count or index.d != info.dim:
            raise ValueError(
                f"holds {index.ntotal} vectors of dim {index.d}, its description says "
                f"{info.count} of dim {info.dim}"
            )
        return cls(info.model, info.dim, index, IndexChoice(info.index_type, info.nprobe)), info

    @classmethod
    def from_catalog(
        cls, catalog: Catalog, model: str, dim: int, choice: IndexChoice | None = None
    ) -> VectorStore:
        """Build from the catalog's vectors of `model`, as `choice` or as `choose_index` says."""
        ids, vectors = catalog.vectors(model)
        return cls.build(model, dim, ids, vectors, choice)


@dataclass(frozen=True)
class IndexInfo:
    """The sidecar: what an index file reflects."""

    model: str
    dim: int
    count: int
    generation: int
    index_type: str = FLAT
    nprobe: int | None = None


@contextmanager
def one_thread() -> Iterator[None]:
    """Run FAISS calls in this block on one OpenMP thread, then restore the thread count.

    One query is faster on one thread (waking a team costs more than it saves). OpenMP keeps
    the thread count per calling thread, so this does not touch other threads' batch work.
    """
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _new_index(choice: IndexChoice, dim: int) -> faiss.Index:
    return faiss.index_factory(dim, choice.factory, faiss.METRIC_INNER_PRODUCT)


def _training_sample(vectors: np.ndarray, choice: IndexChoice, seed: int) -> np.ndarray:
    want = TRAIN_PER_LIST * (choice.nlist or 1)
    if "PQ" in choice.factory:
        want = max(want, MIN_PQ_TRAIN)
    want = min(want, MAX_TRAIN)
    if len(vectors) <= want:
        return vectors
    rows = np.random.default_rng(seed).choice(len(vectors), want, replace=False)
    return vectors[np.sort(rows)]


def sidecar_path(index_path: Path) -> Path:
    return index_path.with_suffix(index_path.suffix + ".json")


def stored_count(index_path: Path) -> int:
    """How many vectors the index file at `index_path` holds, as its sidecar says, without
    loading or rebuilding it; 0 when there is no index file or its sidecar is missing or
    unreadable."""
    if not index_path.exists():
        return 0
    try:
        return json.loads(sidecar_path(index_path).read_text())["count"]
    except (OSError, ValueError, KeyError):
        return 0


def open_store(
    catalog: Catalog, path: Path, model: str, dim: int, save_if_rebuilt: bool = True
) -> VectorStore:
    """Load the index at `path` if it matches the catalog, else rebuild it from the catalog.

    A matching index is also rebuilt when the catalog's size now calls for another index
    type (`settled_index`), e.g. exact search grown well past its threshold.
    """
    generation = catalog.generation
    if not path.exists() or not sidecar_path(path).exists():
        reason = "the index file is missing"
    else:
        try:
            store, info = VectorStore.load(path)
        except Exception as exc:  # faiss raises RuntimeError, json ValueError, ...: all unreadable
            reason = f"the index file is unreadable ({type(exc).__name__}: {exc})"
        else:
            choice = settled_index(info.index_type, info.count, dim)
            if (info.model, info.dim) != (model, dim):
                reason = f"it was built for {info.model} (dim {info.dim}), the library uses {model}"
            elif info.generation != generation:
                reason = f"it reflects catalog generation {info.generation}, now {generation}"
            elif info.index_type != choice.factory:
                reason = (
                    f"it is {info.index_type}, and {info.count} vectors of dim {dim} now call "
                    f"for {choice.factory}"
                )
            else:
                if info.nprobe != choice.nprobe:  # a search parameter: no rebuild needed
                    store = VectorStore(model, dim, store.index, choice)
                return store
    if catalog.vector_count(model):
        log.warning("Rebuilding the %s index from the catalog: %s.", model, reason)
    store = VectorStore.from_catalog(catalog, model, dim)
    if save_if_rebuilt:
        store.save(path, generation)
    return store


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_temporaries(path)
    # Unique per process and thread: a UI process may save from its indexer thread while a
    # search thread rebuilds the same index.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    pause_point("store.write.before-rename")
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove_abandoned_temporaries(path: Path) -> None:
    """Delete temporary files a killed writer left for `path` (their pid no longer runs)."""
    for tmp in path.parent.glob(f".{path.name}.*.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
