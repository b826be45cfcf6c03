"""Concurrent requests -> batched generation through CTranslate2.

Requests wait in a queue; the batching task takes the first, then whatever else arrives
within ``batch_window_ms`` (or until ``max_batch_size``), and hands the lot to
``CompletionEngine.complete_batch`` in one worker thread.  While a batch generates, the next
one gathers, so under load batches fill by themselves and the window only matters when
it is quiet (where it costs at most a few milliseconds).

A batch is split where one ``generate_batch`` would be slower than two:
- requests that sample differently (temperature, top_p are per call in CTranslate2);
- prompts of very different lengths: CTranslate2 feeds the prompt tokens past the
  shortest prompt one step at a time, so a gap longer than the answers costs more steps
  than a second batch does.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lsp_server.team.metrics import Metrics
from model.engine import BatchRequest, Completion, CompletionEngine, Sampling

log = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """More requests wait than the server takes; the caller should come back shortly."""


@dataclass
class Job:
    request: BatchRequest
    sampling: Sampling
    future: asyncio.Future[Completion] = field(repr=False)


def plan_batches(jobs: list[Job], max_batch_size: int) -> list[list[Job]]:
    """Split ``jobs`` into the generate_batch calls that run them (see the module doc)."""
    by_sampling: dict[Sampling, list[Job]] = {}
    for job in jobs:
        by_sampling.setdefault(job.sampling, []).append(job)
    batches: list[list[Job]] = []
    for group in by_sampling.values():
        group.sort(key=lambda j: len(j.request.ids))
        batch: list[Job] = []
        for job in group:
            if batch:
                gap = len(job.request.ids) - len(batch[0].request.ids)
                longest_answer = max(j.request.max_tokens for j in (*batch, job))
                if len(batch) >= max_batch_size or gap > longest_answer:
                    batches.append(batch)
                    batch = []
            batch.append(job)
        batches.append(batch)
    return batches


class Batcher:
    def __init__(self, engine: CompletionEngine, metrics: Metrics, max_batch_size: int = 32,
                 batch_window_ms: float = 5.0, max_queue: int = 256) -> None:
        self.engine = engine
        self.metrics = metrics
        self.max_batch_size = max_batch_size
        self.window = batch_window_ms / 1000
        self.max_queue = max_queue
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        # One thread: generations run one at a time (each already uses every core it is given).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghostline-batch")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ghostline-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.cancel()
        self._executor.shutdown(wait=True)

    def submit(self, request: BatchRequest, sampling: Sampling) -> asyncio.Future[Completion]:
        """Queue one prompt; the future resolves to its completion."""
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull(f"{self._queue.qsize()} requests are waiting")
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Job(request, sampling, future))
        self.metrics.queue_depth.set(self._queue.qsize())
        return future

    async def _gather(self) -> list[Job]:
        """The next batch: the first job, then more until full or the window closes."""
        jobs = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window
        while len(jobs) < self.max_batch_size:
            if not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0 or self.max_batch_size == 1:
                break
            try:
                jobs.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                break
        self.metrics.queue_depth.set(self._queue.qsize())
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [j for j in await self._gather() if not j.future.done()]  # done: the caller left
            for batch in plan_batches(jobs, self.max_batch_size):
                self.metrics.batch_size.observe(len(batch))
                try:
                    results = await loop.run_in_executor(
                        self._executor, self.engine.complete_batch, [j.request for j in batch], batch[0].sampling)
                except Exception as exc:  # noqa: BLE001 - the batch's requests fail, the server goes on
                    log.exception("generation failed for a batch of %d", len(batch))
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                for job, completion in zip(batch, results, strict=True):
                    self.metrics.generated_tokens.inc(completion.tokens)
                    self.metrics.prompt_tokens.inc(len(job.request.ids))
                    if not job.future.done():
                        job.future.set_result(completion)
