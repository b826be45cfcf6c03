"""The serving half of the ``ghostline`` command (serve, complete, index, similar), and the
pieces every ghostline command shares.

The shared pieces -- ``CliError``, ``OneLineParser``, the argument types, ``run`` and the
one location parser -- live here rather than in ``training``: ``training`` may use the
server, the server never imports ``training``, so this is the one place both halves reach.
The dispatcher that puts the halves together is ``training.cli``.

Nothing heavy is imported at module level: ``ghostline serve`` and ``ghostline complete``
start as fast as the server does, and bad arguments end in one line on stderr with exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one ``--help`` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def existing_dir(text: str) -> Path:
    p = Path(text).expanduser()
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"not a folder: {text}")
    return p


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def run(command: Callable[[argparse.Namespace], object], args: argparse.Namespace) -> None:
    """Run a subcommand: a ``CliError`` is one line on stderr and exit status 2."""
    try:
        command(args)
    except CliError as exc:
        print(f"ghostline: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


@dataclass(frozen=True)
class Location:
    """A place in a file named on the command line; lines and column are 1-based."""

    path: Path
    text: str
    start: int
    end: int
    column: int | None = None  # only FILE:LINE:COLUMN has one


def parse_location(spec: str, with_column: bool) -> Location:
    """``FILE:LINE:COLUMN`` (``with_column``) or ``FILE:START-END`` (``FILE:LINE`` = one line),
    checked against the file it names."""
    try:
        if with_column:
            file_part, line_s, col_s = spec.rsplit(":", 2)
            start = end = int(line_s)
            column = int(col_s)
        else:
            file_part, lines = spec.rsplit(":", 1)
            start_s, _, end_s = lines.partition("-")
            start, end, column = int(start_s), int(end_s or start_s), None
    except ValueError:
        form = "FILE:LINE:COLUMN (1-based line and column)" if with_column else "FILE:START-END (1-based lines)"
        raise CliError(f"expected {form}, got {spec!r}") from None
    path = Path(file_part)
    if not path.is_file():
        raise CliError(f"no such file: {file_part}")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if column is not None:
        if not 1 <= start <= len(lines) or not 1 <= column <= len(lines[start - 1]) + 1:
            raise CliError(f"{spec}: position outside the file ({len(lines)} lines)")
    elif not 1 <= start <= end <= len(lines):
        raise CliError(f"{spec}: lines must satisfy 1 <= START <= END <= {len(lines)}")
    return Location(path, text, start, end, column)


def _cmd_serve(args: argparse.Namespace) -> None:
    from lsp_server.__main__ import main as serve_main

    argv = []
    if args.tcp:
        argv += ["--tcp", args.tcp]
    if args.model:
        argv += ["--model", str(args.model)]
    serve_main(argv)


def _cmd_complete(args: argparse.Namespace) -> None:
    from lsp_server.client import complete_file

    where = parse_location(args.location, with_column=True)
    print(complete_file(where.path, where.start - 1, where.column - 1, model=args.model, max_tokens=args.max_tokens))


def _workspace(root: Path, cache_dir: Path | None):
    from lsp_server.similarity.service import WorkspaceConfig, WorkspaceIndex
    from model.adapted import default_cache_dir

    return WorkspaceIndex(root, WorkspaceConfig(cache_dir=cache_dir or default_cache_dir()))


def _cmd_index(args: argparse.Namespace) -> None:
    import time

    workspace = _workspace(args.folder, args.cache_dir)
    report = workspace.refresh()
    print(f"indexed {args.folder}: {report.files:,} files, {report.chunks:,} chunks "
          f"({report.indexed:,} read, {report.from_cache:,} from cache, {report.removed:,} gone) "
          f"in {report.seconds:.1f}s; lexical search ready", flush=True)
    # The second pass the server runs in the background: embeddings of what is new or changed.
    t0, shown = time.perf_counter(), [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - shown[0] >= 5 or done == total:
            shown[0] = time.perf_counter()
            print(f"  embedded {done:,}/{total:,} chunks", flush=True)

    n = workspace.embed_pending(progress=progress)
    done, total = workspace.index.embedding_progress()
    print(f"embedded {n:,} chunks in {time.perf_counter() - t0:.1f}s ({done:,}/{total:,} have vectors); "
          f"cache in {workspace.save()}")


def _cmd_similar(args: argparse.Namespace) -> None:
    where = parse_location(args.location, with_column=False)
    path = where.path
    workspace = _workspace(args.workspace or path.resolve().parent, args.cache_dir)
    workspace.refresh()
    if args.signals != "lexical" and workspace.embed_pending():
        workspace.save()  # the vectors, for the next run
    hits = workspace.find_similar(str(path.resolve()), where.text, where.start - 1, where.end - 1, args.limit,
                                  signals=args.signals)
    if not hits:
        print("no similar code found")
    for hit in hits:
        e = hit.entry
        shown = Path(e.file).relative_to(workspace.root) if Path(e.file).is_relative_to(workspace.root) else e.file
        print(f"{hit.score:.3f}  {shown}:{e.start_line + 1}-{e.end_line + 1}  {e.kind} {e.name}"
              f"  (lexical {hit.lexical:.3f}, dense {hit.dense:.3f})")
        print("\n".join("        " + line for line in e.preview.split("\n")))


def add_serving_commands(sub: argparse._SubParsersAction) -> None:
    """``serve``, ``complete``, ``index`` and ``similar`` on the ``ghostline`` parser."""
    p = sub.add_parser("serve", help="run the language server (stdio by default)")
    p.add_argument("--tcp", metavar="HOST:PORT")
    p.add_argument("--model", type=existing_dir)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("complete", help="complete at FILE:LINE:COLUMN through the language server")
    p.add_argument("location", metavar="FILE:LINE:COLUMN")
    p.add_argument("--model", type=existing_dir)
    p.add_argument("--max-tokens", type=positive_int, default=48)
    p.set_defaults(func=_cmd_complete)

    p = sub.add_parser("index", help="index a folder for similar-code search (kept in the cache folder)")
    p.add_argument("folder", type=existing_dir)
    p.add_argument("--cache-dir", type=Path, help="default: $XDG_CACHE_HOME/ghostline")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("similar", help="code similar to FILE:START-END (1-based lines) in a workspace")
    p.add_argument("location", metavar="FILE:START-END")
    p.add_argument("--workspace", type=existing_dir, help="folder to search (default: the file's folder)")
    p.add_argument("--limit", type=positive_int, default=10)
    p.add_argument("--signals", choices=["fused", "lexical", "dense"], default="fused")
    p.add_argument("--cache-dir", type=Path, help="default: $XDG_CACHE_HOME/ghostline")
    p.set_defaults(func=_cmd_similar)
