"""Line-completion evaluation through the real language server, the way an editor asks.

For each example the document is ``prefix + "\\n" + suffix`` (the rest of the line removed)
and the server is asked for an inline completion at the end of ``prefix``.  The server's
workspace is a copy of the example's repository in which every evaluated line is cut at
its cut point: the disk must not hold the answers, as it would not while a person types.

Scores follow CodeXGLUE line completion: the first line of the completion, stripped;
EM = ``pred.split() == gt.split()``; ES = edit similarity 0-100.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # adaptation brings torch: imported only when asked for
    from training.adapt import AdaptConfig

from rapidfuzz import fuzz


@dataclass
class LineExample:
    id: str
    repo: str
    path: str
    line_no: int  # 1-based
    cut_col: int  # 0-based, characters
    gt: str


@dataclass
class LineEvalReport:
    n: int = 0
    em: float = 0.0
    es: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    adapt_seconds: float = 0.0
    rows: list[dict] = field(default_factory=list)

    @property
    def shown(self) -> float:
        """Share of positions where a suggestion was shown at all (%)."""
        return 100 * sum(1 for r in self.rows if r["pred"].strip()) / max(1, len(self.rows))

    @property
    def precision(self) -> float:
        """Exact matches among the shown suggestions (%)."""
        shown = [r for r in self.rows if r["pred"].strip()]
        return 100 * sum(r["em"] for r in shown) / max(1, len(shown))

    def line(self) -> str:
        adapted = f"  (adaptation {self.adapt_seconds:.0f} s)" if self.adapt_seconds else ""
        return (f"{self.n} examples: EM {self.em:.1f}  ES {self.es:.1f}  shown {self.shown:.1f}%  "
                f"precision {self.precision:.1f}  latency p50 {self.p50_ms:.0f} ms  p95 {self.p95_ms:.0f} ms"
                + adapted)


def load_examples(path: Path) -> list[LineExample]:
    rows = []
    for n, raw in enumerate(Path(path).read_text().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
            rows.append(LineExample(d["id"], d["repo"], d["path"], int(d["line_no"]), int(d["cut_col"]), d["gt"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a line-completion example ({exc})") from None
    return rows


_WORD = re.compile(r"\w+")


def inside_words(examples: list[LineExample]) -> list[LineExample]:
    """The examples whose answer starts with a word of three characters or more, cut again
    halfway into that word (``imp`` + ``ort sys``).  While a person types, the cursor stands
    inside a word at most keystrokes; the dev set's cuts are all at token boundaries, so it
    never measures what the server suggests there (token healing's work)."""
    out = []
    for ex in examples:
        word = _WORD.match(ex.gt)
        if word and len(word.group()) >= 3:
            k = len(word.group()) // 2
            out.append(replace(ex, id=f"{ex.id}-mid-word", cut_col=ex.cut_col + k, gt=ex.gt[k:]))
    return out


def exact_match(pred: str, gt: str) -> bool:
    """CodeXGLUE's exact match: the first line of the prediction, whitespace-split."""
    return pred.split("\n", 1)[0].split() == gt.split()


def score(pred: str, gt: str) -> tuple[bool, float]:
    first = pred.split("\n", 1)[0].strip()
    gt = gt.strip()
    return exact_match(first, gt), fuzz.ratio(first, gt)


def split_document(text: str, ex: LineExample) -> tuple[str, str]:
    """(prefix, suffix) of the example in ``text``, the file's contents."""
    lines = text.split("\n")
    before = "\n".join(lines[: ex.line_no - 1])
    prefix = (before + "\n" if ex.line_no > 1 else "") + lines[ex.line_no - 1][: ex.cut_col]
    suffix = "\n".join(lines[ex.line_no:])
    return prefix, suffix


def masked_copy(repo: Path, examples: list[LineExample], dest: Path) -> None:
    """Copy ``repo`` to ``dest`` with every example's line cut at its cut point."""
    shutil.copytree(repo, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    by_file: dict[str, list[LineExample]] = defaultdict(list)
    for ex in examples:
        by_file[ex.path].append(ex)
    for rel, exs in by_file.items():
        f = dest / rel
        lines = f.read_text(encoding="utf-8").split("\n")
        for ex in exs:
            lines[ex.line_no - 1] = lines[ex.line_no - 1][: ex.cut_col]
        f.write_text("\n".join(lines), encoding="utf-8")


async def _eval_repo(repo: Path, examples: list[LineExample], options: dict, report: LineEvalReport,
                     latencies: list[float], progress, adapt: AdaptConfig | None = None,
                     explain: bool = False) -> None:
    from lsp_server.client import running_server
    from lsp_server.documents import utf16_len

    with tempfile.TemporaryDirectory(prefix="ghostline-eval-") as tmp:
        work = Path(tmp) / repo.name
        masked_copy(repo, examples, work)
        if adapt is not None:
            # What a user's machine holds: the repository with the lines being typed cut.
            from lsp_server.settings import DEFAULT_MODEL_DIR
            from training.adapt import adapt as adapt_to

            cache = Path(tmp) / "cache"
            info = adapt_to(work, Path(options.get("modelPath") or DEFAULT_MODEL_DIR), cache, adapt)
            report.adapt_seconds += info.seconds
            # The server finds the adapted model by itself, as it would for a user.
            options = {**{k: v for k, v in options.items() if k != "modelPath"}, "cacheDir": str(cache)}
        async with running_server(work, options) as client:
            warm = (work / examples[0].path).as_uri()
            client.open(warm, "import os\n")
            await client.inline(warm, 1, 0)  # the model loads here, not in the first timing
            client.text_document_did_close(_close(warm))
            for ex in examples:
                text = (repo / ex.path).read_text(encoding="utf-8")
                prefix, suffix = split_document(text, ex)
                uri = (work / ex.path).as_uri()
                client.open(uri, prefix + "\n" + suffix)
                line = prefix.rsplit("\n", 1)[-1]
                t0 = time.perf_counter()
                pred = await client.inline(uri, ex.line_no - 1, utf16_len(line))
                latencies.append(time.perf_counter() - t0)
                row = {"id": ex.id, "pred": pred.split("\n", 1)[0], "gt": ex.gt}
                if explain:
                    row.update(await _shown(client, uri, ex.line_no - 1, utf16_len(line)))
                client.text_document_did_close(_close(uri))
                row["em"], row["es"] = score(pred, ex.gt)
                report.rows.append(row)
                progress()


async def _shown(client, uri: str, line: int, character: int) -> dict:
    """Where the suggestion just shown came from and how sure the server was of it."""
    result = await client.protocol.send_request_async("ghostline/explainPrompt", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
    shown = getattr(result, "suggestion", None)
    if shown is None:
        return {"source": None, "confidence": None}
    get = shown.get if isinstance(shown, dict) else lambda k: getattr(shown, k, None)
    return {"source": get("source"), "confidence": get("confidence")}


def _close(uri: str):
    from lsprotocol import types

    return types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))


def evaluate_lines(examples_file: Path, repos: Path, options: dict | None = None,
                   limit: int | None = None, verbose: bool = False, adapt: AdaptConfig | None = None,
                   explain: bool = False, mid_word: bool = False) -> LineEvalReport:
    """Complete every example's line through a real server; ``explain`` also records each
    suggestion's source and confidence (one explainPrompt request per example);
    ``mid_word``: the examples ``inside_words`` makes instead."""
    examples = load_examples(examples_file)
    if mid_word:
        examples = inside_words(examples)
    if limit:
        examples = examples[:limit]
    by_repo: dict[str, list[LineExample]] = defaultdict(list)
    for ex in examples:
        by_repo[ex.repo].append(ex)
    for name in by_repo:
        if not (repos / name).is_dir():
            raise FileNotFoundError(f"repository {name!r} not found under {repos}")
    report, latencies = LineEvalReport(), []
    done = [0]

    def progress() -> None:
        done[0] += 1
        if verbose and done[0] % 50 == 0:
            r = report.rows
            print(f"  {done[0]}/{len(examples)}: EM {100 * sum(x['em'] for x in r) / len(r):.1f} "
                  f"ES {statistics.mean(x['es'] for x in r):.1f}", flush=True)

    opts = {"debounceMs": 0, **(options or {})}
    for name, exs in by_repo.items():
        asyncio.run(_eval_repo(repos / name, exs, opts, report, latencies, progress, adapt, explain))
    report.n = len(report.rows)
    if report.n:
        report.em = 100 * sum(r["em"] for r in report.rows) / report.n
        report.es = statistics.mean(r["es"] for r in report.rows)
        ms = sorted(1000 * x for x in latencies)
        report.p50_ms = ms[len(ms) // 2]
        report.p95_ms = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return report
