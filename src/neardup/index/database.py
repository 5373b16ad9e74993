"""The SQLite side of an index folder: documents, the segment manifest and the metadata, with checksums.

``neardup.sqlite`` holds four tables and nothing else (checked at every open): ``documents`` (id,
metadata, compressed text, paragraph spans, digest, size, the shingles of an index without texts,
and a checksum of the row), ``segments`` (the manifest: each segment's name, documents and the
checksum of every file), ``removed`` (numbers removed since their segment was written) and ``meta``
(format version, configuration, counters, and checksums of the immutable fields and of the
manifest). :class:`Catalog` opens it, checks it, and does every transaction on it; the segments
themselves are :mod:`neardup.index.segments`.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import sqlite3
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np
import xxhash

from neardup.config import Config
from neardup.document import checked_spans
from neardup.errors import ConfigError, IndexFormatError, IndexLockedError, InputError
from neardup.index.folder import CONFIG, IndexFolder
from neardup.index.storage import DocumentShingles
from neardup.records import Fingerprints
from neardup.sketch.lsh import Bands

log = logging.getLogger(__name__)

#: 2: band tables as one sorted array of band-tagged keys; per-document sizes and article signatures.
#: 3: paragraph digests are shingles.form_digests of the matching form; band tables hold 32-bit keys.
#: 4: an index without texts keeps each document's shingle sequence (exact verification); every
#:    document row and the meta table carry checksums; segment entries name their configuration.
#: 5: a checksum of the manifest (the segment list and the removed numbers) in the meta table.
FORMAT_VERSION = 5
_TABLES = {"meta", "segments", "documents", "removed"}
_SCHEMA = """
create table if not exists meta(key text primary key, value text not null);
create table if not exists segments(name text primary key, documents integer not null,
                                    checksums text not null);
create table if not exists documents(number integer primary key, id text not null unique,
    metadata text not null, text blob, spans blob not null, digest blob not null, size integer not null,
    paragraphs blob, checksum integer not null);
