from __future__ import annotations

import pytest

from search.errors import QueryError
from search.query import Term, parse_query


@pytest.fixture
def ref(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ref.jpg").write_bytes(b"")
    return str(tmp_path / "ref.jpg")


def test_plain_words_are_one_phrase():
    assert parse_query("a cat on a t-shirt").terms == (Term("text", "a cat on a t-shirt"),)


def test_combined_query_with_image_and_negative(ref):
    q = parse_query('"beach at sunset" + ./ref.jpg - "people"')
    assert q.terms == (
        Term("text", "beach at sunset", 1.0, quoted=True),
        Term("image", ref, 1.0),
        Term("text", "people", -1.0, quoted=True),
    )


def test_weights(ref):
    q = parse_query('2:"golden retriever" + 0.5:./ref.jpg - 1.5:puppy')
    assert [(t.kind, t.weight) for t in q.terms] == [("text", 2.0), ("image", 0.5), ("text", -1.5)]


def test_unquoted_words_between_operators():
    q = parse_query("red car - rain + night city")
    assert q.terms == (
        Term("text", "red car"),
        Term("text", "rain", -1.0),
        Term("text", "night city"),
    )


def test_image_option_adds_a_term(ref):
    assert parse_query("", images=(ref,)).terms == (Term("image", ref),)
    assert parse_query("dog", images=(ref,)).terms[1] == Term("image", ref)


def test_single_quotes_and_apostrophes():
    assert parse_query("'dog park'").terms == (Term("text", "dog park", quoted=True),)
    assert parse_query("dog's toy").terms == (Term("text", "dog's toy"),)


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "empty"),
        ("- people", "only negative"),
        ("cat +", "ends with an operator"),
        ("cat + - dog", "operator without a term"),
        ('"unbalanced', "Unbalanced quotes"),
        ('""', "Empty quotes"),
        ("./missing.jpg", "does not exist"),
        ("holiday.png", "does not exist"),
    ],
)
def test_errors_say_what_is_wrong(query, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(QueryError, match=message):
        parse_query(query)


@pytest.mark.parametrize("query", ["0:cat", '0:"cat" - dog', "0.0:cat + 0:dog"])
def test_a_zero_weight_is_named_not_called_negative(query):
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    message = str(caught.value)
    assert "negative" not in message
    assert 'a weight of 0 on "cat"' in message and "above 0" in message
