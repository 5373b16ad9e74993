"""What a match shows: its scores, and which paragraph of the query is which paragraph of the match.

The scores come from :mod:`neardup.match.scores` (exact, from the shingle sequences). The evidence
is exact too: for two paragraphs ``p`` (query) and ``q`` (match) with ``c`` shingles in
common and ``|p|``, ``|q|`` distinct shingles, they hold the same text when their Jaccard
``c / (|p| + |q| - c)`` reaches ``paragraph_threshold``, or when one lies inside the other
(``c / min(|p|, |q|) >= paragraph_containment``: a paragraph merged with its neighbour, or cut
short). Short lines are never evidence on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from neardup.arrays import ranges, sorted_unique
from neardup.config import Config
from neardup.records import ShingleColumns

Kind = Literal["exact", "near-duplicate", "partial", "linked"]
KIND_ORDER = {"exact": 0, "near-duplicate": 1, "partial": 2, "linked": 3}


@dataclass(frozen=True)
class SharedParagraph:
    """A paragraph of the query and a paragraph of the match that hold the same text."""

    query_paragraph: int
    match_paragraph: int
    similarity: float
    query_span: tuple[int, int]
    match_span: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        """The pair as JSON values (paragraph numbers, spans, similarity)."""
        return {"query_paragraph": self.query_paragraph, "match_paragraph": self.match_paragraph,
                "similarity": round(self.similarity, 4), "query_span": list(self.query_span),
                "match_span": list(self.match_span)}


@dataclass(frozen=True)
class Match:
    """One document that holds (some of) the query's text, and the evidence."""

    id: str
    kind: Kind
    jaccard: float
    jaccard_method: Literal["exact", "estimated"]
    query_in_match: float
    match_in_query: float
    shared_paragraphs: tuple[SharedParagraph, ...]
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def score(self) -> float:
        """The number matches are ranked by: the larger of Jaccard and either containment."""
        return max(self.jaccard, self.query_in_match, self.match_in_query)

    def to_dict(self) -> dict[str, Any]:
        """The match as the JSON line ``query --json`` prints."""
        return {"id": self.id, "kind": self.kind, "jaccard": round(self.jaccard, 4),
                "jaccard_method": self.jaccard_method,
                "containment": {"query_in_match": round(self.query_in_match, 4),
                                "match_in_query": round(self.match_in_query, 4)},
                "shared_paragraphs": [p.to_dict() for p in self.shared_paragraphs]}


def shared_paragraphs(columns: ShingleColumns, query: int, match: int, query_spans: np.ndarray,
                      match_spans: np.ndarray, config: Config) -> tuple[SharedParagraph, ...]:
    """The paragraph pairs of documents ``query`` and ``match`` of ``columns`` that hold the same text."""
    qa, qp = _distinct_pairs(columns, query)
    ma, mp = _distinct_pairs(columns, match)
    q_sizes, m_sizes = np.bincount(qp, minlength=len(query_spans)), np.bincount(mp, minlength=len(match_spans))
    if len(qa) == 0 or len(ma) == 0:
        return ()
    order = np.argsort(ma, kind="stable")
    ma, mp = ma[order], mp[order]
    lo, hi = np.searchsorted(ma, qa, "left"), np.searchsorted(ma, qa, "right")
    counts = hi - lo
    left = np.repeat(qp, counts)
    right = mp[ranges(lo, hi)]
    if len(left) == 0:
        return ()
    width = len(match_spans)
    cells, shared = np.unique(left * width + right, return_counts=True)
    i, j = cells // width, cells % width
    union = q_sizes[i] + m_sizes[j] - shared
    jaccard = shared / np.maximum(union, 1)
    inside = shared / np.maximum(np.minimum(q_sizes[i], m_sizes[j]), 1)
    q_words, m_words = _paragraph_words(columns, query), _paragraph_words(columns, match)
    substantial = (q_words[i] >= config.min_paragraph_words) & (m_words[j] >= config.min_paragraph_words)
    same = (jaccard >= config.paragraph_threshold) | (inside >= config.paragraph_containment)
    chosen = np.flatnonzero(same & substantial)
    return tuple(SharedParagraph(int(i[k]), int(j[k]), float(jaccard[k]),
                                 (int(query_spans[i[k], 0]), int(query_spans[i[k], 1])),
                                 (int(match_spans[j[k], 0]), int(match_spans[j[k], 1])))
                 for k in chosen.tolist())


def _distinct_pairs(columns: ShingleColumns, doc: int) -> tuple[np.ndarray, np.ndarray]:
    """(hash, paragraph) of a document, each pair once; paragraphs numbered within the document."""
    first, last = int(columns.doc_offsets[doc]), int(columns.doc_offsets[doc + 1])
    offsets = columns.paragraph_offsets[first:last + 1]
    hashes = columns.shingles[offsets[0]:offsets[-1]].astype(np.uint64)
    paragraph = np.repeat(np.arange(last - first, dtype=np.uint64), np.diff(offsets))
    combined = sorted_unique((paragraph << np.uint64(32)) | hashes)
    return (combined & np.uint64(0xFFFFFFFF)), (combined >> np.uint64(32)).astype(np.int64)


def _paragraph_words(columns: ShingleColumns, doc: int) -> np.ndarray:
    return columns.paragraph_words[int(columns.doc_offsets[doc]):int(columns.doc_offsets[doc + 1])]
