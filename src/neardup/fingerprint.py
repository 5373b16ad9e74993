"""The fingerprint stage: documents in, paragraph and article signatures out, batch at a time.

This is the pure, batch-oriented step a distributed engine can run on each
partition: it needs only the configuration, reads nothing and writes nothing.
Everything after it (LSH, storage, verification) works on its arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections import deque
from itertools import chain
from typing import Iterable, Iterator, Sequence

import numpy as np
import xxhash

from .config import Config
from .document import Document
from .kernel import compiled, merge_rows, replacement_table, sign_paragraphs

#: The numpy path fingerprints documents in slices of about this many bytes of text to bound its
#: temporary arrays; the compiled kernel needs no temporaries beyond its outputs.
_SLICE_BYTES = 4 << 20


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of a batch of documents; paragraphs of document ``d`` are rows
    ``doc_offsets[d]:doc_offsets[d + 1]`` of the paragraph arrays."""

    doc_offsets: np.ndarray         # int64 (docs + 1)
    paragraph_spans: np.ndarray     # int64 (paragraphs, 2): spans in the original text
    paragraph_words: np.ndarray     # int64 (paragraphs,): tokens in the matching form
    paragraph_sizes: np.ndarray     # int64 (paragraphs,): shingles (repeats inside one paragraph are rare)
    paragraph_digests: np.ndarray   # uint64 (paragraphs,): shingles.form_digests of the matching form
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
    if compiled():
        return _fingerprint_slice(documents, config, with_sets)
    # The numpy path's temporary arrays grow with the slice; bound them.
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


def _layout(documents: Sequence[Document]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """What fingerprinting reads of documents: texts, paragraph spans (n, 2), paragraph offsets.
    Cheap to send to a worker process, unlike Document objects with their tuples."""
    counts = np.fromiter((len(doc.paragraphs) for doc in documents), dtype=np.int64, count=len(documents))
    offsets = np.concatenate(([0], np.cumsum(counts)))
    spans = np.fromiter(chain.from_iterable(chain.from_iterable(doc.paragraphs for doc in documents)),
                        dtype=np.int64, count=2 * int(offsets[-1])).reshape(-1, 2)
    return [doc.text for doc in documents], spans, offsets


def _fingerprint_slice(documents: Sequence[Document], config: Config,
                       with_sets: bool = False) -> tuple[Fingerprints, list[np.ndarray]]:
    return _fingerprint_layout(*_layout(documents), config, with_sets)


def _fingerprint_layout(texts: list[str], spans: np.ndarray, offsets: np.ndarray, config: Config,
                        with_sets: bool = False) -> tuple[Fingerprints, list[np.ndarray]]:
    owner_doc = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(offsets))
    prints = sign_paragraphs(texts, np.column_stack((owner_doc, spans)), offsets,
                             config.shingle_size, config.num_perm, config.seed, with_hashes=with_sets)
    doc_sizes = np.bincount(owner_doc, weights=prints.sizes, minlength=len(texts)).astype(np.int64)
    sets = _shingle_sets(prints.hashes, owner_doc[prints.hash_owner], len(texts)) if with_sets else []
    return Fingerprints(
        doc_offsets=offsets,
        paragraph_spans=spans,
        paragraph_words=prints.words,
        paragraph_sizes=prints.sizes,
        paragraph_digests=prints.digests,
        paragraph_signatures=prints.signatures,
        doc_sizes=doc_sizes,
        doc_digests=_doc_digests(prints.document_forms),
        doc_signatures=merge_rows(prints.signatures, offsets),
    ), sets


def _shingle_sets(hashes: np.ndarray, owner: np.ndarray, count: int) -> list[np.ndarray]:
    """Sorted distinct shingle hashes of each document."""
    keys = np.sort((owner.astype(np.uint64) << np.uint64(32)) | hashes.astype(np.uint64))
    if len(keys):
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    bounds = np.searchsorted(keys >> np.uint64(32), np.arange(count + 1, dtype=np.uint64))
    values = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return [values[bounds[i]:bounds[i + 1]] for i in range(count)]


