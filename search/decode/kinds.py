"""What kind of media a file is: proposed by its extension, confirmed by its content."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath


@dataclass(frozen=True)
class FoundFile:
    """A media file on disk, as the walk found it: what decoding it needs to know."""

    path: str
    size: int
    mtime_ns: int
    kind: str


IMAGE_EXTENSIONS = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".gif",
        ".webp",
        ".tif",
        ".tiff",
        ".bmp",
        ".heic",
        ".heif",
        ".avif",
    ]
)
AUDIO_EXTENSIONS = frozenset(
    [".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff"]
)
VIDEO_EXTENSIONS = frozenset(
    [".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".3gp", ".wmv"]
)
TEXT_EXTENSIONS = frozenset([".txt", ".text", ".md", ".markdown"])
HTML_EXTENSIONS = frozenset([".html", ".htm", ".xhtml"])
SUBTITLE_EXTENSIONS = frozenset([".srt", ".vtt"])
PDF_EXTENSIONS = frozenset([".pdf"])
DOCUMENT_EXTENSIONS = TEXT_EXTENSIONS | HTML_EXTENSIONS | SUBTITLE_EXTENSIONS | PDF_EXTENSIONS
KIND_BY_EXTENSION = {
    **{ext: "image" for ext in IMAGE_EXTENSIONS},
    **{ext: "audio" for ext in AUDIO_EXTENSIONS},
    **{ext: "video" for ext in VIDEO_EXTENSIONS},
    **{ext: "document" for ext in DOCUMENT_EXTENSIONS},
}
HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif"})
SNIFF_BYTES = 32


def kind_for_path(path: str | PurePath) -> str | None:
    """The kind an extension proposes, or None for files Trove does not index."""
    return KIND_BY_EXTENSION.get(PurePath(path).suffix.lower())


def image_format(header: bytes) -> str | None:
    """The image container a file's first bytes announce, whatever its name says."""
    if header.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if header.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if header[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "WEBP"
    if header[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if header[:2] == b"BM":
        return "BMP"
    if header[4:8] == b"ftyp" and header[8:12] in HEIF_BRANDS:
        return "AVIF" if header[8:12] == b"avif" else "HEIF"
    return None


def describe_content(header: bytes) -> str:
    """A short human description of unrecognised content, for error messages."""
    if not header:
        return "the file is empty (0 bytes)"
    if b"\x00" not in header:
        try:
            header.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "the content is plain text"
    return f"unrecognised content (starts with {header[:8].hex(' ')})"
