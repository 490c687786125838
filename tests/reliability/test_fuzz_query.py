"""The query parser, fuzzed: any string gives a Query or a QueryError, nothing else."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from search.errors import QueryError
from search.query import Query, parse_query

# Pieces of the query language and of paths, so the fuzzer reaches the interesting branches
# (operators, weights, quotes, image-looking tokens) more often than random text does.
PIECES = st.sampled_from(
    [
        "+", "-", '"', "'", ":", "2:", "0.5:", "0:", "00:", ".5:", "1e3:", "beach", "t-shirt",
        "black+white", "./ref.jpg", "../x.png", "/", "~/", "~nobody-here.jpg", "~", "a.jpg",
        ".jpg", "x" * 300 + ".png", "/" + "d" * 5000, "\x00", "caf\udce9.jpg", " ", "\t", "\n",
        "🐕", "ﬁ", "\u200b", "\\", "**", "(", ")",
    ]
)  # fmt: skip
QUERY_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=12).map(" ".join),
    st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=12).map("".join),
)


def check(query: str, images: tuple[str, ...] = ()) -> None:
    try:
        parsed = parse_query(query, images)
    except QueryError as exc:
        assert str(exc), "a QueryError must say what is wrong"
        return
    assert isinstance(parsed, Query) and parsed.terms
    assert any(t.weight > 0 for t in parsed.terms)
    for term in parsed.terms:
        assert term.kind in ("text", "image")
        assert math.isfinite(term.weight)
        assert term.value


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(QUERY_TEXT)
@example("~nobody-here.jpg")  # expanding ~user for a user that does not exist
@example("./" + "x" * 5000 + ".jpg")  # a path too long for the file system
@example("/" + "d" * 300 + "/x.jpg")  # a file name too long
@example("./a\x00.jpg")  # a NUL byte in a path
@example("9" * 400 + ":beach")  # a weight that overflows to infinity
@example("caf\udce9.jpg")  # a lone surrogate, as non-UTF-8 file names decode
def test_any_query_text_parses_or_raises_query_error(query):
    check(query)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(PIECES, st.text(max_size=40)), max_size=3).map(tuple))
def test_any_image_argument_parses_or_raises_query_error(images):
    check("beach", images)


def test_existing_image_still_parses(tmp_path):
    photo = tmp_path / "ref.jpg"
    photo.write_bytes(b"")
    parsed = parse_query(f'"sunset" + 2:{photo}')
    assert [(t.kind, t.weight) for t in parsed.terms] == [("text", 1.0), ("image", 2.0)]
