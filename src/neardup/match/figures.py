"""Figure gaps: the sentences two documents share with other figures.

Two documents whose words agree and whose figures do not — one day's price and the next, a
notice's amounts, "+2.5" and "-2.5" — are not copies of each other, however similar their
shingles: removing either would lose its figures. A pair's *figure gaps* count the paragraphs
of either document (of at least ``min_words`` words: a byline's time or a headline's date tell
nothing) that the other holds with the same words but other figures, by the keys of
:mod:`neardup.text.figures`, and without the same figures anywhere else. Vectorised over a
batch of pairs: two sorted tables of (document, key) and one binary search per paragraph
with a figure. Dedup reads them for every pair; a query, for each match whose text the index
keeps (its kind is then ``figures-differ``).
"""

from __future__ import annotations

import numpy as np

from neardup.arrays import ranges
from neardup.text.figures import figure_keys
from neardup.text.shingles import fmix64

_HIGH = np.uint64(32)


def figure_gaps(keys: np.ndarray, paragraph_words: np.ndarray, doc_offsets: np.ndarray,
                left: np.ndarray, right: np.ndarray, min_words: int) -> np.ndarray:
    """Per pair (``left[i]``, ``right[i]``, documents of the columns): figure gaps, both ways (float64)."""
    keys = np.asarray(keys, dtype=np.uint64)
    doc_offsets = np.asarray(doc_offsets, dtype=np.int64)
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    out = np.zeros(len(left), dtype=np.float64)
    rows = np.flatnonzero((keys != 0) & (np.asarray(paragraph_words) >= min_words))
    if len(rows) == 0 or len(left) == 0:
        return out
    owner = np.repeat(np.arange(len(doc_offsets) - 1, dtype=np.int64), np.diff(doc_offsets))[rows]
    key = keys[rows]
    words = key >> _HIGH
    by_words, by_key = np.sort(_mix(owner, words)), np.sort(_mix(owner, key))
    starts = np.searchsorted(owner, np.arange(len(doc_offsets), dtype=np.int64))

    def one_way(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        lo, hi = starts[a], starts[a + 1]
        mine = ranges(lo, hi)
        pair = np.repeat(np.arange(len(a), dtype=np.int64), hi - lo)
        other = b[pair]
        gap = _member(by_words, _mix(other, words[mine])) & ~_member(by_key, _mix(other, key[mine]))
        return np.bincount(pair[gap], minlength=len(a))

    return np.asarray(out + one_way(left, right) + one_way(right, left), dtype=np.float64)


def figures_differ(first: list[str], first_words: np.ndarray, second: list[str], second_words: np.ndarray,
                   min_words: int) -> bool:
    """Whether two documents, given as their paragraphs' texts and word counts, have a figure gap."""
    keys = figure_keys([*first, *second])
    words = np.concatenate([np.asarray(first_words, np.int64), np.asarray(second_words, np.int64)])
    doc_offsets = np.array([0, len(first), len(first) + len(second)], dtype=np.int64)
    return bool(figure_gaps(keys, words, doc_offsets, np.array([0]), np.array([1]), min_words)[0] > 0)


def _mix(doc: np.ndarray, value: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return fmix64(value ^ fmix64(doc.astype(np.uint64) + np.uint64(1)))


def _member(table: np.ndarray, needles: np.ndarray) -> np.ndarray:
    at = np.minimum(np.searchsorted(table, needles), len(table) - 1)
    return np.asarray(table[at] == needles)
