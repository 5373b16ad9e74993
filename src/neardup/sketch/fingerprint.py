"""The fingerprint stage: documents in, paragraph and article fingerprints out, batch at a time.

This is the pure, batch-oriented step every engine runs on each partition (the local executor
on threads, Spark in ``mapInArrow``): it needs only the configuration, reads nothing and
writes nothing. :func:`fingerprint_columns` takes plain columns (texts, paragraph spans), so an
engine that holds Arrow columns never builds :class:`~neardup.document.Document` objects.
The compiled kernel releases the GIL while it reads the characters, so batches fingerprint in
parallel on threads that share one address space (no fingerprint is copied between processes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import xxhash

from neardup.config import Config
from neardup.document import Document
from neardup.match.scores import ShingleColumns
from neardup.native import compiled
from neardup.sketch.kernel import merge_rows, sign_paragraphs
from neardup.threads import ordered_map

#: The numpy path fingerprints documents in slices of about this many characters of text to
#: bound its temporary arrays; the compiled kernel needs no temporaries beyond its outputs.
_SLICE_CHARS = 4 << 20


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of a batch of documents; paragraphs of document ``d`` are rows
    ``doc_offsets[d]:doc_offsets[d + 1]`` of the paragraph arrays. With ``shingles`` (asked
    for), paragraph ``p``'s shingle hashes, in text order, follow those of paragraph ``p - 1``."""

    doc_offsets: np.ndarray         # int64 (docs + 1)
    paragraph_spans: np.ndarray     # int64 (paragraphs, 2): spans in the original text
    paragraph_words: np.ndarray     # int64 (paragraphs,): tokens in the matching form
    paragraph_sizes: np.ndarray     # int64 (paragraphs,): shingles (occurrences)
    paragraph_digests: np.ndarray   # uint64 (paragraphs,): shingles.form_digests of the matching form
    paragraph_signatures: np.ndarray  # uint32 (paragraphs, num_perm)
    doc_sizes: np.ndarray           # int64 (docs,): shingles of the article's paragraphs
    doc_digests: np.ndarray         # uint64 (docs, 2): xxh3-128 of the matching form
    doc_signatures: np.ndarray      # uint32 (docs, num_perm)
    shingles: np.ndarray | None = None  # uint32 (sum of paragraph_sizes,), when asked for

    def __len__(self) -> int:
        return len(self.doc_sizes)

    def paragraph_rows(self, doc: int) -> slice:
        """The rows of document ``doc``'s paragraphs in the paragraph columns."""
        return slice(int(self.doc_offsets[doc]), int(self.doc_offsets[doc + 1]))

    @property
    def paragraph_owners(self) -> np.ndarray:
        """The document (row) of every paragraph."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.doc_offsets))

    def shingle_columns(self, weights: np.ndarray | None = None) -> ShingleColumns:
        """The shingle sequences as verification reads them (weights 1 unless given)."""
        if self.shingles is None:
            raise ValueError("fingerprints computed without shingles")
        count = len(self.paragraph_sizes)
        return ShingleColumns(
            hashes=self.shingles,
            para_offsets=np.concatenate(([0], np.cumsum(self.paragraph_sizes))).astype(np.int64),
            para_words=self.paragraph_words.astype(np.int64),
            para_weights=np.ones(count) if weights is None else np.asarray(weights, dtype=np.float64),
            doc_offsets=self.doc_offsets.astype(np.int64),
        )

    def select(self, rows: Sequence[int] | np.ndarray) -> Fingerprints:
        """The fingerprints of some documents (rows), in the order given."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == len(self) and np.array_equal(rows, np.arange(len(self))):
            return self
        counts = np.diff(self.doc_offsets)[rows]
        paragraphs = _ranges(self.doc_offsets[rows], self.doc_offsets[rows + 1])
        shingles = None
        if self.shingles is not None:
            ends = np.cumsum(self.paragraph_sizes)
            shingles = self.shingles[_ranges(ends[paragraphs] - self.paragraph_sizes[paragraphs], ends[paragraphs])]
        return Fingerprints(np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
                            self.paragraph_spans[paragraphs], self.paragraph_words[paragraphs],
                            self.paragraph_sizes[paragraphs], self.paragraph_digests[paragraphs],
                            self.paragraph_signatures[paragraphs], self.doc_sizes[rows], self.doc_digests[rows],
                            self.doc_signatures[rows], shingles)

    @staticmethod
    def concatenate(parts: Sequence[Fingerprints]) -> Fingerprints:
        """One batch of fingerprints made of several, in order."""
        if len(parts) == 1:
            return parts[0]
        shift = np.cumsum([0] + [int(p.doc_offsets[-1]) for p in parts[:-1]])
        offsets = np.concatenate([parts[0].doc_offsets[:1]] + [p.doc_offsets[1:] + s for p, s in zip(parts, shift)])
        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        shingles = None if any(p.shingles is None for p in parts) else cat("shingles")
        return Fingerprints(offsets, cat("paragraph_spans"), cat("paragraph_words"), cat("paragraph_sizes"),
                            cat("paragraph_digests"), cat("paragraph_signatures"), cat("doc_sizes"),
                            cat("doc_digests"), cat("doc_signatures"), shingles)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    from neardup.arrays import ranges

    return ranges(lo, hi)


