"""Encoder registry: preset name -> spec -> encoder, with weight resolution.

Importing this package loads no torch: the encoder classes (clip.py, clap.py) import torch,
so they are imported when an encoder is first built or `ClipEncoder`/`ClapEncoder` is first
named, and `app.py` can list presets and parse its arguments without paying for torch.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import TYPE_CHECKING

from search.models.registry import (
    DEFAULT_AUDIO_MODEL,
    DEFAULT_CLIP_MODEL,
    ModelSpec,
    add_preset_source,
    get_preset,
    get_space_preset,
    list_presets,
)
from search.models.user_presets import UserPresets

if TYPE_CHECKING:
    from search.models.clap import ClapEncoder
    from search.models.clip import ClipEncoder
    from search.models.sound_similarity import SoundEncoder
    from search.models.xclip import XClipEncoder

# Fine-tuned presets live in the data folder in use; every import of a model module runs this
# first.
USER_PRESETS = UserPresets()
add_preset_source(USER_PRESETS)

__all__ = [
    "DEFAULT_AUDIO_MODEL",
    "DEFAULT_CLIP_MODEL",
    "ClapEncoder",
    "ClipEncoder",
    "ModelSpec",
    "SoundEncoder",
    "XClipEncoder",
    "get_preset",
    "list_presets",
    "load_audio_encoder",
    "load_encoder",
    "load_sound_encoder",
    "load_video_encoder",
    "presets_from",
]


def __getattr__(name: str):
    # The encoder classes import torch; they load when first named, not with the package.
    if name == "ClipEncoder":
        from search.models.clip import ClipEncoder

        return ClipEncoder
    if name == "ClapEncoder":
        from search.models.clap import ClapEncoder

        return ClapEncoder
    if name == "SoundEncoder":
        from search.models.sound_similarity import SoundEncoder

        return SoundEncoder
    if name == "XClipEncoder":
        from search.models.xclip import XClipEncoder

        return XClipEncoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def presets_from(data_dir: str | os.PathLike | None) -> AbstractContextManager[None]:
    """While the block runs, fine-tuned presets are those in `data_dir`'s models folder
    (None: the default data folder's). Each command runs inside one for its --data-dir."""
    return USER_PRESETS.using(data_dir)


def load_encoder(name: str, model_path: str | os.PathLike | None = None) -> ClipEncoder:
    """The encoder for a preset, cached by (preset, path). Weights load lazily on first use."""
    return _clip_encoder(get_space_preset(name, "clip"), model_path)


def load_audio_encoder(name: str, model_path: str | os.PathLike | None = None) -> ClapEncoder:
    """The CLAP encoder for a preset, cached by (preset, path). Weights load lazily on first use."""
    return _clap_encoder(get_space_preset(name, "clap"), model_path)


def load_sound_encoder(name: str, model_path: str | os.PathLike | None = None) -> SoundEncoder:
    """The sound-similarity encoder (AST, wav2vec2) for a preset, cached by (preset, path)."""
    return _sound_encoder(get_space_preset(name, "sound"), model_path)


def load_video_encoder(name: str, model_path: str | os.PathLike | None = None) -> XClipEncoder:
    """The video-clip encoder (X-CLIP) for a preset, cached by (preset, path)."""
    return _video_encoder(get_space_preset(name, "video"), model_path)


# Cached by the whole spec, not the name: two data folders may each hold a fine-tuned preset
# of the same name with different adapters.
@lru_cache(maxsize=4)
def _clip_encoder(spec: ModelSpec, model_path: str | os.PathLike | None) -> ClipEncoder:
    from search.models.clip import ClipEncoder

    return ClipEncoder(spec, model_path)


@lru_cache(maxsize=4)
def _clap_encoder(spec: ModelSpec, model_path: str | os.PathLike | None) -> ClapEncoder:
    from search.models.clap import ClapEncoder

    return ClapEncoder(spec, model_path)


@lru_cache(maxsize=2)
def _sound_encoder(spec: ModelSpec, model_path: str | os.PathLike | None) -> SoundEncoder:
    from search.models.sound_similarity import SoundEncoder

    return SoundEncoder(spec, model_path)


@lru_cache(maxsize=2)
def _video_encoder(spec: ModelSpec, model_path: str | os.PathLike | None) -> XClipEncoder:
    from search.models.xclip import XClipEncoder

    return XClipEncoder(spec, model_path)
