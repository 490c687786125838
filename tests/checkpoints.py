"""Real architectures with seeded random weights, saved the way their real weights ship:
for parity tests and for benchmarks that need real-size models without a download."""

from __future__ import annotations

import json
from pathlib import Path


def save_random_vit_b32(path: Path, seed: int = 1234) -> Path:
    """ViT-B-32 as an open_clip `.safetensors` state dict."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model("ViT-B-32", pretrained=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


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
