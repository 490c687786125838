"""PDF -> text per page (pypdf's text layer), with pages that have none read by OCR when
asked; encrypted PDFs that need no password are opened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from search.decode.documents.document import Document, clean, finish, first_line
from search.decode.kinds import describe_content
from search.decode.ocr import OcrError
from search.errors import BadFileError

MAX_PDF_BYTES = 500 * 1024 * 1024
MAX_PDF_PAGES = 2000
# A page whose text layer holds fewer letters than this is treated as a scanned page.
MIN_PAGE_LETTERS = 16
OCR_RENDER_DPI = 200
MAX_RENDER_SIDE = 3000
# About 1.3 s of OCR per page: a scanned book would hold a decode worker for many minutes.
MAX_OCR_PAGES = 100


def load_pdf(path: Path, ocr: Callable | None) -> Document:
    """A PDF's text, page by page; BadFileError when it is not a PDF, too large, damaged or
    locked by a password. `ocr` reads pages without a text layer (see `load_document`)."""
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
        pages = [clean(page.extract_text() or "") for page in reader.pages[:MAX_PDF_PAGES]]
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

        info_ocr = 0
        failed = []
        for i in scanned[:MAX_OCR_PAGES]:
            try:
                pages[i] = clean(ocr(_render_page(path, i)))
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
        title=title or first_line(text),
        pages=pages,
        notice="; ".join(notices) or None,
    )
    doc.info["pages"] = page_count
    if info_ocr:
        doc.info["ocr_pages"] = info_ocr
    if author:
        doc.info["author"] = author
    return finish(doc)


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
