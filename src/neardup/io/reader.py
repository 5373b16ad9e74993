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

With a :class:`~neardup.outputs.RecordSpill`, the reader also keeps the original
record of every document it yields (the k-th document is record k of the spill),
so that ``dedup`` can write the kept records as they came, from stdin too.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import importlib
import io
import json
import lzma
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar, cast

from neardup.document import Document
from neardup.errors import InputError, RecordError

if TYPE_CHECKING:
    from neardup.io.writers import RecordSpill

#: Text formats by suffix; any of them may be compressed (``x.jsonl.gz``, ``x.csv.zst``).
TEXT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv",
                ".txt": "text", ".text": "text", ".md": "text"}
#: Columnar formats by suffix, read through pyarrow; they compress their own columns.
COLUMNAR_FORMATS = {".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow"}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2", ".xz": "xz"}
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".jsonl.zst", ".ndjson.zst")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".csv.zst", ".tsv.zst")
PARQUET_SUFFIXES = (".parquet",)
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
TEXT_SUFFIXES = (".txt", ".text", ".md")
#: What neardup reads, for the messages that refuse something else.
READ_FORMATS = ("JSON Lines, JSON arrays of records, CSV/TSV, Parquet, Arrow IPC/Feather, Hugging Face "
                "dataset folders and UTF-8 text; the text formats also compressed (.gz, .zst, .bz2, .xz)")
FOLDER_FORMATS = (".jsonl, .ndjson, .json, .csv, .tsv, .txt, .text, .md (also .gz, .zst, .bz2, .xz), "
                  ".parquet, .arrow, .feather or .ipc files, nor a Hugging Face dataset")
#: A single record (JSON line or text file) larger than this is skipped.
DEFAULT_MAX_RECORD_BYTES = 64 << 20
_BOM = b"\xef\xbb\xbf"
#: A document with more paragraphs than this is skipped (its signatures would need
#: 512 bytes a paragraph at 128 permutations).
DEFAULT_MAX_PARAGRAPHS = 100_000
#: Share of control characters above which a text is taken for binary junk.
_BINARY_SHARE = 0.05
#: Bytes read at a time; a line or record is cut from chunks of this size.
_CHUNK = 1 << 16
#: Bytes looked at to recognise a format (stdin, names without a known suffix): enough for
#: every signature, and little enough that a slow producer on stdin is not waited for.
_SNIFF = 512
#: Rows converted to Python at a time from an Arrow batch.
_BATCH_ROWS = 1000
#: Errors of a compressed or damaged stream: the rest of that file cannot be read.
_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)

_T = TypeVar("_T")


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


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


