"""Compare two fingerprinted documents: Jaccard, containment both ways, shared paragraphs, kind.

Containment is estimated from paragraph signatures, so it needs no stored
shingles. For paragraphs ``q_i`` of A and ``m_j`` of B with estimated Jaccard
``J_ij`` and shingle counts ``a_i`` and ``b_j``, their shared shingles
number about ``I_ij = J_ij (a_i + b_j) / (1 + J_ij)``. Then

    containment(A in B) = Σ_i min(a_i, Σ_j I_ij) / Σ_i a_i,

the share of A's shingles found somewhere in B. Summing over ``j`` credits a
paragraph that B split in two, and the weights ``a_i`` keep short lines
(bylines, "ALSO READ" links) from counting for much. Estimates below
``NOISE_FLOOR`` are treated as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .config import Config
from .signatures import estimate_jaccard

Kind = Literal["exact", "near-duplicate", "partial", "linked"]
KIND_ORDER = {"exact": 0, "near-duplicate": 1, "partial": 2, "linked": 3}
#: Paragraph Jaccard estimates below this are chance agreement, not shared text.
NOISE_FLOOR = 0.1
#: One paragraph at least this much inside another counts as shared even when their
#: Jaccard is low (a paragraph merged with its neighbour, or cut short).
PARAGRAPH_CONTAINMENT = 0.8
#: Paragraph pairs compared per chunk (bounds the temporary boolean array).
_PAIR_CHUNK = 1 << 18


@dataclass(frozen=True)
class Side:
    """The fingerprints of one document, as :func:`compare` needs them."""

    signature: np.ndarray             # (num_perm,)
    digest: tuple[int, int]
    paragraph_signatures: np.ndarray  # (n, num_perm)
    paragraph_sizes: np.ndarray       # (n,)
    paragraph_words: np.ndarray       # (n,)
    paragraph_spans: np.ndarray       # (n, 2)
    paragraph_weights: np.ndarray     # (n,): 1, or less for boilerplate


@dataclass(frozen=True)
class SharedParagraph:
    """A paragraph of the query and a paragraph of the match that hold the same text."""

    query_paragraph: int
    match_paragraph: int
    similarity: float
    query_span: tuple[int, int]
    match_span: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
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
        return max(self.jaccard, self.query_in_match, self.match_in_query)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "jaccard": round(self.jaccard, 4),
                "jaccard_method": self.jaccard_method,
                "containment": {"query_in_match": round(self.query_in_match, 4),
                                "match_in_query": round(self.match_in_query, 4)},
                "shared_paragraphs": [p.to_dict() for p in self.shared_paragraphs]}


@dataclass(frozen=True)
class Comparison:
    """Everything :func:`compare` measures between two documents."""

    jaccard: float
    query_in_match: float
    match_in_query: float
    same_text: bool
    shared: tuple[SharedParagraph, ...]
    #: Weighted shingles of the query found in the match (the numerator of query_in_match),
    #: and the same for the match: how much real evidence the containments rest on.
    query_evidence: float = 0.0
    match_evidence: float = 0.0


def paragraph_jaccard(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of every paragraph of ``left`` with every one of ``right``."""
    out = np.zeros((len(left), len(right)))
    if len(left) == 0 or len(right) == 0:
        return out
    step = max(1, _PAIR_CHUNK // max(1, len(right)))
    for lo in range(0, len(left), step):
        out[lo:lo + step] = estimate_jaccard(left[lo:lo + step, None, :], right[None, :, :])
    return out


def shared_shingles(jaccard: np.ndarray, left_sizes: np.ndarray, right_sizes: np.ndarray) -> np.ndarray:
    """Estimated number of shingles every pair of paragraphs has in common."""
    sums = left_sizes[:, None].astype(float) + right_sizes[None, :].astype(float)
    shared = np.where(jaccard >= NOISE_FLOOR, jaccard * sums / (1.0 + jaccard), 0.0)
    return np.minimum(shared, np.minimum(left_sizes[:, None], right_sizes[None, :]))


def containment(shared: np.ndarray, sizes: np.ndarray, axis: int, weights: np.ndarray | None = None) -> float:
    """Share of one side's shingles found in the other (see the module docstring)."""
    found, total = _found_and_total(shared, sizes, axis, weights)
    return found / total if total > 0 else 0.0


def _found_and_total(shared: np.ndarray, sizes: np.ndarray, axis: int,
                     weights: np.ndarray | None) -> tuple[float, float]:
    weights = np.ones(len(sizes)) if weights is None else weights
    found = np.minimum(sizes, shared.sum(axis=axis)) if len(sizes) else np.zeros(0)
    return float((found * weights).sum()), float((sizes * weights).sum())


def compare(query: Side, match: Side, config: Config) -> Comparison:
    """Measure how much of each document is in the other."""
    jaccard_matrix = paragraph_jaccard(query.paragraph_signatures, match.paragraph_signatures)
    shared = shared_shingles(jaccard_matrix, query.paragraph_sizes, match.paragraph_sizes)
    return Comparison(
        jaccard=float(estimate_jaccard(query.signature, match.signature)),
        query_in_match=containment(shared, query.paragraph_sizes, axis=1, weights=query.paragraph_weights),
        match_in_query=containment(shared, match.paragraph_sizes, axis=0, weights=match.paragraph_weights),
        same_text=query.digest == match.digest,
        shared=_shared_paragraphs(jaccard_matrix, shared, query, match, config),
        query_evidence=_found_and_total(shared, query.paragraph_sizes, 1, query.paragraph_weights)[0],
        match_evidence=_found_and_total(shared, match.paragraph_sizes, 0, match.paragraph_weights)[0],
    )


def _shared_paragraphs(jaccard: np.ndarray, shared: np.ndarray, query: Side, match: Side,
                       config: Config) -> tuple[SharedParagraph, ...]:
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.maximum(shared / np.maximum(query.paragraph_sizes[:, None], 1),
                            shared / np.maximum(match.paragraph_sizes[None, :], 1))
    substantial = ((query.paragraph_words[:, None] >= config.min_paragraph_words)
                   & (match.paragraph_words[None, :] >= config.min_paragraph_words))
    pairs = np.argwhere(((jaccard >= config.paragraph_threshold) | (inside >= PARAGRAPH_CONTAINMENT)) & substantial)
    return tuple(SharedParagraph(int(i), int(j), float(jaccard[i, j]),
                                 (int(query.paragraph_spans[i, 0]), int(query.paragraph_spans[i, 1])),
                                 (int(match.paragraph_spans[j, 0]), int(match.paragraph_spans[j, 1])))
                 for i, j in pairs)


def boilerplate_weights(frequencies: np.ndarray, words: np.ndarray, config: Config) -> np.ndarray:
    """Weights of a document's paragraphs in containment.

    Short lines (fewer than ``min_paragraph_words`` words: bylines, menus,
    "Advertisement") weigh nothing unless the document has nothing else, so a
    shared page template of short lines cannot make two pages look alike.

    A paragraph is compared with the median frequency of the document's *other*
    substantial paragraphs, so one footer cannot raise its own yardstick.
    """
    if len(frequencies) == 0:
        return np.ones(0)
    substantial = words >= config.min_paragraph_words
    typical = _median_of_others(frequencies.astype(float), substantial)
    limit = np.maximum(config.boilerplate_min_df, config.boilerplate_ratio * typical)
    weights = np.minimum(1.0, limit / np.maximum(frequencies, 1)) ** 2
    return weights * substantial if substantial.any() else weights


def _median_of_others(values: np.ndarray, included: np.ndarray) -> np.ndarray:
    """For each position, the median of ``values[included]`` leaving that position out (0 if none)."""
    pool = np.sort(values[included])
    n = len(pool)
    if n == 0:
        return np.zeros(len(values))
    rank = np.searchsorted(pool, values, side="left")  # where an included value sits in the pool
    left_out = np.where(included, rank, n)              # n: nothing left out
    remaining = np.where(included, n - 1, n)

    def nth(index: np.ndarray) -> np.ndarray:
        """The index-th smallest of the pool once the left-out element is removed."""
        shifted = np.where(index >= left_out, index + 1, index)
        return pool[np.clip(shifted, 0, n - 1)]

    low = nth(np.maximum((remaining - 1) // 2, 0))
    high = nth(np.maximum(remaining // 2, 0))
    return np.where(remaining > 0, (low + high) / 2.0, 0.0)


def decide_kind(comparison: Comparison, jaccard: float, config: Config) -> Kind | None:
    """``exact``, ``near-duplicate``, ``partial``, or None when the match is below every threshold."""
    if comparison.same_text:
        return "exact"
    if jaccard >= config.threshold:
        return "near-duplicate"
    if min(comparison.query_evidence, comparison.match_evidence) < config.min_shared_shingles:
        return None  # containments resting on a template line or two are not evidence
    if min(comparison.query_in_match, comparison.match_in_query) >= config.near_duplicate_containment:
        return "near-duplicate"
    if max(comparison.query_in_match, comparison.match_in_query) >= config.min_containment:
        return "partial"
    return None
