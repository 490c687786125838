"""Index runs: walk -> diff against the catalog -> decode ahead in threads -> batched encode
-> one catalog transaction per batch -> vector store.

Each batch is committed before the next is encoded, so an interrupted run keeps what it
finished and the next run picks up the rest as new files.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
from tqdm import tqdm

from indexers.changes import Plan, fingerprint, plan_changes
from indexers.image import load_image
from indexers.walk import FoundFile, walk
from search.catalog import EncodedItem, Root
from search.errors import BadFileError, LibraryRootError
from search.library import CLIP_MODEL_KEY, Library
from search.models import ClipEncoder
from search.store import VectorStore, choose_index

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class IndexSummary:
    model: str
    indexed: int = 0
    unchanged: int = 0
    moved: int = 0
    touched: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    def report(self) -> str:
        rate = self.indexed / self.seconds if self.seconds else 0.0
        lines = [
            f"{'Interrupted' if self.interrupted else 'Done'} in {self.seconds:.1f} s with "
            f"{self.model}: {self.indexed} indexed ({rate:.1f}/s), {self.unchanged} unchanged, "
            f"{self.moved} moved, {self.touched} touched, {self.removed} removed, "
            f"{len(self.failed)} failed."
        ]
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failed]
        if self.interrupted:
            lines.append("Everything committed is kept; run the same command again to resume.")
        return "\n".join(lines)


@dataclass(frozen=True)
class ProgressEvent:
    """Where an index run stands: `done` of the `total` files to encode are committed or
    failed; `path` is the file just finished (None before the first), `error` its reason
    when it failed."""

    done: int
    total: int
    path: str | None = None
    error: str | None = None


class _StopRequested(Exception):
    """Raised between batches when the run's `stop` event is set."""


@dataclass(frozen=True)
class Decoded:
    found: FoundFile
    fingerprint: str
    tensor: torch.Tensor
    width: int
    height: int


def decode_ahead(
    fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int
) -> Iterator[tuple[T, R | Exception]]:
    """Map `fn` over `items` in threads, at most `ahead` in flight, yielding in order.

    Pillow and torch release the GIL while decoding and resizing, so threads overlap with
    the encoder; the bound keeps decoded tensors from piling up in memory.
    """
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque[tuple[T, Future]] = deque()
        try:
            for item in items:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= ahead:
                    yield _settle(*pending.popleft())
            while pending:
                yield _settle(*pending.popleft())
        finally:
            for _, future in pending:
                future.cancel()


def _settle(item, future: Future):
    try:
        return item, future.result()
    except Exception as exc:
        return item, exc


def check_roots(roots: Sequence[Root]) -> None:
    """Refuse to start when a library folder is missing: an unplugged drive is not a
    deletion, so its items must not be dropped from the catalog."""
    for root in roots:
        if not os.path.isdir(root.path):
            raise LibraryRootError(
                f"Library folder {root.path} is not there (or is not a folder). Check the "
                f"path, or plug in the drive that holds it; nothing in the catalog was changed."
            )


