"""The ``ghostline`` command: the training half (train, export, eval) and the dispatcher.

``main`` is the ``ghostline`` entry point (``[project.scripts]``).  It lives here, in
``training``, because that is the side allowed to know both halves: ``training`` may use the
language server (``eval lines`` drives it as a black box), the server never imports
``training``.  So this module imports ``lsp_server.cli`` -- the serving commands and the pieces
both halves share (``CliError``, ``OneLineParser``, argument types) -- and nothing imports
this module back (``torchrun ... -m training.cli train`` runs it as a script).

Heavy imports (torch, transformers) happen inside the subcommands that need them, so
``ghostline serve`` and ``ghostline complete`` start as fast as the server does.  Bad
arguments end in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lsp_server.cli import (
    CliError,
    OneLineParser,
    add_serving_commands,
    existing_dir,
    permille,
    positive_float,
    positive_int,
    positive_permille,
    run,
    share,
)
from model import __version__

# AdaptConfig.steps, for the arguments' defaults without importing torch (a test keeps the
# two equal).
ADAPT_STEPS = 120

if TYPE_CHECKING:  # torch stays unimported until a command needs it
    from training.train import TrainConfig

QUANTIZATIONS = ["int8", "float32", "float16", "int8_float32"]


def require_cxx_compiler() -> None:
    """``--compile`` builds C++ kernels with the compiler torch's inductor looks for
    (``$CXX``, else ``g++``): without one the run would fail only after its corpus is
    tokenized, in a long traceback, so say so before anything starts."""
    import os
    import shutil

    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise CliError(f"--compile needs a C++ compiler and {cxx!r} is not on PATH "
                       "(install g++ or set CXX), or train without --compile")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` that ``ghostline train``'s arguments ask for (its preset, overridden)."""
    from dataclasses import replace

    from training.train import PRESETS

    cfg = PRESETS[args.preset]
    overrides = {k: getattr(args, k) for k in ("max_steps", "batch_size", "device", "eval_interval")
                 if getattr(args, k) is not None}
    if args.init_from:
        if not (args.init_from / "ghostline_model.json").is_file():
            raise CliError(f"{args.init_from} is not a ghostline model folder (no ghostline_model.json)")
        overrides["init_from"] = str(args.init_from)
    if args.layers is not None:
        if not args.init_from:
            raise CliError("--layers grows a trained model: it needs --init-from")
        from model.config import ModelConfig

        base = ModelConfig.load(args.init_from).n_layer
        if args.layers <= base:
            raise CliError(f"--layers {args.layers} must be more than {args.init_from}'s {base} layers")
        overrides["grow_to_layers"] = args.layers
    if args.tokenizer_from:
        if args.init_from:
            raise CliError("--init-from brings its own tokenizer: --tokenizer-from is for new weights")
        from model.tokenizer import TOKENIZER_FILE

        if not (args.tokenizer_from / TOKENIZER_FILE).is_file():
            raise CliError(f"{args.tokenizer_from} has no {TOKENIZER_FILE}")
        overrides["tokenizer_from"] = str(args.tokenizer_from)
    if args.max_minutes is not None:
        if args.decay_steps is not None:
            raise CliError("--max-minutes sets the schedule by the clock: --decay-steps counts steps; give one")
        overrides["max_seconds"] = args.max_minutes * 60
    if args.threads:
        overrides["threads"] = args.threads
    if args.compile:
        require_cxx_compiler()
        overrides["compile"] = True
    if args.corpus_offset is not None:
        overrides["corpus_sample_offset"] = args.corpus_offset
    if args.corpus_permille is not None:
        overrides["corpus_sample_permille"] = args.corpus_permille
    if args.max_package_mb is not None:
        overrides["corpus_max_package_bytes"] = round(args.max_package_mb * 1e6)
    if args.token_cut_rate is not None:
        overrides["data"] = replace(cfg.data, token_cut_rate=args.token_cut_rate)
    if args.lr is not None:
        overrides["lr"] = args.lr
        overrides["min_lr"] = min(cfg.min_lr, args.lr / 10)
    cfg = replace(cfg, **overrides)
    if cfg.corpus_sample_offset and cfg.corpus_sample_permille >= 1000:
        raise CliError("--corpus-offset moves a partial sample; at --corpus-permille 1000 every file is in it "
                       "and the offset changes nothing (--skip-files-of RUN leaves out what RUN read)")
    if args.decay_steps is not None:
        if cfg.schedule != "wsd":
            raise CliError(f"--decay-steps needs a warm-up/stable/decay schedule; preset {args.preset} decays "
                           f"by cosine over the whole run")
        if args.decay_steps >= cfg.max_steps:
            raise CliError(f"--decay-steps {args.decay_steps} must be fewer than the run's {cfg.max_steps} steps")
        cfg = replace(cfg, decay_frac=args.decay_steps / cfg.max_steps)
    return cfg


