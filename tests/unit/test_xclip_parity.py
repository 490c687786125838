"""Trove's X-CLIP encodings equal transformers' reference on microsoft/xclip-base-patch32's
architecture with seeded random weights, saved in the hub repo's layout with CLIP's real
tokenizer (built from the BPE merges open_clip ships).

The reference is the checkpoint's image processor + XCLIPModel.get_video_features for one
clip of 8 frames at a time, and its tokenizer + get_text_features for one text at a time,
normalised; Trove batches clips and pads and sorts texts.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search.models import get_preset
from search.models.xclip import XClipEncoder
from tests.checkpoints import save_random_xclip_base

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4
TEXTS = ["a dog catching a frisbee", "", "people dancing at a wedding", "word " * 100]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from transformers import CLIPImageProcessor, CLIPTokenizer, XCLIPModel

    folder = save_random_xclip_base(tmp_path_factory.mktemp("xclip-base-patch32"))
    model = XCLIPModel.from_pretrained(folder).eval()
    reference = (
        model,
        CLIPImageProcessor.from_pretrained(folder),
        CLIPTokenizer.from_pretrained(folder),
    )
    return XClipEncoder(get_preset("xclip-base-patch32"), folder, "cpu"), reference


def clips(count: int) -> list[list[np.ndarray]]:
    """Clips of 8 frames, each frame a different size and content, one moving square."""
    rng = np.random.default_rng(0)
    out = []
    for c in range(count):
        height, width = [(240, 320), (320, 240), (200, 1024)][c % 3]
        frames = []
        for f in range(8):
            frame = np.full((height, width, 3), 40 * c, dtype=np.uint8)
            frame[20:80, 10 + 20 * f : 70 + 20 * f] = rng.integers(0, 255, 3, dtype=np.uint8)
            frames.append(frame)
        out.append(frames)
    return out


def test_video_embeddings_equal_reference(pair):
    encoder, (model, images, _) = pair
    given = clips(5)
    ours = encoder.encode_clips(given)
    with torch.no_grad():
        expected = []
        for clip in given:
            pixels = images(clip, return_tensors="pt")["pixel_values"][None]
            features = model.get_video_features(pixel_values=pixels).pooler_output
            expected.append(torch.nn.functional.normalize(features, dim=-1)[0].numpy())
    assert ours.shape == (5, 512)
    np.testing.assert_allclose(ours, np.stack(expected), atol=TOLERANCE)
    # The order of the frames counts: the MIT's position embeddings see a reversed clip as
    # another (slightly, with random weights), where mean pooling of frames could not.
    backwards = encoder.encode_clips([given[0][::-1]])[0]
    assert np.abs(backwards - ours[0]).max() > 1e-5


def test_text_embeddings_equal_reference(pair):
    encoder, (model, _, tokenizer) = pair
    ours = encoder.encode_texts(TEXTS)
    with torch.no_grad():
        expected = []
        for text in TEXTS:
            inputs = tokenizer([text], return_tensors="pt", truncation=True, max_length=77)
            features = model.get_text_features(**inputs).pooler_output
            expected.append(torch.nn.functional.normalize(features, dim=-1)[0].numpy())
    np.testing.assert_allclose(ours, np.stack(expected), atol=TOLERANCE)
