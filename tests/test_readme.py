"""The README's Python example runs as written, from the repository root."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs_and_prints_what_it_says():
    """The example indexes 26 documents, finds the query story's copies and the page's 13 repeats."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\n") + len("```python\n")
    code = readme[start:readme.index("```", start)]
    out = io.StringIO()
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(here)
    printed = out.getvalue()
    assert printed.startswith("26 {}")
    assert "recall-riverbend-times partial" in printed and "26 documents, 13 clusters" in printed
    assert "13 0.5 [(1, 14), (2, 15), (3, 16)]" in printed