def check_run_folder(out: Path, resume: bool) -> None:
    """A run folder holds one run: a new run never overwrites another's checkpoint (hours of
    training), and ``--resume`` needs the optimizer state it continues from."""
    from model.export import CHECKPOINT_DIR, STATE_FILE

    has_state, has_checkpoint = (out / STATE_FILE).is_file(), (out / CHECKPOINT_DIR).is_dir()
    if resume and not has_state:
        if has_checkpoint:
            raise CliError(f"{out} has a checkpoint but no {STATE_FILE} (its optimizer state) to resume: "
                           f"continue from its weights with --init-from {out / CHECKPOINT_DIR} --out NEW_RUN")
        raise CliError(f"nothing to resume in {out} (no {STATE_FILE}): without --resume a new run starts there")
    if not resume and (has_state or has_checkpoint):
        raise CliError(f"{out} already holds a training run: --resume continues it, another --out starts a new one")


def _cmd_train(args: argparse.Namespace) -> dict:
    from training.corpus import CorpusConfig
    from training.train import train

    cfg = train_config(args)
    check_run_folder(args.out, args.resume)
    corpus = CorpusConfig(roots=args.roots) if args.roots else CorpusConfig()
    if args.skip_files_of or args.files_of:
        from training.corpus import read_file_list

        try:
            corpus.skip = frozenset().union(*(read_file_list(run) for run in args.skip_files_of or ()))
            if args.files_of:
                corpus.only = frozenset().union(*(read_file_list(run) for run in args.files_of))
        except ValueError as err:
            raise CliError(str(err)) from None
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
    try:
        out = export(args.checkpoint, args.out, quantization=args.quantization,
                     second_opinion_sure=args.second_opinion_sure)
    except ValueError as exc:
        raise CliError(str(exc)) from None
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


def _cmd_adapt(args: argparse.Namespace) -> None:
    from model.adapted import adapted_dir, read_adapted, remove_adapted

    root = args.folder.resolve()
    cache = args.cache_dir
    if args.remove:
        print(f"removed the adapted model of {root}" if remove_adapted(root, cache)
              else f"{root} has no adapted model")
        return
    if args.status:
        try:
            found = read_adapted(root, cache)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if found is None:
            print(f"{root} has no adapted model (ghostline adapt {args.folder} makes one)")
            return
        folder, info = found
        print(f"adapted {info.created} from {info.base_model}: {info.files} files, {info.steps} steps, "
              f"{info.tokens_seen:,} tokens in {info.seconds:.0f} s (validation loss {info.val_loss_after:.3f})")
        print(f"model: {folder}")
        return
    from lsp_server.settings import DEFAULT_MODEL_DIR
    from training.adapt import AdaptConfig, adapt

    base = args.base or DEFAULT_MODEL_DIR
    config = AdaptConfig(steps=args.steps, seed=args.seed, **({"threads": args.threads} if args.threads else {}))
    try:
        info = adapt(root, base, cache, config)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(f"adapted model for {root} in {info.seconds:.0f} s ({info.steps} steps, {info.tokens_seen:,} tokens, "
          f"validation loss {info.val_loss_after:.3f}, peak RSS {info.peak_rss_mb:.0f} MB): "
          f"{adapted_dir(root, cache)}; a language server opened on this folder uses it")


