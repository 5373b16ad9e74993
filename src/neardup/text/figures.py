"""The figures of a paragraph: its numbers as written, signs and separators kept.

The matching form erases what tells one day's notice from the next: "26.50" and "27" differ by
two tokens of digits, "+2.5" and "-2.5" not at all. Dedup must not remove a document for one
whose words are the same but whose figures are not (a price, a score, a date, an amount), so
every paragraph gets a *figure key*: a hash of its words without the figures
(:func:`words_form`: its letters, so spacing, punctuation, quotes and a plural "s" do not matter)
in the high 32 bits and a hash of its figures (:func:`figures_form`: signs and digits in order; a
typo that moves a separator does not matter) in the low 32 bits (never 0); a paragraph without a
figure has key 0. The compiled kernel computes the keys (numpy without it; tests hold both equal
to the string forms).
Two paragraphs with the same high half and another low half are the same sentence with other
figures (:func:`neardup.match.figures.figure_gaps`).

A figure starts a token: after a space, an opening bracket or quote, or a currency sign — so
the digits of an entity (``&#8217;``), a web address, an ad slot id or a word (``A380``,
``COVID-19``) are not figures. A sign (+, -, the minus sign, an en dash) directly before it is
part of it; separators (``.,:/-``) only between digits. Digits are ASCII digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from neardup import native
from neardup.arrays import ranges
from neardup.native import compiled
from neardup.text.shingles import fmix64

#: What may come right before a figure (or its sign): a space, an opening bracket or quote, a
#: currency sign, or the start of the paragraph (NUL joins paragraphs). Digits are ASCII digits.
_BEFORE = "([{\"'\u201c\u2018$\u20ac\u00a3\u00a5\x00"
_SIGN_CHARS = "+-\u2212\u2013"
#: Separators inside a figure (between two digits); all but the dashes may move in a typo. An en dash
#: or a minus sign there is a dash ("3–1" is "3-1").
_INNER = ".,:/-\u2013\u2212"
_COUNTED = ".:/"
_MIX = np.uint64(0x9E3779B97F4A7C15)


def figure_strings(paragraph: str) -> list[str]:
    """The figures of one paragraph, as written (the reference of :func:`figure_keys`)."""
    out, k, n = [], 0, len(paragraph)
    while k < n:
        sign = k > 0 and paragraph[k - 1] in _SIGN_CHARS and (k == 1 or _allowed(paragraph[k - 2]))
        if not _is_digit(paragraph[k]) or (k > 0 and not _allowed(paragraph[k - 1]) and not sign):
            k += 1
            continue
        end = k + 1
        while end < n and (_is_digit(paragraph[end]) or (paragraph[end] in _INNER and end + 1 < n
                                                          and _is_digit(paragraph[end + 1]))):
            end += 1
        out.append(paragraph[k - sign:end])
        k = end
    return out


def figures_form(figures: Sequence[str]) -> str:
    """What a paragraph's figures say, typos aside: their signs, digits and dashes in order, then
    the points, colons and slashes they use, sorted (commas dropped). A comma that appeared
    ("200,1"), a point or a pound sign that moved ("1.96", "1£4bn") is a typo of the same figures;
    a sign, a digit or a dash for a point ("2-1", "2.1") is not."""
    text = "".join(figures).replace("\u2212", "-").replace("\u2013", "-")
    return "".join(c for c in text if c not in ".,:/") + "\x1f" + "".join(sorted(c for c in text if c in _COUNTED))


def words_form(paragraph: str) -> str:
    """A paragraph's words without its figures: its letters, lower case, every "s" dropped (so a
    plural does not matter: "1 day", "32 days")."""
    table = _tables()
    return "".join(chr(table.lower[ord(c)]) if ord(c) < 0x10000 else c for c in paragraph
                   if (ord(c) >= 0x10000 or table.letter[ord(c)]) and c not in "sS")


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _allowed(c: str) -> bool:
    return c.isspace() or c in _BEFORE


_DIGIT, _INNER_FLAG, _SIGN, _ALLOWED, _LETTER = 1, 2, 4, 8, 16


class _Tables:
    def __init__(self) -> None:
        chars = [chr(c) for c in range(0x10000)]
        flags = np.zeros(0x10000, dtype=np.uint8)
        for code, c in enumerate(chars):
            flags[code] = ((_DIGIT if _is_digit(c) else 0) | (_INNER_FLAG if c in _INNER else 0)
                           | (_SIGN if c in _SIGN_CHARS else 0) | (_ALLOWED if _allowed(c) else 0)
                           | (_LETTER if c.isalpha() and c not in "sS" else 0))
        self.flags = flags
        self.lower = np.array([ord(c.lower()) if len(c.lower()) == 1 else ord(c) for c in chars], dtype=np.uint32)
        self.letter = (flags & _LETTER).astype(bool)


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    """Per character of the Basic Multilingual Plane: its classes (digit, separator inside a
    figure, sign, may precede a figure, letter) and its lower case."""
    return _Tables()


def figure_keys(paragraphs: Sequence[str]) -> np.ndarray:
    """Each paragraph's figure key (uint64; 0 without a figure): see the module docstring.

    One pass of the compiled kernel over the code points of all the paragraphs (``_pairs.c``),
    or numpy (the heavy steps on the digits and on the paragraphs that have a figure only): the
    same figures as :func:`figure_strings` and the same forms as :func:`figures_form` and
    :func:`words_form` (tests hold the three equal)."""
    count = len(paragraphs)
    keys = np.zeros(count, dtype=np.uint64)
    if count == 0:
        return keys
    codes = np.frombuffer("\x00".join(paragraphs).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    table = _tables()
    lengths = np.fromiter(map(len, paragraphs), dtype=np.int64, count=count)
    if compiled():
        starts = np.cumsum(lengths + 1) - lengths - 1
        native.pairs.figure_keys(codes, starts, lengths, table.flags, table.lower, keys)
        return keys
    wide = codes > 0xFFFF
    flags = table.flags[np.minimum(codes, 0xFFFF)]
    if wide.any():  # outside the table: letters (of scripts such as CJK extensions), nothing else
        flags[wide] = _LETTER
    positions, signs = _figure_positions(codes, flags)
    if len(positions) == 0:
        return keys
    bounds = np.cumsum(lengths + 1)
    owner = np.searchsorted(bounds, positions, side="right")
    chars = codes[positions].astype(np.uint64)
    chars[np.isin(positions, signs)] = ord("-")  # every sign is + or -
    chars[codes[positions] == ord("+")] = ord("+")
    chars[(codes[positions] == 0x2013) | (codes[positions] == 0x2212)] = ord("-")  # dashes inside, too
    movable = np.isin(codes[positions], np.frombuffer(".,:/".encode("utf-32-le"), dtype=np.uint32))
    low = _sequence_hashes(chars[~movable], owner[~movable], count)
    for k, c in enumerate(_COUNTED):  # how many of each movable separator, wherever it stands
        with np.errstate(over="ignore"):
            low += fmix64(np.bincount(owner[codes[positions] == ord(c)], minlength=count).astype(np.uint64) * _MIX
                          + np.uint64(k + 7))
    has = np.zeros(count, dtype=bool)
    has[owner] = True
    rows = np.flatnonzero(has)
    starts = bounds[rows] - lengths[rows] - 1
    spans = ranges(starts, starts + lengths[rows])
    letter = (flags[spans] & _LETTER) != 0
    spans, holder = spans[letter], np.repeat(rows, lengths[rows])[letter]
    found = codes[spans]
    letters = table.lower[np.minimum(found, 0xFFFF)]
    if wide.any():
        letters = np.where(found > 0xFFFF, found, letters)
    high = _sequence_hashes(letters, holder, count)
    keys[has] = (fmix64(high[has]) & np.uint64(0xFFFFFFFF00000000)) | (fmix64(low[has]) & np.uint64(0xFFFFFFFF)) \
        | np.uint64(1)
    return keys


def span_figure_keys(texts: Sequence[str], spans: np.ndarray) -> np.ndarray:
    """:func:`figure_keys` of the paragraphs ``texts[d][start:end]`` for the rows ``(d, start,
    end)`` of ``spans`` (what fingerprinting holds): the kernel reads them in place."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 3)
    if not compiled():
        return figure_keys([texts[d][s:e] for d, s, e in spans.tolist()])
    keys = np.zeros(len(spans), dtype=np.uint64)
    if len(spans) == 0:
        return keys
    codes = np.frombuffer("\x00".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    firsts = np.cumsum(lengths + 1) - lengths - 1
    table = _tables()
    native.pairs.figure_keys(codes, np.ascontiguousarray(firsts[spans[:, 0]] + spans[:, 1]),
                             np.ascontiguousarray(spans[:, 2] - spans[:, 1]), table.flags, table.lower, keys)
    return keys


def _figure_positions(codes: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions of every code point of every figure (signs included), ascending, and of the signs."""
    n = len(codes)
    digits = np.flatnonzero(flags & _DIGIT)
    if len(digits) == 0:
        return digits, digits
    inner = digits[digits + 2 < n] + 1  # a separator between two digits
    inner = inner[((flags[inner] & _INNER_FLAG) != 0) & ((flags[inner + 1] & _DIGIT) != 0)]
    body = np.union1d(digits, inner)
    first = np.concatenate(([True], body[1:] != body[:-1] + 1))
    starts = body[first]
    previous = np.where(starts > 0, flags[np.maximum(starts - 1, 0)], _ALLOWED)
    second = np.where(starts > 1, flags[np.maximum(starts - 2, 0)], _ALLOWED)
    signed = (starts > 0) & ((previous & _SIGN) != 0) & ((second & _ALLOWED) != 0)
    kept = ((previous & _ALLOWED) != 0) | signed
    run = np.cumsum(first) - 1
    positions = np.union1d(body[kept[run]], starts[signed & kept] - 1)
    return positions, starts[signed & kept] - 1


def _sequence_hashes(values: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Per paragraph, an order-sensitive hash of its values (``owner``: each value's paragraph,
    ascending; uint64)."""
    out = np.zeros(count, dtype=np.uint64)
    if len(values) == 0:
        return out
    firsts = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1])))
    rank = np.arange(len(values), dtype=np.int64) - np.repeat(firsts, np.diff(np.append(firsts, len(values))))
    with np.errstate(over="ignore"):
        mixed = fmix64(values.astype(np.uint64) * _MIX + rank.astype(np.uint64) + np.uint64(1))
    out[owner[firsts]] = np.add.reduceat(mixed, firsts)
    return out


