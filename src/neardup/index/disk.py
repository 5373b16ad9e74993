"""A persistent index on disk: SQLite for documents and the segment list, immutable numpy segments for bands.

Why this design (measured by ``benchmarks/bench_band_store.py``): a corpus of 1M articles holds
~345M (band key, document) rows; SQLite stores them at ~0.6M rows/s and ~75 bytes a row, sorted
numpy segments at ~5M rows/s and 8 bytes a row, looked up for whole batches.

Layout of an index folder (:mod:`neardup.folder` lists and guards every entry)::

    neardup.sqlite   documents (id, metadata, compressed text, paragraph spans, a checksum per row),
                     segments (the manifest: names, checksums of every file), meta (format, config)
    config.json      the Config, for people; the copy in SQLite is the one checked
    write.lock       held with flock by the one writer
    seg-000001/      an immutable segment of .npy arrays (never pickled; :mod:`neardup.segments`)

Guarantees, and how they hold:

* **crash safety** — a segment is written to ``seg-N.tmp``, fsynced and renamed; it exists for
  readers only once the SQLite transaction listing it (with its documents, and the removal of
  the documents it replaces) commits. A kill at any moment leaves the old state or the new one.
* **integrity** — every segment file is compared with its checksum when a process first reads it;
  every document row with its own checksum whenever it is read; the schema, the format version
  and the configuration (with a checksum, and a digest in every segment's manifest entry) when
  the index is opened. Damage is :class:`~neardup.errors.IndexFormatError` (exit 3) naming the
  file or document, never an answer. ``verify()`` checks everything at once.
* **snapshots** — :meth:`DiskStorage.reading` holds one read transaction: a query sees one
  committed state while another process removes and adds documents.
* **its own files only** — see :mod:`neardup.folder`. Readers open the database read-only and
  never change it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np
import xxhash

from neardup.config import Config
from neardup.document import Document, checked_spans
from neardup.errors import ConfigError, IndexFormatError, IndexLockedError, InputError
from neardup.index.folder import CONFIG, DATABASE, IndexFolder, check_segment_name, is_segment_name
from neardup.index.segments import (
    Segment,
    Tables,
    build_arrays,
    check_shapes,
    config_digest,
    file_digest,
    id_hashes,
    load_segment,
    merged_arrays,
    tier,
    write_segment,
)
from neardup.index.storage import (
    DocumentShingles,
    LruCache,
    StoredColumns,
    StoredDocument,
    columns_of,
    entries_of,
)
from neardup.records import Fingerprints
from neardup.sketch.fingerprint import fingerprint
from neardup.sketch.lsh import Bands

log = logging.getLogger(__name__)

#: 2: band tables as one sorted array of band-tagged keys; per-document sizes and article signatures.
#: 3: paragraph digests are shingles.form_digests of the matching form; band tables hold 32-bit keys.
#: 4: an index without texts keeps each document's shingle sequence (exact verification); every
#:    document row and the meta table carry checksums; segment entries name their configuration.
#: 5: a checksum of the manifest (the segment list and the removed numbers) in the meta table.
FORMAT_VERSION = 5
#: Segments of one size tier merged together once there are this many.
MERGE_FANOUT = 4
#: Threads compressing a batch's texts beside the main thread.
_COMPRESS_THREADS = 2
#: Stored documents whose verification columns are kept in memory.
_COLUMNS_CACHE = 8192
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


def _database_errors(method: F) -> F:
    """SQLite's errors as neardup's: damage, a full disk, a lock, permissions (see :func:`_translated`)."""
    @functools.wraps(method)
    def guarded(self: DiskStorage, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise
        except sqlite3.Error as err:
            raise _translated(err, self.folder.path / DATABASE) from None
    return guarded  # type: ignore[return-value]


#: SQLite's primary result codes (stable across versions; the sqlite3 module names them only from 3.11).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 13, 14


def _translated(err: sqlite3.Error, database: object) -> Exception:
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


def is_index(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is (or claims to be) a neardup index folder."""
    return IndexFolder(path).state() == "index"


class _SegmentGone(Exception):
    """A segment listed by the snapshot was deleted by a later merge: take a newer snapshot."""


