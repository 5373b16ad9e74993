"""Segments: the band tables and per-document arrays of a batch of documents, and every look-up on them.

A segment is eleven arrays (``SEGMENT_FILES``) built from one batch's fingerprints: document
numbers, sizes and article signatures; article and paragraph band tables (each band's 32-bit
keys with their documents, sorted, band after band); paragraph digests with their documents,
sorted (their counts are document frequencies); the xxh3 hashes of the documents' ids with
their numbers, sorted (which ids are indexed, proven by checksummed bytes rather than by an
SQLite index nobody verifies). :class:`Tables` answers every look-up the index
makes over a list of segments and the numbers removed since they were written — the in-memory
and the on-disk stores use it alike, so they cannot answer differently.

On disk a segment is a folder of ``.npy`` files (never pickled), written through a temporary
folder, each file's xxh3 checksum computed as it is written and verified when it is first read
in a process. Merges stream band by band into ordinary writes: a full disk is an error, never a
``SIGBUS`` from a memory map.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from neardup.arrays import ranges
from neardup.config import FINGERPRINT_FIELDS, Config
from neardup.errors import IndexFormatError
from neardup.index.folder import IndexFolder
from neardup.match import candidates
from neardup.records import Fingerprints
from neardup.sketch.kernel import band_table_runs, count_equal, sorted_band_table
from neardup.sketch.lsh import Bands, band_keys, band_matches, distinct_pairs, fold32

#: Segments of one size tier merged together once there are this many.
MERGE_FANOUT = 4
SEGMENT_FILES = ("numbers", "sizes", "article_signatures", "article_keys", "article_items", "paragraph_keys",
                 "paragraph_items", "paragraph_digests", "paragraph_digest_owners", "id_hashes", "id_numbers")
#: Rows copied per step of a merge.
_CHUNK = 1 << 16
_READ_BLOCK = 8 << 20


@dataclass(frozen=True)
class Streamed:
    """An array written chunk by chunk (a merge result too large to hold)."""

    dtype: Any
    shape: tuple[int, ...]
    chunks: Iterable[np.ndarray]


@dataclass(frozen=True)
class StreamedPair:
    """Two arrays of one length written together, chunk by chunk (band keys and their items)."""

    names: tuple[str, str]
    dtypes: tuple[Any, Any]
    length: int
    chunks: Iterable[tuple[np.ndarray, np.ndarray]]


ArrayValue = np.ndarray | Streamed | StreamedPair | None


@dataclass
class Segment:
    name: str
    arrays: dict[str, np.ndarray]

    @property
    def numbers(self) -> np.ndarray:
        return self.arrays["numbers"]

    def __len__(self) -> int:
        return len(self.arrays["numbers"])


def config_digest(config: Config, bands: Bands) -> str:
    """A digest of what makes a segment's arrays comparable: fingerprint fields and LSH bands
    (the bytes hashed are fixed: indexes written before must keep their digest)."""
    values = [getattr(config, name) for name in FINGERPRINT_FIELDS] + list(bands.digest_values())
    return xxhash.xxh3_64_hexdigest(repr(values).encode())


def id_hashes(ids: Sequence[str]) -> np.ndarray:
    """xxh3-64 of each id (UTF-8, lone surrogates kept)."""
    return np.fromiter((xxhash.xxh3_64_intdigest(id.encode("utf-8", "surrogatepass")) for id in ids),
                       dtype=np.uint64, count=len(ids))


def build_arrays(prints: Fingerprints, numbers: np.ndarray, bands: Bands, config: Config,
                 ids: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays of one segment holding a fingerprinted batch (numbers ascending) of these ids."""
    (ab, ar), (pb, pr) = bands.article, bands.paragraph
    owners = np.repeat(numbers, np.diff(prints.doc_offsets))
    searchable = _first_of_each_form(owners, prints.paragraph_digests,
                                     candidates.searchable(prints.paragraph_sizes, prints.paragraph_words, config))
    article_keys, article_items = sorted_band_table(prints.doc_signatures, ab, ar, numbers)
    paragraph_keys, paragraph_items = sorted_band_table(prints.paragraph_signatures[searchable], pb, pr,
                                                        owners[searchable])
    digests, digest_owners = _unique_per_document(prints.paragraph_digests, owners)
    hashes = id_hashes(ids)
    order = np.argsort(hashes, kind="stable")
    return {"id_hashes": hashes[order], "id_numbers": numbers[order].astype(np.int64),
            "numbers": numbers.astype(np.int64), "sizes": prints.doc_sizes.astype(np.int32),
            "article_signatures": np.ascontiguousarray(prints.doc_signatures, dtype=np.uint32),
            "article_keys": article_keys, "article_items": article_items, "paragraph_keys": paragraph_keys,
            "paragraph_items": paragraph_items, "paragraph_digests": digests, "paragraph_digest_owners": digest_owners}


