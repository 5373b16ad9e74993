"""Exact verification of document pairs, from their shingle sequences, and the decisions on top.

Every answer neardup gives — a query's matches, a dedup removal — rests on this module, so a
query and a dedup can never disagree about a pair. Candidates come from LSH; here each
candidate pair is measured exactly, with no estimate:

* **Jaccard** ``|A ∩ B| / |A ∪ B|`` of the two sets of distinct shingles;
* a word of A is **covered** by B when it lies in a shingle of A that B holds (a paragraph
  shorter than the shingle size is one shingle of all its words);
* **containment** of A in B: the share of A's words covered by B, each word weighted by its
  paragraph's weight (:mod:`neardup.match.boilerplate`: short lines and boilerplate weigh little), so a
  shared footer or byline is not a shared story. Counting words, not shingles, lets a six-word
  headline weigh six words against a templated line of twelve;
* **coverage** of A by B, unweighted — every word counts, furniture included: the smaller of
  the share of A's words that B covers and the share of A's distinct shingles that B holds.
  The first counts a three-word line as three words (a notice's company and dates are short
  lines), the second counts the runs that cross a re-cut (a flash line made of a headline and a
  figure is not held by the two lines it was cut from). Removing A in favour of B loses what is
  not covered, so dedup asks for coverage too;
* **evidence**: A's weighted covered words (the numerator of containment). A containment
  resting on a template line or two is not a copy;
* for dedup, the **story coverage** of A by B: coverage with A's furniture left out — the words
  and shingles B leaves uncovered in paragraphs held more widely than the story
  (``paragraph_holders``: while clustering, by more documents than hold any paragraph of A that
  B covers — an outlet's footer, carried by its pages of other stories, not a paragraph of the
  story that other copies carry too; once the clusters are known, by a kept document) — and A's
  **orphan words**: the words B leaves out of paragraphs of at least ``story_words`` words that
  are not furniture (a story of A's own, which removing A would lose).

:func:`kinds` classifies a pair for a query; :func:`holds` says whether one document may be
removed in favour of the other. The compiled kernel (``_pairs.c``) and the numpy path compute
the same numbers (tests hold them equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neardup import native
from neardup.config import Config
from neardup.match.figures import figure_gaps
from neardup.native import compiled
from neardup.records import ShingleColumns

#: Kind codes of :func:`kinds`, in order of strength; FIGURES_DIFFER marks a kept document that
#: another would hold but for its figures (dedup's CLUSTERS).
NONE, PARTIAL, NEAR_DUPLICATE, EXACT, FIGURES_DIFFER = 0, 1, 2, 3, 4
KIND_NAMES = {PARTIAL: "partial", NEAR_DUPLICATE: "near-duplicate", EXACT: "exact", FIGURES_DIFFER: "figures-differ"}



@dataclass(frozen=True)
class PairScores:
    """Exact measures of pairs (left[i], right[i]); the ratios are properties."""

    left: np.ndarray
    right: np.ndarray
    shared: np.ndarray          # distinct shingles in both
    left_distinct: np.ndarray
    right_distinct: np.ndarray
    left_found: np.ndarray      # left's covered words, weighted by paragraph
    left_total: np.ndarray      # left's words, weighted by paragraph
    right_found: np.ndarray
    right_total: np.ndarray
    left_covered: np.ndarray    # left's covered words, unweighted
    left_words: np.ndarray
    right_covered: np.ndarray
    right_words: np.ndarray
    same_text: np.ndarray       # bool: equal matching forms (document digests)
    left_loose_words: np.ndarray    # left's words the other leaves uncovered in its furniture
    left_loose_shingles: np.ndarray  # the same in shingles (occurrences)
    left_orphans: np.ndarray        # left's uncovered words of long paragraphs not furniture
    left_loose_found: np.ndarray    # left_loose_words weighted as left_found is
    left_own_found: np.ndarray      # left's uncovered words, weighted, of its additions (held by no other, or short)
    right_loose_words: np.ndarray
    right_loose_shingles: np.ndarray
    right_orphans: np.ndarray
    right_loose_found: np.ndarray
    right_own_found: np.ndarray
    #: paragraphs of either that the other holds with the same words and other figures (match.figures)
    figure_gaps: np.ndarray

    def __len__(self) -> int:
        return len(self.left)

    @staticmethod
    def from_columns(left: np.ndarray, right: np.ndarray, out: np.ndarray, same_text: np.ndarray,
                     figure_gaps: np.ndarray | None = None) -> PairScores:
        """Scores from the kernel's (pairs, 21) output, columns in its order, and the figure gaps."""
        c = [np.ascontiguousarray(out[:, k]) for k in range(VERIFY_COLUMNS)]
        return PairScores(left=left, right=right, shared=c[0], left_distinct=c[1], right_distinct=c[2],
                          left_found=c[3], left_total=c[4], right_found=c[5], right_total=c[6], left_covered=c[7],
                          left_words=c[8], right_covered=c[9], right_words=c[10], same_text=same_text,
                          left_loose_words=c[11], left_loose_shingles=c[12], left_orphans=c[13],
                          left_loose_found=c[14], left_own_found=c[15], right_loose_words=c[16],
                          right_loose_shingles=c[17], right_orphans=c[18], right_loose_found=c[19],
                          right_own_found=c[20],
                          figure_gaps=np.zeros(len(left)) if figure_gaps is None else figure_gaps)

    @property
    def jaccard(self) -> np.ndarray:
        union = self.left_distinct + self.right_distinct - self.shared
        return _ratio(self.shared, union)

    @property
    def left_in_right(self) -> np.ndarray:
        return _ratio(self.left_found, self.left_total)

    @property
    def right_in_left(self) -> np.ndarray:
        return _ratio(self.right_found, self.right_total)

    @property
    def left_coverage(self) -> np.ndarray:
        """How much of left right holds, unweighted: the smaller of the share of left's words
        that right covers and the share of left's distinct shingles that right holds."""
        words = _ratio(self.left_covered, self.left_words)
        return np.asarray(np.minimum(words, _ratio(self.shared, self.left_distinct)))

    @property
    def right_coverage(self) -> np.ndarray:
        return np.asarray(np.minimum(_ratio(self.right_covered, self.right_words),
                                     _ratio(self.shared, self.right_distinct)))

    @property
    def left_story_coverage(self) -> np.ndarray:
        """``left_coverage`` with the furniture right leaves out left out of left (the shingle
        count is of occurrences, so never below what is shared)."""
        words = _ratio(self.left_covered, self.left_words - self.left_loose_words)
        distinct = np.maximum(self.left_distinct - self.left_loose_shingles, self.shared)
        return np.asarray(np.minimum(words, _ratio(self.shared, distinct)))

    @property
    def left_story_in_right(self) -> np.ndarray:
        """``left_in_right`` with what right leaves out of left's furniture and of left's own
        additions (paragraphs no other document holds, lines too short to carry a story) left
        out: how much of the story that others carry too right holds — which of two versions is
        the fuller one."""
        return _ratio(self.left_found, self.left_total - self.left_loose_found - self.left_own_found)

    @property
    def right_story_in_left(self) -> np.ndarray:
        return _ratio(self.right_found, self.right_total - self.right_loose_found - self.right_own_found)

    def flipped(self) -> PairScores:
        return PairScores(self.right, self.left, self.shared, self.right_distinct, self.left_distinct,
                          self.right_found, self.right_total, self.left_found, self.left_total,
                          self.right_covered, self.right_words, self.left_covered, self.left_words, self.same_text,
                          self.right_loose_words, self.right_loose_shingles, self.right_orphans,
                          self.right_loose_found, self.right_own_found, self.left_loose_words,
                          self.left_loose_shingles, self.left_orphans, self.left_loose_found, self.left_own_found,
                          self.figure_gaps)

    def oriented(self, flip: np.ndarray) -> PairScores:
        """These scores with the pairs where ``flip`` is true seen from the other side."""
        if not np.any(flip):
            return self
        flipped = self.flipped()
        return PairScores(*(np.where(flip, getattr(flipped, name), getattr(self, name))
                            for name in PairScores.__dataclass_fields__))

    def select(self, rows: np.ndarray) -> PairScores:
        return PairScores(*(getattr(self, name)[rows] for name in PairScores.__dataclass_fields__))

    @staticmethod
    def concatenate(parts: Sequence[PairScores]) -> PairScores:
        if not parts:
            return empty_scores()
        return PairScores(*(np.concatenate([getattr(p, name) for p in parts])
                            for name in PairScores.__dataclass_fields__))


