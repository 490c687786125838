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
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

import numpy as np
from tqdm import tqdm

from indexers.changes import Plan, fingerprint, plan_changes, remember_failures_version
from indexers.roots import check_roots
from indexers.walk import walk
from search.bridge import load_or_fit_bridge
from search.decode.isolation import DEFAULT_MEMORY_MIB, IsolatedDecoder
from search.decode.kinds import FoundFile
from search.errors import BadFileError
from search.library import Library
from search.models.encoders import ROLE_SPACE, SPACES, Encoders, meta_key, model_keys
from search.models.speech import load_speech_model
from search.segments import (
    DEFAULT_BATCH_SIZE,
    NATIVE_TIMEOUT_S,
    OPTIONAL_ROLES,
    PRIMARY_ROLE,
    REQUIRED_ROLES,
    Decoded,
    Segmenter,
    SegmentSettings,
    SettingChange,
    chosen_speech_model,
    chosen_speech_path,
    encode_segments,
    files_to_redo,
    remember_settings,
)
from search.storage.catalog import EncodedItem, EncodedSegment, Root, Saved
from search.storage.store import VectorStore, settled_index
from search.testhooks import delay_point

log = logging.getLogger(__name__)


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
    # Files left for a later run because a model they need has no weights here, by kind,
    # and the paragraphs saying how to get those weights.
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    # Files whose speech was transcribed in this run (a transcript reused for the same
    # content by the same model is not counted), and the seconds of sound heard.
    transcribed: int = 0
    transcribed_s: float = 0.0
    # Of those, the files in which speech was heard.
    with_speech: int = 0

    def report(self) -> str:
        rate = self.indexed / self.seconds if self.seconds else 0.0
        lines = [
            f"{'Interrupted' if self.interrupted else 'Done'} in {self.seconds:.1f} s with "
            f"{self.model}: {self.indexed} indexed ({rate:.1f}/s), {self.unchanged} unchanged, "
            f"{self.moved} moved, {self.touched} touched, {self.removed} removed, "
            f"{len(self.failed)} failed."
        ]
        if self.transcribed:
            lines.append(
                f"Listened for speech in {self.transcribed} file(s) "
                f"({self.transcribed_s / 60:.1f} min of sound): {self.with_speech} hold speech."
            )
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failed]
        for kind, count in sorted(self.skipped.items()):
            lines.append(f"Not indexed yet: {count} {kind} file(s); see below.")
        lines += self.notes
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


# One file's outcome: its Decoded (or why it failed) and, when it was encoded elsewhere, its
# vectors per segment (None: the indexer encodes it, as a local run does).
FileResult = tuple[FoundFile, "Decoded | Exception", "list[dict[str, np.ndarray]] | None"]


class EncodeRunner(Protocol):
    """Decodes and encodes an index run's files somewhere else (indexers/ray_runner.py: on
    a Ray cluster) with `encode_files`; the walk, the change detection and every catalog
    write stay with the Indexer."""

    def encode(
        self, jobs: list[tuple[FoundFile, str | None]], segmenter: Segmenter, batch_size: int
    ) -> Iterator[FileResult]:
        """Every job's FileResult, in any order, each file once."""
        ...


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


def decode_job(segmenter: Segmenter, job: tuple[FoundFile, str | None]) -> Decoded:
    found, fp = job
    return segmenter(found, fp or fingerprint(found.path, found.size))


def encode_files(
    segmenter: Segmenter,
    jobs: Sequence[tuple[FoundFile, str | None]],
    batch_size: int,
    workers: int,
) -> list[tuple[FoundFile, Decoded | str, list[dict[str, np.ndarray]]]]:
    """Decode and encode a batch of files the way a local run does (the same decode, the
    same encode_segments), for a runner on another machine: per file its Decoded without
    the encoder inputs (tensors the catalog does not keep) and its vectors per segment,
    or the reason it failed."""
    outcomes: list[tuple[FoundFile, Decoded | str]] = []
    for (found, _), result in decode_ahead(
        lambda job: decode_job(segmenter, job), jobs, workers, ahead=max(1, len(jobs))
    ):
        outcomes.append((found, _reason(result) if isinstance(result, Exception) else result))
    decoded = [d for _, d in outcomes if isinstance(d, Decoded)]
    vectors = encode_segments(segmenter.encoders, decoded, batch_size)
    per_file = iter(
        [vectors[(i, j)] for j in range(len(d.segments))] for i, d in enumerate(decoded)
    )
    return [
        (found, d, [])
        if isinstance(d, str)
        else (
            found,
            replace(d, segments=[replace(p, inputs={}) for p in d.segments]),
            next(per_file),
        )
        for found, d in outcomes
    ]


