"""Paragraph signatures through the compiled kernel (``native.kernel.c``) or, without it, numpy.

Both paths return the same :class:`ParagraphPrints`: matching forms, word
counts, shingle counts, MinHash rows and, on request, every shingle hash. The
kernel does in one pass over the characters what the numpy path does in
several (normalise, tokenise, hash, shingle, permute). Paragraphs it cannot
normalise alone — junk blocks, possible ad calls, entities and URLs,
characters outside its table (:func:`replacement_table`) — it flags; they take
the Python normalisation, then a second kernel pass. Tests hold the two paths
equal on random text and on every development corpus. Set ``NEARDUP_KERNEL=0``
to force the numpy path.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from neardup import native
from neardup.native import compiled
from neardup.sketch.lsh import band_keys, fold32
from neardup.sketch.signatures import EMPTY, merge_signatures, minhash_sets, permutations
from neardup.text.normalize import _UNSPACED, normalize_many
from neardup.text.shingles import _LEN_SALT, _P, _POSITION, form_digests, shingle_paragraphs

_POSITIONS = np.array(_POSITION, dtype=np.uint64)
#: Non-ASCII characters below this code point may be normalised by the kernel itself (Latin,
#: Greek, Cyrillic, Hebrew, Arabic, punctuation, symbols); others send their paragraph to Python.
_TABLE_END = 0x3000
_HANGUL_JAMO = range(0x1100, 0x1200)
#: Building the table costs ~0.2 s; batches smaller than this many characters go without it
#: (their non-ASCII paragraphs take the Python steps: the same result, a little slower).
_TABLE_WORTH = 1 << 21
_NO_TABLE = (np.full(0x80, -1, dtype=np.int32), np.zeros(0x80, dtype=np.uint8), b"", 1)


@dataclass(frozen=True)
class ParagraphPrints:
    """Per paragraph: matching form (UTF-8), tokens, shingles, signature; optionally the shingles.
    Per document: its matching form, the non-empty paragraph forms joined by newlines."""

    paragraph_digests: np.ndarray     # uint64: shingles.form_digests of the matching forms
    document_forms: list[bytes]
    paragraph_words: np.ndarray       # int64
    paragraph_sizes: np.ndarray       # int64: shingles, repeats included
    paragraph_signatures: np.ndarray  # uint32 (paragraphs, num_perm)
    shingles: np.ndarray | None = None       # uint32: every shingle hash ...
    shingle_owner: np.ndarray | None = None  # int64: ... and its paragraph (sorted)


def sign_paragraphs(texts: list[str], spans: np.ndarray, doc_offsets: np.ndarray, shingle_size: int,
                    num_perm: int, seed: int, with_hashes: bool = False) -> ParagraphPrints:
    """Fingerprint paragraph ``i`` = ``texts[spans[i, 0]][spans[i, 1]:spans[i, 2]]``; the paragraphs
    of document ``d`` are rows ``doc_offsets[d]:doc_offsets[d + 1]``."""
    spans = np.ascontiguousarray(spans, dtype=np.int64).reshape(-1, 3)
    if compiled():
        return _sign_compiled(texts, spans, doc_offsets, shingle_size, num_perm, seed, with_hashes)
    flat = normalize_many([texts[t][s:e] for t, s, e in spans.tolist()])
    shingles = shingle_paragraphs(flat, shingle_size)
    forms = [p.encode("utf-8", "surrogatepass") for p in flat]
    return ParagraphPrints(
        paragraph_digests=form_digests(forms),
        document_forms=_join_forms(forms, doc_offsets, range(len(doc_offsets) - 1)),
        paragraph_words=shingles.paragraph_words,
        paragraph_sizes=np.bincount(shingles.paragraph, minlength=len(flat)).astype(np.int64),
        paragraph_signatures=minhash_sets(shingles.hashes, shingles.paragraph, len(flat), num_perm, seed),
        shingles=shingles.hashes if with_hashes else None,
        shingle_owner=shingles.paragraph if with_hashes else None,
    )


def merge_rows(signatures: np.ndarray, doc_offsets: np.ndarray) -> np.ndarray:
    """Element-wise minimum of each document's paragraph rows: the MinHash of the union."""
    if not compiled():
        owner = np.repeat(np.arange(len(doc_offsets) - 1), np.diff(doc_offsets))
        return merge_signatures(signatures, owner, len(doc_offsets) - 1)
    out = np.full((len(doc_offsets) - 1, signatures.shape[1]), EMPTY, dtype=np.uint32)
    native.kernel.min_rows(np.ascontiguousarray(signatures), np.ascontiguousarray(doc_offsets, dtype=np.int64), out,
                     signatures.shape[1])
    return out


