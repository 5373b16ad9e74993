"""Word shingles of many paragraphs at once, hashed to 32 bits, without a Python loop per token.

Input is the matching form (:mod:`neardup.text.normalize`): tokens separated by
single spaces. A whole batch of paragraphs is joined with newlines, encoded
once to UTF-8 and handled as one ``uint8`` array:

1. token boundaries are where a byte is a space or a newline;
2. every token is hashed at once with a polynomial hash over its bytes modulo
   2^64, read off prefix sums (``cumsum``) of ``byte * P^position``, then mixed
   with the MurmurHash3/xxHash-style 64-bit avalanche;
3. a shingle is ``shingle_size`` consecutive tokens of one paragraph; its hash
   is a sum of its token hashes times per-position odd constants, avalanched
   again and folded to 32 bits. A paragraph shorter than ``shingle_size`` makes
   one shingle of all its tokens, so that short lines still have a signature.

Shingles never cross paragraph boundaries. The definition is pinned by golden
tests; :func:`shingle_hash_reference` is the same function written plainly,
one shingle at a time, for tests and for feeding other MinHash libraries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_U64 = np.uint64
_MASK64 = (1 << 64) - 1
#: Odd multiplier of the byte polynomial and its inverse modulo 2^64.
_P = 0x9E3779B97F4A7C15
_P_INV = pow(_P, -1, 1 << 64)
#: Length salt, so that tokens differing only by trailing NUL-like bytes differ.
_LEN_SALT = 0x27D4EB2F165667C5
#: Per-position multipliers of a shingle (odd, fixed forever: changing them changes every hash).
_POSITION = tuple((0x165667B19E3779F9 * (2 * i + 1) + 0x85EBCA77C2B2AE63 * i) & _MASK64 | 1 for i in range(64))
_SPACE, _NEWLINE = 0x20, 0x0A


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit."""
    v = values ^ (values >> _U64(33))
    v = v * _U64(0xFF51AFD7ED558CCD)
    v = v ^ (v >> _U64(33))
    v = v * _U64(0xC4CEB9FE1A85EC53)
    return np.asarray(v ^ (v >> _U64(33)))


@dataclass(frozen=True)
class Shingles:
    """The shingles of a batch of paragraphs.

    ``hashes[i]`` belongs to paragraph ``paragraph[i]`` (non-decreasing).
    ``paragraph_words[p]`` is the number of tokens of paragraph ``p``.
    """

    hashes: np.ndarray           # uint32
    paragraph: np.ndarray        # int64, sorted
    paragraph_words: np.ndarray  # int64, one per paragraph


