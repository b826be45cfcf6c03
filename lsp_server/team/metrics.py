"""Prometheus metrics of the team server, in a registry of its own (``/metrics``).

A registry per app rather than the global one: tests and benchmarks build several apps in
one process, and the global registry refuses a second metric of the same name.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # RSS, CPU seconds, open files
        self.requests = Counter("ghostline_http_requests", "HTTP requests by route and status code",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("ghostline_completion_seconds", "Completion requests: arrival to last byte",
                                 buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=self.registry)
        self.prompt_tokens = Counter("ghostline_prompt_tokens", "Prompt tokens of completions run",
                                     registry=self.registry)
        self.generated_tokens = Counter("ghostline_generated_tokens", "Tokens generated",
                                        registry=self.registry)
        self.batch_size = Histogram("ghostline_batch_size", "Requests per generate_batch call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.queue_depth = Gauge("ghostline_queue_depth", "Requests waiting for a batch", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