@dataclass(frozen=True)
class CsvLayout:
    """The columns and dialect of a CSV input, so that its rows can be written back as they came."""

    header: tuple[str, ...]
    delimiter: str
    #: The header row as read (byte-order mark removed), line ending included.
    header_line: str

    @property
    def terminator(self) -> str:
        """The line ending of the header row, used for rows written anew."""
        for ending in ("\r\n", "\n", "\r"):
            if self.header_line.endswith(ending):
                return ending
        return "\n"

    def parse(self, raw: str) -> list[str]:
        """The fields of one raw row."""
        return next(csv.reader([raw], delimiter=self.delimiter), [])

    def record_of(self, row: Sequence[str]) -> dict[str, str | None]:
        """The row as a record; columns missing from a short row are None, as :class:`csv.DictReader` has it."""
        record: dict[str, str | None] = dict(zip(self.header, row))
        for name in self.header[len(row):]:
            record.setdefault(name, None)
        return record


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
            for path in _expand(source):
                start = self.stats.source_bytes
                yield from self._read_source(path)
                if path != "-":  # the whole file counts as read, also when a limit cut it short
                    self.stats.source_bytes = start + _size(path)

    # ------------------------------------------------------------------ dispatch

    def _read_source(self, source: str) -> Iterator[Document | RawRecord]:
        if source == "-":
            yield from self._read_stream(source, self.stdin or sys.stdin.buffer, None, None)
            return
        family, compression = _detect(source, _head(source))
        if family in ("parquet", "arrow"):
            yield from self._columnar_file(source, family)
            return
        with _open_binary(source) as raw:
            yield from self._read_stream(source, raw, family, compression)

    def _read_stream(self, source: str, raw: _Readable, family: str | None,
                     compression: str | None) -> Iterator[Document | RawRecord]:
        """Decompress, recognise the format if the name did not tell it, and read."""
        stream = _Stream(raw, self._consumed)
        if source == "-":
            compression = _stream_compression(source, stream.peek(512))
        try:
            content = _Stream(_decompressed(stream, compression, source)) if compression else stream
            family = family or _sniff(source, content)
            readers = {"jsonl": self._jsonl, "json": self._json, "csv": self._csv, "text": self._text,
                       "arrow": self._arrow_stream}
            yield from readers[family](source, content)
        except _READ_ERRORS as err:
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {_short(err)}"))

    def _consumed(self, data: bytes) -> None:
        self.stats.source_bytes += len(data)

    # ------------------------------------------------------------------ JSON Lines and JSON

    def _jsonl(self, source: str, content: _Stream) -> Iterator[Document | RawRecord]:
        """One record a line; lines end in \\n, \\r\\n or (in a file that uses them) a lone \\r."""
        for number, line, size in _lines(content, self.max_record_bytes):
            if line is None:
                self._skip(self._too_large(source, number, size))
                continue
            if number == 1:
                line = line.removeprefix(_BOM)
            if not line.strip():
                continue
            for raw in _split_lone_cr(line.rstrip(b"\r")):
                self.stats.bytes += len(raw)
                if self._defer:
                    yield RawRecord(source, number, raw)
                    continue
                document = self._admit(source, number, self._parse_record, raw)
                if document is not None:
                    if self.spill is not None:
                        self.spill.add_json(raw)
                    yield document

    def _json(self, source: str, content: _Stream) -> Iterator[Document | RawRecord]:
        """A .json file: an array of records (streamed), one object, or JSON Lines under a .json name."""
        first = _first_significant(content)
        if first == b"[":
            yield from self._json_values(source, content, array=True)
        elif first == b"{" and _first_line_is_json(content, self.max_record_bytes):
            yield from self._jsonl(source, content)
        elif first == b"{":
            yield from self._json_values(source, content, array=False)
        elif first:
            self._skip(RecordError(source, None, f"expected a JSON array of records or an object, "
                                                 f"found {first.decode('latin-1')!r}"))

    def _json_values(self, source: str, content: _Stream, *, array: bool) -> Iterator[Document]:
        scanner = _JsonScanner(content, self.max_record_bytes, array=array)
        try:
            for number, text, size in scanner:
                if text is None:
                    self._skip(self._too_large(source, number, size))
                    continue
                self.stats.bytes += size
                document = self._admit(source, number, self._parse_element, text)
                if document is not None:
                    if self.spill is not None:
                        self.spill.add_json(_one_line(text))
                    yield document
        except _Malformed as err:
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
            raise RecordError(source, number, f"not valid JSON ({_short(err)})") from None
        if not isinstance(record, dict):
            raise RecordError(source, number, f"expected a JSON object, got {type(record).__name__}")
        # A JSON string holds control characters only as escapes: without "\u" or "\b" there are none.
        document = self._document_of(source, number, record, controls=b"\\u" in raw or b"\\b" in raw)
        if _SURROGATE_ESCAPE.search(raw) and not _encodable(json.dumps(record, ensure_ascii=False)):
            raise RecordError(source, number, "a field holds a lone surrogate escape (not valid Unicode)")
        return document

    # ------------------------------------------------------------------ CSV

    def _csv(self, source: str, content: _Stream) -> Iterator[Document]:
        """CSV (or TSV) with a header row naming the id and text columns; other columns are metadata.

        Lines are decoded one by one, so a bad byte costs only its own row.
        """
        delimiter = "\t" if _format_suffix(source) == ".tsv" else ","
        csv.field_size_limit(max(self.max_record_bytes, 1))
        feed = _CsvFeed(content, self.max_record_bytes)
        layout: CsvLayout | None = None
        try:
            for row in csv.reader(feed, delimiter=delimiter):
                number, raw, size = feed.take()
                if not row:
                    continue
                if layout is None:
                    layout = _csv_layout(source, row, raw, delimiter)
                    continue
                self.stats.bytes += size
                document = self._admit(source, number, self._csv_document, (layout, row, raw, size))
                if document is not None:
                    if self.spill is not None:
                        self.spill.add_csv(layout, raw.encode("utf-8"))
                    yield document
        except (csv.Error, _Malformed) as err:
            self._skip(RecordError(source, feed.first_line or None, f"cannot read the rest of the file: "
                                                                    f"{_short(err)}"))

    def _csv_document(self, source: str, number: int | None,
                      payload: tuple[CsvLayout, list[str], str, int]) -> Document:
        layout, row, raw, size = payload
        if _TOO_LONG in raw or size > self.max_record_bytes:
            raise self._too_large(source, number, size)
        bad = _SURROGATE.search(raw)
        if bad is not None:
            offset = len(raw[:bad.start()].encode("utf-8", "surrogateescape"))
            raise RecordError(source, number, f"invalid UTF-8 at byte {offset} of the row")
        if len(row) > len(layout.header):
            raise RecordError(source, number, f"more fields than the header ({len(row)} > {len(layout.header)})")
        return self._document_of(source, number, layout.record_of(row))

    # ------------------------------------------------------------------ Parquet and Arrow

    def _columnar_file(self, source: str, family: str) -> Iterator[Document]:
        """Rows of a Parquet or Arrow IPC file, read batch by batch (a Parquet row group at most)."""
        what, extra = ("Parquet", "parquet") if family == "parquet" else ("Arrow", "arrow")
        pa = optional_module("pyarrow", extra, f"reading {what}", source)
        start, size, number = self.stats.source_bytes, _size(source), 0
        try:
            batches = _parquet_batches(source) if family == "parquet" else _ipc_batches(pa, source)
            for batch, done in batches:
                yield from self._batch_rows(source, batch, number)
                number += batch.num_rows
                self.stats.source_bytes = start + int(size * done)
        except FileNotFoundError:
            raise InputError(f"{source}: no such file") from None
        except (OSError, ValueError, pa.ArrowException) as err:  # ArrowInvalid is a ValueError
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {_short(err)}"))

    def _arrow_stream(self, source: str, content: _Stream) -> Iterator[Document]:
        """An Arrow IPC stream on stdin (or under a name without a known suffix)."""
        pa = optional_module("pyarrow", "arrow", "reading Arrow", source)
        number = 0
        try:
            for batch in pa.ipc.open_stream(content):
                yield from self._batch_rows(source, batch, number)
                number += batch.num_rows
        except (ValueError, pa.ArrowException) as err:
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {_short(err)}"))

    def _batch_rows(self, source: str, batch: Any, number: int) -> Iterator[Document]:
        for start in range(0, batch.num_rows, _BATCH_ROWS):
            part = batch.slice(start, _BATCH_ROWS)
            self.stats.bytes += part.nbytes
            for row, record in enumerate(part.to_pylist()):
                number += 1
                document = self._admit(source, number, self._row_document, record)
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

    def _text(self, source: str, content: _Stream) -> Iterator[Document]:
        """The whole stream is one document whose id is the path; only max_record_bytes + 1 bytes are read."""
        data = _read_up_to(content, self.max_record_bytes + 1)
        self.stats.bytes += len(data)
        document = self._admit(source, None, self._text_document, data)
        if document is not None:
            if self.spill is not None:
                self.spill.add_json(_dumps({self.id_field: document.id, self.text_field: document.text}))
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
        if self.id_field not in record:
            raise RecordError(source, number, f"missing field {self.id_field!r}")
        if self.text_field not in record:
            raise RecordError(source, number, f"missing field {self.text_field!r}")
        id, text = record[self.id_field], record[self.text_field]
        if not isinstance(id, (str, int)) or isinstance(id, bool) or str(id) == "":
            raise RecordError(source, number, f"field {self.id_field!r} must be a non-empty string or integer")
        if isinstance(id, str) and not _encodable(id):
            raise RecordError(source, number, f"field {self.id_field!r} is not valid Unicode (lone surrogate)")
        metadata = {k: v for k, v in record.items() if k not in (self.id_field, self.text_field)}
        if isinstance(text, list) and all(isinstance(p, str) for p in text):
            _check_text(source, number, "\n".join(text), controls)
            return Document.from_paragraphs(str(id), text, metadata)
        if not isinstance(text, str):
            raise RecordError(source, number,
                              f"field {self.text_field!r} must be a string or a list of strings")
        _check_text(source, number, text, controls)
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
            where = f"{source}:{number}" if number is not None else source
            first = self._first_seen.setdefault(document.id, where)
            if first != where:
                raise RecordError(source, number, f"duplicate id {document.id!r} (first at {first})")
        self.stats.read += 1
        return document

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
            where = f"{record.source}:{record.number}"
            first = self._first_seen.setdefault(str(id), where)
            if first != where:
                self._skip(RecordError(record.source, record.number, f"duplicate id {id!r} (first at {first})"))
                return False
        self.stats.read += 1
        if self.spill is not None:
            self.spill.add_json(record.raw)
        return True

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
        self.stats.skipped[_reason_key(problem.reason)] += 1
        if self.on_skip is not None:
            self.on_skip(problem)


