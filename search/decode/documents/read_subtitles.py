"""SRT and WebVTT subtitles -> timed cues, so a hit can seek its video to the moment."""

from __future__ import annotations

import html
import re

from search.decode.documents.document import Cue, Document, finish
from search.errors import BadFileError

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


def load_subtitles(text: str, vtt: bool) -> Document:
    """A subtitle file's text -> a Document of its cues (BadFileError when it has none where
    it should)."""
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
    return finish(doc)
