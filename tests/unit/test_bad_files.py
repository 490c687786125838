"""Files that cannot be indexed are recorded with a reason and skipped; the run goes on."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from search.decode.image import load_image
from search.errors import BadFileError
from tests.media import make_photo, make_png_bomb


@pytest.fixture
def messy_library(photo_library):
    good = (photo_library / "beach.jpg").read_bytes()
    (photo_library / "empty.jpg").write_bytes(b"")
    (photo_library / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (photo_library / "letter.jpg").write_text("Dear Anna,\nthe photos are attached.\n")
    make_png_bomb(photo_library / "bomb.png")
    make_photo(photo_library / "png-named.jpg", 11, format="PNG")
    return photo_library


def test_bad_files_are_recorded_with_reasons_and_the_rest_indexed(
    messy_library, library, index_run
):
    summary = index_run(messy_library)
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in summary.failed}
    assert set(reasons) == {"empty.jpg", "truncated.jpg", "letter.jpg", "bomb.png"}
    assert "empty (0 bytes)" in reasons["empty.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "not an image: the content is plain text" in reasons["letter.jpg"]
    assert "decompression bomb" in reasons["bomb.png"]
    # The six good photos and the PNG named .jpg are searchable.
    assert summary.indexed == 7
    assert library.catalog.counts() == {"image": 7}
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in library.catalog.failures()) == sorted(reasons)


def test_fixed_bad_file_is_indexed_on_the_next_run(messy_library, library, index_run):
    index_run(messy_library)
    make_photo(messy_library / "empty.jpg", 12, quality=85)
    summary = index_run(messy_library)
    assert summary.indexed == 1
    assert "empty.jpg" not in {p.rsplit("/", 1)[-1] for p, _ in library.catalog.failures()}


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "portrait.jpg"
    im = Image.new("RGB", (300, 200), "white")
    im.paste((255, 0, 0), (0, 0, 150, 200))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    im.save(path, exif=exif, quality=95)
    upright, width, height = load_image(str(path))
    assert (width, height) == upright.size == (200, 300)
    top = np.asarray(upright)[10, 100]
    assert top[0] > 200 and top[1] < 80  # the red half is now on top


def test_transparent_png_is_composited_on_white(tmp_path):
    path = tmp_path / "logo.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(path)
    image, _, _ = load_image(str(path))
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (255, 255, 255)


def test_large_jpeg_is_decoded_in_draft_mode(tmp_path):
    path = make_photo(tmp_path / "big.jpg", 3, size=(4000, 3000), quality=90)
    image, width, height = load_image(str(path), min_side=224)
    assert (width, height) == (4000, 3000)
    assert min(image.size) >= 224 and image.size[0] <= 1000


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"hello world", "text"), (b"\x00\x01\x02\x03garbage", "unrecognised")],
)
def test_sniffing_rejects_non_images(tmp_path, content, message):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(BadFileError, match=message):
        load_image(str(path))


def test_files_the_walk_cannot_take_are_kept_as_failures_until_gone(
    photo_library, library, index_run
):
    """Issue 21 item 5: `status` lists what the catalog keeps, so a named pipe or a
    non-UTF-8 name reported by the run's summary must be kept there too."""
    pipe = photo_library / "camera-feed.jpg"
    os.mkfifo(pipe)
    odd_name = os.path.join(os.fsencode(photo_library), b"caf\xe9.jpg")
    with open(odd_name, "wb") as f:
        f.write((photo_library / "beach.jpg").read_bytes())
    summary = index_run(photo_library)
    assert len(summary.failed) == 2
    assert library.catalog.failures() == sorted(summary.failed)

    pipe.unlink()
    index_run(photo_library)
    assert [p.rsplit("/", 1)[-1] for p, _ in library.catalog.failures()] == ["caf\\xe9.jpg"]