# ---------------------------------------------------------------------- sources and formats


def total_input_bytes(sources: Iterable[str]) -> int | None:
    """Bytes of the files the sources expand to (what ``stats.source_bytes`` reaches); None for stdin."""
    total = 0
    for source in sources:
        if source == "-":
            return None
        try:
            total += sum(_size(path) for path in _expand(source))
        except (OSError, InputError):
            return None
    return total


def _expand(source: str) -> Iterator[str]:
    if source == "-":
        yield source
        return
    path = Path(source)
    if path.is_dir():
        files = list(_folder_files(path))
        if not files:
            raise InputError(f"{source}: folder holds no {FOLDER_FORMATS}")
        yield from files
    elif path.is_file():
        yield source
    elif path.exists():
        raise InputError(f"{source}: not a regular file or folder")
    else:
        raise InputError(f"{source}: no such file or folder")


def _folder_files(folder: Path) -> Iterator[str]:
    """Readable files under ``folder`` in sorted path order; a Hugging Face dataset counts as its shards."""
    shards = _dataset_shards(folder)
    if shards is not None:
        yield from shards
        return
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        raise InputError(f"{folder}: cannot list the folder ({err.strerror or err})") from None
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            yield from _folder_files(entry)
        elif entry.is_file() and _is_known(entry.name):
            yield str(entry)


