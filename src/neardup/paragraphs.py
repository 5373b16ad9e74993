"""Split a text into paragraphs, as spans of the original.

News text arrives in three shapes: one paragraph per line (scraped pages,
most JSON corpora), paragraphs separated by blank lines, and hard-wrapped wire
copy whose lines break at ~65 characters and whose paragraphs begin with an
indented line (Reuters). The first two split on line breaks; hard-wrapped
text is detected from its line lengths and re-joined into paragraphs.
"""

from __future__ import annotations

import re

Span = tuple[int, int]

_NEWLINE = re.compile(r"\r\n|\r|\n")
#: Lines of hard-wrapped text are at most this long.
_MAX_WRAP_WIDTH = 100
_TERMINAL = ('.', '!', '?', '"', "'", ':', '”', '’', ')')


def split_paragraphs(text: str) -> list[Span]:
    """(start, end) spans of the paragraphs of ``text``, whitespace trimmed, in order."""
    lines = _line_spans(text)
    if _is_hard_wrapped(text, lines):
        return _join_wrapped(text, lines)
    return [span for span in (_trim(text, s, e) for s, e in lines) if span is not None]


def spans_of_paragraph_list(paragraphs: list[str], separator: str = "\n\n") -> tuple[str, list[Span]]:
    """Join a document given as paragraphs; the spans keep each item one paragraph."""
    spans, pos = [], 0
    for paragraph in paragraphs:
        trimmed = _trim(paragraph, 0, len(paragraph))
        if trimmed is not None:
            spans.append((pos + trimmed[0], pos + trimmed[1]))
        pos += len(paragraph) + len(separator)
    return separator.join(paragraphs), spans


def _line_spans(text: str) -> list[Span]:
    spans, pos = [], 0
    for newline in _NEWLINE.finditer(text):
        spans.append((pos, newline.start()))
        pos = newline.end()
    if pos < len(text):
        spans.append((pos, len(text)))
    return spans


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _is_hard_wrapped(text: str, lines: list[Span]) -> bool:
    """Most lines long, near one width, unterminated: lines are wrapped, not paragraphs."""
    lengths = sorted(e - s for s, e in lines if e > s and not text[s:e].isspace())
    if len(lengths) < 4 or lengths[-1] > _MAX_WRAP_WIDTH:  # one long line: lines are paragraphs
        return False
    width = lengths[int(0.9 * (len(lengths) - 1))]
    if not 30 <= width <= _MAX_WRAP_WIDTH:
        return False
    near_width = sum(1 for n in lengths if n >= 0.7 * width)
    unterminated = sum(1 for s, e in lines if e > s and not text[s:e].rstrip().endswith(_TERMINAL))
    return near_width >= 0.6 * len(lengths) and unterminated >= 0.5 * len(lengths)


def _join_wrapped(text: str, lines: list[Span]) -> list[Span]:
    """A paragraph starts after a blank or short line, or at an indented line."""
    widths = sorted(e - s for s, e in lines if e > s)
    width = widths[int(0.9 * (len(widths) - 1))]
    paragraphs: list[Span] = []
    current: Span | None = None
    previous_short = True
    for start, end in lines:
        span = _trim(text, start, end)
        if span is None:
            current, previous_short = _close(paragraphs, current), True
            continue
        indented = span[0] > start
        if current is None or indented or previous_short:
            _close(paragraphs, current)
            current = span
        else:
            current = (current[0], span[1])
        previous_short = (end - start) < 0.6 * width
    _close(paragraphs, current)
    return paragraphs


def _close(paragraphs: list[Span], current: Span | None) -> None:
    if current is not None:
        paragraphs.append(current)
