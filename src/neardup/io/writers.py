"""Writing results: kept records as they came (:class:`RecordSpill`), plain rows such as CLUSTERS
(:func:`write_rows`), and text or byte handles (:func:`open_output`), in the format the output
path's extension names, atomically, and never over an input.

Formats by extension: ``.jsonl``/``.ndjson`` (also ``.gz``, ``.zst``, ``.bz2``, ``.xz``; the default for
any other name and for ``-``), ``.json`` (one array), ``.csv``/``.tsv`` (compressed too),
``.parquet`` and ``.arrow``/``.feather``/``.ipc``. Each file is written to a temporary name in the
same folder and renamed into place at the end, so a failed run leaves no half-written output.
"""

from __future__ import annotations

import base64
import bz2
import contextlib
import csv
import datetime
import decimal
import gzip
import io
import json
import lzma
import math
import os
import struct
import sys
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Union, cast

import numpy as np

from neardup.document import Document
from neardup.errors import InputError
from neardup.io.reader import COMPRESSIONS, CsvLayout, optional_module

#: Output formats by suffix (after any compression suffix); other names are JSON Lines.
OUTPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
                  ".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow"}
#: Which records to write: a bool per record (numpy array or sequence), or a function of its number.
Keep = Union["np.ndarray[Any, Any]", Sequence[bool], Callable[[int], bool], None]
#: Rows of a Parquet row group written at once (bounded memory, yet not thousands of tiny groups).
_ROW_GROUP_ROWS = 65_536
_ROW_GROUP_BYTES = 64 << 20
_DICT_BATCH = 1000


# ---------------------------------------------------------------------- paths


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


# ---------------------------------------------------------------------- the spill

_FRAME = struct.Struct("<Q")


class _Frames:
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

    def cursor(self) -> _FrameCursor:
        return _FrameCursor(self.path)

    def close(self) -> None:
        self._out.close()
        with contextlib.suppress(OSError):
            os.remove(self.path)


class _FrameCursor:
    def __init__(self, path: str) -> None:
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by close()

    def take(self, count: int) -> Iterator[bytes]:
        for _ in range(count):
            (size,) = _FRAME.unpack(self._handle.read(_FRAME.size))
            yield self._handle.read(size)

    def close(self) -> None:
        self._handle.close()


class _ArrowRows:
    """A segment of the spill: Arrow rows of one schema, written as an IPC stream a batch at a time."""

    def __init__(self, folder: Path, schema: Any) -> None:
        descriptor, self.path = tempfile.mkstemp(prefix="spill-", suffix=".arrows", dir=folder)
        os.close(descriptor)
        self.layout: CsvLayout | None = None
        self.schema = schema
        self._pa = _pyarrow()
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

    def cursor(self) -> _ArrowCursor:
        return _ArrowCursor(self._pa, self.path)

    def close(self) -> None:
        self._writer.close()
        self._sink.close()
        with contextlib.suppress(OSError):
            os.remove(self.path)


class _ArrowCursor:
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


_Segment = _Frames | _ArrowRows


