"""A data directory: the catalog, one index per model, the writer lock, and model choice."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from search.errors import (
    AlreadyIndexingError,
    LibraryRootError,
    ModelMismatchError,
    NoLibraryError,
    TroveError,
    WeightsNotFoundError,
)
from search.models import load_encoder
from search.models.encoders import check_model, meta_key
from search.models.registry import DEFAULT_CLIP_MODEL
from search.storage.catalog import Catalog
from search.storage.datadir import DataDir
from search.storage.store import VectorStore, open_store

if TYPE_CHECKING:
    # Naming the class imports torch, which a command that loads no model (status) skips.
    from search.models.clip import ClipEncoder

# What an error escaping the catalog or an index write says about the disk under the data folder.
STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "it is read-only",
    errno.EACCES: "you may not write there",
    errno.EPERM: "you may not write there",
    errno.EIO: "the disk reports input/output errors",
}
STORAGE_SQLITE_ERRORS = {
    "database or disk is full": "the disk is full",
    "attempt to write a readonly database": "it is read-only",
    "unable to open database file": "the catalog cannot be opened there (read-only, or not yours)",
    "disk i/o error": "the disk reports input/output errors",
}


class StorageError(TroveError):
    """The data folder's disk refused a write (full, read-only, failing)."""


def storage_problem(exc: BaseException | None) -> str | None:
    """What the disk did, if `exc` (or an exception it was raised from or while handling)
    is a storage failure; None otherwise."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return STORAGE_ERRNOS[exc.errno]
        if isinstance(exc, sqlite3.OperationalError):
            message = str(exc).lower()
            for needle, problem in STORAGE_SQLITE_ERRORS.items():
                if needle in message:
                    return problem
        exc = exc.__cause__ or exc.__context__
    return None


@contextmanager
def storage_errors(data_dir: Path) -> Iterator[None]:
    """Turn a storage failure under `data_dir` into a StorageError that says what to do.

    SQLite rolls back the transaction it could not commit, and indexes are replaced
    atomically, so what was committed before the failure is intact.
    """
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        problem = storage_problem(exc)
        if problem is None:
            raise
        raise StorageError(
            f"Cannot write to the data folder {data_dir}: {problem}. Everything committed "
            f"before this is kept. Fix that (free some space, or choose another folder with "
            f"--data-dir), then run the same command again to go on."
        ) from exc


@dataclass(frozen=True)
class RemovedRoot:
    """What `Library.remove_root` did: the library folder it forgot, and how many files left
    the catalog and the indexes with it."""

    folder: str
    files: int


# The command-line option that chooses each space's model.
MODEL_OPTIONS = {
    "clip": "--model",
    "clap": "--audio-model",
    "text": "--text-model",
    "sound": "--sound-model",
    "video": "--video-model",
}
# The options that give a model's local weights, and the catalog meta that remembers them.
WEIGHTS_OPTIONS = {
    "clip": "--model-path",
    "clap": "--audio-model-path",
    "sound": "--sound-model-path",
    "video": "--video-model-path",
}
WEIGHTS_META = {space: f"weights_path.{space}" for space in WEIGHTS_OPTIONS}


class Library:
    """Opens (or, with `create`, makes) the library in a data folder."""

    def __init__(self, data_dir: str | Path, create: bool = True) -> None:
        self.layout = DataDir(data_dir)
        self.data_dir = self.layout.root
        if not create and not self.layout.catalog.exists():
            raise NoLibraryError(
                f"No Trove library in {self.data_dir} yet. Index a folder first: "
                f"`python app.py index ~/Pictures` (or point --data-dir at an existing library)."
            )
        self.read_only = False
        try:
            with storage_errors(self.data_dir):
                self.catalog = Catalog(self.layout.catalog)
        except StorageError:
            if create or not self.layout.catalog.exists():
                raise
            # A library on a read-only disk (or not ours to write) can still be searched.
            self.catalog = Catalog(self.layout.catalog, read_only=True)
            self.read_only = True

    def close(self) -> None:
        self.catalog.close()

    def index_path(self, key: str) -> Path:
        """The FAISS file of a vector key ("clip-vit-b-32", "clip-vit-b-32:text", or a text
        model named by a folder or URL): a safe file name, made unique by a short hash when
        the key had to be changed for it."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip("-.")[:80] or "index"
        if safe != key:
            safe += "-" + hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
        return self.layout.indexes / f"{safe}.faiss"

    def model(self, space: str) -> str | None:
        """The model this library's vectors in `space` were built with (None while none)."""
        return self.catalog.get_meta(meta_key(space))

    @property
    def clip_model(self) -> str | None:
        return self.model("clip")

    def search_encoder(self, requested: str | None, model_path: str | None) -> ClipEncoder:
        """The encoder to search with: the library's own model, unless a different one is
        asked for, which would compare vectors from two unrelated spaces; its weights from
        `model_path`, else from where the library's were when it was indexed."""
        self.check_search_model("clip", requested)
        name = requested or self.clip_model or DEFAULT_CLIP_MODEL
        return load_encoder(name, self.weights_path("clip", model_path, name))

    def weights_path(
        self, space: str, given: str | None = None, model: str | None = None
    ) -> str | None:
        """Where to load `space`'s model (`model`, default the library's) from: `given` (an
        option of this command), else the local path the library was indexed with, if it
        was given one (`remember_weights_path`). TroveError, saying where they were and what
        to do, when those weights are no longer there."""
        if given:
            return given
        model = model or self.model(space)
        remembered = json.loads(self.catalog.get_meta(WEIGHTS_META[space]) or "{}")
        path = remembered.get("path")
        if not path or remembered.get("model") != model:
            return None
        if not Path(path).exists():
            raise WeightsNotFoundError(
                f"This library's {model} weights were at {path} when it was indexed, and are "
                f"not there now (moved or deleted?). Give their new place with "
                f"{WEIGHTS_OPTIONS[space]} NEW_PATH (the next index run remembers it)."
            )
        return path

    def remember_weights_path(self, space: str, model: str, path: str | None) -> None:
        """Remember the local weights `model` was loaded from (an index run's --model-path
        or --audio-model-path), so later commands find them without the option."""
        if not path:
            return
        value = json.dumps({"model": model, "path": str(Path(path).expanduser().resolve())})
        if self.catalog.get_meta(WEIGHTS_META[space]) != value:
            self.catalog.set_meta(WEIGHTS_META[space], value)

    def check_search_model(self, space: str, requested: str | None) -> None:
        """A model asked for to search `space` must be a model of that space (a misspelt
        name is named, not sent to `index`) and the library's own: its vectors were made by
        that one, and another's would be unrelated."""
        if not requested:
            return
        check_model(space, requested)
        built = self.model(space)
        if built and requested != built:
            option = MODEL_OPTIONS[space]
            raise ModelMismatchError(
                f"This library was indexed with {built}; searching it with {requested} would "
                f"compare unrelated embeddings. Search without {option} to use {built}, or "
                f"re-index with the new model: `python app.py index {option} {requested}`."
            )

    def open_store(self, key: str, dim: int, save_if_rebuilt: bool = True) -> VectorStore:
        save = save_if_rebuilt and not self.read_only
        return open_store(self.catalog, self.index_path(key), key, dim, save)

    def size_on_disk(self) -> int:
        """Bytes of the catalog and the indexes; the UI's thumbnail cache is not counted."""
        thumbnails = self.layout.thumbnails
        return sum(
            p.stat().st_size
            for p in self.data_dir.rglob("*")
            if p.is_file() and not p.is_relative_to(thumbnails)
        )

    def remove_root(self, path: str) -> RemovedRoot:
        """Forget the library folder `path` and drop its files from the catalog and from
        every index, except files that another library folder also holds; the files on disk
        are not touched. `path` is matched as typed, with `~` expanded, relative to the
        current folder, or through symlinks.

        Raises LibraryRootError, naming the library folders, when `path` is none of them,
        and AlreadyIndexingError while another process writes to the library: an index run
        would put the files back.
        """
        catalog = self.catalog
        roots = catalog.roots()
        text = os.path.expanduser(path.strip())
        wanted = {text.rstrip("/") or "/", os.path.abspath(text), os.path.realpath(text)}
        target = next((r for r in roots if r.path in wanted), None)
        if target is None:
            known = ", ".join(r.path for r in roots) or "none"
            raise LibraryRootError(f"{path} is not a library folder. Library folders: {known}.")
        others = [r.path for r in roots if r.path != target.path]
        with self.writer():
            doomed = [
                item.id
                for item in catalog.items_under(target.path).values()
                if not any(item.path.startswith(other.rstrip("/") + "/") for other in others)
            ]
            stores = {k: self.open_store(k, catalog.vector_dim(k)) for k in catalog.vector_keys()}
            gone = catalog.delete_items(doomed)
            catalog.remove_root(target.path)
            for key, store in stores.items():
                store.remove(gone)
                store.save(self.index_path(key), catalog.generation)
        return RemovedRoot(target.path, len(doomed))

    def refuse_if_writing(self) -> None:
        """AlreadyIndexingError now when another process writes to the library, so a command
        that would write is refused before it loads any model."""
        with self.writer():
            pass

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the one-writer lock; a second indexer gets AlreadyIndexingError at once."""
        with storage_errors(self.data_dir):
            yield from self._hold_writer_lock()

    def _hold_writer_lock(self) -> Iterator[None]:
        lock = FileLock(self.layout.writer_lock, timeout=0)
        owner = self.layout.writer_owner
        try:
            lock.acquire()
        except Timeout:
            who = owner.read_text().strip() if owner.exists() else "another process"
            raise AlreadyIndexingError(
                f"Already indexing: {who} is writing to {self.data_dir}. Wait for it to "
                f"finish (or stop it with Ctrl-C; it keeps what it has done), then run again."
            ) from None
        try:
            owner.write_text(f"Trove indexer (pid {os.getpid()})\n")
            yield
        finally:
            owner.unlink(missing_ok=True)
            lock.release()