def fingerprint(documents: Sequence[Document], config: Config, *, shingles: bool = False) -> Fingerprints:
    """Fingerprint ``documents`` (any number); ``shingles`` keeps every shingle hash for verification."""
    return fingerprint_columns(*layout(documents), config, shingles=shingles)


def layout(documents: Sequence[Document]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """What fingerprinting reads of documents: texts, paragraph spans (n, 2), paragraph offsets."""
    counts = np.fromiter((len(doc.paragraphs) for doc in documents), dtype=np.int64, count=len(documents))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    spans = np.fromiter(chain.from_iterable(chain.from_iterable(doc.paragraphs for doc in documents)),
                        dtype=np.int64, count=2 * int(offsets[-1])).reshape(-1, 2)
    return [doc.text for doc in documents], spans, offsets


def fingerprint_columns(texts: list[str], spans: np.ndarray, offsets: np.ndarray, config: Config, *,
                        shingles: bool = False) -> Fingerprints:
    """Fingerprint documents given as columns: ``texts[d]`` with paragraphs
    ``spans[offsets[d]:offsets[d + 1]]`` ((start, end) character spans)."""
    if compiled() or len(texts) < 2:
        return _fingerprint_slice(texts, spans, offsets, config, shingles)
    # The numpy path's temporary arrays grow with the slice; bound them.
    parts, start, size = [], 0, 0
    for end, text in enumerate(texts, 1):
        size += len(text)
        if size >= _SLICE_CHARS or end == len(texts):
            lo, hi = int(offsets[start]), int(offsets[end])
            parts.append(_fingerprint_slice(texts[start:end], spans[lo:hi], offsets[start:end + 1] - lo, config,
                                            shingles))
            start, size = end, 0
    return Fingerprints.concatenate(parts)


def _fingerprint_slice(texts: list[str], spans: np.ndarray, offsets: np.ndarray, config: Config,
                       shingles: bool) -> Fingerprints:
    owner_doc = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(offsets))
    prints = sign_paragraphs(texts, np.column_stack((owner_doc, spans)), offsets,
                             config.shingle_size, config.num_perm, config.seed, with_hashes=shingles)
    doc_sizes = np.bincount(owner_doc, weights=prints.sizes, minlength=len(texts)).astype(np.int64)
    return Fingerprints(
        doc_offsets=np.asarray(offsets, dtype=np.int64),
        paragraph_spans=spans,
        paragraph_words=prints.words,
        paragraph_sizes=prints.sizes,
        paragraph_digests=prints.digests,
        paragraph_signatures=prints.signatures,
        doc_sizes=doc_sizes,
        doc_digests=_doc_digests(prints.document_forms),
        doc_signatures=merge_rows(prints.signatures, offsets),
        shingles=prints.hashes if shingles else None,
    )


def _doc_digests(document_forms: list[bytes]) -> np.ndarray:
    """xxh3-128 of the matching form of each document, paragraph breaks included: shingles do
    not cross paragraphs, so the same words cut into other paragraphs are not the same text."""
    digests = [xxhash.xxh3_128_intdigest(form) for form in document_forms]
    out = np.zeros((len(digests), 2), dtype=np.uint64)
    if digests:
        out[:, 0] = np.array([d >> 64 for d in digests], dtype=np.uint64)
        out[:, 1] = np.array([d & 0xFFFFFFFFFFFFFFFF for d in digests], dtype=np.uint64)
    return out


def fingerprint_stream(batches: Iterable[list[Document]], config: Config, workers: int = 1, *,
                       shingles: bool = False) -> Iterator[tuple[list[Document], Fingerprints]]:
    """Fingerprint a stream of batches, in order, on ``workers`` threads (at most two batches
    per thread in flight, so a corpus of any size streams through bounded memory)."""
    yield from ordered_map(lambda batch: fingerprint(batch, config, shingles=shingles), batches, workers)
