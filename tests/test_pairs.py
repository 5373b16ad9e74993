"""The compiled pair stages (_pairs.c) compute exactly what their numpy twins compute, and the
exact measures mean what verify.py says they mean."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neardup import Config, native
from neardup.match.boilerplate import paragraph_frequencies, paragraph_weights
from neardup.match.candidates import _bucket_pairs_numpy, bucket_keys, bucket_pairs, split_pairs
from neardup.match.scores import PairScores, holds, kinds, score_pairs
from neardup.native import compiled
from neardup.records import ShingleColumns

needs_pairs = pytest.mark.skipif(not compiled(), reason="built without a C compiler")


def both(function):
    """(compiled result, numpy result) of a function of no arguments."""
    native.force_numpy(False)
    fast = function()
    native.force_numpy(True)
    try:
        slow = function()
    finally:
        native.force_numpy(False)
    return fast, slow


paragraph = st.lists(st.integers(0, 40), min_size=0, max_size=30)  # small hash alphabet: many shared shingles
documents = st.lists(st.lists(paragraph, min_size=0, max_size=5), min_size=2, max_size=6)


def columns_of(docs: list[list[list[int]]], k: int, weights_seed: int, holders: bool = False) -> ShingleColumns:
    """Columns whose paragraphs hold the given shingle hashes; words consistent with k; with
    ``holders``, a random count of documents holding each paragraph (0 to 4)."""
    rng = np.random.default_rng(weights_seed)
    hashes, sizes, words, counts = [], [], [], []
    for doc in docs:
        counts.append(len(doc))
        for para in doc:
            hashes += para
            sizes.append(len(para))
            words.append(0 if not para else (len(para) + k - 1 if len(para) > 1 else int(rng.integers(1, k + 1))))
    return ShingleColumns(np.array(hashes, dtype=np.uint32), np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
                          np.array(words, dtype=np.int64), rng.choice([0.0, 0.25, 1.0], size=len(sizes)),
                          np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
                          rng.integers(0, 5, size=len(sizes)) if holders else None)


@needs_pairs
@settings(max_examples=300, deadline=None)
@given(docs=documents, seed=st.integers(0, 1000), k=st.sampled_from([1, 3, 5]), holders=st.booleans(),
       story_words=st.sampled_from([3, 8, 20]), relative=st.booleans())
def test_verify_pairs_compiled_equals_numpy(docs, seed, k, holders, story_words, relative):
    """Every one of the numbers of every pair, both paths, with and without paragraph holders,
    furniture relative to the story or absolute."""
    columns = columns_of(docs, k, seed, holders)
    n = len(docs)
    left, right = np.array([i for i in range(n) for j in range(n)]), np.array([j for i in range(n) for j in range(n)])
    fast, slow = both(lambda: score_pairs(columns, left, right, k, None, story_words, relative))
    for name in PairScores.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)


@settings(max_examples=200, deadline=None)
@given(docs=documents, seed=st.integers(0, 1000))
def test_exact_measures_mean_what_they_say(docs, seed):
    """Jaccard is over distinct shingles; a document is fully covered by itself; scores are in [0, 1]
    and symmetric as they should be; holds/kinds agree with their definitions."""
    columns = columns_of(docs, 5, seed)
    n = len(docs)
    left, right = np.array([i for i in range(n) for j in range(n)]), np.array([j for i in range(n) for j in range(n)])
    scores = score_pairs(columns, left, right, 5)
    sets = [set(h for para in doc for h in para) for doc in docs]
    for row, (i, j) in enumerate(zip(left.tolist(), right.tolist())):
        union = len(sets[i] | sets[j])
        assert scores.jaccard[row] == pytest.approx(len(sets[i] & sets[j]) / union if union else 0.0)
        if i == j and sets[i]:
            assert scores.left_coverage[row] == 1.0
    for ratio in (scores.jaccard, scores.left_in_right, scores.left_coverage):
        assert np.all((ratio >= 0) & (ratio <= 1))
    flipped = scores.flipped()
    np.testing.assert_array_equal(flipped.left_coverage, scores.right_coverage)
    config = Config()
    held = holds(scores, config)
    # no paragraph held elsewhere: the story coverage is the coverage, and a long paragraph that the
    # other holds less than half of is an orphan
    np.testing.assert_array_equal(scores.left_story_coverage, scores.left_coverage)
    orphans = np.zeros(len(left))
    for row, (i, j) in enumerate(zip(left.tolist(), right.tolist())):
        held_shingles = {h for para in docs[j] for h in para}
        for p in range(int(columns.doc_offsets[i]), int(columns.doc_offsets[i + 1])):
            words = int(columns.paragraph_words[p])
            covered = _plain_covered(docs[i][p - int(columns.doc_offsets[i])], words, held_shingles, 5)
            if words >= config.story_words and 2 * covered < words:
                orphans[row] += words - covered
    np.testing.assert_array_equal(scores.left_orphans, orphans)
    expected = scores.same_text | ((scores.left_coverage >= config.min_coverage) & (orphans == 0)
                                   & (scores.left_coverage >= config.min_held) & (
        (scores.jaccard >= config.threshold) | ((scores.left_in_right >= config.partial_containment)
                                                & (scores.left_found >= config.min_shared_words))))
    np.testing.assert_array_equal(held, expected)
    assert np.all(kinds(scores, config) == kinds(flipped, config))


def _plain_covered(shingles: list[int], words: int, held: set[int], k: int) -> int:
    """Words of a paragraph (shingle i covers words i..i+k-1; fewer than k words: one shingle of
    all) lying in a shingle the other document holds."""
    marks = [False] * words
    for i, h in enumerate(shingles):
        if h in held:
            for t in range(i, min(i + k, words) if words >= k else words):
                marks[t] = True
    return sum(marks)


@needs_pairs
@settings(max_examples=200, deadline=None)
@given(buckets=st.lists(st.lists(st.integers(0, 60), min_size=1, max_size=30, unique=True), max_size=12),
       cap=st.integers(2, 12), pivots=st.integers(1, 5), seed=st.integers(0, 99))
def test_bucket_pairs_compiled_equals_numpy(buckets, cap, pivots, seed):
    """The same set of pairs from every bucket, small (all pairs) or over the cap (pivot stars)."""
    values = np.unique(np.concatenate([(np.uint64(k) << np.uint64(32)) | np.array(b, dtype=np.uint64)
                                       for k, b in enumerate(buckets)] or [np.zeros(0, np.uint64)]))
    rank = np.random.default_rng(seed).permutation(61).astype(np.uint32)
    fast, stats = bucket_pairs(values, rank, cap, pivots)
    slow, slow_stats = _bucket_pairs_numpy(values, rank, cap, pivots)
    assert set(fast.tolist()) == set(slow.tolist()) and stats.large_buckets == slow_stats.large_buckets
    low, high = split_pairs(fast)
    assert np.all(low < high)
    for bucket in buckets:
        if 2 <= len(bucket) <= cap:  # every pair of a small bucket
            members = sorted(bucket)
            assert all(((a << 32) | b) in set(fast.tolist()) for x, a in enumerate(members) for b in members[x + 1:])


@needs_pairs
@settings(max_examples=100, deadline=None)
@given(rows=st.integers(0, 20), seed=st.integers(0, 1000), bands=st.sampled_from([(25, 5), (32, 4), (1, 1)]))
def test_bucket_keys_compiled_equals_numpy(rows, seed, bands):
    signatures = np.random.default_rng(seed).integers(0, 2**32, size=(rows, 128), dtype=np.uint64).astype(np.uint32)
    fast, slow = both(lambda: bucket_keys(signatures, *bands))
    np.testing.assert_array_equal(fast, slow)


@needs_pairs
@settings(max_examples=300, deadline=None)
@given(docs=st.lists(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 12)), max_size=9), max_size=12),
       scale=st.sampled_from([1, 3, 20]))
def test_frequencies_and_weights_compiled_equal_numpy(docs, scale):
    """Distinct-document frequencies of paragraph digests, and the boilerplate weights, both paths."""
    digests = np.array([d for doc in docs for d, _ in doc], dtype=np.uint64)
    words = np.array([w for doc in docs for _, w in doc], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum([len(d) for d in docs]))).astype(np.int64)
    config = Config(boilerplate_min_df=2, boilerplate_ratio=1.5)
    (f1, w1), (f2, w2) = both(lambda: (paragraph_frequencies(digests, offsets),
                                       paragraph_weights(paragraph_frequencies(digests, offsets) * scale, words,
                                                         offsets, config)))
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(w1, w2)
    for doc_index, doc in enumerate(docs):  # df counts documents, not occurrences
        for p, (digest, _) in enumerate(doc):
            holders = sum(any(d == digest for d, _ in other) for other in docs)
            assert f1[offsets[doc_index] + p] == holders


@needs_pairs
@pytest.mark.parametrize("seed", range(5))
def test_frequencies_of_long_documents_and_common_paragraphs(seed):
    """Documents of more than 32 paragraphs (the kernel sorts them) and a paragraph held by most
    documents (counted by two binary searches, not a scan): df counts distinct documents."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 120, size=60)
    digests = rng.integers(0, 50, size=int(sizes.sum())).astype(np.uint64)
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    fast, slow = both(lambda: paragraph_frequencies(digests, offsets))
    np.testing.assert_array_equal(fast, slow)
    sets = [set(digests[a:b].tolist()) for a, b in itertools.pairwise(offsets.tolist())]
    holders = {int(d): sum(int(d) in one for one in sets) for d in np.unique(digests)}
    assert fast.tolist() == [holders[int(d)] for d in digests]
