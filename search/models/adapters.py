"""The adapter file that carries a fine-tuned preset's trained weights.

An adapter is the trained subset of the model's own state dict (same names and shapes),
saved as safetensors. Applying it loads those tensors over a freshly built base model, so a
fine-tuned preset runs exactly the base's code at the base's speed. Which tensors train is
decided by the fine-tuning (search/finetune/split.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from search.errors import BadFileError
from search.models.weights import file_digest


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
