"""A persistent index on disk: SQLite for documents and the segment list, immutable numpy segments for bands.

Why this design (measured by ``benchmarks/bench_band_store.py``): a corpus of 1M articles holds
~345M (band key, document) rows; SQLite stores them at ~0.6M rows/s and ~75 bytes a row, sorted
numpy segments at ~5M rows/s and 8 bytes a row, looked up for whole batches.

Layout of an index folder (:mod:`neardup.index.folder` lists and guards every entry)::

    neardup.sqlite   documents (id, metadata, compressed text, paragraph spans, a checksum per row),
                     segments (the manifest: names, checksums of every file), meta (format, config)
    config.json      the Config, for people; the copy in SQLite is the one checked
    write.lock       held with flock by the one writer
    seg-000001/      an immutable segment of .npy arrays (never pickled; :mod:`neardup.index.segments`)

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
* **its own files only** — see :mod:`neardup.index.folder`. Readers open the database read-only and
  never change it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from neardup.config import Config
from neardup.document import Document
from neardup.errors import ConfigError, IndexFormatError, IndexLockedError
from neardup.index.database import (
    FORMAT_VERSION,
    Catalog,
    Transaction,
    check_row,
    compress_texts,
    database_errors,
    decompress,
    manifest_checksum,
    pack_shingles,
    row_checksum,
    spans_of,
    translated,
    unpack_shingles,
)
from neardup.index.folder import DATABASE, IndexFolder, check_segment_name, is_segment_name
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
    next_merge,
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

#: Threads compressing a batch's texts beside the main thread.
_COMPRESS_THREADS = 2
#: Stored documents whose verification columns are kept in memory.
_COLUMNS_CACHE = 8192
def is_index(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is (or claims to be) a neardup index folder."""
    return IndexFolder(path).state() == "index"


class _SegmentGone(Exception):
    """A segment listed by the snapshot was deleted by a later merge: take a newer snapshot."""