class RecordSpill:
    """The original record of every document a :class:`~neardup.inputs.Reader` yields, on disk.

    Record k is the k-th document the reader yielded. JSON records are kept as the bytes
    of their line, CSV rows as their raw text with the file's header and dialect, Parquet,
    Arrow and ``datasets`` rows as Arrow batches (an IPC stream per schema), plain-text
    files as ``{id, text}``. Memory holds only the run lengths (one pair per change of
    format), so the spill costs disk, not RAM. :meth:`write` then writes the kept records
    in input order, as they came. The files live in ``folder``, which the caller owns;
    :meth:`close` (or leaving a ``with`` block) removes them.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{folder}: no such folder for the record spill")
        self.id_field, self.text_field = "id", "text"
        self._segments: list[_Segment] = []
        self._runs: list[list[int]] = []  # [segment index, records] in input order
        self._count = 0
        self._json: _Frames | None = None
        self._arrow_batch: Any = None

    def bind(self, id_field: str, text_field: str) -> None:
        """The fields the reader uses (the text field is the one replace_text and drop_paragraphs change)."""
        self.id_field, self.text_field = id_field, text_field

    def __len__(self) -> int:
        return self._count

    def __enter__(self) -> RecordSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_json(self, raw: bytes) -> None:
        """One JSON record, as the bytes of its line (no line break inside)."""
        segment = self._place(lambda s: isinstance(s, _Frames) and s.layout is None,
                              lambda: _Frames(self.folder, None))
        cast(_Frames, segment).add(raw)

    def add_csv(self, layout: CsvLayout, raw: bytes) -> None:
        """One CSV row, as its raw text (line ending included) in the file's layout."""
        segment = self._place(lambda s: isinstance(s, _Frames) and s.layout == layout,
                              lambda: _Frames(self.folder, layout))
        cast(_Frames, segment).add(raw)

    def add_arrow(self, batch: Any, row: int) -> None:
        """Row ``row`` of an Arrow record batch."""
        if batch is self._arrow_batch:  # the next row of the batch just seen
            self._runs[-1][1] += 1
            self._count += 1
            segment = self._segments[self._runs[-1][0]]
        else:
            schema = batch.schema
            segment = self._place(lambda s: isinstance(s, _ArrowRows) and s.schema.equals(schema, check_metadata=True),
                                  lambda: _ArrowRows(self.folder, schema))
            self._arrow_batch = batch
        cast(_ArrowRows, segment).add(batch, row)

    def _place(self, match: Callable[[_Segment], bool], create: Callable[[], _Segment]) -> _Segment:
        """The segment for the next record (extending the current run when it matches)."""
        self._count += 1
        self._arrow_batch = None
        if self._runs and match(self._segments[self._runs[-1][0]]):
            self._runs[-1][1] += 1
            return self._segments[self._runs[-1][0]]
        index = next((i for i, s in enumerate(self._segments) if match(s)), None)
        if index is None:
            self._segments.append(create())
            index = len(self._segments) - 1
        self._runs.append([index, 1])
        return self._segments[index]

    def flush(self) -> None:
        for segment in self._segments:
            segment.flush()

    def close(self) -> None:
        """Remove the spill's files."""
        for segment in self._segments:
            segment.close()
        self._segments, self._runs, self._count = [], [], 0

    def write(self, path: str, keep: Keep = None, *, replace_text: Mapping[int, str | Sequence[str]] | None = None,
              drop_paragraphs: Mapping[int, Collection[int]] | None = None, inputs: Iterable[str] = ()) -> int:
        """Write the records whose ``keep[k]`` is true (all if None) to ``path``, in input order; returns how many.

        The format follows the extension. Records keep their form where the format allows:
        JSON lines their bytes (so types and field order), CSV rows their text under the
        same header, Arrow rows their schema. Across formats: JSON to Parquet by Arrow's
        type inference (a field whose types cannot be unified is written as text: strings
        as they are, other values as JSON),
        Arrow to JSON with JSON values (dates in ISO 8601), CSV to JSON with string values.
        ``replace_text`` gives new texts for some records; ``drop_paragraphs`` paragraph
        numbers to cut from their texts (``dedup --drop-repeats``), the rest unchanged.
        """
        family, _ = output_format(path)
        check_output(path, inputs)
        self.flush()
        kept = _Kept(self, _Selection(keep, self._count), _Edits(self.text_field, replace_text or {},
                                                                 drop_paragraphs or {}))
        if family in ("jsonl", "json"):
            return _write_json(path, kept, array=family == "json")
        if family in ("csv", "tsv"):
            return _write_csv(path, kept, "\t" if family == "tsv" else ",")
        return _write_columnar(path, kept, family)

    def _pieces(self) -> Iterator[tuple[_Segment, int, Any]]:
        """(segment, k, bytes or Arrow batch) in input order, k being the number of the first record."""
        cursors = [segment.cursor() for segment in self._segments]
        try:
            k = 0
            for index, count in self._runs:
                for item in cursors[index].take(count):
                    yield self._segments[index], k, item
                    k += 1 if isinstance(item, bytes) else item.num_rows
        finally:
            for cursor in cursors:
                cursor.close()


