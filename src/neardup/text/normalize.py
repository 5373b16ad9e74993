"""The matching normal form of text, with a map back to the original.

Two copies of a story differ in ways that carry no meaning: typographic
quotes, dashes, full-width forms, case, HTML entities and tags, ad calls fused
into a sentence, spacing. The matching form erases all of them: it is the
sequence of lower-case word tokens separated by single spaces, each character
of scripts written without spaces (Chinese, Japanese, Thai, …) being a token of
its own.

:func:`normalize` is the fast path used for fingerprinting;
:func:`normalize_with_offsets` applies the very same steps while tracking, for
every output character, the span of the original it came from, so that
evidence can be shown on the original text.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from neardup.text.junk import junk_spans

Replacement = Callable[["re.Match[str]"], str]

_TAGS = re.compile(r"</?[A-Za-z][^<>\n]{0,500}>")
_ENTITIES = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
#: Typographic quotes and dashes, mapped one character to one before anything else.
_UNIFY_CHARS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u02bc": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
}
_UNIFY = str.maketrans(_UNIFY_CHARS)
_UNIFIABLE = re.compile("[" + "".join(_UNIFY_CHARS) + "]")
#: Runs of non-ASCII text, with the ASCII letter before them so that a base
#: letter and a combining accent compose (``e`` + U+0301 → ``é``).
_NON_ASCII = re.compile(r"[A-Za-z]?[^\x00-\x7f]+")
#: Apostrophes are dropped: "don't" and "dont", "Beijing’s" and "Beijings" match.
_APOSTROPHES = re.compile("'")


def _combining_marks() -> str:
    """A regex class body of every combining mark of the Basic Multilingual Plane.

    Python's ``\\w`` leaves out combining marks (Thai vowels, Devanagari vowel
    signs), which would cut words of those scripts apart; tokens keep them.
    """
    ranges, start, previous = [], None, None
    for code in range(0x300, 0x10000):
        if unicodedata.category(chr(code)).startswith("M"):
            if start is None:
                start = code
            previous = code
        elif start is not None:
            ranges.append((start, previous))
            start = None
    return "".join(f"\\u{a:04x}-\\u{b:04x}" if a != b else f"\\u{a:04x}" for a, b in ranges)


_MARKS = _combining_marks()
#: Code-point ranges of the scripts written without spaces between words.
_UNSPACED_RANGES = ((0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x2E80, 0x2FDF),
                    (0x3040, 0x30FF), (0x3100, 0x312F), (0x31A0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
                    (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
#: Scripts written without spaces between words: every character (with its marks) is a token.
_UNSPACED = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _UNSPACED_RANGES) + f"][{_MARKS}]*")
#: Everything that is not part of a token: the tracked path's separator.
_SEPARATORS = re.compile(f"(?:[^\\w{_MARKS}]|_)+")
#: Fast path, on UTF-8 bytes: ASCII punctuation, controls and "_" become spaces (newlines stay,
#: they join paragraphs; bytes of multi-byte characters are all >= 0x80 and stay) ...
_ASCII_SEPARATORS = bytes(c if (c >= 128 or chr(c).isalnum() or c == 10) else 32 for c in range(256))
#: ... and so do non-ASCII characters that are neither word characters nor combining marks.
_NON_ASCII_SEPARATORS = re.compile(f"[^\\w\\x00-\\x7f{_MARKS}]")
#: Line breaks inside one paragraph: spaces in the matching form.
_LINE_BREAKS = re.compile(r"\r\n|[\r\n]")


def _fold_non_ascii(match: re.Match[str]) -> str:
    return _fold(match.group())


def _fold(text: str) -> str:
    return _nfkc(text).casefold().translate(_UNIFY)


#: Texts longer than this are normalised character by character where that is exact (see _nfkc).
_NFKC_BY_CHAR = 4096


def _nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, faster for long texts of characters that each start a
    normalization segment of their own (a starter, never the second of a composition, and whose
    decomposition starts with one): there the form of the text is the forms of its characters, joined
    — a table of those, applied by ``str.translate``. 5M characters "㌀": 0.1 s instead of 9."""
    if len(text) < _NFKC_BY_CHAR:
        return unicodedata.normalize("NFKC", text)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    bmp = codes < 0x10000
    if not bmp.all() or not _segment_starters()[codes].all():
        return unicodedata.normalize("NFKC", text)
    table = {int(c): unicodedata.normalize("NFKC", chr(c)) for c in np.unique(codes).tolist()}
    return text.translate(table)


