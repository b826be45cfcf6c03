"""An OpenAI-style ``POST /v1/completions`` body, checked, and its prompts in the model's layout.

Accepted: ``prompt`` (a string or a list of strings, one choice each), ``suffix`` (fill in
the middle), ``max_tokens`` (default 16, as OpenAI), ``temperature`` (default 0: greedy, so
the same request gives the same completion -- OpenAI's default of 1 suits chat, not code),
``top_p``, ``stop`` (a string or up to four), ``stream``; and ``path``, ghostline's own: the
file's name for the prompt header, as the model saw paths in training (without one,
``untitled.py``: every training file had a name, and an empty header reads to the model
like no file it has seen -- ``ret`` became ``ret = ...`` instead of ``return``).  ``model``, ``user``
and the other fields clients send are accepted and ignored; ``n``, ``best_of``, ``echo`` and
``logprobs`` only at their defaults (a clear 422 otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

from lsp_server.blocks import empty_block_at_cursor
from lsp_server.languages import language_of
from lsp_server.team.config import TeamServerConfig
from model.engine import CompletionEngine, Sampling
from model.prompt_format import fitted_prompt

MAX_PROMPTS = 16  # prompts per request (a list prompt); each is one choice
UNNAMED_PATH = "untitled.py"  # the header's file name when the request gives none


class RequestError(ValueError):
    """A request the server will not run; becomes a JSON error with this status."""

    def __init__(self, message: str, status: int = 422, code: str = "invalid_value", param: str | None = None):
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


@dataclass(frozen=True)
class CompletionRequest:
    prompts: tuple[str, ...]
    suffix: str | None
    max_tokens: int
    sampling: Sampling
    stop: tuple[str, ...]
    stream: bool
    path: str


def _number(body: dict, key: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            low < value <= high if low_open else low <= value <= high):
        interval = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise RequestError(f"{key} must be a number in {interval}, got {value!r}", param=key)
    return float(value)


def _string(body: dict, key: str, what: str = "a string") -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise RequestError(f"{key} must be {what}, got {type(value).__name__}", param=key)
    return value


def parse_request(body: object, config: TeamServerConfig) -> CompletionRequest:
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object", status=400, code="invalid_request")
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompts: tuple[str, ...] = (prompt,)
    elif isinstance(prompt, list) and 0 < len(prompt) <= MAX_PROMPTS and all(isinstance(p, str) for p in prompt):
        prompts = tuple(prompt)
    elif prompt is None:
        raise RequestError("prompt is required", param="prompt")
    else:
        raise RequestError(f"prompt must be a string or a list of 1 to {MAX_PROMPTS} strings (token ids are not "
                           f"accepted)", param="prompt")
    suffix = _string(body, "suffix")
    path = _string(body, "path") or ""
    if len(path) > 1000:
        raise RequestError("path is longer than 1000 characters", param="path")

    max_tokens = body.get("max_tokens", 16)
    max_tokens = 16 if max_tokens is None else max_tokens
    limit = config.max_tokens_limit
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= limit:
        raise RequestError(f"max_tokens must be an integer from 1 to {config.max_tokens_limit} (this server's "
                           f"limit), got {max_tokens!r}", param="max_tokens")
    temperature = _number(body, "temperature", 0.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0, low_open=True)

    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop) if isinstance(stop, list) else None
    stops = () if stop is None else stops
    if stops is None or not all(isinstance(s, str) and s for s in stops) or len(stops) > config.max_stop_strings:
        raise RequestError(f"stop must be a non-empty string or a list of up to {config.max_stop_strings} of them",
                           param="stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("stream must be true or false", param="stream")

    for key, default in (("n", 1), ("best_of", 1), ("echo", False), ("logprobs", None)):
        value = body.get(key)
        if value is not None and value != default and not (key == "logprobs" and value == 0):
            raise RequestError(f"{key} = {value!r} is not supported by this server (only {default!r})", param=key)
    return CompletionRequest(prompts, suffix, max_tokens, Sampling(temperature, top_p), stops, stream, path)


def starts_an_empty_body(request: CompletionRequest, prompt: str) -> bool:
    """A block request (no line-break stop) whose cursor is at column 0 of an empty block
    body: the answer must start indented (as the language server asks the engine)."""
    if "\n" in request.stop:
        return False
    language = language_of(request.path or UNNAMED_PATH)
    block = empty_block_at_cursor(prompt, request.suffix or "", language.id if language else None)
    return block is not None and block.at_line_start


def prompt_ids(engine: CompletionEngine, request: CompletionRequest, prompt: str) -> list[int]:
    """The prompt's token ids, trimmed to leave room for the answer in the model's context.

    As in the language server, the answer may take at most a third of the context: a
    model degrades past the length it was trained on, and the prompt is what makes the
    answer good."""
    context = engine.max_seq_len
    budget = context - min(request.max_tokens, context // 3)
    path = request.path or UNNAMED_PATH
    return fitted_prompt(engine.tokenizer, engine.special, path, prompt, request.suffix, budget)
