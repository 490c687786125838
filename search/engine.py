"""SearchEngine: query -> one vector -> the library's index -> results grouped by file."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from indexers.image import load_image
from search.errors import BadFileError, QueryError
from search.library import Library
from search.models import ClipEncoder
from search.query import Query, parse_query
from search.store import VectorStore

# Segments fetched per wanted result, so that files with many matching segments (video
# frames, audio windows) still leave k distinct files after grouping.
OVERFETCH = 4


@dataclass(frozen=True)
class SearchResult:
    path: str
    kind: str
    score: float
    start: float | None = None
    end: float | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.start is None:
            del out["start"], out["end"]
        return out


class SearchEngine:
    """Answers queries over one library with the model the library was built with."""

    def __init__(
        self, library: Library, model: str | None = None, model_path: str | None = None
    ) -> None:
        self.library = library
        self.encoder: ClipEncoder = library.search_encoder(model, model_path)
        self._store: VectorStore | None = None

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            self._store = self.library.open_store(self.encoder)
        return self._store

    def search(
        self, query: str | Query, k: int = 10, images: tuple[str, ...] = ()
    ) -> list[SearchResult]:
        parsed = query if isinstance(query, Query) else parse_query(query, images)
        if len(self.store) == 0:
            return []
        scores, ids = self.store.search(self.query_vector(parsed), k * OVERFETCH)
        found = self.library.catalog.resolve_segments(ids.tolist())
        results: dict[int, SearchResult] = {}
        for score, seg_id in zip(scores.tolist(), ids.tolist(), strict=True):
            if seg_id not in found:  # removed since the index was loaded
                continue
            item, segment = found[seg_id]
            if item.id not in results:
                results[item.id] = SearchResult(
                    item.path, item.kind, round(score, 6), segment.start_s, segment.end_s
                )
        return list(results.values())[:k]

    def query_vector(self, query: Query) -> np.ndarray:
        """Weighted sum of each term's normalised embedding, normalised again."""
        texts = [t for t in query.terms if t.kind == "text"]
        images = [t for t in query.terms if t.kind == "image"]
        parts, weights = [], []
        if texts:
            parts.append(self.encoder.encode_texts([t.value for t in texts]))
            weights += [t.weight for t in texts]
        if images:
            parts.append(self.encoder.encode_images([_query_image(t.value) for t in images]))
            weights += [t.weight for t in images]
        vector = (np.asarray(weights, dtype=np.float32)[:, None] * np.concatenate(parts)).sum(0)
        norm = float(np.linalg.norm(vector))
        if norm < 1e-6:
            raise QueryError("The query's terms cancel each other out; change a weight or term.")
        return vector / norm


def _query_image(path: str):
    try:
        return load_image(path)[0]
    except BadFileError as exc:
        raise QueryError(f"Cannot use {path} as a query image: {exc}") from None
    except OSError as exc:
        raise QueryError(f"Cannot read the query image {path}: {exc.strerror or exc}") from None
