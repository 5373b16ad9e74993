"""Where an index keeps documents, signatures and band tables.

:class:`Storage` is the narrow interface the index talks to; the in-memory
:class:`MemoryStorage` implements it for corpora that fit in RAM and for
tests. A persistent backend implements the same methods.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Protocol, Sequence, TypeVar

import numpy as np

from .config import Config
from .document import Document
from .fingerprint import Fingerprints
from .lsh import BandTable, optimal_bands

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class StoredDocument:
    """What the index keeps about one document (the text only if asked to)."""

    number: int
    id: str
    text: str | None
    metadata: dict[str, Any]
    paragraphs: slice
    digest: tuple[int, int]
    size: int


@dataclass(frozen=True)
class ParagraphArrays:
    """The paragraph fingerprints of one stored document."""

    signatures: np.ndarray
    sizes: np.ndarray
    words: np.ndarray
    spans: np.ndarray
    digests: np.ndarray


class Storage(Protocol):
    """What an index needs from a backend."""

    config: Config

    def __len__(self) -> int: ...
    def number_of(self, id: str) -> int | None: ...
    def present(self, ids: Sequence[str]) -> set[str]: ...
    def add(self, documents: Sequence[Document], fingerprints: Fingerprints) -> np.ndarray: ...
    def remove(self, number: int) -> None: ...
    def document(self, number: int) -> StoredDocument: ...
    def article_signature(self, number: int) -> np.ndarray: ...
    def article_summaries(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def paragraphs(self, number: int) -> ParagraphArrays: ...
    def article_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def paragraph_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def paragraph_frequencies(self, digests: np.ndarray) -> np.ndarray: ...


def lsh_params(config: Config) -> tuple[tuple[int, int], tuple[int, int]]:
    """(bands, rows) for paragraphs and for articles, derived or overridden."""
    paragraph = config.paragraph_bands or optimal_bands(config.paragraph_lsh_threshold, config.num_perm,
                                                       config.lsh_weights)
    article = config.article_bands or optimal_bands(config.article_lsh_threshold, config.num_perm, config.lsh_weights)
    return paragraph, article


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
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()


class _Growable:
    """A 2-D array appended to in chunks and read as one."""

    def __init__(self, width: int, dtype: Any) -> None:
        self._chunks: list[np.ndarray] = []
        self._array = np.zeros((0, width), dtype=dtype)

    def append(self, rows: np.ndarray) -> None:
        self._chunks.append(rows)

    @property
    def array(self) -> np.ndarray:
        if self._chunks:
            self._array = np.concatenate([self._array] + self._chunks)
            self._chunks.clear()
        return self._array


@dataclass
class MemoryStorage:
    """Everything in RAM: documents in a list, signatures in growing numpy arrays."""

    config: Config
    keep_text: bool = True
    _docs: list[StoredDocument | None] = field(default_factory=list)
    _numbers: dict[str, int] = field(default_factory=dict)
    _frequencies: Counter[int] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        (pb, pr), (ab, ar) = lsh_params(self.config)
        self._paragraph_table, self._article_table = BandTable(pb, pr), BandTable(ab, ar)
        p = self.config.num_perm
        self._article_sigs = _Growable(p, np.uint32)
        self._sizes = _Growable(1, np.int64)
        self._para_sigs = _Growable(p, np.uint32)
        self._para_info = _Growable(5, np.int64)   # size, words, start, end, owner
        self._para_digests = _Growable(1, np.uint64)

    def __len__(self) -> int:
        return len(self._numbers)

    def number_of(self, id: str) -> int | None:
        return self._numbers.get(id)

    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are indexed (one call per batch, not one per document)."""
        return {id for id in ids if id in self._numbers}

    def add(self, documents: Sequence[Document], fingerprints: Fingerprints) -> np.ndarray:
        first_doc = len(self._docs)
        first_par = self._para_sigs.array.shape[0]
        numbers = np.arange(first_doc, first_doc + len(documents), dtype=np.int64)
        owners = np.repeat(numbers, np.diff(fingerprints.doc_offsets))
        for row, doc in enumerate(documents):
            rows = fingerprints.paragraph_rows(row)
            digest = fingerprints.doc_digests[row]
            self._docs.append(StoredDocument(
                int(numbers[row]), doc.id, doc.text if self.keep_text else None, doc.metadata,
                slice(first_par + rows.start, first_par + rows.stop), (int(digest[0]), int(digest[1])),
                int(fingerprints.doc_sizes[row])))
            self._numbers[doc.id] = int(numbers[row])
        self._article_sigs.append(fingerprints.doc_signatures)
        self._sizes.append(fingerprints.doc_sizes[:, None])
        self._para_sigs.append(fingerprints.paragraph_signatures)
        self._para_info.append(np.column_stack([fingerprints.paragraph_sizes, fingerprints.paragraph_words,
                                                fingerprints.paragraph_spans, owners]))
        self._para_digests.append(fingerprints.paragraph_digests[:, None])
        for row in range(len(documents)):
            self._frequencies.update(set(fingerprints.paragraph_digests[fingerprints.paragraph_rows(row)].tolist()))
        self._article_table.insert(fingerprints.doc_signatures, numbers)
        searchable = self._searchable_paragraphs(fingerprints)
        self._paragraph_table.insert(fingerprints.paragraph_signatures[searchable], first_par + searchable)
        return numbers

    def _searchable_paragraphs(self, fingerprints: Fingerprints) -> np.ndarray:
        """Paragraphs worth a paragraph-level look-up: not empty, not a short line."""
        return np.flatnonzero((fingerprints.paragraph_sizes > 0)
                              & (fingerprints.paragraph_words >= self.config.min_paragraph_words))

    def remove(self, number: int) -> None:
        stored = self._docs[number]
        if stored is None:
            return
        self._frequencies.subtract(set(self._para_digests.array[stored.paragraphs, 0].tolist()))
        self._docs[number] = None
        del self._numbers[stored.id]
        self._article_table.remove(np.array([number]))
        self._paragraph_table.remove(np.arange(stored.paragraphs.start, stored.paragraphs.stop))

    def document(self, number: int) -> StoredDocument:
        stored = self._docs[number]
        if stored is None:
            raise KeyError(number)
        return stored

    def article_signature(self, number: int) -> np.ndarray:
        return self._article_sigs.array[number]

    def article_summaries(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Article signatures and shingle counts of many documents."""
        return self._article_sigs.array[numbers], self._sizes.array[numbers, 0]

    def paragraphs(self, number: int) -> ParagraphArrays:
        rows = self.document(number).paragraphs
        info = self._para_info.array[rows]
        return ParagraphArrays(self._para_sigs.array[rows], info[:, 0], info[:, 1], info[:, 2:4],
                               self._para_digests.array[rows, 0])

    def article_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._article_table.query(signatures)

    def paragraph_frequencies(self, digests: np.ndarray) -> np.ndarray:
        """How many indexed documents hold each paragraph (by digest of its matching form)."""
        return np.array([self._frequencies.get(d, 0) for d in digests.tolist()], dtype=np.int64)

    def paragraph_candidates(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query row, document number) pairs sharing a paragraph band."""
        rows, paragraphs = self._paragraph_table.query(signatures)
        owners = self._para_info.array[paragraphs, 4] if len(paragraphs) else paragraphs
        return rows, owners