@lru_cache(maxsize=1)
def _segment_starters() -> np.ndarray:
    """For each character of the Basic Multilingual Plane: does it start a normalization segment no
    character before it can reach (UAX #15: its decomposition starts with a starter that is never the
    second character of a composition)?"""
    seconds = {0x1161 + k for k in range(21)} | {0x11A8 + k for k in range(27)}  # Hangul vowels, trailing jamo
    for code in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code))
        parts = decomposition.split()
        if len(parts) == 2 and not decomposition.startswith("<"):
            seconds.add(int(parts[1], 16))
    out = np.zeros(0x10000, dtype=bool)
    for code in range(0x10000):
        first = unicodedata.normalize("NFKD", chr(code))[:1]
        out[code] = bool(first) and unicodedata.combining(first) == 0 and ord(first) not in seconds \
            and unicodedata.combining(chr(code)) == 0 and code not in seconds and not 0xD800 <= code < 0xE000
    return out


def _folds_char_by_char(old: str, new: str) -> bool:
    """True when folding ``old`` maps each character to exactly one of ``new``, in place."""
    return len(old) == len(new) and all(_fold(ch) == out for ch, out in zip(old, new))


def _unescape(match: re.Match[str]) -> str:
    return _LINE_BREAKS.sub(" ", html.unescape(match.group()))


def _unify(match: re.Match[str]) -> str:
    return _UNIFY_CHARS[match.group()]


def _space(match: re.Match[str]) -> str:
    return " "


def _nothing(match: re.Match[str]) -> str:
    return ""


def _space_around(match: re.Match[str]) -> str:
    return f" {match.group()} "


#: The steps after line breaks and junk, in order, as the offset-tracking path runs them;
#: :func:`normalize_many` runs the same steps with C-level shortcuts (``str.translate``,
#: ``str.replace``, ``str.split``) and skips steps that cannot match. A property test keeps
#: the two identical.
_STEPS: tuple[tuple[re.Pattern[str], Replacement], ...] = (
    (_TAGS, _space),
    (_ENTITIES, _unescape),
    (_UNIFIABLE, _unify),
    (_NON_ASCII, _fold_non_ascii),
)
_STEPS_AFTER_LOWER: tuple[tuple[re.Pattern[str], Replacement], ...] = (
    (_APOSTROPHES, _nothing),
    (_UNSPACED, _space_around),   # run by _Tracked.space_unspaced, vectorised
    (_SEPARATORS, _space),
)


def normalize(text: str) -> str:
    """The matching form of ``text``: lower-case tokens separated by single spaces."""
    return normalize_many([text])[0]


def normalize_many(paragraphs: list[str]) -> list[str]:
    """The matching forms of many paragraphs, in one pass over their joined text.

    Line breaks inside a paragraph count as spaces. No step crosses the
    newlines that join paragraphs, so this equals normalising each alone, at a
    fraction of the cost of regex calls per paragraph.
    """
    if not paragraphs:
        return []
    text = "\n".join(p.replace("\r\n", " ").replace("\n", " ").replace("\r", " ") if ("\n" in p or "\r" in p)
                     else p for p in paragraphs)
    text = _blank_junk(text)
    if "<" in text:
        text = _TAGS.sub(" ", text)
    if "&" in text:
        text = _ENTITIES.sub(_unescape, text)
    if not text.isascii():
        text = _fold_wide_lines(text)
    text = text.lower().replace("'", "")
    text = text.encode("utf-8", "surrogatepass").translate(_ASCII_SEPARATORS).decode("utf-8", "surrogatepass")
    return [" ".join(line.split()) for line in text.split("\n")]


