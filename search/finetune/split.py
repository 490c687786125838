"""Which parts of a model train: a CLIP or CLAP encoder cut into a frozen prefix, whose
outputs are computed once, and a trainable suffix.

What trains:
- "heads" (default): the two projection matrices (image tower -> shared space, text tower
  -> shared space). Both towers stay frozen, so their outputs are computed once and every
  epoch is a few small matrix products: minutes on a laptop CPU for thousands of pairs, and
  with so few parameters (2 x width x dim) a few hundred pairs cannot wreck the towers'
  general knowledge.
- "last-blocks": also the last N transformer blocks of each tower and the final layer
  norms. More capacity (held-out recall@1 19% instead of 12% on the synthetic shape set)
  at several times the cost per epoch.

CLAP presets (transformers ClapModel) train their two projection heads (SplitClap).
The trained tensors are saved as an adapter (search/models/adapters.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from search.decode.audio import load_audio
from search.decode.image import load_image
from search.errors import TroveError
from search.models.clap import TEXT_MAX_TOKENS

FEATURE_BATCH = 32


class SplitClip:
    """An open_clip ViT CLIP cut into a frozen prefix and a trainable suffix.

    `frozen_images`/`frozen_texts` run the prefix once per input (no gradients);
    `images`/`texts` run the trainable suffix from those features to normalised embeddings.
    With blocks=0 the suffix is pooling + projection.
    """

    def __init__(self, encoder, blocks: int = 0) -> None:
        model, name = encoder.model, encoder.name
        check_supported(model, name)
        self.encoder = encoder
        depth = min(len(model.visual.transformer.resblocks), len(model.transformer.resblocks))
        if not 0 <= blocks <= depth:
            raise TroveError(f"--blocks must be between 1 and {depth} for {name}")
        self.model = model
        self.blocks = blocks
        self.names = trainable_names(model, blocks)
        for pname, param in model.named_parameters():
            param.requires_grad_(pname in self.names)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for n, p in self.model.named_parameters() if n in self.names]

    def adapter_state(self) -> dict[str, torch.Tensor]:
        state = self.model.state_dict()
        return {n: state[n].detach().clone().contiguous() for n in self.names}

    def load_adapter_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state, strict=False)

    @property
    def scale(self) -> float:
        """The model's own trained temperature (CLIP's logit scale), capped as in training."""
        return float(self.model.logit_scale.exp().clamp(max=100))

    def decode(self, path: Path) -> torch.Tensor:
        image, _, _ = load_image(str(path), min_side=self.encoder.spec.image_size)
        return self.encoder.preprocess(image)

    @torch.no_grad()
    def frozen_media(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        visual = self.model.visual
        out = []
        for start in range(0, len(decoded), FEATURE_BATCH):
            x = visual._embeds(torch.stack(decoded[start : start + FEATURE_BATCH]))
            for block in _frozen(visual.transformer.resblocks, self.blocks):
                x = block(x)
            out.append(x)
        return torch.cat(out)

    @torch.no_grad()
    def frozen_texts(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, token ids) of `texts`. The ids are cut after the longest text's end
        token: under the causal mask the padding after it changes nothing pooling reads."""
        m = self.model
        tokens = self.encoder.tokenizer(texts)
        tokens = tokens[:, : int(tokens.argmax(-1).max()) + 1]
        length = tokens.shape[1]
        out = []
        for start in range(0, len(tokens), FEATURE_BATCH):
            x = m.token_embedding(tokens[start : start + FEATURE_BATCH])
            x = x + m.positional_embedding[:length]
            for block in _frozen(m.transformer.resblocks, self.blocks):
                x = block(x, attn_mask=m.attn_mask[:length, :length])
            out.append(x)
        return torch.cat(out), tokens

    def media(self, features: torch.Tensor) -> torch.Tensor:
        visual = self.model.visual
        x = features
        for block in _trained(visual.transformer.resblocks, self.blocks):
            x = block(x)
        pooled, _ = visual._pool(x)
        return F.normalize(pooled @ visual.proj, dim=-1)

    def texts(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        m = self.model
        x = features
        length = tokens.shape[1]
        for block in _trained(m.transformer.resblocks, self.blocks):
            x = block(x, attn_mask=m.attn_mask[:length, :length])
        pooled = text_global_pool(m.ln_final(x), tokens, m.text_pool_type)
        return F.normalize(pooled @ m.text_projection, dim=-1)


class SplitClap:
    """A CLAP model (transformers ClapModel) with only its projection heads trained.

    The same interface as SplitClip. Each sound trains and evaluates on its first window
    (CLAP's 10 s input), as a caption usually describes how a recording starts.
    """

    def __init__(self, encoder, blocks: int = 0) -> None:
        if blocks:
            raise TroveError(f"{encoder.name}: CLAP models train their projection heads only.")
        self.encoder = encoder
        # ClapEncoder keeps its model, tokenizer and feature extractor private; training
        # needs the pieces, not the encode API.
        self.model = encoder.load()._model
        self.blocks = 0
        self.names = [
            n
            for n, _ in self.model.named_parameters()
            if n.startswith(("audio_projection.", "text_projection."))
        ]
        for pname, param in self.model.named_parameters():
            param.requires_grad_(pname in self.names)

    parameters = SplitClip.parameters
    adapter_state = SplitClip.adapter_state
    load_adapter_state = SplitClip.load_adapter_state

    @property
    def scale(self) -> float:
        return float(self.model.logit_scale_t.exp().clamp(max=100))

    def decode(self, path: Path):
        clip = load_audio(path, self.encoder.sample_rate)
        return clip.samples[: self.encoder.window_samples]

    @torch.no_grad()
    def frozen_media(self, decoded: list) -> torch.Tensor:
        out = []
        for start in range(0, len(decoded), FEATURE_BATCH):
            inputs = self.encoder._features(
                decoded[start : start + FEATURE_BATCH],
                sampling_rate=self.encoder.sample_rate,
                return_tensors="pt",
            )
            out.append(
                self.model.audio_model(
                    input_features=inputs["input_features"], is_longer=inputs["is_longer"]
                ).pooler_output
            )
        return torch.cat(out)

    @torch.no_grad()
    def frozen_texts(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled text features, row numbers): pooling needs no token ids afterwards."""

        out = []
        for start in range(0, len(texts), FEATURE_BATCH):
            batch = self.encoder._tokenizer(
                texts[start : start + FEATURE_BATCH],
                truncation=True,
                max_length=TEXT_MAX_TOKENS,
                padding=True,
                return_tensors="pt",
            )
            out.append(
                self.model.text_model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).pooler_output
            )
        return torch.cat(out), torch.arange(len(texts))[:, None]

    def media(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.audio_projection(features), dim=-1)

    def texts(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.text_projection(features), dim=-1)


def split_model(encoder, blocks: int):
    """The trainable view of an encoder: SplitClip for CLIP presets, SplitClap for CLAP."""
    return (SplitClap if encoder.space == "clap" else SplitClip)(encoder, blocks)


def check_supported(model: torch.nn.Module, name: str) -> None:
    from open_clip.model import CLIP
    from open_clip.transformer import VisionTransformer

    ok = (
        isinstance(model, CLIP)
        and isinstance(model.visual, VisionTransformer)
        and model.visual.attn_pool is None
        and isinstance(model.visual.proj, torch.nn.Parameter)
        and isinstance(model.text_projection, torch.nn.Parameter)
        and model.text_pool_type == "argmax"
        and model.attn_mask is not None
        and model.visual.transformer.batch_first
        and model.transformer.batch_first
    )
    if not ok:
        raise TroveError(
            f"Fine-tuning {name} is not supported: it trains OpenCLIP ViT models "
            f"(clip-vit-b-32, clip-vit-l-14, tiny-clip)."
        )


def trainable_names(model: torch.nn.Module, blocks: int) -> list[str]:
    prefixes = ["visual.proj", "text_projection"]
    if blocks:
        vision_depth = len(model.visual.transformer.resblocks)
        text_depth = len(model.transformer.resblocks)
        prefixes += [f"visual.transformer.resblocks.{i}." for i in range(vision_depth)][-blocks:]
        prefixes += [f"transformer.resblocks.{i}." for i in range(text_depth)][-blocks:]
        prefixes += ["visual.ln_post.", "ln_final."]
    names = [n for n, _ in model.named_parameters()]
    return [n for n in names if any(n == p or n.startswith(p) for p in prefixes)]


def _frozen(blocks: torch.nn.ModuleList, trained: int):
    return list(blocks)[: len(blocks) - trained]


def _trained(blocks: torch.nn.ModuleList, trained: int):
    return list(blocks)[len(blocks) - trained :]
