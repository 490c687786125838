"""Query syntax: terms joined by + and -, each optionally weighted.

    "beach at sunset" + ./ref.jpg - "people"
    2:"golden retriever" + 0.5:./bella.jpg
    a cat on a sofa

A term is a quoted phrase, an image file (a bare token that starts like a path, ./ ../ / ~/,
or ends in an image extension), or a run of plain words (one phrase). `+` and `-` count as
operators only standing alone, so "t-shirt" and "black+white" stay words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from indexers.kinds import kind_for_path
from search.errors import QueryError

TOKEN = re.compile(
    r"""(?P<weight>[0-9]*\.?[0-9]+:)?(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>\S+))"""
)


@dataclass(frozen=True)
class Term:
    kind: str  # "text" or "image"
    value: str
    weight: float = 1.0


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]


def parse_query(text: str, images: tuple[str, ...] = ()) -> Query:
    """Parse the query language; `images` (from --image) are added as positive terms."""
    terms: list[Term] = []
    words: list[str] = []
    sign = 1.0
    after_operator = False

    def add(kind: str, value: str, weight: float) -> None:
        nonlocal sign, after_operator
        terms.append(Term(kind, value, sign * weight))
        sign, after_operator = 1.0, False

    def flush_words() -> None:
        if words:
            add("text", " ".join(words), 1.0)
            words.clear()

    for match in TOKEN.finditer(text):
        weight, bare = match["weight"], match["bare"]
        quoted = match["dq"] if match["dq"] is not None else match["sq"]
        if weight is None and bare in ("+", "-"):
            flush_words()
            if after_operator or (not terms and bare == "+"):
                raise QueryError(f"An operator without a term before it near {bare!r} in: {text}")
            sign, after_operator = (1.0 if bare == "+" else -1.0), True
        elif bare is not None and bare.startswith('"'):
            raise QueryError(f"Unbalanced quotes in: {text}")
        elif quoted is not None:
            flush_words()
            if not quoted.strip():
                raise QueryError(f"Empty quotes in: {text}")
            add("text", quoted, _weight(weight))
        elif _looks_like_image(bare):
            flush_words()
            add("image", _image_path(bare), _weight(weight))
        elif weight is not None:
            flush_words()
            add("text", bare, _weight(weight))
        else:
            words.append(bare)
    flush_words()
    if after_operator:
        raise QueryError(f"The query ends with an operator: {text}")
    terms += [Term("image", _image_path(path)) for path in images]
    if not terms:
        raise QueryError("The query is empty: type some words, or give an image with --image.")
    if not any(t.weight > 0 for t in terms):
        raise QueryError(
            "The query has only negative terms. Say what you want, then what to avoid: "
            '"beach" - "people".'
        )
    return Query(tuple(terms))


# Larger weights drown every other term anyway; past it a typo ("2023:beach") is likelier.
MAX_WEIGHT = 1000.0


def _weight(prefix: str | None) -> float:
    if not prefix:
        return 1.0
    weight = float(prefix[:-1])
    if not weight <= MAX_WEIGHT:
        raise QueryError(f"Weight {prefix[:-1]} is too large: use weights up to {MAX_WEIGHT:g}.")
    return weight


def _looks_like_image(token: str) -> bool:
    return token.startswith(("./", "../", "/", "~/")) or kind_for_path(token) == "image"


def _image_path(token: str) -> str:
    try:
        path = Path(token).expanduser()
        exists = path.is_file()
    except (OSError, RuntimeError, ValueError):
        # ~user of no such user, a name too long for the file system, a NUL byte.
        exists = False
    if not exists:
        raise QueryError(
            f"Image {token} does not exist. Give the path of an image file, or put the words "
            f'in quotes to search for them as text: "{token}".'
        )
    return str(path.resolve())
