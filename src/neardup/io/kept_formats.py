"""The kept records as each output format wants them: JSON lines as their bytes, CSV rows under the
same header, Arrow and Parquet with types unified across inputs (a field whose types cannot be
unified is written as text), with texts edited where asked (replaced, or repeated paragraphs cut)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import IO, Any, Union

import numpy as np

from neardup.document import Document
from neardup.errors import InputError
from neardup.io.formats import CsvLayout, json_bytes, optional_module
from neardup.io.record_files import ArrowRows, Frames, Segment
from neardup.io.writers import atomic_path, jsonable, open_binary_output, open_output

#: Rows of a Parquet row group written at once (bounded memory, yet not thousands of tiny groups).
_ROW_GROUP_ROWS = 65_536


_ROW_GROUP_BYTES = 64 << 20


_DICT_BATCH = 1000


#: Which records to write: a bool per record (numpy array or sequence), or a function of its number.
Keep = Union["np.ndarray[Any, Any]", Sequence[bool], Callable[[int], bool], None]


class Selection:
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


class Edits:
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

    def frame(self, segment: Segment, k: int, raw: bytes) -> bytes:
        if k not in self:
            return raw
        layout = segment.layout
        if layout is None:
            record = json.loads(raw)
            record[self.text_field] = self.value(k, record.get(self.text_field))
            return json_bytes(record)
        text = raw.decode("utf-8")
        row = layout.parse(text)
        column = layout.header.index(self.text_field)
        row += [""] * (column + 1 - len(row))
        row[column] = self.value(k, row[column])
        return _csv_line(row, layout.delimiter, _ending(text) or layout.terminator).encode("utf-8")

    def batch(self, batch: Any, k: int, mask: np.ndarray[Any, Any]) -> Any:
        rows = [i for i in range(batch.num_rows) if mask[i] and k + i in self]
        if rows:
            pa = pyarrow()
            index = batch.schema.get_field_index(self.text_field)
            values = batch.column(index).to_pylist()
            for i in rows:
                values[i] = self.value(k + i, values[i])
            columns = list(batch.columns)
            columns[index] = pa.array(values, type=batch.schema.field(index).type)
            batch = pa.RecordBatch.from_arrays(columns, schema=batch.schema)
        return batch if mask.all() else batch.filter(pyarrow().array(mask))


def _like(old: Any, new: str | Sequence[str]) -> Any:
    """A replacement in the form of the field it replaces: a string, or a list of paragraphs (split at line breaks)."""
    if isinstance(old, list):
        return new.split("\n") if isinstance(new, str) else list(new)
    return new if isinstance(new, str) else "\n".join(new)


def _without(old: Any, dropped: Collection[int]) -> Any:
    """The text with the paragraphs numbered in ``dropped`` cut out, everything else as it was.

    Paragraph numbers are those of the :class:`~neardup.document.Document` the reader made:
    for a list, its non-blank items; for a string, :func:`~neardup.text.paragraphs.split_paragraphs`.
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


class Kept:
    """The records to write, with their edits applied, as pieces: one record's bytes, or an Arrow batch.
    ``pieces`` gives the spill's pieces in input order: (segment, number of the first record, bytes
    or an Arrow batch)."""

    def __init__(self, segments: list[Segment], pieces: Callable[[], Iterator[tuple[Segment, int, Any]]],
                 selection: Selection, edits: Edits) -> None:
        self.segments, self._pieces = segments, pieces
        self.selection, self.edits = selection, edits

    def pieces(self) -> Iterator[tuple[Segment, Any]]:
        keep = self.selection.array
        for segment, k, item in self._pieces():
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


def write_json(path: str, kept: Kept, *, array: bool) -> int:
    count = 0
    with open_binary_output(path) as handle:
        handle.write(b"[" if array else b"")
        for segment, item in kept.pieces():
            for line in _json_lines(segment, item):
                handle.write((b",\n" if count else b"\n") + line if array else line + b"\n")
                count += 1
        handle.write(b"\n]\n" if array else b"")
    return count


