"""``python -m lsp_server``: the ghostline language server on stdio (or ``--tcp HOST:PORT``)."""

from __future__ import annotations

import os
import sys


def _drop_working_directory_from_path() -> None:
    """Never import from the folder the server was started in.

    Editors start the server in the user's workspace, and ``python -m`` puts that folder
    first on ``sys.path``: a workspace holding ``numpy.py`` or ``json.py`` would run its
    own code inside the server.  What we import must come from the installation.
    (``PYTHONSAFEPATH``/``-P`` does the same from 3.11 on; this covers every launcher.)
    """
    first = sys.path[0] if sys.path else None
    if first is not None and (first in ("", ".") or os.path.realpath(first) == os.path.realpath(os.getcwd())):
        del sys.path[0]  # only the entry ``-m``/``-c`` prepended; installed paths stay


_drop_working_directory_from_path()

import argparse  # noqa: E402 - imported after the path is safe
import logging  # noqa: E402
from dataclasses import replace  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lsp_server", description="ghostline language server")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    parser.add_argument("--model", help="CTranslate2 model folder (default: the shipped model)")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    host = port = None
    if args.tcp:
        host, _, port_s = args.tcp.rpartition(":")
        if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
            parser.error(f"--tcp wants HOST:PORT, got {args.tcp!r}")
        port = int(port_s)
    # stderr only: stdout carries the protocol.
    logging.basicConfig(stream=sys.stderr, level=args.log_level, format="%(levelname)s %(name)s: %(message)s")

    from threadpoolctl import threadpool_limits

    from lsp_server.server import create_server

    server = create_server()
    # numpy's BLAS would spread each similarity query's small matrix-vector product over
    # every core; on a busy laptop the threads wait for each other (15 ms instead of 1 ms
    # with the editor and a model sharing two cores).  One thread is what a query needs.
    threadpool_limits(limits=1, user_api="blas")
    if args.model:  # the model when the client's modelPath is empty; the client's setting wins
        server.settings = replace(server.settings, launch_model_path=args.model)
    if host is not None:
        server.start_tcp(host, port)
    else:
        server.start_io()


if __name__ == "__main__":
    main()
