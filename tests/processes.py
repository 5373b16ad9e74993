"""Waiting for what another process did, instead of guessing how long it takes: an index's commits."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path


def generation(path: Path | str) -> int:
    """How many transactions the index at ``path`` has committed (0 before its first)."""
    database = Path(path) / "neardup.sqlite"
    if not database.exists():
        return 0
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute("select value from meta where key = 'generation'").fetchone()
    except sqlite3.OperationalError:  # created, its tables not yet committed
        return 0
    finally:
        db.close()
    return int(row[0]) if row else 0


def wait_for_commits(path: Path | str, commits: int, process: subprocess.Popen) -> None:
    """Until the writer has committed ``commits`` more transactions (or ended)."""
    start = generation(path)
    while process.poll() is None and generation(path) < start + commits:
        time.sleep(0.01)
