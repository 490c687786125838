"""A speech preset with its weights: what the decode workers need to transcribe with it.

Whisper runs inside the isolated decode workers (search/decode/speech.py), not in the
indexer's process, so this holds no model: it finds the CTranslate2 folder (the same lookup
as every other model: --speech-model-path, the bundled pip package, the Hugging Face cache,
download) and says how to run it.
"""

from __future__ import annotations

import os
from functools import lru_cache

from search.decode.isolation import DEFAULT_MEMORY_MIB
from search.decode.speech import DEFAULT_COMPUTE_TYPE, SpeechOptions
from search.models.registry import ModelSpec, get_space_preset
from search.models.weights import PresetWeights


class SpeechModel(PresetWeights):
    """A speech preset and where its weights are; `resolve()` fails with the weights
    paragraph when they are not on this machine."""

    def __init__(self, spec: ModelSpec, model_path: str | os.PathLike | None = None) -> None:
        super().__init__(spec, os.fspath(model_path) if model_path is not None else None)

    @property
    def worker_memory_mib(self) -> int:
        """The decode workers' memory cap this model needs."""
        return max(DEFAULT_MEMORY_MIB, self.spec.worker_memory_mib)

    def options(
        self, cpu_threads: int = 1, compute_type: str = DEFAULT_COMPUTE_TYPE
    ) -> SpeechOptions:
        """How a worker runs this model (finds the weights first)."""
        weights = self.resolve()
        return SpeechOptions(
            model=self.spec.name,
            model_dir=str(weights.path.parent),
            multilingual=self.spec.multilingual,
            compute_type=compute_type,
            cpu_threads=max(1, cpu_threads),
        )


def load_speech_model(name: str, model_path: str | os.PathLike | None = None) -> SpeechModel:
    """The speech preset `name` (UnknownModelError lists the speech presets)."""
    return _speech_model(get_space_preset(name, "speech"), model_path)


@lru_cache(maxsize=4)
def _speech_model(spec: ModelSpec, model_path: str | os.PathLike | None) -> SpeechModel:
    return SpeechModel(spec, model_path)
