"""Turning a file into index entries: chunk, fingerprint, describe.

A file is chunked with one tree-sitter parse and fingerprinted with one tokenization
(``fingerprint_chunks``), not once per chunk; the service calls ``file_entries`` for every
file a refresh reads and for every save and edit.
"""

from __future__ import annotations

from lsp_server.similarity.chunking import ChunkConfig, chunk_file
from lsp_server.similarity.fingerprint import fingerprint_chunks
from lsp_server.similarity.index import Entry, make_entry


def file_entries(file: str, text: str, grammar: str, chunk_config: ChunkConfig | None = None,
                 preview_lines: int = 3) -> tuple[list[Entry], list[str]]:
    """The index entries of one file's text, and their chunks' texts (what the encoder
    embeds); ``grammar`` is the file's tree-sitter grammar or "text"."""
    chunked = chunk_file(text, grammar, chunk_config)
    entries = [make_entry(file, chunk, preview_lines, fp)
               for chunk, fp in zip(chunked.chunks, fingerprint_chunks(chunked), strict=True)]
    return entries, [chunk.text for chunk in chunked.chunks]
