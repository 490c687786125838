"""Encoder registry: preset name -> spec -> encoder, with weight resolution."""

from __future__ import annotations

import os
from functools import lru_cache

from search.models.clip import ClipEncoder
from search.models.registry import DEFAULT_CLIP_MODEL, ModelSpec, get_preset, list_presets

__all__ = [
    "DEFAULT_CLIP_MODEL",
    "ClipEncoder",
    "ModelSpec",
    "get_preset",
    "list_presets",
    "load_encoder",
]


@lru_cache(maxsize=4)
def load_encoder(name: str, model_path: str | os.PathLike | None = None) -> ClipEncoder:
    """The encoder for a preset, cached by (name, path). Weights load lazily on first use."""
    spec = get_preset(name)
    return ClipEncoder(spec, model_path)