#: Columns of the kernel's output (``_pairs.c``), in PairScores order after left and right.
VERIFY_COLUMNS = 21


def empty_scores() -> PairScores:
    return PairScores.from_columns(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, VERIFY_COLUMNS)),
                                   np.zeros(0, bool))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-300), 0.0)


def score_pairs(columns: ShingleColumns, left: np.ndarray, right: np.ndarray, shingle_size: int,
                same_text: np.ndarray | None = None, story_words: int = Config.story_words,
                relative: bool = True, figure_words: int = Config.furniture_words) -> PairScores:
    """Measure pairs of documents of ``columns`` exactly (see the module docstring). Furniture is
    held by more documents than any paragraph the other covers (``relative``), or held at all.
    Figure gaps are counted in paragraphs of ``figure_words`` words or more, when the columns
    carry figure keys (dedup's do)."""
    left = np.ascontiguousarray(left, dtype=np.int64)
    right = np.ascontiguousarray(right, dtype=np.int64)
    out = np.zeros((len(left), VERIFY_COLUMNS), dtype=np.float64)
    if len(left):
        if compiled():
            native.pairs.verify_pairs(np.ascontiguousarray(columns.shingles, dtype=np.uint32),
                                      np.ascontiguousarray(columns.paragraph_offsets, dtype=np.int64),
                                      np.ascontiguousarray(columns.paragraph_words, dtype=np.int64),
                                      np.ascontiguousarray(columns.paragraph_weights, dtype=np.float64),
                                      columns.holders(), np.ascontiguousarray(columns.doc_offsets, dtype=np.int64),
                                      shingle_size, story_words, relative, left, right, out)
        else:
            for row, (a, b) in enumerate(zip(left.tolist(), right.tolist())):
                out[row] = _score_pair(columns, a, b, shingle_size, story_words, relative)
    same = np.zeros(len(left), bool) if same_text is None else np.asarray(same_text, dtype=bool)
    gaps = None
    if columns.paragraph_figures is not None:
        gaps = figure_gaps(columns.paragraph_figures, columns.paragraph_words, columns.doc_offsets, left, right,
                           figure_words)
    return PairScores.from_columns(left, right, out, same, gaps)


