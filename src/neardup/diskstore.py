"""A persistent index on disk: SQLite for documents and the segment list, immutable numpy segments for bands.

Why this design (measured by ``benchmarks/bench_band_store.py``): a corpus of
1M articles holds ~345M (band key, document) rows; SQLite stores them at
~0.6M rows/s and ~75 bytes a row, sorted numpy segments at ~5M rows/s and
12 bytes a row, looked up for whole batches with ``searchsorted``.

Layout of an index folder::

    neardup.sqlite   documents (id, metadata, compressed text, paragraph spans),
                     segments (the manifest: names, sizes, checksums), meta (format, config)
    config.json      the Config, for people; the copy in SQLite is the one checked
    write.lock       held with flock by the one writer
    seg-000001/      an immutable segment of .npy arrays (never pickled)

Crash safety: a segment is written to ``seg-N.tmp``, fsynced and renamed; it
exists for readers only once the SQLite transaction that lists it (with its
documents) commits. A kill at any moment leaves either the old state or the
new one; unlisted folders are removed when a writer next opens the index.
Readers never block the writer (SQLite WAL; segment files are immutable).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import sqlite3
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import xxhash

from .config import Config
from .document import Document
from .errors import ConfigError, IndexFormatError, IndexLockedError, InputError
from .fingerprint import Fingerprints, fingerprint
from .kernel import band_table_runs, count_equal, sorted_band_table
from .lsh import band_keys, band_matches, distinct_pairs, fold32
from .storage import DocumentShingles, LruCache, StoredColumns, StoredDocument, columns_of, entries_of, lsh_params

log = logging.getLogger(__name__)

#: 2: band tables as one sorted array of band-tagged keys; per-document sizes and article signatures.
#: 3: paragraph digests are shingles.form_digests of the matching form (were xxh3-64); band tables
#:    hold 32-bit keys, band after band, each band as wide as the table's rows (no band tag).
#: 4: an index without texts keeps each document's shingle sequence (exact verification), not
#:    its paragraph signatures.
FORMAT_VERSION = 4
DATABASE = "neardup.sqlite"
#: Segments of one size tier merged together once there are this many.
MERGE_FANOUT = 4
#: Article signatures copied per step of a merge (64k × 512 bytes at 128 permutations).
_MERGE_CHUNK = 1 << 16
_SEGMENT_FILES = ("numbers", "sizes", "article_signatures", "article_keys", "article_items", "paragraph_keys",
                  "paragraph_items", "paragraph_digests", "paragraph_digest_owners")
_SCHEMA = """
create table if not exists meta(key text primary key, value text not null);
create table if not exists segments(name text primary key, documents integer not null,
                                    checksums text not null);
create table if not exists documents(number integer primary key, id text not null unique,
    metadata text not null, text blob, spans blob not null, digest blob not null, size integer not null,
    paragraphs blob);
