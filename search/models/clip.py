"""OpenCLIP image and text encoders behind one batched, typed API."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from search.errors import TroveError
from search.models.adapters import apply_adapter
from search.models.registry import CONFIG_DIR, ModelSpec
from search.models.torch_preset import TorchPresetEncoder
from search.models.weights import (
    text_tower_folder,
    unusable_checkpoint,
)

TEXT_BATCH = 64
# What torch.load and load_state_dict raise for a checkpoint of another model, or a damaged one.
CHECKPOINT_ERRORS = (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def choose_precision(device: torch.device) -> str:
    """bf16 weights where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX), else fp32.

    On such CPUs bf16 GEMMs run at about 2.4x the fp32 rate with embeddings at cosine
    0.9999 to fp32; without native support bf16 is emulated and slower than fp32.
    """
    if device.type != "cpu":
        return "fp32"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16" if native else "fp32"


class ClipEncoder(TorchPresetEncoder):
    """CLIP towers for one preset. The model loads on first encode, once.

    `preprocess` needs only the spec, so decoding workers can prepare tensors before (and
    without) the model being loaded. Outputs are L2-normalised float32 rows.
    `precision` is "auto" (see `choose_precision`), "fp32" or "bf16".
    """

    space = "clip"

    def __init__(
        self,
        spec: ModelSpec,
        model_path: str | os.PathLike | None = None,
        device: str | None = None,
        precision: str = "auto",
    ) -> None:
        import open_clip

        super().__init__(spec, model_path, device)
        if precision == "auto":
            precision = os.environ.get("TROVE_PRECISION") or choose_precision(self.device)
        if precision not in PRECISIONS:
            raise TroveError(
                f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}."
            )
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        self.preprocess = open_clip.image_transform(
            spec.image_size,
            is_train=False,
            mean=spec.mean,
            std=spec.std,
            resize_mode=spec.resize_mode,
            interpolation=spec.interpolation,
        )
        self._tokenizer = None

    def _load(self) -> None:
        self._model, self._tokenizer = self._build()

    def _build(self):
        import open_clip

        weights = self.resolve()
        open_clip.add_model_config(CONFIG_DIR)
        text_folder = text_tower_folder(self.spec, weights.path)
        text_cfg = _local_text_cfg(self.spec.architecture, text_folder)
        with _random_init(self.spec.seed) if weights.path is None else contextlib.nullcontext():
            try:
                model = open_clip.create_model(
                    self.spec.architecture,
                    pretrained=str(weights.path) if weights.path else None,
                    device=self.device,
                    # A transformers text tower is built from its config alone: the
                    # checkpoint (or the seed) supplies its weights.
                    pretrained_text=False,
                    **({"text_cfg": text_cfg} if text_cfg else {}),
                )
            except CHECKPOINT_ERRORS as exc:
                if weights.path is None:
                    raise
                # The file's format was checked as it was found; its content shows only now.
                problem = f"it does not fit {self.spec.name} ({_first_line(exc)})"
                raise unusable_checkpoint(self.spec, weights.path, problem) from None
        model.eval()
        if self.spec.adapter:
            apply_adapter(model, self.spec)
        if self.spec.reparameterize:
            from timm.utils import reparameterize_model

            model = reparameterize_model(model)
        # Whole weights in bf16 (not autocast, which re-casts every op and was measured 3.5x
        # slower here); outputs are normalised in fp32.
        model = model.to(self.dtype)
        if text_cfg:
            from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH, HFTokenizer

            tokenizer = HFTokenizer(
                str(text_folder),
                context_length=text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH),
                **text_cfg.get("tokenizer_kwargs", {}),
            )
        else:
            tokenizer = open_clip.get_tokenizer(self.spec.architecture)
        return model, tokenizer

    @property
    def model(self) -> torch.nn.Module:
        """The loaded open_clip model (fine-tuning trains parts of it)."""
        return self.load()._model

    @property
    def tokenizer(self):
        return self.load()._tokenizer

    @torch.inference_mode()
    def encode_image_tensors(self, batch: torch.Tensor) -> np.ndarray:
        """Encode a preprocessed (N, 3, H, W) batch."""
        model = self.load()._model
        features = model.encode_image(batch.to(self.device, self.dtype))
        return F.normalize(features.float(), dim=-1).cpu().numpy()

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_image_tensors(torch.stack([self.preprocess(im) for im in images]))

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts, shortest first in batches, returned in the order given."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.load()._model
        tokens = self._tokenizer(list(texts)).to(self.device)
        order = torch.argsort(_token_lengths(tokens), stable=True)
        out = torch.zeros((len(texts), self.dim), dtype=torch.float32)
        for start in range(0, len(texts), TEXT_BATCH):
            rows = order[start : start + TEXT_BATCH]
            out[rows] = _encode_text(model, tokens[rows]).float().cpu()
        return F.normalize(out, dim=-1).numpy()


def _local_text_cfg(architecture: str, folder) -> dict | None:
    """The architecture's text config with its Hugging Face text tower and tokenizer read
    from `folder` (open_clip would ask the hub for them by name), or None when it has none."""
    import open_clip

    if folder is None:
        return None
    text_cfg = dict(open_clip.get_model_config(architecture)["text_cfg"])
    text_cfg["hf_tokenizer_name"] = str(folder)
    if "hf_model_name" in text_cfg:
        text_cfg["hf_model_name"] = str(folder)
        text_cfg["hf_model_pretrained"] = False
    return text_cfg


def _token_lengths(tokens: torch.Tensor) -> torch.Tensor:
    """Real length of each tokenised text: the end token has the highest id in CLIP's vocab."""
    return tokens.argmax(dim=-1) + 1


def _encode_text(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's CLIP.encode_text, run only up to the longest real text in the batch.

    Under the causal mask no position attends to a later one, so the padding after the end
    token cannot change the end token's output, which is what argmax pooling returns. A
    typical query is under 16 of the 77 context tokens. Models without a causal mask or with
    another pooling (MobileCLIP's text tower) run open_clip's own encode_text.
    """
    from open_clip.model import CLIP
    from open_clip.transformer import text_global_pool

    trimmable = (
        isinstance(model, CLIP) and model.attn_mask is not None and model.text_pool_type == "argmax"
    )
    if not trimmable:
        return model.encode_text(_trim_hf_padding(model, tokens))
    length = int(_token_lengths(tokens).max())
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(
        cast_dtype
    )
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = text_global_pool(model.ln_final(x), tokens, model.text_pool_type)
    if isinstance(model.text_projection, torch.nn.Linear):
        return model.text_projection(x)
    return x @ model.text_projection


def _trim_hf_padding(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """`tokens` cut after the longest real text, for a transformers text tower (multilingual
    CLIP's XLM-RoBERTa): it masks padding out of attention, positions and pooling, so the
    columns of padding change nothing but cost a full 77-token pass for a short query."""
    from open_clip.hf_model import HFTextEncoder

    text = getattr(model, "text", None)
    if not isinstance(text, HFTextEncoder):
        return tokens
    length = int((tokens != text.config.pad_token_id).sum(dim=1).max())
    return tokens[:, : max(length, 1)]


def _first_line(exc: BaseException, limit: int = 200) -> str:
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return line if len(line) <= limit else line[:limit] + "..."


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
