"""Where results go: output formats by name, atomic files (written to a temporary name beside the
target and renamed into place, so a failed run leaves no half-written output), never over an input,
and values made fit for JSON."""

from __future__ import annotations

import base64
import bz2
import contextlib
import datetime
import decimal
import gzip
import io
import lzma
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, cast

from neardup.errors import InputError
from neardup.io.formats import COMPRESSIONS, optional_module

#: Output formats by suffix (after any compression suffix); other names are JSON Lines.
OUTPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
                  ".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow"}


def output_format(path: str) -> tuple[str, str | None]:
    """(format, compression) of an output path: ('jsonl', 'gzip') for kept.jsonl.gz."""
    name = os.path.basename(path).lower()
    compression = next((c for suffix, c in COMPRESSIONS.items() if name.endswith(suffix)), None)
    if compression is not None:
        name = name[:name.rfind(".")]
    family = OUTPUT_FORMATS.get(name[name.rfind("."):] if "." in name else "", "jsonl")
    if family in ("parquet", "arrow") and compression is not None:
        raise InputError(f"{path}: {family.capitalize()} compresses its own columns; drop the "
                         f"{os.path.splitext(path)[1]} suffix")
    return family, compression


def check_output(path: str, inputs: Iterable[str] = ()) -> None:
    """Refuse, before any work, to write to a folder, into a missing folder, over an input or inside an input folder."""
    if path == "-":
        return
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder; give a file name such as kept.jsonl")
    target = os.path.realpath(path)
    if not os.path.isdir(os.path.dirname(target)):
        raise InputError(f"{path}: cannot write (no folder {os.path.dirname(path) or '.'})")
    for source in inputs:
        if source == "-" or not os.path.exists(source):
            continue
        if os.path.isdir(source):
            if target.startswith(os.path.join(os.path.realpath(source), "")):
                raise InputError(f"{path}: inside the input folder {source}; write it elsewhere "
                                 f"(it would be read as an input the next time)")
        elif target == os.path.realpath(source) or _same_file(path, source):
            raise InputError(f"{path}: is also an input ({source}); write it elsewhere")


def check_outputs(paths: Sequence[str], inputs: Iterable[str] = ()) -> None:
    """:func:`check_output` for each path, and no file given twice (``--out X --clusters X``)."""
    sources = list(inputs)
    seen: set[str] = set()
    for path in paths:
        check_output(path, sources)
        key = path if path == "-" else os.path.realpath(path)
        if key in seen:
            raise InputError(f"{path}: given twice as an output")
        seen.add(key)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A temporary file beside ``path``, renamed to it if the block succeeds, removed otherwise.
    The temporary is created here, exclusively and not through a link, so the block writes a
    file this process made, never one planted under that name (that is an error)."""
    temporary = f"{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666))
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.remove(temporary)


def _byte_writer(temporary: str, compression: str | None, path: str) -> IO[bytes]:
    try:
        if compression == "gzip":
            return cast(IO[bytes], gzip.open(temporary, "wb"))
        if compression == "bz2":
            return cast(IO[bytes], bz2.open(temporary, "wb"))
        if compression == "xz":
            return cast(IO[bytes], lzma.open(temporary, "wb"))
        if compression == "zstd":
            zstandard = optional_module("zstandard", "zstd", "writing .zst files", path)
            return cast(IO[bytes], zstandard.ZstdCompressor().stream_writer(open(temporary, "wb"), closefd=True))
        return open(temporary, "wb")
    except OSError as err:
        raise InputError(f"{path}: cannot write ({err.strerror or err})") from None


@contextlib.contextmanager
def open_binary_output(path: str, *, inputs: Iterable[str] = ()) -> Iterator[IO[bytes]]:
    """A byte handle writing to ``path`` (compressed as its suffix says), atomically; '-' is stdout."""
    if path == "-":
        yield sys.stdout.buffer
        return
    _, compression = output_format(path)
    check_output(path, inputs)
    with atomic_path(path) as temporary:
        handle = _byte_writer(temporary, compression, path)
        try:
            yield handle
        finally:
            handle.close()


@contextlib.contextmanager
def open_output(path: str, *, inputs: Iterable[str] = ()) -> Iterator[IO[str]]:
    """A UTF-8 text handle writing to ``path`` (compressed as its suffix says), atomically; '-' is stdout."""
    if path == "-":
        yield sys.stdout
        return
    with open_binary_output(path, inputs=inputs) as raw:
        handle = io.TextIOWrapper(cast(Any, raw), encoding="utf-8", newline="")
        try:
            yield handle
        finally:
            handle.detach()  # flushes; the byte handle is closed (and renamed) by open_binary_output


def jsonable(value: Any) -> Any:
    """A value JSON can hold: dates as ISO 8601, decimals as strings, bytes as base64, NaN as null."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return str(value)
