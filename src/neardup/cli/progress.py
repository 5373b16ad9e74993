"""A progress line on stderr for long work: items done, rates, share done and ETA.

The share done comes from bytes when the size of the input is known (the input files'
bytes, compressed bytes for .gz/.zst, so the ETA holds for them too), or from a count
of items for a later phase (comparing N documents). Shown only when stderr is a
terminal, so pipes and logs stay clean, unless forced (``--verbose``: then one plain
line every few seconds) or silenced (``--quiet``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

#: No ETA before this share of the work or this many seconds: the first frames of a run
#: (start-up, a first slow batch) say little about its speed.
_ETA_AFTER_SHARE = 0.03
_ETA_AFTER_SECONDS = 1.0
_SHORT_UNITS = {"documents": "docs"}


class Progress:
    """Call :meth:`update` as work advances and :meth:`close` at the end.

    ``total_bytes`` makes the share done bytes / total_bytes; otherwise ``total`` makes it
    items / total. The ETA is ``elapsed × left / done``.
    """

    def __init__(self, label: str, *, total_bytes: int | None = None, total: int | None = None,
                 unit: str = "documents", stream: TextIO | None = None, enabled: bool | None = None,
                 interval: float | None = None) -> None:
        self.stream = stream or sys.stderr
        terminal = _is_terminal(self.stream)
        self.enabled = terminal if enabled is None else enabled
        self._redraw = terminal  # a terminal line is redrawn in place; a log gets whole lines
        self.interval = (0.2 if terminal else 5.0) if interval is None else interval
        self.label, self.unit, self.total_bytes, self.total = label, unit, total_bytes, total
        self.done = self.bytes = 0
        self._start = self._last = time.monotonic()
        self._closed = False

    @property
    def documents(self) -> int:
        """Items done (the name of the documents-only progress line this replaces)."""
        return self.done

    def update(self, done: int, nbytes: int | None = None) -> None:
        """``done`` items so far, ``nbytes`` bytes of input read so far (if known)."""
        self.done = done
        if nbytes is not None:
            self.bytes = nbytes
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._show(self.line(now))

    def share(self) -> float | None:
        """The share of the work done, from bytes if their total is known, else from items."""
        if self.total_bytes:
            return min(self.bytes / self.total_bytes, 1.0)
        if self.total:
            return min(self.done / self.total, 1.0)
        return None

    def line(self, now: float | None = None, *, final: bool = False) -> str:
        """'indexing: 12,345 documents, 3,086 docs/s, 45.6 MB/s, 45 %, ETA 0:00:12'."""
        elapsed = max((time.monotonic() if now is None else now) - self._start, 1e-9)
        of = f" of {self.total:,}" if self.total and not self.total_bytes else ""
        parts = [f"{self.label}: {self.done:,}{of} {self.unit}",
                 f"{self.done / elapsed:,.0f} {_SHORT_UNITS.get(self.unit, self.unit)}/s"]
        if self.bytes:
            parts.append(f"{self.bytes / elapsed / 1e6:,.1f} MB/s")
        share = self.share()
        if share is not None:
            parts.append(f"{math.floor(share * 100):,} %")
        if final:
            parts.append(f"in {_clock(elapsed)}")
        elif share and (share >= _ETA_AFTER_SHARE or elapsed >= _ETA_AFTER_SECONDS):
            parts.append(f"ETA {_clock(elapsed * (1 - share) / share)}")
        return ", ".join(parts)

    def close(self) -> None:
        """The final line (with the time taken), once."""
        if self.enabled and not self._closed:
            self._show(self.line(final=True), end=True)
        self._closed = True

    def _show(self, text: str, *, end: bool = False) -> None:
        if self._redraw:
            self.stream.write("\r" + text + "\x1b[K" + ("\n" if end else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def switch(*, quiet: bool = False, verbose: bool = False) -> bool | None:
    """The ``enabled`` argument for ``--quiet``/``--verbose``: off, forced on, or None (on for a terminal)."""
    return False if quiet else True if verbose else None


def track(items: Iterable[T], progress: Progress, nbytes: Callable[[], int] | None = None) -> Iterator[T]:
    """The items, updating ``progress`` with their count and ``nbytes()`` (e.g. bytes of input read)."""
    for count, item in enumerate(items, 1):
        progress.update(count, nbytes() if nbytes is not None else None)
        yield item


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:,}:{minutes:02d}:{secs:02d}"
