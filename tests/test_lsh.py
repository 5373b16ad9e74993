"""LSH: bands and rows as datasketch derives them; band tables find what shares a band."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from neardup import Config
from neardup.index.segments import Segment, Tables, build_arrays
from neardup.records import Fingerprints
from neardup.sketch.lsh import Bands, candidate_probability, optimal_bands


@pytest.mark.parametrize("threshold", [0.2, 0.4, 0.5, 0.7, 0.8, 0.9])
@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.3, 0.7)])
def test_bands_and_rows_match_datasketch(threshold, weights):
    """(b, r) minimise the same weighted error as datasketch's MinHashLSH."""
    assert optimal_bands(threshold, 128, weights) == _optimal_param(threshold, 128, *weights)


def test_s_curve_is_steep_around_the_threshold():
    """Pairs well above the tuning threshold almost always collide; pairs well below rarely do."""
    b, r = optimal_bands(0.5, 128)
    assert candidate_probability(0.8, b, r) > 0.99
    assert candidate_probability(0.2, b, r) < 0.05


def _tables(signatures: np.ndarray, numbers: np.ndarray, removed: tuple[int, ...] = ()) -> Tables:
    """The index's band tables (one segment) over article signatures, 16 bands of 4 rows."""
    n = len(numbers)
    prints = Fingerprints(np.zeros(n + 1, np.int64), np.zeros((0, 2), np.int64), np.zeros(0, np.int64),
                          np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros((0, 64), np.uint32),
                          np.ones(n, np.int64), np.zeros((n, 2), np.uint64), signatures)
    bands = Bands((16, 4), (16, 4))
    arrays = build_arrays(prints, numbers, bands, Config(num_perm=64), [f"d{k}" for k in numbers.tolist()])
    tables = Tables(bands, 64)
    tables.replace([Segment("s", arrays)], np.array(removed, dtype=np.int64))
    return tables


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 40), seed=st.integers(0, 1000))
def test_identical_signatures_always_collide_and_removed_items_never_return(rows, seed):
    """An item is found by its own signature until it is removed."""
    rng = np.random.default_rng(seed)
    signatures = rng.integers(0, 2**32, size=(rows, 64), dtype=np.uint64).astype(np.uint32)
    query_rows, items = _tables(signatures, np.arange(rows)).article_candidates(signatures)
    found = set(zip(query_rows.tolist(), items.tolist()))
    assert all((i, i) in found for i in range(rows))
    _, items = _tables(signatures, np.arange(rows), removed=(0,)).article_candidates(signatures[:1])
    assert 0 not in items.tolist()


def test_one_shared_band_is_enough_and_no_shared_band_is_nothing():
    """Signatures agreeing on one whole band are candidates; disagreeing everywhere, not."""
    base = np.arange(64, dtype=np.uint32)[None, :]
    one_band = base.copy()
    one_band[0, 4:] += 1000
    other = base + 5000
    _, items = _tables(np.vstack([one_band, other]), np.array([10, 11])).article_candidates(base)
    assert items.tolist() == [10]
