"""SearchEngine: query -> one vector -> the library's index -> results grouped by file.

Filters (search/filters.py) apply to files after grouping.
The index is asked for more segments than wanted and, when too few files pass the filters,
asked again for four times as many, until enough pass or the index has nothing more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from indexers.image import load_image
from search.errors import BadFileError, QueryError
from search.filters import SearchFilters
from search.library import Library
from search.models import ClipEncoder
from search.query import Query, parse_query
from search.store import VectorStore

# Segments fetched per wanted result, so that files with many matching segments (video
# frames, audio windows) still leave k distinct files after grouping.
OVERFETCH = 4
# Each widening fetch asks the index for this many times the segments of the last one.
WIDEN = 4
# Sorting by date orders the best this-many matches (at least offset + k) newest first: a
# date order over the whole library would ignore the query.
DATE_SORT_POOL = 200


@dataclass(frozen=True)
class SearchResult:
    path: str
    kind: str
    score: float
    start: float | None = None
    end: float | None = None
    # The file's modification time (epoch seconds); in JSON as local ISO 8601.
    modified: float | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.start is None:
            del out["start"], out["end"]
        if self.modified is None:
            del out["modified"]
        else:
            out["modified"] = datetime.fromtimestamp(self.modified).isoformat(timespec="seconds")
        return out


class SearchEngine:
    """Answers queries over one library with the model the library was built with."""

    def __init__(
        self,
        library: Library,
        model: str | None = None,
        model_path: str | None = None,
        *,
        save_rebuilt_index: bool = True,
    ) -> None:
        """`save_rebuilt_index=False` keeps an index rebuilt from the catalog in memory only:
        for a process whose own indexer thread may be writing the same index file."""
        self.library = library
        self.encoder: ClipEncoder = library.search_encoder(model, model_path)
        self.save_rebuilt_index = save_rebuilt_index
        self._store: VectorStore | None = None

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            self._store = self.library.open_store(self.encoder, self.save_rebuilt_index)
        return self._store

    def search(
        self,
        query: str | Query,
        k: int = 10,
        images: tuple[str, ...] = (),
        *,
        filters: SearchFilters | None = None,
        offset: int = 0,
    ) -> list[SearchResult]:
        """The files best matching `query`, grouped by file (best segment first).

        Results `offset` to `offset + k` of those passing `filters`, in the filters' order:
        asking again with `offset` += k gives the next page.
        """
        parsed = query if isinstance(query, Query) else parse_query(query, images)
        filters = filters or SearchFilters()
        if offset < 0:
            raise QueryError(f"The offset {offset} is negative.")
        if k <= 0 or len(self.store) == 0:
            return []
        wanted = offset + k
        if filters.sort == "date":
            wanted = max(wanted, DATE_SORT_POOL)
        matches = self._matches(self.query_vector(parsed), wanted, filters)
        if filters.sort == "date":
            matches.sort(key=lambda r: (-(r.modified or 0.0), -r.score))
        return matches[offset : offset + k]

    def _matches(
        self, vector: np.ndarray, wanted: int, filters: SearchFilters
    ) -> list[SearchResult]:
        """The best `wanted` files passing `filters`, fetching wider until enough pass."""
        fetch = wanted * OVERFETCH
        while True:
            scores, ids = self.store.search(vector, fetch)
            results = self._group(scores, ids, filters)
            # Hits come best first: once they fall below the minimum score, wider cannot help.
            below_min = filters.min_score is not None and bool(
                len(scores) and scores[-1] < filters.min_score
            )
            exhausted = len(ids) < fetch or fetch >= len(self.store)
            if len(results) >= wanted or exhausted or below_min:
                return results[:wanted]
            fetch = min(fetch * WIDEN, len(self.store))

    def _group(
        self, scores: np.ndarray, ids: np.ndarray, filters: SearchFilters
    ) -> list[SearchResult]:
        found = self.library.catalog.resolve_segments(ids.tolist())
        results: dict[int, SearchResult | None] = {}
        for score, seg_id in zip(scores.tolist(), ids.tolist(), strict=True):
            if seg_id not in found:  # removed since the index was loaded
                continue
            item, segment = found[seg_id]
            if item.id in results:
                continue
            # A file's best segment decides whether it passes; a rejected file stays
            # rejected (as None) so a weaker segment of it cannot sneak in later.
            results[item.id] = (
                SearchResult(
                    item.path,
                    item.kind,
                    round(score, 6),
                    segment.start_s,
                    segment.end_s,
                    modified=item.mtime_ns / 1e9,
                )
                if filters.accepts(item, score)
                else None
            )
        return [r for r in results.values() if r is not None]

    def query_vector(self, query: Query) -> np.ndarray:
        """Weighted sum of each term's normalised embedding, normalised again."""
        texts = [t for t in query.terms if t.kind == "text"]
        images = [t for t in query.terms if t.kind == "image"]
        parts, weights = [], []
        if texts:
            parts.append(self.encoder.encode_texts([t.value for t in texts]))
            weights += [t.weight for t in texts]
        if images:
            size = self.encoder.spec.image_size
            parts.append(self.encoder.encode_images([_query_image(t.value, size) for t in images]))
            weights += [t.weight for t in images]
        vector = (np.asarray(weights, dtype=np.float32)[:, None] * np.concatenate(parts)).sum(0)
        norm = float(np.linalg.norm(vector))
        if norm < 1e-6:
            raise QueryError("The query's terms cancel each other out; change a weight or term.")
        return vector / norm


def _query_image(path: str, min_side: int):
    """Decoded as the indexer decodes (JPEG draft mode included), so a library photo used
    as a query finds itself at score 1."""
    try:
        return load_image(path, min_side=min_side)[0]
    except BadFileError as exc:
        raise QueryError(f"Cannot use {path} as a query image: {exc}") from None
    except OSError as exc:
        raise QueryError(f"Cannot read the query image {path}: {exc.strerror or exc}") from None
