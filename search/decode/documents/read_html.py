"""HTML -> the text a visitor reads: scripts, styles and navigation left out, image alt text
kept, the <title> as the title."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from search.decode.documents.charset import decode_text
from search.decode.documents.document import Document, clean, finish, first_line

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


def load_html(data: bytes) -> Document:
    """An HTML page's bytes -> its text, decoded as `decode_text` does, with the charset its
    <meta> declares tried before detection."""
    declared = _HTML_CHARSET.search(data[:4096])
    text = decode_text(data, declared.group(1).decode("ascii") if declared else None)
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    body = re.sub(r"[ \t]*\n[ \t]*", "\n", re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts)))
    title = " ".join("".join(parser.title_parts).split()) or None
    return finish(Document(text=clean(body), title=title or first_line(body)))
