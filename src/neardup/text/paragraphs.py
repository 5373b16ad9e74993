"""Split a text into paragraphs, as spans of the original.

News text arrives in three shapes: one paragraph per line (scraped pages,
most JSON corpora), paragraphs separated by blank lines, and hard-wrapped wire
copy whose lines break at ~65 characters and whose paragraphs begin with an
indented line (Reuters). The first two split on line breaks; hard-wrapped
text is detected from its line lengths and re-joined into paragraphs.
"""

from __future__ import annotations

import re

from neardup import native

Span = tuple[int, int]

#: Lines of hard-wrapped text are at most this long.
_MAX_WRAP_WIDTH = 100
_TERMINAL = frozenset('.!?"\':”’)')
#: A non-blank line: leading blanks, its text from first to last non-space character (group 1),
#: trailing blanks. Never crosses a line break (\r\n, \r or \n), so one C-level scan finds
#: every non-blank line with its raw and trimmed span.
_LINE = re.compile(r"[^\S\r\n]*(\S(?:[^\r\n]*\S)?)[^\S\r\n]*")


def split_paragraphs(text: str) -> list[Span]:
    """(start, end) spans of the paragraphs of ``text``, whitespace trimmed, in order.

    The compiled kernel has the same function in C (tests hold the two equal)."""
    if native.compiled():
        spans: list[Span] = native.kernel.split_paragraphs(text)
        return spans
    lines = list(_LINE.finditer(text))
    if _is_hard_wrapped(text, lines):
        return _join_wrapped(text, lines)
    return [line.span(1) for line in lines]


def spans_of_paragraph_list(paragraphs: list[str], separator: str = "\n\n") -> tuple[str, list[Span]]:
    """Join a document given as paragraphs; the spans keep each item one paragraph."""
    spans, pos = [], 0
    for paragraph in paragraphs:
        trimmed = _trim(paragraph, 0, len(paragraph))
        if trimmed is not None:
            spans.append((pos + trimmed[0], pos + trimmed[1]))
        pos += len(paragraph) + len(separator)
    return separator.join(paragraphs), spans


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _is_hard_wrapped(text: str, lines: list[re.Match[str]]) -> bool:
    """Most lines long, near one width, unterminated: lines are wrapped, not paragraphs."""
    if len(lines) < 4:
        return False
    lengths = sorted(line.end() - line.start() for line in lines)
    if lengths[-1] > _MAX_WRAP_WIDTH:  # one long line: lines are paragraphs
        return False
    width = lengths[int(0.9 * (len(lengths) - 1))]
    if not 30 <= width <= _MAX_WRAP_WIDTH:
        return False
    near_width = sum(1 for n in lengths if n >= 0.7 * width)
    unterminated = sum(1 for line in lines if text[line.end(1) - 1] not in _TERMINAL)
    return near_width >= 0.6 * len(lengths) and unterminated >= 0.5 * len(lengths)


def _join_wrapped(text: str, lines: list[re.Match[str]]) -> list[Span]:
    """A paragraph starts after a blank or short line, or at an indented line."""
    widths = sorted(line.end() - line.start() for line in lines)
    width = widths[int(0.9 * (len(widths) - 1))]
    paragraphs: list[Span] = []
    current: list[int] | None = None
    previous_short, previous_end = True, 0
    for line in lines:
        start, end = line.span()
        body_start, body_end = line.span(1)
        if current is None or previous_short or body_start > start or _blank_between(text, previous_end, start):
            if current is not None:
                paragraphs.append((current[0], current[1]))
            current = [body_start, body_end]
        else:
            current[1] = body_end
        previous_short, previous_end = (end - start) < 0.6 * width, end
    if current is not None:
        paragraphs.append((current[0], current[1]))
    return paragraphs


def _blank_between(text: str, end: int, start: int) -> bool:
    """True when more than one line break separates two lines (a blank line lies between)."""
    gap = text[end:start]
    return gap.count("\n") + gap.count("\r") - gap.count("\r\n") > 1
