"""House rules of the serving path, checked in fresh interpreters."""

import socket
import subprocess
import sys
import time


def test_server_and_engine_never_import_torch():
    code = ("import sys, lsp_server.server, lsp_server.__main__, model.engine, lsp_server.client; "
            "lsp_server.server.create_server(); "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_server_listens_on_tcp():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server", "--tcp", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not listen"
                time.sleep(0.2)
        body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}'
        conn.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        conn.settimeout(30)
        reply = b""
        while b"inlineCompletionProvider" not in reply:
            chunk = conn.recv(65536)
            assert chunk, reply
            reply += chunk
        conn.close()
    finally:
        proc.kill()
        proc.wait()


def test_bad_cli_arguments_get_one_line_not_a_traceback(tmp_path):
    cases = [
        ["complete", "nofile.py:1:1"],
        ["complete", "tests/fixtures/demo.py"],
        ["complete", "tests/fixtures/demo.py:999:1"],
        ["train", "--preset", "huge", "--out", str(tmp_path)],
        ["export", str(tmp_path), str(tmp_path / "out")],
    ]
    for argv in cases:
        proc = subprocess.run([sys.executable, "-m", "training.cli", *argv],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip() and len(proc.stderr.strip().splitlines()) <= 3, proc.stderr
