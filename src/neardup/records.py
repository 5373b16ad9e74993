"""The records that carry documents' columns between the layers, one per concept, one spelling.

Every per-paragraph column is named the same wherever it travels, from the kernel to CLUSTERS and in
the Spark engine's Arrow batches: ``paragraph_spans``, ``paragraph_words`` (tokens of the matching
form), ``paragraph_sizes`` (shingles, repeats included), ``paragraph_digests``, ``paragraph_weights``
(weight in containment), ``paragraph_signatures``; per document ``doc_sizes``, ``doc_digests``,
``doc_signatures``; ``X_offsets`` says where each X's run starts in the next array down
(``doc_offsets`` into the paragraphs, ``paragraph_offsets`` into the shingles).

* :class:`Fingerprints` — what the fingerprint stage gives for a batch of documents;
* :class:`ShingleColumns` — what exact scoring reads: shingle sequences with paragraph words and weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from neardup.arrays import offsets, ranges


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
    #: uint64 (paragraphs,): text.figures keys, when asked for
    paragraph_figures: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.doc_sizes)

    def paragraph_rows(self, doc: int) -> slice:
        """The rows of document ``doc``'s paragraphs in the paragraph columns."""
        return slice(int(self.doc_offsets[doc]), int(self.doc_offsets[doc + 1]))

    @property
    def paragraph_owners(self) -> np.ndarray:
        """The document (row) of every paragraph."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.doc_offsets))

    def columns(self, weights: np.ndarray | None = None) -> ShingleColumns:
        """The shingle sequences as scoring reads them (weights 1 unless given)."""
        if self.shingles is None:
            raise ValueError("fingerprints computed without shingles")
        count = len(self.paragraph_sizes)
        return ShingleColumns(
            shingles=self.shingles,
            paragraph_offsets=offsets(self.paragraph_sizes),
            paragraph_words=self.paragraph_words.astype(np.int64),
            paragraph_weights=np.ones(count) if weights is None else np.asarray(weights, dtype=np.float64),
            doc_offsets=self.doc_offsets.astype(np.int64),
            paragraph_figures=self.paragraph_figures,
        )

    def without_signatures(self) -> Fingerprints:
        """The same fingerprints without the signatures (4 bytes a permutation and paragraph: what a
        run that does not index needs least)."""
        none = np.zeros((0, self.paragraph_signatures.shape[1] if self.paragraph_signatures.ndim == 2 else 0),
                        dtype=np.uint32)
        return replace(self, paragraph_signatures=none, doc_signatures=none)

    @property
    def has_signatures(self) -> bool:
        """Whether the signatures were kept (:meth:`without_signatures` drops them)."""
        return len(self.doc_signatures) == len(self) or len(self) == 0

    def select(self, rows: Sequence[int] | np.ndarray) -> Fingerprints:
        """The fingerprints of some documents (rows), in the order given."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == len(self) and np.array_equal(rows, np.arange(len(self))):
            return self
        counts = np.diff(self.doc_offsets)[rows]
        paragraphs = ranges(self.doc_offsets[rows], self.doc_offsets[rows + 1])
        shingles = None
        if self.shingles is not None:
            ends = np.cumsum(self.paragraph_sizes)
            shingles = self.shingles[ranges(ends[paragraphs] - self.paragraph_sizes[paragraphs], ends[paragraphs])]
        signed = self.has_signatures
        return Fingerprints(offsets(counts), self.paragraph_spans[paragraphs], self.paragraph_words[paragraphs],
                            self.paragraph_sizes[paragraphs], self.paragraph_digests[paragraphs],
                            self.paragraph_signatures[paragraphs] if signed else self.paragraph_signatures,
                            self.doc_sizes[rows], self.doc_digests[rows],
                            self.doc_signatures[rows] if signed else self.doc_signatures, shingles,
                            None if self.paragraph_figures is None else self.paragraph_figures[paragraphs])

    @staticmethod
    def concatenate(parts: Sequence[Fingerprints]) -> Fingerprints:
        """One batch of fingerprints made of several, in order."""
        if len(parts) == 1:
            return parts[0]
        shift = np.cumsum([0] + [int(p.doc_offsets[-1]) for p in parts[:-1]])
        doc_offsets = np.concatenate([parts[0].doc_offsets[:1]] + [p.doc_offsets[1:] + s for p, s in zip(parts, shift)])
        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        shingles = None if any(p.shingles is None for p in parts) else cat("shingles")
        figures = None if any(p.paragraph_figures is None for p in parts) else cat("paragraph_figures")
        return Fingerprints(doc_offsets, cat("paragraph_spans"), cat("paragraph_words"), cat("paragraph_sizes"),
                            cat("paragraph_digests"), cat("paragraph_signatures"), cat("doc_sizes"),
                            cat("doc_digests"), cat("doc_signatures"), shingles, figures)



