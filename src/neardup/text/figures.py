"""The figures of a paragraph: its numbers as written, signs and separators kept.

The matching form erases what tells one day's notice from the next: "26.50" and "27" differ by
two tokens of digits, "+2.5" and "-2.5" not at all. Dedup must not remove a document for one
whose words are the same but whose figures are not (a price, a score, a date, an amount), so
every paragraph gets a *figure key*: a hash of its words without the figures
(:func:`words_form`: spacing, punctuation, quotes and a plural "s" do not matter) in the high 32
bits and a hash of its figures (:func:`figures_form`: signs and digits in order; a typo that moves
a separator does not matter) in the low 32 bits (never 0); a paragraph without a figure has key 0.
Two paragraphs with the same high half and another low half are the same sentence with other
figures (:func:`neardup.match.figures.figure_gaps`).

A figure starts a token: after a space, an opening bracket or quote, or a currency sign — so
the digits of an entity (``&#8217;``), a web address, an ad slot id or a word (``A380``,
``COVID-19``) are not figures. A sign (+, -, the minus sign, an en dash) directly before it is
part of it; separators (``.,:/-``) only between digits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import xxhash

from neardup.text.shingles import fmix64

FIGURE = re.compile(r"(?<![^\s(\[{\"'\u201c\u2018$\u20ac\u00a3\u00a5])[+\-\u2212\u2013]?\d(?:[.,:/\-]?\d)*")
_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-"})
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_PLURAL = re.compile(r"(?<=[^\W\d_])s\b")
_MOVABLE = re.compile(r"[.,:/]")


def figures_form(figures: Sequence[str]) -> str:
    """What a paragraph's figures say, typos aside: their signs, digits and dashes in order, then
    the other separators they use, sorted. A comma that appeared ("200,1"), a point or a pound
    sign that moved ("1.96", "1£4bn") is a typo of the same figures; a sign, a digit or a dash
    for a point ("2-1", "2.1") is not."""
    text = "".join(figures).translate(_SIGNS)
    return _MOVABLE.sub("", text) + "\x1f" + "".join(sorted(c for c in text if c in ".:/"))


def words_form(paragraph: str) -> str:
    """A paragraph's words without its figures: letters only, case folded, a plural "s" dropped
    ("1 day", "32 days")."""
    return _NOT_LETTERS.sub("", _PLURAL.sub("", paragraph.casefold()))


def figure_keys(paragraphs: Sequence[str]) -> np.ndarray:
    """Each paragraph's figure key (uint64; 0 without a figure): see the module docstring."""
    found = list(map(FIGURE.findall, paragraphs))
    rows = [row for row, figures in enumerate(found) if figures]
    keys = np.zeros(len(paragraphs), dtype=np.uint64)
    if not rows:
        return keys
    figures = [figures_form(found[row]) for row in rows]
    words = [words_form(paragraphs[row]) for row in rows]
    high = np.fromiter((xxhash.xxh32_intdigest(w.encode("utf-8", "surrogatepass")) for w in words),
                       dtype=np.uint64, count=len(rows))
    low = np.fromiter((xxhash.xxh32_intdigest(f.encode("utf-8", "surrogatepass")) for f in figures),
                      dtype=np.uint64, count=len(rows)) | np.uint64(1)
    keys[rows] = (high << np.uint64(32)) | low
    return keys


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