def _dataset_shards(folder: Path) -> list[str] | None:
    """The ``data-*.arrow`` shards of a ``datasets`` save_to_disk folder in state.json order, or None."""
    if (folder / "dataset_dict.json").is_file():
        splits = _json_file(folder / "dataset_dict.json").get("splits", [])
        return [shard for split in splits for shard in (_dataset_shards(folder / str(split)) or [])]
    state = folder / "state.json"
    names: list[str]
    if state.is_file() and "_data_files" in (content := _json_file(state)):
        names = [str(entry.get("filename", "")) for entry in content["_data_files"]]
    elif (folder / "dataset_info.json").is_file() and any(folder.glob("data-*.arrow")):
        names = sorted(p.name for p in folder.glob("data-*.arrow"))
    else:
        return None
    for name in names:
        if not (folder / name).is_file():
            raise InputError(f"{folder}: state.json lists {name!r}, which is not in the folder")
    return [str(folder / name) for name in names]


def _json_file(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read ({_short(err)})") from None
    return content if isinstance(content, dict) else {}


def _family_of(name: str) -> tuple[str | None, str | None]:
    """(format, compression) told by a file name: ('jsonl', 'zstd') for x.jsonl.zst, (None, None) if unknown."""
    lower = name.lower()
    compression = next((c for suffix, c in COMPRESSIONS.items() if lower.endswith(suffix)), None)
    if compression is not None:
        lower = lower[:lower.rfind(".")]
    suffix = lower[lower.rfind("."):] if "." in os.path.basename(lower) else ""
    return TEXT_FORMATS.get(suffix) or COLUMNAR_FORMATS.get(suffix), compression


def _format_suffix(name: str) -> str:
    lower = name.lower()
    if any(lower.endswith(suffix) for suffix in COMPRESSIONS):
        lower = lower[:lower.rfind(".")]
    return lower[lower.rfind("."):] if "." in lower else ""


def _is_known(name: str) -> bool:
    return _family_of(name)[0] is not None


#: First bytes of formats: (signature, kind, name). Kinds: a compression, 'parquet', 'arrow'
#: (IPC file), 'arrow-stream', or 'refused' (a format neardup does not read).
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b\x08", "gzip", "gzip data"),
    (b"\x28\xb5\x2f\xfd", "zstd", "zstd data"),
    (b"\xfd7zXZ\x00", "xz", "xz data"),
    (b"PAR1", "parquet", "Parquet file"),
    (b"ARROW1", "arrow", "Arrow IPC file"),
    (b"\xff\xff\xff\xff", "arrow-stream", "Arrow IPC stream"),
    (b"PK\x03\x04", "refused", "zip archive (or a .docx, .xlsx, .epub)"),
    (b"PK\x05\x06", "refused", "zip archive"),
    (b"%PDF-", "refused", "PDF document"),
    (b"\x89PNG\r\n\x1a\n", "refused", "PNG image"),
    (b"\xff\xd8\xff", "refused", "JPEG image"),
    (b"GIF87a", "refused", "GIF image"),
    (b"GIF89a", "refused", "GIF image"),
    (b"7z\xbc\xaf\x27\x1c", "refused", "7-Zip archive"),
    (b"Rar!\x1a\x07", "refused", "RAR archive"),
    (b"SQLite format 3\x00", "refused", "SQLite database"),
    (b"\x7fELF", "refused", "executable (ELF)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "refused", "Microsoft Office (OLE) document"),
    (b"FEA1", "refused", "Feather version 1 file (save it again as Feather version 2, i.e. Arrow IPC)"),
    (b"Obj\x01", "refused", "Avro file"),
    (b"\x04\x22\x4d\x18", "refused", "LZ4 archive"),
    (b"\x93NUMPY", "refused", "NumPy array"),
    (b"\x89HDF\r\n\x1a\n", "refused", "HDF5 file"),
    (b"\x80\x04\x95", "refused", "Python pickle"),
    (b"\x80\x05\x95", "refused", "Python pickle"),
)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")


def _signature(head: bytes) -> tuple[str | None, str]:
    """(kind, name) of the format the first bytes show, or (None, '') for none of the known ones."""
    for prefix, kind, name in _SIGNATURES:
        if head.startswith(prefix):
            return kind, name
    if _BZIP2.match(head):
        return "bz2", "bzip2 data"
    if head[257:262] == b"ustar":
        return "refused", "tar archive"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI ", b"WEBP"):
        return "refused", "RIFF media file"
    return None, ""


def _refused(source: str, name: str) -> InputError:
    return InputError(f"{source}: a {name}, not a format neardup reads (it reads {READ_FORMATS})")


def _detect(source: str, head: bytes) -> tuple[str | None, str | None]:
    """(format, compression) of a file from its name, and for plain-text or unknown names its first bytes.

    A name saying JSON Lines, JSON or CSV is trusted, so that whatever bytes such a file
    holds, each record is read or counted as skipped; a .txt or a name without a known
    suffix holding a PDF, a zip, an image... is refused, and compressed data is decompressed.
    """
    family, compression = _family_of(source)
    if family in ("jsonl", "json", "csv"):
        return family, compression  # the name is trusted: any bytes are read (or skipped) record by record
    kind, name = _signature(head)
    if kind == "refused":
        raise _refused(source, name)
    if compression is None and kind in ("gzip", "zstd", "bz2", "xz"):
        compression = kind  # compressed, though the name does not say so
    elif compression is None and kind in ("parquet", "arrow"):
        family = kind
    elif kind == "arrow-stream" and family is None:
        family = "arrow"
    if family in ("parquet", "arrow") and compression is not None:
        raise InputError(f"{source}: a compressed {'Parquet' if family == 'parquet' else 'Arrow'} file; "
                         f"decompress it first (the format compresses its own columns)")
    return family, compression


def _stream_compression(source: str, head: bytes) -> str | None:
    """The compression of stdin from its first bytes; refuses what cannot be read from a stream."""
    kind, name = _signature(head)
    if kind == "refused":
        raise _refused(source, name)
    if kind in ("parquet", "arrow"):
        raise InputError(f"{source}: a {name} cannot be read from a stream; save it and give its path")
    return kind if kind in ("gzip", "zstd", "bz2", "xz") else None


def _sniff(source: str, content: _Stream) -> str:
    """The format of stdin, or of a file without a known suffix, from its (decompressed) first bytes."""
    head = content.peek(_SNIFF)
    kind, name = _signature(head)
    if kind == "refused":
        raise _refused(source, name)
    if kind == "arrow-stream":
        return "arrow"
    if kind is not None:
        raise InputError(f"{source}: a {name} inside a stream or a compressed file; neardup reads it only "
                         f"from a file of its own")
    first = _first_significant(content)
    if first == b"{":
        return "jsonl"
    if first == b"[" and _opens_records(content):
        return "json"
    if not _is_text(head):
        raise InputError(f"{source}: not UTF-8 text, nor a format neardup reads (it reads {READ_FORMATS})")
    return "text"


def _first_significant(content: _Stream) -> bytes:
    """The first byte that is not a byte-order mark or white space (b'' for none), without consuming it."""
    return _significant(content, 0)


def _opens_records(content: _Stream) -> bool:
    """Does '[' open an array of records ('[{' or '[]'), rather than a text such as '[Update] ...'?"""
    return _significant(content, 1) in (b"{", b"]")


def _significant(content: _Stream, index: int) -> bytes:
    """The ``index``-th byte that is not a byte-order mark or white space, peeking further only through white space."""
    size = _SNIFF
    while True:
        head = content.peek(size)
        rest = head.removeprefix(_BOM).lstrip()
        for _ in range(index):
            rest = rest[1:].lstrip()
        if rest or len(head) < size or size >= (1 << 20):
            return rest[:1]
        size *= 4


def _first_line_is_json(content: _Stream, limit: int) -> bool:
    """Is the first line of a .json file a whole JSON value (JSON Lines), rather than the start of one object?"""
    size = min(_CHUNK, limit + 1)
    while True:
        head = content.peek(size)
        end = head.find(b"\n")
        if end >= 0 or len(head) < size or size > limit:
            break
        size = min(size * 4, limit + 1)
    line = head[:end] if end >= 0 else head
    try:
        json.loads(line.removeprefix(_BOM))
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


def _head(source: str) -> bytes:
    with _open_binary(source) as handle:
        return handle.read(512)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _open_binary(source: str) -> IO[bytes]:
    try:
        return open(source, "rb")
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except (IsADirectoryError, PermissionError) as err:
        raise InputError(f"{source}: {os.strerror(err.errno or 0) or err}") from None


def optional_module(name: str, extra: str, purpose: str, source: str) -> Any:
    """Import an optional dependency, or raise a one-line InputError saying which extra to install."""
    try:
        return importlib.import_module(name)
    except ImportError:
        package = name.split(".")[0]
        raise InputError(f"{source}: {purpose} needs {package}: pip install 'neardup[{extra}]'") from None


# ---------------------------------------------------------------------- byte streams


class _Stream(io.RawIOBase):
    """A readable stream over ``inner`` that can peek ahead and reports every byte it reads from it.

    Peeked bytes are replayed by later reads, so a format can be recognised from the
    first bytes of stdin without reading stdin whole.
    """

    def __init__(self, inner: _Readable, on_read: Callable[[bytes], None] | None = None) -> None:
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
        parts, have, self._head = [self._head], len(self._head), b""
        while have < size:
            data = self._pull(size - have)
            if not data:
                break
            parts.append(data)
            have += len(data)
        return b"".join(parts)

    def readinto(self, buffer: Any, /) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)

    def peek(self, size: int) -> bytes:
        """At least ``size`` bytes ahead (fewer at the end), left to be read."""
        parts = [self._head]
        have = len(self._head)
        while have < size:
            data = self._pull(size - have)
            if not data:
                break
            parts.append(data)
            have += len(data)
        self._head = b"".join(parts)
        return self._head[:size]

    def _pull(self, size: int) -> bytes:
        data = self._inner.read(size) if size >= 0 else self._inner.read()
        if data and self._on_read is not None:
            self._on_read(data)
        return data or b""