def _score_pair(columns: ShingleColumns, a: int, b: int, shingle_size: int, story_words: int,
                relative: bool) -> np.ndarray:
    """The numpy path of one pair: the kernel's 21 numbers."""
    ha, hb = columns.document_hashes(a), columns.document_hashes(b)
    ua, ub = np.unique(ha), np.unique(hb)
    shared = len(np.intersect1d(ua, ub, assume_unique=True))
    holders = columns.holders()
    sa = _side(columns, holders, a, np.isin(ha, ub), shingle_size, story_words, relative)
    sb = _side(columns, holders, b, np.isin(hb, ua), shingle_size, story_words, relative)
    return np.array([shared, len(ua), len(ub), sa[0], sa[1], sb[0], sb[1], sa[2], sa[3], sb[2], sb[3],
                     *sa[4:], *sb[4:]], float)


def _side(columns: ShingleColumns, holders: np.ndarray, doc: int, found: np.ndarray, k: int,
          story_words: int, relative: bool) -> list[float]:
    """Weighted covered and total words, covered and total words of one document; then the
    uncovered words and shingles of its furniture, its orphan words, the first of these
    weighted, and its additions' uncovered words, weighted (``_pairs.c`` says which paragraphs
    are furniture and which additions)."""
    first_para, last_para = int(columns.doc_offsets[doc]), int(columns.doc_offsets[doc + 1])
    base = int(columns.paragraph_offsets[first_para])
    paragraphs = range(first_para, last_para)
    spans = [(int(columns.paragraph_offsets[p]) - base, int(columns.paragraph_offsets[p + 1]) - base)
             for p in paragraphs]
    covered = [_covered_words(found[lo:hi], int(columns.paragraph_words[p]), k)
               for p, (lo, hi) in zip(paragraphs, spans)]
    story_holders = 0
    if relative:
        story_holders = max([1] + [int(holders[p]) for p, here in zip(paragraphs, covered)
                                   if here > 0 and 2 * here >= int(columns.paragraph_words[p])])
    out = [0.0] * 9
    for p, (lo, hi), here in zip(paragraphs, spans, covered):
        words, weight = int(columns.paragraph_words[p]), float(columns.paragraph_weights[p])
        out[0] += weight * here
        out[1] += weight * words
        out[2] += here
        out[3] += words
        if holders[p] > story_holders:
            out[4] += words - here
            out[5] += int((~found[lo:hi]).sum())
            out[7] += weight * (words - here)
        elif words >= story_words and 2 * here < words:
            out[6] += words - here
        if holders[p] <= story_holders and (holders[p] <= 1 or words < story_words):
            out[8] += weight * (words - here)
    return out


