"""Simulated typing through the real language server, to fill the local telemetry log.

For each line-completion example (the ``training.eval_lines`` format, or lines sampled from
a folder's files with ``--sample``) it does what VS Code and a user who knows the line
would do: open the document with the rest of the line removed (the server's workspace is a
copy with those lines cut, as in ``eval lines``), ask for an inline completion, report it
shown, then

* accept it whole when its first line is the rest of the line (run the item's command, as
  VS Code does after Tab);
* else take the words of it that the line starts with, when there are any (a partial accept,
  as with Ctrl+Right), and type the rest differently (typed over);
* else type over it.

The events are the server's own log lines (``<cache>/telemetry/events.jsonl``); read them
with ``ghostline stats --cache-dir CACHE [--plot FILE]``.  Settings are the editor's
defaults (debounce included), so latencies are what a user waits.

    .venv/bin/python benchmarks/simulate_acceptance.py --cache-dir /tmp/sim \\
        --examples ../shared/eval/line_completion_requests.jsonl --repos ../shared/eval/repos \\
        --sample vscode-client/src --sample-lines 120
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import tempfile
from collections import Counter
from pathlib import Path

from lsprotocol import types

from lsp_server.client import running_server
from lsp_server.documents import utf16_len
from lsp_server.languages import BY_SUFFIX
from lsp_server.telemetry import EVENT_METHOD, log_path
from training.eval_lines import LineExample, load_examples, masked_copy, split_document

_WORD = re.compile(r"\s*(?:\w+|[^\w\s]+)")  # what one "accept word" takes: a word or a run of punctuation


def taken_words(suggestion: str, line_rest: str) -> str:
    """The longest run of whole words at the start of ``suggestion`` that ``line_rest`` starts with."""
    taken = ""
    for word in _WORD.finditer(suggestion):
        if not line_rest.startswith(taken + word.group()):
            break
        taken += word.group()
    return taken


def sample_examples(folder: Path, n: int, seed: int = 0) -> list[LineExample]:
    """``n`` lines of ``folder``'s source files, each cut at the start of one of its words."""
    rng = random.Random(seed)
    candidates = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in BY_SUFFIX:
            continue
        for line_no, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            cuts = [m.start() for m in re.finditer(r"\w+", line)][1:]  # keep at least one word typed
            if cuts and len(line.strip()) > 8:
                candidates.append((path.relative_to(folder).as_posix(), line_no, line, cuts))
    examples = []
    for i, (rel, line_no, line, cuts) in enumerate(rng.sample(candidates, min(n, len(candidates)))):
        cut = rng.choice(cuts)
        examples.append(LineExample(f"{folder.name}-{i}", folder.name, rel, line_no, cut, line[cut:]))
    return examples


async def simulate(repo: Path, examples: list[LineExample], cache: Path, outcomes: Counter) -> None:
    with tempfile.TemporaryDirectory(prefix="ghostline-sim-") as tmp:
        work = Path(tmp) / repo.name
        masked_copy(repo, examples, work)
        async with running_server(work, {"cacheDir": str(cache)}) as client:
            for ex in examples:
                prefix, suffix = split_document((repo / ex.path).read_text(encoding="utf-8"), ex)
                uri = (work / ex.path).as_uri()
                language = BY_SUFFIX[Path(ex.path).suffix].id
                client.open(uri, prefix + "\n" + suffix, language=language)
                line = prefix.rsplit("\n", 1)[-1]
                result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=types.Position(line=ex.line_no - 1, character=utf16_len(line)),
                    context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
                item = result.items[0] if result and result.items else None
                if item is None or item.command is None:
                    outcomes["no suggestion"] += 1
                else:
                    outcomes[await _act(client, item, ex.gt)] += 1
                client.text_document_did_close(types.DidCloseTextDocumentParams(
                    text_document=types.TextDocumentIdentifier(uri=uri)))


async def _act(client, item: types.InlineCompletionItem, line_rest: str) -> str:
    """Show ``item``, then do what a user who is writing ``line_rest`` would do with it."""
    suggestion_id = item.command.arguments[0]
    client.protocol.notify(EVENT_METHOD, {"id": suggestion_id, "event": "shown"})
    text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
    first_line = text.split("\n", 1)[0]
    if first_line.rstrip() == line_rest.rstrip() and first_line.strip():
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=item.command.command, arguments=list(item.command.arguments)))
        return "accepted"
    taken = taken_words(first_line, line_rest)
    if len(taken) > 1:
        client.protocol.notify(EVENT_METHOD, {"id": suggestion_id, "event": "partial", "acceptedChars": len(taken)})
    client.protocol.notify(EVENT_METHOD, {"id": suggestion_id, "event": "typedOver"})
    return "partial" if len(taken) > 1 else "typedOver"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, required=True, help="the server's cache folder (the log goes there)")
    parser.add_argument("--examples", type=Path, help="line_completion_*.jsonl")
    parser.add_argument("--repos", type=Path, help="folder holding the examples' repositories")
    parser.add_argument("--limit", type=int, help="only the first N examples")
    parser.add_argument("--sample", type=Path, action="append", default=[], help="also sample lines from this folder")
    parser.add_argument("--sample-lines", type=int, default=100)
    args = parser.parse_args()
    jobs: list[tuple[Path, list[LineExample]]] = []
    if args.examples:
        examples = load_examples(args.examples)[: args.limit]
        for name in sorted({ex.repo for ex in examples}):
            jobs.append((args.repos / name, [ex for ex in examples if ex.repo == name]))
    for folder in args.sample:
        jobs.append((folder.resolve(), sample_examples(folder.resolve(), args.sample_lines)))
    outcomes: Counter = Counter()
    for repo, examples in jobs:
        asyncio.run(simulate(repo, examples, args.cache_dir, outcomes))
        print(f"{repo.name}: {len(examples)} positions; so far {dict(outcomes)}", flush=True)
    print(f"events in {log_path(args.cache_dir)}; ghostline stats --cache-dir {args.cache_dir} reads them")


if __name__ == "__main__":
    main()
