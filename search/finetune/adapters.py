"""Which parts of a CLIP model train, and the adapter file that carries them.

An adapter is the trained subset of the model's own state dict (same names and shapes),
saved as safetensors. Applying it loads those tensors over a freshly built base model, so a
fine-tuned preset runs exactly the base's code at the base's speed.

What trains:
- "heads" (default): the two projection matrices (image tower -> shared space, text tower
  -> shared space). Both towers stay frozen, so their outputs are computed once and every
  epoch is a few small matrix products: minutes on a laptop CPU for thousands of pairs, and
  with so few parameters (2 x width x dim) a few hundred pairs cannot wreck the towers'
  general knowledge.
- "last-blocks": also the last N transformer blocks of each tower and the final layer
  norms. More capacity (it learned compositional captions about twice as well in our
  synthetic test) at several times the cost per epoch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

from search.errors import BadFileError, TroveError


class SplitClip:
    """An open_clip ViT CLIP cut into a frozen prefix and a trainable suffix.

    `frozen_images`/`frozen_texts` run the prefix once per input (no gradients);
    `images`/`texts` run the trainable suffix from those features to normalised embeddings.
    With blocks=0 the suffix is pooling + projection.
    """

    def __init__(self, model: torch.nn.Module, name: str, blocks: int = 0) -> None:
        check_supported(model, name)
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

    @torch.no_grad()
    def frozen_images(self, pixels: torch.Tensor) -> torch.Tensor:
        visual = self.model.visual
        x = visual._embeds(pixels)
        for block in _frozen(visual.transformer.resblocks, self.blocks):
            x = block(x)
        return x

    @torch.no_grad()
    def frozen_texts(self, tokens: torch.Tensor) -> torch.Tensor:
        """Features of `tokens`, already cut after the longest text's end token: under the
        causal mask the padding after it changes nothing that pooling reads."""
        m = self.model
        length = tokens.shape[1]
        x = m.token_embedding(tokens) + m.positional_embedding[:length]
        for block in _frozen(m.transformer.resblocks, self.blocks):
            x = block(x, attn_mask=m.attn_mask[:length, :length])
        return x

    def images(self, features: torch.Tensor) -> torch.Tensor:
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


def save_adapter(state: dict[str, torch.Tensor], path: Path) -> str:
    """Write the adapter; returns its sha256 (recorded in the manifest)."""
    from safetensors.torch import save_file

    save_file({k: v.float().contiguous() for k, v in state.items()}, str(path))
    return file_digest(path)


def apply_adapter(model: torch.nn.Module, spec) -> None:
    """Lay the fine-tuned preset's adapter over its freshly built base model."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(spec.adapter)
    except (OSError, SafetensorError) as exc:
        raise BadFileError(f"{spec.name}: unreadable adapter {spec.adapter} ({exc})") from None
    own = model.state_dict()
    misfits = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if misfits:
        raise BadFileError(
            f"{spec.name}: the adapter {spec.adapter} does not fit {spec.base} "
            f"({', '.join(misfits[:3])}); fine-tune it again from {spec.base}."
        )
    model.load_state_dict(state, strict=False)


def adapted_fingerprint(base_fingerprint: str, spec) -> str:
    """The base's fingerprint mixed with the adapter's bytes: re-training under the same
    name gives a new fingerprint, so caches built with the old weights are not reused."""
    return hashlib.sha256(
        f"{base_fingerprint}|{file_digest(Path(spec.adapter))}".encode()
    ).hexdigest()[:16]


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _frozen(blocks: torch.nn.ModuleList, trained: int):
    return list(blocks)[: len(blocks) - trained]


def _trained(blocks: torch.nn.ModuleList, trained: int):
    return list(blocks)[len(blocks) - trained :]
