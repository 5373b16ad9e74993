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

from neardup.arrays import offsets, ranges, sorted_unique
from neardup.config import Config
from neardup.records import ShingleColumns

#: "figures-differ": a copy by its words whose figures differ (another day's notice, another edition's
#: prices; :mod:`neardup.match.figures`), when both texts are at hand.
Kind = Literal["exact", "near-duplicate", "figures-differ", "partial", "linked"]
KIND_ORDER = {"exact": 0, "near-duplicate": 1, "figures-differ": 2, "partial": 3, "linked": 4}


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
    """The paragraph pairs of documents ``query`` and ``match`` of ``columns`` that hold the same text.

    Paragraphs are compared as distinct forms (a paragraph repeated a thousand times is one form), so
    the work is bounded by the distinct text on each side, never by the square of its repeats. Each
    paragraph is reported with a paragraph of the form of the other side it shares most with (ties to
    the earlier form; the k-th repeat of a form pairs with the k-th repeat of its partner), both ways:
    at most one pair per paragraph of either side, and a paragraph merged from two paragraphs of the
    other side still pairs with both."""
    q_form, q_first = _forms(columns, query)
    m_form, m_first = _forms(columns, match)
    pairs = _shared_forms(columns, query, match, q_first, m_first, config)
    if pairs is None:
        return ()
    fi, fj, jaccard = pairs
    chosen: dict[tuple[int, int], float] = {}
    for mine, theirs, own, other, flip in ((q_form, m_form, fi, fj, False), (m_form, q_form, fj, fi, True)):
        best = _best_partner(own, other, jaccard, np.unique(theirs, return_index=True)[1], len(np.unique(mine)))
        occurrence, members, starts = _occurrences(mine), *_members(theirs)
        for paragraph, form in enumerate(mine.tolist()):
            k = int(best[form])
            if k < 0:
                continue
            partner_form = int(other[k])
            count = starts[partner_form + 1] - starts[partner_form]
            partner = int(members[starts[partner_form] + min(int(occurrence[paragraph]), count - 1)])
            chosen[(partner, paragraph) if flip else (paragraph, partner)] = float(jaccard[k])
    return tuple(SharedParagraph(i, j, similarity, (int(query_spans[i, 0]), int(query_spans[i, 1])),
                                 (int(match_spans[j, 0]), int(match_spans[j, 1])))
                 for (i, j), similarity in sorted(chosen.items()))


def _occurrences(forms: np.ndarray) -> np.ndarray:
    """For each paragraph, how many paragraphs of its form come before it (0 for the first)."""
    order = np.argsort(forms, kind="stable")
    starts = np.concatenate(([0], np.flatnonzero(np.diff(forms[order])) + 1))
    rank = np.arange(len(forms)) - np.repeat(starts, np.diff(np.append(starts, len(forms))))
    out = np.empty(len(forms), dtype=np.int64)
    out[order] = rank
    return out


def _members(forms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paragraphs of each form, in text order (form f's are ``members[starts[f]:starts[f + 1]]``)."""
    order = np.argsort(forms, kind="stable")
    return order, offsets(np.bincount(forms, minlength=int(forms.max(initial=-1)) + 1))


def _forms(columns: ShingleColumns, doc: int) -> tuple[np.ndarray, np.ndarray]:
    """Each paragraph's form (paragraphs with the same distinct shingles share one), numbered in
    order of first appearance, and each form's first paragraph."""
    first, last = int(columns.doc_offsets[doc]), int(columns.doc_offsets[doc + 1])
    offsets = columns.paragraph_offsets[first:last + 1]
    seen: dict[bytes, int] = {}
    form = np.empty(last - first, dtype=np.int64)
    for p in range(last - first):
        key = np.unique(columns.shingles[offsets[p]:offsets[p + 1]]).tobytes()
        form[p] = seen.setdefault(key, len(seen))
    _, firsts = np.unique(form, return_index=True)  # forms are numbered in order of appearance
    return form, firsts.astype(np.int64)


def _shared_forms(columns: ShingleColumns, query: int, match: int, q_first: np.ndarray, m_first: np.ndarray,
                  config: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(query form, match form, Jaccard) of the form pairs that hold the same text."""
    qa, qp = _distinct_pairs(columns, query, q_first)
    ma, mp = _distinct_pairs(columns, match, m_first)
    if len(qa) == 0 or len(ma) == 0:
        return None
    q_sizes, m_sizes = np.bincount(qp, minlength=len(q_first)), np.bincount(mp, minlength=len(m_first))
    order = np.argsort(ma, kind="stable")
    ma, mp = ma[order], mp[order]
    lo, hi = np.searchsorted(ma, qa, "left"), np.searchsorted(ma, qa, "right")
    left = np.repeat(qp, hi - lo)
    right = mp[ranges(lo, hi)]
    if len(left) == 0:
        return None
    width = len(m_first)
    cells, shared = np.unique(left * width + right, return_counts=True)
    i, j = cells // width, cells % width
    jaccard = shared / np.maximum(q_sizes[i] + m_sizes[j] - shared, 1)
    inside = shared / np.maximum(np.minimum(q_sizes[i], m_sizes[j]), 1)
    q_words = _paragraph_words(columns, query)[q_first]
    m_words = _paragraph_words(columns, match)[m_first]
    substantial = (q_words[i] >= config.min_paragraph_words) & (m_words[j] >= config.min_paragraph_words)
    same = ((jaccard >= config.paragraph_threshold) | (inside >= config.paragraph_containment)) & substantial
    return i[same], j[same], jaccard[same]


def _best_partner(mine: np.ndarray, other: np.ndarray, jaccard: np.ndarray, other_first: np.ndarray,
                  forms: int) -> np.ndarray:
    """For each of my forms, the index (into the pairs) of its best pair: highest Jaccard, then the
    other side's earliest paragraph; -1 for a form without one."""
    best = np.full(forms, -1, dtype=np.int64)
    if len(mine):
        order = np.lexsort((other_first[other], -jaccard, mine))
        firsts = order[np.concatenate(([True], mine[order][1:] != mine[order][:-1]))]
        best[mine[firsts]] = firsts
    return best


def _distinct_pairs(columns: ShingleColumns, doc: int, forms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hash, form) of a document's forms (each given by its first paragraph), each pair once."""
    start = int(columns.doc_offsets[doc])
    lo, hi = columns.paragraph_offsets[start + forms], columns.paragraph_offsets[start + forms + 1]
    hashes = columns.shingles[ranges(lo, hi)].astype(np.uint64)
    form = np.repeat(np.arange(len(forms), dtype=np.uint64), hi - lo)
    combined = sorted_unique((form << np.uint64(32)) | hashes)
    return (combined & np.uint64(0xFFFFFFFF)), (combined >> np.uint64(32)).astype(np.int64)


def _paragraph_words(columns: ShingleColumns, doc: int) -> np.ndarray:
    return columns.paragraph_words[int(columns.doc_offsets[doc]):int(columns.doc_offsets[doc + 1])]