create table if not exists removed(number integer primary key);
"""
_IMMUTABLE_META = ("format_version", "config", "keep_text")
_COUNTERS = ("generation", "next_number", "next_segment")
F = TypeVar("F", bound=Callable[..., Any])


def database_errors(method: F) -> F:
    """SQLite's errors as neardup's, for methods of an object with a ``location`` (see :func:`translated`)."""
    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise
        except sqlite3.Error as err:
            raise translated(err, self.location) from None
    return guarded  # type: ignore[return-value]


#: SQLite's primary result codes (stable across versions; the sqlite3 module names them only from 3.11).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 13, 14


def translated(err: sqlite3.Error, database: object) -> Exception:
    """The exception a SQLite error means for a user: a full disk or an I/O error is an OSError
    (exit 2, the file named), a lock held too long IndexLockedError, missing permissions an
    InputError, anything else (malformed pages, a changed schema, undecodable text) damage."""
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = str(err).lower()
    if primary == _SQLITE_FULL or "database or disk is full" in message:
        return OSError(errno.ENOSPC, "No space left on device (the database could not grow)", str(database))
    if primary == _SQLITE_IOERR or "disk i/o error" in message:
        return OSError(errno.EIO, f"input/output error ({err})", str(database))
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in message:
        return IndexLockedError(f"{database}: the database stayed locked by another process ({err})")
    if primary in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN) \
            or "readonly" in message or "unable to open" in message:
        return InputError(f"{database}: cannot be opened or changed ({err}); check the permissions")
    return IndexFormatError(f"{database}: the database is damaged ({err})")



class Catalog:
    """The database of one index folder, open for reading or for writing."""

    def __init__(self, folder: IndexFolder, writable: bool) -> None:
        self.folder, self.writable = folder, writable
        self.path = folder.path
        self.location = str(folder.database())
        self._db: sqlite3.Connection | None = None

    def open(self, new: bool) -> None:
        """Connect, and check (or, ``new``, create) the schema."""
        self._db = self._connect(new)
        self._check_schema(creating=new)

    def _connect(self, new: bool) -> sqlite3.Connection:
        database = self.folder.database()
        if self.writable:
            db = sqlite3.connect(database, timeout=60, isolation_level=None, check_same_thread=False)
            try:
                db.execute("pragma journal_mode=wal")
                db.execute("pragma synchronous=full")
            except sqlite3.DatabaseError as err:
                db.close()
                raise IndexFormatError(f"{database}: not a readable neardup index ({err})") from None
            return db
        # Read-only: the database is never changed (no journal mode set, no table created). A
        # folder this process cannot write to cannot hold a writer either: read it as immutable.
        uri = f"file:{quote(str(database.resolve()))}?mode=ro"
        for suffix in ("", "&immutable=1"):
            db = sqlite3.connect(uri + suffix, uri=True, timeout=60, isolation_level=None, check_same_thread=False)
            try:
                db.execute("select count(*) from sqlite_master").fetchone()
                return db
            except sqlite3.OperationalError:
                db.close()
            except sqlite3.DatabaseError as err:
                db.close()
                raise IndexFormatError(f"{database}: not a readable neardup index ({err})") from None
        raise InputError(f"{database}: cannot be opened for reading; check the permissions")

    def _check_schema(self, creating: bool) -> None:
        """Our four tables and their own indexes, nothing else: a trigger or view would change
        what is stored behind the index's back."""
        db = self.database()
        try:
            objects = db.execute("select type, name, tbl_name from sqlite_master").fetchall()
            if creating or (not objects and self.writable and not self.folder.segment_entries()):
                # new, or a creation killed before its first commit (an empty database, no segments)
                db.executescript("begin;\n" + _SCHEMA + "commit;\n")
                objects = db.execute("select type, name, tbl_name from sqlite_master").fetchall()
        except sqlite3.DatabaseError as err:
            raise IndexFormatError(f"{self.location}: not a readable neardup index ({err})") from None
        tables = {name for kind, name, _ in objects if kind == "table"}
        strange = [f"{kind} {name}" for kind, name, table in objects
                   if kind not in ("table", "index") or (kind == "table" and name not in _TABLES)
                   or (kind == "index" and not name.startswith("sqlite_autoindex_"))]
        if strange or tables != _TABLES:
            raise IndexFormatError(f"{self.location}: the database is not a neardup index of this version "
                                   f"({', '.join(strange) or 'tables ' + ', '.join(sorted(tables))})")

    def open_meta(self, config: Config | None, keep_text: bool) -> tuple[Config, bool]:
        rows = dict(self.database().execute("select key, value from meta").fetchall())
        if not rows:
            if not self.writable:
                raise IndexFormatError(f"{self.location}: index has no metadata")
            return self._create_meta(config or Config(), keep_text), keep_text
        version = rows.get("format_version")
        if version != str(FORMAT_VERSION):
            raise IndexFormatError(f"{self.location}: index format {version!r} is not {FORMAT_VERSION}; rebuild it "
                                   "with this version of neardup")
        if rows.get("meta_checksum") != meta_checksum(rows):
            raise IndexFormatError(f"{self.location}: the index metadata (configuration, format) does not match its "
                                   "checksum; the index is damaged")
        for key in _COUNTERS:
            if not is_count(rows.get(key)):
                raise IndexFormatError(f"{self.location}: index metadata {key!r} is damaged")
        try:
            stored = Config.from_json(rows["config"])
        except ConfigError as err:
            raise IndexFormatError(f"{self.location}: stored configuration is damaged ({err})") from None
        if config is not None:
            stored.check_compatible(config)
            if Bands.of(config) != Bands.of(stored):
                raise ConfigError(f"{self.path}: index was built with LSH bands/rows {Bands.of(stored)}, "
                                  f"not {Bands.of(config)}")
            stored = config
        return stored, rows.get("keep_text") == "1"

    def _create_meta(self, config: Config, keep_text: bool) -> Config:
        rows = {"format_version": str(FORMAT_VERSION), "config": config.to_json(),
                "keep_text": "1" if keep_text else "0", "generation": "0", "next_number": "0", "next_segment": "1",
                "manifest_checksum": manifest_checksum([], [])}
        rows["meta_checksum"] = meta_checksum(rows)
        with self.transaction():
            self.database().executemany("insert into meta values (?, ?)", list(rows.items()))
        write_atomically(self.folder, CONFIG, config.to_json().encode())
        return config

    def check_counters(self, highest_segment_number: int, segment_names: Sequence[str]) -> None:
        """Before writing: new numbers and segment names must not collide with stored ones."""
        db = self.database()
        highest = max([highest_segment_number]
                      + [int(v) for (v,) in db.execute("select max(number) from documents") if v is not None]
                      + [int(v) for (v,) in db.execute("select max(number) from removed") if v is not None])
        if int(self.meta("next_number")) <= highest:
            raise IndexFormatError(f"{self.location}: index metadata 'next_number' is below a stored document "
                                   "number; the index is damaged")
        names = [int(name[4:]) for name in segment_names]
        if names and int(self.meta("next_segment")) <= max(names):
            raise IndexFormatError(f"{self.location}: index metadata 'next_segment' is below a listed segment; "
                                   "the index is damaged")

    def database(self) -> sqlite3.Connection:
        if self._db is None:
            raise IndexFormatError(f"{self.path}: the index is closed")
        return self._db

    def meta(self, key: str) -> str:
        row = self.database().execute("select value from meta where key = ?", (key,)).fetchone()
        if row is None:
            raise IndexFormatError(f"{self.location}: index metadata lacks {key!r}")
        value = row[0]
        if key in _COUNTERS and not is_count(value):
            raise IndexFormatError(f"{self.location}: index metadata {key!r} is damaged")
        return str(value)

    def bump(self, **values: Any) -> None:
        """Inside a write transaction, last: a new generation and the manifest's new checksum."""
        db = self.database()
        values["generation"] = int(self.meta("generation")) + 1
        listed = db.execute("select name, documents, checksums from segments order by name").fetchall()
        removed = [n for (n,) in db.execute("select number from removed order by number")]
        values["manifest_checksum"] = manifest_checksum(listed, removed)
        db.executemany("update meta set value = ? where key = ?", [(str(v), k) for k, v in values.items()])
        if db.execute(f"select count(*) from meta where key in ({','.join('?' * len(values))})",
                      list(values)).fetchone()[0] != len(values):
            raise IndexFormatError(f"{self.location}: the index metadata lacks a counter; the index is damaged")

    def transaction(self, read_only: bool = False) -> Transaction:
        """A transaction: ``begin immediate`` for a writer, a snapshot for ``read_only``."""
        return Transaction(self.database(), read_only)

    def close(self) -> None:
        if self._db is None:
            return
        if self.writable:
            try:
                self._db.execute("pragma wal_checkpoint(truncate)")
            except sqlite3.DatabaseError as err:  # a reader holds the log; it is checkpointed later
                log.debug("checkpoint skipped: %s", err)
        self._db.close()
        self._db = None


