"""Reading documents: encodings, Markdown, HTML, subtitles, PDFs (text layer, scanned,
encrypted, fake), and cutting them into chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.decode.documents import (
    CHUNK_OVERLAP_WORDS,
    CHUNK_WORDS,
    Cue,
    Document,
    chunk_document,
    load_document,
)
from search.errors import BadFileError
from tests.media_docs import (
    make_encrypted_pdf,
    make_html,
    make_scanned_pdf,
    make_srt,
    make_text_pdf,
    make_vtt,
    render_text_image,
)

SENTENCE = "Crème brûlée needs a blowtorch — or a very hot grill, façade aside."


@pytest.mark.parametrize(
    "encoded",
    [
        b"\xef\xbb\xbf" + SENTENCE.encode("utf-8"),  # UTF-8 with BOM (Windows Notepad)
        SENTENCE.encode("utf-8"),
        SENTENCE.encode("utf-16"),  # with BOM
        SENTENCE.encode("utf-16-le"),  # without BOM
        SENTENCE.replace("—", "-").encode("latin-1"),
        SENTENCE.encode("cp1252"),  # the em dash is 0x97 there
    ],
    ids=["utf8-bom", "utf8", "utf16-bom", "utf16le-no-bom", "latin1", "cp1252"],
)
def test_text_files_decode_whatever_their_encoding(tmp_path: Path, encoded: bytes):
    path = tmp_path / "note.txt"
    path.write_bytes(encoded)
    doc = load_document(path)
    assert doc.text.replace("-", "—") == SENTENCE
    assert not doc.text.startswith("\ufeff")


def test_binary_data_named_txt_is_a_bad_file(tmp_path: Path):
    path = tmp_path / "photo.txt"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(BadFileError, match="binary data"):
        load_document(path)


def test_markdown_loses_its_markup_and_keeps_its_heading_as_title(tmp_path: Path):
    path = tmp_path / "recipe.md"
    path.write_text(
        "---\nlayout: post\n---\n# Tomato *soup*\n\n- two **ripe** tomatoes\n"
        "- see [the shop](https://example.org)\n\n```\ncode fence\n```\n",
        encoding="utf-8",
    )
    doc = load_document(path)
    assert doc.title == "Tomato *soup*"
    assert "two ripe tomatoes" in doc.text
    assert "see the shop" in doc.text
    assert "https://" not in doc.text and "layout" not in doc.text and "```" not in doc.text


def test_html_gives_the_visible_text_only(tmp_path: Path):
    path = make_html(
        tmp_path / "page.html",
        "Harbour walk",
        ["Boats leave at nine.", "Tickets cost &euro;5 &amp; children go free."],
        charset="iso-8859-1",
    )
    doc = load_document(path)
    assert doc.title == "Harbour walk"
    assert "Boats leave at nine." in doc.text
    assert "Tickets cost €5 & children go free." in doc.text
    assert "a photo of the harbour" in doc.text  # alt text is what the image says
    assert "tracking" not in doc.text and "color" not in doc.text
    assert "Home" not in doc.text  # the navigation menu


CUES = [
    (1.0, 3.5, "Welcome back to the kitchen."),
    (4.0, 7.25, "Today we bake bread with a sourdough starter."),
    (8.0, 12.0, "Mix the flour and water, then wait."),
    (61.0, 64.5, "An hour later the dough has doubled."),
]


@pytest.mark.parametrize("make", [make_srt, make_vtt], ids=["srt", "vtt"])
def test_subtitles_keep_their_cue_times(tmp_path: Path, make):
    path = make(tmp_path / f"show.{make.__name__[-3:]}", CUES)
    doc = load_document(path)
    assert [(c.start_s, c.end_s, c.text) for c in doc.cues] == CUES
    assert "NOTE" not in doc.text and "<i>" not in doc.text and "Narrator" not in doc.text
    chunks = chunk_document(doc)
    assert chunks[0].start_s == 1.0
    assert chunks[-1].end_s == 64.5
    # The gap of nearly a minute exceeds a chunk's 30 s span: the last cue starts a new chunk
    # alone (the cue before it is too far back to be its context).
    assert [(c.start_s, c.end_s) for c in chunks] == [(1.0, 12.0), (61.0, 64.5)]
    assert chunks[-1].text == "An hour later the dough has doubled."
    assert all(c.page is None for c in chunks)


def test_a_vtt_without_its_header_is_a_bad_file(tmp_path: Path):
    path = tmp_path / "broken.vtt"
    path.write_text("00:00:01.000 --> 00:00:02.000\nhello\n")
    with pytest.raises(BadFileError, match="WEBVTT"):
        load_document(path)


def test_pdf_with_a_text_layer(tmp_path: Path):
    path = make_text_pdf(
        tmp_path / "invoice-2023.pdf",
        ["Invoice 2023-0042\nConsulting services for March.", "Total due: 2,108.00 EUR"],
        title="Invoice 2023-0042",
    )
    doc = load_document(path)
    assert doc.title == "Invoice 2023-0042"
    assert doc.info["pages"] == 2
    assert "Consulting services for March." in doc.pages[0]
    assert "Total due: 2,108.00 EUR" in doc.pages[1]
    assert doc.notice is None
    assert [c.page for c in chunk_document(doc)] == [1]


def test_scanned_pdf_says_no_text_layer_without_ocr(tmp_path: Path):
    path = make_scanned_pdf(tmp_path / "scan.pdf", render_text_image(["Parking permit 7781"]))
    doc = load_document(path)
    assert doc.text == ""
    assert doc.notice.startswith("no text layer")
    assert chunk_document(doc) == []


@pytest.mark.slow
def test_scanned_pdf_is_read_by_ocr_of_the_rendered_page(tmp_path: Path, tesseract):
    from search.decode.ocr import ocr_image

    image = render_text_image(["Parking permit 7781", "valid until December"], (1400, 300))
    doc = load_document(make_scanned_pdf(tmp_path / "scan.pdf", image), ocr=ocr_image)
    assert "Parking permit 7781" in doc.text
    assert doc.info["ocr_pages"] == 1 and doc.notice is None


def test_a_page_ocr_fails_on_is_reported_and_the_rest_kept(tmp_path: Path):
    from search.decode.ocr import OcrError

    def broken_ocr(image):
        raise OcrError("tesseract failed: out of memory")

    path = make_scanned_pdf(tmp_path / "scan.pdf", render_text_image(["Parking permit"]))
    doc = load_document(path, ocr=broken_ocr)
    assert doc.text == ""
    assert doc.notice == "OCR failed on 1 pages (page 1: tesseract failed: out of memory)"


def test_encrypted_pdfs(tmp_path: Path):
    plain = make_text_pdf(tmp_path / "plain.pdf", ["Salary statement for October."])
    # Only an owner password (printing/copying restrictions): readable without asking anyone.
    restricted = make_encrypted_pdf(tmp_path / "restricted.pdf", plain, "", "owner-secret")
    assert "Salary statement" in load_document(restricted).text
    locked = make_encrypted_pdf(tmp_path / "locked.pdf", plain, "user-secret", "owner-secret")
    with pytest.raises(BadFileError, match="needs a password"):
        load_document(locked)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty"),
        (b"<html><body>Not a PDF</body></html>", "not a PDF"),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog", "corrupt PDF"),
    ],
)
def test_files_named_pdf_that_are_not_readable_pdfs(tmp_path: Path, content, reason):
    path = tmp_path / "file.pdf"
    path.write_bytes(content)
    with pytest.raises(BadFileError, match=reason):
        load_document(path)


def test_chunks_overlap_and_respect_the_size_limit():
    sentences = [
        f"Sentence number {i} talks about topic {i} in eleven words total." for i in range(60)
    ]
    doc = Document(text=" ".join(sentences))
    chunks = chunk_document(doc)
    assert len(chunks) > 1
    assert all(len(c.text.split()) <= CHUNK_WORDS for c in chunks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        shared = set(before.text.split(".")[-3:]) & set(after.text.split(".")[:3])
        assert shared - {""}, "consecutive chunks share their border sentences"
        assert len(after.text.split()) > CHUNK_OVERLAP_WORDS
    # Every sentence is whole in at least one chunk.
    assert all(any(s in c.text for c in chunks) for s in sentences)


@pytest.mark.parametrize("length", [121, 250, 300])  # 300: the last cut ends at the end
def test_a_sentence_longer_than_a_chunk_is_cut_with_overlap(length):
    words = [f"w{i}" for i in range(length)]
    chunks = [c.text.split() for c in chunk_document(Document(text=" ".join(words)))]
    starts = [words.index(c[0]) for c in chunks]
    # Each chunk is a stretch of the sentence (no word twice) within the size limit, from
    # its first word to its last, sharing the overlap with the stretch before.
    for start, chunk in zip(starts, chunks, strict=True):
        assert chunk == words[start : start + len(chunk)] and len(chunk) <= CHUNK_WORDS
    assert chunks[0][0] == words[0] and chunks[-1][-1] == words[-1]
    ends = [start + len(chunk) for start, chunk in zip(starts, chunks, strict=True)]
    assert [end - start for end, start in zip(ends, starts[1:], strict=False)] == [
        CHUNK_OVERLAP_WORDS
    ] * (len(chunks) - 1)


def test_sentences_around_a_long_one_are_not_repeated_inside_a_chunk():
    long = " ".join(f"w{i}" for i in range(300))
    doc = Document(text=f"The short start of it all. {long}. And a short ending here.")
    for chunk in chunk_document(doc):
        words = chunk.text.split()
        assert len(words) == len(set(words)) and len(words) <= CHUNK_WORDS, chunk.text


def test_cue_chunks_group_short_cues():
    cues = [Cue(i * 2.0, i * 2.0 + 1.5, f"line {i}") for i in range(10)]
    chunks = chunk_document(Document(text="", cues=cues))
    assert len(chunks) == 1
    assert (chunks[0].start_s, chunks[0].end_s) == (0.0, 19.5)


def test_cue_chunks_repeat_the_last_cue_of_the_chunk_before():
    cues = [Cue(i * 3.0, i * 3.0 + 2.5, f"cue {i} " + "word " * 10) for i in range(8)]
    chunks = chunk_document(Document(text="", cues=cues))
    assert len(chunks) > 1
    for before, after in zip(chunks, chunks[1:], strict=False):
        (first,) = [c for c in cues if c.start_s == after.start_s]
        assert first.end_s == before.end_s  # it is the last cue of the chunk before
        assert after.text.startswith(first.text)
        assert len(after.text.split()) <= 60 and len(before.text.split()) <= 60