def _first_of_each_form(owners: np.ndarray, digests: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask`` with a document's repeats of one paragraph (same digest) left out: they would add the
    same band keys again, and a look-up would meet every repeat."""
    rows = np.flatnonzero(mask)
    keys = np.column_stack((owners[rows].astype(np.uint64), digests[rows]))
    _, first = np.unique(keys, axis=0, return_index=True) if len(rows) else (None, np.zeros(0, np.int64))
    out = np.zeros(len(mask), dtype=bool)
    out[rows[first]] = True
    return out


def _unique_per_document(digests: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paragraph digests, once per document, sorted: their counts are document frequencies."""
    order = np.lexsort((owners, digests))
    digests, owners = digests[order], owners[order]
    first = np.ones(len(digests), dtype=bool)
    first[1:] = (digests[1:] != digests[:-1]) | (owners[1:] != owners[:-1])
    return digests[first].astype(np.uint64), owners[first].astype(np.int64)


def check_shapes(name: str, arrays: dict[str, np.ndarray], num_perm: int, bands: Bands) -> None:
    """Raise unless a segment's arrays fit each other and the configuration."""
    ab, pb = bands.article[0], bands.paragraph[0]
    n = len(arrays["numbers"])
    if arrays["numbers"].ndim != 1 or arrays["numbers"].dtype != np.int64:
        raise IndexFormatError(f"{name}/numbers.npy has type {arrays['numbers'].dtype}, shape "
                               f"{arrays['numbers'].shape}")
    if arrays["article_signatures"].shape != (n, num_perm) or arrays["sizes"].shape != (n,):
        raise IndexFormatError(f"{name}/article_signatures.npy has shape {arrays['article_signatures'].shape}")
    if arrays["article_keys"].shape != (ab * n,) or arrays["article_items"].shape != (ab * n,):
        raise IndexFormatError(f"{name}: article band table has {arrays['article_keys'].shape} entries, "
                               f"expected {ab * n}")
    keys = arrays["paragraph_keys"]
    if keys.ndim != 1 or keys.shape != arrays["paragraph_items"].shape or len(keys) % pb:
        raise IndexFormatError(f"{name}: paragraph band tables are inconsistent")
    if arrays["paragraph_digests"].shape != arrays["paragraph_digest_owners"].shape:
        raise IndexFormatError(f"{name}: paragraph digests and their owners differ in length")
    if arrays["id_hashes"].shape != (n,) or arrays["id_numbers"].shape != (n,) \
            or arrays["id_hashes"].dtype != np.uint64 or arrays["id_numbers"].dtype != np.int64:
        raise IndexFormatError(f"{name}: the id table does not fit the documents ({arrays['id_hashes'].shape}, "
                               f"{arrays['id_numbers'].shape} for {n})")
    for level in ("article", "paragraph"):
        if arrays[f"{level}_keys"].dtype != np.uint32 or arrays[f"{level}_items"].dtype != np.int32:
            raise IndexFormatError(f"{name}: {level} band table has types {arrays[f'{level}_keys'].dtype}, "
                                   f"{arrays[f'{level}_items'].dtype}; expected uint32, int32")


# -- look-ups -------------------------------------------------------------------------------------------


@dataclass
class Tables:
    """Every look-up over a list of segments, leaving out the removed numbers."""

    bands: Bands
    num_perm: int
    segments: list[Segment] = field(default_factory=list)
    removed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _removed_digests: dict[str, np.ndarray] = field(default_factory=dict)

    def replace(self, segments: list[Segment], removed: np.ndarray) -> None:
        self.segments, self.removed = segments, np.asarray(removed, dtype=np.int64)
        self._removed_digests = {}

    @property
    def documents(self) -> int:
        return sum(len(s) for s in self.segments) - len(self.removed)

    def live_numbers(self) -> np.ndarray:
        """Every number held and not removed, ascending (the order documents were added in)."""
        held = np.concatenate([s.numbers for s in self.segments] or [np.zeros(0, np.int64)])
        return np.setdiff1d(held, self.removed)

    def article_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._candidates(fold32(band_keys(signatures, *self.bands.article)), "article")

    def paragraph_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._candidates(fold32(band_keys(signatures, *self.bands.paragraph)), "paragraph")

    def _candidates(self, keys: np.ndarray, level: str) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (query row, number) pairs: every band of every query looked up at once per segment."""
        bands = keys.shape[1]
        tagged = (np.arange(bands, dtype=np.uint64) << np.uint64(32))[None, :] | keys.astype(np.uint64)
        flat = tagged.ravel()
        order = np.argsort(flat)  # sorted needles walk each table in order
        needles = flat[order]
        rows, items = [], []
        for segment in self.segments:
            table = segment.arrays[f"{level}_keys"]
            runs = band_table_runs(table, bands, needles)
            r, i = band_matches(table, segment.arrays[f"{level}_items"], needles, runs)
            rows.append(order[r] // bands)
            items.append(i)
        return distinct_pairs(rows, items, self.removed)

    def numbers_of(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query row, number) of every live document whose id hash is one of ``hashes``."""
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        rows, numbers = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for segment in self.segments:
            table = segment.arrays["id_hashes"]
            lo, hi = np.searchsorted(table, hashes, "left"), np.searchsorted(table, hashes, "right")
            rows.append(np.repeat(np.arange(len(hashes), dtype=np.int64), hi - lo))
            numbers.append(segment.arrays["id_numbers"][ranges(lo, hi)])
        row, number = np.concatenate(rows), np.concatenate(numbers)
        if len(self.removed) and len(number):
            alive = ~np.isin(number, self.removed)
            row, number = row[alive], number[alive]
        return row, number

    def paragraph_frequencies(self, digests: np.ndarray) -> np.ndarray:
        """How many live documents hold each paragraph digest."""
        digests = np.ascontiguousarray(digests, dtype=np.uint64)
        counts = np.zeros(len(digests), dtype=np.int64)
        for segment in self.segments:
            counts += count_equal(segment.arrays["paragraph_digests"], digests)
            gone = self._gone_digests(segment)
            if len(gone):
                counts -= count_equal(gone, digests)
        return counts

    def _gone_digests(self, segment: Segment) -> np.ndarray:
        """The paragraph digests of a segment's removed documents (sorted), computed once."""
        cached = self._removed_digests.get(segment.name + f"@{id(segment)}")
        if cached is None:
            numbers = segment.numbers
            if len(self.removed) == 0 or len(numbers) == 0 or self.removed[-1] < numbers[0] \
                    or self.removed[0] > numbers[-1]:
                cached = np.zeros(0, np.uint64)
            else:
                owners = segment.arrays["paragraph_digest_owners"]
                cached = np.sort(segment.arrays["paragraph_digests"][np.isin(owners, self.removed)])
            self._removed_digests[segment.name + f"@{id(segment)}"] = cached
        return cached

    def article_signature(self, number: int) -> np.ndarray:
        """One document's article signature (KeyError if it is not found)."""
        signatures, _ = self.article_summaries(np.array([number], dtype=np.int64))
        return np.asarray(signatures[0])

    def article_summaries(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Article signatures and shingle counts of many documents (KeyError for one not found)."""
        numbers = np.asarray(numbers, dtype=np.int64)
        signatures = np.zeros((len(numbers), self.num_perm), dtype=np.uint32)
        sizes = np.full(len(numbers), -1, dtype=np.int64)
        for segment in self.segments:
            if len(segment) == 0:
                continue
            rows = np.minimum(np.searchsorted(segment.numbers, numbers), len(segment) - 1)
            found = segment.numbers[rows] == numbers
            signatures[found] = segment.arrays["article_signatures"][rows[found]]
            sizes[found] = segment.arrays["sizes"][rows[found]]
        gone = np.isin(numbers, self.removed) if len(self.removed) else np.zeros(len(numbers), bool)
        if (sizes < 0).any() or gone.any():
            raise KeyError(int(numbers[np.argmax((sizes < 0) | gone)]))
        return signatures, sizes

    def paragraph_count(self) -> int:
        return sum(len(s.arrays["paragraph_digest_owners"]) for s in self.segments)


# -- merging --------------------------------------------------------------------------------------------


def merged_arrays(group: Sequence[Segment], removed: np.ndarray, bands: Bands) -> dict[str, ArrayValue]:
    """The arrays of one segment replacing ``group``, without removed documents; the large ones
    streamed (memory stays at one band of the merged tables, one chunk of signatures)."""
    group = sorted(group, key=lambda segment: int(segment.numbers[0]) if len(segment) else 0)
    numbers = np.concatenate([s.numbers for s in group])
    keep = ~np.isin(numbers, removed)
    sizes = np.concatenate([s.arrays["sizes"] for s in group])
    # rows of the concatenated segments in number order (number ranges of segments of different
    # tiers can interleave), without removed documents
    rows = np.flatnonzero(keep)[np.argsort(numbers[keep], kind="stable")]
    width = group[0].arrays["article_signatures"].shape[1]
    out: dict[str, ArrayValue] = {"numbers": numbers[rows], "sizes": sizes[rows],
                                  "article_signatures": Streamed(np.uint32, (len(rows), width),
                                                                 _signature_chunks(group, rows))}
    for level, count in (("article", bands.article[0]), ("paragraph", bands.paragraph[0])):
        tables = [(s.arrays[f"{level}_keys"], s.arrays[f"{level}_items"]) for s in group]
        length = _merged_band_width(tables, count, removed) * count
        out[f"{level}_keys"] = StreamedPair((f"{level}_keys", f"{level}_items"), (np.uint32, np.int32), length,
                                            _band_chunks(tables, count, removed, level))
        out[f"{level}_items"] = None  # written with the keys
    digests = np.concatenate([s.arrays["paragraph_digests"] for s in group])
    owners = np.concatenate([s.arrays["paragraph_digest_owners"] for s in group])
    alive = ~np.isin(owners, removed)
    order = np.argsort(digests[alive], kind="stable")
    out["paragraph_digests"], out["paragraph_digest_owners"] = digests[alive][order], owners[alive][order]
    hashes = np.concatenate([s.arrays["id_hashes"] for s in group])
    holders = np.concatenate([s.arrays["id_numbers"] for s in group])
    alive = ~np.isin(holders, removed)
    order = np.argsort(hashes[alive], kind="stable")
    out["id_hashes"], out["id_numbers"] = hashes[alive][order], holders[alive][order]
    return out


def merge_in_memory(group: Sequence[Segment], removed: np.ndarray, bands: Bands) -> dict[str, np.ndarray]:
    """:func:`merged_arrays`, materialised (the in-memory store)."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in merged_arrays(group, removed, bands).items():
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif isinstance(value, Streamed):
            parts = list(value.chunks)
            arrays[name] = (np.concatenate(parts) if parts else np.zeros(value.shape, value.dtype)).reshape(value.shape)
        elif isinstance(value, StreamedPair):
            pairs = list(value.chunks)
            arrays[value.names[0]] = np.concatenate([k for k, _ in pairs]).astype(value.dtypes[0]) if pairs \
                else np.zeros(0, value.dtypes[0])
            arrays[value.names[1]] = np.concatenate([i for _, i in pairs]).astype(value.dtypes[1]) if pairs \
                else np.zeros(0, value.dtypes[1])
    return arrays


def _signature_chunks(group: Sequence[Segment], rows: np.ndarray) -> Iterator[np.ndarray]:
    starts = np.cumsum([0] + [len(segment) for segment in group])
    for lo in range(0, len(rows), _CHUNK):
        chunk = rows[lo:lo + _CHUNK]
        owner = np.searchsorted(starts, chunk, "right") - 1
        out = np.empty((len(chunk), group[0].arrays["article_signatures"].shape[1]), dtype=np.uint32)
        for index in np.unique(owner):
            picked = owner == index
            out[picked] = group[index].arrays["article_signatures"][chunk[picked] - starts[index]]
        yield out


def _merged_band_width(tables: list[tuple[np.ndarray, np.ndarray]], bands: int, removed: np.ndarray) -> int:
    """Entries per band of the merged table: the live entries of band 0 (every band is alike)."""
    total = 0
    for keys, items in tables:
        width = len(keys) // bands
        band0 = items[:width]
        total += int((~np.isin(band0, removed)).sum()) if len(removed) else width
    return total


def _band_chunks(tables: list[tuple[np.ndarray, np.ndarray]], bands: int, removed: np.ndarray,
                 level: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    expected = None
    for b in range(bands):
        keys, items = [], []
        for table_keys, table_items in tables:
            width = len(table_keys) // bands
            keys.append(table_keys[b * width:(b + 1) * width])
            items.append(table_items[b * width:(b + 1) * width])
        merged_keys, merged_items = np.concatenate(keys), np.concatenate(items)
        if len(removed):
            alive = ~np.isin(merged_items, removed)
            merged_keys, merged_items = merged_keys[alive], merged_items[alive]
        if expected is None:
            expected = len(merged_keys)
        elif len(merged_keys) != expected:
            raise IndexFormatError(f"{level} band {b} has {len(merged_keys)} entries, band 0 has {expected}")
        order = np.argsort(merged_keys, kind="stable")  # sorted runs, one per segment: a fast merge
        yield merged_keys[order], merged_items[order]


# -- files ----------------------------------------------------------------------------------------------


def write_segment(folder: IndexFolder, name: str, arrays: dict[str, ArrayValue]) -> dict[str, list[Any]]:
    """Write a segment folder through ``NAME.tmp``, fsynced, renamed; returns each file's
    [xxh3 digest, size], computed while writing."""
    temporary = f"{name}.tmp"
    folder.remove_segment(temporary)
    path = folder.entry(temporary)
    try:
        path.mkdir()
        checksums: dict[str, list[Any]] = {}
        for key in SEGMENT_FILES:
            value = arrays[key]
            if value is None:
                continue
            if isinstance(value, StreamedPair):
                checksums.update(_write_pair(folder, temporary, value))
            else:
                checksums[key] = _write_array(folder.segment_file(temporary, f"{key}.npy"), value)
        _fsync_dir(path)
        os.rename(path, folder.entry(name))
        _fsync_dir(folder.path)
    except OSError as err:  # a write error (a full disk) names the segment being written
        if err.filename is not None:
            raise
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None
    return checksums


def _header(dtype: Any, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(buffer, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue()


def _write_array(path: Path, value: np.ndarray | Streamed) -> list[Any]:
    digest = xxhash.xxh3_64()
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        chunks: Iterable[np.ndarray] = [array]
        header = _header(array.dtype, array.shape)
    else:
        chunks, header = value.chunks, _header(value.dtype, value.shape)
    with open(path, "xb") as handle:
        for piece in [header]:
            handle.write(piece)
            digest.update(piece)
        for chunk in chunks:
            data = np.ascontiguousarray(chunk).tobytes()
            handle.write(data)
            digest.update(data)
        handle.flush()
        os.fsync(handle.fileno())
        size = handle.tell()
    return [digest.hexdigest(), size]


def _write_pair(folder: IndexFolder, segment: str, value: StreamedPair) -> dict[str, list[Any]]:
    paths = [folder.segment_file(segment, f"{name}.npy") for name in value.names]
    digests = [xxhash.xxh3_64(), xxhash.xxh3_64()]
    handles = [open(p, "xb") for p in paths]  # noqa: SIM115 - closed below
    try:
        for handle, digest, dtype in zip(handles, digests, value.dtypes):
            header = _header(dtype, (value.length,))
            handle.write(header)
            digest.update(header)
        written = 0
        for keys, items in value.chunks:
            for handle, digest, part, dtype in zip(handles, digests, (keys, items), value.dtypes):
                data = np.ascontiguousarray(part, dtype=dtype).tobytes()
                handle.write(data)
                digest.update(data)
            written += len(keys)
        if written != value.length:
            raise IndexFormatError(f"{segment}: merged band tables have {written} entries, expected {value.length}")
        sizes = []
        for handle in handles:
            handle.flush()
            os.fsync(handle.fileno())
            sizes.append(handle.tell())
    finally:
        for handle in handles:
            handle.close()
    return {name: [digest.hexdigest(), size] for name, digest, size in zip(value.names, digests, sizes)}


def load_segment(folder: IndexFolder, name: str, checksums: dict[str, Any], verified: set[str]) -> Segment:
    """Map a segment's files, after checking each one's size and (once per process and segment)
    its checksum against the manifest: damage is an error, never an answer."""
    arrays = {}
    for key in SEGMENT_FILES:
        path = folder.segment_file(name, f"{key}.npy")
        expected = checksums.get(key)
        if not (isinstance(expected, list) and len(expected) == 2 and isinstance(expected[0], str)
                and isinstance(expected[1], int)):
            raise IndexFormatError(f"{folder}: the manifest entry of {name}/{key}.npy is damaged")
        size = path.stat().st_size  # FileNotFoundError: the caller takes a newer snapshot
        if size != expected[1]:
            raise IndexFormatError(f"{path}: {size} bytes, the manifest says {expected[1]}; the index is damaged")
        if name not in verified and file_digest(path) != expected[0]:
            raise IndexFormatError(f"{path}: checksum mismatch; the index is damaged")
        try:
            # a plain ndarray view of the mapping: memmap's Python-level wrappers cost more than the look-ups
            arrays[key] = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
        except FileNotFoundError:
            raise
        except (ValueError, OSError, EOFError) as err:
            raise IndexFormatError(f"{path}: damaged segment file ({err})") from None
    verified.add(name)
    return Segment(name, arrays)


def file_digest(path: Path) -> str:
    digest = xxhash.xxh3_64()
    buffer = bytearray(_READ_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb") as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def next_merge(segments: Sequence[Segment], fanout: int | None = None) -> list[Segment] | None:
    """The segments to merge next: ``fanout`` of the smallest size tier (sizes within a factor of
    ``fanout``) that has so many, or None; merging them keeps look-ups to a few segments."""
    fanout = fanout or MERGE_FANOUT
    tiers: dict[int, list[Segment]] = {}
    for segment in segments:
        tiers.setdefault(int(math.log(max(len(segment), 1), fanout)), []).append(segment)
    return next((group for _, group in sorted(tiers.items()) if len(group) >= fanout), None)