def setting_pair(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` for ``eval lines --setting``: a server setting's camelCase name and a
    JSON value (a bare word is a string), checked as the server would check it."""
    import json

    from lsp_server.settings import parse_settings

    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    _, warnings = parse_settings({name: value})
    if warnings:
        raise argparse.ArgumentTypeError("; ".join(warnings))
    return name, value


def confidence(text: str) -> float:
    """A confidence, from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (expected a confidence from 0 to 1)") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"confidences go from 0 to 1: {text}")
    return value


def confidence_list(text: str) -> list[float]:
    """``0,0.1,0.2`` for ``eval lines --curve``: minConfidence values, each from 0 to 1."""
    return [confidence(part) for part in text.split(",")]


def _cmd_eval_lines(args: argparse.Namespace) -> None:
    from training.eval_lines import evaluate_lines

    if not args.examples.is_file():
        raise CliError(f"no such file: {args.examples}")
    # Both would otherwise show only at the end: a run folder given for its export scores
    # every line as unanswered, and a dump with nowhere to go loses the run's minutes.
    if args.model and not (args.model / "model.bin").is_file():
        raise CliError(f"no model at {args.model} (model.bin is missing: a CTranslate2 export, "
                       f"such as ghostline export writes, is needed)")
    if args.dump and not args.dump.parent.is_dir():
        raise CliError(f"--dump {args.dump}: no such folder {args.dump.parent}")
    options: dict = {"retrieval": not args.no_retrieval, "lineMemory": not args.no_line_memory,
                     "tokenHealing": not args.no_token_healing}
    if args.model:
        options["modelPath"] = str(args.model)
    options.update(dict(args.setting or ()))
    adapt = None
    if args.adapt:
        from training.adapt import AdaptConfig

        adapt = AdaptConfig(steps=args.adapt_steps, seed=args.adapt_seed)
    try:
        report = evaluate_lines(args.examples, args.repos, options, limit=args.limit, verbose=True,
                                adapt=adapt, explain=bool(args.dump), mid_word=args.mid_word)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    if args.dump:
        import json

        args.dump.write_text("\n".join(json.dumps(r) for r in report.rows) + "\n")
    mode = ("no retrieval" if args.no_retrieval else "with retrieval") + \
        (", no line memory" if args.no_line_memory else "") + \
        (", no token healing" if args.no_token_healing else "") + (", adapted" if args.adapt else "") + \
        (", cut inside words" if args.mid_word else "")
    print(f"line completion ({mode}): {report.line()}")
    if args.curve:
        # A copied line below minConfidence makes way for the model, so each point of the
        # curve is a run of its own: filtering one run's answers would miss what the model says.
        print("precision/coverage (minConfidence: EM, ES, shown %, precision among shown):")
        for value in args.curve:
            point = evaluate_lines(args.examples, args.repos, {**options, "minConfidence": value}, limit=args.limit,
                                   adapt=adapt, mid_word=args.mid_word)
            print(f"  {value:.2f}: EM {point.em:.1f}  ES {point.es:.1f}  shown {point.shown:.1f}%  "
                  f"precision {point.precision:.1f}")


def _cmd_eval_ppl(args: argparse.Namespace) -> None:
    from training.eval_ppl import perplexity

    files = sorted(args.files.rglob("*.py")) if args.files.is_dir() else [args.files]
    if not files:
        raise CliError(f"no .py files under {args.files}")
    ppl, n = perplexity(args.model, files, args.files if args.files.is_dir() else args.files.parent)
    print(f"perplexity {ppl:.2f} over {n:,} tokens of {len(files)} files ({args.files})")


def _cmd_eval_fim(args: argparse.Namespace) -> None:
    from model.engine import ModelLoadError
    from training.eval_fim import evaluate_fim

    if not args.examples.is_file():
        raise CliError(f"no such file: {args.examples}")
    try:
        report = evaluate_fim(args.model, args.examples, args.repos)
    except (ValueError, OSError, ModelLoadError) as exc:
        raise CliError(str(exc)) from None
    print(f"{args.model}: {report.line()}")


def _cmd_eval_clones(args: argparse.Namespace) -> None:
    from training.eval_clones import SIGNALS, evaluate_clones

    if not args.examples.is_file():
        raise CliError(f"no such file: {args.examples}")
    try:
        report = evaluate_clones(args.examples, signals=tuple(args.signals or SIGNALS), split=args.split)
    except (ValueError, KeyError) as exc:
        raise CliError(str(exc)) from None
    print("\n".join(report.lines()))


def add_training_commands(sub: argparse._SubParsersAction) -> None:
    """``train``, ``export`` and ``eval lines|ppl|clones`` on the ``ghostline`` parser."""
    p = sub.add_parser("train", help="train a model on folders of code")
    p.add_argument("--preset", choices=["tiny", "mini", "small", "small-1k", "medium-1k"], default="tiny")
    p.add_argument("--init-from", type=existing_dir, help="start from this model folder's weights and tokenizer")
    p.add_argument("--layers", type=positive_int, metavar="N",
                   help="with --init-from: grow the model to N layers, the added ones starting as the identity")
    p.add_argument("--tokenizer-from", type=existing_dir, metavar="MODEL",
                   help="new weights on this model folder's tokenizer instead of one trained on the corpus")
    p.add_argument("--out", type=Path, required=True, help="run folder (data, checkpoint, logs)")
    p.add_argument("--roots", type=existing_dir, nargs="+", help="code folders (default: this Python's own code)")
    p.add_argument("--max-steps", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--eval-interval", type=positive_int, metavar="STEPS",
                   help="validate and save a checkpoint every STEPS steps (default: the preset's)")
    p.add_argument("--corpus-offset", type=permille, metavar="PERMILLE",
                   help="start the preset's file sample here on the path-hash ring (0-999), so a run continued "
                        "from another sees the files that one did not")
    p.add_argument("--corpus-permille", type=positive_permille, metavar="PERMILLE",
                   help="keep this share of the files (1-1000; default: the preset's)")
    p.add_argument("--skip-files-of", type=existing_dir, nargs="+", metavar="RUN",
                   help="leave out the files these run folders' corpora took (their data/files.txt), so a "
                        "continuation learns from code its lineage has not seen")
    p.add_argument("--files-of", type=existing_dir, nargs="+", metavar="RUN",
                   help="read only the files these run folders' corpora took, to go over them again (with a "
                        "low --lr: an anneal on code the lineage already chose)")
    p.add_argument("--max-package-mb", type=positive_float, metavar="MB",
                   help="at most about MB of any one package (files by path hash), so a few huge packages "
                        "do not fill the corpus")
    p.add_argument("--token-cut-rate", type=share, metavar="SHARE",
                   help="the share of fill-in-the-middle cuts made between two tokens rather than at any "
                        "character, as the server's prompts are (default 0: every cut at any character)")
    p.add_argument("--lr", type=positive_float, metavar="RATE",
                   help="peak learning rate (default: the preset's); lower it to continue a model whose own "
                        "schedule already decayed")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--compile", action="store_true",
                   help="compile the training step with torch.compile (needs a C compiler): ~1.15x the tokens/s on "
                        "a 2-core CPU, after a start of under a minute")
    p.add_argument("--max-minutes", type=positive_float, metavar="M",
                   help="train for M minutes (the learning rate's schedule on the clock, not the step count), "
                        "for a machine lent for a fixed time")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--decay-steps", type=positive_int,
                   help="the learning rate decays over the last N steps (wsd presets): with --resume on a copy "
                        "of a run folder, a short decay gives a release checkpoint while the run goes on")
    p.add_argument("--export", type=Path, help="also export the final checkpoint to this folder")
    p.add_argument("--quantization", default="int8", choices=QUANTIZATIONS)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("adapt", help="fine-tune the default model on a workspace's own code (CPU, minutes)")
    p.add_argument("folder", type=existing_dir, nargs="?", default=Path("."), help="the workspace (default: here)")
    p.add_argument("--steps", type=positive_int, default=ADAPT_STEPS,
                   help=f"training steps (default {ADAPT_STEPS}; under a second each on 2 cores)")
    p.add_argument("--base", type=existing_dir, help="model to start from (default: the shipped model)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0,
                   help="another draw of fill-in-the-middle cuts and batches (default 0)")
    p.add_argument("--cache-dir", type=Path, help="default: $XDG_CACHE_HOME/ghostline")
    p.add_argument("--status", action="store_true", help="say whether and when this folder was adapted")
    p.add_argument("--remove", action="store_true", help="delete this folder's adapted model")
    p.set_defaults(func=_cmd_adapt)

    p = sub.add_parser("export", help="convert a checkpoint to CTranslate2")
    p.add_argument("checkpoint", type=existing_dir)
    p.add_argument("out", type=Path)
    p.add_argument("--quantization", default="int8", choices=QUANTIZATIONS)
    p.add_argument("--parity", action="store_true", help="compare greedy outputs with the checkpoint")
    p.add_argument("--card-command", help="write MODEL_CARD.md, naming this as the training command")
    p.add_argument("--second-opinion-sure", type=confidence, metavar="CONFIDENCE",
                   help="where line memory is unsure, the model's line replaces it from this confidence on "
                        "(as fitted by python -m training.fit_ranker --second-opinion; default: the run's, 0.5)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("eval", help="evaluate models and retrieval")
    evals = p.add_subparsers(dest="eval_command", required=True)
    e = evals.add_parser("lines", help="line completion EM/ES through the language server")
    e.add_argument("examples", type=Path, help="line_completion_*.jsonl")
    e.add_argument("--repos", type=existing_dir, required=True, help="folder holding the examples' repositories")
    e.add_argument("--model", type=existing_dir, help="CTranslate2 model folder (default: the shipped model)")
    e.add_argument("--no-retrieval", action="store_true", help="switch off repository context")
    e.add_argument("--no-line-memory", action="store_true", help="always ask the model (no copying of existing lines)")
    e.add_argument("--no-token-healing", action="store_true",
                   help="the model starts after the cursor's last token instead of finishing it")
    e.add_argument("--setting", type=setting_pair, action="append", metavar="NAME=VALUE",
                   help="a server setting for the run, as the editor would send it (maxPrefixTokens=640); repeatable")
    e.add_argument("--limit", type=positive_int, help="only the first N examples")
    e.add_argument("--dump", type=Path,
                   help="write per-example predictions, with each one's source and confidence, here (JSON lines)")
    e.add_argument("--adapt", action="store_true",
                   help="first adapt the model to each repository (its copy with the evaluated lines cut)")
    e.add_argument("--adapt-steps", type=positive_int, default=ADAPT_STEPS,
                   help=f"steps of that adaptation (default {ADAPT_STEPS}, as ghostline adapt)")
    e.add_argument("--adapt-seed", type=int, default=0,
                   help="that adaptation's seed: two seeds differ by about a point of EM, so compare several")
    e.add_argument("--mid-word", action="store_true",
                   help="cut each example again halfway into the word its answer starts with (answers starting "
                        "with a word of 3+ characters), where a cursor stands while typing")
    e.add_argument("--curve", type=confidence_list, metavar="VALUES",
                   help="also run once per minConfidence value (0,0.1,0.2) and print the precision/coverage curve")
    e.set_defaults(func=_cmd_eval_lines)
    e = evals.add_parser("ppl", help="perplexity of a CTranslate2 model on held-out files")
    e.add_argument("model", type=existing_dir)
    e.add_argument("--files", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
                   / "repos" / "requests", help="a file or folder of .py files (default: the requests dev repo)")
    e.set_defaults(func=_cmd_eval_ppl)
    e = evals.add_parser("fim", help="likelihood of a line-completion set's true lines, filled in the middle")
    e.add_argument("model", type=existing_dir)
    dev = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
    e.add_argument("--examples", type=Path, default=dev / "line_completion_requests.jsonl",
                   help="line_completion_*.jsonl (default: the dev set)")
    e.add_argument("--repos", type=existing_dir, default=dev / "repos",
                   help="folder holding the examples' repositories")
    e.set_defaults(func=_cmd_eval_fim)
    e = evals.add_parser("clones", help="clone-detection MAP@R of the similarity index (POJ-104 definition)")
    e.add_argument("examples", type=Path, help="JSON lines with label and code, e.g. leetcode_dev.jsonl")
    e.add_argument("--signals", nargs="+", metavar="SIGNAL",
                   help="rankings to score (default all): fused, lexical (words and shape), words, shape, "
                        "interface, structure, dense")
    e.add_argument("--split", choices=["all", "train", "heldout", "train-encoder", "train-fusion"], default="all",
                   help="only the problems on one side of the train/held-out split (training.eval_clones.split_of), "
                        "or of one half of train (train_half_of: the encoder's and the fusion fit's)")
    e.set_defaults(func=_cmd_eval_clones)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``ghostline`` command line: the training half and the serving half."""
    parser = OneLineParser(prog="ghostline", description="Private, offline code completion.")
    parser.add_argument("--version", action="version", version=f"ghostline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_training_commands(sub)
    add_serving_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run(args.func, args)


if __name__ == "__main__":
    main()
