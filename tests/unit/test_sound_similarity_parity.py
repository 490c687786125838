"""Trove's AST and wav2vec2 sound vectors equal transformers' reference on the real
architectures (MIT/ast-finetuned-audioset-10-10-0.4593, facebook/wav2vec2-base) with seeded
random weights, saved in the hub repos' folder layout.

The reference is the feature extractor + model, one clip at a time, with Trove's pooling
(AST's pooler output; the mean of wav2vec2's last hidden states), normalised. Trove batches
(AST: clips of any length together; wav2vec2: clips of one length together), so equality is
not automatic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search.decode.audio import audio_windows, load_audio
from search.models import get_preset
from search.models.sound_similarity import SoundEncoder
from tests.checkpoints import save_random_sound_model
from tests.media_audio import chirp, noise_burst, speech, tone, write_audio

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4
RATE = 16_000
PRESETS = {"ast-audioset": "transformers_ast", "wav2vec2-base": "transformers_wav2vec2"}


@pytest.fixture(scope="module")
def parity_clips(tmp_path_factory):
    """Tones, a chirp, a noise burst, speech and full windows cut from a longer file, 16 kHz;
    two clips share a length, so wav2vec2 batches them together."""
    folder = tmp_path_factory.mktemp("parity-audio")
    long_file = write_audio(
        folder / "long.flac", np.concatenate([tone(330, 7), chirp(300, 3000, 8), tone(880, 3)])
    )
    spoken = load_audio(
        speech("the quick brown fox jumps over the lazy dog", folder / "s.wav"), RATE
    )
    windows = audio_windows(load_audio(long_file, RATE).samples, RATE, 10.0)
    return [
        tone(440, 3, RATE),
        chirp(100, 7000, 3, RATE),
        noise_burst(1.5, 3, RATE),
        spoken.samples,
        windows[0].samples,
        windows[-1].samples,
    ]


@pytest.fixture(scope="module", params=sorted(PRESETS))
def pair(request, tmp_path_factory):
    """(preset, Trove's encoder, reference model, reference feature extractor)."""
    from transformers import AutoFeatureExtractor, AutoModel

    name = request.param
    folder = save_random_sound_model(tmp_path_factory.mktemp(name), PRESETS[name])
    model = AutoModel.from_pretrained(folder).eval()
    return (
        name,
        SoundEncoder(get_preset(name), folder, "cpu"),
        model,
        AutoFeatureExtractor.from_pretrained(folder),
    )


def reference_vectors(name, model, extractor, clips) -> np.ndarray:
    rows = []
    with torch.no_grad():
        for clip in clips:
            inputs = extractor(clip, sampling_rate=RATE, return_tensors="pt")
            out = model(**inputs)
            pooled = out.pooler_output if name == "ast-audioset" else out.last_hidden_state.mean(1)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1)[0].numpy())
    return np.stack(rows)


def test_sound_vectors_equal_reference(pair, parity_clips):
    name, encoder, model, extractor = pair
    ours = encoder.encode_audio(parity_clips)
    assert ours.shape == (len(parity_clips), 768) and ours.dtype == np.float32
    np.testing.assert_allclose(
        ours, reference_vectors(name, model, extractor, parity_clips), atol=TOLERANCE
    )
    # Not a constant: distinct sounds get distinct vectors.
    assert float(ours[0] @ ours[2]) < 0.9999


def test_a_clip_under_a_second_is_repeated_to_one(pair):
    name, encoder, model, extractor = pair
    blip = tone(1000, 0.2, RATE)
    expected = reference_vectors(name, model, extractor, [np.resize(blip, RATE)])
    np.testing.assert_allclose(encoder.encode_audio([blip]), expected, atol=TOLERANCE)
