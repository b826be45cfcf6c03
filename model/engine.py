"""CompletionEngine: one object that owns the CTranslate2 generator and its tokenizer.

No torch on this path: importing this module and loading a model takes well under a
second, so the language server starts fast and small.

Prefix reuse: prompts come split into a ``static`` part (everything up to the line the
cursor is on) and a ``dynamic`` part.  The static part is handed to CTranslate2 as
``static_prompt`` with caching on, so while the user types on one line only the current
line and the generated tokens cost compute.
"""

from __future__ import annotations

import atexit
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

import ctranslate2
import numpy as np
from tokenizers import Tokenizer

from model.config import MODEL_CONFIG_FILE, ModelConfig
from model.prompt_format import Prompt
from model.tokenizer import encode, load_tokenizer, special_ids

StopRule = Callable[[str], "int | None"]

BEAM_MAX_TOKENS = 64
# Healing a word no one token finishes writes it again token by token: at most this many
# passes of the model, one per token tried (see ``_heal_across_tokens``).
HEAL_ACROSS_PASSES = 4
# A half-typed word is finished by a longer token that the model finds at least this many
# nats likelier than the word's tokens as they were typed (see ``_finishes_word``).
HEAL_WORD_MARGIN = 2.0


def _given_typed(log_probs: np.ndarray, token: int, allowed: np.ndarray) -> float:
    """A healed token's log-probability given what the user typed: among ``allowed``, the
    tokens that write it.  The typed characters are not the model's guess, so they do not
    count against a completion's confidence (after ``for i, item in``, `` enumerate`` has
    0.05 % of all the model's belief and nearly all of it among the tokens that start with
    `` enumer``)."""
    chosen = log_probs[allowed]
    top = float(chosen.max())
    return float(log_probs[token]) - top - float(np.log(np.exp(chosen - top).sum()))


class ModelLoadError(RuntimeError):
    """The model folder is missing, incomplete or unreadable; the message says which."""


@dataclass
class GenerationOptions:
    max_tokens: int = 48
    single_line: bool = True
    reuse_static_prompt: bool = True
    # Token healing: the cursor often splits what the tokenizer would keep whole (``json.du``
    # before ``dump``, ``x = `` before `` None``), and a prompt ending in such a fragment is
    # one the model rarely saw in training.  The fragment's token is taken back out of the
    # prompt and the first generated token must start with its text.
    heal: bool = False
    heal_alternatives: int = 16  # the continuing token must rank among this many likeliest first tokens
    heal_tokens: int = 3  # the most tokens taken back
    # Beam search for single lines: the best of ``beam_size`` whole lines by the model's
    # length-normalised score, rather than the line the likeliest token at each step makes.
    # CTranslate2 decodes beams in one uncancellable call, so only lines of at most
    # ``BEAM_MAX_TOKENS`` get it (a few tens of ms); longer budgets decode greedily and
    # stop within a token when cancelled.  1 is greedy.
    beam_size: int = 1
    # The line's first character may not be blank: the first token is the likeliest that
    # starts with something else (the server asks this where no indentation is valid).
    unindented: bool = False
    # The opposite, for a block: its first line must be indented (the server asks this for an
    # empty body with the cursor at column 0, where Python allows only an indented line).
    indented: bool = False
    # The cursor ends a whole word: the first token may not go on with it (it starts with no
    # letter, digit or underscore), and nothing is healed.  The server asks this where the
    # model glued more onto a name the document uses into one it never uses.
    word_ended: bool = False
    # No token holding a ``#``: the line is code, no comment (the server asks again this way
    # where the model's line is a linter pragma, which it copies from annotated code).
    no_comments: bool = False
    # Lines the answer should not be (stripped; the server passes what would repeat the
    # line above or below, which a small model writes again where it has nothing better):
    # beam search answers with its next best line instead.
    not_lines: tuple[str, ...] = ()
    # The half-typed word at the cursor is to be this name (the server passes one the code
    # base uses where the model finished the word into a name used nowhere): the word's typed
    # tokens are taken back, the whole name is written as the middle's first tokens, and the
    # model goes on after it.  Nothing is healed.
    word: str = ""


@dataclass
class Completion:
    text: str
    tokens: int
    stop_reason: str  # "eol", "eot", "max_tokens", "stop_rule", "cancelled"
    seconds: float
    logprob: float = 0.0  # sum of the generated tokens' log-probabilities (the line break's too)

    @property
    def confidence(self) -> float:
        """The geometric mean of the tokens' probabilities: how sure the model was, from 0
        to 1 (not calibrated as a chance of being right)."""
        return math.exp(self.logprob / self.tokens) if self.tokens else 0.0


@dataclass(frozen=True)
class _Start:
    """The tokens a completion starts with, chosen before decoding (token healing, a
    constraint on the first token): their ids and log-probabilities, and the text at the
    end of the prompt that they write again (left out of the answer)."""

    ids: tuple[int, ...]
    log_probs: tuple[float, ...]
    fragment: str = ""


def _is_word_char(ch: str) -> bool:
    """A letter, a digit or an underscore: a character of a name."""
    return ch.isalnum() or ch == "_"


