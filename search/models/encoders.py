"""The encoders one library works with: one model per embedding space, loaded on first use.

Spaces: `clip` (photos and video frames; the CLIP text tower also embeds document chunks so
a photo finds the text that describes it), `clap` (sound) and `text` (sentence meaning of
document chunks and text found in images). Each vector is stored under a key: the model's
name, or for CLIP's text tower the model's name + ":text", so the indexes of photos and of
text chunks stay apart.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from search.errors import TroveError

SPACES = ("clip", "clap", "text")
# What an encoder input is, per role, and the space whose model encodes it.
ROLE_SPACE = {"image": "clip", "caption": "clip", "audio": "clap", "sentence": "text"}
CAPTION_SUFFIX = ":text"


def model_keys(name: str) -> tuple[str, str]:
    """The vector keys a model's vectors can be stored under."""
    return (name, name + CAPTION_SUFFIX)


def meta_key(space: str) -> str:
    """The catalog meta entry that records which model a library uses in `space`."""
    return f"model.{space}"


class Encoders:
    """One encoder per space. Each is an encoder object or a preset name, loaded when first
    asked for; `unavailable(space)` says why a space cannot be used (missing weights)
    without raising, so an index run can go on with the other kinds of files."""

    def __init__(
        self,
        clip: Any,
        clap: Any = None,
        text: Any = None,
        *,
        clip_path: str | None = None,
        clap_path: str | None = None,
    ) -> None:
        from search.models.registry import DEFAULT_AUDIO_MODEL
        from search.models.text import DEFAULT_TEXT_MODEL

        self._given = {
            "clip": clip,
            "clap": clap or DEFAULT_AUDIO_MODEL,
            "text": text or DEFAULT_TEXT_MODEL,
        }
        self._paths = {"clip": clip_path, "clap": clap_path, "text": None}
        self._loaded: dict[str, Any] = {}
        self._problems: dict[str, str | None] = {}

    def name(self, space: str) -> str:
        given = self._given[space]
        return given if isinstance(given, str) else given.name

    def get(self, space: str):
        """The space's encoder (raises the loader's clear error when it has no weights)."""
        if space not in self._loaded:
            given = self._given[space]
            if isinstance(given, str):
                given = _load(space, given, self._paths[space])
            self._loaded[space] = given
        return self._loaded[space]

    @property
    def clip(self):
        return self.get("clip")

    def unavailable(self, space: str) -> str | None:
        """None when the space's weights resolve, else the paragraph saying how to get them."""
        if space not in self._problems:
            try:
                self.get(space).resolve()
                self._problems[space] = None
            except TroveError as exc:
                self._problems[space] = str(exc)
        return self._problems[space]

    def key(self, role: str) -> str:
        """The vector key a role's vectors are stored and indexed under."""
        name = self.name(ROLE_SPACE[role])
        return name + CAPTION_SUFFIX if role == "caption" else name

    def dim(self, role: str) -> int:
        return self.get(ROLE_SPACE[role]).dim


def _load(space: str, name: str, path: str | None):
    from search.models import load_audio_encoder, load_encoder

    if space == "text":
        return _text_encoder(name)
    loader = {"clip": load_encoder, "clap": load_audio_encoder}[space]
    return loader(name, path)


@lru_cache(maxsize=4)
def _text_encoder(name: str):
    from search.models.text import load_text_encoder

    return load_text_encoder(name)
