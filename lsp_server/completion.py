"""The completion pipeline behind both completion requests.

newest-request-wins per document -> debounce -> prompt -> generate (in a worker thread,
cancellable between tokens) -> post-process.  The engine is loaded lazily and reloaded
when the model settings change; a model that cannot load is reported once and turns
completions into empty answers instead of errors, so the editor keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from lsp_server.blocks import (
    BlockRequest,
    LineCheck,
    block_stop_rule,
    empty_block_at_cursor,
    in_triple_quoted_string,
    starts_at_module_level,
    trim_to_valid,
)
from lsp_server.cache import TypeAheadCache
from lsp_server.candidates import Candidate, attach_line_scores, rank, scored_weights
from lsp_server.documents import cursor_window
from lsp_server.languages import family_of, language_of
from lsp_server.line_memory import LineMemory, line_above, line_below
from lsp_server.models import ModelHolder
from lsp_server.postprocess import clean_block, clean_single_line, extends_a_whole_name, has_pragma, known_name_for
from lsp_server.prompt import budgets, build_prompt
from lsp_server.remote import RemoteBackend, shown_url
from lsp_server.retrieval import Retriever, Snippet
from lsp_server.settings import ServerSettings
from lsp_server.telemetry import Origin
from model.engine import Completion, CompletionEngine, GenerationOptions
from model.prompt_format import Prompt, completion_prompt, head_lines, tail_lines
from model.scoring import score_middles

log = logging.getLogger(__name__)
MIN_RECALLED_CHARS = 2  # line memory suggests the rest of a line only when it has this many visible characters
# Reading the workspace ahead goes in slices this long: a completion waits at most one.
READ_AHEAD_SLICE_S = 0.05
MAX_BROKEN_CANDIDATES = 8  # line memory stops looking after this many candidates that break the code
# Line memory's candidates are judged on this share of the prompt budgets.  Judging comes
# before the model's own pass on every keystroke line memory answers, so its cost is the
# keystroke's: a quarter of the window ranks them as well as half did on the dev set (EM /
# ES 38.3 / 67.3 both; 26 of 642 answers differ, 3 won and 3 lost) and the keystroke p95
# fell from 234-287 to 193-223 ms on a 2-core CPU (docs/benchmarks.md, twenty-fifth session).
SCORING_WINDOW = 0.25
# In an empty block body line memory's line is shown instead of the model's block from this
# confidence on (the precision of its suggestions there: ~70 %, fit_ranker's curve).
BLOCK_LINE_SURE = 0.5
# One of the lines written most often (``common`` candidates: ``try:``, ``return None``) is
# shown from this confidence on; below it the next candidate is, or the model writes the
# line.  On the dev set, shown at any confidence, such lines replaced the model's on 36
# positions below 0.4 (3 right answers gained, 7 lost) and on 8 above it (7 gained).
COMMON_SURE = 0.4


@dataclass
class DocumentContext:
    """What the prompt may draw on besides the document itself."""

    file_path: Path | None = None  # the document's path on disk, if it is a file
    open_docs: dict[Path, tuple[int, str]] | None = None  # other open documents: (version, text)
    root: Path | None = None  # workspace folder to retrieve from
    uri: str = ""
    language_id: str | None = None


@dataclass
class _Plan:
    """What one request asks of the model: single line or block, and the prompt for it."""

    prefix: str
    suffix: str
    lang: str | None
    block: BlockRequest | None
    max_tokens: int
    prompt: Prompt
    snippets: list[Snippet]


@dataclass
class CompletionResult:
    text: str
    completion: Completion | None  # None: no model call was made
    note: str | None = None  # something the status bar should say (why the model was not asked)
    origin: Origin | None = None  # set when ``text`` is a suggestion


class CompletionService:
    def __init__(self, on_error: Callable[[str], None], on_warning: Callable[[str], None] | None = None) -> None:
        self.cache = TypeAheadCache()
        # Suggestions cached from a model that was replaced (re-adapted, a new export, another
        # modelPath) are not shown again: the next request at that position asks the new one.
        self.models = ModelHolder(on_error, on_swap=self.cache.clear)
        self.remote = RemoteBackend(on_warning or on_error)
        # One worker: generations run one at a time, newest first matters more than throughput.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghostline-gen")
        self._tickets: dict[str, int] = {}
        self._cancel_events: dict[str, threading.Event] = {}
        self.last_latency: float | None = None
        self.retriever = Retriever()  # used only from the worker thread
        self._read_ahead: set[tuple[str, str]] = set()
        self.line_memory = LineMemory()
        self.scored_weights = scored_weights()
        self._generating = 0  # completions handed to the worker and not back yet (event loop only)

    def generating(self) -> bool:
        """Whether a completion is being worked on now (read from any thread): background
        work (the similarity index) makes way for it."""
        return self._generating > 0

    def read_ahead(self, settings: ServerSettings, context: DocumentContext) -> None:
        """Read the workspace files that completions in this document draw on, in slices
        queued between completions (``Retriever.warm``), once per folder and language family."""
        if not (settings.enabled and settings.retrieval) or context.file_path is None or context.root is None:
            return
        key = (str(context.root), family_of(context.file_path))
        if key in self._read_ahead:
            return
        self._read_ahead.add(key)

        def read_slice() -> None:
            try:
                done = self.retriever.warm(context.file_path, context.root, READ_AHEAD_SLICE_S)
            except Exception:  # noqa: BLE001 - reading ahead only saves time; completions read as before
                log.exception("reading the workspace ahead failed")
                return
            if not done:
                self._submit(read_slice)  # behind the completions queued meanwhile

        self._submit(read_slice)

    def _submit(self, fn: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # shut down: nothing more to do
            self._executor.submit(fn)

    def preload(self, settings: ServerSettings, on_done: Callable[[], None] | None = None) -> None:
        """Load the model in the worker thread so the first completion does not wait for it."""
        future = self._executor.submit(self.models.get, settings)
        if on_done is not None:
            loop = asyncio.get_running_loop()
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(on_done))

    def _supersede(self, uri: str) -> int:
        ticket = self._tickets.get(uri, 0) + 1
        self._tickets[uri] = ticket
        old = self._cancel_events.pop(uri, None)
        if old is not None:
            old.set()
        return ticket

    async def complete(self, uri: str, path: str, text: str, offset: int,
                       settings: ServerSettings, context: DocumentContext | None = None) -> CompletionResult:
        if not settings.enabled:
            return CompletionResult("", None)
        ticket = self._supersede(uri)
        prefix, suffix, line_break = cursor_window(text, offset)
        cached = self.cache.lookup(uri, prefix, suffix)
        if cached is not None:
            text, origin = cached
            return CompletionResult(text.replace("\n", line_break), None, origin=origin if text else None)
        if settings.debounce_ms:
            await asyncio.sleep(settings.debounce_ms / 1000)
        if self._tickets.get(uri) != ticket:
            return CompletionResult("", None)
        cancel = threading.Event()
        self._cancel_events[uri] = cancel
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        self._generating += 1
        try:
            result = await loop.run_in_executor(
                self._executor, self._generate, path, prefix, suffix, settings, cancel,
                context or DocumentContext(uri=uri),
            )
        except asyncio.CancelledError:
            cancel.set()  # $/cancelRequest: stop the generator at the next token
            raise
        finally:
            self._generating -= 1
            if self._cancel_events.get(uri) is cancel:
                del self._cancel_events[uri]
        if result.completion is not None:
            self.last_latency = time.perf_counter() - t0
        if line_break != "\n":
            result.text = result.text.replace("\n", line_break)
        return result

    def _mode(self, path: str, prefix: str, suffix: str, settings: ServerSettings,
              context: DocumentContext) -> tuple[str | None, BlockRequest | None]:
        """The language, and the block to write when the cursor sits in an empty block body
        (tree-sitter decides); ``None`` asks for the rest of the line."""
        language = language_of(path, context.language_id)
        lang = language.id if language is not None else None
        return lang, empty_block_at_cursor(prefix, suffix, lang) if settings.multiline else None

    def _recall(self, prefix: str, suffix: str, settings: ServerSettings,
                context: DocumentContext, lang: str | None, limit: int = 1) -> list[Candidate]:
        """Line memory (``line_memory.py``): the first ``limit`` ways the code base already
        writes the rest of the line, best first, their text cleaned for this position (no
        model call)."""
        files = ()
        if settings.retrieval and context.file_path is not None:
            files = self.retriever.file_lines(context.file_path, context.open_docs or {}, context.root)
        ranked, broken, check = [], 0, LineCheck.at(prefix, suffix, lang)
        repeats = repeated_lines(prefix, suffix)
        in_docstring = None
        for c in self.line_memory.candidates(prefix, suffix, files):
            if c.kind == "common" and lang == "python":
                # A line written everywhere (``return None``) is no line of a docstring.
                in_docstring = in_triple_quoted_string(prefix) if in_docstring is None else in_docstring
                if in_docstring:
                    continue
            c.text = _clean_line(c.text, prefix, suffix, check)
            # A copied lone bracket or comma is rarely what comes next (0 of 29 right on the
            # dev set, where the model was right on 5): not worth showing from memory.
            if len(c.text.strip()) < MIN_RECALLED_CHARS or c.text.strip() in repeats:
                continue
            # Nor is a line that would break the code around it; each check parses a few
            # thousand lines (~2 ms), so where most candidates break it, the rest are not tried.
            if check is not None and check.added_errors(c.text) > 0:
                broken += 1
                if broken == MAX_BROKEN_CANDIDATES:
                    break
                continue
            ranked.append(c)
            if len(ranked) == limit:
                break
        return ranked

    def _judged(self, recalled: list[Candidate], path: str, prefix: str, suffix: str, settings: ServerSettings,
                lang: str | None) -> list[Candidate]:
        """Line memory's candidates ranked again with the model's view: each scored as the
        fill of the cursor's line in a fill-in-the-middle prompt (the document around it,
        the server's prompt budgets; one batch), then ordered by the weights fitted on those
        scores, with their confidences.  Where the model cannot judge (scoring off, a
        remote backend, a language it does not know, no model) the cheap ranking stands."""
        if not recalled or not settings.score_candidates or settings.backend == "remote":
            return recalled
        engine = self.models.get(settings)
        if engine is None or self._language_note(engine, lang) is not None:
            return recalled
        head = recalled[: settings.score_candidates]
        line = prefix.rsplit("\n", 1)[-1]
        prefix_budget, suffix_budget, _ = budgets(engine, settings, settings.max_tokens)
        prompt = completion_prompt(engine.tokenizer, engine.special, path, prefix[: len(prefix) - len(line)], suffix,
                                   max_prefix_tokens=int(prefix_budget * SCORING_WINDOW),
                                   max_suffix_tokens=int(suffix_budget * SCORING_WINDOW))
        scores = score_middles(engine, prompt.ids, [line + c.text for c in head], max_len=engine.max_seq_len)
        if not scores:
            return recalled
        attach_line_scores(head, scores)
        return rank(head, line.lstrip(), self.scored_weights)

    @staticmethod
    def _language_note(engine: CompletionEngine, lang: str | None) -> str | None:
        """Why the model is not asked here: it was not trained on this language."""
        if engine.languages is None or lang in engine.languages:
            return None
        return (f"the model knows {', '.join(engine.languages)} only: "
                f"{lang or 'this language'} gets line memory, no model guesses")

    def _plan(self, engine: CompletionEngine, path: str, prefix: str, suffix: str,
              settings: ServerSettings, context: DocumentContext,
              mode: tuple[str | None, BlockRequest | None] | None = None) -> _Plan:
        """Single line or block (tree-sitter decides), and the prompt with its context;
        ``prefix`` and ``suffix`` come from ``cursor_window``."""
        lang, block = mode or self._mode(path, prefix, suffix, settings, context)
        max_tokens = settings.max_block_tokens if block else settings.max_tokens
        prompt, snippets = build_prompt(engine, path, prefix, suffix, settings, max_tokens,
                                        retriever=self.retriever, file_path=context.file_path,
                                        open_docs=context.open_docs, root=context.root)
        return _Plan(prefix, suffix, lang, block, max_tokens, prompt, snippets)

    def _generate(self, path: str, prefix: str, suffix: str, settings: ServerSettings,
                  cancel: threading.Event, context: DocumentContext) -> CompletionResult:
        if cancel.is_set():
            return CompletionResult("", None)
        lang, block = self._mode(path, prefix, suffix, settings, context)
        language = context.language_id or lang or "unknown"
        remembered = None  # line memory's answer, when the model is asked for a second opinion
        if settings.line_memory:
            recalled = self._recall(prefix, suffix, settings, context, lang, limit=max(1, settings.score_candidates))
            best = _shown(self._judged(recalled, path, prefix, suffix, settings, lang), settings)
            if block is not None:
                # An empty block body: the model writes the block, unless line memory is sure
                # of the body's line (the model's first line was right on 3 of the dev set's
                # 17 empty bodies; line memory's sure lines on ~70 % of what they answer).
                if best is not None and best.confidence >= BLOCK_LINE_SURE:
                    return self._remember(best, prefix, suffix, language, context)
            elif best is not None:
                result = self._remember(best, prefix, suffix, language, context)
                if not _wants_second_opinion(best, settings):
                    return result
                remembered = result
        if settings.backend == "remote" and settings.remote_url:  # (never with a second opinion)
            result = self._generate_remote(path, prefix, suffix, settings, cancel, context, lang, block)
            if result is not None:
                return result  # else the server cannot be used now: the local model answers
        engine = self.models.get(settings)
        if engine is None:
            return remembered or CompletionResult("", None)
        note = self._language_note(engine, lang)
        if note is not None:
            return remembered or CompletionResult("", None, note=note)
        plan = self._plan(engine, path, prefix, suffix, settings, context, mode=(lang, block))
        options = GenerationOptions(max_tokens=plan.max_tokens, single_line=block is None,
                                    reuse_static_prompt=settings.static_prompt_reuse, heal=settings.token_healing,
                                    beam_size=settings.beam_size,
                                    not_lines=repeated_lines(prefix, suffix) if block is None else (),
                                    unindented=block is None and starts_at_module_level(prefix, suffix, lang),
                                    indented=block is not None and block.at_line_start)
        stop = block_stop_rule(block, settings.max_block_lines) if block else None
        completion = engine.complete(plan.prompt, options, cancelled=cancel.is_set, stop=stop)

        def asked_again(asked: GenerationOptions) -> Completion:
            """The model's line for the same prompt asked otherwise; its time counts both passes."""
            again = engine.complete(plan.prompt, asked, cancelled=cancel.is_set, stop=stop)
            again.seconds += completion.seconds
            return again

        if block is None and has_pragma(completion.text) and not cancel.is_set():
            # A pragma nobody asked for: the line the model writes without any comment.
            log.info("a pragma from the model (%r): asking again for code", completion.text)
            options = replace(options, no_comments=True)
            completion = asked_again(options)
        if block is None and extends_a_whole_name(prefix, suffix, completion.text) and not cancel.is_set():
            log.info("the model glued %r onto a whole name: asking again for the name's end", completion.text)
            completion = asked_again(replace(options, word_ended=True))
        if block is None and not cancel.is_set():
            word = known_name_for(prefix, suffix, completion.text, self.retriever.names_starting)
            if word is not None:
                log.info("the model finished the word into a name used nowhere (%r): asking again with %r",
                         completion.text, word)
                completion = asked_again(replace(options, word=word))
        log.info("completion %s: %d tokens in %.0f ms (%s%s); confidence %.2f", path, completion.tokens,
                 1000 * completion.seconds, completion.stop_reason, ", block" if block else "",
                 completion.confidence)
        if completion.stop_reason == "cancelled" or cancel.is_set():
            return CompletionResult("", completion)
        result = self._finish(completion, prefix, suffix, lang, block, settings, context)
        if remembered is not None:
            # The model's line replaces line memory's only where it is sure and says something
            # else: a line that line memory's merely extends is the same suggestion, shorter.
            if result.text and completion.confidence >= engine.second_opinion_sure \
                    and not remembered.text.strip().startswith(result.text.strip()):
                log.info("the model's line replaces line memory's (confidence %.2f against %.2f)",
                         completion.confidence, remembered.origin.confidence)
                return result
            self.cache.put(context.uri, prefix, suffix, remembered.text, remembered.origin)
            return remembered
        return result

    def _remember(self, best: Candidate, prefix: str, suffix: str, language: str,
                  context: DocumentContext) -> CompletionResult:
        """Line memory's answer, logged and cached."""
        log.info("line memory %s: %d characters (%s, confidence %.2f)", context.uri, len(best.text),
                 best.kind, best.confidence)
        origin = Origin.new("line memory", language, best.confidence, None)
        self.cache.put(context.uri, prefix, suffix, best.text, origin)
        return CompletionResult(best.text, None, origin=origin)

    def _finish(self, completion: Completion, prefix: str, suffix: str, lang: str | None,
                block: BlockRequest | None, settings: ServerSettings, context: DocumentContext,
                scored: bool = True) -> CompletionResult:
        """Post-process a model's text for this position, cache and return it; ``scored``:
        the completion's confidence is known (``minConfidence`` applies)."""
        prefix_line = prefix.rsplit("\n", 1)[-1]
        raw = completion.text
        if prefix_line and not prefix_line.strip():
            raw = raw.lstrip(" \t")  # the line is already indented: don't indent it twice
        if block:
            text = trim_to_valid(prefix, clean_block(raw, suffix), suffix, lang)
        else:
            text = _clean_line(raw, prefix, suffix, LineCheck.at(prefix, suffix, lang))
        if scored and completion.confidence < settings.min_confidence:
            text = ""
        origin = None
        if text:
            language = context.language_id or lang or "unknown"
            if not scored:
                origin = Origin.new("remote model", language, completion.confidence, shown_url(settings.remote_url))
            else:
                source = "adapted model" if self.models.adapted is not None else "model"
                origin = Origin.new(source, language, completion.confidence, self.models.label(settings))
        self.cache.put(context.uri, prefix, suffix, text, origin)
        return CompletionResult(text, completion, origin=origin)

    def _generate_remote(self, path: str, prefix: str, suffix: str, settings: ServerSettings,
                         cancel: threading.Event, context: DocumentContext, lang: str | None,
                         block: BlockRequest | None) -> CompletionResult | None:
        """The remote server's completion, post-processed as the local model's; None when the
        server cannot be used (``remote.py`` has told the user once).

        It gets the document around the cursor, as much as the prompt budgets allow (it
        trims to its own model's context), not the retrieved snippets: those are cut to
        the local model's tokens.  It reports no token probabilities, so its completions
        pass ``minConfidence``."""
        t0 = time.perf_counter()
        body = {
            "model": "ghostline", "prompt": tail_lines(prefix, 8 * settings.max_prefix_tokens),
            "suffix": head_lines(suffix, 8 * settings.max_suffix_tokens), "path": path, "temperature": 0,
            "max_tokens": settings.max_block_tokens if block else settings.max_tokens,
        }
        if block is None:
            body["stop"] = ["\n"]
        answer = self.remote.complete(settings.remote_url, settings.remote_token, body)
        if answer is None:
            return None
        text = answer.text
        if block is not None:
            cut = block_stop_rule(block, settings.max_block_lines)(text)
            text = text if cut is None else text[:cut]
        completion = Completion(text=text, tokens=answer.tokens, seconds=time.perf_counter() - t0,
                                stop_reason="max_tokens" if answer.finish_reason == "length" else "eot")
        log.info("remote completion %s: %d characters in %.0f ms (%s%s)", path, len(text), 1000 * completion.seconds,
                 answer.finish_reason, ", block" if block else "")
        if cancel.is_set():
            return CompletionResult("", completion)
        return self._finish(completion, prefix, suffix, lang, block, settings, context, scored=False)

    async def explain(self, path: str, text: str, offset: int, settings: ServerSettings,
                      context: DocumentContext) -> dict:
        """The prompt a completion here would use, decoded, with the retrieved snippets, and
        the suggestion last shown here (the type-ahead cache's: text, source, confidence)."""
        prefix, suffix, _ = cursor_window(text, offset)
        hit = self.cache.lookup(context.uri, prefix, suffix) if context.uri else None
        last = None
        if hit is not None and hit[0] and hit[1] is not None:
            last = {"text": hit[0], "source": hit[1].source, "confidence": round(hit[1].confidence, 3)}

        def work() -> dict:
            engine = self.models.get(settings)
            if engine is None:
                return {"error": self.models.error}
            plan = self._plan(engine, path, prefix, suffix, settings, context)
            recalled = self._recall(prefix, suffix, settings, context, plan.lang, limit=8) \
                if settings.line_memory else []
            if recalled:  # as a completion here ranks them: the first few judged by the model
                head = self._judged(recalled[: max(1, settings.score_candidates)], path, prefix, suffix,
                                    settings, plan.lang)
                recalled = head + recalled[len(head):]
            shown = _shown(recalled, settings)
            if plan.block and shown is not None and shown.confidence < BLOCK_LINE_SURE:
                shown = None  # the model writes the block
            return {
                "mode": "block" if plan.block else "line",
                "lineMemory": shown.text if shown else None,  # when set, the model is asked only as below
                "confidence": round(shown.confidence, 3) if shown else None,
                # line memory is unsure: the model writes the line too, and is shown if it is sure
                "secondOpinion": shown is not None and not plan.block and _wants_second_opinion(shown, settings),
                "candidates": [{"text": c.text, "kind": c.kind, "confidence": round(c.confidence, 3),
                                "document": c.doc_count, "workspace": c.ws_count} for c in recalled],
                "minConfidence": settings.min_confidence,
                "suggestion": last,  # null when nothing was shown here (or it left the cache)
                "languageNote": self._language_note(engine, plan.lang),
                "prompt": engine.tokenizer.decode(plan.prompt.ids, skip_special_tokens=False),
                "staticTokens": len(plan.prompt.static),
                "dynamicTokens": len(plan.prompt.dynamic),
                "context": [{"path": s.path, "startLine": s.start_line, "score": round(s.score, 3)}
                            for s in plan.snippets],
            }

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def shutdown(self) -> None:
        for event in self._cancel_events.values():
            event.set()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _clean_line(text: str, prefix: str, suffix: str, check: LineCheck | None) -> str:
    """A suggestion for the rest of the cursor's line, trimmed for the text around it.  Its
    closing brackets stay when they close brackets opened on lines above (``check``: the
    code parses better with them), else only those matching what the line opened."""
    rest_of_line, line_start = suffix.split("\n", 1)[0], prefix.rsplit("\n", 1)[-1]
    balanced = clean_single_line(text, rest_of_line, line_start)
    if check is None:
        return balanced
    whole = clean_single_line(text, rest_of_line, line_start, balance=False)
    if whole != balanced and check.added_errors(whole) < 0:
        return whole
    return balanced