class _Selection:
    """Which records to write, as a bool per record."""

    def __init__(self, keep: Keep, count: int) -> None:
        if keep is None:
            self.array = np.ones(count, dtype=bool)
        elif callable(keep):
            self.array = np.fromiter((bool(keep(k)) for k in range(count)), dtype=bool, count=count)
        else:
            self.array = np.asarray(keep, dtype=bool)
            if self.array.shape != (count,):
                raise ValueError(f"keep has {len(self.array):,} entries for {count:,} records")


class _Edits:
    """New texts for some records: replaced whole, or with some paragraphs cut out."""

    def __init__(self, text_field: str, replace: Mapping[int, str | Sequence[str]],
                 drop: Mapping[int, Collection[int]]) -> None:
        self.text_field, self._replace, self._drop = text_field, replace, drop

    def __contains__(self, k: int) -> bool:
        return k in self._replace or k in self._drop

    def value(self, k: int, old: Any) -> Any:
        if k in self._replace:
            return _like(old, self._replace[k])
        return _without(old, self._drop[k])

    def frame(self, segment: _Segment, k: int, raw: bytes) -> bytes:
        if k not in self:
            return raw
        layout = segment.layout
        if layout is None:
            record = json.loads(raw)
            record[self.text_field] = self.value(k, record.get(self.text_field))
            return _dumps(record)
        text = raw.decode("utf-8")
        row = layout.parse(text)
        column = layout.header.index(self.text_field)
        row += [""] * (column + 1 - len(row))
        row[column] = self.value(k, row[column])
        return _csv_line(row, layout.delimiter, _ending(text) or layout.terminator).encode("utf-8")

    def batch(self, batch: Any, k: int, mask: np.ndarray[Any, Any]) -> Any:
        rows = [i for i in range(batch.num_rows) if mask[i] and k + i in self]
        if rows:
            pa = _pyarrow()
            index = batch.schema.get_field_index(self.text_field)
            values = batch.column(index).to_pylist()
            for i in rows:
                values[i] = self.value(k + i, values[i])
            columns = list(batch.columns)
            columns[index] = pa.array(values, type=batch.schema.field(index).type)
            batch = pa.RecordBatch.from_arrays(columns, schema=batch.schema)
        return batch if mask.all() else batch.filter(_pyarrow().array(mask))


def _like(old: Any, new: str | Sequence[str]) -> Any:
    """A replacement in the form of the field it replaces: a string, or a list of paragraphs (split at line breaks)."""
    if isinstance(old, list):
        return new.split("\n") if isinstance(new, str) else list(new)
    return new if isinstance(new, str) else "\n".join(new)


