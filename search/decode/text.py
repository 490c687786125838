"""Reading documents as text (plain, Markdown, HTML, PDF, subtitles) and cutting them into chunks.

A chunk is what gets a vector: one MiniLM sentence vector (text -> text search) and one CLIP
text-tower vector (image -> document). See `chunk_document` for how each encoder sees a chunk.
"""

from __future__ import annotations

import codecs
import html
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from search.decode.kinds import (
    DOCUMENT_EXTENSIONS,
    HTML_EXTENSIONS,
    PDF_EXTENSIONS,
    SUBTITLE_EXTENSIONS,
    describe_content,
)
from search.errors import BadFileError

# Size guards: a 20 MB text file is already ~3 million words; bigger "text" files are logs or
# dumps nobody searches by meaning, and they would cost tens of thousands of vectors each.
MAX_TEXT_BYTES = 20 * 1024 * 1024
MAX_PDF_BYTES = 500 * 1024 * 1024
MAX_PDF_PAGES = 2000
MAX_DOCUMENT_CHARS = 5_000_000
# A page whose text layer holds fewer letters than this is treated as a scanned page.
MIN_PAGE_LETTERS = 16
OCR_RENDER_DPI = 200
MAX_RENDER_SIDE = 3000
# About 1.3 s of OCR per page: a scanned book would hold a decode worker for many minutes.
MAX_OCR_PAGES = 100

# Chunk sizes, in words (see chunk_document for the reasoning).
CHUNK_WORDS = 120
CHUNK_OVERLAP_WORDS = 30
CUE_CHUNK_WORDS = 60
CUE_CHUNK_SECONDS = 30.0


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


@dataclass(frozen=True)
class Chunk:
    """A piece of a document that gets its own vectors.

    `start_s`/`end_s` are set for subtitle chunks (the cues' time range), else None.
    `page` is the 1-based PDF page the chunk starts on, else None.
    """

    text: str
    start_s: float | None = None
    end_s: float | None = None
    page: int | None = None


def load_document(path: str | Path, ocr: Callable | None = None) -> Document:
    """Read a document by its extension; raise BadFileError when it cannot be read.

    `ocr` (an `search.decode.ocr.ocr_image`-like callable taking a PIL image) reads PDF pages that
    have no text layer, rendered with pypdfium2. Without it such pages are left out and the
    document's `notice` says "no text layer".
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PDF_EXTENSIONS:
        return _load_pdf(path, ocr)
    if suffix not in DOCUMENT_EXTENSIONS:
        raise BadFileError(f"not a document Trove reads ({suffix or 'no extension'})")
    data = _read_limited(path, MAX_TEXT_BYTES)
    if suffix in HTML_EXTENSIONS:
        return _load_html(data)
    text = decode_text(data)
    if suffix in SUBTITLE_EXTENSIONS:
        return _load_subtitles(text, vtt=suffix == ".vtt")
    if suffix in (".md", ".markdown"):
        return _load_markdown(text)
    return _finish(Document(text=_clean(text), title=_first_line(text)))


# ---- text decoding ---------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Bytes of a text file -> str: BOM, then a declared charset, UTF-8, UTF-16, cp1252.

    Raises BadFileError when the bytes are not text in any of these (binary data): Latin-1 can
    decode any byte string, so "undecodable" is judged by control characters in the result.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _checked(data[len(bom) :], encoding)
    if declared:
        try:
            return _checked(data, codecs.lookup(declared).name)
        except (LookupError, BadFileError):
            pass  # a wrong or unknown declaration is common; fall through to detection
    try:
        return _checked(data, "utf-8")
    except BadFileError:
        pass
    utf16 = _utf16_without_bom(data)
    if utf16:
        return _checked(data, utf16)
    try:
        return _checked(data, "cp1252")
    except BadFileError:
        # cp1252 leaves five bytes undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d); Latin-1 takes all.
        return _checked(data, "latin-1")


def _checked(data: bytes, encoding: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise BadFileError(f"cannot decode the text as {encoding}: {exc.reason}") from None
    if not text:
        return text
    controls = sum(
        1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v\x1a"
    )
    if controls > max(2, len(text) // 100):
        raise BadFileError(
            f"binary data, not text ({describe_content(data[:32])}, {controls} control bytes)"
        )
    return text


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 without a BOM shows as a zero byte in every other position for Latin text."""
    sample = data[:4096]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _read_limited(path: Path, limit: int) -> bytes:
    size = path.stat().st_size
    if size > limit:
        raise BadFileError(
            f"too large for a text document ({size / 2**20:.0f} MB; the limit is "
            f"{limit / 2**20:.0f} MB)"
        )
    return path.read_bytes()