class Transaction:
    def __init__(self, db: sqlite3.Connection, read_only: bool) -> None:
        self.db, self.read_only = db, read_only

    def __enter__(self) -> None:
        self.db.execute("begin" if self.read_only else "begin immediate")

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            self.db.execute("commit")
            return
        try:
            self.db.execute("rollback")
        except sqlite3.DatabaseError as err:  # the failed statement may have rolled back already
            log.debug("rollback: %s", err)


# -- rows -------------------------------------------------------------------------------------------------


def row_checksum(values: Sequence[Any]) -> int:
    """xxh3 of a document row's values (number, id, metadata, text, spans, digest, size, shingles),
    as a signed 64-bit SQLite integer."""
    digest = xxhash.xxh3_64()
    for value in values:
        if value is None:
            digest.update(b"\x00N")
            continue
        data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.intdigest() - (1 << 63)


def check_row(path: object, row: Sequence[Any]) -> None:
    if row_checksum(row[:8]) != row[8]:
        raise IndexFormatError(f"{path}: the stored document {row[1]!r} does not match its checksum; "
                               "the index is damaged")


def is_count(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19


def manifest_checksum(listed: Sequence[Sequence[Any]], removed: Sequence[int]) -> str:
    """xxh3 of the segment list (name, documents, checksums, in name order) and the removed numbers."""
    digest = xxhash.xxh3_64()
    for row in listed:
        for value in row:
            data = str(value).encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    digest.update(np.asarray(removed, dtype="<i8").tobytes())
    return digest.hexdigest()


def meta_checksum(rows: dict[str, Any]) -> str:
    return xxhash.xxh3_64_hexdigest("\x00".join(str(rows.get(k, "")) for k in _IMMUTABLE_META).encode())


def decompress(path: object, id: str, blob: bytes) -> str:
    try:
        return zlib.decompress(blob).decode("utf-8", "surrogatepass")
    except (zlib.error, UnicodeDecodeError) as err:
        raise IndexFormatError(f"{path}: the stored text of {id!r} is damaged ({err})") from None


def spans_of(path: object, id: str, blob: bytes, text: str | None) -> tuple[tuple[int, int], ...]:
    """A stored document's paragraph spans, checked: pairs, in order, inside the text when it is kept."""
    if not isinstance(blob, bytes) or len(blob) % 16:
        raise IndexFormatError(f"{path}: the stored paragraph spans of {id!r} are damaged")
    spans = np.frombuffer(blob, dtype="<i8").reshape(-1, 2)
    try:  # as lists: a loop checks the few spans of a document faster than numpy
        return checked_spans(id, text if text is not None else "\x00" * int(spans.max(initial=0)), spans.tolist())
    except InputError as err:
        raise IndexFormatError(f"{path}: the stored paragraph spans of {id!r} are damaged ({err})") from None


def compress_texts(texts: list[str]) -> list[bytes]:
    return [zlib.compress(text.encode("utf-8", "surrogatepass"), 6) for text in texts]


def pack_shingles(prints: Fingerprints, rows: slice, ends: np.ndarray) -> bytes:
    """One document's verification columns, for indexes that keep no text (little-endian arrays)."""
    shingles = prints.shingles[int(ends[rows.start]):int(ends[rows.stop])]  # type: ignore[index]
    return b"".join([prints.paragraph_sizes[rows].astype("<i4").tobytes(),
                     prints.paragraph_words[rows].astype("<i4").tobytes(),
                     prints.paragraph_digests[rows].astype("<u8").tobytes(),
                     shingles.astype("<u4").tobytes()])


def unpack_shingles(path: object, id: str, packed: bytes | None, spans: np.ndarray,
                     digest: np.ndarray) -> DocumentShingles:
    n = len(spans)
    if packed is None or len(packed) < 16 * n or (len(packed) - 16 * n) % 4:
        raise IndexFormatError(f"{path}: the stored shingles of {id!r} are damaged")
    sizes = np.frombuffer(packed, "<i4", n, 0).astype(np.int64)
    words = np.frombuffer(packed, "<i4", n, 4 * n).astype(np.int64)
    digests = np.frombuffer(packed, "<u8", n, 8 * n).astype(np.uint64)
    count = (len(packed) - 16 * n) // 4
    if count != int(sizes.sum()) or (sizes < 0).any():
        raise IndexFormatError(f"{path}: the stored shingles of {id!r} do not match their paragraphs")
    hashes = np.frombuffer(packed, "<u4", count, 16 * n).astype(np.uint32)
    return DocumentShingles(hashes, sizes, words, digests, spans.astype(np.int64), (int(digest[0]), int(digest[1])))


def write_atomically(folder: IndexFolder, name: str, data: bytes) -> None:
    temporary, final = folder.entry(name + ".tmp"), folder.entry(name)
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)