def _read_up_to(stream: _Readable, limit: int) -> bytes:
    parts, have = [], 0
    while have < limit:
        data = stream.read(min(_CHUNK, limit - have))
        if not data:
            break
        parts.append(data)
        have += len(data)
    return b"".join(parts)


def _decompressed(stream: _Stream, compression: str | None, source: str) -> _Readable:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if compression == "bz2":
        return bz2.BZ2File(stream)
    if compression == "xz":
        return lzma.LZMAFile(cast(IO[bytes], stream))  # any readable object will do
    return _ZstdReader(stream, optional_module("zstandard", "zstd", "reading .zst files", source))


class _ZstdReader(io.RawIOBase):
    """zstd decompression across frames that reports a cut stream (python-zstandard's reader stops quietly)."""

    def __init__(self, stream: _Stream, zstandard: Any) -> None:
        super().__init__()
        self._frames = _ZstdFrames()
        tap = _Stream(stream, self._frames.feed)
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


# ---------------------------------------------------------------------- lines


def _lines(stream: _Readable, limit: int, *, ends: bool = False) -> Iterator[tuple[int, bytes | None, int]]:
    """(number, line, size) of each physical line; the line is None when its size exceeds ``limit``.

    The size counts the line ending; ``ends`` keeps it on the line as it came.
    """
    splitter = _LineSplitter(limit, ends)
    while True:
        data = stream.read(_CHUNK)
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

    def __init__(self, limit: int, ends: bool) -> None:
        self.limit, self.ends, self.number = limit, ends, 0
        self._parts: list[bytes] = []
        self._size = 0
        self._dropping = False
        self._mode: bytes | None = None
        self._carry = b""

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes | None, int]]:
        if self.ends:
            yield from self._feed_universal(data)
            return
        pieces = self._normalised(data).split(b"\n")
        for piece in pieces[:-1]:
            yield self._line(piece, b"\n")
        self._hold(pieces[-1])

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