def _is_indentation(text: str) -> bool:
    """A line break and the blanks (if any) that indent the next line: the cursor at the
    start of a line's code, as one token."""
    return text[:1] in ("\n", "\r") and not text.strip(" \t\r\n")


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return device


def end_of_line(text: str) -> int | None:
    """Stop rule for single-line completions: cut at the first line break."""
    i = text.find("\n")
    return None if i < 0 else i


def first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    """Where the earliest of the ``stops`` strings begins in ``text``, or None."""
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(cuts) if cuts else None


def shown_part(text: str, stops: tuple[str, ...]) -> str:
    """The part of ``text`` that may be shown while generation goes on: without half a
    UTF-8 character, and without an ending that could still grow into a stop string (it
    is held back until the next token settles it)."""
    text = text.rstrip("\ufffd")
    hold = max((k for s in stops for k in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:k])),
               default=0)
    return text[:len(text) - hold]


@dataclass
class BatchRequest:
    """One prompt of a batch, with limits of its own (a batch shares only the sampling)."""

    ids: list[int]
    max_tokens: int
    stop: tuple[str, ...] = ()  # strings that end the text; the text stops before the first one
    on_text: Callable[[str], None] | None = None  # called with the text so far that may be shown
    cancelled: Callable[[], bool] = lambda: False
    heal: bool = False  # token healing, as ``GenerationOptions.heal``
    indented: bool = False  # the first line indented, as ``GenerationOptions.indented``
    word_ended: bool = False  # the first token continues no word, as ``GenerationOptions.word_ended``


def _starts_chosen(request: BatchRequest) -> bool:
    """Whether the request's first tokens are chosen before the batch generates."""
    return request.heal or request.indented or request.word_ended


@dataclass(frozen=True)
class Sampling:
    """How a batch picks tokens: greedy at temperature 0, else sampled (nucleus ``top_p``)."""

    temperature: float = 0.0
    top_p: float = 1.0


class _Decoding:
    """The state of one request inside ``complete_batch``: its tokens and why it ended."""

    def __init__(self, request: BatchRequest) -> None:
        self.request = request
        self.ids: list[int] = []
        self.logprob = 0.0
        self.text = ""
        self.reason: str | None = None  # set once the request is done
        self.shown = ""
        self.fragment = ""  # healed: the prompt's text that the first token repeats, left out of ``text``

    def completion(self, seconds: float) -> Completion:
        return Completion(text=self.text.rstrip("\ufffd"), tokens=len(self.ids), stop_reason=self.reason or "eot",
                          seconds=seconds, logprob=self.logprob)


# What the cached static prompts may hold, about, whatever the model's shape: a deeper or
# wider model keeps fewer of them.  A static prompt is ~384 tokens (the prefix, suffix and
# retrieval budgets); its state is a float32 key and value per layer and token.
STATIC_CACHE_BYTES = 48 * 2**20
_STATIC_PROMPT_TOKENS = 384


