"""The team server's HTTP API, on starlette.

Routes: ``POST /v1/completions`` (OpenAI-compatible, with server-sent events for
``stream``), ``GET /v1/models``, ``GET /healthz`` (for load balancers) and ``GET /metrics``
(Prometheus).  The two ``/v1`` routes want a bearer token unless the server listens on
loopback with no tokens at all.  Every error is JSON in OpenAI's shape,
``{"error": {"message", "type", "code"}}``; a traceback goes to the log, never to the caller.

The server keeps no state between requests beyond counters (rate limits, metrics), so
replicas behind a load balancer need nothing from each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lsp_server.postprocess import extends_a_whole_name
from lsp_server.team.batcher import Batcher, QueueFull
from lsp_server.team.config import TeamServerConfig
from lsp_server.team.limits import RateLimiter
from lsp_server.team.metrics import CONTENT_TYPE, Metrics
from lsp_server.team.requests import (
    CompletionRequest,
    RequestError,
    parse_request,
    prompt_ids,
    starts_an_empty_body,
)
from lsp_server.team.tokens import TokenStore
from model.engine import BatchRequest, Completion, CompletionEngine

log = logging.getLogger(__name__)

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
                429: "rate_limit_error", 500: "server_error", 503: "server_error"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def error_body(status: int, message: str, code: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "param": param,
                      "code": code}}


def error_response(status: int, message: str, code: str, headers: dict[str, str] | None = None,
                   param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, param), status_code=status, headers=headers)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as given to ``--http``) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def finish_reason(completion: Completion) -> str:
    return "length" if completion.stop_reason == "max_tokens" else "stop"


class TeamServer:
    """What the routes share: the engine's batcher, the tokens, the limits, the metrics."""

    def __init__(self, config: TeamServerConfig, engine: CompletionEngine, store: TokenStore,
                 metrics: Metrics | None = None) -> None:
        self.config = config
        self.engine = engine
        self.store = store
        self.metrics = metrics or Metrics()
        self.limiter = RateLimiter(config.rate_limit_per_minute)
        # Open (no token asked) only on loopback while no token was ever configured: once
        # there are tokens, revoking the last one must not open the door.
        self.open_without_tokens = is_loopback(config.host) and len(store) == 0
        self.batcher: Batcher | None = None

    # -- checks, in the order a request meets them ----------------------------------------
    def caller(self, request: Request) -> str:
        """The token's name; 401 without a valid token (unless open: loopback, no tokens)."""
        self.store.refresh()
        if self.open_without_tokens:
            if len(self.store) == 0:
                return "(loopback)"
            self.open_without_tokens = False
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        record = self.store.verify(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if record is None:
            raise ApiError(401, "a valid bearer token is required (Authorization: Bearer <token>); "
                                "`ghostline tokens add NAME` makes one", "invalid_api_key",
                           {"WWW-Authenticate": 'Bearer realm="ghostline"'})
        wait = self.limiter.allow(record.name)
        if wait:
            raise ApiError(429, f"rate limit of {self.config.rate_limit_per_minute} requests per minute reached; "
                                f"retry in {wait:.1f} s", "rate_limit_exceeded",
                           {"Retry-After": str(max(1, round(wait)))})
        return record.name

    async def body(self, request: Request) -> object:
        """The JSON body, refused past ``max_body_bytes`` before it is all read."""
        limit = self.config.max_body_bytes
        too_big = ApiError(413, f"request body over {limit} bytes", "request_too_large")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise too_big
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise too_big
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the body is not valid JSON", "invalid_json") from None

    # -- routes ---------------------------------------------------------------------------
    async def completions(self, request: Request) -> Response:
        t0 = time.perf_counter()
        self.caller(request)
        try:
            parsed = parse_request(await self.body(request), self.config)
        except RequestError as exc:
            return error_response(exc.status, str(exc), exc.code, param=exc.param)
        ids = [prompt_ids(self.engine, parsed, p) for p in parsed.prompts]
        cancel = threading.Event()
        if parsed.stream:
            events: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue()
            loop = asyncio.get_running_loop()
            futures = self._submit(parsed, ids, cancel, lambda i: lambda text: loop.call_soon_threadsafe(
                events.put_nowait, (i, text)))
            return StreamingResponse(self._events(parsed, ids, futures, events, cancel, t0),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        futures = self._submit(parsed, ids, cancel)
        try:
            completions = await asyncio.gather(*futures)
            completions = await self._names_ended(parsed, ids, completions, cancel)
        finally:
            cancel.set()
        self.metrics.latency.observe(time.perf_counter() - t0)
        return JSONResponse({
            **self._envelope(),
            "choices": [{"text": c.text, "index": i, "logprobs": None, "finish_reason": finish_reason(c)}
                        for i, c in enumerate(completions)],
            "usage": {"prompt_tokens": sum(map(len, ids)), "completion_tokens": sum(c.tokens for c in completions),
                      "total_tokens": sum(map(len, ids)) + sum(c.tokens for c in completions)},
        })

    async def _names_ended(self, parsed: CompletionRequest, ids: list[list[int]], completions: list[Completion],
                           cancel: threading.Event) -> list[Completion]:
        """Each one-line answer that glues more onto a name its prompt already uses whole,
        making a name used nowhere (``class FlaskyStyle(Style`` + ``t):``), asked for again
        with a first token that continues no word, as the language server asks its own model.
        A streamed answer has been sent as it grew: it stays as it is."""
        if "\n" not in parsed.stop:
            return completions
        glued = [i for i, c in enumerate(completions)
                 if extends_a_whole_name(parsed.prompts[i], parsed.suffix or "", c.text)]
        if not glued:
            return completions
        log.info("%d answer(s) glued onto a whole name: asking again for the name's end", len(glued))
        again = replace(parsed, prompts=tuple(parsed.prompts[i] for i in glued))
        answers = await asyncio.gather(*self._submit(again, [ids[i] for i in glued], cancel, word_ended=True))
        completions = list(completions)
        for i, answer in zip(glued, answers, strict=True):
            completions[i] = answer
        return completions

    def _submit(self, parsed: CompletionRequest, ids: list[list[int]], cancel: threading.Event,
                listener: Callable[[int], Callable[[str], None]] | None = None,
                word_ended: bool = False) -> list[asyncio.Future[Completion]]:
        """Queue each prompt; ``listener(i)`` hears prompt ``i``'s text as it grows (streaming)."""
        assert self.batcher is not None, "the batcher starts with the app"
        futures = []
        try:
            for i, prompt in enumerate(ids):
                futures.append(self.batcher.submit(BatchRequest(
                    prompt, parsed.max_tokens, parsed.stop, on_text=listener(i) if listener else None,
                    cancelled=cancel.is_set, heal=self.config.token_healing,
                    indented=starts_an_empty_body(parsed, parsed.prompts[i]), word_ended=word_ended),
                    parsed.sampling))
        except QueueFull:
            cancel.set()
            for f in futures:
                f.cancel()
            raise ApiError(503, "the server is busy; retry shortly", "server_busy", {"Retry-After": "1"}) from None
        return futures

    def _envelope(self) -> dict:
        return {"id": f"cmpl-{secrets.token_hex(12)}", "object": "text_completion", "created": int(time.time()),
                "model": self.config.model_name}

    async def _events(self, parsed: CompletionRequest, ids: list[list[int]], futures: list[asyncio.Future],
                      events: asyncio.Queue, cancel: threading.Event, t0: float) -> AsyncIterator[str]:
        """Server-sent events: a chunk per piece of new text, a last chunk per choice with its
        finish_reason, then ``[DONE]``.  A caller who leaves cancels the generation."""
        envelope = self._envelope()
        sent = [""] * len(futures)

        def chunk(index: int, text: str, reason: str | None) -> str:
            choice = {"text": text, "index": index, "logprobs": None, "finish_reason": reason}
            return f"data: {json.dumps({**envelope, 'choices': [choice]})}\n\n"

        for i, future in enumerate(futures):
            future.add_done_callback(lambda _, i=i: events.put_nowait((i, None)))
        left = len(futures)
        try:
            while left:
                i, text = await events.get()
                if text is not None:
                    if text.startswith(sent[i]) and len(text) > len(sent[i]):
                        yield chunk(i, text[len(sent[i]):], None)
                        sent[i] = text
                    continue
                left -= 1
                try:
                    completion = futures[i].result()
                except Exception:  # noqa: BLE001 - told to the caller in the stream, logged by the batcher
                    yield f"data: {json.dumps(error_body(500, 'generation failed', 'server_error'))}\n\n"
                    continue
                rest = completion.text[len(sent[i]):] if completion.text.startswith(sent[i]) else ""
                sent[i] = completion.text
                yield chunk(i, rest, finish_reason(completion))
            yield "data: [DONE]\n\n"
            self.metrics.latency.observe(time.perf_counter() - t0)
        finally:
            cancel.set()  # stops generation within a token if the caller left mid-stream

    async def models(self, request: Request) -> Response:
        self.caller(request)
        return JSONResponse({"object": "list", "data": [
            {"id": self.config.model_name, "object": "model", "created": 0, "owned_by": "ghostline",
             "context_length": self.engine.max_seq_len}]})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.config.model_name, "device": self.engine.device})

    async def metrics_route(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    # -- the app --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.batcher = Batcher(self.engine, self.metrics, self.config.max_batch_size, self.config.batch_window_ms,
                               self.config.max_queue)
        self.batcher.start()
        try:
            yield
        finally:
            await self.batcher.stop()

    def app(self) -> ASGIApp:
        routes = [
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics_route, methods=["GET"]),
        ]

        async def api_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, ApiError)
            return error_response(exc.status, exc.message, exc.code, exc.headers)

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            return error_response(exc.status_code, str(exc.detail), code, dict(exc.headers or {}))

        async def server_error(request: Request, exc: Exception) -> Response:
            log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
            return error_response(500, "internal error (see the server's log)", "server_error")

        app = Starlette(routes=routes, lifespan=self.lifespan, exception_handlers={
            ApiError: api_error, HTTPException: http_error, Exception: server_error})
        return CountRequests(app, self.metrics)


class CountRequests:
    """ASGI middleware: every HTTP response counted by route and status in the metrics."""

    _ROUTES = {"/v1/completions", "/v1/models", "/healthz", "/metrics"}

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self._ROUTES else "other"  # bounded label values

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)
