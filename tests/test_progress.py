"""The progress line: shown on terminals, silent in pipes."""

from __future__ import annotations

import io

from neardup.progress import Progress


def test_progress_line_shows_rates_and_eta_when_enabled():
    """An enabled progress line shows documents, documents/s, MB/s and an ETA for a known size."""
    stream = io.StringIO()
    progress = Progress("indexing", total_bytes=2_000_000, stream=stream, enabled=True, interval=0.0)
    progress.update(10, 1_000_000)
    progress.close()
    text = stream.getvalue()
    assert "indexing: 10 documents" in text and "docs/s" in text and "MB/s" in text
    assert "50%" in text and "ETA" in text and text.endswith("\n")


def test_progress_is_silent_when_not_a_terminal():
    """In a pipe (not a TTY) nothing is written."""
    stream = io.StringIO()
    progress = Progress("indexing", stream=stream)
    progress.update(5, 100)
    progress.close()
    assert stream.getvalue() == ""