class DiskStorage:
    """The :class:`~neardup.storage.Storage` interface over an index folder."""

    def __init__(self, path: str | os.PathLike[str], config: Config | None = None, *, writable: bool = False,
                 keep_text: bool = True, wait: float = 0.0) -> None:
        if config is not None and not isinstance(config, Config):
            raise ConfigError(f"config must be a neardup.Config, got {type(config).__name__}")
        self.folder = IndexFolder(path)
        self.path = self.folder.path
        self.location = str(self.path / DATABASE)
        self.writable = writable
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None
        try:
            self._open(config, keep_text, wait)
        except sqlite3.Error as err:
            self.close()
            if isinstance(err, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
                raise
            raise _translated(err, self.location) from None
        except BaseException:
            self.close()
            raise

    def _open(self, config: Config | None, keep_text: bool, wait: float) -> None:
        if self.writable:
            new = self.folder.prepare_for_writing()
            self._lock(wait)
        else:
            self.folder.require_index()
            new = False
        self._db = self._connect(new)
        self._check_schema(creating=new)
        self.config, self.keep_text = self._open_meta(config, keep_text)
        self.needs_shingles = not self.keep_text
        self._bands = Bands.of(self.config)
        self._config_digest = config_digest(self.config, self._bands)
        self._tables = Tables(self._bands, self.config.num_perm)
        self._generation = -1
        self._verified: set[str] = set()
        # Numbers are never reused, so a cached document stays right for as long as it exists.
        self._columns_cache: LruCache[int, DocumentShingles] = LruCache(_COLUMNS_CACHE)
        self._reading = False
        self.refresh()  # checks the manifest: orphans are only what a verified manifest does not list
        if self.writable:
            self._check_counters()
            self._remove_orphans()

    # -- opening ---------------------------------------------------------------------------------

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
        db = self._database()
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

    def _lock(self, wait: float) -> None:
        fd = self.folder.open_lock()
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise IndexLockedError(f"{self.path}: another process is writing to this index "
                                           f"(retry later, or pass a longer wait)") from None
                time.sleep(0.1)
        self._lock_fd = fd

    def _open_meta(self, config: Config | None, keep_text: bool) -> tuple[Config, bool]:
        rows = dict(self._database().execute("select key, value from meta").fetchall())
        if not rows:
            if not self.writable:
                raise IndexFormatError(f"{self.location}: index has no metadata")
            return self._create_meta(config or Config(), keep_text), keep_text
        version = rows.get("format_version")
        if version != str(FORMAT_VERSION):
            raise IndexFormatError(f"{self.location}: index format {version!r} is not {FORMAT_VERSION}; rebuild it "
                                   "with this version of neardup")
        if rows.get("meta_checksum") != _meta_checksum(rows):
            raise IndexFormatError(f"{self.location}: the index metadata (configuration, format) does not match its "
                                   "checksum; the index is damaged")
        for key in _COUNTERS:
            if not _is_count(rows.get(key)):
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
                "manifest_checksum": _manifest_checksum([], [])}
        rows["meta_checksum"] = _meta_checksum(rows)
        with self._transaction():
            self._database().executemany("insert into meta values (?, ?)", list(rows.items()))
        _write_atomically(self.folder, CONFIG, config.to_json().encode())
        return config

    def _remove_orphans(self) -> None:
        """Segment folders the (verified) manifest does not list: a batch killed before its
        commit, or the inputs of a merge killed after it."""
        listed = {segment.name for segment in self._tables.segments}
        for name in self.folder.segment_entries():
            if name not in listed:
                self.folder.remove_segment(name)

    def _check_counters(self) -> None:
        """Before writing: new numbers and segment names must not collide with stored ones."""
        db = self._database()
        highest = max([-1] + [int(s.numbers[-1]) for s in self._tables.segments if len(s)]
                      + [int(v) for (v,) in db.execute("select max(number) from documents") if v is not None]
                      + [int(v) for (v,) in db.execute("select max(number) from removed") if v is not None])
        if int(self._meta("next_number")) <= highest:
            raise IndexFormatError(f"{self.location}: index metadata 'next_number' is below a stored document "
                                   "number; the index is damaged")
        names = [int(s.name[4:]) for s in self._tables.segments]
        if names and int(self._meta("next_segment")) <= max(names):
            raise IndexFormatError(f"{self.location}: index metadata 'next_segment' is below a listed segment; "
                                   "the index is damaged")

    @_database_errors
    def refresh(self) -> None:
        """Load the segment list if another process committed since we last looked."""
        for attempt in range(5):
            with self._transaction(read_only=True):
                try:
                    self._refresh_in_transaction()
                    return
                except _SegmentGone as err:
                    gone = err.args[0] if err.args else "?"
                    if attempt == 4:
                        raise IndexFormatError(f"{self.path}/{gone}: a segment the manifest lists is missing; "
                                          "the index is damaged") from None

    def _refresh_in_transaction(self) -> None:
        """Inside a read transaction: make the loaded segments those of its snapshot."""
        generation = int(self._meta("generation"))
        if generation == self._generation:
            return
        db = self._database()
        listed = db.execute("select name, documents, checksums from segments order by name").fetchall()
        removed = [n for (n,) in db.execute("select number from removed order by number")]
        if not all(isinstance(n, int) for n in removed):
            raise IndexFormatError(f"{self.location}: the list of removed documents is damaged")
        if _manifest_checksum(listed, removed) != self._meta("manifest_checksum"):
            raise IndexFormatError(f"{self.location}: the segment list or the list of removed documents does "
                                   "not match its checksum; the index is damaged")
        loaded = {segment.name: segment for segment in self._tables.segments}
        segments = []
        for name, count, sums in listed:
            name = check_segment_name(name, self.path)
            segment = loaded.get(name) or self._load_segment(name, sums)
            if not isinstance(count, int) or len(segment) != count:
                raise IndexFormatError(f"{self.path}/{name}: {len(segment)} documents, the manifest says {count}")
            segments.append(segment)
        self._tables.replace(segments, np.array(sorted(removed), dtype=np.int64))
        self._generation = generation

    def _load_segment(self, name: str, sums: Any) -> Segment:
        try:
            checksums = json.loads(sums)
        except (TypeError, ValueError):
            checksums = None
        if not isinstance(checksums, dict):
            raise IndexFormatError(f"{self.location}: the manifest entry of {name} is damaged")
        if checksums.get("config") != self._config_digest:
            raise IndexFormatError(f"{self.path}/{name}: built with another configuration than the index "
                                   "metadata says; the index is damaged")
        try:
            segment = load_segment(self.folder, name, checksums, self._verified)
        except FileNotFoundError:
            raise _SegmentGone(name) from None
        check_shapes(name, segment.arrays, self.config.num_perm, self._bands)
        return segment

    @_database_errors
    def verify(self) -> dict[str, Any]:
        """Check everything: the database's own integrity, every document row against its
        checksum, every segment file against the manifest, and that the segments list exactly
        the stored documents. Returns counts; raises IndexFormatError at the first damage."""
        db = self._database()
        result = db.execute("pragma integrity_check").fetchone()[0]
        if result != "ok":
            raise IndexFormatError(f"{self.location}: the database is damaged ({result})")
        documents = 0
        numbers, ids = [], []
        for row in db.execute("select number, id, metadata, text, spans, digest, size, paragraphs, checksum "
                              "from documents order by number"):
            _check_row(self.location, row)
            if row[3] is not None:
                _spans_of(self.location, row[1], row[4], _decompress(self.location, row[1], row[3]))
            numbers.append(int(row[0]))
            ids.append(row[1])
            documents += 1
        files = size = 0
        self._verified.clear()
        for name, _, sums in db.execute("select name, documents, checksums from segments").fetchall():
            segment = self._load_segment(check_segment_name(name, self.path), sums)
            files += len(segment.arrays)
            size += sum(a.nbytes for a in segment.arrays.values())
        self.refresh()
        live = self._tables.live_numbers()
        if not np.array_equal(np.sort(live), np.array(numbers, dtype=np.int64)):
            raise IndexFormatError(f"{self.location}: the segments and the document table disagree "
                                   f"({len(live):,} live documents in segments, {documents:,} stored)")
        _, listed = self._tables.numbers_of(id_hashes(ids))
        if not np.array_equal(np.sort(listed), np.array(numbers, dtype=np.int64)):
            raise IndexFormatError(f"{self.location}: the ids of the segments and of the document table disagree")
        return {"documents": documents, "segments": len(self._tables.segments), "files": files, "bytes": size}

    def close(self) -> None:
        if self._db is not None:
            if self.writable:
                try:
                    self._db.execute("pragma wal_checkpoint(truncate)")
                except sqlite3.DatabaseError as err:  # a reader holds the log; it is checkpointed later
                    log.debug("checkpoint skipped: %s", err)
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the Storage interface -----------------------------------------------------------------

    @_database_errors
    def __len__(self) -> int:
        """Live documents of the (verified) manifest: the segments' numbers less the removed ones."""
        if not self._reading:
            self.refresh()
        return self._tables.documents

    @_database_errors
    def number_of(self, id: str) -> int | None:
        return self._numbers_of([id]).get(id)

    @_database_errors
    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are indexed."""
        return set(self._numbers_of(list(ids)))

    def numbers(self) -> np.ndarray:
        """Every stored document's number, ascending (from the snapshot read, or the last commit)."""
        with self.reading():
            return self._tables.live_numbers()

    def _numbers_of(self, ids: list[str]) -> dict[str, int]:
        """The numbers of the indexed ``ids``, from the segments' (verified) id tables, each
        confirmed by the stored row's id — in one snapshot. An id the tables do not list is
        proven absent; a listed number without its row is damage."""
        with self.reading():
            rows, numbers = self._tables.numbers_of(id_hashes(ids))
            if len(rows) == 0:
                return {}
            stored = self._stored_ids(sorted(set(numbers.tolist())))
            found: dict[str, int] = {}
            for row, number in zip(rows.tolist(), numbers.tolist()):
                if number not in stored:
                    raise IndexFormatError(f"{self.location}: document number {number} is listed by the segments "
                                           "but missing from the database; the index is damaged")
                if stored[number] == ids[row]:
                    found[ids[row]] = number
                else:  # another id with the same 64-bit hash, unless the row is damaged
                    self.document(number)
            return found

    def _stored_ids(self, numbers: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for start in range(0, len(numbers), 500):
            chunk = numbers[start:start + 500]
            out.update(self._database().execute(
                f"select number, id from documents where number in ({','.join('?' * len(chunk))})", chunk).fetchall())
        return out

    @_database_errors
    def add(self, documents: Sequence[Document], fingerprints: Fingerprints,
            replacing: Sequence[int] = ()) -> np.ndarray:
        """Insert a batch, and remove the ``replacing`` numbers, in one transaction."""
        self._require_writable()
        if not self.keep_text and fingerprints.shingles is None:
            raise ValueError("an index without texts keeps shingles: fingerprint(..., shingles=True)")
        first = int(self._meta("next_number"))
        if first + len(documents) >= 2**31:
            raise IndexFormatError(f"{self.path}: more than 2^31 documents ever added; rebuild the index")
        numbers = np.arange(first, first + len(documents), dtype=np.int64)
        name = f"seg-{int(self._meta('next_segment')):06d}"
        # zlib releases the GIL: texts are compressed on other threads while the segment is built.
        with ThreadPoolExecutor(max_workers=_COMPRESS_THREADS) as pool:
            texts = [doc.text for doc in documents] if self.keep_text else []
            step = max(1, -(-len(texts) // _COMPRESS_THREADS))
            jobs = [pool.submit(_compress_texts, texts[i:i + step]) for i in range(0, len(texts), step)]
            arrays = build_arrays(fingerprints, numbers, self._bands, self.config, [doc.id for doc in documents])
            checksums = self._write_segment(name, arrays)
            compressed = [blob for job in jobs for blob in job.result()] if self.keep_text else [None] * len(documents)
        ends = np.concatenate(([0], np.cumsum(fingerprints.paragraph_sizes)))
        rows = [self._document_row(int(n), doc, fingerprints, i, compressed[i], ends)
                for i, (n, doc) in enumerate(zip(numbers, documents))]
        try:
            with self._transaction():
                db = self._database()
                self._delete(replacing)
                db.executemany("insert into documents values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                stored = db.execute("select count(*) from documents where number >= ? and number < ?",
                                    (first, first + len(documents))).fetchone()[0]
                if stored != len(documents):
                    raise IndexFormatError(f"{self.path}: {stored} of {len(documents)} documents were stored; "
                                           "the database does not behave as an index (nothing committed)")
                db.execute("insert into segments values (?, ?, ?)", (name, len(documents), json.dumps(checksums)))
                self._bump(next_number=first + len(documents), next_segment=int(name[4:]) + 1)
        except BaseException:
            self.folder.remove_segment(name)
            raise
        self.refresh()
        try:
            self._merge_tiers()
        except OSError as err:
            raise OSError(err.errno, f"{err.strerror or err} while merging segments (every batch so far is "
                                     "committed; the merge is tried again at the next write)", err.filename) from None
        return numbers

    def _document_row(self, number: int, doc: Document, prints: Fingerprints, row: int,
                      text: bytes | None, ends: np.ndarray) -> tuple[Any, ...]:
        rows = prints.paragraph_rows(row)
        packed = None if self.keep_text else _pack_shingles(prints, rows, ends)
        values = (number, doc.id, json.dumps(doc.metadata, ensure_ascii=False, default=str), text,
                  prints.paragraph_spans[rows].astype("<i8").tobytes(), prints.doc_digests[row].astype("<u8").tobytes(),
                  int(prints.doc_sizes[row]), packed)
        return values + (_row_checksum(values),)

    @_database_errors
    def remove(self, numbers: Sequence[int]) -> None:
        self._require_writable()
        if not len(numbers):
            return
        with self._transaction():
            self._delete(numbers)
            self._bump()
        self.refresh()

    def _delete(self, numbers: Sequence[int]) -> None:
        """Inside a write transaction: delete stored documents, and list them as removed for the
        segments that still hold them (numbers not stored are ignored)."""
        db = self._database()
        wanted = sorted({int(n) for n in numbers})
        stored: list[tuple[int]] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            stored += db.execute(f"select number from documents where number in ({','.join('?' * len(chunk))})",
                                 chunk).fetchall()
        db.executemany("delete from documents where number = ?", stored)
        db.executemany("insert or ignore into removed values (?)", stored)

    @_database_errors
    def document(self, number: int) -> StoredDocument:
        row = self._database().execute("select number, id, metadata, text, spans, digest, size, paragraphs, "
                                       "checksum from documents where number = ?", (int(number),)).fetchone()
        if row is None:
            raise KeyError(number)
        _check_row(self.location, row)
        _, id, metadata, text, spans, digest, size, _, _ = row
        words = np.frombuffer(digest, dtype="<u8")
        text = None if text is None else _decompress(self.location, id, text)
        return StoredDocument(int(number), id, text, json.loads(metadata),
                              np.array(_spans_of(self.location, id, spans, text), dtype=np.int64).reshape(-1, 2),
                              (int(words[0]), int(words[1])), int(size))

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A read transaction: every call inside sees one committed state of the index, also
        while another process removes and adds documents."""
        if self._reading:
            yield
            return
        with self._errors():
            self._begin_snapshot()
        self._reading = True
        try:
            yield
        finally:
            self._reading = False
            with self._errors():
                self._database().execute("commit")

    def _begin_snapshot(self) -> None:
        db = self._database()
        for attempt in range(5):
            db.execute("begin")
            try:
                self._refresh_in_transaction()
                return
            except _SegmentGone as err:
                db.execute("rollback")
                gone = err.args[0] if err.args else "?"
                if attempt == 4:
                    raise IndexFormatError(f"{self.path}/{gone}: a segment the manifest lists is missing; "
                                          "the index is damaged") from None
            except BaseException:
                db.execute("rollback")
                raise

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise
        except sqlite3.Error as err:
            raise _translated(err, self.location) from None

    @_database_errors
    def columns(self, numbers: np.ndarray) -> StoredColumns:
        """Verification columns of stored documents: shingles re-computed from the stored texts
        (or read from the stored shingles of an index without texts), cached."""
        numbers = np.asarray(numbers, dtype=np.int64)
        entries: dict[int, DocumentShingles] = {}
        missing = []
        for number in numbers.tolist():
            entry = self._columns_cache.peek(number)
            if entry is None:
                missing.append(number)
            else:
                entries[number] = entry
        for number, entry in self._load_columns(missing).items():
            self._columns_cache.put(number, entry)
            entries[number] = entry
        return columns_of(numbers, [entries[n] for n in numbers.tolist()])

    def _load_columns(self, numbers: list[int]) -> dict[int, DocumentShingles]:
        out: dict[int, DocumentShingles] = {}
        for start in range(0, len(numbers), 500):
            chunk = numbers[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._database().execute(
                f"select number, id, metadata, text, spans, digest, size, paragraphs, checksum from documents "
                f"where number in ({marks})", chunk).fetchall()
            found = {int(r[0]) for r in rows}
            lost = [n for n in chunk if n not in found]
            if lost:
                raise KeyError(lost[0])
            for row in rows:
                _check_row(self.location, row)
            if self.keep_text:
                texts = [_decompress(self.location, row[1], row[3]) for row in rows]
                documents = [Document._made(row[1], text, _spans_of(self.location, row[1], row[4], text), {})
                             for row, text in zip(rows, texts)]  # spans checked by _spans_of
                for row, entry in zip(rows, entries_of(fingerprint(documents, self.config, shingles=True))):
                    out[int(row[0])] = entry
            else:
                for row in rows:
                    spans = np.array(_spans_of(self.location, row[1], row[4], None), dtype=np.int64).reshape(-1, 2)
                    out[int(row[0])] = _unpack_shingles(self.location, row[1], row[7], spans,
                                                        np.frombuffer(row[5], dtype="<u8"))
        return out

    def article_signature(self, number: int) -> np.ndarray:
        signatures, _ = self._tables.article_summaries(np.array([number], dtype=np.int64))
        return np.asarray(signatures[0])

    def article_summaries(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._tables.article_summaries(numbers)

    @_database_errors
    def article_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self._reading:
            self.refresh()
        return self._tables.article_candidates(signatures)

    def paragraph_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._tables.paragraph_candidates(signatures)

    def paragraph_frequencies(self, digests: np.ndarray) -> np.ndarray:
        return self._tables.paragraph_frequencies(digests)

    # -- statistics --------------------------------------------------------------------------------

    @_database_errors
    def stats(self) -> dict[str, Any]:
        size = 0
        for root, _, files in os.walk(self.path):
            size += sum(os.lstat(os.path.join(root, f)).st_size for f in files)
        return {"path": str(self.path), "format_version": FORMAT_VERSION, "documents": len(self),
                "paragraphs": self._tables.paragraph_count(), "segments": len(self._tables.segments),
                "bytes_on_disk": size, "keep_text": self.keep_text, "config": json.loads(self.config.to_json()),
                "lsh": {"paragraph_bands_rows": list(self._bands.paragraph),
                        "article_bands_rows": list(self._bands.article)}}

    # -- writing segments --------------------------------------------------------------------------

    def _write_segment(self, name: str, arrays: dict[str, Any]) -> dict[str, Any]:
        try:
            checksums: dict[str, Any] = write_segment(self.folder, name, arrays)
        except BaseException:
            self.folder.remove_segment(f"{name}.tmp")
            raise
        checksums["config"] = self._config_digest
        # The checksums were computed over the very bytes this process wrote: reading them
        # back to compare would only re-read what was just written (a merge's worth of bytes).
        self._verified.add(name)
        return checksums

    def _merge_tiers(self) -> None:
        """Merge segments of similar size, MERGE_FANOUT at a time, so look-ups touch few segments."""
        while True:
            tiers: dict[int, list[Segment]] = {}
            for segment in self._tables.segments:
                tiers.setdefault(tier(len(segment), MERGE_FANOUT), []).append(segment)
            group = next((g for _, g in sorted(tiers.items()) if len(g) >= MERGE_FANOUT), None)
            if group is None:
                return
            self._merge(group)

    @_database_errors
    def _merge(self, group: list[Segment]) -> None:
        name = f"seg-{int(self._meta('next_segment')):06d}"
        removed = self._tables.removed
        checksums = self._write_segment(name, merged_arrays(group, removed, self._bands))
        merged_removed = np.intersect1d(removed, np.concatenate([s.numbers for s in group]))
        count = len(np.setdiff1d(np.concatenate([s.numbers for s in group]), removed))
        try:
            with self._transaction():
                db = self._database()
                db.executemany("delete from segments where name = ?", [(s.name,) for s in group])
                db.execute("insert into segments values (?, ?, ?)", (name, count, json.dumps(checksums)))
                db.executemany("delete from removed where number = ?", [(int(n),) for n in merged_removed])
                self._bump(next_segment=int(name[4:]) + 1)
        except BaseException:
            self.folder.remove_segment(name)
            raise
        for segment in group:
            self.folder.remove_segment(segment.name)
        self.refresh()

    # -- SQLite helpers ----------------------------------------------------------------------------

    def _database(self) -> sqlite3.Connection:
        if self._db is None:
            raise IndexFormatError(f"{self.path}: the index is closed")
        return self._db

    def _meta(self, key: str) -> str:
        row = self._database().execute("select value from meta where key = ?", (key,)).fetchone()
        if row is None:
            raise IndexFormatError(f"{self.location}: index metadata lacks {key!r}")
        value = row[0]
        if key in _COUNTERS and not _is_count(value):
            raise IndexFormatError(f"{self.location}: index metadata {key!r} is damaged")
        return str(value)

    def _bump(self, **values: Any) -> None:
        """Inside a write transaction, last: a new generation and the manifest's new checksum."""
        db = self._database()
        values["generation"] = int(self._meta("generation")) + 1
        listed = db.execute("select name, documents, checksums from segments order by name").fetchall()
        removed = [n for (n,) in db.execute("select number from removed order by number")]
        values["manifest_checksum"] = _manifest_checksum(listed, removed)
        db.executemany("update meta set value = ? where key = ?", [(str(v), k) for k, v in values.items()])
        if db.execute(f"select count(*) from meta where key in ({','.join('?' * len(values))})",
                      list(values)).fetchone()[0] != len(values):
            raise IndexFormatError(f"{self.location}: the index metadata lacks a counter; the index is damaged")

    def _transaction(self, read_only: bool = False) -> _Transaction:
        return _Transaction(self._database(), read_only)

    def _require_writable(self) -> None:
        if not self.writable:
            raise IndexLockedError(f"{self.path}: opened read-only")


class _Transaction:
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


def _row_checksum(values: Sequence[Any]) -> int:
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


def _check_row(path: object, row: Sequence[Any]) -> None:
    if _row_checksum(row[:8]) != row[8]:
        raise IndexFormatError(f"{path}: the stored document {row[1]!r} does not match its checksum; "
                               "the index is damaged")


def _is_count(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19


def _manifest_checksum(listed: Sequence[Sequence[Any]], removed: Sequence[int]) -> str:
    """xxh3 of the segment list (name, documents, checksums, in name order) and the removed numbers."""
    digest = xxhash.xxh3_64()
    for row in listed:
        for value in row:
            data = str(value).encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    digest.update(np.asarray(removed, dtype="<i8").tobytes())
    return digest.hexdigest()


def _meta_checksum(rows: dict[str, Any]) -> str:
    return xxhash.xxh3_64_hexdigest("\x00".join(str(rows.get(k, "")) for k in _IMMUTABLE_META).encode())


def _decompress(path: object, id: str, blob: bytes) -> str:
    try:
        return zlib.decompress(blob).decode("utf-8", "surrogatepass")
    except (zlib.error, UnicodeDecodeError) as err:
        raise IndexFormatError(f"{path}: the stored text of {id!r} is damaged ({err})") from None


def _spans_of(path: object, id: str, blob: bytes, text: str | None) -> tuple[tuple[int, int], ...]:
    """A stored document's paragraph spans, checked: pairs, in order, inside the text when it is kept."""
    if not isinstance(blob, bytes) or len(blob) % 16:
        raise IndexFormatError(f"{path}: the stored paragraph spans of {id!r} are damaged")
    spans = np.frombuffer(blob, dtype="<i8").reshape(-1, 2)
    try:  # as lists: a loop checks the few spans of a document faster than numpy
        return checked_spans(id, text if text is not None else "\x00" * int(spans.max(initial=0)), spans.tolist())
    except InputError as err:
        raise IndexFormatError(f"{path}: the stored paragraph spans of {id!r} are damaged ({err})") from None


def _compress_texts(texts: list[str]) -> list[bytes]:
    return [zlib.compress(text.encode("utf-8", "surrogatepass"), 6) for text in texts]


def _pack_shingles(prints: Fingerprints, rows: slice, ends: np.ndarray) -> bytes:
    """One document's verification columns, for indexes that keep no text (little-endian arrays)."""
    shingles = prints.shingles[int(ends[rows.start]):int(ends[rows.stop])]  # type: ignore[index]
    return b"".join([prints.paragraph_sizes[rows].astype("<i4").tobytes(),
                     prints.paragraph_words[rows].astype("<i4").tobytes(),
                     prints.paragraph_digests[rows].astype("<u8").tobytes(),
                     shingles.astype("<u4").tobytes()])


def _unpack_shingles(path: object, id: str, packed: bytes | None, spans: np.ndarray,
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


def _write_atomically(folder: IndexFolder, name: str, data: bytes) -> None:
    temporary, final = folder.entry(name + ".tmp"), folder.entry(name)
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)


__all__ = ["FORMAT_VERSION", "DiskStorage", "file_digest", "is_index", "is_segment_name"]
