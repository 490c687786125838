"""Documents as text: `load_document` reads a file (plain text, Markdown, HTML, subtitles,
PDF) into a `Document`, `chunk_document` cuts it into the `Chunk`s that get vectors.

One module per job: load.py picks the reader by extension; read_markdown.py, read_html.py,
read_subtitles.py and read_pdf.py are the readers; charset.py turns a text file's bytes into
str; document.py holds what a reader returns; chunking.py cuts documents into chunks.
"""

from search.decode.documents.chunking import (
    CHUNK_OVERLAP_WORDS,
    CHUNK_WORDS,
    CUE_CHUNK_SECONDS,
    CUE_CHUNK_WORDS,
    Chunk,
    chunk_document,
)
from search.decode.documents.document import Cue, Document
from search.decode.documents.load import load_document

__all__ = [
    "CHUNK_OVERLAP_WORDS",
    "CHUNK_WORDS",
    "CUE_CHUNK_SECONDS",
    "CUE_CHUNK_WORDS",
    "Chunk",
    "Cue",
    "Document",
    "chunk_document",
    "load_document",
]
