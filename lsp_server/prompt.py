"""Prompt building: the document around the cursor plus retrieved context, in the model's
FIM layout, within the model's context length."""

from __future__ import annotations

from pathlib import Path

from lsp_server.retrieval import Retriever, Snippet
from lsp_server.settings import ServerSettings
from model.engine import CompletionEngine
from model.prompt_format import Prompt, completion_prompt, context_ids, split_prefix

HEADER_RESERVE = 24  # file separator, path and FIM markers


def budgets(engine: CompletionEngine, settings: ServerSettings, answer_tokens: int) -> tuple[int, int, int]:
    """(prefix, suffix, context) token budgets that leave room for the answer.

    A model trained on short windows degrades past them, so the settings' budgets are
    capped by the model's own context length.
    """
    ctx = engine.max_seq_len
    room = ctx - HEADER_RESERVE - min(answer_tokens, ctx // 3)
    suffix = min(settings.max_suffix_tokens, room // 5)
    context = min(settings.retrieval_tokens, room // 3) if settings.retrieval else 0
    prefix = max(16, min(settings.max_prefix_tokens, room - suffix - context))
    return prefix, suffix, context


def build_prompt(engine: CompletionEngine, path: str, prefix: str, suffix: str, settings: ServerSettings,
                 answer_tokens: int, retriever: Retriever | None = None, file_path: Path | None = None,
                 open_docs: dict | None = None, root: Path | None = None) -> tuple[Prompt, list[Snippet]]:
    """FIM prompt for a cursor between ``prefix`` and ``suffix`` of the file at ``path``.

    ``path`` is workspace-relative where possible: the model was trained with paths
    relative to their package root, and an absolute home folder only adds noise.
    """
    prefix_budget, suffix_budget, context_budget = budgets(engine, settings, answer_tokens)
    context: list[int] = []
    snippets: list[Snippet] = []
    if context_budget and retriever is not None and file_path is not None:
        before, _ = split_prefix(prefix)
        snippets = retriever.retrieve(file_path, before, open_docs or {}, root)
        context = context_ids(engine.tokenizer, engine.special, [(s.path, s.text) for s in snippets], context_budget)
    # Budget the context left unused goes back to the prefix.
    prefix_budget += context_budget - len(context)
    prompt = completion_prompt(
        engine.tokenizer, engine.special, path, prefix, suffix, context=context,
        max_prefix_tokens=prefix_budget, max_suffix_tokens=suffix_budget,
    )
    return prompt, snippets
