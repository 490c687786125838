"""LAION CLAP audio and text encoders (transformers ClapModel) behind one batched, typed API."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from search.errors import WeightsNotFoundError
from search.models.adapters import apply_adapter
from search.models.clip import _random_init
from search.models.registry import CONFIG_DIR, ModelSpec
from search.models.torch_preset import TorchPresetEncoder

AUDIO_BATCH = 8
TEXT_BATCH = 64
# LAION CLAP was trained with texts cut at 77 tokens; longer queries are cut the same way.
TEXT_MAX_TOKENS = 77
# The feature extractor of laion/clap-htsat-unfused (its preprocessor_config.json); a tiny
# model uses the same front end so it exercises the real mel pipeline.
UNFUSED_FEATURES = {
    "feature_size": 64,
    "sampling_rate": 48_000,
    "hop_length": 480,
    "max_length_s": 10,
    "fft_window_size": 1024,
    "frequency_min": 50,
    "frequency_max": 14_000,
    "truncation": "rand_trunc",
    "padding": "repeatpad",
}


class ClapEncoder(TorchPresetEncoder):
    """CLAP towers for one preset. The model loads on first encode, once.

    `encode_audio` takes mono float32 clips at `sample_rate`, each at most `window_s` long
    (cut longer audio with `search.decode.audio.audio_windows`); shorter clips are repeated to
    fill the window, as CLAP was trained. Outputs are L2-normalised float32 rows. CLAP runs
    in fp32: its HTSAT tower has not been checked under bf16.
    """

    space = "clap"

    def __init__(
        self,
        spec: ModelSpec,
        model_path: str | os.PathLike | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(spec, model_path, device)
        self._tokenizer = None
        self._features = None

    @property
    def sample_rate(self) -> int:
        return UNFUSED_FEATURES["sampling_rate"]

    @property
    def window_s(self) -> float:
        return float(UNFUSED_FEATURES["max_length_s"])

    @property
    def window_samples(self) -> int:
        return int(self.sample_rate * self.window_s)

    def _load(self) -> None:
        self._model, self._tokenizer, self._features = self._build()

    def _tiny_config_path(self) -> Path | None:
        path = CONFIG_DIR / f"{self.spec.architecture}.json"
        return path if self.spec.is_tiny and path.is_file() else None

    def _build(self):
        from transformers import AutoTokenizer, ClapConfig, ClapFeatureExtractor, ClapModel

        weights = self.resolve()
        if weights.path is None:
            # The tiny config scales the text tower's random init up 20x: at the default scale
            # an untrained RoBERTa gives every caption nearly the same vector (mean cosine
            # 0.999), leaving nothing for tests of the bridge and calibration to see.
            config = ClapConfig(**json.loads(self._tiny_config_path().read_text()))
            with _random_init(self.spec.seed):
                model = ClapModel(config)
            tokenizer = byte_level_tokenizer()
            features = ClapFeatureExtractor(**UNFUSED_FEATURES)
        else:
            folder = weights.path.parent
            missing = [f for f in self.spec.support_files if not (folder / f).is_file()]
            if missing:
                raise WeightsNotFoundError(
                    f"The {self.spec.name} weights at {weights.path} lack the files a "
                    f"transformers checkpoint needs beside them: {', '.join(missing)}. Pass "
                    f"--model-path the whole downloaded folder of {self.spec.hf_repo}."
                )
            model = ClapModel.from_pretrained(folder, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(folder)
            features = ClapFeatureExtractor.from_pretrained(folder)
        if self.spec.adapter:
            apply_adapter(model, self.spec)
        model.eval().to(self.device)
        return model, tokenizer, features

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
        out = []
        for start in range(0, len(clips), AUDIO_BATCH):
            batch = [np.asarray(c, dtype=np.float32) for c in clips[start : start + AUDIO_BATCH]]
            inputs = self._features(batch, sampling_rate=self.sample_rate, return_tensors="pt")
            features = self._model.get_audio_features(
                input_features=inputs["input_features"].to(self.device),
                is_longer=inputs["is_longer"].to(self.device),
            ).pooler_output
            out.append(F.normalize(features.float(), dim=-1).cpu())
        return torch.cat(out).numpy()

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts, shortest first in batches, returned in the order given."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        encoded = self._tokenizer(list(texts), truncation=True, max_length=TEXT_MAX_TOKENS)
        ids = encoded["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = torch.zeros((len(texts), self.dim), dtype=torch.float32)
        for start in range(0, len(order), TEXT_BATCH):
            rows = order[start : start + TEXT_BATCH]
            batch = self._tokenizer.pad(
                {"input_ids": [ids[i] for i in rows]}, padding=True, return_tensors="pt"
            )
            features = self._model.get_text_features(
                input_ids=batch["input_ids"].to(self.device),
                attention_mask=batch["attention_mask"].to(self.device),
            ).pooler_output
            out[rows] = features.float().cpu()
        return F.normalize(out, dim=-1).numpy()


def byte_level_tokenizer():
    """A RoBERTa tokenizer over single bytes (no merges), for tiny models built offline.

    The real CLAP tokenizer's vocabulary comes with its weights; this one needs no files and
    uses the same special tokens and ids (<s>=0, <pad>=1, </s>=2, <unk>=3).
    """
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in sorted(ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=[])
