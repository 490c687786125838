"""SearchEngine: query -> a vector per embedding space -> each space's indexes -> scores
made comparable -> fused with the full-text index -> results grouped by file, best moment.

Which indexes a query reaches:
- words: photos and video frames (CLIP text tower), sounds (CLAP text tower), document
  chunks and text found in photos (sentence model), and names, folders, tags and text
  (full-text, BM25);
- a photo: photos and frames, documents (CLIP's text-chunk index), and sounds through the
  CLIP -> CLAP bridge; a sound: sounds, and photos and frames through the bridge; a video:
  its frames pooled as a photo and its sound track as a sound.

Raw cosines of different spaces are not comparable (CLAP's run higher than CLIP's), so each
list is standardised against the query's similarities to a fixed sample of the same index
(search/space.py) and put on the scale of the first list (the visual one when it is there):
a library of photos alone keeps its plain cosines. Filters apply to files after grouping.
The indexes are asked for more segments than wanted and asked again, four times wider,
while too few files pass the filters. `alpha` weighs meaning against words
(search/fusion.py); 1 and 0 rank by one of them alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from search.errors import BadFileError, QueryError
from search.filters import SearchFilters, item_date, shown_score
from search.fusion import BLEND_ALPHA, fuse_on_semantic_scale
from search.library import Library
from search.models.encoders import Encoders
from search.query import Query, Term, parse_query
from search.storage.catalog import Item, Segment
from search.storage.store import VectorStore
from search.vectors import pool

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

    def to_dict(self) -> dict:
        out = asdict(self)
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
class _Search:
    """One index a query reaches, the query's vector there, and how far to trust the hits
    (below 1 when the vector came through the CLIP <-> CLAP bridge alone)."""

    key: str
    vector: np.ndarray
    trust: float = 1.0


@dataclass(frozen=True)
class _Scale:
    """The reference index of a query and its background similarities' mean and spread."""

    key: str
    mean: float
    std: float


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
    ) -> None:
        """`save_rebuilt_index=False` keeps an index rebuilt from the catalog in memory only:
        for a process whose own indexer thread may be writing the same index file.

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
        self.encoders = Encoders(clip, library.model("clap"), library.model("text"))
        self.save_rebuilt_index = save_rebuilt_index
        self._stores: dict[str, VectorStore] = {}
        self._backgrounds: dict[str, np.ndarray] = {}
        self._bridge = None

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
        searches = self._searches(parsed)
        words = _words(parsed)
        if not searches and not words:
            return []
        wanted = offset + k
        if filters.sort == "date":
            wanted = max(wanted, DATE_SORT_POOL)
        matches = self._matches(searches, words, wanted, filters)
        if filters.sort == "date":
            matches.sort(key=lambda m: (-item_date(m[0].item), -m[1]))
        # Only the page asked for is dressed up (moments, snippets, video stills).
        return [file.result(self.library, score, words) for file, score in matches[offset:][:k]]

    # -- one query, several indexes ---------------------------------------------------------

    def _searches(self, query: Query) -> list[_Search]:
        """(index key, query vector) for every index this query reaches. The first sets the
        scale of the scores: the sound index for a query of sounds only, else the visual."""
        keys = set(self.library.catalog.vector_keys())
        terms = {kind: [t for t in query.terms if t.kind == kind] for kind in _TERM_KINDS}
        out: list[_Search] = []
        sounds_only = not (terms["text"] or terms["image"] or terms["video"])
        pictures_only = not (terms["text"] or terms["audio"] or terms["video"])
        visual = self._clip_vector(terms)
        if visual is not None and self.encoders.key("image") in keys:
            trust = self._bridge_fidelity("clap_to_clip") if sounds_only else 1.0
            out.append(_Search(self.encoders.key("image"), visual, trust))
        sound = self._clap_vector(terms) if self.encoders.key("audio") in keys else None
        if sound is not None:
            trust = self._bridge_fidelity("clip_to_clap") if pictures_only else 1.0
            found = _Search(self.encoders.key("audio"), sound, trust)
            out.insert(0 if sounds_only else len(out), found)
        if terms["text"] and self.encoders.key("sentence") in keys:
            words = [t.value for t in terms["text"]]
            sentence = _combine(
                [(self.encoders.get("text").encode_texts(words), _w(terms["text"]))]
            )
            out.append(_Search(self.encoders.key("sentence"), sentence))
        pictures = terms["image"] + terms["video"]
        if pictures and self.encoders.key("caption") in keys:
            caption = self._clip_vector({"image": pictures})
            out.append(_Search(self.encoders.key("caption"), caption))
        return out

    def _clip_vector(self, terms: dict[str, list[Term]]) -> np.ndarray | None:
        clip = self.encoders.clip
        parts = []
        if terms.get("text"):
            parts.append((clip.encode_texts([t.value for t in terms["text"]]), _w(terms["text"])))
        pictures = terms.get("image", []) + terms.get("video", [])
        if pictures:
            parts.append((np.stack([self._picture_vector(t) for t in pictures]), _w(pictures)))
        sounds = terms.get("audio", [])
        if sounds and self._require_sound():
            heard = np.stack([self._sound_vector(t.value) for t in sounds])
            parts.append((self.bridge.map_clap_to_clip(heard), _w(sounds)))
        return _combine(parts) if parts else None

    def _clap_vector(self, terms: dict[str, list[Term]]) -> np.ndarray | None:
        if terms["audio"]:
            self._require_sound()
        elif not self._sound_space_ready():
            return None
        clap = self.encoders.get("clap")
        parts = []
        if terms["text"]:
            parts.append((clap.encode_texts([t.value for t in terms["text"]]), _w(terms["text"])))
        heard = [
            (t, self._sound_vector(t.value, optional=t.kind == "video"))
            for t in terms["audio"] + terms["video"]
        ]
        heard = [(t, v) for t, v in heard if v is not None]
        if heard:
            parts.append((np.stack([v for _, v in heard]), [t.weight for t, _ in heard]))
        if terms["image"]:
            seen = np.stack([self._picture_vector(t) for t in terms["image"]])
            parts.append((self.bridge.map_clip_to_clap(seen), _w(terms["image"])))
        return _combine(parts) if parts else None

    def _sound_space_ready(self) -> bool:
        """Whether the library has sounds and their model has weights here. Words and
        pictures then also search the sounds; without it they search the rest."""
        return self.library.model("clap") is not None and not self.encoders.unavailable("clap")

    def _require_sound(self) -> bool:
        """A query with a sound in it needs the sound model: say why it cannot run."""
        if self.library.model("clap") is None:
            raise QueryError(
                "This library has no sounds indexed yet, so a sound cannot be searched with. "
                "Index a folder with recordings first (`python app.py index ~/Music`)."
            )
        problem = self.encoders.unavailable("clap")
        if problem:
            raise QueryError(f"Searching with a sound needs the sound model. {problem}")
        return True

    @property
    def bridge(self):
        if self._bridge is None:
            from search.bridge import load_or_fit_bridge

            self._bridge = load_or_fit_bridge(
                self.library.layout.bridges, self.encoders.clip, self.encoders.get("clap")
            )
        return self._bridge

    def _picture_vector(self, term: Term) -> np.ndarray:
        """A photo, or a video's frames pooled the way the indexer pools them."""
        clip = self.encoders.clip
        if term.kind == "video":
            from search.decode import video

            try:
                frames = video.sample_frames(term.value, min_side=clip.spec.image_size)
            except BadFileError as exc:
                raise QueryError(f"Cannot use {term.value} as a query video: {exc}") from None
            if not frames:
                raise QueryError(f"Cannot use {term.value} as a query video: no frames.")
            spans = [f.end_s - f.t_s for f in frames]
            return pool(clip.encode_images([f.image for f in frames]), spans)
        return clip.encode_images([_query_image(term.value, clip.spec.image_size)])[0]

    def _sound_vector(self, path: str, optional: bool = False) -> np.ndarray | None:
        """A sound (or a video's sound track) pooled over its windows, as indexed."""
        from search.decode.audio import audio_windows, load_audio

        clap = self.encoders.get("clap")
        try:
            if optional:
                from search.decode.video import load_video_audio

                samples = load_video_audio(path, clap.sample_rate)
                if samples is None:
                    return None
            else:
                samples = load_audio(path, clap.sample_rate).samples
        except BadFileError as exc:
            raise QueryError(f"Cannot use {path} as a query sound: {exc}") from None
        windows = audio_windows(samples, clap.sample_rate, clap.window_s)
        if not windows:
            if optional:
                return None
            raise QueryError(f"Cannot use {path} as a query sound: it is silent.")
        return pool(clap.encode_audio([w.samples for w in windows]))

    def _lexical(self, words: str, limit: int) -> list:
        """Full-text matches (search/storage/lexical.py) of the query's words, best first (none
        when ranking by meaning alone)."""
        if not words or self.alpha >= 1:
            return []
        from search.storage.lexical import search_lexical

        with self.library.catalog.reading() as db:
            return search_lexical(db, words, limit)

    # -- from hits to files -------------------------------------------------------------------

    def _matches(self, searches, words: str, wanted: int, filters: SearchFilters):
        """The best `wanted` files passing `filters`, fetching wider until enough pass."""
        fetch = wanted * OVERFETCH
        scale = self._scale(searches[0]) if searches else _Scale("", 0.0, 0.0)
        while True:
            hits = [self._hits(search, fetch, scale) for search in searches]
            lexical_hits = self._lexical(words, fetch)
            results = self._group(hits, lexical_hits, searches, scale, filters)
            exhausted = all(h.exhausted for h in hits) and len(lexical_hits) < fetch
            below_min = filters.min_score is not None and all(
                not len(h.scores) or shown_score(h.scores[-1]) < filters.min_score for h in hits
            )
            if len(results) >= wanted or exhausted or below_min:
                return results[:wanted]
            fetch *= WIDEN

    def _scale(self, search: _Search) -> _Scale:
        """The first index's background similarities to the query: every other list's
        standardised scores are put on that scale (the first list keeps its cosines)."""
        background = self._background(search.key) @ search.vector
        std = float(background.std()) if background.size > 1 else 0.0
        return _Scale(search.key, float(background.mean()) if background.size else 0.0, std)

    def _calibrated(self, search: _Search, scores: np.ndarray, scale: _Scale) -> np.ndarray:
        """Scores on the reference scale: standardised against this index's background,
        shrunk by the trust in a bridged query (how well the bridge maps held-out captions)."""
        from search.vectors import standardize

        if search.key == scale.key or scale.std <= 1e-6:
            return scores
        z = standardize(scores, self._background(search.key) @ search.vector)
        # An outlier of a narrow space (image-to-text similarities crowd together) can land
        # past any cosine; it stays at most an exact match of the first list.
        return np.minimum(scale.mean + scale.std * search.trust * z, 1.0)

    def _hits(self, search: _Search, fetch: int, scale: _Scale) -> _Hits:
        if self.alpha <= 0:  # words alone: the files come from the full-text index
            return _Hits(np.zeros(0, np.int64), np.zeros(0, np.float32), exhausted=True)
        store = self._store(search.key)
        scores, ids = store.search(search.vector, min(fetch, len(store)))
        exhausted = len(ids) < fetch or fetch >= len(store)
        return _Hits(ids, self._calibrated(search, scores, scale), exhausted)

    def _bridge_fidelity(self, direction: str) -> float:
        """The bridge's held-out mean cosine in one direction, in [0, 1]."""
        metrics = self.bridge.metrics[direction][self.bridge.method]
        return min(1.0, max(0.0, float(metrics["mean_cosine"])))

    def _background(self, key: str) -> np.ndarray:
        if key not in self._backgrounds:
            self._backgrounds[key] = self.library.catalog.sample_vectors(key, BACKGROUND_SAMPLE)
        return self._backgrounds[key]

    def _group(self, hits, lexical_hits, searches, scale, filters: SearchFilters):
        """(file, score) from the hits, best first: each file's best segment across the
        indexes decides its semantic score; full-text matches are fused in
        (search/fusion.py)."""
        catalog = self.library.catalog
        segment_ids = [int(i) for h in hits for i in h.ids.tolist()]
        segment_ids += [seg for _, seg, _ in lexical_hits if seg is not None]
        found = catalog.resolve_segments(segment_ids)
        files: dict[int, _File] = {}
        for h in hits:
            for score, seg_id in zip(h.scores.tolist(), h.ids.tolist(), strict=True):
                if seg_id in found:  # else removed since the index was loaded
                    item, segment = found[seg_id]
                    files.setdefault(item.id, _File(item)).add(segment, score)
        lexical_scores: dict[int, float] = {}
        for item_id, seg_id, score in lexical_hits:
            lexical_scores.setdefault(item_id, score)
            if seg_id is not None and seg_id in found:
                item, segment = found[seg_id]
                files.setdefault(item.id, _File(item)).add_text(segment)
        unscored = [i for i in lexical_scores if i not in files or files[i].score is None]
        for item_id, item, segment, score in self._exact_scores(unscored, searches, scale):
            files.setdefault(item_id, _File(item)).add(segment, score)
        semantic = sorted(
            ((i, f.score) for i, f in files.items() if f.score is not None), key=lambda p: -p[1]
        )
        fused = fuse_on_semantic_scale(
            semantic, list(lexical_scores.items()), scale.mean, self.alpha
        )
        shown = ((item_id, shown_score(score)) for item_id, score in fused)
        return [
            (files[item_id], score)
            for item_id, score in shown
            if item_id in files and filters.accepts(files[item_id].item, score)
        ]

    def _exact_scores(self, item_ids, searches, scale):
        """Calibrated scores of files the full-text index found but no vector search
        reached: their real similarity, so one scale ranks and filters everything."""
        if not item_ids:
            return
        for search in searches:
            rows = self.library.catalog.item_vectors(item_ids, search.key)
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

    def add(self, segment: Segment, score: float) -> None:
        if self.score is None or score > self.score:
            self.score, self.best = score, segment
        if segment.start_s is not None and segment.end_s is not None:
            self.timed.append((segment.start_s, segment.end_s, score))

    def add_text(self, segment: Segment) -> None:
        """A passage the full-text index matched (the snippet when no vector hit has text)."""
        if self.text is None:
            self.text = segment

    def moment(self) -> tuple[float | None, float | None]:
        """The merged run of timed hits around the best one (None for untimed files)."""
        from search.moments import merge_moments

        if not self.timed:
            return None, None
        best = max(score for _, _, score in self.timed)
        close = [h for h in self.timed if h[2] >= best - MOMENT_TOLERANCE_SCORE]
        top = merge_moments(close, MOMENT_GAP_S)[0]
        return top.start, top.end

    def result(self, library: Library, score: float, words: str) -> SearchResult:
        from search.storage.lexical import snippet

        start, end = self.moment()
        passage = self.best if self.best is not None and self.best.text else self.text
        shown = snippet(passage.text, words, SNIPPET_CHARS).text if passage else None
        thumbnail = None
        if self.item.kind == "video" and start is not None:
            thumbnail = library.moment_still(self.item, start)
        return SearchResult(
            self.item.path,
            self.item.kind,
            score,
            start,
            end,
            modified=item_date(self.item),
            snippet=shown or None,
            thumbnail=thumbnail,
        )


