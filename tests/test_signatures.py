"""MinHash signatures: bit-identical to datasketch, accurate, pinned."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from neardup import Config, Document, fingerprint
from neardup.errors import IndexFormatError
from neardup.sketch.signatures import (
    estimate_jaccard,
    from_lean_minhash,
    merge_signatures,
    minhash_sets,
    permutations,
    to_lean_minhash,
)
from strategies import hash_sets


def datasketch_signature(hashes: list[int], num_perm: int, seed: int) -> np.ndarray:
    sketch = MinHash(num_perm=num_perm, seed=seed, scheme="affine32", hashfunc=lambda v: v)
    sketch.update_batch(hashes)
    return sketch.hashvalues


@settings(max_examples=60, deadline=None)
@given(sets=st.lists(hash_sets, min_size=1, max_size=5), num_perm=st.sampled_from([1, 16, 64, 128, 256]),
       seed=st.integers(0, 2**32 - 1))
def test_signatures_equal_datasketch_bit_for_bit(sets, num_perm, seed):
    """Every set's signature equals datasketch's affine32 MinHash fed the same 32-bit hashes."""
    hashes = np.array([h for s in sets for h in s], dtype=np.uint32)
    owner = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    ours = minhash_sets(hashes, owner, len(sets), num_perm, seed)
    for row, values in enumerate(sets):
        assert np.array_equal(ours[row], datasketch_signature(values, num_perm, seed))


@settings(max_examples=30, deadline=None)
@given(sets=st.lists(hash_sets, min_size=1, max_size=6))
def test_article_signature_is_minhash_of_union(sets):
    """Merging paragraph signatures gives datasketch's MinHash of the union of their shingles."""
    hashes = np.array([h for s in sets for h in s], dtype=np.uint32)
    owner = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    paragraphs = minhash_sets(hashes, owner, len(sets), 128, 1)
    article = merge_signatures(paragraphs, np.zeros(len(sets), dtype=np.int64), 1)[0]
    union = sorted({h for s in sets for h in s})
    assert np.array_equal(article, datasketch_signature(union, 128, 1))


def test_empty_set_has_datasketch_empty_signature():
    """A set with no shingles gets all values at 2^32-1, as an empty datasketch MinHash."""
    sig = minhash_sets(np.zeros(0, np.uint32), np.zeros(0, np.int64), 2, 64, 7)
    assert np.array_equal(sig[0], MinHash(num_perm=64, seed=7, scheme="affine32").hashvalues)


def test_permutations_match_datasketch():
    """The (a, b) permutation parameters are the ones datasketch draws for the seed."""
    a, b = permutations(128, 42)
    reference = MinHash(num_perm=128, seed=42, scheme="affine32").permutations
    assert np.array_equal(a, reference[0]) and np.array_equal(b, reference[1])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(shared=st.integers(0, 400), left=st.integers(0, 400), right=st.integers(1, 400),
       offset=st.integers(0, 2**20))
def test_estimate_within_a_tenth_of_exact_jaccard(shared, left, right, offset):
    """With 128 permutations the estimated Jaccard is within ±0.1 of the exact one (fixed seed)."""
    common = list(range(offset, offset + shared))
    a = common + list(range(10**7 + offset, 10**7 + offset + left))
    b = common + list(range(2 * 10**7 + offset, 2 * 10**7 + offset + right))
    exact = shared / (shared + left + right)
    sig = minhash_sets(np.array(a + b, dtype=np.uint32), np.repeat([0, 1], [len(a), len(b)]), 2, 128, 1)
    assert abs(float(estimate_jaccard(sig[0], sig[1])) - exact) <= 0.1


GOLDEN_TEXT = ("Dockworkers at the port walked off the job on Saturday morning.\n"
               "The union said talks over remote-controlled cranes had collapsed.")


def test_golden_signature_of_a_fixed_text():
    """A fixed text keeps the same signature forever: a refactor cannot silently change hashing."""
    prints = fingerprint([Document.from_text("golden", GOLDEN_TEXT)], Config())
    article = prints.doc_signatures[0]
    assert article[:6].tolist() == GOLDEN_ARTICLE_HEAD
    assert int(article.astype(np.uint64).sum()) == GOLDEN_ARTICLE_SUM
    assert prints.paragraph_signatures[1][:4].tolist() == GOLDEN_SECOND_PARAGRAPH_HEAD
    assert prints.paragraph_sizes.tolist() == [7, 6]


GOLDEN_ARTICLE_HEAD = [171701496, 456478571, 308378237, 81924968, 61924435, 180275643]
GOLDEN_ARTICLE_SUM = 37551615266
GOLDEN_SECOND_PARAGRAPH_HEAD = [171701496, 456478571, 398124937, 81924968]


def test_lean_minhash_round_trip():
    """Export to datasketch.LeanMinHash and import back gives the same values; Jaccard agrees."""
    prints = fingerprint([Document.from_text("a", GOLDEN_TEXT), Document.from_text("b", GOLDEN_TEXT + " Extra.")],
                         Config())
    lean = [to_lean_minhash(s, 1) for s in prints.doc_signatures]
    assert isinstance(lean[0], LeanMinHash)
    assert np.array_equal(from_lean_minhash(lean[0], 128, 1), prints.doc_signatures[0])
    assert lean[0].jaccard(lean[1]) == pytest.approx(float(estimate_jaccard(*prints.doc_signatures)))
    buffer = bytearray(lean[0].bytesize())
    lean[0].serialize(buffer)
    assert np.array_equal(from_lean_minhash(LeanMinHash.deserialize(buffer), 128, 1), prints.doc_signatures[0])


def test_import_refuses_other_scheme_seed_or_size():
    """Signatures made with other parameters are refused, never compared silently."""
    with pytest.raises(IndexFormatError):
        from_lean_minhash(MinHash(num_perm=128, seed=1, scheme="legacy"), 128, 1)
    with pytest.raises(IndexFormatError):
        from_lean_minhash(MinHash(num_perm=128, seed=2, scheme="affine32"), 128, 1)
    with pytest.raises(IndexFormatError):
        from_lean_minhash(MinHash(num_perm=64, seed=1, scheme="affine32"), 128, 1)
