"""A parsed query -> the vector it searches each index with.

Which indexes a query reaches:
- words: photos and video frames (CLIP text tower), sounds (CLAP text tower), document
  chunks and text found in photos (sentence model);
- a photo: photos and frames, documents (CLIP's text-chunk index), and sounds through the
  CLIP -> CLAP bridge; a sound: sounds, and photos and frames through the bridge; a video:
  its frames pooled as a photo and its sound track as a sound.
- a sound, in a library with a sound-similarity model (AST, wav2vec2): sound files by that
  model's index instead of CLAP's; CLAP still carries it to the photos through the bridge.
- words, in a library with a video model (X-CLIP): also its index of 8-frame clips, through
  its own text tower.

A query file is decoded and encoded exactly as the indexer does it (search/segments.py): in
the same kind of isolated worker with the same time and memory limits, a video at the
library's own frame rate, and pooled with the same weights. So a library file used as a
query finds itself at score 1, and a hostile upload cannot hang or exhaust the server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from search.bridge import load_or_fit_bridge
from search.decode.isolation import IsolatedDecoder
from search.decode.kinds import FoundFile
from search.errors import BadFileError, QueryError
from search.library import Library
from search.models.encoders import Encoders
from search.query import Query, Term
from search.segments import (
    Decoded,
    Segmenter,
    SegmentSettings,
    encode_segments,
    library_frame_rate,
)
from search.vectors import normalise

TERM_KINDS = ("text", "image", "audio", "video")
FILE_NOUN = {"image": "image", "audio": "sound", "video": "video"}
# A query file's segments are never needed as text: a photo's OCR is not searched with; nor
# as X-CLIP clips, which only words search.
QUERY_SKIPS = frozenset({"sentence", "caption", "frames"})


@dataclass(frozen=True)
class IndexQuery:
    """One index a query reaches, the query's vector there, and how far to trust the hits
    (below 1 when the vector came through the CLIP <-> CLAP bridge alone)."""

    key: str
    vector: np.ndarray
    trust: float = 1.0


class QueryEncoder:
    """Turns queries into vectors with a library's models; query files are decoded in
    `decoder`'s worker processes."""

    def __init__(self, library: Library, encoders: Encoders, decoder: IsolatedDecoder) -> None:
        self.library = library
        self.encoders = encoders
        self.decoder = decoder
        self._bridge = None

    def index_queries(self, query: Query) -> list[IndexQuery]:
        """(index key, query vector) for every index this query reaches. The first sets the
        scale of the scores: the sound index for a query of sounds only, else the visual."""
        keys = set(self.library.catalog.vector_keys())
        terms = {kind: [t for t in query.terms if t.kind == kind] for kind in TERM_KINDS}
        if terms["audio"]:
            self._require_sound()
        similar = self._similar_sounds(terms, keys)
        # Whether the sound index is searched: then a video's sound track is heard too.
        hear_tracks = self.encoders.key("audio") in keys and self._sound_space_ready()
        files = self._file_vectors(terms, hear_tracks)
        out: list[IndexQuery] = []
        sounds_only = not (terms["text"] or terms["image"] or terms["video"])
        pictures_only = not (terms["text"] or terms["audio"] or terms["video"])
        visual = self._clip_vector(terms, files)
        if visual is not None and self.encoders.key("image") in keys:
            trust = self._bridge_fidelity("clap_to_clip") if sounds_only else 1.0
            out.append(IndexQuery(self.encoders.key("image"), visual, trust))
        heard = [t for t in terms["audio"] if "sound" in files.get(t.value, {})]
        if similar is not None and heard:
            # The sound-similarity index answers the query sounds; CLAP's what else is asked.
            vector = combine([(np.stack([files[t.value]["sound"] for t in heard]), weights(heard))])
            out.insert(0 if sounds_only else len(out), IndexQuery(similar, vector))
        clap_terms = {**terms, "audio": []} if similar is not None and heard else terms
        sound = self._clap_vector(clap_terms, files) if hear_tracks else None
        if sound is not None:
            trust = self._bridge_fidelity("clip_to_clap") if pictures_only else 1.0
            found = IndexQuery(self.encoders.key("audio"), sound, trust)
            out.insert(0 if sounds_only else len(out), found)
        if terms["text"] and self.encoders.key("sentence") in keys:
            words = [t.value for t in terms["text"]]
            sentence = combine(
                [(self.encoders.get("text").encode_texts(words), weights(terms["text"]))]
            )
            out.append(IndexQuery(self.encoders.key("sentence"), sentence))
        clips = self._video_clips(terms, keys)
        if clips is not None:
            out.append(clips)
        pictures = terms["image"] + terms["video"]
        if pictures and self.encoders.key("caption") in keys:
            caption = self._clip_vector({"image": pictures}, files)
            out.append(IndexQuery(self.encoders.key("caption"), caption))
        return out

    # -- query files ------------------------------------------------------------------------

    def _file_vectors(
        self, terms: dict[str, list[Term]], hear_tracks: bool
    ) -> dict[str, dict[str, np.ndarray]]:
        """Each query file's whole-file vector by role ("image", "audio"), keyed by path: a
        photo's own vector, a sound's or a video's pooled one."""
        found = {t.value: t.kind for kind in ("image", "audio", "video") for t in terms[kind]}
        if not found:
            return {}
        skips = QUERY_SKIPS if hear_tracks else QUERY_SKIPS | {"audio"}
        settings = SegmentSettings(frame_rate=library_frame_rate(self.library.catalog))
        segmenter = Segmenter(self.encoders, self.decoder, settings, skips)
        decoded = [self._decode(segmenter, path, kind) for path, kind in found.items()]
        vectors = encode_segments(self.encoders, decoded)
        out: dict[str, dict[str, np.ndarray]] = {}
        for i, file in enumerate(decoded):
            whole = next(j for j, s in enumerate(file.segments) if s.start_s is None)
            out[file.found.path] = {
                role: vectors[(i, whole)][self.encoders.key(role)]
                for role in ("image", "audio", "sound")
                if self.encoders.key(role) in vectors[(i, whole)]
            }
        return out

    def _decode(self, segmenter: Segmenter, path: str, kind: str) -> Decoded:
        noun = FILE_NOUN[kind]
        try:
            st = os.stat(path)
            return segmenter(FoundFile(path, st.st_size, st.st_mtime_ns, kind), "")
        except BadFileError as exc:
            raise QueryError(f"Cannot use {path} as a query {noun}: {exc}") from None
        except OSError as exc:
            reason = exc.strerror or exc
            raise QueryError(f"Cannot read the query {noun} {path}: {reason}") from None

    # -- one vector per space ---------------------------------------------------------------

    def _clip_vector(self, terms: dict[str, list[Term]], files) -> np.ndarray | None:
        clip = self.encoders.clip
        parts = []
        if terms.get("text"):
            texts = [t.value for t in terms["text"]]
            parts.append((clip.encode_texts(texts), weights(terms["text"])))
        pictures = terms.get("image", []) + terms.get("video", [])
        if pictures:
            seen = np.stack([files[t.value]["image"] for t in pictures])
            parts.append((seen, weights(pictures)))
        sounds = terms.get("audio", [])
        if sounds:
            heard = np.stack([files[t.value]["audio"] for t in sounds])
            parts.append((self.bridge.map_clap_to_clip(heard), weights(sounds)))
        return combine(parts) if parts else None

    def _clap_vector(self, terms: dict[str, list[Term]], files) -> np.ndarray | None:
        clap = self.encoders.get("clap")
        parts = []
        if terms["text"]:
            texts = [t.value for t in terms["text"]]
            parts.append((clap.encode_texts(texts), weights(terms["text"])))
        # A video without a sound track (or a silent one) searches the sounds by its frames
        # alone, through the bridge like a photo.
        heard = [t for t in terms["audio"] + terms["video"] if "audio" in files[t.value]]
        if heard:
            parts.append((np.stack([files[t.value]["audio"] for t in heard]), weights(heard)))
        if terms["image"]:
            seen = np.stack([files[t.value]["image"] for t in terms["image"]])
            parts.append((self.bridge.map_clip_to_clap(seen), weights(terms["image"])))
        return combine(parts) if parts else None

    def _similar_sounds(self, terms: dict[str, list[Term]], keys: set[str]) -> str | None:
        """The sound-similarity index a query's sounds search, when the library has one
        (None: CLAP's sound index answers them). Its model must be here: a query sound is
        never quietly compared in another space than the library chose."""
        if not terms["audio"] or not self.encoders.name("sound"):
            return None
        key = self.encoders.key("sound")
        if key not in keys:
            return None
        problem = self.encoders.unavailable("sound")
        if problem:
            raise QueryError(f"Searching with a sound needs the sound-similarity model. {problem}")
        return key

    def _video_clips(self, terms: dict[str, list[Term]], keys: set[str]) -> IndexQuery | None:
        """Words search the library's index of video clips (X-CLIP) through its text tower,
        when the library has one; its model must be here."""
        if not terms["text"] or not self.encoders.name("video"):
            return None
        key = self.encoders.key("frames")
        if key not in keys:
            return None
        problem = self.encoders.unavailable("video")
        if problem:
            raise QueryError(f"Searching words needs the library's video model. {problem}")
        words = [t.value for t in terms["text"]]
        vectors = self.encoders.get("video").encode_texts(words)
        return IndexQuery(key, combine([(vectors, weights(terms["text"]))]))

    def _sound_space_ready(self) -> bool:
        """Whether the library has sounds and their model has weights here. Words and
        pictures then also search the sounds; without it they search the rest."""
        return self.library.model("clap") is not None and not self.encoders.unavailable("clap")

    def _require_sound(self) -> None:
        """A query with a sound in it needs the sound model: say why it cannot run."""
        if self.library.model("clap") is None:
            raise QueryError(
                "This library has no sounds indexed yet, so a sound cannot be searched with. "
                "Index a folder with recordings first (`python app.py index ~/Music`)."
            )
        problem = self.encoders.unavailable("clap")
        if problem:
            raise QueryError(f"Searching with a sound needs the sound model. {problem}")

    @property
    def bridge(self):
        if self._bridge is None:
            self._bridge = load_or_fit_bridge(
                self.library.layout.bridges, self.encoders.clip, self.encoders.get("clap")
            )
        return self._bridge

    def _bridge_fidelity(self, direction: str) -> float:
        """The bridge's held-out mean cosine in one direction, in [0, 1]."""
        metrics = self.bridge.metrics[direction][self.bridge.method]
        return min(1.0, max(0.0, float(metrics["mean_cosine"])))


def weights(terms: list[Term]) -> list[float]:
    return [t.weight for t in terms]


def combine(parts: list[tuple[np.ndarray, list[float]]]) -> np.ndarray:
    """Weighted sum of each term's normalised embedding, normalised again."""
    vectors = np.concatenate([v for v, _ in parts])
    term_weights = np.asarray([w for _, ws in parts for w in ws], dtype=np.float32)
    total = (term_weights[:, None] * vectors).sum(0)
    if float(np.linalg.norm(total)) < 1e-6:
        raise QueryError("The query's terms cancel each other out; change a weight or term.")
    return normalise(total)