def _split_lone_cr(line: bytes) -> list[bytes]:
    """A line holding records separated by lone \\r is those records (JSON never holds a raw \\r in a string)."""
    if b"\r" not in line:
        return [line]
    pieces = [piece for piece in line.split(b"\r") if piece.strip()]
    if len(pieces) > 1 and all(_is_json_object(piece) for piece in pieces):
        return pieces
    return [line]


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return False


# ---------------------------------------------------------------------- CSV lines

#: Stands for a line over the limit in the text fed to :mod:`csv`; decoding with
#: surrogateescape makes only U+DC80..U+DCFF, never this.
_TOO_LONG = "\ud800"
_SURROGATE = re.compile("[\ud800-\udfff]")


class _CsvFeed:
    """Lines for :mod:`csv`, each decoded alone (a bad byte spoils only its row), and the raw text of the row.

    A line over the limit is fed as a marker (the row is then skipped as too large); a
    row still growing past four times the limit over many lines (an unclosed quote)
    stops the file, so memory stays bounded.
    """

    def __init__(self, stream: _Readable, limit: int) -> None:
        self._lines = _lines(stream, limit, ends=True)
        self._limit = limit
        self._row: list[str] = []
        self.first_line = 0
        self._size = self._held = 0

    def __iter__(self) -> _CsvFeed:
        return self

    def __next__(self) -> str:
        number, line, size = next(self._lines)
        if not self._row:
            self.first_line = number
        self._size += size
        self._held += size if line is not None else 0
        if self._held > 4 * self._limit:
            raise _Malformed(f"the row from line {self.first_line} runs over {self._held} bytes "
                             f"(an unclosed quote?)")
        text = _TOO_LONG + "\n" if line is None else line.decode("utf-8", "surrogateescape")
        self._row.append(text)
        return text

    def take(self) -> tuple[int, str, int]:
        """(first line, raw text, size) of the row csv just returned."""
        raw, size = "".join(self._row), self._size
        self._row, self._size, self._held = [], 0, 0
        return self.first_line, raw, size


