"""Read documents from JSON Lines, JSON, CSV/TSV, Parquet, Arrow and plain text — files, folders,
Hugging Face ``save_to_disk`` folders and stdin — compressed or not, in bounded memory.

Every bad record becomes a :class:`~neardup.errors.RecordError` naming the file, the
line (for JSON arrays, Parquet and Arrow: the record's position, from 1) and the
reason. In strict mode the first one is raised; otherwise it is handed to
``on_skip`` and counted, and reading goes on: nothing is dropped without a word.
A file in no format neardup reads (a PDF, a zip, bytes that are not UTF-8 text) is
an :class:`~neardup.errors.InputError` naming it, not a skipped document.

Memory stays bounded whatever the input, stdin included: lines and JSON records are
cut from chunks, and one longer than ``max_record_bytes`` is skipped while it is
read, never held whole; a plain-text document is read up to that limit; columnar
files are read batch by batch. The format comes from the file name (``x.jsonl.zst``,
``x.csv.gz``), checked against the first bytes; stdin and names without a known
suffix are recognised from their first bytes alone.

With a :class:`~neardup.io.kept.RecordSpill`, the reader also keeps the original
record of every document it yields (the k-th document is record k of the spill),
so that ``dedup`` can write the kept records as they came, from stdin too."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from neardup.document import Document
from neardup.errors import InputError, RecordError
from neardup.io.checks import encodable, reason_key, record_problem, text_problem
from neardup.io.columnar import Oversized, ipc_batches, parquet_pieces, row_bytes, runs
from neardup.io.formats import (
    BOM,
    CsvLayout,
    detect_format,
    expand_source,
    file_head,
    file_size,
    format_suffix,
    json_bytes,
    open_binary,
    optional_module,
    short_error,
    stream_compression,
)
from neardup.io.kept import RecordSpill
from neardup.io.lines import Readable, read_lines, split_lone_cr
from neardup.io.streams import (
    READ_ERRORS,
    SURROGATE,
    TOO_LONG,
    CsvFeed,
    JsonScanner,
    Malformed,
    Stream,
    csv_layout,
    decompressed,
    first_line_is_json,
    first_significant,
    one_line,
    read_up_to,
    sniff_format,
)

#: A single record (JSON line or text file) larger than this is skipped.
DEFAULT_MAX_RECORD_BYTES = 64 << 20


#: A document with more paragraphs than this is skipped (its signatures would need
#: 512 bytes a paragraph at 128 permutations).
DEFAULT_MAX_PARAGRAPHS = 100_000


_T = TypeVar("_T")


@dataclass
class ReadStats:
    """Counts of what the readers did, for the summary line and the progress line.

    ``bytes`` counts the records' own bytes; ``source_bytes`` the bytes of the input
    files consumed so far (compressed bytes for .gz/.zst), which :func:`total_input_bytes`
    totals, so that their ratio is the share of the input read.
    """

    read: int = 0
    bytes: int = 0
    source_bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    #: Fields of records skipped for a missing id or text field: what the records do have.
    fields_seen: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        if not skipped:
            return f"read {self.read:,} documents"
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in self.skipped.most_common())
        return f"read {self.read:,} documents, skipped {skipped:,} ({reasons})"


@dataclass(frozen=True)
class RawRecord:
    """A JSON Lines record read but not parsed yet: where it is, and its bytes."""

    source: str
    number: int
    raw: bytes


@dataclass
class Reader:
    """Options shared by every input of one command."""

    id_field: str = "id"
    text_field: str = "text"
    strict: bool = False
    unique_ids: bool = False
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_paragraphs: int = DEFAULT_MAX_PARAGRAPHS
    on_skip: Callable[[RecordError], None] | None = None
    stats: ReadStats = field(default_factory=ReadStats)
    stdin: IO[bytes] | None = None
    #: Where the original record of every yielded document goes (``dedup --out``).
    spill: RecordSpill | None = None
    _first_seen: dict[str, str] = field(default_factory=dict)
    _defer: bool = False

    def __post_init__(self) -> None:
        if self.spill is not None:
            self.spill.bind(self.id_field, self.text_field)

    def documents(self, sources: Iterable[str]) -> Iterator[Document]:
        """Documents of every source in order; folders are walked in sorted order."""
        return self._items(sources, defer=False)  # never a RawRecord without defer

    def items(self, sources: Iterable[str]) -> Iterator[Document | RawRecord]:
        """Like :meth:`documents`, but a JSON Lines record comes unparsed, as a :class:`RawRecord`,
        so that another process can parse it (:meth:`parse_raw`): its line was read, limited and
        counted here; it is admitted — counted, checked for a repeated id, spilled — by
        :meth:`admit_raw` once parsed."""
        return self._items(sources, defer=True)

    def _items(self, sources: Iterable[str], defer: bool) -> Iterator[Any]:
        self._defer = defer
        for source in sources:
            for path in expand_source(source):
                start = self.stats.source_bytes
                yield from self._read_source(path)
                if path != "-":  # the whole file counts as read, also when a limit cut it short
                    self.stats.source_bytes = start + file_size(path)

    # ------------------------------------------------------------------ dispatch

    def _read_source(self, source: str) -> Iterator[Document | RawRecord]:
        if source == "-":
            yield from self._read_stream(source, self.stdin or sys.stdin.buffer, None, None)
            return
        family, compression = detect_format(source, file_head(source))
        if family in ("parquet", "arrow"):
            yield from self._columnar_file(source, family)
            return
        with open_binary(source) as raw:
            yield from self._read_stream(source, raw, family, compression)

    def _read_stream(self, source: str, raw: Readable, family: str | None,
                     compression: str | None) -> Iterator[Document | RawRecord]:
        """Decompress, recognise the format if the name did not tell it, and read."""
        stream = Stream(raw, self._consumed)
        if source == "-":
            compression = stream_compression(source, stream.peek(512))
        try:
            content = Stream(decompressed(stream, compression, source)) if compression else stream
            family = family or sniff_format(source, content)
            readers = {"jsonl": self._jsonl, "json": self._json, "csv": self._csv, "text": self._text,
                       "arrow": self._arrow_stream}
            yield from readers[family](source, content)
        except READ_ERRORS as err:
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {short_error(err)}"))

    def _consumed(self, data: bytes) -> None:
        self.stats.source_bytes += len(data)

    # ------------------------------------------------------------------ JSON Lines and JSON

    def _jsonl(self, source: str, content: Stream) -> Iterator[Document | RawRecord]:
        """One record a line; lines end in \\n, \\r\\n or (in a file that uses them) a lone \\r."""
        for number, line, size in read_lines(content, self.max_record_bytes, blank=False):
            if line is None:
                self._skip(self._too_large(source, number, size))
                continue
            if number == 1:
                line = line.removeprefix(BOM)
            if not line.strip():
                continue
            for raw in split_lone_cr(line.rstrip(b"\r")):
                self.stats.bytes += len(raw)
                if self._defer:
                    yield RawRecord(source, number, raw)
                    continue
                document = self._admit(source, number, self._parse_record, raw)
                if document is not None:
                    if self.spill is not None:
                        self.spill.add_json(raw)
                    yield document

    def _json(self, source: str, content: Stream) -> Iterator[Document | RawRecord]:
        """A .json file: an array of records (streamed), one object, or JSON Lines under a .json name."""
        first = first_significant(content)
        if first == b"[":
            yield from self._json_values(source, content, array=True)
        elif first == b"{" and first_line_is_json(content, self.max_record_bytes):
            yield from self._jsonl(source, content)
        elif first == b"{":
            yield from self._json_values(source, content, array=False)
        elif first:
            self._skip(RecordError(source, None, f"expected a JSON array of records or an object, "
                                                 f"found {first.decode('latin-1')!r}"))

    def _json_values(self, source: str, content: Stream, *, array: bool) -> Iterator[Document]:
        scanner = JsonScanner(content, self.max_record_bytes, array=array)
        try:
            for number, text, size in scanner:
                if text is None:
                    self._skip(self._too_large(source, number, size))
                    continue
                self.stats.bytes += size
                document = self._admit(source, number, self._parse_element, text)
                if document is not None:
                    if self.spill is not None:
                        self.spill.add_json(one_line(text))
                    yield document
        except Malformed as err:
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {err}"))

    def _parse_element(self, source: str, number: int | None, text: str) -> Document:
        return self._parse_record(source, number, text.encode("utf-8", "surrogateescape"))

    def _parse_record(self, source: str, number: int | None, raw: bytes) -> Document:
        if len(raw) > self.max_record_bytes:
            raise self._too_large(source, number, len(raw))
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise RecordError(source, number, f"invalid UTF-8 at byte {err.start}") from None
        except (ValueError, RecursionError) as err:  # JSONDecodeError, and integers too long to parse
            raise RecordError(source, number, f"not valid JSON ({short_error(err)})") from None
        if not isinstance(record, dict):
            raise RecordError(source, number, f"expected a JSON object, got {type(record).__name__}")
        # A JSON string holds control characters only as escapes: without "\u" or "\b" there are none.
        document = self._document_of(source, number, record, controls=b"\\u" in raw or b"\\b" in raw)
        if _SURROGATE_ESCAPE.search(raw) and not encodable(json.dumps(record, ensure_ascii=False)):
            raise RecordError(source, number, "a field holds a lone surrogate escape (not valid Unicode)")
        return document

    # ------------------------------------------------------------------ CSV

    def _csv(self, source: str, content: Stream) -> Iterator[Document]:
        """CSV (or TSV) with a header row naming the id and text columns; other columns are metadata.

        Lines are decoded one by one, so a bad byte costs only its own row.
        """
        delimiter = "\t" if format_suffix(source) == ".tsv" else ","
        csv.field_size_limit(max(self.max_record_bytes, 1))
        feed = CsvFeed(content, self.max_record_bytes)
        layout: CsvLayout | None = None
        try:
            for row in csv.reader(feed, delimiter=delimiter):
                number, raw, size = feed.take()
                if not row:
                    continue
                if layout is None:
                    layout = csv_layout(source, row, raw, delimiter)
                    continue
                self.stats.bytes += size
                document = self._admit(source, number, self._csv_document, (layout, row, raw, size))
                if document is not None:
                    if self.spill is not None:
                        self.spill.add_csv(layout, raw.encode("utf-8"))
                    yield document
        except (csv.Error, Malformed) as err:
            self._skip(RecordError(source, feed.first_line or None, f"cannot read the rest of the file: "
                                                                    f"{short_error(err)}"))

    def _csv_document(self, source: str, number: int | None,
                      payload: tuple[CsvLayout, list[str], str, int]) -> Document:
        layout, row, raw, size = payload
        if TOO_LONG in raw or size > self.max_record_bytes:
            raise self._too_large(source, number, size)
        bad = SURROGATE.search(raw)
        if bad is not None:
            offset = len(raw[:bad.start()].encode("utf-8", "surrogateescape"))
            raise RecordError(source, number, f"invalid UTF-8 at byte {offset} of the row")
        if len(row) > len(layout.header):
            raise RecordError(source, number, f"more fields than the header ({len(row)} > {len(layout.header)})")
        return self._document_of(source, number, layout.record_of(row))

    # ------------------------------------------------------------------ Parquet and Arrow

    def _columnar_file(self, source: str, family: str) -> Iterator[Document]:
        """Rows of a Parquet or Arrow IPC file, by size (see :mod:`neardup.io.columnar`)."""
        what, extra = ("Parquet", "parquet") if family == "parquet" else ("Arrow", "arrow")
        pa = optional_module("pyarrow", extra, f"reading {what}", source)
        start, size, number = self.stats.source_bytes, file_size(source), 0
        try:
            pieces = parquet_pieces(source, self.max_record_bytes) if family == "parquet" \
                else ipc_batches(pa, source)
            for piece, done, release in pieces:
                if isinstance(piece, Oversized):
                    number += piece.rows
                    self._skip(self._too_large(source, number, piece.size))
                else:
                    yield from self._batch_rows(source, piece, number, release)
                    number += piece.num_rows
                self.stats.source_bytes = start + int(size * done)
        except FileNotFoundError:
            raise InputError(f"{source}: no such file") from None
        except (OSError, ValueError, pa.ArrowException) as err:  # ArrowInvalid is a ValueError
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {short_error(err)}"))

    def _arrow_stream(self, source: str, content: Stream) -> Iterator[Document]:
        """An Arrow IPC stream on stdin (or under a name without a known suffix)."""
        pa = optional_module("pyarrow", "arrow", "reading Arrow", source)
        number = 0
        try:
            for batch in pa.ipc.open_stream(content):
                yield from self._batch_rows(source, batch, number)
                number += batch.num_rows
        except (ValueError, pa.ArrowException) as err:
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {short_error(err)}"))

    def _batch_rows(self, source: str, batch: Any, number: int,
                    release: Callable[[], None] | None = None) -> Iterator[Document]:
        """The documents of a record batch, a run of rows at a time (``release`` after each: the
        pages of a mapped file let go); a row over the record limit is skipped from its size in
        the batch, never turned into Python."""
        sizes = row_bytes(batch)
        for start, stop, oversized in runs(sizes, self.max_record_bytes):
            if oversized:
                self._skip(self._too_large(source, number + stop, int(sizes[start])))
                continue
            part = batch.slice(start, stop - start)
            self.stats.bytes += int(sizes[start:stop].sum())
            records = part.to_pylist()
            if release is not None:
                release()
            for row, record in enumerate(records):
                document = self._admit(source, number + start + row + 1, self._row_document, record)
                if document is not None:
                    if self.spill is not None:
                        self.spill.add_arrow(part, row)
                    yield document

    def _row_document(self, source: str, number: int | None, record: dict[str, Any]) -> Document:
        size = _text_bytes(record.get(self.text_field), self.max_record_bytes)
        if size > self.max_record_bytes:
            raise self._too_large(source, number, size)
        return self._document_of(source, number, record)

    # ------------------------------------------------------------------ plain text

    def _text(self, source: str, content: Stream) -> Iterator[Document]:
        """The whole stream is one document whose id is the path; only max_record_bytes + 1 bytes are read."""
        data = read_up_to(content, self.max_record_bytes + 1)
        self.stats.bytes += len(data)
        document = self._admit(source, None, self._text_document, data)
        if document is not None:
            if self.spill is not None:
                self.spill.add_json(json_bytes({self.id_field: document.id, self.text_field: document.text}))
            yield document

    def _text_document(self, source: str, number: int | None, data: bytes) -> Document:
        if len(data) > self.max_record_bytes:
            raise RecordError(source, None, f"file exceeds the limit of {self.max_record_bytes} bytes")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise RecordError(source, None, f"invalid UTF-8 at byte {err.start}") from None
        _check_text(source, None, text)
        return Document.from_text(source, text)

    # ------------------------------------------------------------------ records

    def _document_of(self, source: str, number: int | None, record: dict[str, Any],
                     controls: bool = True) -> Document:
        if self.id_field not in record or self.text_field not in record:
            self.stats.fields_seen.update(str(key) for key in list(record)[:50])
        problem = record_problem(record, self.id_field, self.text_field, controls)
        if problem is not None:
            raise RecordError(source, number, problem)
        id, text = record[self.id_field], record[self.text_field]
        metadata = {k: v for k, v in record.items() if k not in (self.id_field, self.text_field)}
        if isinstance(text, list):
            return Document.from_paragraphs(str(id), text, metadata)
        return Document.from_text(str(id), text, metadata)

    def _admit(self, source: str, number: int | None, parse: Callable[[str, int | None, _T], Document],
               payload: _T) -> Document | None:
        """The parsed, checked and counted document, or None when it was skipped (and counted)."""
        try:
            return self._accept(source, number, parse(source, number, payload))
        except RecordError as problem:
            self._skip(problem)
            return None

    def _accept(self, source: str, number: int | None, document: Document) -> Document:
        if len(document.paragraphs) > self.max_paragraphs:
            raise RecordError(source, number, f"{len(document.paragraphs)} paragraphs exceed the limit of "
                                              f"{self.max_paragraphs}")
        if self.unique_ids:
            self._claim(document.id, source, number)
        self.stats.read += 1
        return document

    def problem_of_line(self, raw: bytes) -> str | None:
        """Why this JSON line is no document, by the rule this reader applies (None: it is one);
        the Spark engine asks it of every line it reads."""
        try:
            document = self._parse_record("", None, raw)
        except RecordError as problem:
            return problem.reason
        if len(document.paragraphs) > self.max_paragraphs:
            return f"{len(document.paragraphs)} paragraphs exceed the limit of {self.max_paragraphs}"
        return None

    def parse_raw(self, record: RawRecord) -> Document:
        """Parse and check a deferred record (in any process): raises RecordError when bad.
        Counts nothing and spills nothing: :meth:`admit_raw` does that where the reading runs."""
        document = self._parse_record(record.source, record.number, record.raw)
        if len(document.paragraphs) > self.max_paragraphs:
            raise RecordError(record.source, record.number, f"{len(document.paragraphs)} paragraphs exceed the "
                                                            f"limit of {self.max_paragraphs}")
        return document

    def admit_raw(self, record: RawRecord, id: str | None, problem: tuple[str, int | None, str] | None) -> bool:
        """Admit a deferred record parsed elsewhere (``id``), or count its ``problem``: the same
        counting, repeated-id check and spilling as :meth:`documents` does. True if admitted."""
        if problem is not None:
            self._skip(RecordError(*problem))
            return False
        if self.unique_ids:
            try:
                self._claim(str(id), record.source, record.number)
            except RecordError as duplicate:
                self._skip(duplicate)
                return False
        self.stats.read += 1
        if self.spill is not None:
            self.spill.add_json(record.raw)
        return True

    def _claim(self, id: str, source: str, number: int | None) -> None:
        """Take ``id`` for the record at ``source:number``, or a RecordError naming where it was
        taken (the same file read twice repeats every id of it)."""
        first = self._first_seen.get(id)
        if first is not None:
            raise RecordError(source, number, f"duplicate id {id!r} (first at {first})")
        self._first_seen[id] = f"{source}:{number}" if number is not None else source

    def claim_ids(self, other: Reader | Iterable[str], where: str = "the reference") -> None:
        """Ids another reader admitted (or these ids, found ``where``) count as seen here too: a
        reference corpus read first."""
        seen = other._first_seen.items() if isinstance(other, Reader) else ((id, where) for id in other)
        for id, first in seen:
            self._first_seen.setdefault(id, first)

    def _too_large(self, source: str, number: int | None, size: int) -> RecordError:
        return RecordError(source, number, f"record of {size} bytes exceeds the limit of "
                                           f"{self.max_record_bytes} bytes")

    def _skip(self, problem: RecordError) -> None:
        if self.strict:
            raise problem
        self.stats.skipped[reason_key(problem.reason)] += 1
        if self.on_skip is not None:
            self.on_skip(problem)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _text_bytes(value: Any, limit: int) -> int:
    """UTF-8 size of a text field, measured exactly only when it could exceed ``limit``."""
    texts = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
        if isinstance(value, list) else []
    chars = sum(len(t) for t in texts)
    return chars if chars * 4 <= limit else sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)


def _check_text(source: str, number: int | None, text: str, controls: bool = True) -> None:
    """Refuse empty and binary texts; ``controls=False``: the caller knows there are no control characters."""
    problem = text_problem(text, controls=controls)
    if problem is not None:
        raise RecordError(source, number, problem)
