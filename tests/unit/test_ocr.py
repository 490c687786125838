"""OCR with the real tesseract program on images the tests render."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from search.decode import ocr
from search.decode.ocr import OcrError, ocr_image, ocr_unavailable_reason, words_from_tsv
from tests.media import make_photo
from tests.media_docs import render_text_image


def test_reads_a_known_sentence_from_a_rendered_image(tesseract):
    image = render_text_image(["The quick brown fox jumps", "over the lazy dog 1234"])
    started = time.perf_counter()
    text = ocr_image(image)
    print(f"OCR of a {image.size} sign: {time.perf_counter() - started:.2f} s")
    assert text.splitlines() == ["The quick brown fox jumps", "over the lazy dog 1234"]


def test_small_screenshot_text_is_enlarged_before_reading(tesseract):
    image = render_text_image(["Meeting moved to Thursday"], size=(420, 60), font_size=16)
    assert "Meeting moved to Thursday" in ocr_image(image)


def test_a_photo_without_text_gives_no_words(tmp_path: Path, tesseract):
    photo = Image.open(make_photo(tmp_path / "p.png", 3, size=(640, 480)))
    assert ocr_image(photo) == ""


def test_low_confidence_words_are_dropped():
    header = (
        "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\t"
        "left\ttop\twidth\theight\tconf\ttext"
    )
    rows = [
        "5\t1\t1\t1\t1\t1\t0\t0\t10\t10\t96.1\tInvoice",
        "5\t1\t1\t1\t1\t2\t0\t0\t10\t10\t91.0\t2023",
        "5\t1\t1\t1\t2\t1\t0\t0\t10\t10\t12.5\tq~",  # texture read as a word
        "5\t1\t1\t1\t3\t1\t0\t0\t10\t10\t88.0\tTotal",
        "4\t1\t1\t1\t3\t0\t0\t0\t10\t10\t-1\t",
    ]
    assert words_from_tsv("\n".join([header, *rows])) == "Invoice 2023\nTotal"


def test_missing_tesseract_is_reported_with_the_fix(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    ocr._unavailable_reason.cache_clear()
    try:
        reason = ocr_unavailable_reason()
        assert "apt install tesseract-ocr" in reason
        with pytest.raises(OcrError, match="tesseract"):
            ocr_image(Image.new("RGB", (10, 10)))
    finally:
        ocr._unavailable_reason.cache_clear()


def test_missing_language_data_is_reported(monkeypatch, tesseract):
    monkeypatch.setenv("TROVE_OCR_LANGS", "eng+xyz")
    assert "tesseract-ocr-xyz" in ocr_unavailable_reason()
