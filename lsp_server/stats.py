"""``ghostline stats``: how often suggestions are taken, from the local telemetry log.

The log (``telemetry.py``) holds events; this module folds them into suggestions (one per
id) and counts, by source, language and latency bucket, how many were shown, taken whole
or in part, typed over, and how many characters were accepted.  A suggestion counts as
*taken* when any of it was accepted (``accepted`` or ``partial``); the acceptance rate is
taken over shown.  matplotlib is imported only to draw (``plot``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lsp_server.telemetry import EVENTS, rotated

# Upper bounds (ms, exclusive) and names of the latency buckets; the last is open-ended.
LATENCY_BUCKETS = ((50, "<50 ms"), (100, "50-100 ms"), (200, "100-200 ms"), (500, "200-500 ms"),
                   (float("inf"), ">=500 ms"))
OUTCOMES = ("accepted", "partial", "typedOver")  # strongest first: one whole accept outranks a typed-over


@dataclass
class Suggestion:
    """Everything the log says about one suggestion id."""

    id: str
    source: str
    language: str
    latency_ms: float
    first: datetime
    events: set[str] = field(default_factory=set)
    accepted_chars: int = 0

    @property
    def outcome(self) -> str:
        """accepted (whole), partial, typedOver, or ignored (shown, then left)."""
        return next((o for o in OUTCOMES if o in self.events), "ignored")

    @property
    def latency_bucket(self) -> str:
        return next(name for bound, name in LATENCY_BUCKETS if self.latency_ms < bound)


@dataclass
class Row:
    """Counts for one group of suggestions."""

    shown: int = 0
    accepted: int = 0  # taken whole
    partial: int = 0  # taken in part only
    typed_over: int = 0
    accepted_chars: int = 0

    def add(self, s: Suggestion) -> None:
        self.shown += 1
        self.accepted += s.outcome == "accepted"
        self.partial += s.outcome == "partial"
        self.typed_over += s.outcome == "typedOver"
        self.accepted_chars += s.accepted_chars

    @property
    def taken(self) -> int:
        return self.accepted + self.partial

    @property
    def rate(self) -> float:
        """Share of shown suggestions taken, whole or in part (0-1)."""
        return self.taken / self.shown if self.shown else 0.0


@dataclass
class Stats:
    total: Row
    by_source: dict[str, Row]
    by_language: dict[str, Row]
    by_latency: dict[str, Row]
    first: datetime | None
    last: datetime | None
    skipped: int  # lines that were not events (damaged, or from another program)

    def groups(self) -> list[tuple[str, dict[str, Row]]]:
        return [("source", self.by_source), ("language", self.by_language), ("latency", self.by_latency)]


def log_files(path: Path) -> list[Path]:
    """The log and the file it rotated out before it, oldest first, those that exist."""
    return [p for p in (rotated(path), path) if p.is_file()]


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def read_suggestions(lines: Iterable[str], since: datetime | None = None) -> tuple[list[Suggestion], int]:
    """Fold event lines into suggestions (events before ``since`` are left out); also the
    number of lines that were not events."""
    found: dict[str, Suggestion] = {}
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            t = _parse_time(e["time"])
            event, sid = e["event"], e["id"]
            if t is None or event not in EVENTS or not isinstance(sid, str):
                raise ValueError(line)
            latency = float(e.get("latencyMs") or 0.0)
            chars = int(e.get("acceptedChars") or 0)
        except (ValueError, KeyError, TypeError, AttributeError):
            skipped += 1
            continue
        if since is not None and t < since:
            continue
        s = found.get(sid)
        if s is None:
            s = found[sid] = Suggestion(sid, str(e.get("source") or "unknown"), str(e.get("language") or "unknown"),
                                        latency, t)
        s.events.add(event)
        if event in ("accepted", "partial"):
            s.accepted_chars += max(0, chars)
    return list(found.values()), skipped


def summarize(suggestions: list[Suggestion], skipped: int = 0) -> Stats:
    total = Row()
    by_source: dict[str, Row] = {}
    by_language: dict[str, Row] = {}
    by_latency = {name: Row() for _, name in LATENCY_BUCKETS}
    for s in sorted(suggestions, key=lambda s: s.first):
        total.add(s)
        by_source.setdefault(s.source, Row()).add(s)
        by_language.setdefault(s.language, Row()).add(s)
        by_latency[s.latency_bucket].add(s)
    times = [s.first for s in suggestions]
    return Stats(total, _most_shown_first(by_source), _most_shown_first(by_language),
                 {k: v for k, v in by_latency.items() if v.shown}, min(times, default=None), max(times, default=None),
                 skipped)


def _most_shown_first(rows: dict[str, Row]) -> dict[str, Row]:
    return dict(sorted(rows.items(), key=lambda kv: -kv[1].shown))


def load(path: Path, since_days: float | None = None, now: datetime | None = None) -> Stats:
    since = (now or datetime.now(UTC)) - timedelta(days=since_days) if since_days is not None else None
    lines: list[str] = []
    for p in log_files(path):
        lines += p.read_text(encoding="utf-8", errors="replace").splitlines()
    return summarize(*read_suggestions(lines, since))


def _percent(row: Row) -> str:
    return f"{100 * row.rate:.1f} %"


def report(stats: Stats, path: Path) -> str:
    """The table ``ghostline stats`` prints."""
    t = stats.total
    span = f"{stats.first:%Y-%m-%d %H:%M} to {stats.last:%Y-%m-%d %H:%M} UTC" if stats.first and stats.last else ""
    lines = [
        f"{t.shown:,} suggestion{'s' if t.shown != 1 else ''} shown, {t.taken:,} taken ({_percent(t)}): "
        f"{t.accepted:,} whole, "
        f"{t.partial:,} in part; {t.typed_over:,} typed over; {t.accepted_chars:,} characters accepted",
        f"  from {path}" + (f", {span}" if span else "")
        + (f"; {stats.skipped} lines were not events" if stats.skipped else ""),
    ]
    width = max([len(k) for _, rows in stats.groups() for k in rows] + [12])
    for title, rows in stats.groups():
        lines += ["", f"{'by ' + title:<{width}}  {'shown':>7}  {'taken':>7}  {'rate':>7}  {'whole':>7}  {'part':>7}  "
                      f"{'typed over':>10}  {'chars accepted':>14}"]
        for key, r in rows.items():
            lines.append(f"{key:<{width}}  {r.shown:>7,}  {r.taken:>7,}  {_percent(r):>7}  {r.accepted:>7,}  "
                         f"{r.partial:>7,}  {r.typed_over:>10,}  {r.accepted_chars:>14,}")
    return "\n".join(lines)


def plot(stats: Stats, out: Path) -> None:
    """Acceptance rate (top) and accepted characters (bottom) by source, language and latency,
    as a PNG.  Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = stats.groups()
    fig, axes = plt.subplots(2, len(groups), figsize=(4.2 * len(groups), 6.4), squeeze=False)
    for col, (title, rows) in enumerate(groups):
        names = list(rows)
        rate_ax, chars_ax = axes[0][col], axes[1][col]
        bars = rate_ax.bar(names, [100 * r.rate for r in rows.values()], color="#4c72b0")
        rate_ax.bar_label(bars, labels=[f"{r.taken}/{r.shown}" for r in rows.values()], fontsize=8)
        rate_ax.set_ylim(0, 110)
        rate_ax.set_title(f"by {title}")
        bars = chars_ax.bar(names, [r.accepted_chars for r in rows.values()], color="#55a868")
        chars_ax.bar_label(bars, fontsize=8)
        chars_ax.margins(y=0.15)
        for ax in (rate_ax, chars_ax):
            ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    axes[0][0].set_ylabel("taken (% of shown)")
    axes[1][0].set_ylabel("characters accepted")
    t = stats.total
    fig.suptitle(f"ghostline: {t.taken:,} of {t.shown:,} suggestions taken ({_percent(t)}), "
                 f"{t.accepted_chars:,} characters accepted")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
