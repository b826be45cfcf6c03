"""Soak: a scripted editing session against the real language server, for minutes on end.

A simulated developer works in a workspace of standard-library modules: opens files,
adds lines inside functions and types them key by key (an inline completion request after
every keystroke, the previous one cancelled, as VS Code does), sometimes accepts the
ghost text, sometimes deletes what was typed, saves, switches files, asks for similar
code and for the prompt explanation.  Reports what a user would feel over a long session:
requests served, errors, latency, and the server's memory over time.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--seed 0] [--model DIR] [--json OUT]

Errors are responses other than a result or a cancellation, plus a server that exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lsp_server.client import GhostlineClient, inline_params, running_server  # noqa: E402

MODULES = ["argparse.py", "configparser.py", "csv.py", "difflib.py", "ftplib.py", "gettext.py", "imaplib.py",
           "inspect.py", "logging/__init__.py", "mailbox.py", "pathlib.py", "pickletools.py", "shutil.py",
           "smtplib.py", "statistics.py", "tarfile.py", "textwrap.py", "zipfile.py"]
REQUEST_CANCELLED = -32800


@dataclass
class SoakReport:
    minutes: float
    keystrokes: int = 0
    inline_sent: int = 0
    inline_answered: int = 0  # a result (possibly empty), not a cancellation
    inline_cancelled: int = 0
    non_empty: int = 0
    accepted: int = 0
    other_requests: int = 0  # findSimilar, explainPrompt
    errors: list[str] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)  # every answered inline request
    visible_ms: list[float] = field(default_factory=list)  # the request after the last key of a line
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    peak_rss_mb: float = 0.0

    def summary(self) -> dict:
        def pct(values: list[float], q: float) -> float | None:
            values = sorted(values)
            return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else None

        rss = [mb for _, mb in self.rss_mb]
        return {
            "minutes": self.minutes, "keystrokes": self.keystrokes,
            "requests_served": self.inline_answered + self.other_requests,
            "inline": {"sent": self.inline_sent, "answered": self.inline_answered,
                       "cancelled": self.inline_cancelled, "non_empty": self.non_empty, "accepted": self.accepted,
                       "p50_ms": pct(self.latency_ms, 0.5), "p95_ms": pct(self.latency_ms, 0.95),
                       "visible_p50_ms": pct(self.visible_ms, 0.5), "visible_p95_ms": pct(self.visible_ms, 0.95)},
            "errors": len(self.errors), "first_errors": self.errors[:5],
            "rss_mb": {"first_minute": max((mb for t, mb in self.rss_mb if t <= 60), default=None),
                       "last": rss[-1] if rss else None, "peak": self.peak_rss_mb},
        }


def _path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def memory(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


class Editor:
    """One simulated developer: the documents as the editor holds them, and the requests."""

    def __init__(self, client: GhostlineClient, root: Path, rng: random.Random, report: SoakReport) -> None:
        self.client, self.root, self.rng, self.report = client, root, rng, report
        self.docs: dict[str, list[str]] = {}  # uri -> lines
        self.versions: dict[str, int] = {}
        self.pending: tuple[str, Future, float] | None = None  # the editor's newest inline request
        self._ids = 0
        self.latency: dict[str, float] = {}  # answered request id -> ms (pruned as lines end)
        corpus = [line.strip() for f in root.glob("*.py") for line in f.read_text().split("\n")]
        self.snippets = [s for s in corpus if 12 <= len(s) <= 70 and not s.startswith(("#", '"', "'"))]

    # -- documents ---------------------------------------------------------------------------

    def open(self, path: Path) -> str:
        uri = path.as_uri()
        text = path.read_text()
        self.docs[uri], self.versions[uri] = text.split("\n"), 1
        self.client.open(uri, text)
        return uri

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        del self.docs[uri], self.versions[uri]

    def edit(self, uri: str, line: int, start: int, end: int, text: str) -> None:
        """Replace columns start-end of one line (ASCII text: columns are UTF-16 units too)."""
        lines = self.docs[uri]
        new = lines[line][:start] + text + lines[line][end:]
        self.versions[uri] += 1
        self.client.change(uri, self.versions[uri], (line, start), (line, end), text)
        parts = new.split("\n")
        lines[line:line + 1] = parts

    def save(self, uri: str) -> None:
        _path(uri).write_text("\n".join(self.docs[uri]))
        self.client.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))

    # -- requests ----------------------------------------------------------------------------

    def ask(self, uri: str, line: int, column: int) -> Future:
        """An inline request after a keystroke; the one before it is cancelled, as VS Code does."""
        if self.pending is not None and not self.pending[1].done():
            self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=self.pending[0]))
        self._ids += 1
        msg_id = f"soak-{self._ids}"
        params = inline_params(uri, line, column)
        sent = time.perf_counter()
        future = self.client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id)
        future.add_done_callback(lambda f: self._answered(f, msg_id, sent))
        self.report.inline_sent += 1
        self.pending = (msg_id, future, sent)
        return future

    def _answered(self, future: Future, msg_id: str, sent: float) -> None:
        exc = future.exception()
        if exc is None:
            self.report.inline_answered += 1
            self.latency[msg_id] = 1000 * (time.perf_counter() - sent)
            self.report.latency_ms.append(self.latency[msg_id])
            if future.result().items:
                self.report.non_empty += 1
        elif getattr(exc, "code", None) == REQUEST_CANCELLED or "cancel" in str(exc).lower():
            self.report.inline_cancelled += 1
        else:
            self.report.errors.append(f"inlineCompletion: {exc!r}"[:300])

    async def other(self, method: str, params: dict) -> None:
        try:
            await asyncio.wait_for(self.client.protocol.send_request_async(method, params), 60)
            self.report.other_requests += 1
        except Exception as exc:  # noqa: BLE001 - counted, the session goes on
            self.report.errors.append(f"{method}: {exc!r}"[:300])

    # -- the session -------------------------------------------------------------------------

    async def type_a_line(self, uri: str) -> None:
        lines = self.docs[uri]
        bodies = [i for i, s in enumerate(lines)
                  if s.startswith("    ") and s.strip() and not s.rstrip().endswith("\\")]
        if not bodies:
            return
        anchor = self.rng.choice(bodies)
        indent = lines[anchor][:len(lines[anchor]) - len(lines[anchor].lstrip())]
        self.edit(uri, anchor, len(lines[anchor]), len(lines[anchor]), "\n" + indent)  # Enter
        line, target = anchor + 1, self.rng.choice(self.snippets)
        for ch in target:
            column = len(self.docs[uri][line])
            self.edit(uri, line, column, column, ch)
            self.report.keystrokes += 1
            self.ask(uri, line, column + 1)
            await asyncio.sleep(self.rng.uniform(0.03, 0.12))  # 8-30 keys a second
        last_id, last, _ = self.pending
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(last), 60)
        except Exception:  # noqa: BLE001 - counted by the done callback
            return
        # The user stopped typing: how long after the last key did the ghost text arrive?
        self.report.visible_ms.append(self.latency[last_id])
        self.latency.clear()
        roll = self.rng.random()
        if result.items and roll < 0.4:  # Tab
            text = result.items[0].insert_text
            text = text if isinstance(text, str) else text.value
            column = len(self.docs[uri][line])
            self.edit(uri, line, column, column, text)
            self.report.accepted += 1
        elif roll > 0.7:  # changed their mind: delete the line
            self.versions[uri] += 1
            self.client.change(uri, self.versions[uri], (anchor, len(lines[anchor])), (line, len(lines[line])), "")
            del lines[line]

    async def run(self, seconds: float, files: list[Path]) -> None:
        t0 = time.perf_counter()
        pid = self.client._server.pid
        for path in files[:4]:
            self.open(path)
        next_sample = 0.0
        while (elapsed := time.perf_counter() - t0) < seconds:
            if self.client._server.returncode is not None:
                self.report.errors.append(f"server exited with code {self.client._server.returncode}")
                return
            if elapsed >= next_sample:
                rss, peak = memory(pid)
                self.report.rss_mb.append((round(elapsed, 1), round(rss, 1)))
                self.report.peak_rss_mb = round(peak, 1)
                next_sample = elapsed + 5
            uri = self.rng.choice(list(self.docs))
            action = self.rng.choices(["type", "similar", "explain", "save", "switch"], [20, 3, 1, 2, 1])[0]
            if action == "type":
                await self.type_a_line(uri)
            elif action == "similar":
                line = self.rng.randrange(len(self.docs[uri]))
                await self.other("ghostline/findSimilar", {"textDocument": {"uri": uri}, "range": {
                    "start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}}})
            elif action == "explain":
                line = self.rng.randrange(len(self.docs[uri]))
                await self.other("ghostline/explainPrompt", {"textDocument": {"uri": uri},
                                                             "position": {"line": line, "character": 0}})
            elif action == "save":
                self.save(uri)
            elif len(self.docs) > 1:
                self.close(uri)
                still_open = {_path(u) for u in self.docs}
                self.open(self.rng.choice([f for f in files if f not in still_open]))
        rss, peak = memory(pid)
        self.report.rss_mb.append((round(time.perf_counter() - t0, 1), round(rss, 1)))
        self.report.peak_rss_mb = round(peak, 1)


async def soak(minutes: float, seed: int, model: str | None, workdir: Path) -> SoakReport:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for name in MODULES:
        if (stdlib / name).exists():
            target = workdir / name.replace("/", "_")
            shutil.copy(stdlib / name, target)
            files.append(target)
    options = {"cacheDir": str(workdir.parent / "cache")}
    if model:
        options["modelPath"] = model
    report = SoakReport(minutes=minutes)
    async with running_server(workdir, options) as client:
        editor = Editor(client, workdir, random.Random(seed), report)
        await editor.run(60 * minutes, files)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="CTranslate2 model folder (default: the shipped model)")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "workspace"
        workdir.mkdir()
        report = asyncio.run(soak(args.minutes, args.seed, args.model, workdir))
    summary = report.summary()
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "report": asdict(report)}, indent=1))
    sys.exit(1 if report.errors else 0)


if __name__ == "__main__":
    main()
