"""Documents the tests generate: PDFs with and without a text layer, HTML, subtitles, and
images with known text for OCR. Also used by assets/make_documents.py for the demo library."""

from __future__ import annotations

import textwrap
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
PAGE_W, PAGE_H = 612, 792  # US Letter in points


def _pdf(objects: list[bytes], info: dict[str, str] | None = None) -> bytes:
    """Assemble numbered objects (1-based, object 1 the catalog) into a PDF with its xref."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    if info:
        fields = " ".join(f"/{k} ({_pdf_string(v)})" for k, v in info.items())
        objects = [*objects, f"<< {fields} >>".encode("latin-1")]
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R"
    if info:
        trailer += f" /Info {len(objects)} 0 R"
    out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _stream(content: bytes, extra: str = "") -> bytes:
    packed = zlib.compress(content)
    head = f"<< /Length {len(packed)} /Filter /FlateDecode {extra}>>\nstream\n".encode()
    return head + packed + b"\nendstream"


def make_text_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    """A PDF whose pages carry real text (Helvetica, WinAnsi): what a word processor exports."""
    page_count = len(pages)
    # objects: 1 catalog, 2 pages, 3 font, then (page, content) per page
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(page_count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {page_count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        lines = []
        for paragraph in text.split("\n"):
            lines.extend(textwrap.wrap(paragraph, 80) or [""])
        ops = ["BT", "/F1 11 Tf", "14 TL", f"72 {PAGE_H - 72} Td"]
        ops += [f"({_pdf_string(line)}) Tj T*" for line in lines]
        ops.append("ET")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(_stream("\n".join(ops).encode("cp1252")))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_pdf(objects, {"Title": title} if title else None))
    return path


def make_scanned_pdf(path: Path, image: Image.Image) -> Path:
    """A PDF whose only page is a picture (a scan): no text layer at all."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    scale = min((PAGE_W - 72) / w, (PAGE_H - 72) / h)
    dw, dh = w * scale, h * scale
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
        f"/Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>".encode(),
        _stream(
            rgb.tobytes(),
            f"/Type /XObject /Subtype /Image /Width {w} /Height {h} "
            f"/ColorSpace /DeviceRGB /BitsPerComponent 8 ",
        ),
        _stream(f"q {dw:.2f} 0 0 {dh:.2f} 36 {PAGE_H - 36 - dh:.2f} cm /Im1 Do Q".encode()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_pdf(objects))
    return path


def make_encrypted_pdf(path: Path, source: Path, user_password: str, owner_password: str) -> Path:
    """`source` encrypted with RC4-128 (pypdf needs no extra package for it). An empty user
    password is the "restrictions only" kind that any reader opens."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=str(source))
    writer.encrypt(user_password, owner_password, algorithm="RC4-128")
    with open(path, "wb") as f:
        writer.write(f)
    return path


def make_html(path: Path, title: str, paragraphs: list[str], charset: str = "utf-8") -> Path:
    """An HTML page with a script, a style sheet and navigation around its paragraphs."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="{charset}"><title>{title}</title>\n'
        "<style>p { color: #333 } .hidden { display: none }</style>\n"
        "<script>var tracking = 'do not index this script';</script></head>\n"
        f"<body><nav><a href='/'>Home</a></nav><h1>{title}</h1>\n{body}\n"
        "<img src='x.png' alt='a photo of the harbour'></body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page.encode(charset))
    return path


def _srt_time(seconds: float, sep: str = ",") -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def make_srt(path: Path, cues: list[tuple[float, float, str]]) -> Path:
    blocks = [
        f"{i}\n{_srt_time(a)} --> {_srt_time(b)}\n{text}\n"
        for i, (a, b, text) in enumerate(cues, 1)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def make_vtt(path: Path, cues: list[tuple[float, float, str]]) -> Path:
    """WebVTT with a NOTE block, a cue id, cue settings and voice/italic tags."""
    blocks = ["WEBVTT - generated for tests\n", "NOTE this block is a comment, not a cue\n"]
    for i, (a, b, text) in enumerate(cues, 1):
        blocks.append(
            f"cue-{i}\n{_srt_time(a, '.')} --> {_srt_time(b, '.')} align:start position:10%\n"
            f"<v Narrator><i>{text}</i></v>\n"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def text_font(size: int) -> ImageFont.FreeTypeFont:
    for candidate in FONT_PATHS:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)


def render_text_image(
    lines: list[str], size: tuple[int, int] = (1200, 400), font_size: int = 44
) -> Image.Image:
    """Dark text on a light, slightly textured background, like a photographed sign."""
    image = Image.new("RGB", size, (236, 232, 220))
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 37):
        draw.line((x, 0, x + 60, size[1]), fill=(226, 222, 210), width=3)
    font = text_font(font_size)
    y = 40
    for line in lines:
        draw.text((40, y), line, fill=(30, 30, 40), font=font)
        y += int(font_size * 1.5)
    return image
