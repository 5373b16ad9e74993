"""Small array helpers the stages share: ranges of indices, offsets, starts of runs."""

from __future__ import annotations

import numpy as np


def ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(lo[i], hi[i])`` for every i, without a Python loop."""
    lengths = np.asarray(hi, dtype=np.int64) - np.asarray(lo, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.asarray(lo, dtype=np.int64) - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return starts + np.arange(total, dtype=np.int64)


def offsets(lengths: np.ndarray) -> np.ndarray:
    """``[0, l0, l0 + l1, ...]``: where each of consecutive runs of these lengths starts."""
    return np.concatenate(([0], np.cumsum(lengths, dtype=np.int64))).astype(np.int64)


def run_starts(values: np.ndarray) -> np.ndarray:
    """True where a run of equal consecutive values (rows, for 2-D) starts."""
    first = np.ones(len(values), dtype=bool)
    if len(values) > 1:
        differs = values[1:] != values[:-1]
        first[1:] = differs.any(axis=1) if differs.ndim > 1 else differs
    return first


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending: a sort and a pass (numpy's hash-based ``unique`` is several
    times slower on large integer arrays)."""
    ordered = np.sort(np.asarray(values), kind="stable" if np.asarray(values).dtype.itemsize <= 2 else None)
    return np.asarray(ordered[run_starts(ordered)])
