"""Search filters: which results a search keeps (kind, folder, dates, minimum score), and
their order."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from search.decode.kinds import KIND_BY_EXTENSION
from search.errors import QueryError
from search.storage.catalog import Item

# A score is shown, written to --json and compared with --min-score at this precision: one
# number everywhere, so a user who types a score shown on screen as the minimum keeps that
# very result.
SCORE_DECIMALS = 4

# Kinds a search can return today, and the orders results can come in.
KINDS: tuple[str, ...] = tuple(sorted(set(KIND_BY_EXTENSION.values())))
SORTS: tuple[str, ...] = ("relevance", "date")


@dataclass(frozen=True)
class SearchFilters:
    """Which results a search keeps, and their order.

    kinds: only these kinds (empty: every kind). folder: only files inside this folder.
    modified_after / modified_before: the file's date in epoch seconds (when a photo was
    taken, from its EXIF, else when the file was last modified), the first inclusive, the
    second exclusive (`parse_date` turns "2024-06-30" into either). min_duration /
    max_duration: seconds of sound or video (files without a duration fail such a filter).
    min_score: only results scoring at least this (cosine, -1..1). sort: "relevance" (best
    first) or "date" (newest first among the best max(DATE_SORT_POOL, offset + k) matches).
    """

    kinds: tuple[str, ...] = ()
    folder: str | None = None
    modified_after: float | None = None
    modified_before: float | None = None
    min_score: float | None = None
    sort: str = "relevance"
    min_duration: float | None = None
    max_duration: float | None = None

    def __post_init__(self) -> None:
        kinds = tuple(dict.fromkeys(self.kinds))
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise QueryError(
                f"Unknown kind {', '.join(map(repr, unknown))}: Trove searches {', '.join(KINDS)}."
            )
        object.__setattr__(self, "kinds", kinds)
        if self.folder is not None:
            folder = self.folder.strip()
            object.__setattr__(
                self, "folder", os.path.abspath(os.path.expanduser(folder)) if folder else None
            )
        if self.sort not in SORTS:
            raise QueryError(f"Unknown sort {self.sort!r}: use one of {', '.join(SORTS)}.")
        if self.min_score is not None and not -1.0 <= self.min_score <= 1.0:
            raise QueryError(
                f"The minimum score {self.min_score} is outside -1..1 (scores are cosines)."
            )
        after, before = self.modified_after, self.modified_before
        if after is not None and before is not None and after >= before:
            raise QueryError("The date range is empty: its start is not before its end.")
        shortest, longest = self.min_duration, self.max_duration
        if (shortest is not None and shortest < 0) or (longest is not None and longest < 0):
            raise QueryError("A duration cannot be negative.")
        if shortest is not None and longest is not None and shortest > longest:
            raise QueryError("The duration range is empty: its minimum is above its maximum.")

    @classmethod
    def from_options(
        cls,
        kinds: Iterable[str] | None = None,
        folder: str | None = None,
        after: str | None = None,
        before: str | None = None,
        min_score: float | None = None,
        sort: str | None = "relevance",
        min_duration: float | None = None,
        max_duration: float | None = None,
    ) -> SearchFilters:
        """Filters from what a user gave (the CLI's options, the API's arguments, the search
        form), read once: a missing or blank folder or date is no filter; dates are
        YYYY-MM-DD (optionally with a time), `after` from its start and `before` to its end
        (see `parse_date`); no sort is "relevance". Raises QueryError saying what is wrong."""
        return cls(
            kinds=tuple(kinds or ()),
            folder=folder,
            modified_after=parse_date(after) if after and after.strip() else None,
            modified_before=(
                parse_date(before, end_of_day=True) if before and before.strip() else None
            ),
            min_score=None if min_score is None else float(min_score),
            sort=sort or "relevance",
            min_duration=None if min_duration is None else float(min_duration),
            max_duration=None if max_duration is None else float(max_duration),
        )

    @property
    def active(self) -> bool:
        """True when some filter (not the sort) can drop results."""
        return bool(
            self.kinds
            or self.folder
            or self.modified_after is not None
            or self.modified_before is not None
            or self.min_score is not None
            or self.min_duration is not None
            or self.max_duration is not None
        )

    def accepts(self, item: Item, score: float) -> bool:
        if self.kinds and item.kind not in self.kinds:
            return False
        if self.min_score is not None and score < self.min_score:
            return False
        if self.folder and not _inside(item.path, self.folder):
            return False
        when = item_date(item)
        if self.modified_after is not None and when < self.modified_after:
            return False
        if self.modified_before is not None and when >= self.modified_before:
            return False
        if self.min_duration is None and self.max_duration is None:
            return True
        duration = item.duration_s
        if duration is None:
            return False
        if self.min_duration is not None and duration < self.min_duration:
            return False
        return self.max_duration is None or duration <= self.max_duration


def shown_score(score: float) -> float:
    """A result's score as every caller sees it: rounded to SCORE_DECIMALS."""
    return round(score, SCORE_DECIMALS)


def format_score(score: float) -> str:
    """A shown score as text, with every one of its SCORE_DECIMALS digits."""
    return f"{score:.{SCORE_DECIMALS}f}"


def item_date(item: Item) -> float:
    """When a photo was taken (EXIF), else when the file was last modified: epoch seconds."""
    return item.taken_at if item.taken_at is not None else item.mtime_ns / 1e9


def parse_date(text: str, end_of_day: bool = False) -> float:
    """Epoch seconds for "YYYY-MM-DD" (local midnight; with `end_of_day`, the next midnight,
    so that a range "before" a day includes that day) or "YYYY-MM-DD HH:MM[:SS]"."""
    value = text.strip()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(
            f"Cannot read the date {text!r}: write it as YYYY-MM-DD (e.g. 2024-06-30), "
            f"optionally with a time (2024-06-30 18:00)."
        ) from None
    if end_of_day and re.fullmatch(r"\d{4}-?\d{2}-?\d{2}", value):
        when += timedelta(days=1)
    return when.timestamp()


def _inside(path: str, folder: str) -> bool:
    if path.startswith(folder.rstrip("/") + "/"):
        return True
    # The folder may be given through a symlink, or be a symlink's target.
    real = os.path.realpath(folder)
    return real != folder and path.startswith(real.rstrip("/") + "/")