def _csv_layout(source: str, row: list[str], raw: str, delimiter: str) -> CsvLayout:
    if _SURROGATE.search(raw):
        raise _Malformed("the header row is not valid UTF-8 (or too long)")
    header = [row[0].removeprefix("\ufeff"), *row[1:]]
    return CsvLayout(tuple(header), delimiter, raw.removeprefix("\ufeff"))


# ---------------------------------------------------------------------- JSON arrays


class _Malformed(Exception):
    """The structure of a file is broken: the rest of it cannot be read."""


_NOT_SPACE = re.compile(r"[^ \t\n\r]")
_TOKEN = re.compile(r'["\[\]{}]')
#: The rest of a JSON string up to its closing quote (or a backslash ending the text), escapes
#: and all, in one C-level match (Friedl's unrolled loop).
_STRING_RUN = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_SCALAR_STOP = re.compile(r"[,\]\s]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _JsonScanner:
    """The elements of a JSON array (or a run of JSON values), cut from the text without parsing it.

    Yields (number, text, size); the text is None when the element is longer than
    ``limit`` characters, in which case it was counted, not held. Brackets and strings
    are followed across chunks by :class:`_Scan`, so memory stays near one element.
    """

    def __init__(self, stream: _Readable, limit: int, *, array: bool) -> None:
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
                    raise _Malformed(f"the array ends without ']' after record {number}")
                return
            number += 1
            yield (number, *self._element(number))
            if self._array and self._after_element(number):
                break
        if self._next_char():
            raise _Malformed("data after the end of the JSON array")

    def _after_element(self, number: int) -> bool:
        """Consume the ',' or ']' after an element; True at the end of the array."""
        char = self._next_char()
        if char not in (",", "]"):
            raise _Malformed(f"expected ',' or ']' after record {number}, found {char!r}" if char
                             else f"the array ends without ']' after record {number}")
        self._pos += 1
        return char == "]"

    def _more(self) -> bool:
        while not self._eof:
            data = self._stream.read(_CHUNK)
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
                raise _Malformed(f"record {number} is not closed at the end of the file")
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


def _one_line(text: str) -> bytes:
    """An element's bytes for the spill: as they came, or re-serialised if they span lines."""
    raw = text.encode("utf-8")
    return raw if b"\n" not in raw and b"\r" not in raw else _dumps(json.loads(raw))


# ---------------------------------------------------------------------- columnar helpers


def _parquet_batches(source: str) -> Iterator[tuple[Any, float]]:
    parquet = importlib.import_module("pyarrow.parquet")
    handle = parquet.ParquetFile(source)
    try:
        total, done = max(handle.metadata.num_rows, 1), 0
        for batch in handle.iter_batches(batch_size=_BATCH_ROWS):
            done += batch.num_rows
            yield batch, done / total
    finally:
        handle.close()


def _ipc_batches(pa: Any, source: str) -> Iterator[tuple[Any, float]]:
    """Batches of an Arrow IPC file or stream (``datasets`` shards are streams), with the share read."""
    with pa.OSFile(source) as handle:
        is_file = handle.read(6) == b"ARROW1"
        handle.seek(0)
        if is_file:
            reader = pa.ipc.open_file(handle)
            count = max(reader.num_record_batches, 1)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i), (i + 1) / count
            return
        size = max(handle.size(), 1)
        for batch in pa.ipc.open_stream(handle):
            yield batch, handle.tell() / size


