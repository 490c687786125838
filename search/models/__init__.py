"""Encoder registry: preset name -> spec -> encoder, with weight resolution."""

from __future__ import annotations

import os
from functools import lru_cache

from search.errors import UnknownModelError
from search.models.clap import ClapEncoder
from search.models.clip import ClipEncoder
from search.models.registry import (
    DEFAULT_AUDIO_MODEL,
    DEFAULT_CLIP_MODEL,
    ModelSpec,
    add_preset_source,
    get_preset,
    list_presets,
)
from search.models.user_presets import UserPresets

# Fine-tuned presets live in the data folder; every import of a model module runs this first.
add_preset_source(UserPresets())

__all__ = [
    "DEFAULT_AUDIO_MODEL",
    "DEFAULT_CLIP_MODEL",
    "ClapEncoder",
    "ClipEncoder",
    "ModelSpec",
    "get_preset",
    "list_presets",
    "load_audio_encoder",
    "load_encoder",
]


@lru_cache(maxsize=4)
def load_encoder(name: str, model_path: str | os.PathLike | None = None) -> ClipEncoder:
    """The encoder for a preset, cached by (name, path). Weights load lazily on first use."""
    spec = get_preset(name)
    return ClipEncoder(spec, model_path)


@lru_cache(maxsize=4)
def load_audio_encoder(name: str, model_path: str | os.PathLike | None = None) -> ClapEncoder:
    """The CLAP encoder for a preset, cached by (name, path). Weights load lazily on first use."""
    spec = get_preset(name)
    if spec.space != "clap":
        raise UnknownModelError(
            f"{name} is not an audio model. Audio presets: "
            + ", ".join(s.name for s in list_presets() if s.space == "clap")
            + "."
        )
    return ClapEncoder(spec, model_path)
