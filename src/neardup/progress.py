"""A progress line on stderr for long work: documents, documents/s, MB/s, and ETA when the size is known.

Shown only when stderr is a terminal, so pipes and logs stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Call :meth:`update` as work advances and :meth:`close` at the end."""

    def __init__(self, label: str, *, total_bytes: int | None = None, stream: TextIO | None = None,
                 enabled: bool | None = None, interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label, self.total_bytes, self.interval = label, total_bytes, interval
        self.documents = self.bytes = 0
        self._start = self._last = time.monotonic()

    def update(self, documents: int, nbytes: int) -> None:
        self.documents, self.bytes = documents, nbytes
        now = time.monotonic()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self.stream.write("\r" + self.line(now) + "\x1b[K")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._start, 1e-9)
        text = f"{self.label}: {self.documents:,} documents, {self.documents / elapsed:,.0f} docs/s"
        if self.bytes:
            text += f", {self.bytes / elapsed / 1e6:.1f} MB/s"
        if self.total_bytes and self.bytes:
            remaining = elapsed * max(self.total_bytes - self.bytes, 0) / self.bytes
            text += f", {min(self.bytes / self.total_bytes, 1.0):.0%}, ETA {_clock(remaining)}"
        return text

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