create table if not exists removed(number integer primary key);
"""


@dataclass(frozen=True)
class _Segment:
    name: str
    arrays: dict[str, np.ndarray]

    @property
    def numbers(self) -> np.ndarray:
        return self.arrays["numbers"]


class DiskStorage:
    """The :class:`~neardup.storage.Storage` interface over an index folder."""

    def __init__(self, path: str | os.PathLike[str], config: Config | None = None, *, writable: bool = False,
                 keep_text: bool = True, wait: float = 0.0) -> None:
        self.path = Path(path)
        self.writable = writable
        self._lock_handle: Any = None
        database = self.path / DATABASE
        if not database.exists():
            if not writable:
                raise InputError(f"{self.path}: not a neardup index (create one with 'neardup index')")
            self.path.mkdir(parents=True, exist_ok=True)
        if writable:
            self._lock(wait)
        self._db = sqlite3.connect(database, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=full")
        self.config, self.keep_text = self._open_meta(config, keep_text)
        self.needs_shingles = not self.keep_text
        (self._pb, self._pr), (self._ab, self._ar) = lsh_params(self.config)
        self._generation = -1
        self._segments: list[_Segment] = []
        self._removed = np.zeros(0, np.int64)
        # Numbers are never reused, so a cached document stays right for as long as it exists.
        self._columns_cache: LruCache[int, DocumentShingles] = LruCache(_COLUMNS_CACHE)
        self._reading = False
        if writable:
            self._remove_orphans()
        self.refresh()

    # -- opening ---------------------------------------------------------------------------------

    def _lock(self, wait: float) -> None:
        handle = open(self.path / "write.lock", "a+")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise IndexLockedError(f"{self.path}: another process is writing to this index "
                                           f"(retry later, or pass a longer wait)") from None
                time.sleep(0.1)
        self._lock_handle = handle

    def _open_meta(self, config: Config | None, keep_text: bool) -> tuple[Config, bool]:
        if self.writable:
            self._db.executescript(_SCHEMA)
        try:
            rows = dict(self._db.execute("select key, value from meta").fetchall())
        except sqlite3.DatabaseError as err:
            raise IndexFormatError(f"{self.path}: not a readable neardup index ({err})") from None
        if not rows:
            if not self.writable:
                raise IndexFormatError(f"{self.path}: index has no metadata")
            return self._create_meta(config or Config(), keep_text), keep_text
        if int(rows.get("format_version", -1)) != FORMAT_VERSION:
            raise IndexFormatError(f"{self.path}: index format {rows.get('format_version')} is not "
                                   f"{FORMAT_VERSION}; rebuild it with this version of neardup")
        stored = Config.from_json(rows["config"])
        if config is not None:
            stored.check_compatible(config)
            if lsh_params(config) != lsh_params(stored):
                raise ConfigError(f"{self.path}: index was built with LSH bands/rows {lsh_params(stored)}, "
                                  f"not {lsh_params(config)}")
            stored = config
        return stored, rows.get("keep_text", "1") == "1"

    def _create_meta(self, config: Config, keep_text: bool) -> Config:
        with self._transaction():
            self._db.executemany("insert into meta values (?, ?)", [
                ("format_version", str(FORMAT_VERSION)), ("config", config.to_json()),
                ("keep_text", "1" if keep_text else "0"), ("generation", "0"), ("next_number", "0"),
                ("next_segment", "1")])
        _write_atomically(self.path / "config.json", config.to_json().encode())
        return config

    def _remove_orphans(self) -> None:
        listed = {name for (name,) in self._db.execute("select name from segments")}
        for entry in self.path.glob("seg-*"):
            if entry.is_dir() and entry.name not in listed:
                shutil.rmtree(entry, ignore_errors=True)

    def refresh(self) -> None:
        """Load the segment list if another process committed since we last looked."""
        for attempt in range(5):
            with self._transaction(read_only=True):
                try:
                    self._refresh_in_transaction()
                    return
                except _SegmentGone:
                    if attempt == 4:
                        raise IndexFormatError(f"{self.path}: a listed segment is missing") from None

    def _refresh_in_transaction(self) -> None:
        """Inside a read transaction: make the loaded segments those of its snapshot."""
        generation = int(self._meta("generation"))
        if generation == self._generation:
            return
        listed = self._db.execute("select name, checksums from segments order by name").fetchall()
        removed = [n for (n,) in self._db.execute("select number from removed")]
        try:
            segments = [self._load_segment(name, json.loads(sums)) for name, sums in listed]
        except FileNotFoundError:
            raise _SegmentGone() from None
        self._segments = segments
        self._removed = np.array(sorted(removed), dtype=np.int64)
        self._generation = generation

    def _load_segment(self, name: str, checksums: dict[str, Any]) -> _Segment:
        arrays = {}
        for key in _SEGMENT_FILES:
            path = self.path / name / f"{key}.npy"
            try:
                # a plain ndarray view of the mapping: memmap's Python-level wrappers cost more than the look-ups
                arrays[key] = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
            except FileNotFoundError:
                raise
            except (ValueError, OSError) as err:
                raise IndexFormatError(f"{path}: damaged segment file ({err})") from None
            if path.stat().st_size != checksums[key][1]:
                raise IndexFormatError(f"{path}: size differs from the manifest; the index is damaged")
        _check_shapes(name, arrays, self.config.num_perm, self._ab, self._pb)
        return _Segment(name, arrays)

    def verify(self) -> None:
        """Read every segment file and compare its checksum with the manifest."""
        for name, sums in self._db.execute("select name, checksums from segments"):
            for key, (digest, _) in json.loads(sums).items():
                path = self.path / name / f"{key}.npy"
                if _file_digest(path) != digest:
                    raise IndexFormatError(f"{path}: checksum mismatch; the index is damaged")

    def close(self) -> None:
        if self.writable:
            try:
                self._db.execute("pragma wal_checkpoint(truncate)")
            except sqlite3.DatabaseError as err:  # a reader holds the log; it is checkpointed later
                log.debug("checkpoint skipped: %s", err)
        self._db.close()
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    # -- the Storage interface -----------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._db.execute("select count(*) from documents").fetchone()[0])

    def number_of(self, id: str) -> int | None:
        row = self._db.execute("select number from documents where id = ?", (id,)).fetchone()
        return None if row is None else int(row[0])

    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are indexed: one query per 500 ids instead of one per id."""
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self._db.execute(f"select id from documents where id in ({marks})", chunk))
        return found

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
            arrays = _segment_arrays(fingerprints, numbers, self._ab, self._ar, self._pb, self._pr, self.config)
            checksums = self._write_segment(name, arrays)
            compressed = [blob for job in jobs for blob in job.result()] if self.keep_text else [None] * len(documents)
        ends = np.concatenate(([0], np.cumsum(fingerprints.paragraph_sizes)))
        rows = [self._document_row(int(n), doc, fingerprints, i, compressed[i], ends)
                for i, (n, doc) in enumerate(zip(numbers, documents))]
        gone = [(int(n),) for n in replacing]
        with self._transaction():
            self._db.executemany("delete from documents where number = ?", gone)
            self._db.executemany("insert or ignore into removed values (?)", gone)
            self._db.executemany("insert into documents values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("insert into segments values (?, ?, ?)", (name, len(documents), json.dumps(checksums)))
            self._bump(next_number=first + len(documents), next_segment=int(name[4:]) + 1)
        self.refresh()
        self._merge_tiers()
        return numbers

    def _document_row(self, number: int, doc: Document, prints: Fingerprints, row: int,
                      text: bytes | None, ends: np.ndarray) -> tuple[Any, ...]:
        rows = prints.paragraph_rows(row)
        packed = None if self.keep_text else _pack_shingles(prints, rows, ends)
        digest = prints.doc_digests[row].astype("<u8").tobytes()
        return (number, doc.id, json.dumps(doc.metadata, ensure_ascii=False, default=str), text,
                prints.paragraph_spans[rows].astype("<i8").tobytes(), digest, int(prints.doc_sizes[row]), packed)

    def remove(self, numbers: Sequence[int]) -> None:
        self._require_writable()
        gone = [(int(n),) for n in numbers]
        if not gone:
            return
        with self._transaction():
            self._db.executemany("delete from documents where number = ?", gone)
            self._db.executemany("insert or ignore into removed values (?)", gone)
            self._bump()
        self.refresh()

    def document(self, number: int) -> StoredDocument:
        row = self._db.execute("select id, metadata, text, spans, digest, size from documents where number = ?",
                               (int(number),)).fetchone()
        if row is None:
            raise KeyError(number)
        id, metadata, text, spans, digest, size = row
        words = np.frombuffer(digest, dtype="<u8")
        return StoredDocument(int(number), id,
                              None if text is None else zlib.decompress(text).decode("utf-8", "surrogatepass"),
                              json.loads(metadata), np.frombuffer(spans, dtype="<i8").reshape(-1, 2).astype(np.int64),
                              (int(words[0]), int(words[1])), int(size))

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A read transaction: every call inside sees one committed state of the index, also
        while another process removes and adds documents."""
        if self._reading:
            yield
            return
        for attempt in range(5):
            self._db.execute("begin")
            try:
                self._refresh_in_transaction()
                break
            except _SegmentGone:
                self._db.execute("rollback")
                if attempt == 4:
                    raise IndexFormatError(f"{self.path}: a listed segment is missing") from None
        self._reading = True
        try:
            yield
        finally:
            self._reading = False
            self._db.execute("commit")

    def article_signature(self, number: int) -> np.ndarray:
        signatures, _ = self.article_summaries(np.array([number], dtype=np.int64))
        return signatures[0]

    def article_summaries(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Article signatures and shingle counts of many documents, gathered from the segments."""
        signatures = np.zeros((len(numbers), self.config.num_perm), dtype=np.uint32)
        sizes = np.full(len(numbers), -1, dtype=np.int64)
        for segment in self._segments:
            rows = np.minimum(np.searchsorted(segment.numbers, numbers), len(segment.numbers) - 1)
            found = segment.numbers[rows] == numbers if len(segment.numbers) else np.zeros(len(numbers), bool)
            signatures[found] = segment.arrays["article_signatures"][rows[found]]
            sizes[found] = segment.arrays["sizes"][rows[found]]
        if (sizes < 0).any():
            raise KeyError(int(numbers[np.argmax(sizes < 0)]))
        return signatures, sizes

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
            rows = self._db.execute(f"select number, id, text, spans, paragraphs, digest from documents "
                                    f"where number in ({marks})", chunk).fetchall()
            found = {int(r[0]) for r in rows}
            lost = [n for n in chunk if n not in found]
            if lost:
                raise KeyError(lost[0])
            if self.keep_text:
                documents = [Document(id, zlib.decompress(text).decode("utf-8", "surrogatepass"),
                                      tuple(map(tuple, np.frombuffer(spans, dtype="<i8").reshape(-1, 2).tolist())))
                             for _, id, text, spans, _, _ in rows]
                for (number, *_), entry in zip(rows, entries_of(fingerprint(documents, self.config, shingles=True))):
                    out[int(number)] = entry
            else:
                for number, _, _, spans, packed, digest in rows:
                    out[int(number)] = _unpack_shingles(packed, np.frombuffer(spans, dtype="<i8").reshape(-1, 2),
                                                        np.frombuffer(digest, dtype="<u8"))
        return out

    def article_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self._reading:
            self.refresh()
        keys = fold32(band_keys(signatures, self._ab, self._ar))
        return self._candidates(keys, "article")

    def paragraph_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = fold32(band_keys(signatures, self._pb, self._pr))
        return self._candidates(keys, "paragraph")

    def _candidates(self, keys: np.ndarray, level: str) -> tuple[np.ndarray, np.ndarray]:
        """Every band of every query looked up at once in each segment."""
        bands = keys.shape[1]
        flat = _band_tagged(keys).ravel()
        order = np.argsort(flat)  # sorted needles walk each table in order
        needles = flat[order]
        rows, items = [], []
        for segment in self._segments:
            table = segment.arrays[f"{level}_keys"]
            runs = band_table_runs(table, bands, needles)
            r, i = band_matches(table, segment.arrays[f"{level}_items"], needles, runs)
            rows.append(order[r] // bands)
            items.append(i)
        return distinct_pairs(rows, items, self._removed)

    def paragraph_frequencies(self, digests: np.ndarray) -> np.ndarray:
        counts = np.zeros(len(digests), dtype=np.int64)
        for segment in self._segments:
            table = segment.arrays["paragraph_digests"]
            counts += count_equal(table, digests)
        return counts

    # -- statistics --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        paragraphs = sum(len(s.arrays["paragraph_digest_owners"]) for s in self._segments)
        size = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        return {"path": str(self.path), "format_version": FORMAT_VERSION, "documents": len(self),
                "paragraphs": paragraphs, "segments": len(self._segments), "bytes_on_disk": size,
                "keep_text": self.keep_text, "config": json.loads(self.config.to_json()),
                "lsh": {"paragraph_bands_rows": [self._pb, self._pr], "article_bands_rows": [self._ab, self._ar]}}

    # -- writing segments --------------------------------------------------------------------------

    def _write_segment(self, name: str, arrays: dict[str, Any]) -> dict[str, list[Any]]:
        """Write a segment folder; a value is an array, or a function that writes the file at a path."""
        temporary, final = self.path / f"{name}.tmp", self.path / name
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        checksums = {}
        for key in _SEGMENT_FILES:
            path = temporary / f"{key}.npy"
            value = arrays[key]
            if callable(value):
                value(path)
            else:
                with open(path, "wb") as handle:
                    np.save(handle, np.ascontiguousarray(value), allow_pickle=False)
            _fsync_file(path)
            checksums[key] = [_file_digest(path), path.stat().st_size]
        _fsync_dir(temporary)
        os.rename(temporary, final)
        _fsync_dir(self.path)
        return checksums

    def _merge_tiers(self) -> None:
        """Merge segments of similar size, MERGE_FANOUT at a time, so look-ups touch few segments."""
        while True:
            tiers: dict[int, list[_Segment]] = {}
            for segment in self._segments:
                tiers.setdefault(_tier(len(segment.numbers)), []).append(segment)
            group = next((g for _, g in sorted(tiers.items()) if len(g) >= MERGE_FANOUT), None)
            if group is None:
                return
            self._merge(group)

    def _merge(self, group: list[_Segment]) -> None:
        name = f"seg-{int(self._meta('next_segment')):06d}"
        arrays = _merged_arrays(group, self._removed, self._ab, self._pb)
        checksums = self._write_segment(name, arrays)
        merged_removed = np.intersect1d(self._removed, np.concatenate([s.numbers for s in group]))
        with self._transaction():
            self._db.executemany("delete from segments where name = ?", [(s.name,) for s in group])
            self._db.execute("insert into segments values (?, ?, ?)",
                             (name, int(len(arrays["numbers"])), json.dumps(checksums)))
            self._db.executemany("delete from removed where number = ?", [(int(n),) for n in merged_removed])
            self._bump(next_segment=int(name[4:]) + 1)
        for segment in group:
            shutil.rmtree(self.path / segment.name, ignore_errors=True)
        self.refresh()

    # -- SQLite helpers ----------------------------------------------------------------------------

    def _meta(self, key: str) -> str:
        row = self._db.execute("select value from meta where key = ?", (key,)).fetchone()
        if row is None:
            raise IndexFormatError(f"{self.path}: index metadata lacks {key!r}")
        return str(row[0])

    def _bump(self, **values: int) -> None:
        values["generation"] = int(self._meta("generation")) + 1
        self._db.executemany("update meta set value = ? where key = ?", [(str(v), k) for k, v in values.items()])

    def _transaction(self, read_only: bool = False) -> "_Transaction":
        return _Transaction(self._db, read_only)

    def _require_writable(self) -> None:
        if not self.writable:
            raise IndexLockedError(f"{self.path}: opened read-only")


class _Transaction:
    def __init__(self, db: sqlite3.Connection, read_only: bool) -> None:
        self.db, self.read_only = db, read_only

    def __enter__(self) -> None:
        self.db.execute("begin" if self.read_only else "begin immediate")

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self.db.execute("commit" if kind is None else "rollback")


#: Threads compressing a batch's texts beside the main thread.
_COMPRESS_THREADS = 2
#: Stored documents whose verification columns are kept in memory.
_COLUMNS_CACHE = 8192


class _SegmentGone(Exception):
    """A segment listed by the snapshot was deleted by a later merge: take a newer snapshot."""


def _compress_texts(texts: list[str]) -> list[bytes]:
    return [zlib.compress(text.encode("utf-8", "surrogatepass"), 6) for text in texts]


def _segment_arrays(prints: Fingerprints, numbers: np.ndarray, ab: int, ar: int, pb: int, pr: int,
                    config: Config) -> dict[str, np.ndarray]:
    owners = np.repeat(numbers, np.diff(prints.doc_offsets))
    searchable = (prints.paragraph_sizes > 0) & (prints.paragraph_words >= config.min_paragraph_words)
    article_keys, article_items = sorted_band_table(prints.doc_signatures, ab, ar, numbers)
    paragraph_keys, paragraph_items = sorted_band_table(prints.paragraph_signatures[searchable], pb, pr,
                                                        owners[searchable])
    digests, digest_owners = _unique_per_document(prints.paragraph_digests, owners)
    return {"numbers": numbers, "sizes": prints.doc_sizes.astype(np.int32),
            "article_signatures": prints.doc_signatures, "article_keys": article_keys,
            "article_items": article_items, "paragraph_keys": paragraph_keys, "paragraph_items": paragraph_items,
            "paragraph_digests": digests, "paragraph_digest_owners": digest_owners}


def _band_tagged(keys: np.ndarray) -> np.ndarray:
    """(n, bands) 32-bit band keys tagged with their band in the high 32 bits: one sorted order for all bands."""
    bands = np.arange(keys.shape[1], dtype=np.uint64) << np.uint64(32)
    return bands[None, :] | keys.astype(np.uint64)


def _unique_per_document(digests: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paragraph digests, once per document, sorted: their counts are document frequencies."""
    order = np.lexsort((owners, digests))
    digests, owners = digests[order], owners[order]
    first = np.ones(len(digests), dtype=bool)
    first[1:] = (digests[1:] != digests[:-1]) | (owners[1:] != owners[:-1])
    return digests[first].astype(np.uint64), owners[first].astype(np.int64)


def _merged_arrays(group: list[_Segment], removed: np.ndarray, article_bands: int,
                   paragraph_bands: int) -> dict[str, Any]:
    """The arrays of one segment replacing ``group``, without removed documents.

    Band tables are merged one band at a time into memory-mapped output files,
    so memory stays bounded by one band of the merged segment.
    """
    group = sorted(group, key=lambda segment: int(segment.numbers[0]) if len(segment.numbers) else 0)
    numbers = np.concatenate([s.numbers for s in group])
    keep = ~np.isin(numbers, removed)
    sizes = np.concatenate([s.arrays["sizes"] for s in group])
    # rows of the concatenated segments, in document-number order (number ranges of merged segments of
    # different tiers can interleave), without removed documents
    rows = np.flatnonzero(keep)[np.argsort(numbers[keep])]
    out: dict[str, Any] = {"numbers": numbers[rows], "sizes": sizes[rows],
                           "article_signatures": _signature_merger(group, rows)}
    for level, bands in (("article", article_bands), ("paragraph", paragraph_bands)):
        keys_writer, items_writer = _band_merger(group, level, bands, removed)
        out[f"{level}_keys"], out[f"{level}_items"] = keys_writer, items_writer
    digests = np.concatenate([s.arrays["paragraph_digests"] for s in group])
    owners = np.concatenate([s.arrays["paragraph_digest_owners"] for s in group])
    alive = ~np.isin(owners, removed)
    order3 = np.argsort(digests[alive])
    out["paragraph_digests"], out["paragraph_digest_owners"] = digests[alive][order3], owners[alive][order3]
    return out


def _signature_merger(group: list[_Segment], rows: np.ndarray) -> Any:
    """A writer gathering article signatures by row of the concatenated segments, a chunk at a time,
    into the output mapping: memory stays at one chunk whatever the segments' sizes."""
    starts = np.cumsum([0] + [len(segment.numbers) for segment in group])

    def write(path: Path) -> None:
        width = group[0].arrays["article_signatures"].shape[1]
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint32, shape=(len(rows), width))
        for lo in range(0, len(rows), _MERGE_CHUNK):
            chunk = rows[lo:lo + _MERGE_CHUNK]
            owner = np.searchsorted(starts, chunk, "right") - 1
            for index in np.unique(owner):
                picked = owner == index
                out[lo:lo + len(chunk)][picked] = group[index].arrays["article_signatures"][
                    chunk[picked] - starts[index]]
        out.flush()
        del out
    return write


def _band_merger(group: list[_Segment], level: str, bands: int, removed: np.ndarray) -> tuple[Any, Any]:
    """Two writers (keys, items) that merge the group's band tables one band at a time.

    Memory stays bounded by one band of the merged table; the keys writer
    computes each merged band and keeps it for the items writer.
    """
    tables = [(s.arrays[f"{level}_keys"], s.arrays[f"{level}_items"]) for s in group]

    def band(b: int) -> tuple[np.ndarray, np.ndarray]:
        keys, items = [], []
        for table_keys, table_items in tables:
            width = len(table_keys) // bands
            keys.append(table_keys[b * width:(b + 1) * width])
            items.append(table_items[b * width:(b + 1) * width])
        merged_keys, merged_items = np.concatenate(keys), np.concatenate(items)
        if len(removed):
            alive = ~np.isin(merged_items, removed)
            merged_keys, merged_items = merged_keys[alive], merged_items[alive]
        order = np.argsort(merged_keys, kind="stable")  # sorted runs, one per segment: a fast merge
        return merged_keys[order], merged_items[order]

    merged: list[np.ndarray] = []

    def write_keys(path: Path) -> None:
        # A removed document leaves every band alike, so each merged band has the first one's width.
        width = len(band(0)[0]) if len(removed) else sum(len(k) // bands for k, _ in tables)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint32, shape=(bands * width,))
        items = np.lib.format.open_memmap(str(path) + ".items", mode="w+", dtype=np.int32, shape=(bands * width,))
        for b in range(bands):
            keys, owners = band(b)
            if len(keys) != width:
                raise IndexFormatError(f"{level} band {b} has {len(keys)} entries, band 0 has {width}")
            out[b * width:(b + 1) * width] = keys
            items[b * width:(b + 1) * width] = owners
        out.flush()
        items.flush()
        merged.append(items)
        del out

    def write_items(path: Path) -> None:
        merged.clear()
        os.replace(str(path).replace("_items.npy", "_keys.npy") + ".items", path)

    return write_keys, write_items


def _check_shapes(name: str, arrays: dict[str, np.ndarray], num_perm: int, ab: int, pb: int) -> None:
    n = len(arrays["numbers"])
    if arrays["article_signatures"].shape != (n, num_perm) or arrays["sizes"].shape != (n,):
        raise IndexFormatError(f"{name}/article_signatures.npy has shape {arrays['article_signatures'].shape}")
    if arrays["article_keys"].shape != (ab * n,) or arrays["article_items"].shape != (ab * n,):
        raise IndexFormatError(f"{name}: article band table has {arrays['article_keys'].shape} entries, "
                               f"expected {ab * n}")
    keys = arrays["paragraph_keys"]
    if keys.ndim != 1 or keys.shape != arrays["paragraph_items"].shape or len(keys) % pb:
        raise IndexFormatError(f"{name}: paragraph band tables are inconsistent")
    for level in ("article", "paragraph"):
        if arrays[f"{level}_keys"].dtype != np.uint32 or arrays[f"{level}_items"].dtype != np.int32:
            raise IndexFormatError(f"{name}: {level} band table has types {arrays[f'{level}_keys'].dtype}, "
                                   f"{arrays[f'{level}_items'].dtype}; expected uint32, int32")


def _pack_shingles(prints: Fingerprints, rows: slice, ends: np.ndarray) -> bytes:
    """One document's verification columns, for indexes that keep no text (little-endian arrays)."""
    shingles = prints.shingles[int(ends[rows.start]):int(ends[rows.stop])]  # type: ignore[index]
    return b"".join([prints.paragraph_sizes[rows].astype("<i4").tobytes(),
                     prints.paragraph_words[rows].astype("<i4").tobytes(),
                     prints.paragraph_digests[rows].astype("<u8").tobytes(),
                     shingles.astype("<u4").tobytes()])


def _unpack_shingles(packed: bytes, spans: np.ndarray, digest: np.ndarray) -> DocumentShingles:
    n = len(spans)
    if len(packed) < 16 * n:
        raise IndexFormatError("stored shingles are shorter than their paragraph list; the index is damaged")
    sizes = np.frombuffer(packed, "<i4", n, 0).astype(np.int64)
    words = np.frombuffer(packed, "<i4", n, 4 * n).astype(np.int64)
    digests = np.frombuffer(packed, "<u8", n, 8 * n).astype(np.uint64)
    count = (len(packed) - 16 * n) // 4
    if count != int(sizes.sum()) or (sizes < 0).any():
        raise IndexFormatError("stored shingles do not match their paragraph sizes; the index is damaged")
    hashes = np.frombuffer(packed, "<u4", count, 16 * n).astype(np.uint32)
    return DocumentShingles(hashes, sizes, words, digests, spans.astype(np.int64), (int(digest[0]), int(digest[1])))


def _tier(documents: int) -> int:
    return int(math.log(max(documents, 1), MERGE_FANOUT))


def _file_digest(path: Path) -> str:
    digest = xxhash.xxh3_64()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)
