"""Turning files into index entries: chunk, fingerprint, describe.

One file is chunked with one tree-sitter parse and fingerprinted with one tokenization
(``fingerprint_chunks``); the service calls ``file_entries`` for every save, edit and file
of a refresh.
"""

from __future__ import annotations

from lsp_server.similarity.chunking import ChunkConfig, chunk_file
from lsp_server.similarity.fingerprint import fingerprint_chunks
from lsp_server.similarity.index import Entry, make_entry


def file_entries(file: str, text: str, grammar: str, chunk_config: ChunkConfig | None = None,
                 preview_lines: int = 3) -> list[Entry]:
    """The index entries of one file's text; ``grammar`` is its tree-sitter grammar or "text"."""
    chunked = chunk_file(text, grammar, chunk_config)
    return [make_entry(file, chunk, preview_lines, fp)
            for chunk, fp in zip(chunked.chunks, fingerprint_chunks(chunked), strict=True)]
