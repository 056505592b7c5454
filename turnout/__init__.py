"""Turnout: a self-healing, OpenAI- and Anthropic-compatible LLM gateway."""

import sys

# httpx imports its command-line client (click, rich, pygments: ~13 MB and ~60 ms at start)
# whenever those packages are installed, and `turnout probe` needs rich. Turnout never runs
# httpx's CLI, so it stays unimported (httpx then defines a stub `main`); see
# tests/test_layout.py::test_serving_imports_no_terminal_libraries.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
