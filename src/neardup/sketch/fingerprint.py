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
from itertools import chain

import numpy as np
import xxhash

from neardup.config import Config
from neardup.document import Document
from neardup.native import compiled
from neardup.records import Fingerprints
from neardup.sketch.kernel import merge_rows, sign_paragraphs
from neardup.text.figures import span_figure_keys
from neardup.threads import ordered_map

#: The numpy path fingerprints documents in slices of about this many characters of text to
#: bound its temporary arrays; the compiled kernel needs no temporaries beyond its outputs.
_SLICE_CHARS = 4 << 20


def fingerprint(documents: Sequence[Document], config: Config, *, shingles: bool = False,
                figures: bool = False) -> Fingerprints:
    """Fingerprint ``documents`` (any number); ``shingles`` keeps every shingle hash for verification,
    ``figures`` gives the paragraphs' figure keys (:mod:`neardup.text.figures`)."""
    return fingerprint_columns(*layout(documents), config, shingles=shingles, figures=figures)


def layout(documents: Sequence[Document]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """What fingerprinting reads of documents: texts, paragraph spans (n, 2), paragraph offsets."""
    counts = np.fromiter((len(doc.paragraphs) for doc in documents), dtype=np.int64, count=len(documents))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    spans = np.fromiter(chain.from_iterable(chain.from_iterable(doc.paragraphs for doc in documents)),
                        dtype=np.int64, count=2 * int(offsets[-1])).reshape(-1, 2)
    return [doc.text for doc in documents], spans, offsets


def fingerprint_columns(texts: list[str], spans: np.ndarray, offsets: np.ndarray, config: Config, *,
                        shingles: bool = False, figures: bool = False) -> Fingerprints:
    """Fingerprint documents given as columns: ``texts[d]`` with paragraphs
    ``spans[offsets[d]:offsets[d + 1]]`` ((start, end) character spans); ``shingles`` and
    ``figures`` as :func:`fingerprint` says."""
    if compiled() or len(texts) < 2:
        return _fingerprint_slice(texts, spans, offsets, config, shingles, figures)
    # The numpy path's temporary arrays grow with the slice; bound them.
    parts, start, size = [], 0, 0
    for end, text in enumerate(texts, 1):
        size += len(text)
        if size >= _SLICE_CHARS or end == len(texts):
            lo, hi = int(offsets[start]), int(offsets[end])
            parts.append(_fingerprint_slice(texts[start:end], spans[lo:hi], offsets[start:end + 1] - lo, config,
                                            shingles, figures))
            start, size = end, 0
    return Fingerprints.concatenate(parts)


def _fingerprint_slice(texts: list[str], spans: np.ndarray, offsets: np.ndarray, config: Config,
                       shingles: bool, figures: bool) -> Fingerprints:
    owner_doc = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(offsets))
    prints = sign_paragraphs(texts, np.column_stack((owner_doc, spans)), offsets,
                             config.shingle_size, config.num_perm, config.seed, with_hashes=shingles)
    doc_sizes = np.bincount(owner_doc, weights=prints.paragraph_sizes, minlength=len(texts)).astype(np.int64)
    keys = None
    if figures:
        keys = span_figure_keys(texts, np.column_stack((owner_doc, spans)))
    return Fingerprints(
        doc_offsets=np.asarray(offsets, dtype=np.int64),
        paragraph_spans=spans,
        paragraph_words=prints.paragraph_words,
        paragraph_sizes=prints.paragraph_sizes,
        paragraph_digests=prints.paragraph_digests,
        paragraph_signatures=prints.paragraph_signatures,
        doc_sizes=doc_sizes,
        doc_digests=_doc_digests(prints.document_forms),
        doc_signatures=merge_rows(prints.paragraph_signatures, offsets),
        shingles=prints.shingles if shingles else None,
        paragraph_figures=keys,
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