def _static_cache_entries(model_dir: Path) -> int:
    """How many static prompts fit ``STATIC_CACHE_BYTES`` for this model (16 for a model
    exported elsewhere, whose shape we do not know)."""
    try:
        config = ModelConfig.load(model_dir)
    except Exception:  # noqa: BLE001 - no ghostline_model.json: a model exported elsewhere
        return 16
    per_prompt = config.n_layer * 2 * _STATIC_PROMPT_TOKENS * config.d_model * 4
    return max(4, STATIC_CACHE_BYTES // per_prompt)


def _serving_facts(model_dir: Path) -> tuple[int, tuple[str, ...] | None, float]:
    """The context the model was trained with, the languages it knows and the confidence
    from which its line replaces line memory's unsure one, from ``ghostline_model.json``.

    Missing, it is a model exported elsewhere: assume a common context, and ask it anything
    (``None``: we cannot know its languages).  Present but unreadable, it is an error:
    guessing would build prompts far past what the model saw (the shipped model has 256
    positions), which fails without a word to the user.
    """
    if not (model_dir / MODEL_CONFIG_FILE).exists():
        return 2048, None, ModelConfig.second_opinion_sure
    try:
        config = ModelConfig.load(model_dir)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, the user hears the same
        raise ModelLoadError(f"{MODEL_CONFIG_FILE} of {model_dir} is unusable: {exc}") from exc
    length, languages = config.max_seq_len, config.languages
    if not isinstance(length, int) or isinstance(length, bool) or length < 16:
        raise ModelLoadError(f"{MODEL_CONFIG_FILE} of {model_dir} is unusable: max_seq_len {length!r}")
    if not isinstance(languages, tuple) or not all(isinstance(lang, str) for lang in languages):
        raise ModelLoadError(f"{MODEL_CONFIG_FILE} of {model_dir} is unusable: languages {languages!r}")
    sure = config.second_opinion_sure
    if not isinstance(sure, int | float) or isinstance(sure, bool) or not 0.0 <= sure <= 1.0:
        raise ModelLoadError(f"{MODEL_CONFIG_FILE} of {model_dir} is unusable: second_opinion_sure {sure!r}")
    return length, languages, float(sure)


_open_engines: weakref.WeakSet[CompletionEngine] = weakref.WeakSet()


@atexit.register
def _close_open_engines() -> None:
    for engine in list(_open_engines):
        engine.close()


class CompletionEngine:
    """Greedy code completion over a CTranslate2 model folder."""

    def __init__(self, model_dir: Path, device: str = "auto", compute_type: str = "default",
                 cpu_threads: int = 0, static_cache_entries: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "model.bin").is_file():
            raise ModelLoadError(f"no model at {self.model_dir} (model.bin is missing)")
        try:
            self.tokenizer = load_tokenizer(self.model_dir)
            self.special = special_ids(self.tokenizer)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"tokenizer of {self.model_dir} is unusable: {exc}") from exc
        sp = self.special
        self._special_ids = {sp.eot, sp.fim_prefix, sp.fim_middle, sp.fim_suffix, sp.file_sep}
        self.device = resolve_device(device)
        try:
            self.generator = ctranslate2.Generator(
                str(self.model_dir), device=self.device, compute_type=compute_type,
                intra_threads=cpu_threads,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelLoadError(f"cannot load {self.model_dir}: {exc}") from exc
        self.languages: tuple[str, ...] | None
        self.max_seq_len, self.languages, self.second_opinion_sure = _serving_facts(self.model_dir)
        vocab = self.tokenizer.get_vocab_size()
        self._tokens = [self.tokenizer.id_to_token(i) for i in range(vocab)]
        self._token_texts: list[str] | None = None  # each token decoded, for healing (built on first use)
        self._continuations: dict[str, np.ndarray] = {}  # fragment -> the tokens that start with it
        self._token_ids: dict[str, int] | None = None  # each token's text -> its id (built on first use)
        self._line_ends: list[int] | None = None  # end-of-text and every token holding a line break
        self._unindented_ids: np.ndarray | None = None  # tokens that start with a non-blank character
        self._indented_ids: np.ndarray | None = None  # tokens that start with a space or a tab
        self._after_word_ids: np.ndarray | None = None  # tokens that start with no word character
        self._comment_ids: np.ndarray | None = None  # tokens holding a "#"
        self._lock = threading.Lock()  # one generation at a time: the CPU has no spare cores
        # CTranslate2 keeps the state of every static prompt it has seen, without bound
        # (about 3 MB each for the default model); one per edited line adds up over a day.
        # Past this many distinct prompts the model is reloaded (~20 ms), which frees them.
        self.static_cache_entries = static_cache_entries or _static_cache_entries(self.model_dir)
        self._static_seen: set[int] = set()
        _open_engines.add(self)

    def close(self) -> None:
        """Free the model.

        Needed before the interpreter exits: CTranslate2 keeps the last step callback
        (``complete_batch``) alive in its worker, and freeing it while Python shuts down
        aborts the process ("terminate called without an active exception", exit 134).
        So every engine still open is closed at exit (``atexit`` below).  Waits for a
        running generation, at most a few seconds.
        """
        locked = self._lock.acquire(timeout=5)
        try:
            self.__dict__.pop("generator", None)
        finally:
            if locked:
                self._lock.release()

    @property
    def compute_type(self) -> str:
        return self.generator.compute_type

    def _token_strings(self, ids: list[int]) -> list[str]:
        return [self._tokens[i] for i in ids]

    def token_log_probs(self, batch: list[list[int]]) -> list[list[float]]:
        """For each id sequence, the log-probability of every token after the first."""
        with self._lock:
            results = self.generator.score_batch([self._token_strings(ids) for ids in batch])
        return [list(r.log_probs) for r in results]

    def stream(self, prompt: Prompt, options: GenerationOptions,
               cancelled: Callable[[], bool] = lambda: False) -> Iterator[tuple[int, float]]:
        """Yield ``(token id, log-probability)`` until end-of-text, ``max_tokens`` or cancellation.

        The underlying CTranslate2 generator is closed in ``finally``, which stops decoding
        within one token whether the caller stops iterating or ``cancelled()`` turns true.
        """
        start, cache = self._start(prompt, options)
        steps = self.generator.generate_tokens(start, max_length=options.max_tokens, sampling_topk=1,
                                               end_token=[self.special.eot], return_log_prob=True,
                                               **cache, **self._suppressed(options))
        try:
            for step in steps:
                if cancelled():
                    return
                if step.token_id == self.special.eot:
                    return
                yield step.token_id, step.log_prob
        finally:
            steps.close()

    def _start(self, prompt: Prompt, options: GenerationOptions) -> tuple[list[str], dict]:
        """The start tokens for CTranslate2 and the static-prompt arguments that go with them:
        with reuse on, the static part is handed over (and cached) apart from the rest."""
        if not options.reuse_static_prompt:
            return self._token_strings(prompt.ids), {}
        self._track_static_prompt(prompt.static)
        return self._token_strings(prompt.dynamic), {"static_prompt": self._token_strings(prompt.static),
                                                     "cache_static_prompt": True}

    def _track_static_prompt(self, static: list[int]) -> None:
        key = hash(tuple(static))
        if key in self._static_seen:
            return
        if len(self._static_seen) >= self.static_cache_entries:
            self.generator.unload_model()
            self.generator.load_model()
            self._static_seen.clear()
        self._static_seen.add(key)

    def complete_batch(self, requests: list[BatchRequest], sampling: Sampling | None = None) -> list[Completion]:
        """Generate for several prompts at once (one ``generate_batch``), each to its own
        ``max_tokens`` and ``stop`` strings; the results in the order of ``requests``.

        Batching pays off where a step is cheaper per sequence in a batch than alone
        (decoding, and on a GPU everything).  Each request is stopped by the step callback
        as soon as it is done, so a short answer never waits for a long one's tokens, and
        ``cancelled()`` stops it within one token.  Stop strings are matched on the decoded
        text, so they work across token boundaries.
        """
        if not requests:
            return []
        sampling = sampling or Sampling()
        t0 = time.perf_counter()
        states = [_Decoding(r) for r in requests]
        kwargs: dict = {"sampling_topk": 1}
        if sampling.temperature > 0:
            kwargs = {"sampling_topk": 0, "sampling_temperature": sampling.temperature,
                      "sampling_topp": sampling.top_p}

        with self._lock:
            # Healing takes each request's first token before the batch (it may end a request).
            prompts = [self._healed_start(state) if _starts_chosen(state.request) else state.request.ids
                       for state in states]
            live = [i for i, state in enumerate(states) if state.reason is None]
            # The callback must not hold the engine: CTranslate2 drops it in its worker
            # thread after the call returns, and where that is the engine's last reference
            # the generator is freed there and joins its own thread (abort, exit 134).
            tokenizer, eot = self.tokenizer, self.special.eot

            def on_step(step) -> bool:
                state = states[live[step.batch_id]]
                if state.reason is not None:
                    return True
                try:
                    return _advance(state, step.token_id, step.log_prob, tokenizer, eot)
                except Exception:  # noqa: BLE001 - a failing listener (a closed stream) ends its request only
                    state.reason = "cancelled"
                    return True

            if live:
                self.generator.generate_batch(
                    [self._token_strings(prompts[i]) for i in live],
                    max_length=max(states[i].request.max_tokens - len(states[i].ids) for i in live),
                    include_prompt_in_result=False, end_token=[self.special.eot], return_scores=True,  # log-probs
                    callback=on_step, **kwargs)
        # Healed, the model may only give the fragment back and stop: it has nothing to add
        # there, but whoever typed the fragment wants more; those ask again without healing.
        again = [i for i, state in enumerate(states)
                 if state.fragment and not state.text.strip() and state.reason != "cancelled"]
        retried = self.complete_batch([replace(states[i].request, heal=False) for i in again], sampling)
        seconds = time.perf_counter() - t0
        completions = [state.completion(seconds) for state in states]
        for i, completion in zip(again, retried, strict=True):
            completion.seconds = seconds
            completions[i] = completion
        return completions

    def _healed_start(self, state: _Decoding) -> list[int]:
        """Heal ``state``'s prompt: its ids without the fragment's tokens, the chosen first
        tokens already taken into ``state`` (which may end it: a stop string, ``max_tokens``);
        or, asked for a word's end (not healed, as in ``complete``) or, not healed, for an
        indented block, its first token chosen so."""
        ids = state.request.ids
        # A request that a line break stops is one line; otherwise a bare line break at the
        # cursor is an empty body the model has to indent (``_heal``).
        options = GenerationOptions(reuse_static_prompt=False, heal=True, single_line="\n" in state.request.stop)
        if state.request.word_ended:
            healed = self._start_after_word(Prompt([], ids), options)
        else:
            healed = self._heal(Prompt([], ids), options) if state.request.heal else None
        if healed is None and state.request.indented:
            healed = self._start_indented(Prompt([], ids), options)
        if healed is None:
            return ids
        prompt, start = healed
        state.fragment = start.fragment
        for token, log_prob in zip(start.ids, start.log_probs, strict=True):
            if _advance(state, token, log_prob, self.tokenizer, self.special.eot):
                break
        return prompt.dynamic

    def _heal(self, prompt: Prompt, options: GenerationOptions) -> tuple[Prompt, _Start] | None:
        """Token healing: the prompt without the cursor's last tokens and with the tokens
        chosen to write them again (the likeliest whose text starts with theirs); None where
        there is nothing to heal (the start of the document) or no likely token continues
        the fragment.

        The cursor at the start of a line's code is healed too: the tokenizer keeps a line
        break and the indentation after it as one token, and a prompt that ends in one was,
        in training, mostly cut inside a run of blanks, so the model went on with more
        blanks and a closing bracket (``    )`` on 17 of the dev set's indented empty
        lines).  That token becomes the middle's first, as it is: the indentation (or,
        for a single line, column 0) is what the user chose.

        A half-typed word is often several tokens (``ret`` is ``re`` + ``t``), so the last
        three tokens are tried first, then two, then one: the longest fragment that one
        token continues wins (`` ret`` -> `` return``; ``self.na`` -> ``na`` -> ``name``).
        Each cut costs one short pass that gives the whole next-token distribution (asking
        for the likeliest alternatives instead costs a pass per alternative: 3-10x slower on
        CPU).  The cuts are not batched: CTranslate2 pads prompts of different lengths and
        the longer ones' next-token distributions come out wrong.
        """
        body, marker = self._body_and_marker(prompt)
        most = min(options.heal_tokens, len(body) - (0 if prompt.static else 1))
        scored: dict[int, np.ndarray] = {}  # k -> the distribution after the prompt without its last k tokens
        for k in range(most, 0, -1):
            tail = body[-k:]
            if any(t in self._special_ids for t in tail):
                continue
            fragment = self.tokenizer.decode(tail, skip_special_tokens=False)
            if not fragment or "\ufffd" in fragment:
                continue
            # A block (``single_line`` off) at column 0 is an empty body the user has not
            # indented yet: the model writes its indentation, so a bare line break is no choice.
            if k == 1 and _is_indentation(fragment) and (options.single_line or fragment.strip("\r\n")):
                # The indentation is what the user typed (a deeper one is another line's): the
                # very token, with no pass to rank it, and certain (it is not the model's guess).
                healed = Prompt(prompt.static, [*body[:-k], *marker])
                return Prompt(healed.static, [*healed.dynamic, tail[0]]), _Start((tail[0],), (0.0,), fragment)
            if "\n" in fragment or "\r" in fragment:
                continue
            allowed = self._tokens_starting_with(fragment)
            if options.no_comments:
                allowed = np.setdiff1d(allowed, self._comment_token_ids(), assume_unique=True)
            if not len(allowed):
                continue
            healed = Prompt(prompt.static, [*body[:-k], *marker])
            log_probs = scored.get(k)  # already there where a longer cut was compared with its typed tokens
            if log_probs is None:
                log_probs = scored[k] = self._next_token_log_probs(healed, options)
            first = int(allowed[np.argmax(log_probs[allowed])])
            # Only a likely continuation: an unlikely one would steer the model somewhere it
            # would not go, for a fragment it may rather end (``x = f`` then ``(``).  Blanks
            # are not ended that way: every way on from ``x = `` starts with its blank, and a
            # prompt left ending in one is cut where a model trained on token cuts
            # (``DataConfig.token_cut_rate``) never saw a cut.
            if not fragment.strip(" \t") or \
                    np.count_nonzero(log_probs > log_probs[first]) < options.heal_alternatives or \
                    self._finishes_word(prompt, options, body, marker, k, first, scored):
                return Prompt(healed.static, [*healed.dynamic, first]), _Start(
                    (first,), (_given_typed(log_probs, first, allowed),), fragment)
        return self._heal_across_tokens(prompt, options, body, marker, most, scored)

    def _heal_across_tokens(self, prompt: Prompt, options: GenerationOptions, body: list[int], marker: list[int],
                            most: int, scored: dict[int, np.ndarray]) -> tuple[Prompt, _Start] | None:
        """Healing a half-typed word that no one likely token finishes: ``wrappin`` is `` w``
        + ``rapp`` + ``in``, no token starts with `` wrappin`` or ``rappin``, and after
        ``rapp`` the model does not expect ``ing``.  The word's tokens are taken back and
        written again one token at a time, each the likeliest that either finishes what is
        left of the word or is a piece of it, until the word is written; None where one of
        them is unlikely (the word may be whole).

        Only a word's tokens (letters, digits, underscores; the first may start with a
        blank), at most ``heal_tokens`` of them; one pass per token tried, at most
        ``HEAL_ACROSS_PASSES`` (``wrappin``: `` w`` then ``rapp`` leaves ``in``, which no
        likely token writes, so ``ra`` is tried instead and ``pping`` ends the word).  The
        first pass is ``_heal``'s where it made the same one (``scored``, by tokens taken back).
        """
        texts = self._ensure_token_texts()
        k = self._word_tokens(body, most)
        if not k:
            return None
        fragment = self.tokenizer.decode(body[-k:], skip_special_tokens=False)
        base = [*body[:-k], *marker]
        passes = HEAL_ACROSS_PASSES

        def write(ids: list[int], log_probs: list[float], rest: str) -> tuple[list[int], list[float]] | None:
            """The word's tokens from ``ids`` on, depth first: the likelier of the two likeliest
            next tokens that leads to the whole word, within the passes left."""
            nonlocal passes
            if not rest:
                return ids, log_probs
            if not passes:
                return None
            passes -= 1
            allowed = np.union1d(self._tokens_starting_with(rest), self._pieces_of(rest))
            if options.no_comments:
                allowed = np.setdiff1d(allowed, self._comment_token_ids(), assume_unique=True)
            scores = scored.get(k) if not ids else None
            if scores is None:
                scores = self._next_token_log_probs(Prompt(prompt.static, [*base, *ids]), options)
            for token in allowed[np.argsort(-scores[allowed])][:2]:
                if np.count_nonzero(scores > scores[token]) >= options.heal_alternatives:
                    break
                text = texts[token]
                found = write([*ids, int(token)], [*log_probs, _given_typed(scores, token, allowed)],
                              "" if text.startswith(rest) else rest[len(text):])
                if found is not None:
                    return found
            return None

        found = write([], [], fragment)
        if found is None or found[0] == body[-k:]:
            return None  # unlikely, or the word as it was typed: nothing to heal
        ids, log_probs = found
        return Prompt(prompt.static, [*base, *ids]), _Start(tuple(ids), tuple(log_probs), fragment)

    def _body_and_marker(self, prompt: Prompt) -> tuple[list[int], list[int]]:
        """The prompt's dynamic tokens up to the cursor, and the marker after it: the cursor
        is before the fill-in-the-middle marker, or at the end of a left-to-right prompt (the
        team server's, without a suffix: no marker)."""
        dynamic = prompt.dynamic
        marker = dynamic[-1:] if dynamic and dynamic[-1] == self.special.fim_middle else []
        return dynamic[:len(dynamic) - len(marker)], marker

    def _word_tokens(self, body: list[int], most: int) -> int:
        """How many of ``body``'s last tokens, at most ``most``, write the word it ends with
        (letters, digits and underscores; the word's first token may start with a blank)."""
        texts = self._ensure_token_texts()
        k = 0
        while k < most:
            token = body[-1 - k]
            word = texts[token].lstrip(" ") if token not in self._special_ids else ""
            if not word or not all(map(_is_word_char, word)):
                break
            k += 1
            if texts[token][0] == " ":
                break  # the word starts here
        return k

    def _write_word(self, prompt: Prompt, options: GenerationOptions) -> tuple[Prompt, _Start] | None:
        """The prompt without the half-typed word it ends with and with ``options.word``'s
        tokens instead, tokenized as a middle that starts with the word; None where the
        prompt does not end with a beginning of that word."""
        body, marker = self._body_and_marker(prompt)
        k = self._word_tokens(body, len(body))
        fragment = self.tokenizer.decode(body[len(body) - k:], skip_special_tokens=False) if k else ""
        typed = fragment.lstrip(" ")
        if not typed or options.word == typed or not options.word.startswith(typed):
            return None
        ids = encode(self.tokenizer, fragment + options.word[len(typed):])
        base = Prompt(prompt.static, [*body[:len(body) - k], *marker])
        # Certain, as the typed indentation in ``_heal``: the name is the code base's choice,
        # not the model's guess, and the model's doubt about it (it wrote another) would hide
        # the line behind ``minConfidence``.
        return Prompt(base.static, [*base.dynamic, *ids]), _Start(tuple(ids), (0.0,) * len(ids), fragment)

    def _finishes_word(self, prompt: Prompt, options: GenerationOptions, body: list[int], marker: list[int],
                       k: int, token: int, scored: dict[int, np.ndarray]) -> bool:
        """Whether ``token`` finishes the half-typed word that ``body``'s last ``k`` tokens
        write (``_heal``'s cut), by the model's own comparison: it is far likelier than those
        tokens as they were typed, one after the other (`` enumerate`` against `` enumer``
        alone, 5.4 nats; ``exist`` against ``ex`` + ``i``).

        The rank among all next tokens says too little here: trained on cuts at any
        character, the model spreads its belief after ``for i, item in`` over pieces that
        go on a word (``items``, ``s``, ``_``), and `` enumerate`` ranks 194th.  The two
        ways compared start the same way, so that belief weighs on neither.  ``scored``:
        the next-token distributions by tokens taken back, filled in where missing (one
        pass each, at most ``heal_tokens - 1``, only where the rank test failed)."""
        fragment = self.tokenizer.decode(body[-k:], skip_special_tokens=False)
        if not _is_word_char(fragment[-1]) or self._ensure_token_texts()[token] == fragment:
            return False
        typed = 0.0
        for j in range(k, 0, -1):
            if j not in scored:
                scored[j] = self._next_token_log_probs(Prompt(prompt.static, [*body[:-j], *marker]), options)
            typed += float(scored[j][body[-j]])
        return float(scored[k][token]) - typed >= HEAL_WORD_MARGIN

    def _pieces_of(self, text: str) -> np.ndarray:
        """The ids of the tokens whose text is a proper beginning of ``text``."""
        if self._token_ids is None:
            self._token_ids = {t: i for i, t in enumerate(self._ensure_token_texts())
                               if t and i not in self._special_ids}
        found = (self._token_ids.get(text[:n]) for n in range(1, len(text)))
        return np.array(sorted({i for i in found if i is not None}), dtype=np.int64)

    def _start_unindented(self, prompt: Prompt, options: GenerationOptions) -> tuple[Prompt, _Start]:
        """The prompt with its likeliest first token that neither starts with a blank nor
        ends the line, that token and its log-probability (no fragment: nothing is healed)."""
        if self._unindented_ids is None:
            self._unindented_ids = self._ids_where(lambda text: not text[0].isspace())
        return self._start_with(prompt, options, self._unindented_ids)

    def _start_after_word(self, prompt: Prompt, options: GenerationOptions) -> tuple[Prompt, _Start]:
        """As ``_start_unindented``, with the likeliest first token that does not start with a
        letter, a digit or an underscore."""
        if self._after_word_ids is None:
            self._after_word_ids = self._ids_where(lambda text: not _is_word_char(text[0]))
        return self._start_with(prompt, options, self._after_word_ids)

    def _start_indented(self, prompt: Prompt, options: GenerationOptions) -> tuple[Prompt, _Start]:
        """As ``_start_unindented``, with the likeliest first token that starts with a space or
        a tab and holds no line break (which would leave the body empty)."""
        if self._indented_ids is None:
            self._indented_ids = self._ids_where(lambda text: text[0] in " \t" and not {"\n", "\r"} & set(text))
        return self._start_with(prompt, options, self._indented_ids)

    def _ids_where(self, keep: Callable[[str], bool]) -> np.ndarray:
        return np.array([i for i, text in enumerate(self._ensure_token_texts())
                         if text and i not in self._special_ids and keep(text)], dtype=np.int64)

    def _start_with(self, prompt: Prompt, options: GenerationOptions,
                    allowed: np.ndarray) -> tuple[Prompt, _Start]:
        if options.no_comments:
            allowed = np.setdiff1d(allowed, self._comment_token_ids(), assume_unique=True)
        log_probs = self._next_token_log_probs(prompt, options)
        first = int(allowed[np.argmax(log_probs[allowed])])
        return Prompt(prompt.static, [*prompt.dynamic, first]), _Start((first,), (float(log_probs[first]),))

    def _next_token_log_probs(self, prompt: Prompt, options: GenerationOptions) -> np.ndarray:
        """The log-probability of every token of the vocabulary coming next after ``prompt``."""
        start, cache = self._start(prompt, options)
        result = self.generator.generate_batch([start], max_length=1, return_logits_vocab=True,
                                               include_prompt_in_result=False, end_token=[self.special.eot],
                                               **cache)[0]
        view = result.logits[0][0]
        if view.device != "cpu":
            view = view.to_device(ctranslate2.Device.cpu)
        logits = np.asarray(view, dtype=np.float64).ravel()
        top = logits.max()
        return logits - top - np.log(np.exp(logits - top).sum())

    def _beam_line(self, prompt: Prompt, options: GenerationOptions, healed: _Start | None) -> Completion:
        """One line by beam search: every hypothesis ends at the first token holding a line
        break (or end-of-text), so the beams compete on whole lines."""
        ids = list(healed.ids) if healed is not None else []
        log_prob = sum(healed.log_probs) if healed is not None else 0.0
        fragment = healed.fragment if healed is not None else ""
        rest = options.max_tokens - len(ids)
        if rest > 0:
            best = self._beams(prompt, options, rest)
            ruled_out: list[list[int]] = []
            while self._line_text(ids + best[0], fragment) in options.not_lines and len(ruled_out) < 2:
                # The other beams mostly write the same line and end it otherwise (a line
                # break, end-of-text): the line's tokens are ruled out and the beams run again.
                ruled_out.append([t for t in best[0] if t not in self._line_end_ids()])
                best = self._beams(prompt, options, rest, suppress=ruled_out)
            sequence, score = best
            ids += sequence
            log_prob += score
        ended = bool(ids) and ids[-1] in self._special_ids
        text = self.tokenizer.decode(ids[:-1] if ended else ids, skip_special_tokens=False)[len(fragment):]
        cut = end_of_line(text)
        reason = "eot" if ended else "eol" if cut is not None else "max_tokens"
        return Completion(text=text[:cut].rstrip("\ufffd") if cut is not None else text.rstrip("\ufffd"),
                          tokens=len(ids), stop_reason=reason, seconds=0.0, logprob=log_prob)

    def _beams(self, prompt: Prompt, options: GenerationOptions, max_length: int,
               suppress: list[list[int]] = ()) -> tuple[list[int], float]:
        """The best line by beam search: its tokens to the line's end and its total
        log-probability; it holds no token sequence of ``suppress``."""
        start, cache = self._start(prompt, options)
        ruled_out = self._suppressed(options)
        if suppress:
            ruled_out = {"suppress_sequences": ruled_out.get("suppress_sequences", [])
                         + [[self._tokens[i] for i in seq] for seq in suppress if seq]}
        result = self.generator.generate_batch(
            [start], beam_size=options.beam_size, max_length=max_length, include_prompt_in_result=False,
            end_token=self._line_end_ids(), return_end_token=True, return_scores=True, **cache, **ruled_out)[0]
        # With several end tokens, CTranslate2's beam search can carry the best hypothesis
        # on past one of them (end-of-text, then a file separator and a path): the line
        # ends at the first, and at any special token.
        sequence = result.sequences_ids[0]
        stops = self._special_ids.union(self._line_end_ids())
        cut = next((i + 1 for i, t in enumerate(sequence) if t in stops), len(sequence))
        # The score is the hypothesis's mean token log-probability (length_penalty 1).
        return list(sequence[:cut]), result.scores[0] * max(cut, 1)

    def _line_text(self, ids: list[int], fragment: str) -> str:
        """The stripped line that ``ids`` write after ``fragment``."""
        text = self.tokenizer.decode(ids, skip_special_tokens=True)[len(fragment):]
        cut = end_of_line(text)
        return (text if cut is None else text[:cut]).strip()

    def _line_end_ids(self) -> list[int]:
        """End-of-text and every token holding a line break."""
        if self._line_ends is None:
            self._line_ends = [self.special.eot, *(i for i, text in enumerate(self._ensure_token_texts())
                                                   if "\n" in text and i not in self._special_ids)]
        return self._line_ends

    def _comment_token_ids(self) -> np.ndarray:
        if self._comment_ids is None:
            self._comment_ids = np.array([i for i, text in enumerate(self._ensure_token_texts()) if "#" in text],
                                         dtype=np.int64)
        return self._comment_ids

    def _suppressed(self, options: GenerationOptions) -> dict:
        """CTranslate2's arguments that keep the tokens ``options`` rules out from being generated."""
        if not options.no_comments:
            return {}
        return {"suppress_sequences": [[self._tokens[i]] for i in self._comment_token_ids()]}

    def _ensure_token_texts(self) -> list[str]:
        if self._token_texts is None:
            self._token_texts = [self.tokenizer.decode([i], skip_special_tokens=False)
                                 for i in range(len(self._tokens))]
        return self._token_texts

    def _tokens_starting_with(self, fragment: str) -> np.ndarray:
        """The ids of the (non-special) tokens whose text starts with ``fragment``."""
        found = self._continuations.get(fragment)
        if found is None:
            found = np.array([i for i, text in enumerate(self._ensure_token_texts())
                              if text.startswith(fragment) and i not in self._special_ids], dtype=np.int64)
            if len(self._continuations) >= 4096:
                self._continuations.clear()
            self._continuations[fragment] = found
        return found

    def complete(self, prompt: Prompt, options: GenerationOptions | None = None,
                 cancelled: Callable[[], bool] = lambda: False,
                 stop: StopRule | None = None) -> Completion:
        """Generate one completion; ``stop`` returns a cut position once the text is done."""
        options = options or GenerationOptions()
        stop = stop or (end_of_line if options.single_line else None)
        t0 = time.perf_counter()
        with self._lock:
            healed = self._write_word(prompt, options) if options.word else None
            if healed is None and options.heal and not options.word_ended:
                healed = self._heal(prompt, options)
            if healed is None and options.word_ended:
                healed = self._start_after_word(prompt, options)
            if healed is None and options.unindented:
                healed = self._start_unindented(prompt, options)
            if healed is None and options.indented:
                healed = self._start_indented(prompt, options)
            if healed is not None:
                completion = self._generate(healed[0], options, cancelled, stop, healed[1])
                # Healed, the model may only give the fragment back and end the line: it
                # has nothing to add there, but a user who typed it is waiting for more.
                # After a whole word, an empty line is the answer: the unconstrained one
                # is the glued word the caller ruled out.
                if completion.text.strip() or completion.stop_reason == "cancelled" or options.word_ended:
                    completion.seconds = time.perf_counter() - t0
                    return completion
            completion = self._generate(prompt, options, cancelled, stop)
        completion.seconds = time.perf_counter() - t0
        return completion

    def _generate(self, prompt: Prompt, options: GenerationOptions, cancelled: Callable[[], bool],
                  stop: StopRule | None, healed: _Start | None = None) -> Completion:
        """Decode after ``prompt``; ``healed``: the first tokens, already chosen."""
        # A line with lines ruled out goes through beam search even at one beam (a greedy
        # search then): only there can their tokens be suppressed and the search run again.
        if (options.beam_size > 1 or options.not_lines) and stop is end_of_line \
                and options.max_tokens <= BEAM_MAX_TOKENS:
            if cancelled():
                return Completion(text="", tokens=0, stop_reason="cancelled", seconds=0.0)
            return self._beam_line(prompt, options, healed)
        ids: list[int] = []
        log_probs: list[float] = []
        text, reason = "", "max_tokens"
        fragment = healed.fragment if healed is not None else ""
        # The healed first tokens count towards ``max_tokens`` and go through the same
        # checks as the rest; the stream only starts decoding when asked for the next token.
        rest = options.max_tokens - (len(healed.ids) if healed is not None else 0)
        gen = self.stream(prompt, replace(options, max_tokens=rest), cancelled) if rest > 0 else (t for t in ())
        tokens = chain(zip(healed.ids, healed.log_probs, strict=True), gen) if healed is not None else gen
        try:
            for token_id, log_prob in tokens:
                ids.append(token_id)
                log_probs.append(log_prob)
                text = self.tokenizer.decode(ids, skip_special_tokens=False)[len(fragment):]
                if text.endswith("\ufffd"):
                    continue  # half a UTF-8 character: wait for the rest
                cut = stop(text) if stop else None
                if cut is not None:
                    text = text[:cut]
                    reason = "eol" if stop is end_of_line else "stop_rule"
                    break
            else:
                if cancelled():
                    reason = "cancelled"
                elif len(ids) < options.max_tokens:
                    reason = "eot"
        finally:
            gen.close()
        return Completion(text=text.rstrip("\ufffd"), tokens=len(ids), stop_reason=reason, seconds=0.0,
                          logprob=float(sum(log_probs)))


def _advance(state: _Decoding, token_id: int, log_prob: float, tokenizer: Tokenizer, eot: int) -> bool:
    """Take one generated token into ``state``; True when the request is done."""
    request = state.request
    if token_id == eot:
        state.reason = "eot"
        return True
    state.ids.append(token_id)
    state.logprob += log_prob
    text = tokenizer.decode(state.ids, skip_special_tokens=False)[len(state.fragment):]
    cut = first_stop(text, request.stop) if request.stop else None
    if cut is not None:
        state.text, state.reason = text[:cut], "stop_string"
    elif len(state.ids) >= request.max_tokens:
        state.text, state.reason = text, "max_tokens"
    elif request.cancelled():
        state.text, state.reason = text, "cancelled"
    else:
        state.text = text
    if request.on_text is not None and state.reason != "cancelled":
        shown = state.text.rstrip("\ufffd") if state.reason else shown_part(text, request.stop)
        if shown != state.shown:
            state.shown = shown
            request.on_text(shown)
    return state.reason is not None
