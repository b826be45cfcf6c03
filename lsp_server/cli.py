"""The serving half of the ``ghostline`` command (serve, tokens, complete, index, similar, stats), and the
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


def _number(text: str, parse: Callable[[str], float], kind: str, ok: Callable[[float], bool], rule: str):
    """``parse(text)``, or an argparse error saying it is not ``kind`` or breaks ``rule``."""
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {kind}: {text}") from None
    if not ok(value) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{rule}: {text}")
    return value


def positive_float(text: str) -> float:
    return _number(text, float, "a number", lambda v: v > 0, "must be a positive number")


def positive_int(text: str) -> int:
    return _number(text, int, "an integer", lambda v: v > 0, "must be positive")


def non_negative_int(text: str) -> int:
    return _number(text, int, "an integer", lambda v: v >= 0, "must not be negative")


def permille(text: str) -> int:
    return _number(text, int, "an integer", lambda v: 0 <= v < 1000, "must be from 0 to 999")


def positive_permille(text: str) -> int:
    return _number(text, int, "an integer", lambda v: 0 < v <= 1000, "must be from 1 to 1000")


def share(text: str) -> float:
    return _number(text, float, "a number", lambda v: 0 <= v <= 1, "must be a share from 0 to 1")


def non_negative_float(text: str) -> float:
    return _number(text, float, "a number", lambda v: v >= 0, "must be a number from 0 up")


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
    if args.http:
        _serve_http(args)
        return
    from lsp_server.__main__ import main as serve_main

    argv = []
    if args.tcp:
        argv += ["--tcp", args.tcp]
    if args.model:
        argv += ["--model", str(args.model)]
    serve_main(argv)


def _serve_http(args: argparse.Namespace) -> None:
    from lsp_server.team.config import TeamServerConfig
    from lsp_server.team.serve import ServeError, parse_address, serve

    try:
        host, port = parse_address(args.http)
    except ValueError as exc:
        raise CliError(f"--http: {exc}") from None
    config = TeamServerConfig(
        host=host, port=port, model_dir=args.model, device=args.device, cpu_threads=args.cpu_threads,
        max_batch_size=args.max_batch_size, batch_window_ms=args.batch_window_ms, max_queue=args.max_queue,
        max_body_bytes=args.max_body_bytes, max_tokens_limit=args.max_tokens_limit,
        rate_limit_per_minute=args.rate_limit, token_healing=not args.no_token_healing,
        **({"tokens_file": args.tokens} if args.tokens else {}))
    try:
        serve(config)
    except ServeError as exc:
        raise CliError(str(exc)) from None


def _token_store(args: argparse.Namespace):
    from lsp_server.team.tokens import TokenStore, TokenStoreError, default_tokens_file

    try:
        return TokenStore(args.tokens or default_tokens_file())
    except TokenStoreError as exc:
        raise CliError(str(exc)) from None


def _cmd_tokens(args: argparse.Namespace) -> None:
    from lsp_server.team.tokens import TokenStoreError

    store = _token_store(args)
    try:
        if args.tokens_command == "add":
            token = store.add(args.name, args.expires)
            expiry = f", expires in {args.expires:g} days" if args.expires is not None else ""
            print(token)
            print(f"token {args.name!r} added to {store.path}{expiry}; it is shown only now, keep it safe",
                  file=sys.stderr)
        elif args.tokens_command == "revoke":
            store.revoke(args.name)
            print(f"token {args.name!r} revoked; running servers stop accepting it within a second")
        else:
            if not store.records:
                print(f"no tokens in {store.path}")
            for r in store.records:
                state = " (expired)" if r.expired() else ""
                print(f"{r.name}\tcreated {r.created}\texpires {r.expires or 'never'}{state}")
    except TokenStoreError as exc:
        raise CliError(str(exc)) from None


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


def _cmd_stats(args: argparse.Namespace) -> None:
    from lsp_server.stats import load, log_files, plot, report
    from lsp_server.telemetry import log_path

    path = args.log or log_path(args.cache_dir)
    if not log_files(path):
        if args.log:
            raise CliError(f"no such file: {path}")
        print(f"no suggestions recorded yet: {path} does not exist (the language server writes it while "
              f"the editor shows its suggestions and the telemetry setting is on)")
        return
    try:
        stats = load(path, args.since)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stats.total.shown:
        within = f" in the last {args.since:g} days" if args.since is not None else ""
        print(f"no suggestions recorded{within} in {path}")
        return
    print(report(stats, path))
    if args.plot:
        try:
            plot(stats, args.plot)
        except ImportError:
            raise CliError("--plot needs matplotlib: pip install matplotlib") from None
        except OSError as exc:
            raise CliError(f"cannot write {args.plot}: {exc.strerror or exc}") from None
        print(f"plot: {args.plot}")


def add_serving_commands(sub: argparse._SubParsersAction) -> None:
    """``serve``, ``tokens``, ``complete``, ``index``, ``similar`` and ``stats`` on the ``ghostline`` parser."""
    p = sub.add_parser("serve", help="run the language server (stdio by default), or the team server (--http)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--tcp", metavar="HOST:PORT", help="the language server on TCP")
    where.add_argument("--http", metavar="HOST:PORT", help="the team server: an OpenAI-compatible completions API")
    p.add_argument("--model", type=existing_dir)
    from lsp_server.team.config import TeamServerConfig  # stdlib only: cheap

    d = TeamServerConfig()
    team = p.add_argument_group("team server (--http)")
    team.add_argument("--tokens", type=Path, metavar="FILE", help="tokens file (default: "
                      "$XDG_CONFIG_HOME/ghostline/tokens.json)")
    team.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device)
    team.add_argument("--cpu-threads", type=non_negative_int, default=d.cpu_threads, help="0: CTranslate2 picks")
    team.add_argument("--max-batch-size", type=positive_int, default=d.max_batch_size,
                      help=f"requests per generation (default {d.max_batch_size})")
    team.add_argument("--batch-window-ms", type=non_negative_float, default=d.batch_window_ms,
                      help=f"how long a batch waits for more requests (default {d.batch_window_ms:g})")
    team.add_argument("--max-queue", type=positive_int, default=d.max_queue,
                      help=f"waiting requests beyond this get 503 (default {d.max_queue})")
    team.add_argument("--max-body-bytes", type=positive_int, default=d.max_body_bytes,
                      help=f"larger bodies get 413 (default {d.max_body_bytes})")
    team.add_argument("--max-tokens-limit", type=positive_int, default=d.max_tokens_limit,
                      help=f"largest max_tokens accepted (default {d.max_tokens_limit})")
    team.add_argument("--rate-limit", type=non_negative_int, default=d.rate_limit_per_minute,
                      help=f"requests per minute per token (default {d.rate_limit_per_minute}; 0: none)")
    team.add_argument("--no-token-healing", action="store_true",
                      help="start after the prompt's last token instead of finishing it")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("tokens", help="bearer tokens of the team server: add, list, revoke")
    tokens = p.add_subparsers(dest="tokens_command", required=True)
    t = tokens.add_parser("add", help="make a token; it is printed once, only its hash is kept")
    t.add_argument("name")
    t.add_argument("--expires", type=positive_float, metavar="DAYS", help="valid for this many days (default: ever)")
    tokens.add_parser("list", help="names, creation and expiry dates")
    t = tokens.add_parser("revoke", help="delete a token")
    t.add_argument("name")
    for t in tokens.choices.values():
        t.add_argument("--tokens", type=Path, metavar="FILE", help="default: $XDG_CONFIG_HOME/ghostline/tokens.json")
    p.set_defaults(func=_cmd_tokens)

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

    p = sub.add_parser("stats", help="how often suggestions are taken, from the local telemetry log")
    p.add_argument("--since", type=positive_float, metavar="DAYS", help="only the last DAYS days")
    p.add_argument("--plot", type=Path, metavar="FILE", help="also draw the figures into this PNG")
    p.add_argument("--log", type=Path, metavar="FILE",
                   help="the events file (default: CACHE/telemetry/events.jsonl)")
    p.add_argument("--cache-dir", type=Path, help="default: $XDG_CACHE_HOME/ghostline")
    p.set_defaults(func=_cmd_stats)
