"""Cutting a document into chunks, at sentence ends where it can.

A chunk is what gets a vector: one MiniLM sentence vector (text -> text search) and one CLIP
text-tower vector (image -> document). See `chunk_document` for how each encoder sees a chunk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from search.decode.documents.document import Cue, Document

# Chunk sizes, in words (see chunk_document for the reasoning).
CHUNK_WORDS = 120
CHUNK_OVERLAP_WORDS = 30
CUE_CHUNK_WORDS = 60
CUE_CHUNK_SECONDS = 30.0


@dataclass(frozen=True)
class Chunk:
    """A piece of a document that gets its own vectors.

    `start_s`/`end_s` are set for subtitle chunks (the cues' time range), else None.
    `page` is the 1-based PDF page the chunk starts on, else None.
    """

    text: str
    start_s: float | None = None
    end_s: float | None = None
    page: int | None = None


_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\n+")


def chunk_document(
    doc: Document,
    words: int = CHUNK_WORDS,
    overlap: int = CHUNK_OVERLAP_WORDS,
    cue_words: int = CUE_CHUNK_WORDS,
    cue_seconds: float = CUE_CHUNK_SECONDS,
) -> list[Chunk]:
    """Cut a document into overlapping chunks, at sentence ends where it can.

    Prose: up to `words` words (120) per chunk; each chunk starts with the last <= `overlap`
    words (30) of the one before, so a sentence cut at a border is whole in one of them.
    120 English words are about 160 MiniLM word pieces, inside the 256 it reads (it truncates
    the rest), so the sentence vector sees the whole chunk. CLIP's text tower reads 77 BPE
    tokens, about the first 55 words: its vector describes the start of the chunk, which is
    enough for image -> document search (a photo matches what a passage is about, not its
    last clause). Smaller chunks would double the vectors for no gain in text search.

    Subtitles: consecutive cues are grouped up to `cue_words` (60) words or `cue_seconds` (30 s),
    with the last cue repeated at the start of the next chunk (unless that would stretch it
    past `cue_seconds`); the chunk's time range is its cues' range, so a hit can seek the
    video to the moment.
    """
    if doc.cues:
        return _chunk_cues(doc.cues, cue_words, cue_seconds)
    if doc.pages:
        units = [(s, page) for page, text in enumerate(doc.pages, 1) for s in _sentences(text)]
    else:
        units = [(s, None) for s in _sentences(doc.text)]
    return _pack(units, words, min(overlap, words // 2))


def _sentences(text: str) -> Iterable[list[str]]:
    for sentence in _SENTENCE_END.split(text):
        tokens = sentence.split()
        if tokens:
            yield tokens


def _pack(units: list[tuple[list[str], int | None]], limit: int, overlap: int) -> list[Chunk]:
    # Sentences longer than a chunk are cut into chunk-sized pieces first. The pieces overlap
    # already, so one that continues a sentence starts its chunk without the tail of the one
    # before (that would repeat the overlap), and the last piece reaches the sentence's end.
    pieces: list[tuple[list[str], int | None, bool]] = []
    for tokens, page in units:
        step = max(1, limit - overlap)
        if len(tokens) <= limit:
            pieces.append((tokens, page, False))
        else:
            starts = range(0, max(1, len(tokens) - overlap), step)
            pieces.extend((tokens[i : i + limit], page, i > 0) for i in starts)
    chunks: list[Chunk] = []
    current: list[tuple[list[str], int | None]] = []
    count = 0
    fresh = False  # does `current` hold anything the previous chunk did not?
    for tokens, page, continues in pieces:
        if current and count + len(tokens) > limit:
            chunks.append(_make_chunk(current))
            current, count = ([], 0) if continues else _tail(current, overlap)
            fresh = False
            if current and count + len(tokens) > limit:
                current, count = [], 0
        current.append((tokens, page))
        count += len(tokens)
        fresh = True
    if current and fresh:
        chunks.append(_make_chunk(current))
    return chunks


def _tail(pieces, overlap: int):
    """The trailing whole sentences of a chunk that fit in `overlap` words."""
    kept, count = [], 0
    for tokens, page in reversed(pieces):
        if count + len(tokens) > overlap:
            break
        kept.insert(0, (tokens, page))
        count += len(tokens)
    if not kept and overlap and pieces:
        tokens, page = pieces[-1]
        kept, count = [(tokens[-overlap:], page)], min(overlap, len(tokens))
    return kept, count


def _make_chunk(pieces) -> Chunk:
    return Chunk(text=" ".join(" ".join(t) for t, _ in pieces), page=pieces[0][1])


def _chunk_cues(cues: list[Cue], limit_words: int, limit_s: float) -> list[Chunk]:
    chunks: list[Chunk] = []
    group: list[Cue] = []
    words = 0
    for cue in cues:
        n = len(cue.text.split())
        too_long = group and (words + n > limit_words or cue.end_s - group[0].start_s > limit_s)
        if too_long:
            chunks.append(_cue_chunk(group))
            # The last cue is repeated for context, unless it is too far back to be context.
            group = group[-1:] if cue.end_s - group[-1].start_s <= limit_s else []
            words = sum(len(c.text.split()) for c in group)
        group.append(cue)
        words += n
    if group:  # after a flush the group always holds a new cue besides the repeated one
        chunks.append(_cue_chunk(group))
    return chunks


def _cue_chunk(group: list[Cue]) -> Chunk:
    return Chunk(
        text=" ".join(c.text for c in group), start_s=group[0].start_s, end_s=group[-1].end_s
    )
