"""None"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import lzma
import re
import zlib
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, cast

from neardup.errors import InputError

if TYPE_CHECKING:
    pass
from neardup.io.formats import (
    BOM,
    READ_FORMATS,
    CsvLayout,
    format_signature,
    json_bytes,
    optional_module,
    refused_format,
)
from neardup.io.lines import CHUNK, Readable, read_lines

#: Bytes looked at to recognise a format (stdin, names without a known suffix): enough for
#: every signature, and little enough that a slow producer on stdin is not waited for.
_SNIFF = 512


#: Errors of a compressed or damaged stream: the rest of that file cannot be read.
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


def sniff_format(source: str, content: Stream) -> str:
    """The format of stdin, or of a file without a known suffix, from its (decompressed) first bytes."""
    head = content.peek(_SNIFF)
    kind, name = format_signature(head)
    if kind == "refused":
        raise refused_format(source, name)
    if kind == "arrow-stream":
        return "arrow"
    if kind is not None:
        raise InputError(f"{source}: a {name} inside a stream or a compressed file; neardup reads it only "
                         f"from a file of its own")
    first = first_significant(content)
    if first == b"{":
        return "jsonl"
    if first == b"[" and _opens_records(content):
        return "json"
    if not _is_text(head):
        raise InputError(f"{source}: not UTF-8 text, nor a format neardup reads (it reads {READ_FORMATS})")
    return "text"


def first_significant(content: Stream) -> bytes:
    """The first byte that is not a byte-order mark or white space (b'' for none), without consuming it."""
    return _significant(content, 0)


def _opens_records(content: Stream) -> bool:
    """Does '[' open an array of records ('[{' or '[]'), rather than a text such as '[Update] ...'?"""
    return _significant(content, 1) in (b"{", b"]")


def _significant(content: Stream, index: int) -> bytes:
    """The ``index``-th byte that is not a byte-order mark or white space, peeking further only through white space."""
    size = _SNIFF
    while True:
        head = content.peek(size)
        rest = head.removeprefix(BOM).lstrip()
        for _ in range(index):
            rest = rest[1:].lstrip()
        if rest or len(head) < size or size >= (1 << 20):
            return rest[:1]
        size *= 4


def first_line_is_json(content: Stream, limit: int) -> bool:
    """Is the first line of a .json file a whole JSON value (JSON Lines), rather than the start of one object?"""
    size = min(CHUNK, limit + 1)
    while True:
        head = content.peek(size)
        end = head.find(b"\n")
        if end >= 0 or len(head) < size or size > limit:
            break
        size = min(size * 4, limit + 1)
    line = head[:end] if end >= 0 else head
    try:
        json.loads(line.removeprefix(BOM))
    except (ValueError, RecursionError):
        return False
    return True


def _is_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes (a character cut at the end of the sample is fine)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.reason == "unexpected end of data" and err.start >= len(head) - 3
    return True


class Stream(io.RawIOBase):
    """A readable stream over ``inner`` that can peek ahead and reports every byte it reads from it.

    Peeked bytes are replayed by later reads, so a format can be recognised from the
    first bytes of stdin without reading stdin whole.
    """

    def __init__(self, inner: Readable, on_read: Callable[[bytes], None] | None = None) -> None:
        super().__init__()
        self._inner, self._on_read, self._head = inner, on_read, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        """``size`` bytes, fewer only at the end (as a buffered file reads: pyarrow takes less for the end)."""
        if size < 0:
            data, self._head = self._head + self._pull(-1), b""
            return data
        if len(self._head) >= size:
            data, self._head = self._head[:size], self._head[size:]
            return data
        data, self._head = self._gather(size), b""
        return data

    def readinto(self, buffer: Any, /) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)

    def peek(self, size: int) -> bytes:
        """At least ``size`` bytes ahead (fewer at the end), left to be read."""
        self._head = self._gather(size)
        return self._head[:size]

    def _gather(self, size: int) -> bytes:
        """The bytes held ahead and more pulled, ``size`` of them at least (fewer at the end)."""
        parts, have = [self._head], len(self._head)
        while have < size:
            data = self._pull(size - have)
            if not data:
                break
            parts.append(data)
            have += len(data)
        return b"".join(parts)

    def _pull(self, size: int) -> bytes:
        data = self._inner.read(size) if size >= 0 else self._inner.read()
        if data and self._on_read is not None:
            self._on_read(data)
        return data or b""


def read_up_to(stream: Readable, limit: int) -> bytes:
    parts, have = [], 0
    while have < limit:
        data = stream.read(min(CHUNK, limit - have))
        if not data:
            break
        parts.append(data)
        have += len(data)
    return b"".join(parts)


def decompressed(stream: Stream, compression: str | None, source: str) -> Readable:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if compression == "bz2":
        return bz2.BZ2File(stream)
    if compression == "xz":
        return lzma.LZMAFile(cast(IO[bytes], stream))  # any readable object will do
    return _ZstdReader(stream, optional_module("zstandard", "zstd", "reading .zst files", source))


class _ZstdReader(io.RawIOBase):
    """zstd decompression across frames that reports a cut stream (python-zstandard's reader stops quietly)."""

    def __init__(self, stream: Stream, zstandard: Any) -> None:
        super().__init__()
        self._frames = _ZstdFrames()
        tap = Stream(stream, self._frames.feed)
        self._reader = zstandard.ZstdDecompressor().stream_reader(tap, read_across_frames=True, closefd=False)
        self._error: type[Exception] = zstandard.ZstdError

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._reader.read(size)
        except self._error as err:
            raise OSError(f"zstd: {err}") from None
        if not data and not self._frames.complete():
            raise EOFError("zstd data cut short (its last frame is incomplete)")
        return data

    def readinto(self, buffer: Any, /) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class _ZstdFrames:
    """Follows the frames and blocks of zstd data as it passes (RFC 8878), to tell a whole stream from a cut one."""

    def __init__(self) -> None:
        self._state, self._need, self._got, self._skip, self._checksum = "magic", 4, b"", 0, False

    def complete(self) -> bool:
        return self._state == "magic" and not self._got and not self._skip

    def feed(self, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            if self._skip:
                step = min(self._skip, len(data) - pos)
                self._skip -= step
                pos += step
                continue
            step = min(self._need - len(self._got), len(data) - pos)
            self._got += data[pos:pos + step]
            pos += step
            if len(self._got) == self._need:
                got, self._got = self._got, b""
                self._step(got)

    def _expect(self, state: str, need: int) -> None:
        self._state, self._need = state, need

    def _step(self, got: bytes) -> None:
        if self._state == "magic":
            skippable = 0x50 <= got[0] <= 0x5F and got[1:] == b"\x2a\x4d\x18"
            self._expect(*(("descriptor", 1) if got == _ZSTD_MAGIC else ("skippable", 4) if skippable
                           else ("bad", 1)))
        elif self._state == "descriptor":
            descriptor = got[0]
            single = descriptor >> 5 & 1
            content_size = (0, 2, 4, 8)[descriptor >> 6] or single
            self._checksum = bool(descriptor >> 2 & 1)
            rest = (1 - single) + (0, 1, 2, 4)[descriptor & 3] + content_size
            self._expect(*(("header", rest) if rest else ("block", 3)))
        elif self._state == "header":
            self._expect("block", 3)
        elif self._state == "block":
            value = int.from_bytes(got, "little")
            self._skip = 1 if (value >> 1 & 3) == 1 else value >> 3  # an RLE block holds one byte
            last = value & 1
            self._expect(*(("block", 3) if not last else ("checksum", 4) if self._checksum else ("magic", 4)))
        elif self._state == "skippable":
            self._skip = int.from_bytes(got, "little")
            self._expect("magic", 4)
        elif self._state == "checksum":
            self._expect("magic", 4)


#: Stands for a line over the limit in the text fed to :mod:`csv`; decoding with
#: surrogateescape makes only U+DC80..U+DCFF, never this.
TOO_LONG = "\ud800"


SURROGATE = re.compile("[\ud800-\udfff]")


class CsvFeed:
    """Lines for :mod:`csv`, each decoded alone (a bad byte spoils only its row), and the raw text of the row.

    A line over the limit is fed as a marker (the row is then skipped as too large); a
    row still growing past four times the limit over many lines (an unclosed quote)
    stops the file, so memory stays bounded.
    """

    def __init__(self, stream: Readable, limit: int) -> None:
        self._lines = read_lines(stream, limit, ends=True)
        self._limit = limit
        self._row: list[str] = []
        self.first_line = 0
        self._size = self._held = 0

    def __iter__(self) -> CsvFeed:
        return self

    def __next__(self) -> str:
        number, line, size = next(self._lines)
        if not self._row:
            self.first_line = number
        self._size += size
        self._held += size if line is not None else 0
        if self._held > 4 * self._limit:
            raise Malformed(f"the row from line {self.first_line} runs over {self._held} bytes "
                             f"(an unclosed quote?)")
        text = TOO_LONG + "\n" if line is None else line.decode("utf-8", "surrogateescape")
        self._row.append(text)
        return text

    def take(self) -> tuple[int, str, int]:
        """(first line, raw text, size) of the row csv just returned."""
        raw, size = "".join(self._row), self._size
        self._row, self._size, self._held = [], 0, 0
        return self.first_line, raw, size


def csv_layout(source: str, row: list[str], raw: str, delimiter: str) -> CsvLayout:
    if SURROGATE.search(raw):
        raise Malformed("the header row is not valid UTF-8 (or too long)")
    header = [row[0].removeprefix("\ufeff"), *row[1:]]
    return CsvLayout(tuple(header), delimiter, raw.removeprefix("\ufeff"))


class Malformed(Exception):
    """The structure of a file is broken: the rest of it cannot be read."""


_NOT_SPACE = re.compile(r"[^ \t\n\r]")


_TOKEN = re.compile(r'["\[\]{}]')


#: The rest of a JSON string up to its closing quote (or a backslash ending the text), escapes
#: and all, in one C-level match (Friedl's unrolled loop).
_STRING_RUN = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)


_SCALAR_STOP = re.compile(r"[,\]\s]")


class JsonScanner:
    """The elements of a JSON array (or a run of JSON values), cut from the text without parsing it.

    Yields (number, text, size); the text is None when the element is longer than
    ``limit`` characters, in which case it was counted, not held. Brackets and strings
    are followed across chunks by :class:`_Scan`, so memory stays near one element.
    """

    def __init__(self, stream: Readable, limit: int, *, array: bool) -> None:
        self._stream, self._limit, self._array = stream, limit, array
        self._decode = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode
        self._piece, self._pos, self._eof = "", 0, False

    def __iter__(self) -> Iterator[tuple[int, str | None, int]]:
        if self._next_char() == "\ufeff":
            self._pos += 1
        if self._array:
            self._next_char()
            self._pos += 1  # the '[' the caller saw
        number = 0
        while True:
            char = self._next_char()
            if self._array and char == "]" and number == 0:
                self._pos += 1
                break
            if not char:
                if self._array:
                    raise Malformed(f"the array ends without ']' after record {number}")
                return
            number += 1
            yield (number, *self._element(number))
            if self._array and self._after_element(number):
                break
        if self._next_char():
            raise Malformed("data after the end of the JSON array")

    def _after_element(self, number: int) -> bool:
        """Consume the ',' or ']' after an element; True at the end of the array."""
        char = self._next_char()
        if char not in (",", "]"):
            raise Malformed(f"expected ',' or ']' after record {number}, found {char!r}" if char
                             else f"the array ends without ']' after record {number}")
        self._pos += 1
        return char == "]"

    def _more(self) -> bool:
        while not self._eof:
            data = self._stream.read(CHUNK)
            self._eof = not data
            self._piece, self._pos = self._decode(data, final=self._eof), 0
            if self._piece:
                return True
        self._piece, self._pos = "", 0
        return False

    def _next_char(self) -> str:
        while True:
            found = _NOT_SPACE.search(self._piece, self._pos)
            if found:
                self._pos = found.start()
                return found.group()
            if not self._more():
                return ""

    def _element(self, number: int) -> tuple[str | None, int]:
        scan = _Scan(scalar=self._piece[self._pos] not in '{["')
        parts: list[str] = []
        size = 0
        while True:
            start = self._pos
            end = scan.advance(self._piece, start)
            stop = len(self._piece) if end < 0 else end
            size += stop - start
            if size <= self._limit:
                parts.append(self._piece[start:stop])
            else:
                parts.clear()
            self._pos = stop
            if end >= 0:
                break
            if not self._more():
                if scan.scalar:
                    break
                raise Malformed(f"record {number} is not closed at the end of the file")
        return ("".join(parts) if size <= self._limit else None), size


class _Scan:
    """Where one JSON value ends, followed across pieces of text: bracket depth, in a string, after a backslash."""

    def __init__(self, *, scalar: bool) -> None:
        self.scalar, self.depth, self.in_string, self.escape, self.started = scalar, 0, False, False, False

    def advance(self, text: str, i: int) -> int:
        """Index just past the value's end in ``text`` (from ``i``), or -1 if it goes on."""
        if self.scalar:
            stop = _SCALAR_STOP.search(text, i if self.started else i + 1)
            self.started = True
            return stop.start() if stop else -1
        if self.escape:
            i, self.escape = i + 1, False
        while True:
            if self.in_string:
                run = _STRING_RUN.match(text, i)
                i = run.end() if run else i
                if i == len(text):
                    return -1
                if text[i] == "\\":  # the run stops at a backslash only when it ends the piece
                    self.escape = True
                    return -1
                i, self.in_string = i + 1, False
                if self.depth == 0:
                    return i
                continue
            found = _TOKEN.search(text, i)
            if found is None:
                return -1
            i = found.end()
            if found.group() == '"':
                self.in_string = True
            elif found.group() in "[{":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth <= 0:
                    return i


def one_line(text: str) -> bytes:
    """An element's bytes for the spill: as they came, or re-serialised if they span lines."""
    raw = text.encode("utf-8")
    return raw if b"\n" not in raw and b"\r" not in raw else json_bytes(json.loads(raw))