def _text_bytes(value: Any, limit: int) -> int:
    """UTF-8 size of a text field, measured exactly only when it could exceed ``limit``."""
    texts = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
        if isinstance(value, list) else []
    chars = sum(len(t) for t in texts)
    return chars if chars * 4 <= limit else sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)


# ---------------------------------------------------------------------- checks


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(source: str, number: int | None, text: str, controls: bool = True) -> None:
    """Refuse empty and binary texts; ``controls=False``: the caller knows there are no control characters."""
    if not text.strip():
        raise RecordError(source, number, "empty text")
    if controls and ("\x00" in text or _control_share(text) > _BINARY_SHARE):
        raise RecordError(source, number, "binary content, not text")


#: Control characters that text does not hold (tab, line feed, vertical tab, form feed, carriage return do).
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f]")


def _control_share(text: str) -> float:
    """Share of control characters in the first 64k characters (found by one C-level scan)."""
    sample = text[:65536]
    return len(_CONTROLS.findall(sample)) / max(len(sample), 1)


def _reason_key(reason: str) -> str:
    """A reason without the specifics, for counting: 'missing field 'text''."""
    for prefix in ("duplicate id", "invalid UTF-8", "not valid JSON", "record of", "file exceeds",
                   "cannot read the rest", "expected a JSON object", "more fields than the header"):
        if reason.startswith(prefix):
            return {"record of": "record too large", "file exceeds": "record too large"}.get(prefix, prefix)
    if "paragraphs exceed the limit" in reason:
        return "too many paragraphs"
    return reason


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 80 else text[:77] + "..."
