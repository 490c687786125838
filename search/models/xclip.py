"""X-CLIP (transformers XCLIPModel): a video transformer that embeds a clip of 8 frames with
temporal attention (its cross-frame "MIT" transformer over the frames' CLIP features), and a
text tower of its own for text -> video.

A clip's vector is `get_video_features` (the MIT pooled output); a text's is
`get_text_features`. X-CLIP's video-specific prompting (each text shifted towards each
video before scoring) needs every (text, video) pair and so cannot stand behind an index:
the plain text vector is what an index of clips can be searched with.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from search.errors import WeightsNotFoundError
from search.models.clip import _random_init
from search.models.registry import CONFIG_DIR, ModelSpec
from search.models.torch_preset import TorchPresetEncoder

CLIP_BATCH = 4
TEXT_BATCH = 64
FRAMES = 8
# The preprocessing of microsoft/xclip-base-patch32 (its preprocessor_config.json): CLIP's.
XCLIP_IMAGE_PROCESSING = {
    "size": {"shortest_edge": 224},
    "crop_size": {"height": 224, "width": 224},
    "resample": 3,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
}


class XClipEncoder(TorchPresetEncoder):
    """X-CLIP's video and text towers for one preset, loaded on first encode.

    `encode_clips` takes clips of `frames` RGB frames each (uint8 arrays (H, W, 3), any size:
    they are resized and centre-cropped as X-CLIP was trained); outputs are L2-normalised
    float32 rows. Runs in fp32.
    """

    space = "video"
    frames = FRAMES

    def __init__(
        self,
        spec: ModelSpec,
        model_path: str | os.PathLike | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(spec, model_path, device)
        self._tokenizer = None
        self._images = None

    def _load(self) -> None:
        self._model, self._tokenizer, self._images = self._build()

    def _build(self):
        from transformers import AutoTokenizer, CLIPImageProcessor, XCLIPConfig, XCLIPModel

        from search.models.clap import byte_level_tokenizer

        weights = self.resolve()
        if weights.path is None:
            config = json.loads((CONFIG_DIR / f"{self.spec.architecture}.json").read_text())
            with _random_init(self.spec.seed):
                model = XCLIPModel(XCLIPConfig(**config))
            tokenizer = byte_level_tokenizer()
            size = config["vision_config"]["image_size"]
            images = CLIPImageProcessor(
                **{
                    **XCLIP_IMAGE_PROCESSING,
                    "size": {"shortest_edge": size},
                    "crop_size": {"height": size, "width": size},
                }
            )
        else:
            folder = weights.path.parent
            missing = [f for f in self.spec.support_files if not (folder / f).is_file()]
            if missing:
                raise WeightsNotFoundError(
                    f"The {self.spec.name} weights at {weights.path} lack the files a "
                    f"transformers checkpoint needs beside them: {', '.join(missing)}. Pass "
                    f"--video-model-path the whole downloaded folder of {self.spec.hf_repo}."
                )
            model = XCLIPModel.from_pretrained(folder, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(folder)
            images = CLIPImageProcessor.from_pretrained(folder)
        model.eval().to(self.device)
        return model, tokenizer, images

    @torch.inference_mode()
    def encode_clips(self, clips: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """Encode clips of `frames` frames each."""
        if not len(clips):
            return np.zeros((0, self.dim), dtype=np.float32)
        for clip in clips:
            if len(clip) != self.frames:
                raise ValueError(
                    f"encode_clips takes clips of {self.frames} frames; got {len(clip)}"
                )
        self.load()
        out = []
        for start in range(0, len(clips), CLIP_BATCH):
            batch = clips[start : start + CLIP_BATCH]
            pixels = torch.stack(
                [self._images(list(clip), return_tensors="pt")["pixel_values"] for clip in batch]
            )
            features = self._model.get_video_features(pixel_values=pixels.to(self.device))
            out.append(F.normalize(features.pooler_output.float(), dim=-1).cpu())
        return torch.cat(out).numpy()

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts, shortest first in batches, returned in the order given."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        limit = self._model.config.text_config.max_position_embeddings
        ids = self._tokenizer(list(texts), truncation=True, max_length=limit)["input_ids"]
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
