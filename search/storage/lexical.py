"""Word search (SQLite FTS5, BM25) over names, folders, details and document/OCR text.

Query syntax a user can rely on: words match anywhere (any of them; items with more of them
and rarer ones rank higher), `"a quoted phrase"` must appear exactly, in that order, and
`word*` matches words starting with `word`. Everything else is literal text: FTS5 operators
(AND, OR, NOT, NEAR, column filters, parentheses) typed by a user are just words, so no input
can cause an FTS syntax error.
"""

from __future__ import annotations

import math
import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from pathlib import PurePath
from typing import NamedTuple

# BM25 weight per items_fts column: a word in the file name says more than one in a parent
# folder's name, which says more than one in the camera model or album tags.
NAME_WEIGHT = 4.0
FOLDER_WEIGHT = 2.0
META_WEIGHT = 1.0
# Parent folders kept in `folder`: enough for "2023/Paris/day 2", without every file also
# matching the user's home folder name.
MAX_FOLDERS = 6
# A pasted paragraph is a query too; beyond this many terms BM25 ranks no better, only slower.
MAX_QUERY_TERMS = 32
# Segment hits fetched per wanted item: an item with many matching chunks takes several rows.
SEGMENT_ROWS_PER_ITEM = 4

# unicode61 keeps letters, numbers and private-use characters in tokens; all else separates.
_TOKEN = re.compile(r"[^\W_]+")
# Brackets and sentence punctuation end a word; the joiners inside one (- . _ ' / : @ +)
# keep its parts together as a phrase, the way they were written.
_WORD_BREAKS = re.compile(r"[\s()\[\]{}<>,;!?]+")
_QUOTED = re.compile(r'"([^"]*)"?')
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
# info keys whose values are numbers or machine details, not words anyone searches for.
_META_SKIPPED_KEYS = frozenset(
    {"sample_rate", "channels", "fps", "rotation", "pages", "duration_s", "bitrate", "cues"}
)


class LexicalHit(NamedTuple):
    """One item's word-match: its best matching segment (None when only the name/folder/meta
    matched) and a BM25 score, higher is better (SQLite's bm25() negated)."""

    item_id: int
    segment_id: int | None
    score: float


def tokens(text: str) -> list[str]:
    """Split text the way FTS5's unicode61 tokenizer does (before case and diacritic folding)."""
    return _TOKEN.findall(unicodedata.normalize("NFC", text))


def fts_match(query: str) -> str | None:
    """A user's query -> a safe FTS5 MATCH expression, or None when it has no words.

    Every token is double-quoted, so FTS5 reads it as text, never as syntax. A word the
    tokenizer splits (`invoice-2023`, `report.final`, `e_mail`) becomes one phrase of its
    parts, as it was written; quoted phrases stay phrases and are required; the other words
    are alternatives ranked by BM25.
    """
    phrases: list[str] = []
    words: list[str] = []
    position = 0
    for match in _QUOTED.finditer(query):
        words.extend(_word_terms(query[position : match.start()]))
        phrase = tokens(match.group(1))
        if phrase:
            phrases.append(_quote(phrase))
        position = match.end()
    words.extend(_word_terms(query[position:]))
    if not phrases and not words:
        return None
    required = " AND ".join(phrases[:MAX_QUERY_TERMS])
    optional = " OR ".join(list(dict.fromkeys(words))[:MAX_QUERY_TERMS])
    if not phrases:
        return optional
    if not words:
        return required
    # Phrases filter; the words only rank. Repeating the phrases in the OR keeps the
    # expression true for every row the phrases match, and bm25() scores every term in it.
    return f"{required} AND ({' OR '.join([*phrases, optional])})"


def query_terms(query: str) -> list[str]:
    """The query's terms as FTS5 expressions, each quoted phrase and each word once, in
    order (at most MAX_QUERY_TERMS): the units `term_coverage` counts."""
    terms: list[str] = []
    position = 0
    for match in _QUOTED.finditer(query):
        terms.extend(_word_terms(query[position : match.start()]))
        phrase = tokens(match.group(1))
        if phrase:
            terms.append(_quote(phrase))
        position = match.end()
    terms.extend(_word_terms(query[position:]))
    return list(dict.fromkeys(terms))[:MAX_QUERY_TERMS]