def _without(old: Any, dropped: Collection[int]) -> Any:
    """The text with the paragraphs numbered in ``dropped`` cut out, everything else as it was.

    Paragraph numbers are those of the :class:`~neardup.document.Document` the reader made:
    for a list, its non-blank items; for a string, :func:`~neardup.paragraphs.split_paragraphs`.
    """
    drop = set(dropped)
    if isinstance(old, list):
        kept, number = [], 0
        for item in old:
            blank = not (isinstance(item, str) and item.strip())
            if blank or number not in drop:
                kept.append(item)
            number += not blank
        return kept
    if not isinstance(old, str) or not drop:
        return old
    spans = Document.from_text("-", old).paragraphs
    kept = [i for i in range(len(spans)) if i not in drop]
    if not spans or len(kept) == len(spans):
        return old
    pieces = [old[:spans[0][0]]]
    for n, i in enumerate(kept):
        if n:  # between two kept paragraphs, the stronger of the breaks around the cut (a blank line wins)
            before = kept[n - 1]
            pieces.append(max(old[spans[before][1]:spans[before + 1][0]], old[spans[i - 1][1]:spans[i][0]],
                              key=_line_breaks))
        pieces.append(old[spans[i][0]:spans[i][1]])
    pieces.append(old[spans[-1][1]:])
    return "".join(pieces)


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class _Kept:
    """The records to write, with their edits applied, as pieces: one record's bytes, or an Arrow batch."""

    def __init__(self, spill: RecordSpill, selection: _Selection, edits: _Edits) -> None:
        self.spill, self.selection, self.edits = spill, selection, edits

    @property
    def segments(self) -> list[_Segment]:
        return self.spill._segments

    def pieces(self) -> Iterator[tuple[_Segment, Any]]:
        keep = self.selection.array
        for segment, k, item in self.spill._pieces():
            if isinstance(item, bytes):
                if keep[k]:
                    yield segment, self.edits.frame(segment, k, item)
                continue
            mask = keep[k:k + item.num_rows]
            if mask.any():
                yield segment, self.edits.batch(item, k, mask)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every kept record as a dict (JSON values as parsed, CSV values as strings, Arrow values as Python)."""
        for segment, item in self.pieces():
            if isinstance(item, bytes):
                yield json.loads(item) if segment.layout is None else \
                    segment.layout.record_of(segment.layout.parse(item.decode("utf-8")))
                continue
            for start in range(0, item.num_rows, _DICT_BATCH):
                yield from item.slice(start, _DICT_BATCH).to_pylist()


# ---------------------------------------------------------------------- JSON


def _write_json(path: str, kept: _Kept, *, array: bool) -> int:
    count = 0
    with open_binary_output(path) as handle:
        handle.write(b"[" if array else b"")
        for segment, item in kept.pieces():
            for line in _json_lines(segment, item):
                handle.write((b",\n" if count else b"\n") + line if array else line + b"\n")
                count += 1
        handle.write(b"\n]\n" if array else b"")
    return count


def _json_lines(segment: _Segment, item: Any) -> Iterator[bytes]:
    if isinstance(item, bytes):
        layout = segment.layout
        yield item if layout is None else _dumps(layout.record_of(layout.parse(item.decode("utf-8"))))
        return
    for start in range(0, item.num_rows, _DICT_BATCH):
        for row in item.slice(start, _DICT_BATCH).to_pylist():
            yield _dumps(_jsonable(row))


# ---------------------------------------------------------------------- CSV


def _write_csv(path: str, kept: _Kept, delimiter: str) -> int:
    layouts = {segment.layout for segment in kept.segments}
    same = len(layouts) == 1 and all(isinstance(s, _Frames) for s in kept.segments)
    layout = next(iter(layouts)) if same else None
    with open_output(path) as handle:
        if layout is not None and layout.delimiter == delimiter:
            return _write_csv_rows(handle, kept, layout)
        return _write_csv_records(handle, kept, delimiter)


def _write_csv_rows(handle: IO[str], kept: _Kept, layout: CsvLayout) -> int:
    """CSV to CSV: the header and every row as they came."""
    handle.write(_ended(layout.header_line, layout.terminator))
    count = 0
    for _, item in kept.pieces():
        handle.write(_ended(item.decode("utf-8"), layout.terminator))
        count += 1
    return count


def _write_csv_records(handle: IO[str], kept: _Kept, delimiter: str) -> int:
    """Records of other formats as CSV: every field met, in order of first appearance; values as text."""
    columns: dict[str, None] = {}
    for segment in kept.segments:
        names = segment.layout.header if segment.layout is not None else \
            segment.schema.names if isinstance(segment, _ArrowRows) else ()
        columns.update(dict.fromkeys(names))
    if any(isinstance(s, _Frames) and s.layout is None for s in kept.segments):
        for record in kept.records():
            columns.update(dict.fromkeys(record))
    writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
    if columns:
        writer.writerow(list(columns))
    count = 0
    for record in kept.records():
        writer.writerow([_cell(record.get(name)) for name in columns])
        count += 1
    return count


def _cell(value: Any) -> str:
    text = _text_of(value)
    return "" if text is None else text


def _text_of(value: Any) -> str | None:
    """A value as text, as a CSV cell holds it: strings as they are, other values as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(_jsonable(value), ensure_ascii=False)


def _csv_line(row: Sequence[str], delimiter: str, terminator: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=terminator).writerow(row)
    return buffer.getvalue()


def _ending(text: str) -> str:
    return next((e for e in ("\r\n", "\n", "\r") if text.endswith(e)), "")


def _ended(text: str, terminator: str) -> str:
    return text if _ending(text) else text + terminator


