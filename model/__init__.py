"""ghostline's model: config, tokenizer, export to CTranslate2 and the inference engine."""

# The one version of ghostline: pyproject.toml, the language server, its client and
# ``ghostline --version`` read it here (``model`` is the package every other one may import).
__version__ = "0.1.0"
