"""Any document Trove reads, by its extension: plain text, Markdown, HTML, subtitles, PDF."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from search.decode.documents.charset import decode_text
from search.decode.documents.document import Document, clean, finish, first_line
from search.decode.documents.read_html import load_html
from search.decode.documents.read_markdown import load_markdown
from search.decode.documents.read_pdf import load_pdf
from search.decode.documents.read_subtitles import load_subtitles
from search.decode.kinds import (
    DOCUMENT_EXTENSIONS,
    HTML_EXTENSIONS,
    PDF_EXTENSIONS,
    SUBTITLE_EXTENSIONS,
)
from search.errors import BadFileError

# Size guards: a 20 MB text file is already ~3 million words; bigger "text" files are logs or
# dumps nobody searches by meaning, and they would cost tens of thousands of vectors each.
MAX_TEXT_BYTES = 20 * 1024 * 1024


def load_document(path: str | Path, ocr: Callable | None = None) -> Document:
    """Read a document by its extension; raise BadFileError when it cannot be read.

    `ocr` (an `search.decode.ocr.ocr_image`-like callable taking a PIL image) reads PDF pages that
    have no text layer, rendered with pypdfium2. Without it such pages are left out and the
    document's `notice` says "no text layer".
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PDF_EXTENSIONS:
        return load_pdf(path, ocr)
    if suffix not in DOCUMENT_EXTENSIONS:
        raise BadFileError(f"not a document Trove reads ({suffix or 'no extension'})")
    data = _read_limited(path, MAX_TEXT_BYTES)
    if suffix in HTML_EXTENSIONS:
        return load_html(data)
    text = decode_text(data)
    if suffix in SUBTITLE_EXTENSIONS:
        return load_subtitles(text, vtt=suffix == ".vtt")
    if suffix in (".md", ".markdown"):
        return load_markdown(text)
    return finish(Document(text=clean(text), title=first_line(text)))


def _read_limited(path: Path, limit: int) -> bytes:
    size = path.stat().st_size
    if size > limit:
        raise BadFileError(
            f"too large for a text document ({size / 2**20:.0f} MB; the limit is "
            f"{limit / 2**20:.0f} MB)"
        )
    return path.read_bytes()