def term_coverage(db: sqlite3.Connection, query: str, item_ids: Iterable[int]) -> dict[int, float]:
    """How much of `query` each item holds, in [0, 1]: the share of the query's terms found
    in its name, folders, details or text, each term weighed by its rarity in the library
    (idf = ln(1 + (N - n + 0.5) / (n + 0.5)), n items holding it out of N; a term no item
    holds weighs most). BM25 relative to the best match says which item matches the words
    best; this says whether that match is the query or one incidental word of it ("night"
    of "how to fall asleep at night" in a note about a night train)."""
    wanted = set(item_ids)
    terms = query_terms(query)
    if not wanted or not terms:
        return {}
    (total,) = db.execute("SELECT count(*) FROM items").fetchone()
    held: dict[int, float] = dict.fromkeys(wanted, 0.0)
    weight_sum = 0.0
    for term in terms:
        holders = {
            row[0]
            for row in db.execute("SELECT rowid FROM items_fts WHERE items_fts MATCH ?", (term,))
        }
        holders.update(
            row[0]
            for row in db.execute(
                "SELECT DISTINCT s.item_id FROM segments_fts AS f JOIN segments AS s "
                "ON s.id = f.rowid WHERE segments_fts MATCH ?",
                (term,),
            )
        )
        n = len(holders)
        idf = math.log1p((max(total, n) - n + 0.5) / (n + 0.5))
        weight_sum += idf
        for item_id in holders & wanted:
            held[item_id] += idf
    return {item_id: min(1.0, weight / weight_sum) for item_id, weight in held.items()}


def _word_terms(text: str) -> list[str]:
    terms = []
    for word in _WORD_BREAKS.split(text):
        parts = tokens(word)
        if not parts:
            continue
        prefix = word.endswith("*") and len(parts[-1]) >= 2
        terms.append(_quote(parts) + (" *" if prefix else ""))
    return terms


def _quote(parts: list[str]) -> str:
    return '"' + " ".join(parts).replace('"', '""') + '"'


def search_lexical(db: sqlite3.Connection, query: str, limit: int = 100) -> list[LexicalHit]:
    """Items whose name, folders, details (items_fts) or text (segments_fts) match `query`,
    best first, at most `limit`. An item's score is its name/folder/details score plus its
    best segment's score: a document named for the query and about it beats one that is
    only about it."""
    match = fts_match(query)
    if match is None or limit <= 0:
        return []
    item_scores: dict[int, float] = {}
    for item_id, score in db.execute(
        "SELECT rowid, -bm25(items_fts, ?, ?, ?) FROM items_fts WHERE items_fts MATCH ? "
        "ORDER BY 2 DESC LIMIT ?",
        (NAME_WEIGHT, FOLDER_WEIGHT, META_WEIGHT, match, limit),
    ):
        item_scores[item_id] = score
    _promote_full_name_matches(db, query, item_scores, limit)
    best_segment: dict[int, tuple[int, float]] = {}
    for segment_id, item_id, score in db.execute(
        "SELECT f.rowid, s.item_id, -bm25(segments_fts) AS score FROM segments_fts AS f "
        "JOIN segments AS s ON s.id = f.rowid WHERE segments_fts MATCH ? "
        "ORDER BY score DESC LIMIT ?",
        (match, limit * SEGMENT_ROWS_PER_ITEM),
    ):
        if item_id not in best_segment:
            best_segment[item_id] = (segment_id, score)
    hits = [
        LexicalHit(
            item_id,
            best_segment[item_id][0] if item_id in best_segment else None,
            item_scores.get(item_id, 0.0) + best_segment.get(item_id, (None, 0.0))[1],
        )
        for item_id in item_scores.keys() | best_segment.keys()
    ]
    hits.sort(key=lambda hit: (-hit.score, hit.item_id))
    return hits[:limit]


