"""``ghostline serve --http``: the model behind an OpenAI-compatible completions API for a team.

config.py (``TeamServerConfig``), tokens.py (bearer tokens), limits.py (rate limit),
requests.py (an OpenAI request -> a prompt in the model's layout), batcher.py (concurrent
requests -> batched generation), metrics.py (Prometheus), app.py (the starlette routes),
serve.py (checks, then uvicorn) and process.py (the server in a child process, for tests and
benchmarks).  The language server imports none of it.
"""