class Indexer:
    """Brings a library's catalog and index up to date with its roots on disk."""

    def __init__(
        self,
        library: Library,
        encoder: ClipEncoder,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        progress: bool = True,
        save_every_s: float = 60.0,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """`on_progress` is called when the files to encode are known and after each
        committed batch or failed file; setting `stop` ends the run between batches the way
        Ctrl-C does (committed work is kept, `summary.interrupted` is True)."""
        self.library = library
        self.catalog = library.catalog
        self.encoder = encoder
        self.batch_size = batch_size
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.progress = progress
        self.save_every_s = save_every_s
        self.on_progress = on_progress
        self.stop = stop

    def run(self, roots: Sequence[Root]) -> IndexSummary:
        check_roots(roots)
        self.encoder.resolve()  # a missing-weights error before anything is touched
        started = time.monotonic()
        summary = IndexSummary(self.encoder.name)
        with self.library.writer():
            previous_model = self.library.clip_model
            if previous_model is None:
                self.catalog.set_meta(CLIP_MODEL_KEY, self.encoder.name)
            store = self.library.open_store(self.encoder)
            in_sync_with = self.catalog.generation
            try:
                self._run(roots, store, summary)
            except (KeyboardInterrupt, _StopRequested):
                summary.interrupted = True
            finally:
                if self.catalog.generation != in_sync_with:
                    store.save(self.library.index_path(store.model), self.catalog.generation)
            if choose_index(len(store), store.dim).factory != store.index_type:
                # The library outgrew its index type: rebuild now, under the writer lock,
                # rather than make the next search wait for it.
                self.library.open_store(self.encoder)
            summary.seconds = time.monotonic() - started
            if previous_model and previous_model != self.encoder.name:
                self._finish_model_switch(previous_model, summary)
        return summary

    def _run(self, roots: Sequence[Root], store: VectorStore, summary: IndexSummary) -> None:
        needs_vectors = {i.id for i in self.catalog.items_without_vectors(self.encoder.name)}
        on_error = self._walk_error(summary)
        scans = []
        for root in roots:
            self.catalog.add_root(root)
            scans.append(
                (root.path, walk(root.path, root.include, root.exclude, on_error=on_error))
            )
        plan = plan_changes(self.catalog, scans, needs_vectors)
        self._apply_bookkeeping(plan, store, summary)
        self._encode(plan.encode, store, summary)

    def _walk_error(self, summary: IndexSummary) -> Callable[[str, OSError], None]:
        def on_error(path: str, exc: OSError) -> None:
            summary.failed.append((path, f"cannot read: {exc.strerror or exc}"))

        return on_error

    def _apply_bookkeeping(self, plan: Plan, store: VectorStore, summary: IndexSummary) -> None:
        for item, f in plan.moved:
            self.catalog.move_item(item.id, f.path, f.size, f.mtime_ns)
        for item, f in plan.touched:
            self.catalog.touch_item(item.id, f.size, f.mtime_ns)
        store.remove(self.catalog.delete_items([i.id for i in plan.deleted]))
        for f, reason in plan.unreadable:
            store.remove(self.catalog.record_failure(f.path, f.kind, f.size, f.mtime_ns, reason))
            summary.failed.append((f.path, reason))
        summary.unchanged += plan.unchanged
        summary.moved += len(plan.moved)
        summary.touched += len(plan.touched)
        summary.removed += len(plan.deleted)

    def _decode(self, job: tuple[FoundFile, str | None]) -> Decoded:
        found, fp = job
        image, width, height = load_image(found.path, min_side=self.encoder.spec.image_size)
        tensor = self.encoder.preprocess(image)
        return Decoded(found, fp or fingerprint(found.path, found.size), tensor, width, height)

    def _encode(
        self, jobs: list[tuple[FoundFile, str | None]], store: VectorStore, summary: IndexSummary
    ) -> None:
        batch: list[Decoded] = []
        last_save = time.monotonic()
        done, total = 0, len(jobs)
        self._report(ProgressEvent(done, total))
        bar = tqdm(total=len(jobs), unit="file", desc="Indexing", disable=not self.progress)
        with bar:
            decoded = decode_ahead(self._decode, jobs, self.workers, ahead=2 * self.batch_size)
            for (found, _), result in decoded:
                if not batch and self.stop is not None and self.stop.is_set():
                    raise _StopRequested
                if isinstance(result, Exception):
                    reason = _reason(result)
                    gone = self.catalog.record_failure(
                        found.path, found.kind, found.size, found.mtime_ns, reason
                    )
                    store.remove(gone)
                    summary.failed.append((found.path, reason))
                    bar.update(1)
                    done += 1
                    self._report(ProgressEvent(done, total, found.path, reason))
                    continue
                batch.append(result)
                if len(batch) >= self.batch_size:
                    self._commit(batch, store, summary)
                    bar.update(len(batch))
                    done += len(batch)
                    self._report(ProgressEvent(done, total, batch[-1].found.path))
                    batch = []
                if time.monotonic() - last_save > self.save_every_s:
                    store.save(self.library.index_path(store.model), self.catalog.generation)
                    last_save = time.monotonic()
            if batch:
                self._commit(batch, store, summary)
                bar.update(len(batch))
                done += len(batch)
                self._report(ProgressEvent(done, total, batch[-1].found.path))

    def _report(self, event: ProgressEvent) -> None:
        if self.on_progress is not None:
            self.on_progress(event)

    def _commit(self, batch: list[Decoded], store: VectorStore, summary: IndexSummary) -> None:
        vectors = self.encoder.encode_image_tensors(torch.stack([d.tensor for d in batch]))
        encoded = [
            EncodedItem(
                path=d.found.path,
                kind=d.found.kind,
                size=d.found.size,
                mtime_ns=d.found.mtime_ns,
                fingerprint=d.fingerprint,
                width=d.width,
                height=d.height,
                segments=[(None, None, None)],
                vectors=vectors[i : i + 1],
            )
            for i, d in enumerate(batch)
        ]
        new_ids, replaced = self.catalog.save_encoded(encoded, self.encoder.name)
        store.remove(replaced)
        store.add(np.asarray(new_ids), vectors)
        summary.indexed += len(batch)

    def _finish_model_switch(self, previous: str, summary: IndexSummary) -> None:
        if summary.interrupted or self.catalog.items_without_vectors(self.encoder.name):
            log.warning(
                "The library still searches with %s until every file has a %s vector; "
                "run `python app.py index --model %s` again to finish.",
                previous,
                self.encoder.name,
                self.encoder.name,
            )
            return
        self.catalog.set_meta(CLIP_MODEL_KEY, self.encoder.name)
        self.catalog.drop_vectors_except(self.encoder.name)
        self.library.index_path(previous).unlink(missing_ok=True)


def _reason(exc: Exception) -> str:
    if isinstance(exc, BadFileError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    # Decoders raise all sorts of types on odd files; record them rather than stop the run.
    return f"could not decode ({type(exc).__name__}: {exc})"
