"""Small measurements the benchmark scripts share."""

from __future__ import annotations

import resource


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (the nearest rank at or below; nan when empty)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports it in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
