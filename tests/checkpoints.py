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


# The published architecture configs of the sound-similarity presets (their config.json on
# the hub, less the labels and training-only settings, which the model classes ignore).
AST_AUDIOSET_CONFIG = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "patch_size": 16,
    "qkv_bias": True,
    "frequency_stride": 10,
    "time_stride": 10,
    "max_length": 1024,
    "num_mel_bins": 128,
}
WAV2VEC2_BASE_CONFIG = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "conv_dim": [512, 512, 512, 512, 512, 512, 512],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_bias": False,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "do_stable_layer_norm": False,
}


def save_random_sound_model(folder: Path, family: str, seed: int = 1234) -> Path:
    """MIT/ast-finetuned-audioset-10-10-0.4593 (family "transformers_ast") or
    facebook/wav2vec2-base ("transformers_wav2vec2") in the hub repo's layout: weights,
    config.json and preprocessor_config.json (the published extractor settings, which are the
    classes' defaults)."""
    import torch
    from transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    if family == "transformers_ast":
        model_cls, config, features = (
            ASTModel,
            ASTConfig(**AST_AUDIOSET_CONFIG),
            ASTFeatureExtractor,
        )
    else:
        model_cls, config = Wav2Vec2Model, Wav2Vec2Config(**WAV2VEC2_BASE_CONFIG)
        features = Wav2Vec2FeatureExtractor
    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.save_pretrained(folder)
    features().save_pretrained(folder)
    return folder


# xlm-roberta-base's published config.json (the text tower of mclip-xlmr-b-32).
XLM_ROBERTA_BASE_CONFIG = {
    "vocab_size": 250002,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
TOKENIZER_CHARS = sorted(
    set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,'!?-")
    | set("▁äöüéèñçß東京日本語")
)


def xlm_roberta_tokenizer(folder: Path) -> Path:
    """An XLM-RoBERTa tokenizer (transformers' class, a sentencepiece-style unigram model over
    single characters) with the real special tokens and ids, saved in `folder`: the real
    vocabulary cannot be downloaded here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(c, -1.0) for c in TOKENIZER_CHARS] + [("<mask>", 0.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    ).save_pretrained(folder)
    return folder


def gemma_tokenizer(folder: Path) -> Path:
    """A Gemma tokenizer (transformers' class, the kind SigLIP 2 uses: BPE, '▁' for spaces,
    <pad>=0 <eos>=1 <bos>=2 <unk>=3) over single characters, saved in `folder`."""
    from tokenizers import Tokenizer, models, normalizers
    from transformers import GemmaTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    for c in TOKENIZER_CHARS:
        vocab[c] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    GemmaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
    ).save_pretrained(folder)
    return folder


def save_random_open_clip_with_text_files(
    folder: Path, architecture: str, seed: int = 1234
) -> Path:
    """An open_clip architecture whose text tower or tokenizer comes from Hugging Face
    (xlm-roberta-base-ViT-B-32, ViT-B-16-SigLIP2) with seeded random weights, saved as
    `open_clip_model.safetensors` with the text files beside it: XLM-RoBERTa's published
    config and a locally built tokenizer of the real class. Returns the weight file."""
    import open_clip
    import torch
    from safetensors.torch import save_file
    from transformers import XLMRobertaConfig

    folder.mkdir(parents=True, exist_ok=True)
    text_cfg = dict(open_clip.get_model_config(architecture)["text_cfg"])
    text_cfg["hf_tokenizer_name"] = str(folder)
    if "hf_model_name" in text_cfg:
        XLMRobertaConfig(**XLM_ROBERTA_BASE_CONFIG).save_pretrained(folder)
        xlm_roberta_tokenizer(folder)
        text_cfg.update(hf_model_name=str(folder), hf_model_pretrained=False)
    else:
        gemma_tokenizer(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(architecture, pretrained_text=False, text_cfg=text_cfg)
    path = folder / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def clip_bpe_tokenizer_files(folder: Path) -> Path:
    """CLIP's real BPE tokenizer (the vocabulary X-CLIP uses) as transformers' vocab.json and
    merges.txt, made from the BPE merges open_clip ships: no download."""
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe()) as f:
        merges = f.read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in merges[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n"
    )
    return folder


def save_random_xclip_base(folder: Path, seed: int = 1234) -> Path:
    """microsoft/xclip-base-patch32's architecture (XCLIPConfig's defaults: ViT-B/32 frames,
    8 frames, a 1-layer MIT, 2 prompt layers) with seeded random weights in the hub repo's
    layout: weights, config, CLIP's real tokenizer files and the image processor settings."""
    import torch
    from transformers import CLIPImageProcessor, CLIPTokenizer, XCLIPConfig, XCLIPModel

    from search.models.xclip import XCLIP_IMAGE_PROCESSING

    folder.mkdir(parents=True, exist_ok=True)
    config = XCLIPConfig(vision_config={"patch_size": 32, "num_frames": 8})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = XCLIPModel(config)
    model.save_pretrained(folder)
    clip_bpe_tokenizer_files(folder)
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)
    CLIPImageProcessor(**XCLIP_IMAGE_PROCESSING).save_pretrained(folder)
    return folder
