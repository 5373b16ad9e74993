"""Read documents from JSON Lines (plain or gzip), plain-text files, folders and stdin.

Every bad record becomes a :class:`~neardup.errors.RecordError` naming the file,
the line and the reason. In strict mode the first one is raised; otherwise it
is handed to ``on_skip`` and counted, and reading goes on: nothing is dropped
without a word.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import sys
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from .document import Document
from .errors import InputError, RecordError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet",)
TEXT_SUFFIXES = (".txt", ".text", ".md")
#: A single record (JSON line or text file) larger than this is skipped.
DEFAULT_MAX_RECORD_BYTES = 64 << 20
_BOM = b"\xef\xbb\xbf"
#: A document with more paragraphs than this is skipped (its signatures would need
#: 512 bytes a paragraph at 128 permutations).
DEFAULT_MAX_PARAGRAPHS = 100_000
#: Share of control characters above which a text is taken for binary junk.
_BINARY_SHARE = 0.05


@dataclass
class ReadStats:
    """Counts of what the readers did, for the summary line."""

    read: int = 0
    bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        if not skipped:
            return f"read {self.read} documents"
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return f"read {self.read} documents, skipped {skipped} ({reasons})"


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
    _first_seen: dict[str, str] = field(default_factory=dict)

    def documents(self, sources: Iterable[str]) -> Iterator[Document]:
        """Documents of every source in order; folders are walked in sorted order."""
        for source in sources:
            for path in self._expand(source):
                yield from self._read_source(path)

    def _expand(self, source: str) -> Iterator[str]:
        if source == "-":
            yield source
            return
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _is_known(p.name))
            if not files:
                raise InputError(f"{source}: folder holds no .jsonl, .jsonl.gz or .txt files")
            yield from (str(p) for p in files)
        elif path.is_file():
            yield source
        elif path.exists():
            raise InputError(f"{source}: not a regular file or folder")
        else:
            raise InputError(f"{source}: no such file or folder")

    def _read_source(self, source: str) -> Iterator[Document]:
        if source == "-":
            data = (self.stdin or sys.stdin.buffer).read()
            if data.removeprefix(_BOM).lstrip()[:1] == b"{":
                yield from self._jsonl_lines("-", io.BytesIO(data))
            else:
                yield from self._text_document("-", data)
        elif source.lower().endswith(JSONL_SUFFIXES):
            yield from self._jsonl_file(source)
        elif source.lower().endswith(CSV_SUFFIXES):
            yield from self._csv_file(source)
        elif source.lower().endswith(PARQUET_SUFFIXES):
            yield from self._parquet_file(source)
        else:
            with _open_binary(source) as handle:
                data = handle.read(self.max_record_bytes + 1)
            yield from self._text_document(source, data)

    def _jsonl_file(self, source: str) -> Iterator[Document]:
        opener = gzip.open if source.lower().endswith(".gz") else open
        try:
            with opener(source, "rb") as handle:  # type: ignore[operator]
                yield from self._jsonl_lines(source, handle)
        except (OSError, EOFError, zlib.error) as err:
            if isinstance(err, FileNotFoundError):
                raise InputError(f"{source}: no such file") from None
            if isinstance(err, (PermissionError, IsADirectoryError)):
                raise InputError(f"{source}: {err.strerror or err}") from None
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {err}"))

    def _csv_file(self, source: str) -> Iterator[Document]:
        """CSV (or TSV) with a header row naming the id and text columns; other columns are metadata."""
        opener = gzip.open if source.lower().endswith(".gz") else open
        delimiter = "\t" if ".tsv" in source.lower() else ","
        csv.field_size_limit(self.max_record_bytes)
        try:
            with opener(source, "rt", encoding="utf-8-sig", newline="", errors="strict") as handle:  # type: ignore[operator]
                rows = csv.DictReader(handle, delimiter=delimiter)
                number = 1
                try:
                    for record in rows:
                        number = rows.line_num
                        self.stats.bytes += sum(len(v or "") for v in record.values() if isinstance(v, str))
                        try:
                            yield self._accept(source, number, self._document_of(source, number, record))
                        except RecordError as problem:
                            self._skip(problem)
                except (csv.Error, UnicodeDecodeError) as err:
                    self._skip(RecordError(source, number + 1, f"cannot read the rest of the file: {_short(err)}"))
        except FileNotFoundError:
            raise InputError(f"{source}: no such file") from None
        except (OSError, EOFError, zlib.error) as err:
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {err}"))

    def _parquet_file(self, source: str) -> Iterator[Document]:
        try:
            import pyarrow.parquet as parquet  # type: ignore[import-not-found]
        except ImportError:
            raise InputError(f"{source}: reading Parquet needs pyarrow: pip install 'neardup[parquet]'") from None
        try:
            table = parquet.ParquetFile(source)
            number = 0
            for batch in table.iter_batches(batch_size=1000):
                for record in batch.to_pylist():
                    number += 1
                    try:
                        yield self._accept(source, number, self._document_of(source, number, record))
                    except RecordError as problem:
                        self._skip(problem)
        except FileNotFoundError:
            raise InputError(f"{source}: no such file") from None
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            self._skip(RecordError(source, None, f"cannot read the rest of the file: {_short(err)}"))

    def _jsonl_lines(self, source: str, handle: IO[bytes]) -> Iterator[Document]:
        for number, raw in enumerate(handle, 1):
            if number == 1:
                raw = raw.removeprefix(_BOM)
            if not raw.strip():
                continue
            self.stats.bytes += len(raw)
            try:
                yield self._accept(source, number, self._parse_record(source, number, raw))
            except RecordError as problem:
                self._skip(problem)

    def _parse_record(self, source: str, number: int, raw: bytes) -> Document:
        if len(raw) > self.max_record_bytes:
            raise RecordError(source, number, f"record of {len(raw)} bytes exceeds the limit of "
                                              f"{self.max_record_bytes} bytes")
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise RecordError(source, number, f"invalid UTF-8 at byte {err.start}") from None
        except (ValueError, RecursionError) as err:  # JSONDecodeError, and integers too long to parse
            raise RecordError(source, number, f"not valid JSON ({_short(err)})") from None
        if not isinstance(record, dict):
            raise RecordError(source, number, f"expected a JSON object, got {type(record).__name__}")
        return self._document_of(source, number, record)

    def _document_of(self, source: str, number: int, record: dict[str, Any]) -> Document:
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
            _check_text(source, number, "\n".join(text))
            return Document.from_paragraphs(str(id), text, metadata)
        if not isinstance(text, str):
            raise RecordError(source, number,
                              f"field {self.text_field!r} must be a string or a list of strings")
        _check_text(source, number, text)
        return Document.from_text(str(id), text, metadata)

    def _text_document(self, source: str, data: bytes) -> Iterator[Document]:
        self.stats.bytes += len(data)
        try:
            if len(data) > self.max_record_bytes:
                raise RecordError(source, None, f"file exceeds the limit of {self.max_record_bytes} bytes")
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as err:
                raise RecordError(source, None, f"invalid UTF-8 at byte {err.start}") from None
            _check_text(source, None, text)
            yield self._accept(source, None, Document.from_text(source, text))
        except RecordError as problem:
            self._skip(problem)

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

    def _skip(self, problem: RecordError) -> None:
        if self.strict:
            raise problem
        self.stats.skipped[_reason_key(problem.reason)] += 1
        if self.on_skip is not None:
            self.on_skip(problem)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(source: str, number: int | None, text: str) -> None:
    if not text.strip():
        raise RecordError(source, number, "empty text")
    if "\x00" in text or _control_share(text) > _BINARY_SHARE:
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
                   "cannot read the rest", "expected a JSON object"):
        if reason.startswith(prefix):
            return {"record of": "record too large", "file exceeds": "record too large"}.get(prefix, prefix)
    if "paragraphs exceed the limit" in reason:
        return "too many paragraphs"
    return reason


def _short(err: Exception) -> str:
    text = str(err)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_known(name: str) -> bool:
    return name.lower().endswith(JSONL_SUFFIXES + TEXT_SUFFIXES + CSV_SUFFIXES + PARQUET_SUFFIXES)


def _open_binary(source: str) -> IO[bytes]:
    try:
        return open(source, "rb")
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except (IsADirectoryError, PermissionError) as err:
        raise InputError(f"{source}: {os.strerror(err.errno or 0) or err}") from None
