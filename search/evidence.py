"""Which spaces are evidence for which results: the evidence table the engine follows.

A query reaches several indexes, but an index only says something about a result when its
model was trained for that pairing. CLIP's text tower embeds document chunks so that a photo
can find the text that describes it; asked with a sentence it is a weak sentence encoder
(77 tokens, trained on alt-text), and untrained (`tiny-clip`) it is noise: it must not decide
which note answers a sentence when the sentence model and the words are there. So a hit
counts towards a result only when the table lists its space for the query's kind and the
result's kind; the other hits are not fetched or are dropped.

Spaces, by the role whose vectors fill the index (search/models/encoders.py ROLE_SPACE):
"image" (CLIP pictures: photos, video frames), "caption" (CLIP's text tower over document
chunks), "audio" (CLAP: sounds, video sound tracks), "sound" (a sound-to-sound model, when
the library has one), "sentence" (the text model: document chunks, text found in photos,
what is said in a recording) and "words" (the full-text index: names, folders, details,
text). A query's kinds are the kinds of its terms ("text", "image", "audio", "video"); a mixed
query takes, per result kind, the spaces of each of its kinds. docs/ranking.md shows the
table (rendered from `EVIDENCE` by bench/figures.py).
"""

from __future__ import annotations

from collections.abc import Iterable

ROLES = ("image", "caption", "audio", "sound", "frames", "sentence", "words")
QUERY_KINDS = ("text", "image", "audio", "video")
RESULT_KINDS = ("image", "audio", "video", "document")

# query kind -> result kind -> the spaces whose hits count. A pairing a model was not
# trained for is absent: CLIP's chunk index for a text query (the sentence model reads
# sentences), any picture or sound space for a document found by words.
EVIDENCE: dict[str, dict[str, tuple[str, ...]]] = {
    "text": {
        "image": ("image", "sentence", "words"),
        "audio": ("audio", "sentence", "words"),
        "video": ("image", "audio", "frames", "sentence", "words"),
        "document": ("sentence", "words"),
    },
    "image": {
        "image": ("image",),
        "audio": ("audio",),
        "video": ("image", "audio"),
        "document": ("caption",),
    },
    "audio": {
        "image": ("image",),
        "audio": ("audio", "sound"),
        "video": ("image", "audio", "sound"),
        "document": (),
    },
    "video": {
        "image": ("image",),
        "audio": ("audio", "sound"),
        "video": ("image", "audio", "sound"),
        "document": ("caption",),
    },
}

# What each space is, as the docs' table names it.
ROLE_NAMES = {
    "image": "CLIP pictures",
    "caption": "CLIP chunks",
    "audio": "CLAP",
    "sound": "sound model",
    "frames": "video model",
    "sentence": "sentence model",
    "words": "words",
}


def counting_roles(query_kinds: Iterable[str], result_kind: str) -> frozenset[str]:
    """The spaces whose hits count towards a result of `result_kind` for a query of these
    kinds (a mixed query: each kind's spaces)."""
    return frozenset(role for kind in query_kinds for role in EVIDENCE[kind].get(result_kind, ()))


def searched_roles(query_kinds: Iterable[str]) -> frozenset[str]:
    """The spaces worth searching for a query of these kinds: those that count for some
    result kind."""
    kinds = tuple(query_kinds)
    return frozenset(role for result in RESULT_KINDS for role in counting_roles(kinds, result))
