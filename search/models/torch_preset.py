"""What the torch encoders of a preset share: the device, the embedding width, and a model
built once, on first use, under a lock."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from typing import Self

import torch

from search.models.registry import ModelSpec
from search.models.weights import PresetWeights


class TorchPresetEncoder(PresetWeights, ABC):
    """A preset's torch model, built by `_load` the first time `load` is called. A subclass's
    `_load` sets `self._model` (what marks it loaded) and whatever else it needs beside it."""

    def __init__(
        self,
        spec: ModelSpec,
        model_path: str | os.PathLike | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(spec, model_path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.spec.embed_dim

    def load(self) -> Self:
        with self._lock:
            if self._model is None:
                self._load()
        return self

    @abstractmethod
    def _load(self) -> None:
        """Build the model and set `self._model` and its companions."""
