"""The fingerprint stage: documents in, paragraph and article signatures out, batch at a time.

This is the pure, batch-oriented step a distributed engine can run on each
partition: it needs only the configuration, reads nothing and writes nothing.
Everything after it (LSH, storage, verification) works on its arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections import deque
from typing import Iterable, Iterator, Sequence

import numpy as np
import xxhash

from .config import Config
from .document import Document
from .normalize import normalize_many
from .shingles import shingle_paragraphs
from .signatures import merge_signatures, minhash_sets

#: Documents are fingerprinted in slices of about this many bytes of text to bound memory.
_SLICE_BYTES = 4 << 20


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of a batch of documents; paragraphs of document ``d`` are rows
    ``doc_offsets[d]:doc_offsets[d + 1]`` of the paragraph arrays."""

    doc_offsets: np.ndarray         # int64 (docs + 1)
    paragraph_spans: np.ndarray     # int64 (paragraphs, 2): spans in the original text
    paragraph_words: np.ndarray     # int64 (paragraphs,): tokens in the matching form
    paragraph_sizes: np.ndarray     # int64 (paragraphs,): shingles (repeats inside one paragraph are rare)
    paragraph_digests: np.ndarray   # uint64 (paragraphs,): xxh3-64 of the matching form
    paragraph_signatures: np.ndarray  # uint32 (paragraphs, num_perm)
    doc_sizes: np.ndarray           # int64 (docs,): shingles of the article's paragraphs
    doc_digests: np.ndarray         # uint64 (docs, 2): xxh3-128 of the matching form
    doc_signatures: np.ndarray      # uint32 (docs, num_perm)

    def __len__(self) -> int:
        return len(self.doc_sizes)

    def paragraph_rows(self, doc: int) -> slice:
        return slice(int(self.doc_offsets[doc]), int(self.doc_offsets[doc + 1]))

    @staticmethod
    def concatenate(parts: Sequence["Fingerprints"]) -> "Fingerprints":
        if len(parts) == 1:
            return parts[0]
        shift = np.cumsum([0] + [int(p.doc_offsets[-1]) for p in parts[:-1]])
        offsets = np.concatenate([parts[0].doc_offsets[:1]] + [p.doc_offsets[1:] + s for p, s in zip(parts, shift)])
        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])
        return Fingerprints(offsets, cat("paragraph_spans"), cat("paragraph_words"), cat("paragraph_sizes"),
                            cat("paragraph_digests"), cat("paragraph_signatures"), cat("doc_sizes"),
                            cat("doc_digests"), cat("doc_signatures"))


def fingerprint(documents: Sequence[Document], config: Config) -> Fingerprints:
    """Fingerprint ``documents`` (any number; sliced internally to bound memory)."""
    return _fingerprint_slices(documents, config, with_sets=False)[0]


def fingerprint_with_sets(documents: Sequence[Document], config: Config) -> tuple[Fingerprints, list[np.ndarray]]:
    """Fingerprints, and each document's sorted distinct shingle hashes (for exact Jaccard)."""
    return _fingerprint_slices(documents, config, with_sets=True)


def _fingerprint_slices(documents: Sequence[Document], config: Config,
                        with_sets: bool) -> tuple[Fingerprints, list[np.ndarray]]:
    parts, sets, start, size = [], [], 0, 0
    for end, document in enumerate(documents, 1):
        size += len(document.text)
        if size >= _SLICE_BYTES:
            prints, slice_sets = _fingerprint_slice(documents[start:end], config, with_sets)
            parts.append(prints)
            sets += slice_sets
            start, size = end, 0
    if start < len(documents) or not parts:
        prints, slice_sets = _fingerprint_slice(documents[start:], config, with_sets)
        parts.append(prints)
        sets += slice_sets
    return Fingerprints.concatenate(parts), sets


def matching_paragraphs(document: Document) -> list[str]:
    """The matching form of each paragraph of ``document``."""
    text = document.text
    return normalize_many([text[start:end] for start, end in document.paragraphs])


def _fingerprint_slice(documents: Sequence[Document], config: Config,
                       with_sets: bool = False) -> tuple[Fingerprints, list[np.ndarray]]:
    counts = np.array([len(doc.paragraphs) for doc in documents], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    flat = normalize_many([doc.text[start:end] for doc in documents for start, end in doc.paragraphs])
    normalized = [flat[offsets[i]:offsets[i + 1]] for i in range(len(documents))]
    shingles = shingle_paragraphs(flat, config.shingle_size)
    signatures = minhash_sets(shingles.hashes, shingles.paragraph, len(flat), config.num_perm, config.seed)
    owner_doc = np.repeat(np.arange(len(documents), dtype=np.int64), counts)
    paragraph_sizes = np.bincount(shingles.paragraph, minlength=len(flat)).astype(np.int64)
    doc_sizes = np.bincount(owner_doc, weights=paragraph_sizes, minlength=len(documents)).astype(np.int64)
    spans = np.array([span for doc in documents for span in doc.paragraphs], dtype=np.int64).reshape(-1, 2)
    sets = _shingle_sets(shingles.hashes, owner_doc[shingles.paragraph], len(documents)) if with_sets else []
    return Fingerprints(
        doc_offsets=offsets,
        paragraph_spans=spans,
        paragraph_words=shingles.words,
        paragraph_sizes=paragraph_sizes,
        paragraph_digests=np.array([xxhash.xxh3_64_intdigest(p.encode("utf-8")) for p in flat], dtype=np.uint64),
        paragraph_signatures=signatures,
        doc_sizes=doc_sizes,
        doc_digests=_doc_digests(normalized),
        doc_signatures=merge_signatures(signatures, owner_doc, len(documents)),
    ), sets


def _shingle_sets(hashes: np.ndarray, owner: np.ndarray, count: int) -> list[np.ndarray]:
    """Sorted distinct shingle hashes of each document."""
    keys = np.sort((owner.astype(np.uint64) << np.uint64(32)) | hashes.astype(np.uint64))
    if len(keys):
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    bounds = np.searchsorted(keys >> np.uint64(32), np.arange(count + 1, dtype=np.uint64))
    values = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return [values[bounds[i]:bounds[i + 1]] for i in range(count)]


def _doc_digests(normalized: list[list[str]]) -> np.ndarray:
    """xxh3-128 of the matching form of each document, paragraph breaks included: shingles do
    not cross paragraphs, so the same words cut into other paragraphs are not the same text."""
    out = np.zeros((len(normalized), 2), dtype=np.uint64)
    for row, paragraphs in enumerate(normalized):
        digest = xxhash.xxh3_128_intdigest("\n".join(p for p in paragraphs if p).encode("utf-8"))
        out[row] = (digest >> 64, digest & 0xFFFFFFFFFFFFFFFF)
    return out


def fingerprint_stream(batches: Iterable[list[Document]], config: Config,
                       workers: int = 1) -> Iterator[tuple[list[Document], Fingerprints]]:
    """Fingerprint a stream of batches, in order, in ``workers`` processes.

    At most two batches per worker are in flight, so a corpus of any size
    streams through bounded memory. One worker means no extra process.
    """
    if workers <= 1:
        for batch in batches:
            yield batch, fingerprint(batch, config)
        return
    import multiprocessing

    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(workers) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append((batch, pool.apply_async(fingerprint, (batch, config))))
            if len(pending) >= 2 * workers:
                done, job = pending.popleft()
                yield done, job.get()
        while pending:
            done, job = pending.popleft()
            yield done, job.get()
