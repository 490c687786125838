"""What reading a document gives: its text, title and details (`Document`), subtitle cues
(`Cue`), and the tidying every reader applies to the text it extracts."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# The last size guard (after the file-size and page limits of each reader): text beyond this
# is cut, and the document's `notice` says so.
MAX_DOCUMENT_CHARS = 5_000_000


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: its time range in seconds and its text (tags removed)."""

    start_s: float
    end_s: float
    text: str


@dataclass
class Document:
    """A document's text. `pages[i]` is page i+1's text for PDFs (empty for other formats).

    `notice` says, in one line, when part of the document could not be read as text (a PDF
    with no text layer and OCR off, pages cut at MAX_PDF_PAGES); the document is still indexed
    under its name and whatever text it has.
    """

    text: str
    title: str | None = None
    info: dict = field(default_factory=dict)
    cues: list[Cue] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    notice: str | None = None


def clean(text: str) -> str:
    """NFC, no NULs, runs of spaces collapsed, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text).replace("\x00", "")
    text = re.sub(r"[ \t\f\v\u00a0]+", " ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def first_line(text: str) -> str | None:
    """The first non-blank line (at most 200 characters): the title of a file without one."""
    for line in text.splitlines():
        line = line.strip().lstrip("\ufeff")
        if line:
            return line[:200]
    return None


def finish(doc: Document) -> Document:
    """Cut the text at MAX_DOCUMENT_CHARS (saying so in `notice`) and record the title."""
    if len(doc.text) > MAX_DOCUMENT_CHARS:
        doc.text = doc.text[:MAX_DOCUMENT_CHARS]
        doc.notice = f"only the first {MAX_DOCUMENT_CHARS:,} characters are indexed"
    if doc.title:
        doc.info.setdefault("title", doc.title)
    return doc
