"""Query syntax: terms joined by + and -, each optionally weighted.

    "beach at sunset" + ./ref.jpg - "people"
    2:"golden retriever" + 0.5:./bella.jpg
    a cat on a sofa

A term is a quoted phrase, a media file (a bare token that starts like a path, ./ ../ / ~/,
or ends in an image, sound or video extension: the file's kind is the term's kind), or a run
of plain words (one phrase). `+` and `-` count as
operators only standing alone, so "t-shirt" and "black+white" stay words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from search.decode.kinds import kind_for_path
from search.errors import QueryError

TOKEN = re.compile(
    r"""(?P<weight>[0-9]*\.?[0-9]+:)?(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>\S+))"""
)


# Files whose content can be a query; a path of another kind is searched as an image.
QUERY_FILE_KINDS = {"image": "image", "audio": "audio", "video": "video"}


@dataclass(frozen=True)
class Term:
    kind: str  # "text", or the kind of a query file: "image", "audio", "video"
    value: str
    weight: float = 1.0
    # A "quoted phrase": the full-text index matches it as an exact phrase.
    quoted: bool = False


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]


def parse_query(
    text: str,
    images: tuple[str, ...] = (),
    sounds: tuple[str, ...] = (),
    videos: tuple[str, ...] = (),
) -> Query:
    """Parse the query language; files given with --image, --audio and --video are added
    as positive terms."""
    terms: list[Term] = []
    words: list[str] = []
    sign = 1.0
    after_operator = False

    def add(kind: str, value: str, weight: float, quoted: bool = False) -> None:
        nonlocal sign, after_operator
        terms.append(Term(kind, value, sign * weight, quoted))
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
            add("text", quoted, _weight(weight), quoted=True)
        elif _looks_like_file(bare):
            flush_words()
            path = _file_path(bare)
            add(QUERY_FILE_KINDS.get(kind_for_path(path) or "", "image"), path, _weight(weight))
        elif weight is not None:
            flush_words()
            add("text", bare, _weight(weight))
        else:
            words.append(bare)
    flush_words()
    if after_operator:
        raise QueryError(f"The query ends with an operator: {text}")
    for kind, paths in (("image", images), ("audio", sounds), ("video", videos)):
        terms += [Term(kind, _file_path(path)) for path in paths]
    if not terms:
        raise QueryError(
            "The query is empty: type some words, or give a file with --image, --audio or --video."
        )
    if not any(t.weight > 0 for t in terms):
        zero = next((t for t in terms if t.weight == 0), None)
        if zero is not None:
            term = f'"{zero.value}"' if " " in zero.value else zero.value
            raise QueryError(
                f'No term of the query counts: a weight of 0 on "{zero.value}" adds nothing. '
                f"Give what you want a weight above 0 (e.g. 0.5:{term}), or no weight."
            )
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


def _looks_like_file(token: str) -> bool:
    return token.startswith(("./", "../", "/", "~/")) or kind_for_path(token) in QUERY_FILE_KINDS


def _file_path(token: str) -> str:
    try:
        path = Path(token).expanduser()
        exists = path.is_file()
    except (OSError, RuntimeError, ValueError):
        # ~user of no such user, a name too long for the file system, a NUL byte.
        exists = False
    if not exists:
        raise QueryError(
            f"File {token} does not exist. Give the path of an image, sound or video file, or "
            f'put the words in quotes to search for them as text: "{token}".'
        )
    return str(path.resolve())
