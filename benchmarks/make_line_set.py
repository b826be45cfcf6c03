"""Cut a line-completion set from a repository, in the dev set's format, for a second check.

The dev set (``../shared/eval/line_completion_requests.jsonl``) is one repository; every
threshold and weight of the server is chosen on it.  A set cut the same way from another
repository that no model here was trained on (sqlalchemy's own packages, say) shows
whether a change helps code in general or only requests:

    python benchmarks/make_line_set.py ../shared/corpus/sqlalchemy /tmp/sets sqla 300 \\
        lib/sqlalchemy/engine test/engine
    ghostline eval lines /tmp/sets/sqla.jsonl --repos /tmp/sets

The folders named are copied to ``OUT/NAME``; lines are sampled from their ``.py`` files
(not blank, not a comment, at least two tokens) and each is cut at a token boundary: at its
first token (an empty line to complete) about as often as in the dev set, else at a random
later token.  The rest of the line is the ground truth.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lsp_server.candidates import TOKEN_START as TOKEN  # noqa: E402

# Share of the dev set's examples cut at the line's first token (204 of 642).
START_SHARE = 0.32


def sample_examples(repo: Path, name: str, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    pool = []
    for path in sorted(repo.rglob("*.py")):
        for no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").split("\n"), start=1):
            text = line.strip()
            if text and not text.startswith("#") and len(TOKEN.findall(text)) >= 2:
                pool.append((path.relative_to(repo).as_posix(), no, line))
    if len(pool) < count:
        raise SystemExit(f"only {len(pool)} lines to sample from under {repo}")
    rows = []
    for k, (rel, no, line) in enumerate(sorted(rng.sample(pool, count))):
        starts = [m.start() for m in TOKEN.finditer(line)]
        index = 0 if rng.random() < START_SHARE else rng.randrange(1, len(starts))
        cut = starts[index]
        rows.append({"id": f"{name}-{k}", "repo": name, "path": rel, "line_no": no, "cut_col": cut,
                     "cut_token_index": index, "tokens_on_line": len(starts), "prefix_chars": 0,
                     "gt": line[cut:].rstrip()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the repository to cut from")
    parser.add_argument("out", type=Path, help="where the copy and NAME.jsonl go")
    parser.add_argument("name", help="the set's repository name (a folder of OUT)")
    parser.add_argument("count", type=int, help="examples to cut")
    parser.add_argument("folders", nargs="+", help="folders of SOURCE to copy (relative paths)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for folder in args.folders:
        if not (args.source / folder).is_dir():
            parser.error(f"{args.source / folder} is not a folder")
    dest = args.out / args.name
    if dest.exists():
        shutil.rmtree(dest)
    for folder in args.folders:
        shutil.copytree(args.source / folder, dest / folder)
    rows = sample_examples(dest, args.name, args.count, args.seed)
    (args.out / f"{args.name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} examples -> {args.out / (args.name + '.jsonl')} (repository copy in {dest})")


if __name__ == "__main__":
    main()
