"""Sound-to-sound similarity encoders (transformers): the Audio Spectrogram Transformer for
sound events and wav2vec2 for speech-like audio, behind the batched, typed API of clap.py.

Neither has a text tower: they make the optional "sound" space, which a query sound searches
for similar sounds (search/query_vectors.py) beside CLAP, whose text tower and bridge to the
pictures stay as they are.

Pooling: AST's own pooler (the mean of its [CLS] and distillation tokens, what its AudioSet
classifier reads); wav2vec2 has no pooled output, so the mean of its last hidden states over
the frames of the clip.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from search.errors import TroveError, WeightsNotFoundError
from search.models.clip import _random_init
from search.models.registry import CONFIG_DIR, ModelSpec
from search.models.torch_preset import TorchPresetEncoder

AUDIO_BATCH = 8
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class SoundFamily:
    """What differs between the two architectures."""

    window_s: float
    # A clip shorter than this is repeated up to it: wav2vec2's convolutions need 400 samples
    # before they yield a frame, and a blip of a few ms says little either way.
    min_s: float
    # Whether clips of different lengths may share a batch. wav2vec2-base normalises each
    # convolution channel over time (group norm), so zero padding would change a clip's
    # vector: only clips of one length are batched together. AST's feature extractor pads
    # every clip to its fixed 1024 frames, so any clips batch together.
    pads_to_window: bool


FAMILIES = {
    # 1024 frames of 10 ms: the input length AST was trained on.
    "transformers_ast": SoundFamily(window_s=10.24, min_s=1.0, pads_to_window=True),
    "transformers_wav2vec2": SoundFamily(window_s=10.0, min_s=1.0, pads_to_window=False),
}


class SoundEncoder(TorchPresetEncoder):
    """A sound-similarity model (AST or wav2vec2) for one preset, loaded on first encode.

    `encode_audio` takes mono float32 clips at `sample_rate` (16 kHz), each at most
    `window_s` long; outputs are L2-normalised float32 rows. Runs in fp32.
    """

    space = "sound"

    def __init__(
        self,
        spec: ModelSpec,
        model_path: str | os.PathLike | None = None,
        device: str | None = None,
    ) -> None:
        if spec.family not in FAMILIES:
            raise TroveError(f"{spec.name} is not a sound-similarity model ({spec.family}).")
        super().__init__(spec, model_path, device)
        self.family = FAMILIES[spec.family]
        self._features = None

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def window_s(self) -> float:
        return self.family.window_s

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate * self.window_s))

    def _load(self) -> None:
        self._model, self._features = self._build()

    def _build(self):
        from transformers import (
            ASTConfig,
            ASTFeatureExtractor,
            ASTModel,
            Wav2Vec2Config,
            Wav2Vec2FeatureExtractor,
            Wav2Vec2Model,
        )

        ast = self.spec.family == "transformers_ast"
        model_cls, config_cls = (ASTModel, ASTConfig) if ast else (Wav2Vec2Model, Wav2Vec2Config)
        extractor_cls = ASTFeatureExtractor if ast else Wav2Vec2FeatureExtractor
        weights = self.resolve()
        with warnings.catch_warnings():
            # AST's 128 mel bins over a 400-sample FFT leave one filter empty, as in the
            # published model; transformers warns about it on every load.
            warnings.filterwarnings("ignore", message="At least one mel filter")
            if weights.path is None:
                config = config_cls(**json.loads(self._tiny_config().read_text()))
                with _random_init(self.spec.seed):
                    model = model_cls(config)
                # A tiny model keeps the real front end (the published extractor's settings
                # are the class defaults), so it runs the same features.
                features = extractor_cls()
            else:
                folder = weights.path.parent
                missing = [f for f in self.spec.support_files if not (folder / f).is_file()]
                if missing:
                    raise WeightsNotFoundError(
                        f"The {self.spec.name} weights at {weights.path} lack the files a "
                        f"transformers checkpoint needs beside them: {', '.join(missing)}. Pass "
                        f"--sound-model-path the whole downloaded folder of {self.spec.hf_repo}."
                    )
                model = model_cls.from_pretrained(folder, dtype=torch.float32)
                features = extractor_cls.from_pretrained(folder)
        model.eval().to(self.device)
        return model, features

    def _tiny_config(self) -> Path:
        return CONFIG_DIR / f"{self.spec.architecture}.json"

    @torch.inference_mode()
    def encode_audio(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Encode mono clips at `sample_rate`, each 1 sample to one window long."""
        if not len(clips):
            return np.zeros((0, self.dim), dtype=np.float32)
        for clip in clips:
            if clip.ndim != 1 or not 0 < len(clip) <= self.window_samples:
                raise ValueError(
                    f"encode_audio takes mono clips of 1 to {self.window_samples} samples; "
                    f"got shape {clip.shape}"
                )
        self.load()
        ready = [self._at_least_min(np.asarray(c, dtype=np.float32)) for c in clips]
        out = torch.zeros((len(ready), self.dim), dtype=torch.float32)
        for rows in self._batches(ready):
            out[rows] = self._encode_batch([ready[i] for i in rows]).float().cpu()
        return F.normalize(out, dim=-1).numpy()

    def _at_least_min(self, clip: np.ndarray) -> np.ndarray:
        least = int(self.family.min_s * self.sample_rate)
        return np.resize(clip, least) if len(clip) < least else clip

    def _batches(self, clips: list[np.ndarray]) -> list[list[int]]:
        """Row numbers per batch: in order, or grouped by length where padding would change
        the result."""
        if self.family.pads_to_window:
            groups = [list(range(len(clips)))]
        else:
            by_length: dict[int, list[int]] = {}
            for i, clip in enumerate(clips):
                by_length.setdefault(len(clip), []).append(i)
            groups = list(by_length.values())
        return [g[s : s + AUDIO_BATCH] for g in groups for s in range(0, len(g), AUDIO_BATCH)]

    def _encode_batch(self, batch: list[np.ndarray]) -> torch.Tensor:
        inputs = self._features(batch, sampling_rate=self.sample_rate, return_tensors="pt")
        if self.spec.family == "transformers_ast":
            return self._model(input_values=inputs["input_values"].to(self.device)).pooler_output
        hidden = self._model(input_values=inputs["input_values"].to(self.device))
        return hidden.last_hidden_state.mean(dim=1)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise TroveError(
            f"{self.spec.name} compares sounds with sounds and has no text tower: words search "
            "the sounds through the CLAP model."
        )
