"""Bytes cut into lines in bounded memory: a line longer than the record limit is counted and
dropped while it is read, never held whole; blank lines can be counted without a Python step each."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Protocol

#: Bytes read at a time; a line or record is cut from chunks of this size.
CHUNK = 1 << 16


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return False


def read_lines(stream: Readable, limit: int, *, ends: bool = False,
               blank: bool = True) -> Iterator[tuple[int, bytes | None, int]]:
    """(number, line, size) of each physical line; the line is None when its size exceeds ``limit``.

    The size counts the line ending; ``ends`` keeps it on the line as it came. ``blank=False``
    leaves out empty lines (and lines of a lone \r) found inside a chunk — counted, never
    yielded, so a gigabyte of line breaks costs a scan, not a Python step a line.
    """
    splitter = _LineSplitter(limit, ends, blank)
    while True:
        data = stream.read(CHUNK)
        if not data:
            break
        yield from splitter.feed(data)
    yield from splitter.end()


class _LineSplitter:
    """Cuts bytes into lines, holding at most ``limit`` bytes of one: a longer line is counted and dropped.

    Lines end in \\n or \\r\\n; if the first line break of the data is a lone \\r (old Mac
    files), every \\r, \\r\\n and \\n ends a line. With ``ends`` (for CSV, as Python's own
    ``newline=''`` reading does) every one of them always ends a line and is kept on it as it came.
    """

    def __init__(self, limit: int, ends: bool, blank: bool = True) -> None:
        self.limit, self.ends, self.blank, self.number = limit, ends, blank, 0
        self._parts: list[bytes] = []
        self._size = 0
        self._dropping = False
        self._mode: bytes | None = None
        self._carry = b""

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes | None, int]]:
        if self.ends:
            yield from self._feed_universal(data)
            return
        data = self._normalised(data)
        if self.blank:
            pieces = data.split(b"\n")
            for piece in pieces[:-1]:
                yield self._line(piece, b"\n")
            self._hold(pieces[-1])
            return
        first, last = data.find(b"\n"), data.rfind(b"\n")
        if first < 0:
            self._hold(data)
            return
        yield self._line(data[:first], b"\n")   # ends the line held from the last chunk
        pos, stop = first + 1, last + 1
        while pos < stop:
            found = _BREAKS.match(data, pos, stop)   # blank lines: counted by a scan (it always matches)
            run = found.end() if found is not None else pos
            cut = data.rfind(b"\n", pos, run) + 1
            if cut > pos and (self.limit >= cut - pos or data.find(b"\r" * self.limit, pos, cut) < 0):
                self.number += data.count(b"\n", pos, cut)
                pos = cut
                continue
            end = data.find(b"\n", pos, stop)
            yield self._line(data[pos:end], b"\n")
            pos = end + 1
        self._hold(data[stop:])

    def end(self) -> Iterator[tuple[int, bytes | None, int]]:
        if self._carry:
            carry, self._carry = self._carry, b""
            yield self._line(b"", carry)
        elif self._parts or self._dropping or self._size:
            yield self._line(b"", b"")

    def _feed_universal(self, data: bytes) -> Iterator[tuple[int, bytes | None, int]]:
        data = self._uncarried(data)
        pos = 0
        for found in _BREAK.finditer(data):
            yield self._line(data[pos:found.start()], found.group())
            pos = found.end()
        self._hold(data[pos:])

    def _normalised(self, data: bytes) -> bytes:
        if self._mode is None and (b"\n" in data or b"\r" in data):
            self._mode = b"\n" if b"\n" in data else b"\r"
        if self._mode != b"\r":
            return data
        return self._uncarried(data).replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def _uncarried(self, data: bytes) -> bytes:
        """The data after a \\r held back from the last chunk, holding back its own last \\r (half a \\r\\n?)."""
        data, self._carry = self._carry + data, b""
        if data.endswith(b"\r"):
            data, self._carry = data[:-1], b"\r"
        return data

    def _line(self, tail: bytes, ending: bytes) -> tuple[int, bytes | None, int]:
        self.number += 1
        size = self._size + len(tail) + len(ending)
        line: bytes | None = None
        if not self._dropping and size <= self.limit:
            line = b"".join(self._parts) + tail if self._parts else tail
            if self.ends:
                line += ending
        self._parts, self._size, self._dropping = [], 0, False
        return self.number, line, size

    def _hold(self, tail: bytes) -> None:
        self._size += len(tail)
        if self._dropping:
            return
        if self._size > self.limit:
            self._dropping, self._parts = True, []
        elif tail:
            self._parts.append(tail)


_BREAK = re.compile(rb"\r\n|\r|\n")


#: A run of line-break characters (blank lines, and the lone \r of blank CRLF lines).
_BREAKS = re.compile(rb"[\r\n]*")


def split_lone_cr(line: bytes) -> list[bytes]:
    """A line holding records separated by lone \\r is those records (JSON never holds a raw \\r in a string)."""
    if b"\r" not in line:
        return [line]
    pieces = [piece for piece in line.split(b"\r") if piece.strip()]
    if len(pieces) > 1 and all(is_json_object(piece) for piece in pieces):
        return pieces
    return [line]
