"""Prompt building: the document around the cursor, in the model's FIM layout."""

from __future__ import annotations

from model.engine import CompletionEngine
from model.prompt_format import Prompt, completion_prompt
from lsp_server.settings import ServerSettings


def build_prompt(engine: CompletionEngine, path: str, prefix: str, suffix: str,
                 settings: ServerSettings) -> Prompt:
    """FIM prompt for a cursor between ``prefix`` and ``suffix`` of the file at ``path``.

    ``path`` is workspace-relative where possible: the model was trained with paths
    relative to their package root, and an absolute home folder only adds noise.
    """
    return completion_prompt(
        engine.tokenizer, engine.special, path, prefix, suffix,
        max_prefix_tokens=settings.max_prefix_tokens, max_suffix_tokens=settings.max_suffix_tokens,
    )