# ---------------------------------------------------------------------- Parquet and Arrow


def _write_columnar(path: str, kept: _Kept, family: str) -> int:
    what, extra = ("Parquet", "parquet") if family == "parquet" else ("Arrow", "arrow")
    pa = optional_module("pyarrow", extra, f"writing {what}", path)
    schema, as_json = _target_schema(pa, kept)
    count = 0
    with atomic_path(path) as temporary:
        sink = _TableSink(pa, family, temporary, schema)
        try:
            for batch in _batches(pa, kept, as_json):
                sink.write(_aligned(pa, batch, schema))
                count += batch.num_rows
            sink.close()
        except pa.ArrowException as err:
            sink.close()
            raise InputError(f"{path}: cannot write {what} ({err})") from None
    return count


class _TableSink:
    """Batches to a Parquet file (gathered into row groups of ~64k rows) or an Arrow IPC file."""

    def __init__(self, pa: Any, family: str, path: str, schema: Any) -> None:
        self._pa, self._schema = pa, schema
        if family == "parquet":
            self._writer = optional_module("pyarrow.parquet", "parquet", "writing Parquet", path) \
                .ParquetWriter(path, schema)
        else:
            self._writer = pa.ipc.new_file(path, schema)
        self._parquet = family == "parquet"
        self._held: list[Any] = []
        self._rows = self._bytes = 0
        self._closed = False

    def write(self, batch: Any) -> None:
        if not self._parquet:
            self._writer.write_batch(batch)
            return
        self._held.append(batch)
        self._rows += batch.num_rows
        self._bytes += batch.nbytes
        if self._rows >= _ROW_GROUP_ROWS or self._bytes >= _ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._held:
            self._writer.write_table(self._pa.Table.from_batches(self._held, schema=self._schema))
        self._held, self._rows, self._bytes = [], 0, 0

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._parquet:
                self._flush()
            self._writer.close()


def _target_schema(pa: Any, kept: _Kept) -> tuple[Any, set[str]]:
    """The schema to write, and the fields written as text because their types cannot be unified.

    Arrow inputs of one schema keep it (metadata too). Otherwise a first pass infers each
    field's type from the records and unifies them (int and float make float, null and X make X).
    """
    arrow = [s for s in kept.segments if isinstance(s, _ArrowRows)]
    if arrow and len(arrow) == len(kept.segments) and all(s.schema.equals(arrow[0].schema) for s in arrow):
        return arrow[0].schema, set()
    types: dict[str, Any] = {}
    as_json: set[str] = set()
    for segment in kept.segments:
        fields = [(f.name, f.type) for f in segment.schema] if isinstance(segment, _ArrowRows) else \
            [(name, pa.string()) for name in (segment.layout.header if segment.layout else ())]
        for name, kind in fields:
            types[name] = _unified(pa, types.get(name), kind, name, as_json)
    for batch in _batches(pa, kept, as_json):
        for item in batch.schema:
            types[item.name] = _unified(pa, types.get(item.name), item.type, item.name, as_json)
    return pa.schema([(name, pa.string() if name in as_json else kind) for name, kind in types.items()]), as_json


def _unified(pa: Any, old: Any, new: Any, name: str, as_json: set[str]) -> Any:
    if name in as_json:
        return pa.string()
    if old is None or old == new:
        return new
    try:
        merged = pa.unify_schemas([pa.schema([(name, old)]), pa.schema([(name, new)])], promote_options="permissive")
    except (pa.ArrowException, TypeError):
        as_json.add(name)
        return pa.string()
    return merged.field(0).type


def _batches(pa: Any, kept: _Kept, as_json: set[str]) -> Iterator[Any]:
    """Arrow batches of the kept records in order: Arrow pieces as they are, other records gathered."""
    held: list[dict[str, Any]] = []
    for segment, item in kept.pieces():
        if isinstance(item, bytes):
            layout = segment.layout
            held.append(json.loads(item) if layout is None else layout.record_of(layout.parse(item.decode("utf-8"))))
            if len(held) >= _DICT_BATCH:
                yield _dict_batch(pa, held, as_json)
                held = []
            continue
        if held:
            yield _dict_batch(pa, held, as_json)
            held = []
        yield _json_columns(pa, item, as_json)
    if held:
        yield _dict_batch(pa, held, as_json)


