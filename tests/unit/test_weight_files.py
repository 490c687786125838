"""A --model-path that is not a checkpoint of the preset is refused naming the file and what
is wrong with it (issue 21 item 4), before any weights load or anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from search.errors import TroveError, WeightsNotFoundError
from search.models import get_preset
from search.models.clip import ClipEncoder
from search.models.weights import resolve_weights, weights_present


@pytest.mark.parametrize("name", ["junk.safetensors", "junk.pt", "junk.bin"])
def test_a_file_that_is_no_checkpoint_is_refused_by_name(tmp_path: Path, name: str) -> None:
    junk = tmp_path / name
    junk.write_text("this is not a checkpoint\n")
    spec = get_preset("clip-vit-b-32")
    with pytest.raises(WeightsNotFoundError, match="not a clip-vit-b-32 checkpoint") as caught:
        resolve_weights(spec, junk, allow_download=False)
    assert str(junk) in str(caught.value) and "\n" not in str(caught.value)
    assert not weights_present(spec, junk)


def test_a_checkpoint_of_another_model_is_refused_by_name(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"layer.weight": torch.zeros(3, 3)}, other)
    encoder = ClipEncoder(get_preset("tiny-clip"), model_path=other)
    assert encoder.resolve().path == other  # a torch file: its content shows only as it loads
    with pytest.raises(TroveError, match="does not fit tiny-clip") as caught:
        encoder.load()
    assert str(other) in str(caught.value)
