"""Candidate pairs: band keys of signatures, grouped by key, each bucket of equal keys a set of pairs.

A signature's band key is the hash of one band of its rows (:mod:`neardup.sketch.lsh` explains the
bands and the S-curve). Documents whose article signatures, or any of whose body paragraphs,
share a band key are candidates; every candidate pair is verified exactly afterwards
(:mod:`neardup.match.scores`), so a spurious candidate costs time, never a wrong answer.

Grouping by key is a shuffle: records ``(key, item)`` are cut into partitions by the key's
top bits, and each partition is grouped on its own — in memory, from spill files, or by a
distributed engine. A record is one ``uint64``: 32 more bits of the key above the item, so
sorting the records sorts the partition by key. Keys are thus compared on 38 bits; a rare
collision only adds a candidate.

A bucket of at most ``bucket_cap`` documents gives all its pairs. A larger one (a very common
paragraph that escaped the boilerplate rule, thousands of copies of one wire story) gives the
pairs of its ``bucket_pivots`` best-ranked documents with each other document: linear, not
quadratic, and — since the pivots are the documents the keep policy prefers — the pairs a
cluster's representative needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neardup import native
from neardup.arrays import sorted_unique
from neardup.config import Config
from neardup.native import compiled
from neardup.sketch.lsh import band_keys
from neardup.text.shingles import fmix64

#: Partitions of the band records (the top bits of a key choose one).
PARTITION_BITS = 6
PARTITIONS = 1 << PARTITION_BITS
_KEY_SHIFT = 64 - PARTITION_BITS - 32
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)



def bucket_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(n, bands)`` uint64 bucket keys: each band's key (:func:`neardup.sketch.lsh.band_keys`) with
    the band mixed in, so that the keys of every band can share one shuffle and never meet."""
    signatures = np.ascontiguousarray(signatures, dtype=np.uint32)
    n = signatures.shape[0]
    if n == 0:
        return np.zeros((0, bands), dtype=np.uint64)
    if compiled():
        out = np.empty((n, bands), dtype=np.uint64)
        native.pairs.band_keys(signatures, signatures.shape[1], bands, rows, out)
        return out
    chain = band_keys(signatures, bands, rows)
    salts = (np.arange(1, bands + 1, dtype=np.uint64) * _GOLDEN)[None, :]
    with np.errstate(over="ignore"):
        return fmix64(chain + salts)


def searchable(paragraph_sizes: np.ndarray, paragraph_words: np.ndarray, config: Config,
               weights: np.ndarray | None = None) -> np.ndarray:
    """Which paragraphs propose candidates through their band keys: not empty, not a short line
    (fewer than ``min_paragraph_words`` words) and, once their weights are known, not boilerplate
    (``weights >= searchable_weight``). The one rule for dedup, the index and queries."""
    mask = (np.asarray(paragraph_sizes) > 0) & (np.asarray(paragraph_words) >= config.min_paragraph_words)
    if weights is not None:
        mask &= np.asarray(weights) >= config.searchable_weight
    return np.asarray(mask)


def records(keys: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band keys (any shape, one row per item) as (partition, record) uint64 columns."""
    keys = np.asarray(keys, dtype=np.uint64)
    per_item = keys.shape[1] if keys.ndim == 2 else 1
    flat = keys.reshape(-1)
    owners = np.repeat(np.asarray(items, dtype=np.uint64), per_item)
    partition = (flat >> np.uint64(64 - PARTITION_BITS)).astype(np.int64)
    value = (((flat >> np.uint64(_KEY_SHIFT)) & np.uint64(0xFFFFFFFF)) << np.uint64(32)) | owners
    return partition, value


@dataclass(frozen=True)
class BucketStats:
    """What grouping found: pairs emitted, buckets over the cap and the largest bucket."""

    pairs: int = 0
    large_buckets: int = 0
    largest_bucket: int = 0

    def merge(self, other: BucketStats) -> BucketStats:
        return BucketStats(self.pairs + other.pairs, self.large_buckets + other.large_buckets,
                           max(self.largest_bucket, other.largest_bucket))


def group_partition(values: np.ndarray, item_class: np.ndarray, keep_item: np.ndarray | None,
                    rank: np.ndarray, cap: int, pivots: int) -> tuple[np.ndarray, BucketStats]:
    """Candidate pairs of one partition of records: items mapped to their document class
    (exact duplicates share one), items not kept dropped, then every bucket of equal keys
    turned into pairs. Returns unique pair keys ``low << 32 | high`` (uint64) and statistics."""
    items = (values & np.uint64(0xFFFFFFFF)).astype(np.int64)
    if keep_item is not None:
        kept = keep_item[items]
        values, items = values[kept], items[kept]
    classes = item_class[items].astype(np.uint64)
    merged = sorted_unique((values & np.uint64(0xFFFFFFFF00000000)) | classes)  # sorted, one class per key
    pairs, stats = bucket_pairs(merged, rank, cap, pivots)
    return sorted_unique(pairs), stats


def bucket_pairs(values: np.ndarray, rank: np.ndarray, cap: int, pivots: int) -> tuple[np.ndarray, BucketStats]:
    """Pairs of every bucket of sorted distinct ``key << 32 | doc`` values (see the module docstring)."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    rank = np.ascontiguousarray(rank, dtype=np.uint32)
    if len(values) == 0:
        return np.zeros(0, dtype=np.uint64), BucketStats()
    if compiled():
        total, large, largest = native.pairs.bucket_pairs(values, rank, cap, pivots, None)
        out = np.empty(total, dtype=np.uint64)
        native.pairs.bucket_pairs(values, rank, cap, pivots, out)
        return out, BucketStats(int(total), int(large), int(largest))
    return _bucket_pairs_numpy(values, rank, cap, pivots)


def _bucket_pairs_numpy(values: np.ndarray, rank: np.ndarray, cap: int,
                        pivots: int) -> tuple[np.ndarray, BucketStats]:
    keys, docs = values >> np.uint64(32), (values & np.uint64(0xFFFFFFFF)).astype(np.int64)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    sizes = np.diff(np.append(starts, len(values)))
    out: list[np.ndarray] = []
    for size in np.unique(sizes[(sizes >= 2) & (sizes <= cap)]).tolist():
        first = starts[sizes == size]
        i, j = np.triu_indices(size, 1)
        out.append(_pair_keys(docs[first[:, None] + i[None, :]], docs[first[:, None] + j[None, :]]))
    large = np.flatnonzero(sizes > cap)
    for b in large.tolist():
        members = docs[starts[b]:starts[b] + sizes[b]]
        order = np.lexsort((members, rank[members]))
        best, others = members[order[:pivots]], members[order[pivots:]]
        i, j = np.triu_indices(len(best), 1)
        out.append(_pair_keys(best[i], best[j]))
        out.append(_pair_keys(np.repeat(best[None, :], len(others), 0).ravel(), np.repeat(others, len(best))))
    pairs = np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)
    return pairs, BucketStats(len(pairs), len(large), int(sizes.max()) if len(sizes) else 0)


def _pair_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.uint64).ravel(), np.asarray(b, dtype=np.uint64).ravel()
    return np.asarray((np.minimum(a, b) << np.uint64(32)) | np.maximum(a, b))


def split_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair keys back to (low, high) int64 document indices."""
    keys = np.asarray(keys, dtype=np.uint64)
    return (keys >> np.uint64(32)).astype(np.int64), (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