# ---- plain text and Markdown ----------------------------------------------------------------

_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_MD_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|~~|`+)(?=\S)(.+?)(?<=\S)\1")
_MD_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_MD_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


def _load_markdown(text: str) -> Document:
    """Markdown with its markup removed: what a reader sees, which is what a query matches."""
    text = _MD_FRONT_MATTER.sub("", text.replace("\r\n", "\n"))
    heading = _MD_HEADING.search(text)
    text = _MD_FENCE.sub("", text)
    text = _MD_HEADING.sub(r"\1", text)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_EMPHASIS.sub(r"\2", text)
    text = re.sub(r"^\s{0,3}(?:[-*+]|\d+[.)]|>)\s+", "", text, flags=re.MULTILINE)
    title = heading.group(1) if heading else _first_line(text)
    return _finish(Document(text=_clean(text), title=title))


def _first_line(text: str) -> str | None:
    for line in text.splitlines():
        line = line.strip().lstrip("\ufeff")
        if line:
            return line[:200]
    return None


def _clean(text: str) -> str:
    """NFC, no NULs, runs of spaces collapsed, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text).replace("\x00", "")
    text = re.sub(r"[ \t\f\v\u00a0]+", " ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _finish(doc: Document) -> Document:
    if len(doc.text) > MAX_DOCUMENT_CHARS:
        doc.text = doc.text[:MAX_DOCUMENT_CHARS]
        doc.notice = f"only the first {MAX_DOCUMENT_CHARS:,} characters are indexed"
    if doc.title:
        doc.info.setdefault("title", doc.title)
    return doc


# ---- HTML -----------------------------------------------------------------------------------

_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# Navigation menus repeat on every page of a site: boilerplate, not what a page says.
_SKIPPED_TAGS = frozenset(
    {"script", "style", "template", "noscript", "svg", "head", "iframe", "nav"}
)
_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt"),
        *("fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4"),
        *("h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section"),
        *("table", "td", "th", "tr", "ul"),
    }
)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        elif tag in _SKIPPED_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        if tag == "img" and not self._skip_depth:
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip_depth:
            self.parts.append(data)


def _load_html(data: bytes) -> Document:
    declared = _HTML_CHARSET.search(data[:4096])
    text = decode_text(data, declared.group(1).decode("ascii") if declared else None)
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    body = re.sub(r"[ \t]*\n[ \t]*", "\n", re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts)))
    title = " ".join("".join(parser.title_parts).split()) or None
    return _finish(Document(text=_clean(body), title=title or _first_line(body)))


# ---- subtitles ------------------------------------------------------------------------------

_TIMING = re.compile(
    r"(?P<start>(?:\d+:)?\d{1,2}:\d{2}[,.]\d{1,3})\s*-->\s*(?P<end>(?:\d+:)?\d{1,2}:\d{2}[,.]\d{1,3})"
)
_CUE_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")


def _timestamp(value: str) -> float:
    parts = value.replace(",", ".").split(":")
    seconds = float(parts[-1])
    for i, part in enumerate(reversed(parts[:-1]), start=1):
        seconds += int(part) * 60**i
    return seconds


def parse_subtitles(text: str, vtt: bool = False) -> list[Cue]:
    """SRT or WebVTT cues in file order. Blocks without a timing line (WebVTT NOTE, STYLE,
    REGION, the header) are skipped; formatting tags (<i>, <c.x>, <v Name>, {\\an8}) removed."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = block.strip("\n").split("\n")
        for i, line in enumerate(lines):
            timing = _TIMING.search(line)
            if timing:
                if vtt and lines[0].startswith(("NOTE", "STYLE", "REGION")):
                    break
                body = " ".join(
                    html.unescape(_CUE_TAG.sub("", cue_line)).strip() for cue_line in lines[i + 1 :]
                )
                body = " ".join(body.split())
                if body:
                    start, end = _timestamp(timing["start"]), _timestamp(timing["end"])
                    cues.append(Cue(start, max(start, end), body))
                break
    return cues


def _load_subtitles(text: str, vtt: bool) -> Document:
    text = text.lstrip("\ufeff")
    if vtt and not text.startswith("WEBVTT"):
        raise BadFileError("not a WebVTT file (it does not start with WEBVTT)")
    cues = parse_subtitles(text, vtt=vtt)
    if not cues and text.strip() and not vtt:
        raise BadFileError("no subtitle cues found (expected lines like 00:00:01,000 --> ...)")
    doc = Document(text="\n".join(c.text for c in cues), cues=cues)
    if cues:
        doc.info["duration_s"] = cues[-1].end_s
        doc.info["cues"] = len(cues)
    return _finish(doc)


# ---- PDF ------------------------------------------------------------------------------------


def _load_pdf(path: Path, ocr: Callable | None) -> Document:
    import pypdf
    from pypdf.errors import DependencyError, PyPdfError

    size = path.stat().st_size
    if size > MAX_PDF_BYTES:
        raise BadFileError(f"PDF too large ({size / 2**20:.0f} MB; the limit is 500 MB)")
    with open(path, "rb") as f:
        head = f.read(1024)
    # The PDF spec lets a few bytes precede the header; readers accept it within 1 kB.
    if b"%PDF-" not in head:
        raise BadFileError(f"not a PDF: {describe_content(head[:32])}")
    try:
        reader = pypdf.PdfReader(str(path))
        _unlock(reader)
        page_count = len(reader.pages)
        pages = [_clean(page.extract_text() or "") for page in reader.pages[:MAX_PDF_PAGES]]
        metadata = reader.metadata
        title = ((metadata.title or "").strip() or None) if metadata else None
        author = ((metadata.author or "").strip() or None) if metadata else None
    except BadFileError:
        raise
    except (
        PyPdfError,
        DependencyError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
    ) as exc:
        # pypdf reports damaged structure as any of these, deep inside its object parser.
        raise BadFileError(f"corrupt PDF: {type(exc).__name__}: {exc}") from None

    scanned = [i for i, text in enumerate(pages) if _letters(text) < MIN_PAGE_LETTERS]
    notices = []
    if scanned and ocr is not None:
        from pypdfium2 import PdfiumError

        from search.decode.ocr import OcrError

        info_ocr = 0
        failed = []
        for i in scanned[:MAX_OCR_PAGES]:
            try:
                pages[i] = _clean(ocr(_render_page(path, i)))
                info_ocr += 1
            except (PdfiumError, OcrError) as exc:  # lose the page, not the whole file
                failed.append(f"page {i + 1}: {exc}")
        if failed:
            notices.append(f"OCR failed on {len(failed)} pages ({failed[0]})")
        if len(scanned) > MAX_OCR_PAGES:
            notices.append(
                f"OCR read the first {MAX_OCR_PAGES} of {len(scanned)} pages without text"
            )
    else:
        info_ocr = 0
        if scanned:
            which = "no page has" if len(scanned) == len(pages) else f"{len(scanned)} pages have"
            notices.append(f"no text layer: {which} text (scanned?); turn on OCR to read them")
    if page_count > MAX_PDF_PAGES:
        notices.append(f"only the first {MAX_PDF_PAGES} of {page_count} pages are indexed")

    text = "\n\n".join(p for p in pages if p)
    doc = Document(
        text=text,
        title=title or _first_line(text),
        pages=pages,
        notice="; ".join(notices) or None,
    )
    doc.info["pages"] = page_count
    if info_ocr:
        doc.info["ocr_pages"] = info_ocr
    if author:
        doc.info["author"] = author
    return _finish(doc)


def _unlock(reader) -> None:
    """Open encrypted PDFs that need no password to read (owner-password-only, the common case:
    they restrict printing or copying, not reading); refuse those that need one."""
    if not reader.is_encrypted:
        return
    try:
        unlocked = reader.decrypt("")
    except Exception as exc:  # pypdf raises DependencyError, NotImplementedError, ... per cipher
        raise BadFileError(f"encrypted PDF that Trove cannot decrypt: {exc}") from None
    if not unlocked:
        raise BadFileError("encrypted PDF: it needs a password to open")


def _letters(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _render_page(path: Path, index: int):
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        page = pdf[index]
        # A poster-sized page at 200 DPI would be hundreds of megapixels; OCR reduces to
        # ocr.MAX_LONG_SIDE anyway.
        scale = min(OCR_RENDER_DPI / 72, MAX_RENDER_SIDE / max(page.get_size()))
        bitmap = page.render(scale=scale)
        return bitmap.to_pil().convert("RGB")
    finally:
        pdf.close()


# ---- chunking -------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\n+")


def chunk_document(
    doc: Document,
    words: int = CHUNK_WORDS,
    overlap: int = CHUNK_OVERLAP_WORDS,
    cue_words: int = CUE_CHUNK_WORDS,
    cue_seconds: float = CUE_CHUNK_SECONDS,
) -> list[Chunk]:
    """Cut a document into overlapping chunks, at sentence ends where it can.

    Prose: up to `words` words (120) per chunk; each chunk starts with the last <= `overlap`
    words (30) of the one before, so a sentence cut at a border is whole in one of them.
    120 English words are about 160 MiniLM word pieces, inside the 256 it reads (it truncates
    the rest), so the sentence vector sees the whole chunk. CLIP's text tower reads 77 BPE
    tokens, about the first 55 words: its vector describes the start of the chunk, which is
    enough for image -> document search (a photo matches what a passage is about, not its
    last clause). Smaller chunks would double the vectors for no gain in text search.

    Subtitles: consecutive cues are grouped up to `cue_words` (60) words or `cue_seconds` (30 s),
    with the last cue repeated at the start of the next chunk (unless that would stretch it
    past `cue_seconds`); the chunk's time range is its cues' range, so a hit can seek the
    video to the moment.
    """
    if doc.cues:
        return _chunk_cues(doc.cues, cue_words, cue_seconds)
    if doc.pages:
        units = [(s, page) for page, text in enumerate(doc.pages, 1) for s in _sentences(text)]
    else:
        units = [(s, None) for s in _sentences(doc.text)]
    return _pack(units, words, min(overlap, words // 2))


def _sentences(text: str) -> Iterable[list[str]]:
    for sentence in _SENTENCE_END.split(text):
        tokens = sentence.split()
        if tokens:
            yield tokens


def _pack(units: list[tuple[list[str], int | None]], limit: int, overlap: int) -> list[Chunk]:
    # Sentences longer than a chunk are cut into chunk-sized pieces first. The pieces overlap
    # already, so one that continues a sentence starts its chunk without the tail of the one
    # before (that would repeat the overlap), and the last piece reaches the sentence's end.
    pieces: list[tuple[list[str], int | None, bool]] = []
    for tokens, page in units:
        step = max(1, limit - overlap)
        if len(tokens) <= limit:
            pieces.append((tokens, page, False))
        else:
            starts = range(0, max(1, len(tokens) - overlap), step)
            pieces.extend((tokens[i : i + limit], page, i > 0) for i in starts)
    chunks: list[Chunk] = []
    current: list[tuple[list[str], int | None]] = []
    count = 0
    fresh = False  # does `current` hold anything the previous chunk did not?
    for tokens, page, continues in pieces:
        if current and count + len(tokens) > limit:
            chunks.append(_make_chunk(current))
            current, count = ([], 0) if continues else _tail(current, overlap)
            fresh = False
            if current and count + len(tokens) > limit:
                current, count = [], 0
        current.append((tokens, page))
        count += len(tokens)
        fresh = True
    if current and fresh:
        chunks.append(_make_chunk(current))
    return chunks


def _tail(pieces, overlap: int):
    """The trailing whole sentences of a chunk that fit in `overlap` words."""
    kept, count = [], 0
    for tokens, page in reversed(pieces):
        if count + len(tokens) > overlap:
            break
        kept.insert(0, (tokens, page))
        count += len(tokens)
    if not kept and overlap and pieces:
        tokens, page = pieces[-1]
        kept, count = [(tokens[-overlap:], page)], min(overlap, len(tokens))
    return kept, count


def _make_chunk(pieces) -> Chunk:
    return Chunk(text=" ".join(" ".join(t) for t, _ in pieces), page=pieces[0][1])


def _chunk_cues(cues: list[Cue], limit_words: int, limit_s: float) -> list[Chunk]:
    chunks: list[Chunk] = []
    group: list[Cue] = []
    words = 0
    for cue in cues:
        n = len(cue.text.split())
        too_long = group and (words + n > limit_words or cue.end_s - group[0].start_s > limit_s)
        if too_long:
            chunks.append(_cue_chunk(group))
            # The last cue is repeated for context, unless it is too far back to be context.
            group = group[-1:] if cue.end_s - group[-1].start_s <= limit_s else []
            words = sum(len(c.text.split()) for c in group)
        group.append(cue)
        words += n
    if group:  # after a flush the group always holds a new cue besides the repeated one
        chunks.append(_cue_chunk(group))
    return chunks


def _cue_chunk(group: list[Cue]) -> Chunk:
    return Chunk(
        text=" ".join(c.text for c in group), start_s=group[0].start_s, end_s=group[-1].end_s
    )