def _doc_digests(document_forms: list[bytes]) -> np.ndarray:
    """xxh3-128 of the matching form of each document, paragraph breaks included: shingles do
    not cross paragraphs, so the same words cut into other paragraphs are not the same text."""
    digests = [xxhash.xxh3_128_intdigest(form) for form in document_forms]
    out = np.zeros((len(digests), 2), dtype=np.uint64)
    if digests:
        out[:, 0] = np.array([d >> 64 for d in digests], dtype=np.uint64)
        out[:, 1] = np.array([d & 0xFFFFFFFFFFFFFFFF for d in digests], dtype=np.uint64)
    return out


def _fingerprint_worker(texts: list[str], spans: np.ndarray, offsets: np.ndarray,
                        config: Config) -> tuple[str, list[tuple[str, str, tuple[int, ...], int]]]:
    """Fingerprint in a worker process; the arrays go back through shared memory (see _to_shared)."""
    if compiled():
        prints = _fingerprint_layout(texts, spans, offsets, config)[0]
    else:
        bounds = offsets.tolist()
        prints = fingerprint([Document(str(i), text, tuple(map(tuple, spans[bounds[i]:bounds[i + 1]].tolist())))
                              for i, text in enumerate(texts)], config)
    return _to_shared(prints)


#: Fingerprints hold ~4 bytes per permutation and paragraph (4x the text at 128 permutations):
#: through a pipe, pickled and unpickled, moving them cost more than computing them. A worker
#: writes them into one shared-memory block instead; the parent copies them out and frees it.
def _to_shared(prints: Fingerprints) -> tuple[str, list[tuple[str, str, tuple[int, ...], int]]]:
    from multiprocessing import resource_tracker, shared_memory

    arrays = {name: getattr(prints, name) for name in Fingerprints.__dataclass_fields__}
    layout, offset = [], 0
    for name, array in arrays.items():
        layout.append((name, array.dtype.str, array.shape, offset))
        offset += -(-array.nbytes // 64) * 64
    block = shared_memory.SharedMemory(create=True, size=max(offset, 1))
    try:
        for (name, dtype, shape, start), array in zip(layout, arrays.values()):
            np.ndarray(shape, dtype, buffer=block.buf, offset=start)[...] = array
        name = block.name
    finally:
        block.close()
    resource_tracker.unregister(block._name, "shared_memory")  # the parent unlinks it  # type: ignore[attr-defined]
    return name, layout


def _from_shared(name: str, layout: list[tuple[str, str, tuple[int, ...], int]]) -> Fingerprints:
    from multiprocessing import shared_memory

    block = shared_memory.SharedMemory(name=name)
    try:
        fields = {field: np.ndarray(shape, dtype, buffer=block.buf, offset=start).copy()
                  for field, dtype, shape, start in layout}
    finally:
        block.close()
        block.unlink()
    return Fingerprints(**fields)


def fingerprint_stream(batches: Iterable[list[Document]], config: Config,
                       workers: int = 1) -> Iterator[tuple[list[Document], Fingerprints]]:
    """Fingerprint a stream of batches, in order, in ``workers`` processes.

    At most two batches per worker are in flight, so a corpus of any size
    streams through bounded memory. One worker means no extra process. A
    worker receives texts and span arrays, not Document objects: pickling
    the documents' span tuples cost more than fingerprinting them.
    """
    if workers <= 1:
        for batch in batches:
            yield batch, fingerprint(batch, config)
        return
    import multiprocessing

    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    if compiled():
        replacement_table()  # built once here and inherited by forked workers, not once in each
    with context.Pool(workers) as pool:
        pending: deque = deque()
        try:
            for batch in batches:
                pending.append((batch, pool.apply_async(_fingerprint_worker, (*_layout(batch), config))))
                if len(pending) >= 2 * workers:
                    done, job = pending.popleft()
                    yield done, _from_shared(*job.get())
            while pending:
                done, job = pending.popleft()
                yield done, _from_shared(*job.get())
        finally:  # stopped early (an error, or the consumer stopped): free the blocks of jobs in flight
            for _, job in pending:
                try:
                    _from_shared(*job.get(timeout=600))
                except Exception:  # noqa: BLE001 - the worker's own error was not asked for
                    pass
