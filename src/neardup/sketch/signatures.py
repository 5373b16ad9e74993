"""MinHash signatures of many sets at once, bit-identical to datasketch's ``affine32`` scheme.

datasketch ≥ 2.0 ``MinHash(num_perm, seed, scheme="affine32")`` turns a 32-bit
input hash ``h`` into ``num_perm`` values ``a_k * fmix32(h) + b_k mod 2^32``
(``a_k`` odd, so each is a bijection) and keeps the minimum of each over the
set. Here the same arithmetic runs over a whole batch of shingles as one
``(shingles × permutations)`` array, reduced per set with
``np.minimum.reduceat``. An empty set has every value at 2^32 - 1, as in
datasketch.

An article's signature is the element-wise minimum of its paragraphs'
signatures: the MinHash of the union of their shingle sets.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from neardup.errors import IndexFormatError

if TYPE_CHECKING:  # datasketch is imported when a signature is exported, not with neardup
    from datasketch import LeanMinHash

EMPTY = np.uint32(0xFFFFFFFF)
#: Shingles per chunk of the (permutations × shingles) work array: 4 MB at 128 permutations.
_CHUNK_COLUMNS = 8192


@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) parameters datasketch draws for ``affine32`` with this seed."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, as datasketch pre-mixes every input hash."""
    v = values.astype(np.uint32, copy=True)
    v ^= v >> np.uint32(16)
    v *= np.uint32(0x85EBCA6B)
    v ^= v >> np.uint32(13)
    v *= np.uint32(0xC2B2AE35)
    v ^= v >> np.uint32(16)
    return v


def minhash_sets(hashes: np.ndarray, owner: np.ndarray, count: int, num_perm: int, seed: int) -> np.ndarray:
    """Signatures ``(count, num_perm)`` of ``count`` sets given as (hash, owner) pairs.

    ``owner`` must be sorted; sets with no element get the empty signature.
    The work array is laid out permutation-major, ``(num_perm, chunk)``, so that
    the per-set minimum is a fast ``reduceat`` along contiguous rows.
    """
    a, b = permutations(num_perm, seed)
    a_col, b_col = a[:, None], b[:, None]
    out = np.full((count, num_perm), EMPTY, dtype=np.uint32)
    mixed = fmix32(hashes)
    work = np.empty((num_perm, min(_CHUNK_COLUMNS, max(len(mixed), 1))), dtype=np.uint32)
    for lo in range(0, len(mixed), _CHUNK_COLUMNS):
        chunk, who = mixed[lo:lo + _CHUNK_COLUMNS], owner[lo:lo + _CHUNK_COLUMNS]
        values = work[:, : len(chunk)]
        np.multiply(a_col, chunk[None, :], out=values)
        values += b_col
        firsts = np.flatnonzero(np.concatenate(([True], who[1:] != who[:-1])))
        reduced = np.minimum.reduceat(values, firsts, axis=1).T
        targets = who[firsts]
        out[targets] = np.minimum(out[targets], reduced)
    return out


def merge_signatures(signatures: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Element-wise minimum of the rows of each owner: the signature of the union."""
    out = np.full((count, signatures.shape[1]), EMPTY, dtype=np.uint32)
    if len(owner):
        firsts = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1])))
        out[owner[firsts]] = np.minimum.reduceat(signatures, firsts, axis=0)
    return out


def estimate_jaccard(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Share of equal values; broadcasts over leading axes. Two empty sets give 0."""
    equal = (left == right) & ~((left == EMPTY) & (right == EMPTY))
    return np.asarray(equal.mean(axis=-1))


def to_lean_minhash(signature: np.ndarray, seed: int) -> LeanMinHash:
    """Export one signature as a ``datasketch.LeanMinHash`` (scheme ``affine32``)."""
    from datasketch import LeanMinHash

    return LeanMinHash(seed=seed, hashvalues=np.asarray(signature, dtype=np.uint32), scheme="affine32")


def from_lean_minhash(sketch: object, num_perm: int, seed: int) -> np.ndarray:
    """Import a datasketch ``MinHash``/``LeanMinHash``; refuses other schemes, seeds and sizes."""
    scheme = getattr(sketch, "scheme", None)
    values = np.asarray(getattr(sketch, "hashvalues", ()), dtype=np.uint64)
    if scheme != "affine32":
        raise IndexFormatError(f"MinHash scheme {scheme!r} is not 'affine32'")
    if getattr(sketch, "seed", None) != seed or len(values) != num_perm:
        raise IndexFormatError(
            f"MinHash has seed={getattr(sketch, 'seed', None)}, num_perm={len(values)}; "
            f"expected seed={seed}, num_perm={num_perm}")
    return values.astype(np.uint32)