def _promote_full_name_matches(
    db: sqlite3.Connection, query: str, item_scores: dict[int, float], limit: int
) -> None:
    """Files whose name holds every word of the query ("invoice 2023" -> invoice-2023.pdf)
    are what someone typing a file name wants: they get the best name score on top of their
    own, so they lead the word matches whatever the text of other files says."""
    every = fts_match(" ".join(f'"{word}"' for word in tokens(query)))
    if every is None or not item_scores:
        return
    bonus = max(item_scores.values())
    for (item_id,) in db.execute(
        "SELECT rowid FROM items_fts WHERE items_fts MATCH ? LIMIT ?",
        (f"name : ({every})", limit),
    ):
        item_scores[item_id] = item_scores.get(item_id, 0.0) + bonus


def item_fts_row(path: str, info: dict | None) -> tuple[str, str, str]:
    """The items_fts row for a file: (name, folder, meta).

    name: the file name as written (the tokenizer splits `invoice-2023.pdf` at - and .),
    followed by its camelCase and letter/digit parts when they differ (`IMG20230412` also
    gives `IMG 20230412`, `InvoiceMarch` gives `Invoice March`).
    folder: the names of the parent folders, nearest last, at most MAX_FOLDERS.
    meta: the words in `info` (title, artist, album, camera, lens, ...), skipping numbers and
    technical fields.
    """
    pure = PurePath(path)
    name = pure.name
    split = _CAMEL.sub(" ", name)
    if split != name:
        name = f"{name} {split}"
    parents = [p for p in pure.parent.parts if p not in (pure.anchor, "")][-MAX_FOLDERS:]
    return name, " ".join(parents), " ".join(_meta_words(info or {}))


def _meta_words(info: dict) -> list[str]:
    words = []
    for key, value in info.items():
        if key in _META_SKIPPED_KEYS:
            continue
        if isinstance(value, str):
            if value.strip():
                words.append(value.strip())
        elif isinstance(value, list | tuple):
            words.extend(v.strip() for v in value if isinstance(v, str) and v.strip())
    return words


class Snippet(NamedTuple):
    """A short passage of a chunk for a result card, and where the query's words are in it
    (character spans in `text`), so a UI can highlight them its own way."""

    text: str
    highlights: list[tuple[int, int]]


def snippet(text: str, query: str, width: int = 200) -> Snippet:
    """The `width`-character window of `text` holding the most query words (ends cut at word
    boundaries and marked with "…"); the start of the text when no word matches, as for a
    hit found by meaning alone. Words match ignoring case, accents and common English endings
    ("cats" finds "cat", "baking" finds "bakes")."""
    text = " ".join(text.split())
    wanted = {_stem(_fold(t)) for t in tokens(query)}
    spans = [
        (m.start(), m.end()) for m in _TOKEN.finditer(text) if _stem(_fold(m.group())) in wanted
    ]
    if len(text) <= width:
        return Snippet(text, spans)
    start = 0
    if spans:
        # The window start that covers the most matched words, trying each match as its start.
        best = max(
            range(len(spans)),
            key=lambda i: sum(1 for s, e in spans[i:] if e <= spans[i][0] + width),
        )
        start = max(0, spans[best][0] - width // 5)
    end = min(len(text), start + width)
    if end == len(text):
        start = max(0, end - width)
    if start > 0:
        start = text.find(" ", start) + 1 or start
    if end < len(text):
        end = text.rfind(" ", start, end) if " " in text[start:end] else end
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix) - start
    window = [(s + shift, e + shift) for s, e in spans if s >= start and e <= end]
    return Snippet(prefix + text[start:end] + suffix, window)


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_SUFFIXES = ("ing", "es", "ed", "er", "s")


def _stem(word: str) -> str:
    """A light English stem, enough to pair cat/cats and bake/baking/baker in a snippet."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word