@dataclass(frozen=True)
class ShingleColumns:
    """The shingle sequences of a batch of documents, as columns.

    Paragraph ``p`` holds shingles ``shingles[paragraph_offsets[p]:paragraph_offsets[p + 1]]`` in text
    order and ``paragraph_words[p]`` words; document ``d`` holds paragraphs
    ``doc_offsets[d]:doc_offsets[d + 1]``. ``paragraph_weights`` are the paragraphs' weights in
    containment (1 for a body paragraph); ``paragraph_holders`` how many documents are known to
    hold each paragraph (dedup's story rule, :mod:`neardup.match.scores`; none when absent).
    """

    shingles: np.ndarray      # uint32
    paragraph_offsets: np.ndarray  # int64 (paragraphs + 1)
    paragraph_words: np.ndarray    # int64 (paragraphs,)
    paragraph_weights: np.ndarray  # float64 (paragraphs,)
    doc_offsets: np.ndarray   # int64 (docs + 1)
    paragraph_holders: np.ndarray | None = None  # int64 (paragraphs,)
    paragraph_figures: np.ndarray | None = None  # uint64 (paragraphs,): text.figures keys

    def holders(self) -> np.ndarray:
        """``paragraph_holders`` as int64, zeros when absent."""
        if self.paragraph_holders is None:
            return np.zeros(len(self.paragraph_words), np.int64)
        return np.ascontiguousarray(self.paragraph_holders, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.doc_offsets) - 1

    @staticmethod
    def empty() -> ShingleColumns:
        return ShingleColumns(np.zeros(0, np.uint32), np.zeros(1, np.int64), np.zeros(0, np.int64),
                              np.zeros(0, np.float64), np.zeros(1, np.int64))

    def with_weights(self, weights: np.ndarray) -> ShingleColumns:
        return ShingleColumns(self.shingles, self.paragraph_offsets, self.paragraph_words,
                              np.ascontiguousarray(weights, dtype=np.float64), self.doc_offsets,
                              self.paragraph_holders, self.paragraph_figures)

    def take(self, docs: np.ndarray) -> ShingleColumns:
        """The columns of some documents, in the order given."""
        docs = np.asarray(docs, dtype=np.int64)
        para_lo, para_hi = self.doc_offsets[docs], self.doc_offsets[docs + 1]
        paragraphs = ranges(para_lo, para_hi)
        shingle_lo, shingle_hi = self.paragraph_offsets[paragraphs], self.paragraph_offsets[paragraphs + 1]
        return ShingleColumns(
            shingles=self.shingles[ranges(shingle_lo, shingle_hi)],
            paragraph_offsets=offsets(shingle_hi - shingle_lo),
            paragraph_words=self.paragraph_words[paragraphs],
            paragraph_weights=self.paragraph_weights[paragraphs],
            doc_offsets=offsets(para_hi - para_lo),
            paragraph_holders=None if self.paragraph_holders is None else self.paragraph_holders[paragraphs],
            paragraph_figures=None if self.paragraph_figures is None else self.paragraph_figures[paragraphs],
        )

    @staticmethod
    def concatenate(parts: Sequence[ShingleColumns]) -> ShingleColumns:
        parts = [p for p in parts if len(p.doc_offsets) > 1] or [ShingleColumns.empty()]
        if len(parts) == 1:
            return parts[0]
        return ShingleColumns(
            shingles=np.concatenate([p.shingles for p in parts]),
            paragraph_offsets=offsets(np.concatenate([np.diff(p.paragraph_offsets) for p in parts])),
            paragraph_words=np.concatenate([p.paragraph_words for p in parts]),
            paragraph_weights=np.concatenate([p.paragraph_weights for p in parts]),
            doc_offsets=offsets(np.concatenate([np.diff(p.doc_offsets) for p in parts])),
            paragraph_holders=(None if all(p.paragraph_holders is None for p in parts)
                               else np.concatenate([p.holders() for p in parts])),
            paragraph_figures=(None if any(p.paragraph_figures is None for p in parts)
                               else np.concatenate([p.paragraph_figures for p in parts])),
        )

    def document_hashes(self, doc: int) -> np.ndarray:
        lo, hi = self.paragraph_offsets[self.doc_offsets[doc]], self.paragraph_offsets[self.doc_offsets[doc + 1]]
        return self.shingles[lo:hi]