_TERM_KINDS = ("text", "image", "audio", "video")


def _words(query: Query) -> str:
    """The query's positive text terms for the full-text index; quoted ones as phrases."""
    return " ".join(
        f'"{t.value}"' if t.quoted else t.value
        for t in query.terms
        if t.kind == "text" and t.weight > 0
    )


def _w(terms: list[Term]) -> list[float]:
    return [t.weight for t in terms]


def _combine(parts: list[tuple[np.ndarray, list[float]]]) -> np.ndarray:
    """Weighted sum of each term's normalised embedding, normalised again."""
    vectors = np.concatenate([v for v, _ in parts])
    weights = np.asarray([w for _, ws in parts for w in ws], dtype=np.float32)
    total = (weights[:, None] * vectors).sum(0)
    if float(np.linalg.norm(total)) < 1e-6:
        raise QueryError("The query's terms cancel each other out; change a weight or term.")
    return _normalise(total)


def _normalise(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def _query_image(path: str, min_side: int):
    """Decoded as the indexer decodes (JPEG draft mode included), so a library photo used
    as a query finds itself at score 1."""
    from search.decode.image import load_image

    try:
        return load_image(path, min_side=min_side)[0]
    except BadFileError as exc:
        raise QueryError(f"Cannot use {path} as a query image: {exc}") from None
    except OSError as exc:
        raise QueryError(f"Cannot read the query image {path}: {exc.strerror or exc}") from None
