"""Paragraph weights in containment: body text counts, furniture does not.

Two kinds of paragraph are furniture rather than story:

* **short lines** (fewer than ``min_paragraph_words`` words: bylines, "Advertisement",
  menu items, "ALSO READ" links) weigh nothing — unless the document has nothing else,
  so that a short notice can still match itself;
* **boilerplate**: a paragraph held by far more documents than the document's other
  paragraphs (a site footer, a cookie notice, a template line). Its document frequency
  ``df`` (how many documents hold its matching form) is compared with the median df of
  the document's *other* body paragraphs, so one footer cannot raise its own yardstick::

      weight = min(1, limit / df)²,   limit = max(boilerplate_min_df, boilerplate_ratio × median)

  A wire story republished by a hundred outlets has all its paragraphs at df ≈ 100, and
  none of them is discounted; the footer of one of those outlets, at df ≈ 5,000, is.

Everything here works on whole batches of paragraphs at once (no loop per document).
"""

from __future__ import annotations

import numpy as np

from neardup import native
from neardup.config import Config
from neardup.native import compiled


def document_frequencies(digests: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct paragraph digests and how many distinct owners hold each (sorted by digest)."""
    digests = np.asarray(digests, dtype=np.uint64)
    owners = np.asarray(owners, dtype=np.int64)
    if len(digests) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    order = np.lexsort((owners, digests))
    d, o = digests[order], owners[order]
    first = np.ones(len(d), dtype=bool)
    first[1:] = (d[1:] != d[:-1]) | (o[1:] != o[:-1])
    d = d[first]
    starts = np.flatnonzero(np.concatenate(([True], d[1:] != d[:-1])))
    counts = np.diff(np.append(starts, len(d)))
    return d[starts], counts.astype(np.int64)


def paragraph_frequencies(digests: np.ndarray, doc_offsets: np.ndarray) -> np.ndarray:
    """For every paragraph of a corpus, how many distinct documents hold its digest."""
    digests = np.ascontiguousarray(digests, dtype=np.uint64)
    doc_offsets = np.ascontiguousarray(doc_offsets, dtype=np.int64)
    if compiled():
        out = np.empty(len(digests), dtype=np.int64)
        native.pairs.document_frequencies(digests, doc_offsets, out)
        return out
    owners = np.repeat(np.arange(len(doc_offsets) - 1), np.diff(doc_offsets))
    return lookup_frequencies(document_frequencies(digests, owners), digests)


def lookup_frequencies(table: tuple[np.ndarray, np.ndarray], digests: np.ndarray) -> np.ndarray:
    """df of each digest in a table of :func:`document_frequencies` (0 when absent)."""
    keys, counts = table
    if len(keys) == 0:
        return np.zeros(len(digests), dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, digests), len(keys) - 1)
    return np.where(keys[at] == digests, counts[at], 0).astype(np.int64)


def paragraph_weights(frequencies: np.ndarray, words: np.ndarray, doc_offsets: np.ndarray,
                      config: Config) -> np.ndarray:
    """The weight of every paragraph of a batch of documents (see the module docstring)."""
    frequencies = np.ascontiguousarray(frequencies, dtype=np.float64)
    words = np.ascontiguousarray(words, dtype=np.int64)
    count = len(frequencies)
    if count == 0:
        return np.zeros(0)
    if compiled():
        out = np.empty(count, dtype=np.float64)
        native.pairs.paragraph_weights(frequencies, words, np.ascontiguousarray(doc_offsets, dtype=np.int64),
                                 config.min_paragraph_words, float(config.boilerplate_min_df),
                                 float(config.boilerplate_ratio), out)
        return out
    owner = np.repeat(np.arange(len(doc_offsets) - 1), np.diff(doc_offsets))
    substantial = words >= config.min_paragraph_words
    typical = _median_of_others(frequencies, substantial, owner, len(doc_offsets) - 1)
    limit = np.maximum(config.boilerplate_min_df, config.boilerplate_ratio * typical)
    weights = np.minimum(1.0, limit / np.maximum(frequencies, 1.0)) ** 2
    has_body = np.bincount(owner, weights=substantial, minlength=len(doc_offsets) - 1) > 0
    return np.where(substantial | ~has_body[owner], weights, 0.0)


def _median_of_others(values: np.ndarray, included: np.ndarray, owner: np.ndarray, docs: int) -> np.ndarray:
    """For each paragraph, the median of its document's included values leaving itself out
    (0 when nothing is left), for all documents at once.

    The included values of each document are sorted into one pool; a paragraph's median is
    read off its document's block, skipping its own slot when it is included.
    """
    pool_order = np.lexsort((values, owner))          # by document, then value
    pool_order = pool_order[included[pool_order]]
    pool = values[pool_order]
    per_doc = np.bincount(owner[included], minlength=docs)
    block = np.concatenate(([0], np.cumsum(per_doc)))
    n = per_doc[owner]                                 # included values of the paragraph's document
    own_rank = np.full(len(values), -1, dtype=np.int64)
    own_rank[pool_order] = np.arange(len(pool_order)) - block[owner[pool_order]]
    remaining = np.where(included, n - 1, n)
    base = block[owner]

    def nth(index: np.ndarray) -> np.ndarray:
        """The index-th smallest of the document's pool once the paragraph's own value is out."""
        shifted = np.where(included & (index >= own_rank), index + 1, index)
        at = np.clip(base + shifted, 0, max(len(pool) - 1, 0))
        return pool[at] if len(pool) else np.zeros(len(index))

    low = nth(np.maximum((remaining - 1) // 2, 0))
    high = nth(np.maximum(remaining // 2, 0))
    return np.where(remaining > 0, (low + high) / 2.0, 0.0)
