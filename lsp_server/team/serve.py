"""``ghostline serve --http HOST:PORT``: check what can be checked, load the model, run uvicorn.

Everything that would make the server useless or unsafe stops it before it listens, with
one line: an unreadable tokens file, a model that does not load, and a non-loopback
address with no tokens (anyone who can reach the port would use the model).
"""

from __future__ import annotations

import logging
from pathlib import Path

from lsp_server.team.app import TeamServer, is_loopback
from lsp_server.team.config import TeamServerConfig
from lsp_server.team.tokens import TokenStore, TokenStoreError

log = logging.getLogger("lsp_server.team")


class ServeError(RuntimeError):
    """The server cannot start; the message is one line for the user."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port)."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def build_server(config: TeamServerConfig) -> TeamServer:
    """The app's pieces, or a ``ServeError`` saying why it must not start."""
    from lsp_server.settings import default_model_path
    from model.engine import CompletionEngine, ModelLoadError

    try:
        store = TokenStore(config.tokens_file)
    except TokenStoreError as exc:
        raise ServeError(str(exc)) from None
    if len(store) == 0 and not is_loopback(config.host):
        raise ServeError(f"refusing to listen on {config.host}:{config.port} without tokens: anyone who reaches it "
                         f"could use the model; add one with `ghostline tokens add NAME` (tokens file: "
                         f"{config.tokens_file}), or listen on 127.0.0.1")
    model_dir = Path(config.model_dir or default_model_path())
    try:
        engine = CompletionEngine(model_dir, device=config.device, cpu_threads=config.cpu_threads)
    except ModelLoadError as exc:
        raise ServeError(str(exc)) from None
    return TeamServer(config, engine, store)


def serve(config: TeamServerConfig) -> None:
    import uvicorn

    server = build_server(config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    auth = (f"{len(server.store)} tokens from {config.tokens_file}" if len(server.store)
            else "no tokens: open to local callers only")
    log.info("serving %s (%s, %s) on http://%s:%d/v1; %s; batches of up to %d",
             server.engine.model_dir, server.engine.device, server.engine.compute_type, config.host, config.port,
             auth, config.max_batch_size)
    try:
        uvicorn.run(server.app(), host=config.host, port=config.port, log_level="info", access_log=False,
                    server_header=False, timeout_graceful_shutdown=10)
    finally:
        server.engine.close()
