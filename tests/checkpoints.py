"""Real architectures with seeded random weights, saved the way their real weights ship:
for parity tests and for benchmarks that need real-size models without a download."""

from __future__ import annotations

import json
from pathlib import Path


def _random_vit_b32_state(seed: int) -> dict:
    import open_clip
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model("ViT-B-32", pretrained=None)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def save_random_vit_b32(path: Path, seed: int = 1234) -> Path:
    """ViT-B-32 as an open_clip `.safetensors` state dict."""
    from safetensors.torch import save_file

    state = _random_vit_b32_state(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def save_random_vit_b32_repo(folder: Path, seed: int = 1234) -> Path:
    """The open_clip files of laion/CLIP-ViT-B-32-laion2B-s34B-b79K, real size: the same
    random ViT-B-32 as `open_clip_model.safetensors` and as the pickled state dict
    `open_clip_pytorch_model.bin`, and `open_clip_config.json` (the architecture and its
    preprocessing). The repo's transformers-format copies are not written: Trove never asks
    for them."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from search.models.registry import OPENAI_MEAN, OPENAI_STD

    state = _random_vit_b32_state(seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "open_clip_model.safetensors"))
    torch.save(state, folder / "open_clip_pytorch_model.bin")
    config = {
        "model_cfg": open_clip.get_model_config("ViT-B-32"),
        "preprocess_cfg": {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)},
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    return folder


def save_random_clap_htsat_unfused(folder: Path, seed: int = 1234) -> Path:
    """laion/clap-htsat-unfused's architecture in the hub repo's layout: weights, config,
    feature extractor and tokenizer files (Trove's byte-level RoBERTa tokenizer, since the
    real vocabulary cannot be downloaded here)."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    from search.models.clap import UNFUSED_FEATURES, byte_level_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    config = ClapConfig(audio_config={"enable_fusion": False})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ClapModel(config)
    model.save_pretrained(folder)
    tokenizer = byte_level_tokenizer()
    tokenizer.save_pretrained(folder)
    # The hub repo also carries the slow-tokenizer files, which the preset requires.
    (folder / "vocab.json").write_text(json.dumps(tokenizer.get_vocab()))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    ClapFeatureExtractor(**UNFUSED_FEATURES).save_pretrained(folder)
    return folder
