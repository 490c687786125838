"""Word search over the catalog's FTS5 tables: files written by the real Catalog (its schema,
migrations and full-text rows), searched by search/storage/lexical.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from search.decode.kinds import KIND_BY_EXTENSION
from search.storage.catalog import Catalog, EncodedItem, EncodedSegment
from search.storage.lexical import fts_match, item_fts_row, search_lexical, snippet, tokens

# path -> (info, [chunk texts])
LIBRARY = {
    "/home/ann/Documents/finance/invoice-2023.pdf": ({"title": "Invoice"}, ["Consulting."]),
    "/home/ann/Documents/finance/notes.txt": (
        {},
        ["Remember the invoice from 2023 and the one from 2022.", "Pay the red car tax."],
    ),
    "/home/ann/Documents/cars.md": ({}, ["The car is red and fast.", "Running costs: fuel."]),
    "/home/ann/Music/Café del Mar/track01.mp3": (
        {"artist": "José Padilla", "album": "Café del Mar", "sample_rate": 44100},
        [],
    ),
    "/home/ann/Pictures/2023/Lisbon/IMG_4471.jpg": ({"camera": "Canon EOS R6"}, []),
}


@pytest.fixture
def db(tmp_path: Path):
    """The library's files saved in one batch by a real catalog on disk, as the indexer
    saves them; the connection its searches read through."""
    catalog = Catalog(tmp_path / "catalog.db")
    catalog.save_encoded(
        [
            EncodedItem(
                path=path,
                kind=KIND_BY_EXTENSION[Path(path).suffix],
                size=100,
                mtime_ns=0,
                fingerprint=f"content-{i}",
                segments=[EncodedSegment(None, None, text, {}) for text in chunks],
                info=info,
            )
            for i, (path, (info, chunks)) in enumerate(LIBRARY.items())
        ]
    )
    with catalog.reading() as conn:
        yield conn
    catalog.close()


def names(db, query):
    paths = dict(db.execute("SELECT id, path FROM items"))
    return [paths[hit.item_id].rsplit("/", 1)[1] for hit in search_lexical(db, query, 10)]


def test_the_file_named_for_the_query_ranks_first(db):
    assert names(db, "invoice 2023")[:2] == ["invoice-2023.pdf", "notes.txt"]


def test_a_hyphenated_word_is_a_phrase_of_its_parts(db):
    assert fts_match("invoice-2023") == '"invoice 2023"'
    # notes.txt has both words, but not next to each other.
    assert names(db, "invoice-2023") == ["invoice-2023.pdf"]


def test_quoted_phrase_means_exact_phrase(db):
    assert names(db, '"red car"') == ["notes.txt"]  # cars.md says "car is red"
    assert set(names(db, "red car")) == {"notes.txt", "cars.md"}
    # Words beside a phrase rank the phrase's matches but do not widen them.
    assert names(db, '"red car" fast') == ["notes.txt"]


def test_stemming_diacritics_and_prefixes(db):
    assert names(db, "runs") == ["cars.md"]  # porter: running ~ runs
    assert names(db, "cafe") == ["track01.mp3"]  # folder and album, accents folded
    assert names(db, "padill*") == ["track01.mp3"]
    assert names(db, "canon lisbon") == ["IMG_4471.jpg"]


def test_best_segment_is_reported(db):
    (hit,) = search_lexical(db, "fuel", 10)
    text = db.execute("SELECT text FROM segments WHERE id = ?", (hit.segment_id,)).fetchone()[0]
    assert text == "Running costs: fuel."
    (name_only,) = search_lexical(db, "lisbon", 10)
    assert name_only.segment_id is None and name_only.score > 0


def test_bm25_ranks_more_matched_words_first(db):
    hits = search_lexical(db, "red tax", 10)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert names(db, "red tax") == ["notes.txt", "cars.md"]
    # A word in the file name outweighs the same word in the text.
    assert names(db, "cars")[0] == "cars.md"


@pytest.mark.parametrize(
    "query",
    [
        'NOT AND OR NEAR("a" "b")',
        "name:invoice",
        '"unterminated phrase',
        '""',
        "*",
        "a*b* ^c",
        "(((",
        "C++ / C# & 'quotes' \"",
        "\x00\ufeff\u200b",
        "-2023",
        "🙂 emoji",
    ],
)
def test_no_user_input_is_an_fts_syntax_error(db, query):
    match = fts_match(query)
    if match is not None:
        db.execute("SELECT count(*) FROM items_fts WHERE items_fts MATCH ?", (match,)).fetchone()
    search_lexical(db, query, 10)


def test_random_punctuation_never_breaks_the_match(db):
    rng = random.Random(7)
    alphabet = "abc 123 \"*-_.:()^+{}[]'\\/,;!?&|~`@#$%NOTANDORNEAR\t\n"
    for _ in range(500):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        search_lexical(db, query, 5)


def test_a_pasted_page_is_capped_to_its_first_terms(db):
    match = fts_match(" ".join(f"word{i}" for i in range(500)) + " invoice")
    assert match.count(" OR ") == 31
    assert search_lexical(db, "invoice " * 300 + "2023", 10)[0].item_id == 1


def test_queries_without_words_match_nothing(db):
    assert fts_match("") is None
    assert fts_match(' -- "" ** ') is None
    assert search_lexical(db, "...", 10) == []


def test_item_row_has_name_parts_folders_and_details():
    name, folder, meta = item_fts_row(
        "/home/ann/Pictures/2023/Lisbon/IMG20230412_InvoiceMarch.jpg",
        {"camera": "Canon EOS R6", "fps": 30.0, "sample_rate": 48000, "tags": ["beach", "sea"]},
    )
    assert name.startswith("IMG20230412_InvoiceMarch.jpg")
    assert {"IMG", "20230412", "Invoice", "March"} <= set(tokens(name))
    assert folder == "home ann Pictures 2023 Lisbon"
    assert meta == "Canon EOS R6 beach sea"


def test_tokens_split_like_unicode61():
    assert tokens("invoice-2023.pdf my_file e-mail café") == [
        "invoice",
        "2023",
        "pdf",
        "my",
        "file",
        "e",
        "mail",
        "café",
    ]


NOTE = (
    "Notes on living with cats. Miso sleeps most of the day on the windowsill in the sun. "
    "She purrs when she is brushed and hides under the bed when the vacuum cleaner comes out. "
    "The kitten still needs her second vaccination at the vet in April."
)


def test_snippet_centres_on_the_query_words_and_marks_them():
    cut = snippet(NOTE, "vaccination vets", width=90)
    assert cut.text.startswith("…") and "vaccination at the vet in April." in cut.text
    assert len(cut.text) <= 92
    assert [cut.text[a:b] for a, b in cut.highlights] == ["vaccination", "vet"]


def test_snippet_matches_word_forms_and_accents():
    cut = snippet("We bake bread at the Café Lumière.", "baking cafe lumiere")
    assert [cut.text[a:b] for a, b in cut.highlights] == ["bake", "Café", "Lumière"]


def test_snippet_of_a_hit_by_meaning_is_the_start():
    cut = snippet(NOTE, "feline", width=60)
    assert cut.text.startswith("Notes on living with cats.") and cut.text.endswith("…")
    assert cut.highlights == []