class Indexer:
    """Brings a library's catalog and indexes up to date with its roots on disk."""

    def __init__(
        self,
        library: Library,
        encoders: Encoders,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        progress: bool = True,
        save_every_s: float = 60.0,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        stop: threading.Event | None = None,
        settings: SegmentSettings | None = None,
        hold: Callable[[FoundFile], bool] | None = None,
        runner: EncodeRunner | None = None,
        retry_failed: bool = False,
    ) -> None:
        """`on_progress` is called when the files to encode are known and after each
        committed batch or failed file; setting `stop` ends the run between batches the way
        Ctrl-C does (committed work is kept, `summary.interrupted` is True). A file to encode
        for which `hold` is True (one still being written, says the watcher) is left as it is
        for a later run. `runner` decodes and encodes the files elsewhere (a Ray cluster);
        by default that happens here. A file that failed and has not changed since is
        decoded again only with `retry_failed` (or by another Trove version)."""
        self.library = library
        self.catalog = library.catalog
        self.encoders = encoders
        self.batch_size = batch_size
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.progress = progress
        self.save_every_s = save_every_s
        self.on_progress = on_progress
        self.stop = stop
        self.settings = settings or SegmentSettings()
        self.hold = hold
        self.retry_failed = retry_failed
        self.runner = runner
        self.stores: dict[str, VectorStore] = {}
        # Spaces whose model has no weights here this run -> the paragraph saying why.
        self.problems: dict[str, str] = {}
        # False between a catalog commit and the index update that follows it.
        self._in_step = True

    def run(self, roots: Sequence[Root]) -> IndexSummary:
        check_roots(roots, self.library.data_dir, self.catalog)
        # An invalid model choice or missing CLIP weights fail before anything is touched.
        self.encoders.check()
        self.encoders.clip.resolve()
        # A speech model without weights here stops the run before anything is touched, as
        # CLIP's does: its paragraph says how to get them (or to index with --no-speech).
        speech = chosen_speech_model(self.catalog, self.settings)
        memory = DEFAULT_MEMORY_MIB
        if speech is not None:
            path = chosen_speech_path(self.catalog, self.settings, speech)
            model = load_speech_model(speech, path)
            model.resolve()
            memory = model.worker_memory_mib
        started = time.monotonic()
        summary = IndexSummary(self.encoders.name("clip"))
        with (
            self.library.writer(),
            IsolatedDecoder(
                workers=self.workers, timeout_s=NATIVE_TIMEOUT_S, memory_mib=memory
            ) as isolation,
        ):
            previous = {space: self.library.model(space) for space in SPACES}
            self.settings, changes = remember_settings(self.catalog, self.settings)
            if previous["clip"] is None:
                self.catalog.set_meta(meta_key("clip"), self.encoders.name("clip"))
            self._open_stores()
            in_sync_with = self.catalog.generation
            try:
                self._run(roots, isolation, summary, changes)
            except (KeyboardInterrupt, _StopRequested):
                summary.interrupted = True
            finally:
                if self.catalog.generation != in_sync_with and self._in_step:
                    self._save_stores()
                elif not self._in_step:
                    # Interrupted between a commit and its index update: the files on
                    # disk keep their older generation, so the next open rebuilds them.
                    log.warning("The indexes will be rebuilt from the catalog when next used.")
                self._record_new_spaces(previous)
            for key, store in self.stores.items():
                if settled_index(store.index_type, len(store), store.dim).factory != (
                    store.index_type
                ):
                    # The library outgrew its index type: rebuild now, under the writer
                    # lock, rather than make the next search wait for it.
                    self.library.open_store(key, store.dim)
            if summary.indexed and not summary.interrupted:
                self._prepare_bridge()
            summary.seconds = time.monotonic() - started
            for space, old in previous.items():
                new = self.encoders.name(space)
                if old and new and old != new and space not in self.problems:
                    self._finish_model_switch(space, old, summary)
        return summary

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """A catalog change and the index update that follows it. Ctrl-C can land between
        the two (even just after the COMMIT); then the indexes are not saved as if in step."""
        self._in_step = False
        yield
        self._in_step = True

    def _prepare_bridge(self) -> None:
        """Fit the CLIP <-> CLAP bridge now (once per pair of models; cached), when the
        library holds pictures and sounds, so the first sound-to-picture search is quick."""
        keys = set(self.catalog.vector_keys())
        if not {self.encoders.key("image"), self.encoders.key("audio")} <= keys:
            return
        if "clap" in self.problems or self.encoders.unavailable("clap"):
            return
        load_or_fit_bridge(
            self.library.layout.bridges, self.encoders.clip, self.encoders.get("clap")
        )

    def _open_stores(self) -> None:
        """Every index the library has, so that all of them are saved at the run's new
        catalog generation (one left at an older generation would be rebuilt for nothing);
        an index for a new key opens when its first vectors arrive."""
        for key in self.catalog.vector_keys():
            self.stores[key] = self.library.open_store(key, self.catalog.vector_dim(key))

    def _save_stores(self) -> None:
        for key, store in self.stores.items():
            store.save(self.library.index_path(key), self.catalog.generation)

    def _record_new_spaces(self, previous: dict[str, str | None]) -> None:
        """A space's model becomes the library's once the library holds vectors from it."""
        keys = set(self.catalog.vector_keys())
        for space, old in previous.items():
            name = self.encoders.name(space)
            if old is None and space != "clip" and name and keys & set(model_keys(name)):
                self.catalog.set_meta(meta_key(space), name)

    def _unavailable_spaces(self, kinds: set[str]) -> dict[str, str]:
        """Models that files of these kinds need and whose weights are not here. Those files
        wait for a later run (they are not failures), and the summary says how to get the
        weights. (Without CLIP weights the run has stopped before anything was touched.)"""
        needed = {
            ROLE_SPACE[role]
            for kind in kinds
            for role in (*REQUIRED_ROLES[kind], *OPTIONAL_ROLES[kind])
        }
        if self.settings.ocr and "image" in kinds:
            needed.add("text")
        problems = {}
        for space in sorted(needed - {"clip"}):
            problem = self.encoders.unavailable(space)
            if problem:
                problems[space] = problem
        return problems

    def _run(
        self,
        roots: Sequence[Root],
        isolation: IsolatedDecoder,
        summary: IndexSummary,
        changes: Sequence[SettingChange],
    ) -> None:
        primary = {kind: self.encoders.key(role) for kind, role in PRIMARY_ROLE.items()}
        needs_vectors = {i.id for i in self.catalog.items_missing_vectors(primary)}
        if self.encoders.name("sound") and not self.encoders.unavailable("sound"):
            # Sound files indexed before the library chose its sound-similarity model (or
            # under another one) get its vectors: the file is processed again.
            similar = {"audio": self.encoders.key("sound")}
            needs_vectors.update(i.id for i in self.catalog.items_missing_vectors(similar))
        if self.encoders.name("video") and not self.encoders.unavailable("video"):
            # Likewise videos and the library's video-clip model (X-CLIP).
            clips = {"video": self.encoders.key("frames")}
            needs_vectors.update(i.id for i in self.catalog.items_missing_vectors(clips))
        # Files processed before a setting changed what they yield are processed again.
        for kind, since in files_to_redo(self.catalog).items():
            redo = self.catalog.items_processed_before(kind, since)
            needs_vectors.update(redo)
            for change in changes:
                if kind in change.kinds and redo:
                    summary.notes.append(
                        f"{change.description}: {len(redo)} {kind} file(s) processed again."
                    )
        if self.settings.speech and self.settings.speech_model:
            # Never transcribed, or by another speech model: each keeps its old transcript
            # (searchable) until its new one is committed.
            text = None if self.encoders.unavailable("text") else self.encoders.key("sentence")
            hear = self.catalog.items_to_transcribe(
                self.settings.speech_model, text, self.retry_failed
            )
            needs_vectors.update(hear)
        scans = []
        scan_failures: dict[str, list[tuple[str, str]]] = {}
        for root in roots:
            self.catalog.add_root(root)
            on_error = self._walk_error(summary, scan_failures.setdefault(root.path, []))
            scans.append(
                (root.path, walk(root.path, root.include, root.exclude, on_error=on_error))
            )
        plan = plan_changes(self.catalog, scans, needs_vectors, self.retry_failed)
        if plan.failed_unchanged:
            summary.notes.append(
                f"{plan.failed_unchanged} file(s) that failed before are unchanged and were not "
                f"tried again (`status` lists them; `index --retry-failed` tries them)."
            )
        if self.hold is not None:
            plan.encode = [(f, fp) for f, fp in plan.encode if not self.hold(f)]
        for root_path, failures in scan_failures.items():
            self.catalog.replace_scan_failures(root_path, failures)
        self._apply_bookkeeping(plan, summary)
        self.problems = self._unavailable_spaces({found.kind for found, _ in plan.encode})
        skip_roles = frozenset(r for r, s in ROLE_SPACE.items() if s in self.problems)
        segmenter = Segmenter(
            self.encoders, isolation, self.settings, skip_roles, self.catalog.transcript_for
        )
        jobs = []
        for found, fp in plan.encode:
            if any(r in skip_roles for r in REQUIRED_ROLES[found.kind]):
                summary.skipped[found.kind] = summary.skipped.get(found.kind, 0) + 1
            else:
                jobs.append((found, fp))
        for space, problem in self.problems.items():
            summary.notes.append(f"{space.upper()} model unavailable: {problem}")
        self._encode(jobs, segmenter, summary)
        remember_failures_version(self.catalog)

    def _walk_error(
        self, summary: IndexSummary, failures: list[tuple[str, str]]
    ) -> Callable[[str, OSError], None]:
        """Reports a scan failure in the summary and in `failures`, the root's list that the
        catalog keeps for `status`."""

        def on_error(path: str, exc: OSError) -> None:
            failure = (path, f"cannot read: {exc.strerror or exc}")
            summary.failed.append(failure)
            failures.append(failure)

        return on_error

    def _remove_everywhere(self, segment_ids: Sequence[int]) -> None:
        if segment_ids:
            for store in self.stores.values():
                store.remove(segment_ids)

    def _apply_bookkeeping(self, plan: Plan, summary: IndexSummary) -> None:
        for item, f in plan.moved:
            self.catalog.move_item(item.id, f.path, f.size, f.mtime_ns)
        for item, f in plan.touched:
            self.catalog.touch_item(item.id, f.size, f.mtime_ns)
        with self._changing():
            self._remove_everywhere(self.catalog.delete_items([i.id for i in plan.deleted]))
        for f, reason in plan.unreadable:
            self._fail(f, reason, summary)
        summary.unchanged += plan.unchanged
        summary.moved += len(plan.moved)
        summary.touched += len(plan.touched)
        summary.removed += len(plan.deleted)

    def _fail(self, found: FoundFile, reason: str, summary: IndexSummary) -> None:
        with self._changing():
            gone = self.catalog.record_failure(
                found.path, found.kind, found.size, found.mtime_ns, reason
            )
            self._remove_everywhere(gone)
        summary.failed.append((found.path, reason))

    def _encode(
        self,
        jobs: list[tuple[FoundFile, str | None]],
        segmenter: Segmenter,
        summary: IndexSummary,
    ) -> None:
        batch: list[Decoded] = []
        # Per file of the batch, its vectors when a runner encoded it elsewhere.
        encoded: list[list[dict[str, np.ndarray]] | None] = []
        segments_in_batch = 0
        last_save = time.monotonic()
        done, total = 0, len(jobs)
        self._report(ProgressEvent(done, total))
        bar = tqdm(total=len(jobs), unit="file", desc="Indexing", disable=not self.progress)
        with bar:
            if self.runner is None:
                decoded = decode_ahead(
                    lambda job: decode_job(segmenter, job),
                    jobs,
                    self.workers,
                    ahead=2 * self.batch_size,
                )
                results: Iterator[FileResult] = (
                    (found, result, None) for (found, _), result in decoded
                )
            else:
                results = self.runner.encode(jobs, segmenter, self.batch_size)
            for found, result, vectors in results:
                if not batch and self.stop is not None and self.stop.is_set():
                    raise _StopRequested
                if isinstance(result, Exception):
                    reason = _reason(result)
                    self._fail(found, reason, summary)
                    bar.update(1)
                    done += 1
                    self._report(ProgressEvent(done, total, found.path, reason))
                    continue
                batch.append(result)
                encoded.append(vectors)
                segments_in_batch += len(result.segments)
                # A long recording or video fills a batch by itself: commit by segments
                # too, so memory and the work lost to a crash stay bounded.
                if len(batch) >= self.batch_size or segments_in_batch >= 8 * self.batch_size:
                    self._commit(batch, summary, encoded)
                    bar.update(len(batch))
                    done += len(batch)
                    self._report(ProgressEvent(done, total, batch[-1].found.path))
                    batch, encoded, segments_in_batch = [], [], 0
                if time.monotonic() - last_save > self.save_every_s:
                    self._save_stores()
                    last_save = time.monotonic()
            if batch:
                self._commit(batch, summary, encoded)
                bar.update(len(batch))
                done += len(batch)
                self._report(ProgressEvent(done, total, batch[-1].found.path))

    def _report(self, event: ProgressEvent) -> None:
        delay_point("index.progress")
        if self.on_progress is not None:
            self.on_progress(event)

    def _commit(
        self,
        batch: list[Decoded],
        summary: IndexSummary,
        encoded: Sequence[list[dict[str, np.ndarray]] | None] = (),
    ) -> None:
        """Encode the batch (unless a runner did: `encoded` holds each file's vectors per
        segment) and commit it in one catalog transaction."""
        if encoded and all(e is not None for e in encoded):
            vectors = {(i, j): v for i, e in enumerate(encoded) for j, v in enumerate(e)}
        else:
            vectors = encode_segments(self.encoders, batch, self.batch_size)
        encoded = [
            EncodedItem(
                path=d.found.path,
                kind=d.found.kind,
                size=d.found.size,
                mtime_ns=d.found.mtime_ns,
                fingerprint=d.fingerprint,
                segments=[
                    EncodedSegment(p.start_s, p.end_s, p.text, vectors[(i, j)])
                    for j, p in enumerate(d.segments)
                ],
                width=d.width,
                height=d.height,
                duration_s=d.duration_s,
                taken_at=d.taken_at,
                info=d.info,
                transcript=d.transcript,
            )
            for i, d in enumerate(batch)
        ]
        with self._changing():
            self._follow(self.catalog.save_encoded(encoded))
        summary.indexed += len(batch)
        for d in batch:
            if d.transcribed and d.transcript is not None:
                summary.transcribed += 1
                summary.transcribed_s += d.transcript.seconds
                summary.with_speech += bool(d.transcript.lines)

    def _follow(self, saved: Saved) -> None:
        """Bring the indexes in line with what the catalog just committed."""
        self._remove_everywhere(saved.deleted)
        for key, (ids, vectors) in saved.added.items():
            store = self.stores.get(key)
            if store is None:
                # A key with no vectors when the run began: its index starts empty here and
                # follows every commit (loading it now would count this batch twice).
                store = self.stores[key] = VectorStore(key, vectors[0].shape[0])
            store.remove(saved.replaced.get(key, []))
            store.add(np.asarray(ids), np.stack(vectors))

    def _finish_model_switch(self, space: str, previous: str, summary: IndexSummary) -> None:
        new = self.encoders.name(space)
        kinds = {
            kind: self.encoders.key(role)
            for kind, role in PRIMARY_ROLE.items()
            if ROLE_SPACE[role] == space
        }
        if summary.interrupted or self.catalog.items_missing_vectors(kinds):
            log.warning(
                "The library still searches with %s until every file has a %s vector; "
                "run the same index command again to finish.",
                previous,
                new,
            )
            return
        self.catalog.set_meta(meta_key(space), new)
        # A library an older Trove let record one space's model as another's (the CLIP
        # model as its sound model): those vectors belong to the other space and stay.
        others = self._keys_of_other_spaces(space)
        old_keys = [
            k for k in self.catalog.vector_keys() if k in model_keys(previous) and k not in others
        ]
        self.catalog.drop_vectors(old_keys)
        for key in old_keys:
            self.stores.pop(key, None)
            self.library.index_path(key).unlink(missing_ok=True)

    def _keys_of_other_spaces(self, space: str) -> set[str]:
        """The vector keys this run's models of the spaces other than `space` store under."""
        return {
            key
            for other in SPACES
            if other != space and self.encoders.name(other)
            for key in model_keys(self.encoders.name(other))
        }


def _reason(exc: Exception) -> str:
    if isinstance(exc, BadFileError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    # Decoders raise all sorts of types on odd files; record them rather than stop the run.
    return f"could not decode ({type(exc).__name__}: {exc})"