def _fold_wide_lines(text: str) -> str:
    """The non-ASCII steps, run only over the lines that hold non-ASCII characters."""
    lines = text.split("\n")
    wide = [i for i, line in enumerate(lines) if not line.isascii()]
    folded = _NON_ASCII.sub(_fold_non_ascii, _UNIFIABLE.sub(_unify, "\n".join(lines[i] for i in wide)))
    folded = _NON_ASCII_SEPARATORS.sub(" ", _space_unspaced(folded.lower()))
    for i, line in zip(wide, folded.split("\n")):
        lines[i] = line
    return "\n".join(lines)


def _space_unspaced(text: str) -> str:
    """``_UNSPACED.sub(" \\g<0> ", text)`` — each character of an unspaced script, with the marks
    after it, between spaces — vectorised: the regex would call Python for every character."""
    spans = _unspaced_spans(text)
    if not len(spans):
        return text
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    extra = np.zeros(len(codes) + 1, dtype=np.int64)    # spaces inserted before each position
    np.add.at(extra, spans[:, 0], 1)
    np.add.at(extra, spans[:, 1], 1)
    out = np.full(len(codes) + int(extra.sum()), 0x20, dtype=np.uint32)
    out[np.arange(len(codes)) + np.cumsum(extra)[:-1]] = codes
    return out.tobytes().decode("utf-32-le", "surrogatepass")


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Whether each code point of the Basic Multilingual Plane is a combining mark, and whether it is
    of an unspaced script (the astral range is checked apart)."""
    mark = np.zeros(0x10000, dtype=bool)
    for match in re.finditer(r"\\u([0-9a-f]{4})(?:-\\u([0-9a-f]{4}))?", _MARKS):
        mark[int(match.group(1), 16):int(match.group(2) or match.group(1), 16) + 1] = True
    unspaced = np.zeros(0x10000, dtype=bool)
    for low, high in _UNSPACED_RANGES:
        if low < 0x10000:
            unspaced[low:high + 1] = True
    return mark, unspaced


def _unspaced_spans(text: str) -> np.ndarray:
    """(start, end) of every match of ``_UNSPACED`` in ``text``, as the regex finds them: a base
    character and the marks after it form a group; a group's first character of an unspaced script
    starts a match that takes the rest of the group."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    mark_table, unspaced_table = _tables()
    bmp = codes < 0x10000
    low = np.where(bmp, codes, 0)
    mark = bmp & mark_table[low]
    unspaced = np.where(bmp, unspaced_table[low], (codes >= 0x20000) & (codes <= 0x2FA1F))
    if not unspaced.any():
        return np.zeros((0, 2), dtype=np.int64)
    group = np.cumsum(~mark)                      # a base character and the marks after it
    positions = np.flatnonzero(unspaced)
    groups = group[positions]
    starts = positions[np.concatenate(([True], groups[1:] != groups[:-1]))]   # first in its group
    group_end = np.searchsorted(group, group[starts], side="right")
    return np.column_stack((starts, group_end)).astype(np.int64)


def _blank_junk(text: str) -> str:
    spans = junk_spans(text)
    if not spans:
        return text
    pieces, pos = [], 0
    for start, end in spans:
        pieces += [text[pos:start], " "]
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


@dataclass(frozen=True)
class Normalized:
    """A matching form and, per character, the original span it came from."""

    text: str
    starts: np.ndarray
    ends: np.ndarray

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text behind ``text[start:end]`` (end > start)."""
        return int(self.starts[start]), int(self.ends[end - 1])


def normalize_with_offsets(text: str) -> Normalized:
    """Like :func:`normalize`, and also map every output character back to the original."""
    current = _Tracked(text, np.arange(len(text), dtype=np.int64), np.arange(1, len(text) + 1, dtype=np.int64))
    current = current.substitute(_LINE_BREAKS, _space)
    current = current.substitute_spans(junk_spans(current.text), " ")
    for pattern, replace in _STEPS:
        current = current.substitute(pattern, replace)
    current = current.lower()
    for pattern, replace in _STEPS_AFTER_LOWER:
        current = current.space_unspaced() if pattern is _UNSPACED else current.substitute(pattern, replace)
    return current.strip_spaces()


def _interleave(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[0], b[0], a[1], b[1], ..., a[-1]`` (``a`` one longer than ``b``)."""
    out = np.empty(len(a) + len(b), dtype=np.int64)
    out[0::2], out[1::2] = a, b
    return out


