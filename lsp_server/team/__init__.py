"""``ghostline serve --http``: the model behind an OpenAI-compatible completions API for a team.

config.py (``TeamServerConfig``), tokens.py (bearer tokens), limits.py (rate limit),
requests.py (an OpenAI request -> a prompt in the model's layout), batcher.py (concurrent
requests -> batched generation), metrics.py (Prometheus), app.py (the starlette routes) and
serve.py (checks, then uvicorn).  Nothing here is imported by the language server.
"""
