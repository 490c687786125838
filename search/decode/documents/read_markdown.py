"""Markdown -> the text a reader sees (markup removed), which is what a query matches."""

from __future__ import annotations

import re

from search.decode.documents.document import Document, clean, finish, first_line

_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_MD_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|~~|`+)(?=\S)(.+?)(?<=\S)\1")
_MD_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_MD_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


def load_markdown(text: str) -> Document:
    """Markdown with its markup removed; the title is the first heading (else first line)."""
    text = _MD_FRONT_MATTER.sub("", text.replace("\r\n", "\n"))
    heading = _MD_HEADING.search(text)
    text = _MD_FENCE.sub("", text)
    text = _MD_HEADING.sub(r"\1", text)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_EMPHASIS.sub(r"\2", text)
    text = re.sub(r"^\s{0,3}(?:[-*+]|\d+[.)]|>)\s+", "", text, flags=re.MULTILINE)
    title = heading.group(1) if heading else first_line(text)
    return finish(Document(text=clean(text), title=title))