@dataclass(frozen=True)
class _Tracked:
    text: str
    starts: np.ndarray
    ends: np.ndarray

    def substitute(self, pattern: re.Pattern[str], replace: Replacement) -> _Tracked:
        spans, texts = [], []
        for match in pattern.finditer(self.text):
            spans.append(match.span())
            texts.append(replace(match))
        aligned = None
        if replace is _fold_non_ascii:
            aligned = [_folds_char_by_char(self.text[a:b], new) for (a, b), new in zip(spans, texts)]
        return self._rebuild(spans, texts, aligned)

    def substitute_spans(self, spans: list[tuple[int, int]], replacement: str) -> _Tracked:
        return self._rebuild(spans, [replacement] * len(spans))

    def _rebuild(self, spans: list[tuple[int, int]], texts: list[str],
                 aligned: list[bool] | None = None) -> _Tracked:
        """Replace spans; a replacement maps char by char when ``aligned`` says so (default: same
        length), otherwise every character of it maps to the span it replaced (an insertion borrows
        its neighbour's position). Vectorised: the maps are built with numpy, whatever the count."""
        if not spans:
            return self
        bounds = np.array(spans, dtype=np.int64).reshape(-1, 2)
        sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        by_char = (sizes == bounds[:, 1] - bounds[:, 0]) if aligned is None else np.array(aligned, dtype=bool)
        gaps = [self.text[a:b] for a, b in zip(np.concatenate(([0], bounds[:, 1])).tolist(),
                                                np.concatenate((bounds[:, 0], [len(self.text)])).tolist())]
        pieces = [piece for pair in zip(gaps, texts) for piece in pair] + [gaps[-1]]
        return _Tracked("".join(pieces), *self._maps(bounds, sizes, by_char))

    def space_unspaced(self) -> _Tracked:
        """The step of ``_UNSPACED`` (spaces around each character of an unspaced script), vectorised."""
        bounds = _unspaced_spans(self.text)
        if not len(bounds):
            return self
        sizes = bounds[:, 1] - bounds[:, 0] + 2
        return _Tracked(_space_unspaced(self.text), *self._maps(bounds, sizes, np.zeros(len(bounds), dtype=bool)))

    def _maps(self, bounds: np.ndarray, sizes: np.ndarray, by_char: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each character of the text comes from once the spans ``bounds`` are replaced by texts
        of ``sizes`` characters: (start of the original span, end of it) per character."""
        n = len(self.text)
        start, end = bounds[:, 0], bounds[:, 1]
        gap_start, gap_end = np.concatenate(([0], end)), np.concatenate((start, [n]))
        last = max(n - 1, 0)
        first_anchor = np.where(end > start, start, np.minimum(start, last))
        last_anchor = np.where(end > start, end - 1, np.where(start > 0, start - 1, np.minimum(start, last)))
        lengths = _interleave(gap_end - gap_start, sizes)
        step = np.repeat(_interleave(np.ones(len(gap_start), np.int64), by_char.astype(np.int64)), lengths)
        within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        moved = within * step
        starts = self.starts[np.repeat(_interleave(gap_start, np.where(by_char, start, first_anchor)), lengths) + moved]
        ends = self.ends[np.repeat(_interleave(gap_start, np.where(by_char, start, last_anchor)), lengths) + moved]
        return starts, ends

    def lower(self) -> _Tracked:
        lowered = self.text.lower()
        if len(lowered) == len(self.text):
            return _Tracked(lowered, self.starts, self.ends)
        return self.substitute(re.compile(r".", re.DOTALL), lambda m: m.group().lower())

    def strip_spaces(self) -> Normalized:
        stripped = self.text.strip(" ")
        lead = len(self.text) - len(self.text.lstrip(" "))
        sl = slice(lead, lead + len(stripped))
        return Normalized(stripped, self.starts[sl], self.ends[sl])
