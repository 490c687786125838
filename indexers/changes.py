"""Comparing what is on disk with the catalog: what to encode, move, touch or remove.

Unchanged files are recognised by size and mtime without reading them. A file whose size
or mtime changed, or a new path, gets a content fingerprint, so a touched file or a
moved/renamed one keeps its vectors instead of being encoded again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from search import __version__
from search.decode.kinds import FoundFile
from search.storage.catalog import Catalog, Item

FINGERPRINT_CHUNK = 64 * 1024
# Catalog meta: the Trove version whose runs recorded the library's failed files.
FAILED_WITH_META = "failed_with_version"
# A failure of this kind never reached a decoder (a permission, a vanished file): trying it
# again costs an open(), and fixing a permission does not change the file's mtime.
CANNOT_READ = "cannot read:"


def fingerprint(path: str, size: int) -> str:
    """Size plus a hash of the first and last 64 KiB: cheap even for large videos, and
    photos, whose headers and tails differ, practically never collide."""
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        digest.update(f.read(FINGERPRINT_CHUNK))
        if size > 2 * FINGERPRINT_CHUNK:
            f.seek(-FINGERPRINT_CHUNK, os.SEEK_END)
        digest.update(f.read(FINGERPRINT_CHUNK))
    return digest.hexdigest()


@dataclass
class Plan:
    encode: list[tuple[FoundFile, str | None]] = field(default_factory=list)
    moved: list[tuple[Item, FoundFile]] = field(default_factory=list)
    touched: list[tuple[Item, FoundFile]] = field(default_factory=list)
    deleted: list[Item] = field(default_factory=list)
    unchanged: int = 0
    unreadable: list[tuple[FoundFile, str]] = field(default_factory=list)
    # Files that failed before and have not changed since: not decoded again.
    failed_unchanged: int = 0


def plan_changes(
    catalog: Catalog,
    scans: Iterable[tuple[str, Iterable[FoundFile]]],
    needs_vectors: set[int],
    retry_failed: bool = False,
) -> Plan:
    """Diff the files found under each root against the catalog's items under those roots.

    All roots are diffed together, so a file moved from one root to another is a move.
    `needs_vectors` holds ids of items that lack vectors from the current model (after a
    model change): they are encoded again even when the file itself is unchanged. A file
    that failed is tried again when it changed, when it could not be opened, when another
    Trove version recorded the failure, or with `retry_failed`; else it is left failed.
    """
    plan = Plan()
    retry_failed = retry_failed or catalog.get_meta(FAILED_WITH_META) != __version__
    known: dict[str, Item] = {}
    found: list[FoundFile] = []
    for root, files in scans:
        known.update(catalog.items_under(root))
        found += files
    new_files: list[FoundFile] = []
    for f in found:
        item = known.pop(f.path, None)
        if item is None:
            new_files.append(f)
        elif item.error is not None:
            unchanged = (item.size, item.mtime_ns) == (f.size, f.mtime_ns)
            if unchanged and not retry_failed and not item.error.startswith(CANNOT_READ):
                plan.failed_unchanged += 1
            else:
                plan.encode.append((f, None))
        elif (item.size, item.mtime_ns) == (f.size, f.mtime_ns):
            if item.id in needs_vectors:
                plan.encode.append((f, item.fingerprint))
            else:
                plan.unchanged += 1
        else:
            fp = _fingerprint_or_report(f, plan)
            if fp is None:
                continue
            if fp == item.fingerprint and item.id not in needs_vectors:
                plan.touched.append((item, f))
            else:
                plan.encode.append((f, fp))

    # Whatever the catalog knows under this root and was not found is gone, or moved.
    gone_by_fp: dict[str, list[Item]] = {}
    for item in known.values():
        if item.fingerprint:
            gone_by_fp.setdefault(item.fingerprint, []).append(item)
    claimed: set[int] = set()
    for f in new_files:
        fp = _fingerprint_or_report(f, plan)
        if fp is None:
            continue
        candidates = [
            i
            for i in gone_by_fp.get(fp) or catalog.items_by_fingerprint(fp)
            if i.id not in claimed and not os.path.exists(i.path)
        ]
        if candidates:
            item = candidates[0]
            claimed.add(item.id)
            known.pop(item.path, None)
            if item.id in needs_vectors:
                plan.deleted.append(item)
                plan.encode.append((f, fp))
            else:
                plan.moved.append((item, f))
        else:
            plan.encode.append((f, fp))
    plan.deleted += known.values()
    return plan


def remember_failures_version(catalog: Catalog) -> None:
    """After a complete run: the library's failed files were all tried by this version.
    Written only when there are failures and the version differs (no commit otherwise)."""
    if catalog.get_meta(FAILED_WITH_META) != __version__ and catalog.failures():
        catalog.set_meta(FAILED_WITH_META, __version__)


def _fingerprint_or_report(f: FoundFile, plan: Plan) -> str | None:
    try:
        return fingerprint(f.path, f.size)
    except OSError as exc:
        plan.unreadable.append((f, f"cannot read: {exc.strerror or exc}"))
        return None
