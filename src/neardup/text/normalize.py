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
#: Scripts written without spaces between words: every character (with its marks) is a token.
_UNSPACED = re.compile(
    "[\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fdf\u3040-\u30ff"
    "\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]"
    f"[{_MARKS}]*"
)
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
    return unicodedata.normalize("NFKC", text).casefold().translate(_UNIFY)


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
    (_UNSPACED, _space_around),
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
    folded = _NON_ASCII_SEPARATORS.sub(" ", _UNSPACED.sub(_space_around, folded.lower()))
    for i, line in zip(wide, folded.split("\n")):
        lines[i] = line
    return "\n".join(lines)


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
        current = current.substitute(pattern, replace)
    return current.strip_spaces()


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
        """Replace spans; a replacement maps char by char when ``aligned`` says so (default: same length)."""
        if not spans:
            return self
        pieces, starts, ends, pos = [], [], [], 0
        for index, ((start, end), new) in enumerate(zip(spans, texts)):
            by_char = len(new) == end - start if aligned is None else aligned[index]
            pieces += [self.text[pos:start], new]
            starts += [self.starts[pos:start], self._fill(new, start, end, self.starts, by_char=by_char)]
            ends += [self.ends[pos:start], self._fill(new, start, end, self.ends, last=True, by_char=by_char)]
            pos = end
        pieces.append(self.text[pos:])
        starts.append(self.starts[pos:])
        ends.append(self.ends[pos:])
        return _Tracked("".join(pieces), np.concatenate(starts), np.concatenate(ends))

    @staticmethod
    def _fill(new: str, start: int, end: int, source: np.ndarray, last: bool = False,
              by_char: bool = False) -> np.ndarray:
        if by_char:
            return source[start:end]
        if end == start:  # an insertion: borrow the neighbour's position
            anchor = source[start - 1] if last and start > 0 else source[min(start, len(source) - 1)]
        else:
            anchor = source[end - 1] if last else source[start]
        return np.full(len(new), anchor, dtype=np.int64)

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