def _json_lines(segment: Segment, item: Any) -> Iterator[bytes]:
    if isinstance(item, bytes):
        layout = segment.layout
        yield item if layout is None else json_bytes(layout.record_of(layout.parse(item.decode("utf-8"))))
        return
    for start in range(0, item.num_rows, _DICT_BATCH):
        for row in item.slice(start, _DICT_BATCH).to_pylist():
            yield json_bytes(jsonable(row))


def write_csv(path: str, kept: Kept, delimiter: str) -> int:
    layouts = {segment.layout for segment in kept.segments}
    same = len(layouts) == 1 and all(isinstance(s, Frames) for s in kept.segments)
    layout = next(iter(layouts)) if same else None
    with open_output(path) as handle:
        if layout is not None and layout.delimiter == delimiter:
            return _write_csv_rows(handle, kept, layout)
        return _write_csv_records(handle, kept, delimiter)


def _write_csv_rows(handle: IO[str], kept: Kept, layout: CsvLayout) -> int:
    """CSV to CSV: the header and every row as they came."""
    handle.write(_ended(layout.header_line, layout.terminator))
    count = 0
    for _, item in kept.pieces():
        handle.write(_ended(item.decode("utf-8"), layout.terminator))
        count += 1
    return count


def _write_csv_records(handle: IO[str], kept: Kept, delimiter: str) -> int:
    """Records of other formats as CSV: every field met, in order of first appearance; values as text."""
    columns: dict[str, None] = {}
    for segment in kept.segments:
        names = segment.layout.header if segment.layout is not None else \
            segment.schema.names if isinstance(segment, ArrowRows) else ()
        columns.update(dict.fromkeys(names))
    if any(isinstance(s, Frames) and s.layout is None for s in kept.segments):
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
    return json.dumps(jsonable(value), ensure_ascii=False)


def _csv_line(row: Sequence[str], delimiter: str, terminator: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=terminator).writerow(row)
    return buffer.getvalue()


def _ending(text: str) -> str:
    return next((e for e in ("\r\n", "\n", "\r") if text.endswith(e)), "")


def _ended(text: str, terminator: str) -> str:
    return text if _ending(text) else text + terminator


def write_columnar(path: str, kept: Kept, family: str) -> int:
    what, extra = ("Parquet", "parquet") if family == "parquet" else ("Arrow", "arrow")
    pa = optional_module("pyarrow", extra, f"writing {what}", path)
    schema, as_json = _target_schema(pa, kept)
    count = 0
    with atomic_path(path) as temporary:
        sink = _TableSink(pa, family, temporary, schema)
        try:
            for batch in batches(pa, kept, as_json):
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


def _target_schema(pa: Any, kept: Kept) -> tuple[Any, set[str]]:
    """The schema to write, and the fields written as text because their types cannot be unified.

    Arrow inputs of one schema keep it (metadata too). Otherwise a first pass infers each
    field's type from the records and unifies them (int and float make float, null and X make X).
    """
    arrow = [s for s in kept.segments if isinstance(s, ArrowRows)]
    if arrow and len(arrow) == len(kept.segments) and all(s.schema.equals(arrow[0].schema) for s in arrow):
        return arrow[0].schema, set()
    types: dict[str, Any] = {}
    as_json: set[str] = set()
    for segment in kept.segments:
        fields = [(f.name, f.type) for f in segment.schema] if isinstance(segment, ArrowRows) else \
            [(name, pa.string()) for name in (segment.layout.header if segment.layout else ())]
        for name, kind in fields:
            types[name] = _unified(pa, types.get(name), kind, name, as_json)
    for batch in batches(pa, kept, as_json):
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


def batches(pa: Any, kept: Kept, as_json: set[str]) -> Iterator[Any]:
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


def pyarrow() -> Any:
    """pyarrow, already imported by whoever made Arrow rows."""
    return optional_module("pyarrow", "arrow", "Arrow rows", "spill")
