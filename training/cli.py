"""The ``ghostline`` command: train, export, serve, complete, eval.

Heavy imports (torch, transformers) happen inside the subcommands that need them, so
``ghostline serve`` and ``ghostline complete`` start as fast as the server does.  Bad
arguments end in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one ``--help`` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _existing_dir(text: str) -> Path:
    p = Path(text).expanduser()
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"not a folder: {text}")
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _cmd_train(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from training.corpus import CorpusConfig
    from training.train import PRESETS, train

    cfg = PRESETS[args.preset]
    overrides = {k: getattr(args, k) for k in ("max_steps", "batch_size", "device") if getattr(args, k) is not None}
    if args.init_from:
        if not (args.init_from / "ghostline_model.json").is_file():
            raise CliError(f"{args.init_from} is not a ghostline model folder (no ghostline_model.json)")
        overrides["init_from"] = str(args.init_from)
    if args.threads:
        overrides["threads"] = args.threads
    cfg = replace(cfg, **overrides)
    corpus = CorpusConfig(roots=args.roots) if args.roots else CorpusConfig()
    summary = train(cfg, args.out, corpus=corpus, resume=args.resume)
    if args.export:
        from model.export import export

        out = export(args.out / "checkpoint", args.export, quantization=args.quantization)
        print(f"exported {args.quantization} model to {out}")
    return summary


def _cmd_export(args: argparse.Namespace) -> None:
    from model.export import export, parity

    if not (args.checkpoint / "config.json").is_file():
        raise CliError(f"{args.checkpoint} is not a training checkpoint (no config.json)")
    out = export(args.checkpoint, args.out, quantization=args.quantization)
    print(f"exported {args.quantization} model to {out}")
    extra = {}
    if args.parity:
        report = parity(args.checkpoint, out)
        print(report.line())
        extra["export parity"] = report.line()
    if args.card_command and (args.checkpoint.parent / "data" / "meta.json").is_file():
        from training.model_card import write_model_card

        card = write_model_card(args.checkpoint, out, args.quantization, args.card_command, extra)
        print(f"model card: {card}")


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

    spec = args.location
    try:
        file_part, line_s, col_s = spec.rsplit(":", 2)
        line, col = int(line_s), int(col_s)
    except ValueError:
        raise CliError(f"expected FILE:LINE:COLUMN (1-based line and column), got {spec!r}") from None
    path = Path(file_part)
    if not path.is_file():
        raise CliError(f"no such file: {file_part}")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if not 1 <= line <= len(lines) or not 1 <= col <= len(lines[line - 1]) + 1:
        raise CliError(f"{spec}: position outside the file ({len(lines)} lines)")
    result = complete_file(path, line - 1, col - 1, model=args.model, max_tokens=args.max_tokens)
    print(result)


def _cmd_eval_lines(args: argparse.Namespace) -> None:
    from training.eval_lines import evaluate_lines

    if not args.examples.is_file():
        raise CliError(f"no such file: {args.examples}")
    options: dict = {"retrieval": not args.no_retrieval, "lineMemory": not args.no_line_memory}
    if args.model:
        options["modelPath"] = str(args.model)
    try:
        report = evaluate_lines(args.examples, args.repos, options, limit=args.limit, verbose=True)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    if args.dump:
        import json

        args.dump.write_text("\n".join(json.dumps(r) for r in report.rows) + "\n")
    mode = ("no retrieval" if args.no_retrieval else "with retrieval") + \
        (", no line memory" if args.no_line_memory else "")
    print(f"line completion ({mode}): {report.line()}")


def _cmd_eval_ppl(args: argparse.Namespace) -> None:
    from training.eval_ppl import perplexity

    files = sorted(args.files.rglob("*.py")) if args.files.is_dir() else [args.files]
    if not files:
        raise CliError(f"no .py files under {args.files}")
    ppl, n = perplexity(args.model, files, args.files if args.files.is_dir() else args.files.parent)
    print(f"perplexity {ppl:.2f} over {n:,} tokens of {len(files)} files ({args.files})")


def _cmd_index(args: argparse.Namespace) -> None:
    from lsp_server.similarity.service import WorkspaceConfig, WorkspaceIndex, default_cache_dir

    workspace = WorkspaceIndex(args.folder, WorkspaceConfig(cache_dir=args.cache_dir or default_cache_dir()))
    report = workspace.refresh()
    print(f"indexed {args.folder}: {report.files:,} files, {report.chunks:,} chunks "
          f"({report.indexed:,} read, {report.from_cache:,} from cache, {report.removed:,} gone) "
          f"in {report.seconds:.1f}s; cache in {workspace.save()}")


def _cmd_similar(args: argparse.Namespace) -> None:
    from lsp_server.similarity.service import WorkspaceConfig, WorkspaceIndex, default_cache_dir

    spec = args.location
    try:
        file_part, lines = spec.rsplit(":", 1)
        start_s, _, end_s = lines.partition("-")
        start, end = int(start_s), int(end_s or start_s)
    except ValueError:
        raise CliError(f"expected FILE:START-END (1-based lines), got {spec!r}") from None
    path = Path(file_part)
    if not path.is_file():
        raise CliError(f"no such file: {file_part}")
    text = path.read_text(encoding="utf-8", errors="replace")
    n_lines = text.count("\n") + 1
    if not 1 <= start <= end <= n_lines:
        raise CliError(f"{spec}: lines must satisfy 1 <= START <= END <= {n_lines}")
    root = args.workspace or path.resolve().parent
    workspace = WorkspaceIndex(root, WorkspaceConfig(cache_dir=args.cache_dir or default_cache_dir()))
    workspace.refresh()
    hits = workspace.find_similar(str(path.resolve()), text, start - 1, end - 1, args.limit, signals=args.signals)
    if not hits:
        print("no similar code found")
    for hit in hits:
        e = hit.entry
        where = Path(e.file).relative_to(workspace.root) if Path(e.file).is_relative_to(workspace.root) else e.file
        print(f"{hit.score:.3f}  {where}:{e.start_line + 1}-{e.end_line + 1}  {e.kind} {e.name}"
              f"  (lexical {hit.lexical:.3f}, dense {hit.dense:.3f})")
        print("\n".join("        " + line for line in e.preview.split("\n")))


def _cmd_eval_clones(args: argparse.Namespace) -> None:
    from training.eval_clones import evaluate_clones

    if not args.examples.is_file():
        raise CliError(f"no such file: {args.examples}")
    try:
        report = evaluate_clones(args.examples, signals=tuple(args.signals))
    except (ValueError, KeyError) as exc:
        raise CliError(str(exc)) from None
    print("\n".join(report.lines()))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="ghostline", description="Private, offline code completion.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model on folders of code")
    p.add_argument("--preset", choices=["tiny", "mini", "small", "small-1k"], default="tiny")
    p.add_argument("--init-from", type=_existing_dir, help="start from this model folder's weights and tokenizer")
    p.add_argument("--out", type=Path, required=True, help="run folder (data, checkpoint, logs)")
    p.add_argument("--roots", type=_existing_dir, nargs="+", help="code folders (default: this Python's own code)")
    p.add_argument("--max-steps", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--export", type=Path, help="also export the final checkpoint to this folder")
    p.add_argument("--quantization", default="int8", choices=["int8", "float32", "float16", "int8_float32"])
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("export", help="convert a checkpoint to CTranslate2")
    p.add_argument("checkpoint", type=_existing_dir)
    p.add_argument("out", type=Path)
    p.add_argument("--quantization", default="int8", choices=["int8", "float32", "float16", "int8_float32"])
    p.add_argument("--parity", action="store_true", help="compare greedy outputs with the checkpoint")
    p.add_argument("--card-command", help="write MODEL_CARD.md, naming this as the training command")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("serve", help="run the language server (stdio by default)")
    p.add_argument("--tcp", metavar="HOST:PORT")
    p.add_argument("--model", type=_existing_dir)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("complete", help="complete at FILE:LINE:COLUMN through the language server")
    p.add_argument("location", metavar="FILE:LINE:COLUMN")
    p.add_argument("--model", type=_existing_dir)
    p.add_argument("--max-tokens", type=_positive_int, default=48)
    p.set_defaults(func=_cmd_complete)

    p = sub.add_parser("index", help="index a folder for similar-code search (kept in the cache folder)")
    p.add_argument("folder", type=_existing_dir)
    p.add_argument("--cache-dir", type=Path, help="default: $XDG_CACHE_HOME/ghostline")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("similar", help="code similar to FILE:START-END (1-based lines) in a workspace")
    p.add_argument("location", metavar="FILE:START-END")
    p.add_argument("--workspace", type=_existing_dir, help="folder to search (default: the file's folder)")
    p.add_argument("--limit", type=_positive_int, default=10)
    p.add_argument("--signals", choices=["fused", "lexical", "dense"], default="fused")
    p.add_argument("--cache-dir", type=Path, help="default: $XDG_CACHE_HOME/ghostline")
    p.set_defaults(func=_cmd_similar)

    p = sub.add_parser("eval", help="evaluate models and retrieval")
    evals = p.add_subparsers(dest="eval_command", required=True)
    e = evals.add_parser("lines", help="line completion EM/ES through the language server")
    e.add_argument("examples", type=Path, help="line_completion_*.jsonl")
    e.add_argument("--repos", type=_existing_dir, required=True, help="folder holding the examples' repositories")
    e.add_argument("--model", type=_existing_dir, help="CTranslate2 model folder (default: the shipped model)")
    e.add_argument("--no-retrieval", action="store_true", help="switch off repository context")
    e.add_argument("--no-line-memory", action="store_true", help="always ask the model (no copying of existing lines)")
    e.add_argument("--limit", type=_positive_int, help="only the first N examples")
    e.add_argument("--dump", type=Path, help="write per-example predictions (JSON lines) here")
    e.set_defaults(func=_cmd_eval_lines)
    e = evals.add_parser("ppl", help="perplexity of a CTranslate2 model on held-out files")
    e.add_argument("model", type=_existing_dir)
    e.add_argument("--files", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
                   / "repos" / "requests", help="a file or folder of .py files (default: the requests dev repo)")
    e.set_defaults(func=_cmd_eval_ppl)
    e = evals.add_parser("clones", help="clone-detection MAP@R of the similarity index (POJ-104 definition)")
    e.add_argument("examples", type=Path, help="JSON lines with label and code, e.g. leetcode_dev.jsonl")
    e.add_argument("--signals", nargs="+", choices=["fused", "lexical", "dense"], default=["fused", "lexical", "dense"])
    e.set_defaults(func=_cmd_eval_clones)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except CliError as exc:
        print(f"ghostline: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
