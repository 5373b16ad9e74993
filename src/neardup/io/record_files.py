"""The files a record spill keeps records in: length-prefixed bytes (JSON lines, raw CSV rows of one
layout) or Arrow IPC streams (rows of one schema), each read back in order by a cursor."""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neardup.io.formats import CsvLayout, optional_module

_FRAME = struct.Struct("<Q")


class Frames:
    """A segment of the spill: records as length-prefixed bytes (JSON lines, or raw CSV rows of one layout)."""

    def __init__(self, folder: Path, layout: CsvLayout | None) -> None:
        descriptor, self.path = tempfile.mkstemp(prefix="spill-", suffix=".frames", dir=folder)
        self.layout = layout
        self._out = os.fdopen(descriptor, "wb")

    def add(self, raw: bytes) -> None:
        self._out.write(_FRAME.pack(len(raw)))
        self._out.write(raw)

    def flush(self) -> None:
        self._out.flush()

    def cursor(self) -> FrameCursor:
        return FrameCursor(self.path)

    def close(self) -> None:
        self._out.close()
        with contextlib.suppress(OSError):
            os.remove(self.path)


class FrameCursor:
    """Reads a :class:`Frames` file's records back, in order."""

    def __init__(self, path: str) -> None:
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by close()

    def take(self, count: int) -> Iterator[bytes]:
        for _ in range(count):
            (size,) = _FRAME.unpack(self._handle.read(_FRAME.size))
            yield self._handle.read(size)

    def close(self) -> None:
        self._handle.close()


class ArrowRows:
    """A segment of the spill: Arrow rows of one schema, written as an IPC stream a batch at a time."""

    def __init__(self, folder: Path, schema: Any) -> None:
        descriptor, self.path = tempfile.mkstemp(prefix="spill-", suffix=".arrows", dir=folder)
        os.close(descriptor)
        self.layout: CsvLayout | None = None
        self.schema = schema
        self._pa = optional_module("pyarrow", "arrow", "Arrow rows", "spill")
        self._sink = self._pa.OSFile(self.path, "wb")
        self._writer = self._pa.ipc.new_stream(self._sink, schema)
        self._batch: Any = None
        self._rows: list[int] = []

    def add(self, batch: Any, row: int) -> None:
        if batch is not self._batch:
            self.flush()
            self._batch = batch
        self._rows.append(row)

    def flush(self) -> None:
        """Write the rows kept from the current batch (a slice when they run on, as they mostly do)."""
        rows = self._rows
        if rows:
            contiguous = rows[-1] - rows[0] == len(rows) - 1
            part = self._batch.slice(rows[0], len(rows)) if contiguous else self._batch.take(self._pa.array(rows))
            self._writer.write_batch(part)
        self._batch, self._rows = None, []

    def cursor(self) -> ArrowCursor:
        return ArrowCursor(self._pa, self.path)

    def close(self) -> None:
        self._writer.close()
        self._sink.close()
        with contextlib.suppress(OSError):
            os.remove(self.path)


class ArrowCursor:
    """Reads an :class:`ArrowRows` file's rows back, in order, as slices of its batches."""

    def __init__(self, pa: Any, path: str) -> None:
        self._file = pa.OSFile(path)
        self._batches = iter(pa.ipc.open_stream(self._file))
        self._left: Any = None

    def take(self, count: int) -> Iterator[Any]:
        while count > 0:
            if self._left is None or self._left.num_rows == 0:
                self._left = next(self._batches)
            part = self._left.slice(0, count)
            self._left = self._left.slice(part.num_rows)
            count -= part.num_rows
            yield part

    def close(self) -> None:
        self._file.close()


Segment = Frames | ArrowRows