def shingle_paragraphs(paragraphs: Sequence[str], shingle_size: int) -> Shingles:
    """Hash the shingles of every paragraph (in matching form) of a batch."""
    count = len(paragraphs)
    if count == 0:
        return Shingles(np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    data = np.frombuffer(("\n".join(paragraphs) + "\n").encode("utf-8"), dtype=np.uint8)
    starts, ends, owner = _token_bounds(data)
    words = np.bincount(owner, minlength=count).astype(np.int64)
    tokens = _token_hashes(data, starts, ends)
    first, length, shingle_owner = _shingle_layout(words, shingle_size)
    hashes = _combine(tokens, first, length, shingle_size)
    return Shingles(hashes, shingle_owner, words)


def _token_bounds(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, end and paragraph of every token."""
    is_sep = (data == _SPACE) | (data == _NEWLINE)
    before = np.concatenate(([True], is_sep[:-1]))
    starts = np.flatnonzero(~is_sep & before)
    after = np.concatenate((is_sep[1:], [True]))
    ends = np.flatnonzero(~is_sep & after) + 1
    newlines_before = np.cumsum(data == _NEWLINE) - (data == _NEWLINE)
    return starts, ends, newlines_before[starts].astype(np.int64)


#: Tokens are hashed in windows of this many bytes, so the prefix sums stay in cache and the
#: powers of P are looked up in fixed tables instead of recomputed.
_WINDOW = 1 << 18


@lru_cache(maxsize=1)
def _power_tables() -> tuple[np.ndarray, np.ndarray]:
    """P^i and P^-i modulo 2^64 for i < 2 * _WINDOW (a window may be extended to a token's end)."""
    powers = np.full(2 * _WINDOW, _P, dtype=_U64)
    powers[0] = 1
    inverse = np.full(2 * _WINDOW, _P_INV, dtype=_U64)
    inverse[0] = 1
    return np.cumprod(powers, dtype=_U64), np.cumprod(inverse, dtype=_U64)


def _token_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Polynomial hashes of tokens, read off windowed prefix sums of byte × P^position."""
    out = np.empty(len(starts), dtype=_U64)
    if len(starts) == 0:
        return out
    powers, inverse = _power_tables()
    first = 0
    while first < len(starts):
        base = int(starts[first])
        last = int(np.searchsorted(starts, base + _WINDOW, "left"))
        last = max(last, first + 1)
        if ends[last - 1] - base > 2 * _WINDOW:  # one token longer than the tables: hash it alone
            last = first + 1
            out[first] = _long_token_hash(data[base:int(ends[first])])
            first = last
            continue
        window = data[base:int(ends[last - 1])].astype(_U64)
        prefix = np.concatenate(([_U64(0)], np.cumsum(window * powers[: len(window)], dtype=_U64)))
        s, e = starts[first:last] - base, ends[first:last] - base
        raw = (prefix[e] - prefix[s]) * inverse[s]
        out[first:last] = fmix64(raw ^ ((e - s).astype(_U64) * _U64(_LEN_SALT)))
        first = last
    return out


def _long_token_hash(token: np.ndarray) -> int:
    """The same hash for a token longer than the power tables, in slices of the tables' length."""
    powers, _ = _power_tables()
    raw = 0
    for lo in range(0, len(token), len(powers)):
        piece = token[lo:lo + len(powers)].astype(_U64)
        partial = int((piece * powers[: len(piece)]).sum(dtype=_U64))
        raw = (raw + partial * pow(_P, lo, 1 << 64)) & _MASK64
    return _fmix64_int(raw ^ ((len(token) * _LEN_SALT) & _MASK64))


def _shingle_layout(words: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First token, token count and paragraph of every shingle."""
    per_paragraph = np.where(words >= size, words - size + 1, np.minimum(words, 1))
    paragraph = np.repeat(np.arange(len(words), dtype=np.int64), per_paragraph)
    token_base = np.concatenate(([0], np.cumsum(words)[:-1]))
    shingle_base = np.concatenate(([0], np.cumsum(per_paragraph)[:-1]))
    position = np.arange(len(paragraph), dtype=np.int64) - shingle_base[paragraph]
    first = token_base[paragraph] + position
    length = np.minimum(words[paragraph], size)
    return first, length, paragraph


def _combine(tokens: np.ndarray, first: np.ndarray, length: np.ndarray, size: int) -> np.ndarray:
    acc = np.zeros(len(first), dtype=_U64)
    for offset in range(size):
        present = length > offset
        if not present.any():
            break
        index = np.where(present, first + offset, 0)
        acc += np.where(present, tokens[index] * _U64(_POSITION[offset]), _U64(0))
    mixed = fmix64(acc ^ (length.astype(_U64) * _U64(_LEN_SALT)))
    return np.asarray(((mixed >> _U64(32)) ^ (mixed & _U64(0xFFFFFFFF))).astype(np.uint32))


def token_hash_reference(token: str) -> int:
    """The hash of one token, computed plainly (for tests and other tools)."""
    raw = 0
    for position, byte in enumerate(token.encode("utf-8")):
        raw = (raw + byte * pow(_P, position, 1 << 64)) & _MASK64
    return _fmix64_int(raw ^ ((len(token.encode("utf-8")) * _LEN_SALT) & _MASK64))


def shingle_hash_reference(tokens: Sequence[str]) -> int:
    """The 32-bit hash of one shingle (a sequence of tokens), computed plainly."""
    acc = 0
    for offset, token in enumerate(tokens):
        acc = (acc + token_hash_reference(token) * _POSITION[offset]) & _MASK64
    mixed = _fmix64_int(acc ^ ((len(tokens) * _LEN_SALT) & _MASK64))
    return (mixed >> 32) ^ (mixed & 0xFFFFFFFF)


def _fmix64_int(v: int) -> int:
    v ^= v >> 33
    v = (v * 0xFF51AFD7ED558CCD) & _MASK64
    v ^= v >> 33
    v = (v * 0xC4CEB9FE1A85EC53) & _MASK64
    return v ^ (v >> 33)


def form_digests(forms: Sequence[bytes]) -> np.ndarray:
    """64-bit digests of UTF-8 strings: each hashed as one token (:func:`token_hash_reference`
    of the whole string). Paragraph digests are these over the matching forms."""
    lengths = np.fromiter(map(len, forms), dtype=np.int64, count=len(forms))
    ends = np.cumsum(lengths)
    data = np.frombuffer(b"".join(forms) + b"\0", dtype=np.uint8)
    return _token_hashes(data, ends - lengths, ends)


def token_hashes(matching_text: str) -> tuple[np.ndarray, np.ndarray]:
    """Hashes and UTF-8 lengths of the tokens of one text in matching form."""
    data = np.frombuffer((matching_text + "\n").encode("utf-8"), dtype=np.uint8)
    starts, ends, _ = _token_bounds(data)
    return _token_hashes(data, starts, ends), (ends - starts).astype(np.int64)


def ngram_series(tokens: np.ndarray, largest: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(n, ngram_hashes(tokens, n))`` for n = 1 .. ``largest``, each sum built on the one before
    (one multiply-add per n, not n of them)."""
    acc = np.zeros(len(tokens), dtype=_U64)
    for n in range(1, largest + 1):
        count = len(tokens) - n + 1
        if count <= 0:
            return
        acc = acc[:count] + tokens[n - 1:n - 1 + count] * _U64(_POSITION[n - 1])
        yield n, fmix64(acc)


def ngram_hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of every run of ``n`` consecutive tokens (none if fewer tokens)."""
    count = len(tokens) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=_U64)
    acc = np.zeros(count, dtype=_U64)
    for offset in range(n):
        acc += tokens[offset:offset + count] * _U64(_POSITION[offset])
    return fmix64(acc)
