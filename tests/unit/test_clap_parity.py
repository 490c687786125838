"""Trove's CLAP encodings equal transformers' reference on the real HTSAT-unfused architecture.

The checkpoint is laion/clap-htsat-unfused's architecture (ClapConfig's defaults, fusion off)
with seeded random weights, saved in the hub's folder layout; the tokenizer is Trove's
byte-level RoBERTa tokenizer, since the real vocabulary cannot be downloaded here. The
reference is ClapProcessor + ClapModel.get_audio_features / get_text_features, one input at a
time, normalised; Trove batches, pads and sorts, so equality is not automatic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search.decode.audio import audio_windows, load_audio
from search.models import ClapEncoder, get_preset
from search.models.clap import TEXT_MAX_TOKENS
from tests.checkpoints import save_random_clap_htsat_unfused
from tests.media_audio import chirp, noise_burst, speech, tone, write_audio

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4
PARITY_TEXTS = [
    "a dog barking",
    "rain falling on a tin roof at night",
    "",
    "ünïcödé 東京 🐕",
    "word " * 100,
    "church bells ringing",
]


@pytest.fixture(scope="module")
def clap_checkpoint(tmp_path_factory):
    """Random-weight HTSAT-unfused saved like the hub repo: weights, config, tokenizer files."""
    return save_random_clap_htsat_unfused(tmp_path_factory.mktemp("clap-htsat-unfused"))


@pytest.fixture(scope="module")
def reference(clap_checkpoint):
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(clap_checkpoint).eval()
    return model, ClapProcessor.from_pretrained(clap_checkpoint)


@pytest.fixture(scope="module")
def trove_encoder(clap_checkpoint):
    return ClapEncoder(get_preset("clap-htsat-unfused"), clap_checkpoint, "cpu")


@pytest.fixture(scope="module")
def parity_clips(tmp_path_factory):
    """Tones, a chirp, a noise burst, speech and a window cut from a longer file, at 48 kHz."""
    folder = tmp_path_factory.mktemp("parity-audio")
    long_file = write_audio(
        folder / "long.flac", np.concatenate([tone(330, 7), chirp(300, 3000, 8), tone(880, 3)])
    )
    spoken = load_audio(speech("the quick brown fox jumps over the lazy dog", folder / "s.wav"))
    windows = audio_windows(load_audio(long_file).samples, 48_000)
    return [
        tone(440, 10, 48_000),
        chirp(100, 8000, 3, 48_000),
        noise_burst(0.5, 3, 48_000),
        spoken.samples,
        windows[-1].samples,
    ]


def test_audio_embeddings_equal_reference(reference, trove_encoder, parity_clips):
    model, processor = reference
    ours = trove_encoder.encode_audio(parity_clips)
    with torch.no_grad():
        expected = []
        for clip in parity_clips:
            inputs = processor(audio=clip, sampling_rate=48_000, return_tensors="pt")
            features = model.get_audio_features(**inputs).pooler_output
            expected.append(torch.nn.functional.normalize(features, dim=-1)[0].numpy())
    assert ours.shape == (len(parity_clips), 512) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, np.stack(expected), atol=TOLERANCE)


def test_text_embeddings_equal_reference(reference, trove_encoder):
    model, processor = reference
    ours = trove_encoder.encode_texts(PARITY_TEXTS)
    with torch.no_grad():
        expected = []
        for text in PARITY_TEXTS:
            inputs = processor(
                text=[text], return_tensors="pt", truncation=True, max_length=TEXT_MAX_TOKENS
            )
            features = model.get_text_features(**inputs).pooler_output
            expected.append(torch.nn.functional.normalize(features, dim=-1)[0].numpy())
    assert ours.shape == (len(PARITY_TEXTS), 512)
    np.testing.assert_allclose(ours, np.stack(expected), atol=TOLERANCE)


def test_encodings_are_deterministic_and_normalised(trove_encoder, parity_clips):
    a = trove_encoder.encode_audio(parity_clips[:2])
    b = trove_encoder.encode_audio(parity_clips[:2])
    assert np.array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
