"""SearchEngine: a query's vectors (search/query_vectors.py) -> each index's hits -> scores
made comparable -> fused with the full-text index -> results grouped by file, best moment.

Raw cosines of different spaces are not comparable (CLAP's run higher than CLIP's), so each
list is standardised against the query's similarities to a fixed sample of the same index
(search/vectors.py) and put on the scale of the first list (the visual one when it is there):
a library of photos alone keeps its plain cosines. Filters apply to files after grouping.
The indexes are asked for more segments than wanted and asked again, four times wider,
while too few files pass the filters. `alpha` weighs meaning against words
(search/fusion.py); 1 and 0 rank by one of them alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from search.decode.isolation import IsolatedDecoder
from search.errors import BadFileError, QueryError
from search.evidence import counting_roles, searched_roles
from search.filters import KINDS, SCORE_DECIMALS, SearchFilters, item_date, shown_score
from search.fusion import BLEND_ALPHA, fuse_on_semantic_scale
from search.library import Library
from search.models.encoders import ROLE_SPACE, Encoders
from search.moments import merge_moments
from search.query import Query, parse_query
from search.query_vectors import IndexQuery, QueryEncoder
from search.segments import NATIVE_TIMEOUT_S
from search.storage.catalog import Item, Segment
from search.storage.lexical import search_lexical, snippet, term_coverage
from search.storage.store import VectorStore
from search.thumbnails import Thumbnails
from search.vectors import standardize

# Segments fetched per wanted result, so that files with many matching segments (video
# frames, audio windows) still leave k distinct files after grouping.
OVERFETCH = 4
# Each widening fetch asks the index for this many times the segments of the last one.
WIDEN = 4
# Sorting by date orders the best this-many matches (at least offset + k) newest first: a
# date order over the whole library would ignore the query.
DATE_SORT_POOL = 200
# Vectors per index whose similarities to the query stand for "the library at large".
BACKGROUND_SAMPLE = 1024
# Timed hits of one file scoring within this much of its best hit (cosine units of the
# calibrated scale), and at most this far apart, merge into one moment.
MOMENT_TOLERANCE_SCORE = 0.02
MOMENT_GAP_S = 1.0
SNIPPET_CHARS = 200
# The highest score another space's hit can get: one shown step below an exact match.
OTHER_SPACE_CAP = 1.0 - 10.0**-SCORE_DECIMALS


@dataclass(frozen=True)
class SearchResult:
    path: str
    kind: str
    score: float
    start: float | None = None
    end: float | None = None
    # The file's date (EXIF capture time, else modification time; epoch seconds); in JSON
    # as local ISO 8601.
    modified: float | None = field(default=None, compare=False)
    # Documents: the best-matching passage. Videos: a still of the best moment.
    snippet: str | None = field(default=None, compare=False)
    thumbnail: str | None = field(default=None, compare=False)
    # Why the file matched, strongest first: "spoken words", "sound", "picture",
    # "document text", "text in the picture", "file name".
    matched: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["matched"] = list(self.matched)
        for name in ("snippet", "thumbnail"):
            if out[name] is None:
                del out[name]
        if self.start is None:
            del out["start"], out["end"]
        if self.modified is None:
            del out["modified"]
        else:
            out["modified"] = datetime.fromtimestamp(self.modified).isoformat(timespec="seconds")
        return out


@dataclass(frozen=True)
class _Scale:
    """The reference index of a query and its background similarities' mean and spread."""

    key: str
    mean: float
    std: float


@dataclass(frozen=True)
class _Evidence:
    """Which result kinds each index's hits count for, and the words' (search/evidence.py)."""

    kinds_by_key: dict[str, frozenset[str]]
    word_kinds: frozenset[str]

    def counts(self, key: str, kind: str) -> bool:
        return kind in self.kinds_by_key.get(key, ())


@dataclass
class _Hits:
    """One index's answer: segment ids with calibrated scores, best first."""

    ids: np.ndarray
    scores: np.ndarray
    exhausted: bool


