"""LSH: bands and rows as datasketch derives them; band tables find what shares a band."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from neardup.sketch.lsh import BandTable, candidate_probability, optimal_bands


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


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 40), seed=st.integers(0, 1000))
def test_identical_signatures_always_collide_and_removed_items_never_return(rows, seed):
    """An item is found by its own signature until it is removed."""
    rng = np.random.default_rng(seed)
    signatures = rng.integers(0, 2**32, size=(rows, 64), dtype=np.uint64).astype(np.uint32)
    table = BandTable(16, 4)
    table.insert(signatures[: rows // 2], np.arange(rows // 2))
    table.insert(signatures[rows // 2:], np.arange(rows // 2, rows))
    query_rows, items = table.query(signatures)
    found = set(zip(query_rows.tolist(), items.tolist()))
    assert all((i, i) in found for i in range(rows))
    table.remove(np.array([0]))
    _, items = table.query(signatures[:1])
    assert 0 not in items.tolist()


def test_one_shared_band_is_enough_and_no_shared_band_is_nothing():
    """Signatures agreeing on one whole band are candidates; disagreeing everywhere, not."""
    base = np.arange(64, dtype=np.uint32)[None, :]
    one_band = base.copy()
    one_band[0, 4:] += 1000
    other = base + 5000
    table = BandTable(16, 4)
    table.insert(np.vstack([one_band, other]), np.array([10, 11]))
    _, items = table.query(base)
    assert items.tolist() == [10]