def reference_keys(paragraphs: Sequence[str]) -> np.ndarray:
    """:func:`figure_keys` one paragraph at a time from the string forms (what tests compare)."""
    keys = np.zeros(len(paragraphs), dtype=np.uint64)
    for row, paragraph in enumerate(paragraphs):
        found = figure_strings(paragraph)
        if not found:
            continue
        ordered, counted = figures_form(found).split("\x1f")
        low = _one(ordered)
        for k, c in enumerate(_COUNTED):
            with np.errstate(over="ignore"):
                low += fmix64(np.array([counted.count(c)], dtype=np.uint64) * _MIX + np.uint64(k + 7))[0]
        high = _one(words_form(paragraph))
        keys[row] = (fmix64(np.array([high], np.uint64))[0] & np.uint64(0xFFFFFFFF00000000)) \
            | (fmix64(np.array([low], np.uint64))[0] & np.uint64(0xFFFFFFFF)) | np.uint64(1)
    return keys


def _one(text: str) -> np.uint64:
    values = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    hashed: np.uint64 = _sequence_hashes(values, np.zeros(len(values), np.int64), 1)[0]
    return hashed


def with_figures(doc_digests: np.ndarray, keys: np.ndarray, doc_offsets: np.ndarray) -> np.ndarray:
    """Document digests (uint64, (docs, 2)) that also tell the documents' figures apart: the
    figure halves of their paragraphs' keys, each mixed with its place, folded into the low
    word. A document without a figure keeps its digest. What dedup's exact classes read: two
    texts with the same matching form and other figures are two texts."""
    out = np.array(doc_digests, dtype=np.uint64, copy=True).reshape(-1, 2)
    low = np.asarray(keys, dtype=np.uint64) & np.uint64(0xFFFFFFFF)
    doc_offsets = np.asarray(doc_offsets, dtype=np.int64)
    owner = np.repeat(np.arange(len(out), dtype=np.int64), np.diff(doc_offsets))
    rows = np.flatnonzero(low)
    if len(rows) == 0:
        return out
    place = (rows - doc_offsets[owner[rows]]).astype(np.uint64)
    with np.errstate(over="ignore"):
        mixed = fmix64(low[rows] * np.uint64(0x9E3779B97F4A7C15) + place)
    folded = np.zeros(len(out), dtype=np.uint64)
    np.bitwise_xor.at(folded, owner[rows], mixed)
    out[:, 1] ^= folded
    return out
