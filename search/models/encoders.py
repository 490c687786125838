"""The encoders one library works with: one model per embedding space, loaded on first use.

Spaces: `clip` (photos and video frames; the CLIP text tower also embeds document chunks so
a photo finds the text that describes it), `clap` (sound), `text` (sentence meaning of
document chunks and text found in images) and, when a library chooses one, `sound` (a
sound-to-sound similarity model, AST or wav2vec2, for sound files searched by a sound) and
`video` (X-CLIP: clips of 8 video frames, searched by words through its own text tower).
Each vector is stored under a key: the model's name, or for CLIP's text tower the model's
name + ":text", so the indexes of photos and of text chunks stay apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from search.errors import TroveError
from search.models import (
    load_audio_encoder,
    load_encoder,
    load_sound_encoder,
    load_video_encoder,
)
from search.models.registry import DEFAULT_AUDIO_MODEL, get_space_preset
from search.models.text import DEFAULT_TEXT_MODEL, load_text_encoder

if TYPE_CHECKING:
    from search.models.clip import ClipEncoder

SPACES = ("clip", "clap", "text", "sound", "video")
# What an encoder input is, per role, and the space whose model encodes it.
ROLE_SPACE = {
    "image": "clip",
    "caption": "clip",
    "audio": "clap",
    "sentence": "text",
    "sound": "sound",
    "frames": "video",
}
CAPTION_SUFFIX = ":text"


def model_keys(name: str) -> tuple[str, str]:
    """The vector keys a model's vectors can be stored under."""
    return (name, name + CAPTION_SUFFIX)


def meta_key(space: str) -> str:
    """The catalog meta entry that records which model a library uses in `space`."""
    return f"model.{space}"


@runtime_checkable
class Encoder(Protocol):
    """What every model Trove encodes with offers, whatever its space: CLIP (clip.py), CLAP
    (clap.py), the sentence encoders and the remote client (text.py). Each space's own
    inputs (pictures, sounds) have their own methods on the classes that take them.

    Runtime-checkable so tests can hold each class to it; on Python 3.11 an isinstance check
    runs the properties (`fingerprint` finds the weights), so product code does not use one.
    """

    @property
    def name(self) -> str:
        """The canonical name, which keys the model's vectors and indexes."""
        ...

    @property
    def dim(self) -> int:
        """The length of its vectors."""
        ...

    @property
    def fingerprint(self) -> str:
        """A short id that changes whenever the weights do (caches derived from the model
        are kept under it)."""
        ...

    def resolve(self) -> object:
        """Find the weights (or reach the endpoint) without loading the model; raises a
        TroveError that says how to get them."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) L2-normalised float32 rows, in the order given."""
        ...


class Encoders:
    """One encoder per space. Each is an encoder object or a model name, loaded when first
    asked for; `unavailable(space)` says why a space cannot be used (missing weights)
    without raising, so an index run can go on with the other kinds of files. The `sound`
    and `video` spaces are optional: without a model (None) they are not used at all."""

    def __init__(
        self,
        clip: Encoder | str,
        clap: Encoder | str | None = None,
        text: Encoder | str | None = None,
        *,
        sound: Encoder | str | None = None,
        video: Encoder | str | None = None,
        clip_path: str | None = None,
        clap_path: str | None = None,
        sound_path: str | None = None,
        video_path: str | None = None,
    ) -> None:
        self._given: dict[str, Encoder | str | None] = {
            "clip": clip,
            "clap": clap or DEFAULT_AUDIO_MODEL,
            "text": text or DEFAULT_TEXT_MODEL,
            "sound": sound,
            "video": video,
        }
        self._paths = {
            "clip": clip_path,
            "clap": clap_path,
            "text": None,
            "sound": sound_path,
            "video": video_path,
        }
        self._loaded: dict[str, Encoder] = {}
        self._problems: dict[str, str | None] = {}

    def name(self, space: str) -> str | None:
        """The space's model name (None: an optional space with no model)."""
        given = self._given[space]
        return given if given is None or isinstance(given, str) else given.name

    def check(self) -> None:
        """Raise UnknownModelError, loading nothing, when a model named for a space is not a
        model of that space (a sound model given as the picture model, a misspelt name): an
        index run checks this before it records any model or vector."""
        for space, given in self._given.items():
            if isinstance(given, str):
                check_model(space, given)

    def get(self, space: str) -> Encoder:
        """The space's encoder (raises the loader's clear error when it has no weights)."""
        if space not in self._loaded:
            given = self._given[space]
            if given is None:
                raise TroveError(f"No {space} model was chosen for this library.")
            if isinstance(given, str):
                given = _load(space, given, self._paths[space])
            self._loaded[space] = given
        return self._loaded[space]

    @property
    def clip(self) -> ClipEncoder:
        """The CLIP encoder, which also takes pictures (`encode_image_tensors`)."""
        return self.get("clip")

    def unavailable(self, space: str) -> str | None:
        """None when the space's weights resolve (found here, or fetched as `resolve` does:
        a first index run downloads the models it needs), else the paragraph saying how to
        get them. An optional space with no model has no problem: it is simply not used."""
        if self._given[space] is None:
            return None
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

    def __getstate__(self) -> dict:
        """Pickled for another process (a Ray actor, indexers/ray_runner.py), an Encoders
        carries the models chosen, not those loaded here: each process loads its own once."""
        state = self.__dict__.copy()
        state["_loaded"], state["_problems"] = {}, {}
        return state


def check_model(space: str, name: str) -> None:
    """Raise UnknownModelError, loading nothing, unless `name` names a model of `space`."""
    if space == "text":
        _text_encoder(name)  # builds nothing yet: the name is parsed, no weights load
    else:
        get_space_preset(name, space)


def _load(space: str, name: str, path: str | None) -> Encoder:
    if space == "text":
        return _text_encoder(name)
    loader = {
        "clip": load_encoder,
        "clap": load_audio_encoder,
        "sound": load_sound_encoder,
        "video": load_video_encoder,
    }[space]
    return loader(name, path)


@lru_cache(maxsize=4)
def _text_encoder(name: str) -> Encoder:
    return load_text_encoder(name)
