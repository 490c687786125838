"""Trove's encodings equal open_clip's reference on the real ViT-B-32 architecture.

Random weights (seeded, saved as a checkpoint file) stand in for the pretrained ones, which
cannot be downloaded here; the arithmetic is the same.
"""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from indexers.pipeline import Indexer
from search.models import ClipEncoder, get_preset
from search.models.encoders import Encoders
from search.storage.catalog import Root
from tests.media import make_photo

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference(vit_b32_checkpoint):
    """open_clip's own model, preprocess and tokenizer, configured from open_clip's table."""
    cfg = open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k")
    model, _, preprocess = open_clip.create_model_and_transforms(
        "ViT-B-32",
        pretrained=str(vit_b32_checkpoint),
        image_mean=cfg["mean"],
        image_std=cfg["std"],
        image_interpolation=cfg["interpolation"],
        image_resize_mode=cfg["resize_mode"],
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer("ViT-B-32")


@pytest.fixture(scope="module")
def trove_encoder(vit_b32_checkpoint):
    return ClipEncoder(get_preset("clip-vit-b-32"), vit_b32_checkpoint, "cpu", precision="fp32")


@pytest.fixture(scope="module")
def parity_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parity")
    sizes = [(320, 240), (240, 320), (500, 500), (1024, 200), (64, 48), (224, 224)]
    return [
        Image.open(make_photo(folder / f"{i}.png", i, size)).convert("RGB")
        for i, size in enumerate(sizes)
    ]


PARITY_TEXTS = [
    "a cat",
    "a rocket on a launch pad at night",
    "",
    "ünïcödé 東京 🐕",
    "word " * 100,
    "two dogs playing in the snow next to a red car",
]


def reference_images(reference, images):
    model, preprocess, _ = reference
    with torch.no_grad():
        rows = [model.encode_image(preprocess(im)[None], normalize=True)[0] for im in images]
    return torch.stack(rows).numpy()


def test_image_embeddings_equal_reference(tmp_path, reference, trove_encoder):
    sizes = [(320, 240), (240, 320), (500, 500), (1024, 200), (64, 48), (224, 224)]
    images = [
        Image.open(make_photo(tmp_path / f"{i}.png", i, s)).convert("RGB")
        for i, s in enumerate(sizes)
    ]
    ours = trove_encoder.encode_images(images)
    expected = reference_images(reference, images)
    assert ours.shape == (6, 512)
    np.testing.assert_allclose(ours, expected, atol=TOLERANCE)


def test_text_embeddings_equal_reference(reference, trove_encoder):
    """Also proves the trimmed text path: Trove stops at the longest real text, open_clip
    runs all 77 positions."""
    model, _, tokenizer = reference
    ours = trove_encoder.encode_texts(PARITY_TEXTS)
    with torch.no_grad():
        expected = model.encode_text(tokenizer(PARITY_TEXTS), normalize=True).numpy()
    np.testing.assert_allclose(ours, expected, atol=TOLERANCE)
    single = np.stack([trove_encoder.encode_texts([t])[0] for t in PARITY_TEXTS])
    np.testing.assert_allclose(single, expected, atol=TOLERANCE)


def test_bf16_path_stays_faithful(vit_b32_checkpoint, trove_encoder, parity_images):
    """The fast path (bf16 weights) keeps cosine >= 0.999 to fp32 on the same inputs."""
    fast = ClipEncoder(get_preset("clip-vit-b-32"), vit_b32_checkpoint, "cpu", precision="bf16")
    for ours, exact in (
        (fast.encode_images(parity_images), trove_encoder.encode_images(parity_images)),
        (fast.encode_texts(PARITY_TEXTS), trove_encoder.encode_texts(PARITY_TEXTS)),
    ):
        cosines = (ours * exact).sum(axis=1)
        assert cosines.min() >= 0.999, cosines


def test_indexed_vectors_equal_reference(tmp_path, reference, trove_encoder, library):
    """The whole pipeline (decode threads, batching, catalog blobs) changes nothing."""
    root = tmp_path / "lib"
    paths = [make_photo(root / f"p{i}.png", 20 + i, (300 + 20 * i, 200)) for i in range(5)]
    Indexer(library, Encoders(trove_encoder), batch_size=2, progress=False).run(
        [Root(str(root), (), ())]
    )
    ids, vectors = library.catalog.vectors("clip-vit-b-32")
    by_path = {
        library.catalog.resolve_segments([int(i)])[int(i)][0].path: v
        for i, v in zip(ids, vectors, strict=True)
    }
    ours = np.stack([by_path[str(p)] for p in paths])
    expected = reference_images(reference, [Image.open(p).convert("RGB") for p in paths])
    np.testing.assert_allclose(ours, expected, atol=TOLERANCE)
