"""Trove's multilingual CLIP and SigLIP 2 encodings equal open_clip's reference on their real
architectures (xlm-roberta-base-ViT-B-32, ViT-B-16-SigLIP2) with seeded random weights.

What could not be checked here, and why: the real tokenizers (xlm-roberta-base's
sentencepiece vocabulary, SigLIP 2's Gemma vocabulary) live on the Hugging Face hub, which
this machine cannot reach. Each test builds a tokenizer of the same transformers class over a
small vocabulary and writes XLM-RoBERTa's published config beside the checkpoint; Trove and
the reference both read them from there, so what is compared is every model computation, the
preprocessing and the token handling (padding, truncation, pooling), not the vocabulary.
"""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from search.models import ClipEncoder, get_preset
from tests.checkpoints import save_random_open_clip_with_text_files
from tests.media import make_photo

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4
PRESETS = {"mclip-xlmr-b-32": "laion5b_s13b_b90k", "siglip2-vit-b-16": "webli"}
TEXTS = [
    "a dog in the snow",
    "ein Hund im Schnee",
    "東京の夜景",
    "",
    "word " * 100,
    "un chien qui joue près d'une voiture rouge",
]


@pytest.fixture(scope="module", params=sorted(PRESETS))
def pair(request, tmp_path_factory):
    """(Trove's encoder, open_clip's model, preprocess and tokenizer) for one preset."""
    name = request.param
    spec = get_preset(name)
    folder = tmp_path_factory.mktemp(name)
    checkpoint = save_random_open_clip_with_text_files(folder, spec.architecture)
    cfg = open_clip.get_pretrained_cfg(spec.architecture, PRESETS[name])
    text_cfg = dict(open_clip.get_model_config(spec.architecture)["text_cfg"])
    text_cfg["hf_tokenizer_name"] = str(folder)
    if "hf_model_name" in text_cfg:
        text_cfg.update(hf_model_name=str(folder), hf_model_pretrained=False)
    model, _, preprocess = open_clip.create_model_and_transforms(
        spec.architecture,
        pretrained=str(checkpoint),
        image_mean=cfg["mean"],
        image_std=cfg["std"],
        image_interpolation=cfg["interpolation"],
        image_resize_mode=cfg["resize_mode"],
        text_cfg=text_cfg,
    )
    tokenizer = open_clip.tokenizer.HFTokenizer(
        str(folder),
        context_length=text_cfg.get("context_length", 77),
        **text_cfg.get("tokenizer_kwargs", {}),
    )
    encoder = ClipEncoder(spec, checkpoint, "cpu", precision="fp32")
    yield encoder, model.eval(), preprocess, tokenizer
    del encoder, model


def test_image_embeddings_equal_reference(tmp_path, pair):
    encoder, model, preprocess, _ = pair
    sizes = [(320, 240), (240, 320), (1024, 200), (64, 48)]
    images = [
        Image.open(make_photo(tmp_path / f"{i}.png", i, s)).convert("RGB")
        for i, s in enumerate(sizes)
    ]
    ours = encoder.encode_images(images)
    with torch.no_grad():
        expected = [model.encode_image(preprocess(im)[None], normalize=True)[0] for im in images]
    assert ours.shape == (len(images), encoder.dim)
    np.testing.assert_allclose(ours, torch.stack(expected).numpy(), atol=TOLERANCE)


def test_text_embeddings_equal_reference(pair):
    encoder, model, _, tokenizer = pair
    ours = encoder.encode_texts(TEXTS)
    with torch.no_grad():
        expected = [model.encode_text(tokenizer([t]), normalize=True)[0] for t in TEXTS]
    np.testing.assert_allclose(ours, torch.stack(expected).numpy(), atol=TOLERANCE)
    # Different texts get different vectors (the tokenizer is not mapping all to <unk>).
    assert float(ours[0] @ ours[1]) < 0.9999