class SearchEngine:
    """Answers queries over one library with the models the library was built with."""

    def __init__(
        self,
        library: Library,
        model: str | None = None,
        model_path: str | None = None,
        *,
        save_rebuilt_index: bool = True,
        alpha: float = BLEND_ALPHA,
        decoder: IsolatedDecoder | None = None,
    ) -> None:
        """`save_rebuilt_index=False` keeps an index rebuilt from the catalog in memory only:
        for a process whose own indexer thread may be writing the same index file.

        `decoder`: the worker processes that decode query files and make video stills (a
        server shares one between its engines); without one the engine starts its own on
        the first query file, and `close()` stops it.

        `alpha` (0 to 1) weighs meaning against words in the ranking, as in
        `fuse_on_semantic_scale`. 1: meaning alone, the full-text index is not asked. 0:
        words alone, the files the full-text index matches ranked by BM25 relative to the
        best match (the score, in [0, 1]); the vector indexes are not asked. The default
        was measured against the others by bench/fusion.py."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1] (0 words only, 1 meaning only): {alpha}")
        self.alpha = alpha
        self.library = library
        clip = library.search_encoder(model, model_path)
        self.encoders = Encoders(
            clip,
            library.model("clap"),
            library.model("text"),
            sound=library.model("sound"),
            video=library.model("video"),
            clap_path=library.weights_path("clap"),
            sound_path=library.weights_path("sound"),
            video_path=library.weights_path("video"),
        )
        self.save_rebuilt_index = save_rebuilt_index
        self._own_decoder = decoder is None
        self.decoder = decoder or IsolatedDecoder(workers=1, timeout_s=NATIVE_TIMEOUT_S)
        self.queries = QueryEncoder(library, self.encoders, self.decoder)
        self.thumbnails = Thumbnails(library.layout.thumbnails, self.decoder)
        self._stores: dict[str, VectorStore] = {}
        self._backgrounds: dict[str, np.ndarray] = {}

    def close(self) -> None:
        if self._own_decoder:
            self.decoder.close()

    def __enter__(self) -> SearchEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def encoder(self):
        """The CLIP encoder (photos and video frames)."""
        return self.encoders.clip

    @property
    def store(self) -> VectorStore:
        """The photo and video-frame index."""
        return self._store(self.encoders.key("image"))

    def _store(self, key: str) -> VectorStore:
        if key not in self._stores:
            dim = self.library.catalog.vector_dim(key)
            self._stores[key] = self.library.open_store(key, dim, self.save_rebuilt_index)
        return self._stores[key]

    def search(
        self,
        query: str | Query,
        k: int = 10,
        images: tuple[str, ...] = (),
        *,
        sounds: tuple[str, ...] = (),
        videos: tuple[str, ...] = (),
        filters: SearchFilters | None = None,
        offset: int = 0,
    ) -> list[SearchResult]:
        """The files best matching `query`, grouped by file (best segment first).

        Results `offset` to `offset + k` of those passing `filters`, in the filters' order:
        asking again with `offset` += k gives the next page.
        """
        parsed = query if isinstance(query, Query) else parse_query(query, images, sounds, videos)
        filters = filters or SearchFilters()
        if offset < 0:
            raise QueryError(f"The offset {offset} is negative.")
        if k <= 0:
            return []
        query_kinds = {t.kind for t in parsed.terms}
        searched = searched_roles(query_kinds)
        reached = self.queries.index_queries(parsed)
        roles = {s.key: self._role(s.key) for s in reached}
        # The table decides what is searched: an index that counts for no result kind of
        # this query is not asked.
        searches = [s for s in reached if roles[s.key] in searched]
        words = _words(parsed)
        if not searches and not words:
            return []
        evidence = _Evidence(
            {key: _result_kinds(query_kinds, role) for key, role in roles.items()},
            _result_kinds(query_kinds, "words"),
        )
        wanted = offset + k
        if filters.sort == "date":
            wanted = max(wanted, DATE_SORT_POOL)
        matches = self._matches(searches, words, wanted, filters, evidence)
        if filters.sort == "date":
            matches.sort(key=lambda m: (-item_date(m[0].item), -m[1]))
        # Only the page asked for is dressed up (moments, snippets, video stills).
        return [file.result(self._still, score, words) for file, score in matches[offset:][:k]]

    def _still(self, item: Item, at_s: float) -> str | None:
        """A cached still of a video at `at_s`, beside the catalog (None if undecodable)."""
        try:
            return str(self.thumbnails.get(item.path, at_s=at_s))
        except (BadFileError, OSError):
            return None

    def _role(self, key: str) -> str:
        """The role whose vectors fill the index `key` (its row in the evidence table)."""
        for role, space in ROLE_SPACE.items():
            if self.encoders.name(space) and self.encoders.key(role) == key:
                return role
        raise ValueError(f"No role of this library's models stores its vectors under {key!r}")

    def _lexical(self, words: str, limit: int) -> tuple[list, dict[int, float]]:
        """Full-text matches (search/storage/lexical.py) of the query's words, best first, and
        the share of the query each matched file holds (none when ranking by meaning alone)."""
        if not words or self.alpha >= 1:
            return [], {}
        with self.library.catalog.reading() as db:
            hits = search_lexical(db, words, limit)
            return hits, term_coverage(db, words, (hit.item_id for hit in hits))

    # -- from hits to files -------------------------------------------------------------------

    def _matches(
        self, searches, words: str, wanted: int, filters: SearchFilters, evidence: _Evidence
    ):
        """The best `wanted` files passing `filters`, fetching wider until enough pass."""
        fetch = wanted * OVERFETCH
        scale = self._scale(searches[0]) if searches else _Scale("", 0.0, 0.0)
        while True:
            hits = [self._hits(search, fetch, scale) for search in searches]
            lexical_hits, coverage = self._lexical(words, fetch)
            results = self._group(
                hits, (lexical_hits, coverage), searches, scale, filters, evidence
            )
            exhausted = all(h.exhausted for h in hits) and len(lexical_hits) < fetch
            below_min = filters.min_score is not None and all(
                not len(h.scores) or shown_score(h.scores[-1]) < filters.min_score for h in hits
            )
            if len(results) >= wanted or exhausted or below_min:
                return results[:wanted]
            fetch *= WIDEN

    def _scale(self, search: IndexQuery) -> _Scale:
        """The first index's background similarities to the query: every other list's
        standardised scores are put on that scale (the first list keeps its cosines)."""
        background = self._background(search.key) @ search.vector
        std = float(background.std()) if background.size > 1 else 0.0
        return _Scale(search.key, float(background.mean()) if background.size else 0.0, std)

    def _calibrated(self, search: IndexQuery, scores: np.ndarray, scale: _Scale) -> np.ndarray:
        """Scores on the reference scale: standardised against this index's background,
        shrunk by the trust in a bridged query (how well the bridge maps held-out captions)."""
        if search.key == scale.key or scale.std <= 1e-6:
            return scores
        z = standardize(scores, self._background(search.key) @ search.vector)
        # An outlier of a narrow space (image-to-text similarities crowd together) can land
        # past any cosine; it stays below an exact match of the first list, by the smallest
        # step a shown score tells apart, so the query's own file is never outranked or tied.
        return np.minimum(scale.mean + scale.std * search.trust * z, OTHER_SPACE_CAP)

    def _hits(self, search: IndexQuery, fetch: int, scale: _Scale) -> _Hits:
        if self.alpha <= 0:  # words alone: the files come from the full-text index
            return _Hits(np.zeros(0, np.int64), np.zeros(0, np.float32), exhausted=True)
        store = self._store(search.key)
        scores, ids = store.search(search.vector, min(fetch, len(store)))
        exhausted = len(ids) < fetch or fetch >= len(store)
        return _Hits(ids, self._calibrated(search, scores, scale), exhausted)

    def _background(self, key: str) -> np.ndarray:
        if key not in self._backgrounds:
            self._backgrounds[key] = self.library.catalog.sample_vectors(key, BACKGROUND_SAMPLE)
        return self._backgrounds[key]

    def _group(self, hits, lexical, searches, scale, filters: SearchFilters, evidence):
        """(file, score) from the hits, best first: each file's best segment across the
        indexes that are evidence for its kind decides its semantic score; full-text matches
        are fused in (search/fusion.py) for the kinds words are evidence for."""
        lexical_hits, coverage = lexical
        catalog = self.library.catalog
        segment_ids = [int(i) for h in hits for i in h.ids.tolist()]
        segment_ids += [seg for _, seg, _ in lexical_hits if seg is not None]
        found = catalog.resolve_segments(segment_ids)
        files: dict[int, _File] = {}
        for search, h in zip(searches, hits, strict=True):
            for score, seg_id in zip(h.scores.tolist(), h.ids.tolist(), strict=True):
                if seg_id in found:  # else removed since the index was loaded
                    item, segment = found[seg_id]
                    if evidence.counts(search.key, item.kind):
                        why = self._why(search.key, item, segment)
                        files.setdefault(item.id, _File(item)).add(segment, score, why)
        lexical_scores: dict[int, float] = {}
        for item_id, seg_id, score in lexical_hits:
            lexical_scores.setdefault(item_id, score)
            if seg_id is not None and seg_id in found:
                item, segment = found[seg_id]
                files.setdefault(item.id, _File(item)).add_text(
                    segment, self._why(None, item, segment)
                )
        unscored = [i for i in lexical_scores if i not in files or files[i].score is None]
        for item_id, item, segment, score in self._exact_scores(
            unscored, searches, scale, evidence
        ):
            files.setdefault(item_id, _File(item)).add(segment, score)
        lexical_scores = {
            i: score
            for i, score in lexical_scores.items()
            if i in files and files[i].item.kind in evidence.word_kinds
        }
        for item_id, seg_id, _ in lexical_hits:
            if seg_id is None and item_id in files:
                files[item_id].add_text(None, "file name")
        semantic = sorted(
            ((i, f.score) for i, f in files.items() if f.score is not None), key=lambda p: -p[1]
        )
        fused = fuse_on_semantic_scale(
            semantic, list(lexical_scores.items()), scale.mean, self.alpha, coverage
        )
        shown = ((item_id, shown_score(score)) for item_id, score in fused)
        return [
            (files[item_id], score)
            for item_id, score in shown
            if item_id in files and filters.accepts(files[item_id].item, score)
        ]

    def _why(self, key: str | None, item: Item, segment: Segment) -> str | None:
        """What a hit on `segment` (from the index `key`; None: the words) says about why
        its file matched."""
        if segment.text:
            if item.kind in ("audio", "video"):
                return "spoken words"
            return "text in the picture" if item.kind == "image" else "document text"
        if key is None:
            return None
        return "picture" if key == self.encoders.key("image") else "sound"

    def _exact_scores(self, item_ids, searches, scale, evidence: _Evidence):
        """Calibrated scores of files the full-text index found but no vector search
        reached: their real similarity in the spaces that are evidence for their kind, so
        one scale ranks and filters everything."""
        if not item_ids:
            return
        for search in searches:
            rows = self.library.catalog.item_vectors(item_ids, search.key)
            rows = [row for row in rows if evidence.counts(search.key, row[1].kind)]
            if not rows:
                continue
            sims = np.stack([v for _, _, _, v in rows]) @ search.vector
            calibrated = self._calibrated(search, sims, scale)
            for (item_id, item, segment, _), score in zip(rows, calibrated.tolist(), strict=True):
                yield item_id, item, segment, score


@dataclass
class _File:
    """One file's hits while grouping: its best segment and its timed hits."""

    item: Item
    score: float | None = None
    best: Segment | None = None
    timed: list[tuple[float, float, float]] = field(default_factory=list)
    text: Segment | None = None
    # Why it matched -> the best score of a hit of that kind (-inf: matched by words).
    reasons: dict[str, float] = field(default_factory=dict)

    def add(self, segment: Segment, score: float, why: str | None = None) -> None:
        if self.score is None or score > self.score:
            self.score, self.best = score, segment
        if segment.start_s is not None and segment.end_s is not None:
            self.timed.append((segment.start_s, segment.end_s, score))
        if why is not None:
            self.reasons[why] = max(score, self.reasons.get(why, -math.inf))

    def add_text(self, segment: Segment | None, why: str | None = None) -> None:
        """A passage the full-text index matched (the snippet when no vector hit has text);
        None when the file's name, folder or tags matched."""
        if self.text is None and segment is not None:
            self.text = segment
        if why is not None:
            self.reasons.setdefault(why, -math.inf)

    def moment(self) -> tuple[float | None, float | None]:
        """The merged run of timed hits around the best one (None for untimed files)."""
        if not self.timed:
            return None, None
        best = max(score for _, _, score in self.timed)
        close = [h for h in self.timed if h[2] >= best - MOMENT_TOLERANCE_SCORE]
        top = merge_moments(close, MOMENT_GAP_S)[0]
        return top.start, top.end

    def result(
        self, still: Callable[[Item, float], str | None], score: float, words: str
    ) -> SearchResult:
        start, end = self.moment()
        said = self.text
        if said is not None and said.start_s is not None and not (self.best and self.best.text):
            # The query's words are in a timed passage (speech, a subtitle cue): that is the
            # moment, rather than the frame or sound window that scored a little higher.
            start, end = said.start_s, said.end_s
        passage = self.best if self.best is not None and self.best.text else self.text
        shown = snippet(passage.text, words, SNIPPET_CHARS).text if passage else None
        thumbnail = None
        if self.item.kind == "video" and start is not None:
            thumbnail = still(self.item, start)
        return SearchResult(
            self.item.path,
            self.item.kind,
            score,
            start,
            end,
            modified=item_date(self.item),
            snippet=shown or None,
            thumbnail=thumbnail,
            matched=tuple(sorted(self.reasons, key=lambda why: -self.reasons[why])),
        )


def _result_kinds(query_kinds, role: str) -> frozenset[str]:
    """The result kinds a space's hits count for, for a query of these kinds."""
    return frozenset(k for k in KINDS if role in counting_roles(query_kinds, k))


def _words(query: Query) -> str:
    """The query's positive text terms for the full-text index; quoted ones as phrases."""
    return " ".join(
        f'"{t.value}"' if t.quoted else t.value
        for t in query.terms
        if t.kind == "text" and t.weight > 0
    )
