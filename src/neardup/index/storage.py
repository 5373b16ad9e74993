"""Where an index keeps documents, signatures, shingles and band tables.

:class:`Storage` states everything :class:`~neardup.index.Index` uses of a backend — nothing is
probed for with ``getattr``. :class:`MemoryStorage` implements it in RAM (for corpora that fit,
and for tests); :class:`~neardup.index.disk.DiskStorage` on disk. One conformance suite
(``tests/test_storage.py``) runs against both.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from neardup.config import Config
from neardup.document import Document
from neardup.index.segments import Segment, Tables, build_arrays, merge_in_memory, next_merge
from neardup.records import Fingerprints, ShingleColumns
from neardup.sketch.lsh import Bands

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class StoredDocument:
    """What the index keeps about one document (the text only if asked to)."""

    number: int
    id: str
    text: str | None
    metadata: dict[str, Any]
    spans: np.ndarray          # int64 (paragraphs, 2): paragraph spans of the text
    digest: tuple[int, int]
    size: int


@dataclass(frozen=True)
class StoredColumns:
    """What verification reads of some stored documents, in the order they were asked for."""

    numbers: np.ndarray
    columns: ShingleColumns        # weights 1: the index weighs them with current frequencies
    paragraph_digests: np.ndarray  # uint64, one per paragraph of ``shingles``
    paragraph_spans: np.ndarray    # int64 (paragraphs, 2)
    doc_digests: np.ndarray        # uint64 (docs, 2)


class Storage(Protocol):
    """Everything an :class:`~neardup.index.Index` needs from a backend."""

    config: Config
    #: Where the documents are kept (a database file, or ``"memory"``), for messages.
    location: str
    #: Whether texts are kept (evidence can quote them; ``Index.document`` works).
    keep_text: bool
    #: Whether :meth:`add` needs ``Fingerprints.shingles`` (it keeps them instead of the text).
    needs_shingles: bool

    def __len__(self) -> int: ...
    def number_of(self, id: str) -> int | None: ...
    def present(self, ids: Sequence[str]) -> set[str]: ...
    def numbers(self) -> np.ndarray:
        """Every stored document's number, ascending: the order they were added in."""
        ...
    def add(self, documents: Sequence[Document], fingerprints: Fingerprints,
            replacing: Sequence[int] = ()) -> np.ndarray:
        """Insert documents (and remove ``replacing`` numbers) in one atomic step; their numbers."""
        ...
    def remove(self, numbers: Sequence[int]) -> None: ...
    def document(self, number: int) -> StoredDocument: ...
    def article_signature(self, number: int) -> np.ndarray: ...
    def article_summaries(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def article_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def paragraph_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def paragraph_frequencies(self, digests: np.ndarray) -> np.ndarray: ...
    def columns(self, numbers: np.ndarray) -> StoredColumns: ...
    def reading(self) -> contextlib.AbstractContextManager[None]:
        """One consistent snapshot for the calls made inside (another process may be writing)."""
        ...
    def stats(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


class LruCache(Generic[K, V]):
    """A small least-recently-used cache for values that are costly to recompute."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, compute: Callable[[K], V]) -> V:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = compute(key)
        self.put(key, value)
        return value

    def peek(self, key: K) -> V | None:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return None

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


@dataclass(frozen=True)
class DocumentShingles:
    """One document's verification columns (a cache entry)."""

    shingles: np.ndarray
    paragraph_sizes: np.ndarray
    paragraph_words: np.ndarray
    paragraph_digests: np.ndarray
    paragraph_spans: np.ndarray
    doc_digest: tuple[int, int]


def columns_of(numbers: np.ndarray, entries: Sequence[DocumentShingles]) -> StoredColumns:
    """Stored columns assembled from per-document entries."""
    para_counts = np.array([len(e.paragraph_sizes) for e in entries], dtype=np.int64)
    sizes = np.concatenate([e.paragraph_sizes for e in entries]) if entries else np.zeros(0, np.int64)
    columns = ShingleColumns(
        shingles=np.concatenate([e.shingles for e in entries]).astype(np.uint32) if entries else np.zeros(0, np.uint32),
        paragraph_offsets=np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
        paragraph_words=(np.concatenate([e.paragraph_words for e in entries]) if entries
                         else np.zeros(0)).astype(np.int64),
        paragraph_weights=np.ones(len(sizes)),
        doc_offsets=np.concatenate(([0], np.cumsum(para_counts))).astype(np.int64),
    )
    return StoredColumns(
        numbers=np.asarray(numbers, dtype=np.int64),
        columns=columns,
        paragraph_digests=(np.concatenate([e.paragraph_digests for e in entries]) if entries
                           else np.zeros(0)).astype(np.uint64),
        paragraph_spans=(np.concatenate([e.paragraph_spans for e in entries]) if entries
                         else np.zeros((0, 2))).astype(np.int64).reshape(-1, 2),
        doc_digests=np.array([e.doc_digest for e in entries], dtype=np.uint64).reshape(-1, 2),
    )


def entries_of(fingerprints: Fingerprints) -> list[DocumentShingles]:
    """Per-document verification entries of a fingerprinted batch (with shingles)."""
    assert_shingles(fingerprints)
    ends = np.concatenate(([0], np.cumsum(fingerprints.paragraph_sizes)))
    out = []
    for row in range(len(fingerprints)):
        rows = fingerprints.paragraph_rows(row)
        digest = fingerprints.doc_digests[row]
        out.append(DocumentShingles(
            fingerprints.shingles[ends[rows.start]:ends[rows.stop]].copy(),  # type: ignore[index]
            fingerprints.paragraph_sizes[rows].copy(), fingerprints.paragraph_words[rows].copy(),
            fingerprints.paragraph_digests[rows].copy(), fingerprints.paragraph_spans[rows].copy(),
            (int(digest[0]), int(digest[1]))))
    return out


def assert_shingles(fingerprints: Fingerprints) -> None:
    if fingerprints.shingles is None:
        raise ValueError("these fingerprints were computed without shingles (fingerprint(..., shingles=True))")


@dataclass
class MemoryStorage:
    """Everything in RAM: documents and their shingles in lists, band tables in in-memory segments
    (the same :class:`~neardup.index.segments.Tables` the disk store maps from its files)."""

    config: Config
    keep_text: bool = True
    needs_shingles: bool = True
    _docs: list[StoredDocument | None] = field(default_factory=list)
    _entries: list[DocumentShingles | None] = field(default_factory=list)
    _numbers: dict[str, int] = field(default_factory=dict)
    _removed: list[int] = field(default_factory=list)

    location = "memory"

    def __post_init__(self) -> None:
        self._bands = Bands.of(self.config)
        self._tables = Tables(self._bands, self.config.num_perm)

    def __len__(self) -> int:
        return len(self._numbers)

    def number_of(self, id: str) -> int | None:
        return self._numbers.get(id)

    def present(self, ids: Sequence[str]) -> set[str]:
        return {id for id in ids if id in self._numbers}

    def numbers(self) -> np.ndarray:
        return self._tables.live_numbers()

    def add(self, documents: Sequence[Document], fingerprints: Fingerprints,
            replacing: Sequence[int] = ()) -> np.ndarray:
        entries = entries_of(fingerprints)  # checks the shingles first: nothing changes on error
        first = len(self._docs)
        numbers = np.arange(first, first + len(documents), dtype=np.int64)
        arrays = build_arrays(fingerprints, numbers, self._bands, self.config, [doc.id for doc in documents])
        self._remove(replacing)
        for row, doc in enumerate(documents):
            entry = entries[row]
            self._docs.append(StoredDocument(int(numbers[row]), doc.id, doc.text if self.keep_text else None,
                                             doc.metadata, entry.paragraph_spans, entry.doc_digest,
                                             int(fingerprints.doc_sizes[row])))
            self._entries.append(entry)
            self._numbers[doc.id] = int(numbers[row])
        segments = self._tables.segments + [Segment(f"memory-{first}", arrays)]
        self._tables.replace(self._merged(segments), np.array(sorted(self._removed), dtype=np.int64))
        return numbers

    def _merged(self, segments: list[Any]) -> list[Any]:
        """Merge segments of one size tier four at a time, as the disk store does."""
        removed = np.array(sorted(self._removed), dtype=np.int64)
        while True:
            group = next_merge(segments)
            if group is None:
                return segments
            arrays = merge_in_memory(group, removed, self._bands)
            merged = Segment(f"memory-{int(arrays['numbers'][0]) if len(arrays['numbers']) else 0}-merged", arrays)
            segments = [s for s in segments if not any(s is g for g in group)] + [merged]

    def remove(self, numbers: Sequence[int]) -> None:
        self._remove(numbers)
        self._tables.replace(self._tables.segments, np.array(sorted(self._removed), dtype=np.int64))

    def _remove(self, numbers: Sequence[int]) -> None:
        for number in numbers:
            stored = self._docs[number] if 0 <= number < len(self._docs) else None
            if stored is None:
                continue
            self._docs[number] = self._entries[number] = None
            del self._numbers[stored.id]
            self._removed.append(int(number))

    def document(self, number: int) -> StoredDocument:
        stored = self._docs[number] if 0 <= number < len(self._docs) else None
        if stored is None:
            raise KeyError(number)
        return stored

    def article_signature(self, number: int) -> np.ndarray:
        return self._tables.article_signature(number)

    def article_summaries(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._tables.article_summaries(numbers)

    def article_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._tables.article_candidates(signatures)

    def paragraph_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._tables.paragraph_candidates(signatures)

    def paragraph_frequencies(self, digests: np.ndarray) -> np.ndarray:
        return self._tables.paragraph_frequencies(digests)

    def columns(self, numbers: np.ndarray) -> StoredColumns:
        entries = []
        for number in np.asarray(numbers).tolist():
            entry = self._entries[number] if 0 <= number < len(self._entries) else None
            if entry is None:
                raise KeyError(number)
            entries.append(entry)
        return columns_of(numbers, entries)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        yield

    def stats(self) -> dict[str, Any]:
        return {"documents": len(self), "paragraphs": self._tables.paragraph_count(),
                "segments": len(self._tables.segments), "keep_text": self.keep_text,
                "config": self.config.to_dict()}

    def close(self) -> None:
        pass
