"""Load test of the team server on loopback: N concurrent clients for S seconds.

Starts ``ghostline serve --http`` twice in one run -- batching on (``--max-batch-size 32``)
and one request at a time (``--max-batch-size 1``) -- and drives each with the same clients
asking fill-in-the-middle completions at random places in standard-library files, each
client sending its next request as soon as the last is answered.  Reports requests/s,
p50/p95 latency, errors, generated tokens/s and the server's RSS before and after, then the
throughput ratio of batching against one at a time.

    .venv/bin/python benchmarks/bench_http.py [--seconds 60] [--clients 32] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.measure import pct  # noqa: E402
from lsp_server.team.process import team_server  # noqa: E402
from lsp_server.team.tokens import TokenStore  # noqa: E402

FILES = ["argparse.py", "difflib.py", "textwrap.py", "shutil.py", "json/decoder.py", "logging/__init__.py"]


def requests(n: int, max_tokens: int, suffix: bool = True, seed: int = 0) -> list[dict]:
    """Completion requests at random places in standard-library files: fill-in-the-middle
    (``suffix``), else left to right."""
    rng = random.Random(seed)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = {name: (stdlib / name).read_text(encoding="utf-8") for name in FILES}
    out = []
    while len(out) < n:
        name = rng.choice(FILES)
        text = texts[name]
        cut = rng.randrange(200, len(text) - 200)
        body = {"model": "ghostline", "prompt": text[max(0, cut - 6000):cut], "path": name, "max_tokens": max_tokens,
                "temperature": 0}
        if suffix:
            body["suffix"] = text[cut:cut + 2000]
        out.append(body)
    return out


@dataclass
class Run:
    label: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    tokens: int = 0
    errors: list[str] = field(default_factory=list)
    rss_before: float = 0.0
    rss_after: float = 0.0
    mean_batch: float = 0.0  # requests per generate_batch call, from the server's metrics

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def line(self) -> str:
        return (f"{self.label}: {len(self.latencies)} requests in {self.seconds:.0f} s = {self.rate:.1f} req/s, "
                f"p50 {1000 * pct(self.latencies, 0.5):.0f} ms, p95 {1000 * pct(self.latencies, 0.95):.0f} ms, "
                f"{self.tokens / self.seconds:.0f} generated tokens/s, mean batch {self.mean_batch:.1f}, "
                f"{len(self.errors)} errors, "
                f"server RSS {self.rss_before:.0f} -> {self.rss_after:.0f} MB")


async def load(url: str, token: str, bodies: list[dict], clients: int, seconds: float, run: Run) -> None:
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                  timeout=120) as http:
        for body in bodies[:4]:  # warm up: the model loaded, the first batch run
            (await http.post("/v1/completions", json=body)).raise_for_status()
        next_body = iter(range(len(bodies) * 1000))
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                body = bodies[next(next_body) % len(bodies)]
                t0 = time.perf_counter()
                try:
                    response = await http.post("/v1/completions", json=body)
                    if response.status_code != 200:
                        run.errors.append(f"{response.status_code} {response.text[:200]}")
                        continue
                    run.tokens += response.json()["usage"]["completion_tokens"]
                    run.latencies.append(time.perf_counter() - t0)
                except httpx2.HTTPError as exc:
                    run.errors.append(repr(exc))

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        run.seconds = time.perf_counter() - t0
        metrics = (await http.get("/metrics")).text
        found = {m.group(1): float(m.group(2)) for m in re.finditer(r"^ghostline_batch_size_(sum|count) (\S+)$",
                                                                     metrics, re.M)}
        run.mean_batch = found["sum"] / found["count"]


def measure(label: str, server_args: list[str], args: argparse.Namespace, bodies: list[dict], folder: Path) -> Run:
    run = Run(label)
    common = ["--tokens", str(folder / "tokens.json"), "--rate-limit", "1000000", "--max-queue", "1024",
              "--device", args.device]
    if args.model:
        common += ["--model", args.model]
    if args.cpu_threads:
        common += ["--cpu-threads", str(args.cpu_threads)]
    with team_server(common + server_args, folder / f"{label.replace(' ', '-')}.log") as server:
        run.rss_before = server.rss_mb()
        asyncio.run(load(server.url, args.token, bodies, args.clients, args.seconds, run))
        run.rss_after = server.rss_mb()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per server (default 60)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=48, help="per request (the language server's default)")
    parser.add_argument("--left-to-right", action="store_true", help="no suffix: plain continuations")
    parser.add_argument("--batch-window-ms", type=float, default=5.0)
    parser.add_argument("--max-batch-size", type=int, default=32, help="of the batching server")
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--model", help="CTranslate2 model folder (default: the shipped model)")
    args = parser.parse_args()
    bodies = requests(2000, args.max_tokens, suffix=not args.left_to_right)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        args.token = TokenStore(folder / "tokens.json").add("bench")
        runs = [
            measure("batching", ["--max-batch-size", str(args.max_batch_size),
                                 "--batch-window-ms", str(args.batch_window_ms)],
                    args, bodies, folder),
            measure("one at a time", ["--max-batch-size", "1"], args, bodies, folder),
        ]
    for run in runs:
        print(run.line())
        for error in run.errors[:5]:
            print(f"  error: {error}")
    print(f"throughput ratio, batching / one at a time: {runs[0].rate / runs[1].rate:.2f}x "
          f"({args.clients} clients, {args.seconds:.0f} s each, max_tokens {args.max_tokens}, "
          f"{'left to right' if args.left_to_right else 'fill-in-the-middle'}, window {args.batch_window_ms:g} ms, "
          f"batches of up to {args.max_batch_size}, device {args.device}, cpu threads {args.cpu_threads or 'auto'}, "
          f"latency ratio p50 {statistics.median(runs[1].latencies) / statistics.median(runs[0].latencies):.2f}x)")


if __name__ == "__main__":
    main()
