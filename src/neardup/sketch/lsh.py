"""Locality-sensitive hashing over MinHash signatures: bands, rows and band tables.

A signature of ``num_perm`` values is cut into ``b`` bands of ``r`` rows; two
sets become candidates when all ``r`` values of at least one band agree. For
sets of Jaccard similarity ``s`` that happens with probability

    P(s) = 1 - (1 - s^r)^b,

an S-shaped curve whose steep part sits near ``(1/b)^(1/r)``. Given a
threshold ``t``, :func:`optimal_bands` picks ``(b, r)`` with ``b * r <= num_perm``
minimising ``w_fp * FP + w_fn * FN``, where ``FP = ∫_0^t P(s) ds`` is the
area of false positives and ``FN = ∫_t^1 (1 - P(s)) ds`` the area of false
negatives (the rule datasketch's ``MinHashLSH`` uses). Every candidate is
verified on the full signature afterwards, so false positives only cost time.

The index keeps, per band, the band keys of every stored item in a sorted array
(:mod:`neardup.index.segments`), so a whole batch of queries is answered with
``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from neardup.config import Config
from neardup.text.shingles import fmix64

_U64 = np.uint64
_GRID = np.linspace(0.0, 1.0, 2001)
_trapezoid = getattr(np, "trapezoid", None) or getattr(np, "trapz")  # noqa: B009 - trapz is gone in numpy 2


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative areas."""
    best, best_error = (1, 1), float("inf")
    below, above = threshold >= _GRID, threshold <= _GRID
    for b in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // b + 1)
        prob = 1.0 - (1.0 - _GRID[None, :] ** rows[:, None]) ** b
        fp = _trapezoid(np.where(below, prob, 0.0), _GRID, axis=1)
        fn = _trapezoid(np.where(above, 1.0 - prob, 0.0), _GRID, axis=1)
        error = weights[0] * fp + weights[1] * fn
        i = int(np.argmin(error))
        if error[i] < best_error - 1e-12:
            best, best_error = (b, int(rows[i])), float(error[i])
    return best


@dataclass(frozen=True)
class Bands:
    """(bands, rows) of the two LSH tables: article signatures and paragraph signatures.

    Derived from the configuration's thresholds (:func:`optimal_bands`), or its explicit
    ``article_bands`` / ``paragraph_bands``. Every index table, dedup band record and repetition
    search takes its bands from here, so they cannot disagree.
    """

    article: tuple[int, int]
    paragraph: tuple[int, int]

    @staticmethod
    def of(config: Config) -> Bands:
        """The bands ``config`` asks for."""
        return _bands_of(config)

    def digest_values(self) -> tuple[int, int, int, int]:
        """(article bands, rows, paragraph bands, rows): the order an index's config digest hashes."""
        return (*self.article, *self.paragraph)


@lru_cache(maxsize=64)
def _bands_of(config: Config) -> Bands:
    article = config.article_bands or optimal_bands(config.article_lsh_threshold, config.num_perm, config.lsh_weights)
    paragraph = config.paragraph_bands or optimal_bands(config.paragraph_lsh_threshold, config.num_perm,
                                                       config.lsh_weights)
    return Bands(article, paragraph)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that two sets of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - similarity ** rows) ** bands


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(n, bands)`` uint64 keys: each band's ``rows`` values hashed together."""
    n = signatures.shape[0]
    values = signatures[:, : bands * rows].reshape(n, bands, rows).astype(_U64)
    acc = np.zeros((n, bands), dtype=_U64)
    for j in range(rows):
        acc = fmix64(acc ^ values[:, :, j]) + _U64(j + 1)
    return acc


def fold32(keys: np.ndarray) -> np.ndarray:
    """64-bit band keys folded to 32 bits, for compact stored tables (collisions only add candidates)."""
    return np.asarray(((keys >> _U64(32)) ^ keys).astype(np.uint32))


def band_matches(table_keys: np.ndarray, table_items: np.ndarray, query_keys: np.ndarray,
                 runs: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All (query row, item) pairs whose key equals a key of one sorted band table.

    ``runs`` are the (lo, hi) bounds of each query key's run of equal keys when the
    caller found them already (the compiled look-up); otherwise they are searched here.
    Sorted ``query_keys`` make the searches walk the table in order (several times
    faster for large batches); callers with many keys sort them once. Most keys
    of a query find nothing, so the end of a run is searched only for keys found.
    """
    if len(table_keys) == 0 or len(query_keys) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if runs is not None:
        found = np.flatnonzero(runs[1] > runs[0])
        lo, counts = runs[0][found], (runs[1] - runs[0])[found]
    else:
        lo = np.searchsorted(table_keys, query_keys, "left")
        found = np.flatnonzero(table_keys[np.minimum(lo, len(table_keys) - 1)] == query_keys)
        lo = lo[found]
        counts = np.searchsorted(table_keys, query_keys[found], "right") - lo
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows = np.repeat(found, counts)
    base = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return rows, np.asarray(table_items[base + np.arange(total)], dtype=np.int64)


def distinct_pairs(rows_out: list[np.ndarray], items_out: list[np.ndarray],
                   removed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unique (row, item) pairs, without removed items."""
    if not rows_out or sum(len(r) for r in rows_out) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, items = np.concatenate(rows_out).astype(np.int64), np.concatenate(items_out).astype(np.int64)
    width = int(items.max()) + 1 if len(items) else 1
    keys = np.sort(rows * width + items)  # one sort of combined keys: far faster than unique(axis=0)
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    rows, items = keys // width, keys % width
    if removed is not None and len(removed):
        keep = ~np.isin(items, removed)
        rows, items = rows[keep], items[keep]
    return rows, items
