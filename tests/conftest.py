"""Shared fixtures: generated photo libraries, tiny encoders that count their calls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.media import make_photo

# Tests never reach for the hub: weights come from the tests themselves.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def photo_library(tmp_path: Path) -> Path:
    """Six photos in nested folders, JPEG and PNG, plus a hidden folder and a non-media file."""
    root = tmp_path / "photos"
    make_photo(root / "beach.jpg", 1, quality=90)
    make_photo(root / "forest.jpg", 2, quality=90)
    make_photo(root / "2023" / "party.png", 3)
    make_photo(root / "2023" / "snow.jpg", 4, quality=90)
    make_photo(root / "2023" / "summer" / "lake.webp", 5)
    make_photo(root / "2023" / "summer" / "dog.jpg", 6, quality=90)
    make_photo(root / ".thumbnails" / "beach.jpg", 7)
    (root / "settings.ini").write_text("not media: never indexed")
    return root


class CountingEncoder:
    """Wraps a real encoder and counts the images it encodes."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.images_encoded = 0

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def encode_image_tensors(self, batch):
        self.images_encoded += len(batch)
        return self._encoder.encode_image_tensors(batch)


@pytest.fixture
def tiny_encoder():
    from search.models import load_encoder

    return CountingEncoder(load_encoder("tiny-clip"))


@pytest.fixture
def library(tmp_path: Path):
    from search.library import Library

    lib = Library(tmp_path / "data")
    yield lib
    lib.close()


@pytest.fixture
def index_run(library, tiny_encoder):
    """Run the indexer over roots with the counting tiny encoder; returns the summary."""
    from indexers.pipeline import Indexer
    from search.models.encoders import Encoders
    from search.storage.catalog import Root

    def run(*roots: Path, exclude=(), include=(), encoder=None):
        encoders = Encoders(encoder or tiny_encoder, "tiny-clap", "tiny-text")
        indexer = Indexer(library, encoders, batch_size=4, progress=False)
        return indexer.run([Root(str(r), tuple(include), tuple(exclude)) for r in roots])

    return run


@pytest.fixture
def tesseract() -> None:
    """Tesseract with English data is a test requirement (.ci/run installs it): without it
    the tests that read text fail with the reason instead of being skipped."""
    from search.decode.ocr import ocr_unavailable_reason

    assert ocr_unavailable_reason() is None, ocr_unavailable_reason()


@pytest.fixture(scope="session")
def vit_b32_checkpoint(tmp_path_factory) -> Path:
    """Random-weight ViT-B-32 saved as an open_clip .safetensors state dict (no download)."""
    from tests.checkpoints import save_random_vit_b32

    return save_random_vit_b32(tmp_path_factory.mktemp("weights") / "open_clip_model.safetensors")