def _dict_batch(pa: Any, records: list[dict[str, Any]], as_json: set[str]) -> Any:
    names = list(dict.fromkeys(name for record in records for name in record))
    columns = []
    for name in names:
        values = [record.get(name) for record in records]
        try:
            column = None if name in as_json else pa.array(values)
        except (pa.ArrowException, OverflowError, TypeError):
            column = None
        if column is None:
            as_json.add(name)
            column = pa.array([_text_of(v) for v in values], type=pa.string())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=names)


def _json_columns(pa: Any, batch: Any, as_json: set[str]) -> Any:
    """An Arrow batch with the fields of ``as_json`` turned into text (see :func:`_text_of`)."""
    names = [name for name in batch.schema.names if name in as_json]
    if not names:
        return batch
    columns = list(batch.columns)
    for name in names:
        index = batch.schema.get_field_index(name)
        values = columns[index].to_pylist()
        columns[index] = pa.array([_text_of(v) for v in values], type=pa.string())
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _aligned(pa: Any, batch: Any, schema: Any) -> Any:
    """The batch with the schema's fields in its order: missing ones null, others cast to the unified type."""
    if batch.schema.equals(schema):
        return batch
    columns = []
    for item in schema:
        index = batch.schema.get_field_index(item.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, type=item.type))
            continue
        column = batch.column(index)
        columns.append(column if column.type == item.type else column.cast(item.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


# ---------------------------------------------------------------------- rows


def write_rows(path: str, rows: Iterable[Mapping[str, Any]], *, inputs: Iterable[str] = ()) -> int:
    """Write plain rows (CLUSTERS) in the format of the path's extension; returns how many.

    JSON Lines are written as the rows come; for the other formats the rows are first
    spooled to a temporary folder beside the output (removed after), since their schema
    or columns are known only once every row has been seen.
    """
    family, _ = output_format(path)
    check_output(path, inputs)
    if family == "jsonl":
        count = 0
        with open_binary_output(path) as handle:
            for row in rows:
                handle.write(_dumps(row) + b"\n")
                count += 1
        return count
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".neardup-rows-") as spool, RecordSpill(spool) as spill:
        for row in rows:
            spill.add_json(_dumps(row))
        return spill.write(path)


# ---------------------------------------------------------------------- values


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _jsonable(value: Any) -> Any:
    """A value JSON can hold: dates as ISO 8601, decimals as strings, bytes as base64, NaN as null."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _pyarrow() -> Any:
    """pyarrow, already imported by whoever made Arrow rows."""
    return optional_module("pyarrow", "arrow", "Arrow rows", "spill")


# ---------------------------------------------------------------------- the former KEPT writer


def write_records(path: str, documents: Iterable[Document], assignments: Mapping[str, Any], *,
                  id_field: str = "id", text_field: str = "text") -> int:
    """Write kept documents rebuilt from their fields (superseded by :meth:`RecordSpill.write`,
    which writes the records as they came; kept until the CLI moves over)."""
    count = 0
    with open_output(path) as handle:
        writer = _CsvRecords(handle) if output_format(path)[0] == "csv" else None
        for document in documents:
            record = {id_field: document.id, text_field: _text_without(document, assignments[document.id]),
                      **document.metadata}
            if writer is not None:
                writer.write(record)
            else:
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def _text_without(document: Document, assignment: Any) -> str:
    dropped = set(getattr(assignment, "dropped_paragraphs", ()) or ())
    if not dropped:
        return document.text
    kept = [document.paragraph_text(i) for i in range(len(document.paragraphs)) if i not in dropped]
    return "\n".join(kept)


class _CsvRecords:
    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.writer: csv.DictWriter[str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self.writer is None:
            self.writer = csv.DictWriter(self.handle, fieldnames=list(record), extrasaction="ignore")
            self.writer.writeheader()
        self.writer.writerow({k: v if isinstance(v, (str, int, float)) or v is None else json.dumps(v)
                              for k, v in record.items()})
