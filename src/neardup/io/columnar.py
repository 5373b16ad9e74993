"""Parquet and Arrow read by size, not by row count: no more than a bounded number of bytes of
records is turned into Python at once, and a record over the limit is skipped without being turned
into Python — nor, where the file says its size, decoded.

What it costs (``limit`` = the reader's ``max_record_bytes``, ``budget`` = :data:`ROWS_BYTES`):

* **Arrow IPC files and streams on disk, uncompressed** (Hugging Face shards among them): mapped,
  not read; a record's size comes from the column offsets alone, so what is held is at most
  ``budget`` + one record ≤ ``limit`` of Python objects.
* **Parquet**: a row group is decoded a few rows at a time — as many as its sizes in the file's
  metadata say fit in ``budget`` — so a batch holds about ``budget``; a row group of one record
  over the limit is skipped from the metadata, undecoded. A record over the limit among others
  is decoded (its page is) but never turned into Python: about twice its size, once.
* **Compressed Arrow IPC** (LZ4/ZSTD buffers) and Arrow on stdin: a record batch is decompressed
  whole before anything can be known of its rows — the writer's batch size bounds the memory,
  not neardup. Written with ``pyarrow`` defaults these batches hold at most 64K rows.
"""

from __future__ import annotations

import importlib
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Bytes of records turned into Python objects at a time (a record larger than this, but under the
#: record limit, is converted alone).
ROWS_BYTES = 32 << 20

#: Rows turned into Python objects at a time, at most.
ROWS_AT_ONCE = 1000

#: Bytes of page headers, lengths and levels a Parquet column chunk may hold beyond its values.
_PARQUET_OVERHEAD = 64 << 10


@dataclass(frozen=True)
class Oversized:
    """``rows`` records skipped from the file's metadata alone: their size is at least ``size``."""

    rows: int
    size: int


def parquet_pieces(source: str, limit: int) -> Iterator[tuple[Any, float, Callable[[], None]]]:
    """Record batches (or :class:`Oversized`) of a Parquet file, each holding about
    :data:`ROWS_BYTES` of values, with the share of the file's rows read so far."""
    parquet = importlib.import_module("pyarrow.parquet")
    handle = parquet.ParquetFile(source)
    try:
        metadata = handle.metadata
        total, done = max(metadata.num_rows, 1), 0
        for group in range(metadata.num_row_groups):
            info = metadata.row_group(group)
            rows, size = info.num_rows, sum(info.column(c).total_uncompressed_size for c in range(info.num_columns))
            if rows == 0:
                continue
            if rows == 1 and size > limit + _PARQUET_OVERHEAD:
                done += 1
                yield Oversized(1, size - _PARQUET_OVERHEAD), done / total, _nothing
                continue
            step = int(max(1, min(ROWS_AT_ONCE, ROWS_BYTES * rows // max(size, 1))))
            for batch in handle.iter_batches(batch_size=step, row_groups=[group], use_threads=False):
                done += batch.num_rows
                yield batch, done / total, _nothing
    finally:
        handle.close()


def ipc_batches(pa: Any, source: str) -> Iterator[tuple[Any, float, Callable[[], None]]]:
    """Batches of an Arrow IPC file or stream on disk (``datasets`` shards are streams), mapped
    rather than read, with the share of the file read so far and a function that lets go of the
    file's pages read so far (mapped pages count toward the process's memory until let go)."""
    with open(source, "rb") as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):   # not a regular file (a pipe), or empty: read it
            yield from _read_batches(pa, source)
            return
    # The mapping is closed when the last batch read from it is gone (a spill may still hold one).

    def release() -> None:
        mapped.madvise(mmap.MADV_DONTNEED)   # a read-only file mapping: pages come back on use

    data = pa.py_buffer(mapped)
    size = max(len(mapped), 1)
    if mapped[:6] == b"ARROW1":
        reader = pa.ipc.open_file(pa.BufferReader(data))
        count = max(reader.num_record_batches, 1)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i), (i + 1) / count, release
    else:
        stream = pa.BufferReader(data)
        for batch in pa.ipc.open_stream(stream):
            yield batch, stream.tell() / size, release


def _read_batches(pa: Any, source: str) -> Iterator[tuple[Any, float, Callable[[], None]]]:
    with pa.OSFile(source) as handle:
        is_file = handle.read(6) == b"ARROW1"
        handle.seek(0)
        batches = pa.ipc.open_file(handle) if is_file else pa.ipc.open_stream(handle)
        for batch in (batches.get_batch(i) for i in range(batches.num_record_batches)) if is_file else batches:
            yield batch, 0.0, _nothing


def _nothing() -> None:
    return None


def row_bytes(batch: Any) -> np.ndarray:
    """Each row's bytes of strings and binaries (in every column, lists of them included), read from
    the columns' offsets: the values themselves are not touched."""
    pa = importlib.import_module("pyarrow")
    compute = importlib.import_module("pyarrow.compute")
    sizes = np.zeros(batch.num_rows, dtype=np.int64)
    for column in batch.columns:
        kind = column.type
        if _is_bytes(pa, kind):
            sizes += compute.binary_length(column).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        elif (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and _is_bytes(pa, kind.value_type):
            values = column.flatten()
            if len(values):
                lengths = compute.binary_length(values).fill_null(0).to_numpy(zero_copy_only=False)
                parents = compute.list_parent_indices(column).to_numpy(zero_copy_only=False)
                sizes += np.bincount(parents, weights=lengths, minlength=batch.num_rows).astype(np.int64)
    return sizes


def _is_bytes(pa: Any, kind: Any) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
                or pa.types.is_large_binary(kind))


def runs(sizes: np.ndarray, limit: int) -> Iterator[tuple[int, int, bool]]:
    """(start, stop, oversized) runs of rows: rows under ``limit`` together, at most
    :data:`ROWS_AT_ONCE` and about :data:`ROWS_BYTES` a run; a row over ``limit`` alone, flagged."""
    over = np.flatnonzero(sizes > limit)
    ends = np.cumsum(sizes)
    start, n = 0, len(sizes)
    for stop_at in [*over.tolist(), n]:
        while start < stop_at:
            before = ends[start - 1] if start else 0
            stop = int(np.searchsorted(ends, before + ROWS_BYTES, side="right"))
            stop = min(max(stop, start + 1), start + ROWS_AT_ONCE, stop_at)
            yield start, stop, False
            start = stop
        if stop_at < n:
            yield stop_at, stop_at + 1, True
            start = stop_at + 1


__all__ = ["ROWS_AT_ONCE", "ROWS_BYTES", "Oversized", "ipc_batches", "parquet_pieces", "row_bytes", "runs"]