class DiskStorage:
    """The :class:`~neardup.index.storage.Storage` interface over an index folder."""

    def __init__(self, path: str | os.PathLike[str], config: Config | None = None, *, writable: bool = False,
                 keep_text: bool = True, wait: float = 0.0) -> None:
        if config is not None and not isinstance(config, Config):
            raise ConfigError(f"config must be a neardup.Config, got {type(config).__name__}")
        self.folder = IndexFolder(path)
        self.path = self.folder.path
        self.location = str(self.path / DATABASE)
        self.writable = writable
        self._lock_fd: int | None = None
        self._catalog = Catalog(self.folder, writable)
        try:
            self._open(config, keep_text, wait)
        except sqlite3.Error as err:
            self.close()
            if isinstance(err, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
                raise
            raise translated(err, self.location) from None
        except BaseException:
            self.close()
            raise

    def _open(self, config: Config | None, keep_text: bool, wait: float) -> None:
        if self.writable:
            new = self.folder.prepare_for_writing()
            self._lock_fd = self.folder.lock(wait)
        else:
            self.folder.require_index()
            new = False
        self._catalog.open(new)
        self.config, self.keep_text = self._catalog.open_meta(config, keep_text)
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

    def _remove_orphans(self) -> None:
        """Segment folders the (verified) manifest does not list: a batch killed before its
        commit, or the inputs of a merge killed after it."""
        listed = {segment.name for segment in self._tables.segments}
        for name in self.folder.segment_entries():
            if name not in listed:
                self.folder.remove_segment(name)

    def _check_counters(self) -> None:
        """Before writing: new numbers and segment names must not collide with stored ones."""
        segments = self._tables.segments
        self._catalog.check_counters(max([-1] + [int(s.numbers[-1]) for s in segments if len(s)]),
                                     [s.name for s in segments])

    @database_errors
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
        if manifest_checksum(listed, removed) != self._meta("manifest_checksum"):
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

    @database_errors
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
            check_row(self.location, row)
            if row[3] is not None:
                spans_of(self.location, row[1], row[4], decompress(self.location, row[1], row[3]))
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
        self._catalog.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the Storage interface -----------------------------------------------------------------

    @database_errors
    def __len__(self) -> int:
        """Live documents of the (verified) manifest: the segments' numbers less the removed ones."""
        if not self._reading:
            self.refresh()
        return self._tables.documents

    @database_errors
    def number_of(self, id: str) -> int | None:
        return self._numbers_of([id]).get(id)

    @database_errors
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

    @database_errors
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
            jobs = [pool.submit(compress_texts, texts[i:i + step]) for i in range(0, len(texts), step)]
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
        packed = None if self.keep_text else pack_shingles(prints, rows, ends)
        values = (number, doc.id, json.dumps(doc.metadata, ensure_ascii=False, default=str), text,
                  prints.paragraph_spans[rows].astype("<i8").tobytes(), prints.doc_digests[row].astype("<u8").tobytes(),
                  int(prints.doc_sizes[row]), packed)
        return values + (row_checksum(values),)

    @database_errors
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

    @database_errors
    def document(self, number: int) -> StoredDocument:
        row = self._database().execute("select number, id, metadata, text, spans, digest, size, paragraphs, "
                                       "checksum from documents where number = ?", (int(number),)).fetchone()
        if row is None:
            raise KeyError(number)
        check_row(self.location, row)
        _, id, metadata, text, spans, digest, size, _, _ = row
        words = np.frombuffer(digest, dtype="<u8")
        text = None if text is None else decompress(self.location, id, text)
        return StoredDocument(int(number), id, text, json.loads(metadata),
                              np.array(spans_of(self.location, id, spans, text), dtype=np.int64).reshape(-1, 2),
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
            raise translated(err, self.location) from None

    @database_errors
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
                check_row(self.location, row)
            if self.keep_text:
                texts = [decompress(self.location, row[1], row[3]) for row in rows]
                documents = [Document._made(row[1], text, spans_of(self.location, row[1], row[4], text), {})
                             for row, text in zip(rows, texts)]  # spans checked by _spans_of
                for row, entry in zip(rows, entries_of(fingerprint(documents, self.config, shingles=True))):
                    out[int(row[0])] = entry
            else:
                for row in rows:
                    spans = np.array(spans_of(self.location, row[1], row[4], None), dtype=np.int64).reshape(-1, 2)
                    out[int(row[0])] = unpack_shingles(self.location, row[1], row[7], spans,
                                                        np.frombuffer(row[5], dtype="<u8"))
        return out

    def article_signature(self, number: int) -> np.ndarray:
        return self._tables.article_signature(number)

    def article_summaries(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._tables.article_summaries(numbers)

    @database_errors
    def article_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self._reading:
            self.refresh()
        return self._tables.article_candidates(signatures)

    def paragraph_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._tables.paragraph_candidates(signatures)

    def paragraph_frequencies(self, digests: np.ndarray) -> np.ndarray:
        return self._tables.paragraph_frequencies(digests)

    # -- statistics --------------------------------------------------------------------------------

    @database_errors
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
        """Merge segments of similar size (:func:`~neardup.index.segments.next_merge`)."""
        while (group := next_merge(self._tables.segments)) is not None:
            self._merge(group)

    @database_errors
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
        return self._catalog.database()

    def _meta(self, key: str) -> str:
        return self._catalog.meta(key)

    def _bump(self, **values: Any) -> None:
        self._catalog.bump(**values)

    def _transaction(self, read_only: bool = False) -> Transaction:
        return self._catalog.transaction(read_only)

    def _require_writable(self) -> None:
        if not self.writable:
            raise IndexLockedError(f"{self.path}: opened read-only")


__all__ = ["FORMAT_VERSION", "DiskStorage", "file_digest", "is_index", "is_segment_name"]