def sorted_band_table(signatures: np.ndarray, bands: int, rows: int,
                      items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stored band table: each band's 32-bit keys (``fold32(band_keys(...))``, uint32) with their
    items (int32), sorted by (key, item), band after band — every band has one entry per row,
    so band ``b`` is entries ``b * n:(b + 1) * n`` and needs no tag."""
    n = len(items)
    items = np.ascontiguousarray(items, dtype=np.int64)
    if compiled():
        keys_out, items_out = np.empty(bands * n, dtype=np.uint32), np.empty(bands * n, dtype=np.int32)
        native.kernel.band_table(np.ascontiguousarray(signatures, dtype=np.uint32), signatures.shape[1], bands, rows,
                           items, keys_out, items_out)
        return keys_out, items_out
    keys = fold32(band_keys(signatures, bands, rows)).T.astype(np.uint64)  # (bands, n)
    pairs = np.sort((keys << np.uint64(32)) | items.astype(np.uint64)[None, :], axis=1)
    return (pairs >> np.uint64(32)).astype(np.uint32).ravel(), (pairs & np.uint64(0xFFFFFFFF)).astype(np.int32).ravel()


def band_table_runs(keys: np.ndarray, bands: int, needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): where each needle (``band << 32 | key``, uint64) has its run of equal keys in a
    band table of :func:`sorted_band_table` (``lo == hi`` when absent). The kernel starts each
    search where the key's value says it lies; the numpy path bisects band by band."""
    needles = np.ascontiguousarray(needles, dtype=np.uint64)
    lo, hi = np.empty(len(needles), dtype=np.int64), np.empty(len(needles), dtype=np.int64)
    if compiled():
        native.kernel.find_keys(np.ascontiguousarray(keys, dtype=np.uint32), bands, needles, lo, hi)
        return lo, hi
    width = len(keys) // bands
    band, key = needles >> np.uint64(32), (needles & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    lo[:], hi[:] = len(keys), len(keys)
    for b in range(bands):
        picked = np.flatnonzero(band == b)
        table = keys[b * width:(b + 1) * width]
        lo[picked] = b * width + np.searchsorted(table, key[picked], "left")
        hi[picked] = b * width + np.searchsorted(table, key[picked], "right")
    return lo, hi


def count_equal(keys: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """How many times each needle occurs in ``keys`` (sorted uint64 hashes)."""
    if not compiled():
        return np.searchsorted(keys, needles, "right") - np.searchsorted(keys, needles, "left")
    lo, hi = np.empty(len(needles), dtype=np.int64), np.empty(len(needles), dtype=np.int64)
    native.kernel.find_sorted(np.ascontiguousarray(keys, dtype=np.uint64),
                              np.ascontiguousarray(needles, dtype=np.uint64), lo, hi)
    return hi - lo


def _join_forms(forms: list[bytes], doc_offsets: np.ndarray, docs: range | list[int]) -> list[bytes]:
    bounds = doc_offsets.tolist()
    return [b"\n".join([f for f in forms[bounds[d]:bounds[d + 1]] if f]) for d in docs]


def _sign_compiled(texts: list[str], spans: np.ndarray, doc_offsets: np.ndarray, shingle_size: int,
                   num_perm: int, seed: int, with_hashes: bool) -> ParagraphPrints:
    raw, dirty, data, bounds = _kernel_pass(texts, spans, doc_offsets, False, shingle_size, num_perm, seed,
                                            with_hashes)
    rows = np.flatnonzero(dirty)
    if len(rows) == 0:
        return raw
    normalized = normalize_many([texts[t][s:e] for t, s, e in spans[rows].tolist()])
    lengths = np.fromiter(map(len, normalized), dtype=np.int64, count=len(normalized))
    again = np.column_stack((np.arange(len(rows)), np.zeros(len(rows), np.int64), lengths))
    fixed, _, fixed_data, fixed_bounds = _kernel_pass(normalized, again, np.array([0, len(rows)]), True,
                                                      shingle_size, num_perm, seed, with_hashes)
    # Documents holding a dirty paragraph: their forms are joined again from both passes.
    forms: dict[int, bytes] = {row: fixed_data[s:e] for row, (s, e) in zip(rows.tolist(), fixed_bounds.tolist())}
    touched = np.unique(np.searchsorted(doc_offsets, rows, side="right") - 1).tolist()
    document_forms = raw.document_forms
    for doc in touched:
        first, last = int(doc_offsets[doc]), int(doc_offsets[doc + 1])
        pieces = (forms[row] if row in forms else data[bounds[row, 0]:bounds[row, 1]] for row in range(first, last))
        document_forms[doc] = b"\n".join(piece for piece in pieces if piece)
    raw.paragraph_words[rows], raw.paragraph_sizes[rows] = fixed.paragraph_words, fixed.paragraph_sizes
    raw.paragraph_signatures[rows] = fixed.paragraph_signatures
    raw.paragraph_digests[rows] = fixed.paragraph_digests
    hashes: np.ndarray | None = None
    owner: np.ndarray | None = None
    if raw.shingles is not None and raw.shingle_owner is not None and fixed.shingles is not None \
            and fixed.shingle_owner is not None:
        owner = np.concatenate((raw.shingle_owner, rows[fixed.shingle_owner]))
        order = np.argsort(owner, kind="stable")
        hashes, owner = np.concatenate((raw.shingles, fixed.shingles))[order], owner[order]
    return ParagraphPrints(raw.paragraph_digests, document_forms, raw.paragraph_words, raw.paragraph_sizes,
                           raw.paragraph_signatures, hashes, owner)


@lru_cache(maxsize=1)
def replacement_table() -> tuple[np.ndarray, np.ndarray, bytes, int]:
    """What each non-ASCII character below ``_TABLE_END`` contributes to the matching form.

    Derived from :func:`normalize_many` itself, so the kernel cannot drift from it: a
    character's contribution is read off ``"a" + ch + "b"`` and kept only if the same
    contribution explains other contexts (digits, letters, accents, the character doubled,
    alone). Marks, characters that compose or decompose into marks, Hangul jamo and scripts
    written without spaces stay with the Python steps (start -1). Returns (start int32,
    length uint8, bytes, longest contribution).
    """
    chars = [chr(c) for c in range(0x80, _TABLE_END) if _may_stand_alone(chr(c))]
    contexts = (("a", "b"), ("1", "2"), ("", ""), ("Z", ""), ("", "Q"), ("\u00e9", "\u00e9"), ("a", None))
    probes = [pre + ch + (ch + "b" if post is None else post) for pre, post in contexts for ch in chars]
    results = normalize_many(probes)
    start = np.full(_TABLE_END, -1, dtype=np.int32)
    length = np.zeros(_TABLE_END, dtype=np.uint8)
    blob, longest = bytearray(), 1
    for i, ch in enumerate(chars):
        seen = results[i::len(chars)]
        if not (seen[0].startswith("a") and seen[0].endswith("b")):
            continue
        piece = seen[0][1:-1]
        expected = [("a" + piece + "b"), "1" + piece + "2", piece, "z" + piece, piece + "q",
                    "\u00e9" + piece + "\u00e9", "a" + piece + piece + "b"]
        encoded = piece.encode("utf-8", "surrogatepass")
        if len(encoded) > 255 or any(e.split() != s.split() for e, s in zip(expected, seen)):
            continue
        start[ord(ch)], length[ord(ch)] = len(blob), len(encoded)
        blob += encoded
        longest = max(longest, len(encoded))
    return start, length, bytes(blob), longest


def _may_stand_alone(ch: str) -> bool:
    """Characters whose normalisation cannot depend on their neighbours (see replacement_table)."""
    decomposed = unicodedata.normalize("NFKC", ch)
    return not (unicodedata.category(ch)[0] in "MC" or ord(ch) in _HANGUL_JAMO or _UNSPACED.match(ch)
                or (decomposed and unicodedata.combining(decomposed[0])))


def _kernel_pass(texts: list[str], spans: np.ndarray, doc_offsets: np.ndarray, normalized: bool,
                 shingle_size: int, num_perm: int, seed: int,
                 with_hashes: bool) -> tuple[ParagraphPrints, np.ndarray, bytes, np.ndarray]:
    """One kernel call: the prints, the dirty flags, the matching forms' buffer and bounds."""
    count = len(spans)
    chars = int((spans[:, 2] - spans[:, 1]).sum()) if count else 0
    table = replacement_table() if chars >= _TABLE_WORTH and not normalized else _NO_TABLE
    table_start, table_length, table_bytes, longest = table
    # A character writes at most `longest` bytes in raw mode (and starts at most that many tokens),
    # 4 UTF-8 bytes in normalised mode; each form may be followed by a newline.
    expand = 4 if normalized else longest
    form = np.empty(chars * expand + count, dtype=np.uint8)
    bounds = np.empty((count, 2), dtype=np.int64)
    words = np.empty(count, dtype=np.int64)
    sizes = np.empty(count, dtype=np.int64)
    digests = np.empty(count, dtype=np.uint64)
    dirty = np.empty(count, dtype=np.uint8)
    signatures = np.empty((count, num_perm), dtype=np.uint32)
    # A shingle per word: a word takes two characters with its separator, so half the characters
    # (plus one a paragraph) is room enough for plain text; the rare text needing more is run again.
    room = chars // 2 + count + 16
    a, b = permutations(num_perm, seed)
    while True:
        hashes = np.empty(room, dtype=np.uint32) if with_hashes else None
        owner = np.empty(room, dtype=np.int64) if with_hashes else None
        used, found = native.kernel.sign_paragraphs(
            texts, spans, normalized, shingle_size, _P, _LEN_SALT, _POSITIONS, a, b, table_start, table_length,
            table_bytes, expand, signatures, words, sizes, digests, dirty, form, bounds, hashes, owner)
        if not with_hashes or found <= room:
            break
        room = found
    data = form[:used].tobytes()
    # Forms are written in order, a non-empty one followed by a newline: a document's form is its
    # stretch of the buffer without the last newline.
    region = np.append(bounds[:, 0], used)[doc_offsets].tolist()
    document_forms = [data[s:e - 1] if e > s else b"" for s, e in itertools.pairwise(region)]
    prints = ParagraphPrints(digests, document_forms, words, sizes, signatures,  # copies: free the spare room
                             None if hashes is None else hashes[:found].copy(),
                             None if owner is None else owner[:found].copy())
    return prints, dirty, data, bounds


__all__ = ["ParagraphPrints", "band_table_runs", "count_equal", "merge_rows", "sign_paragraphs",
           "sorted_band_table"]
