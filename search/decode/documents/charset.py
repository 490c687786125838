"""Bytes of a text file -> str, whatever encoding it was saved in: BOM, a declared charset,
UTF-8, UTF-16 without a BOM, cp1252; binary data is refused."""

from __future__ import annotations

import codecs
import unicodedata

from search.decode.kinds import describe_content
from search.errors import BadFileError

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