def _covered_words(hits: np.ndarray, words: int, k: int) -> int:
    """Words of one paragraph lying in a found shingle (one shingle of all words if < k words)."""
    if len(hits) == 0 or not hits.any():
        return 0
    if words < k:
        return words
    marks = np.zeros(words + 1, dtype=np.int64)
    starts = np.flatnonzero(hits)
    np.add.at(marks, starts, 1)
    np.add.at(marks, starts + k, -1)
    return int((np.cumsum(marks)[:words] > 0).sum())


def kinds(scores: PairScores, config: Config, min_containment: float | None = None) -> np.ndarray:
    """How two documents relate, for a query: EXACT (same matching form), NEAR_DUPLICATE
    (Jaccard >= threshold, or both containments >= near_duplicate_containment), PARTIAL
    (containment either way >= min_containment), or NONE. Containment-based decisions need
    ``min_shared_words`` of evidence on each side."""
    floor = config.min_containment if min_containment is None else min_containment
    evidence = np.minimum(scores.left_found, scores.right_found) >= config.min_shared_words
    low = np.minimum(scores.left_in_right, scores.right_in_left)
    high = np.maximum(scores.left_in_right, scores.right_in_left)
    out = np.full(len(scores), NONE, dtype=np.int8)
    out[evidence & (high >= floor)] = PARTIAL
    out[(scores.jaccard >= config.threshold) | (evidence & (low >= config.near_duplicate_containment))] = NEAR_DUPLICATE
    out[scores.same_text] = EXACT
    return out


def holds(scores: PairScores, config: Config, *, partial: bool = True, figures: bool = True) -> np.ndarray:
    """Whether ``right`` holds ``left``: ``left`` may be removed with ``right`` kept for it.

    The one hold rule, for every engine: the same matching form, or all of: ``left``'s story
    coverage by ``right`` >= ``min_coverage`` (every word counts but the furniture that other
    documents hold: what is removed must be in what is kept), its plain coverage >= ``min_held``,
    no orphan words (a story of ``left``'s own that ``right`` lacks), and either Jaccard >= ``threshold`` or — when
    ``partial`` copies may be removed — ``left``'s containment in ``right`` >=
    ``partial_containment`` with at least ``min_shared_words`` of weighted evidence — and in
    every case no figure gap (a sentence both hold with other figures: another day's notice; not
    asked with ``figures=False``). Use ``scores.flipped()`` for the other direction.
    """
    contained = ((scores.left_in_right >= config.partial_containment)
                 & (scores.left_found >= config.min_shared_words)) if partial else False
    covered = ((scores.left_story_coverage >= config.min_coverage) & (scores.left_coverage >= config.min_held)
               & (scores.left_orphans == 0))
    same_figures = (scores.figure_gaps == 0) | (not figures)
    similar = scores.same_text | (covered & ((scores.jaccard >= config.threshold) | contained))
    return np.asarray(same_figures & similar)
