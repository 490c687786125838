"""OpenCLIP image and text encoders behind one batched, typed API."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from search.models.registry import CONFIG_DIR, ModelSpec
from search.models.weights import ResolvedWeights, resolve_weights

TEXT_BATCH = 64


class ClipEncoder:
    """CLIP towers for one preset. The model loads on first encode, once.

    `preprocess` needs only the spec, so decoding workers can prepare tensors before (and
    without) the model being loaded. Outputs are L2-normalised float32 rows.
    """

    space = "clip"

    def __init__(
        self,
        spec: ModelSpec,
        model_path: str | os.PathLike | None = None,
        device: str | None = None,
    ) -> None:
        import open_clip

        self.spec = spec
        self.model_path = model_path
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.preprocess = open_clip.image_transform(
            spec.image_size,
            is_train=False,
            mean=spec.mean,
            std=spec.std,
            resize_mode=spec.resize_mode,
            interpolation=spec.interpolation,
        )
        self.weights: ResolvedWeights | None = None
        self._model: torch.nn.Module | None = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dim(self) -> int:
        return self.spec.embed_dim

    def resolve(self) -> ResolvedWeights:
        """Find the weights without loading them (fails fast with the weights message)."""
        if self.weights is None:
            self.weights = resolve_weights(self.spec, self.model_path)
        return self.weights

    def load(self) -> ClipEncoder:
        with self._lock:
            if self._model is None:
                self._model, self._tokenizer = self._build()
        return self

    def _build(self):
        import open_clip

        weights = self.resolve()
        open_clip.add_model_config(CONFIG_DIR)
        with _random_init(self.spec.seed) if weights.path is None else contextlib.nullcontext():
            model = open_clip.create_model(
                self.spec.architecture,
                pretrained=str(weights.path) if weights.path else None,
                device=self.device,
            )
        model.eval()
        if self.spec.reparameterize:
            from timm.utils import reparameterize_model

            model = reparameterize_model(model)
        return model, open_clip.get_tokenizer(self.spec.architecture)

    @torch.inference_mode()
    def encode_image_tensors(self, batch: torch.Tensor) -> np.ndarray:
        """Encode a preprocessed (N, 3, H, W) batch."""
        model = self.load()._model
        features = model.encode_image(batch.to(self.device), normalize=True)
        return features.float().cpu().numpy()

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_image_tensors(torch.stack([self.preprocess(im) for im in images]))

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        model = self.load()._model
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        for start in range(0, len(texts), TEXT_BATCH):
            tokens = self._tokenizer(list(texts[start : start + TEXT_BATCH])).to(self.device)
            out.append(model.encode_text(tokens, normalize=True).float().cpu().numpy())
        return np.concatenate(out)


@contextlib.contextmanager
def _random_init(seed: int | None):
    """Build a tiny model reproducibly without touching the caller's RNG or log."""
    root = logging.getLogger()
    level = root.level
    # open_clip warns "initialized randomly", which is exactly what a tiny preset is.
    root.setLevel(logging.ERROR)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed or 0)
            yield
    finally:
        root.setLevel(level)