_WORD = re.compile(r"\w")
REPEAT_LOOKBACK_CHARS = 4000  # the line above is looked for this far back (blank lines between)


def repeated_lines(prefix: str, suffix: str) -> tuple[str, ...]:
    """What the rest of the cursor's line would be if the line wrote the non-blank line
    above or below it again (stripped; only lines with a word in them, and only where the
    text typed so far starts them).  Neither line memory nor the model suggests these: no
    line of the dev set repeats the one above it and one repeats the one below, while 35
    of line memory's candidates and 9 of the model's wrong lines repeated the line above
    (in this Python's standard library 0.7 % of lines repeat the one above)."""
    lines = prefix[-REPEAT_LOOKBACK_CHARS:].split("\n")
    typed = lines[-1].strip()
    above = line_above(lines, len(lines) - 1)
    below = line_below(suffix[:REPEAT_LOOKBACK_CHARS].split("\n"), 1)
    return tuple(line[len(typed):].strip() for line in dict.fromkeys((above, below))
                 if _WORD.search(line) and line != typed and line.startswith(typed))


def _wants_second_opinion(best: Candidate, settings: ServerSettings) -> bool:
    """Line memory's shown candidate is unsure enough, by the model's own judgement, that
    the model writes the line too (a remote server gives no confidence to compare)."""
    return best.scored and best.confidence < settings.second_opinion_below and settings.backend != "remote"


def _shown(recalled: list[Candidate], settings: ServerSettings) -> Candidate | None:
    """Line memory's suggestion: its best candidate (passing over common lines below
    ``COMMON_SURE``), if sure enough for ``minConfidence``."""
    for c in recalled:
        if c.kind == "common" and c.confidence < COMMON_SURE:
            continue  # an unsure common line makes way for the next candidate
        return c if c.confidence >= settings.min_confidence else None
    return None
