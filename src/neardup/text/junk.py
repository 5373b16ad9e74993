"""Find machine junk fused into prose: ad calls, scripts, tracking snippets, URLs.

No span crosses a line break, so a batch of paragraphs joined by newlines
gives the same spans as each paragraph alone.

Scraped pages fuse things like ``googletag.cmd.push(function() {…});`` onto
the end of a sentence. Left in, they add shingles that make two copies of the
same paragraph look different. These finders return the spans to blank out;
normalisation replaces each with a space, so offsets stay traceable.
"""

from __future__ import annotations

import re

#: Whole blocks that are never prose.
_BLOCKS = re.compile(
    r"<script\b[^>\n]*>[^\n]*?</script[ \t]*>|<style\b[^>\n]*>[^\n]*?</style[ \t]*>|<!--[^\n]*?-->"
    r"|<noscript\b[^>\n]*>[^\n]*?</noscript[ \t]*>",
    re.IGNORECASE,
)
#: Web addresses: they differ between outlets (tracking parameters) and carry no story.
_URLS = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'“”‘’()]+", re.IGNORECASE)
#: A call on a dotted name starting in lower case, fused or not: ``googletag.cmd.push(``,
#: ``window.dataLayer.push(``, ``(adsbygoogle = window.adsbygoogle || []).push(``; the names of
#: ad libraries count even when fused to the end of a word ("USgoogletag.cmd.push(").
_CALL_START = re.compile(
    r"(?:\([ \t]*adsbygoogle[ \t]*=[ \t]*window\.adsbygoogle[ \t]*\|\|[ \t]*\[\][ \t]*\)(?:\.[A-Za-z_$][\w$]*)+"
    r"|(?:googletag|apstag|pbjs|_taboola|adsbygoogle|__tcfapi)(?:\.[A-Za-z_$][\w$]*)+"
    r"|(?<![\w$])[a-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+)[ \t]*\("
)
#: Anonymous functions written inline by ad and tracking snippets.
_FUNCTION_START = re.compile(r"function[ \t]*\([^()\n]{0,200}\)[ \t]*\{")
_OPEN = {"(": ")", "{": "}", "[": "]"}
_CLOSE = {")", "}", "]"}
#: A call longer than this is not a snippet; leave it alone.
_MAX_CALL = 4000


#: What prose looks like, and junk never does: eight words of letters in a row (separated by spaces
#: and the punctuation of sentences), or twelve letters of a script written without spaces.
_PROSE = re.compile(r"(?:[^\W\d_]{2,}[,;:'\"’”]?[ \t]+){7}[^\W\d_]{2,}"
                    r"|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]{12}")

#: Cheap literal triggers: the full patterns run only on lines where these match.
_CALL_TRIGGER = re.compile(r"\.[A-Za-z_$][\w$]*[ \t]*\(")
_URL_TRIGGERS = ("://", "www.", "WWW.")


def junk_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start, end) spans of junk in ``text``. A block, call or function
    that holds prose (:data:`_PROSE`) is no junk: whatever its brackets say, words are content."""
    spans: list[tuple[int, int]] = []
    if "<" in text:
        spans += [m.span() for m in _BLOCKS.finditer(text)]
    if "(" in text:
        spans += _call_spans(text)
        spans += _function_spans(text)
    spans = [(start, end) for start, end in spans if _PROSE.search(text, start, end) is None]
    for start, end in _lines_holding(text, _URL_TRIGGERS):
        spans += [m.span() for m in _URLS.finditer(text, start, end)]
    return _merge(spans) if spans else spans


def _lines_holding(text: str, literals: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of each line holding one of ``literals``, found with ``str.find``."""
    lines: set[tuple[int, int]] = set()
    for literal in literals:
        at = text.find(literal)
        while at >= 0:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            lines.add((start, end))
            at = text.find(literal, end)
    return sorted(lines)


def _function_spans(text: str) -> list[tuple[int, int]]:
    """Inline ``function (…) {…}`` snippets: found with ``str.find``, checked with the pattern."""
    spans: list[tuple[int, int]] = []
    at = text.find("function")
    while at >= 0:
        match = _FUNCTION_START.match(text, at)
        if match and (at == 0 or not (text[at - 1].isalnum() or text[at - 1] in "_$")):
            close = _balanced_end(text, match.end() - 1)
            if close is not None:
                spans.append((at, _swallow_semicolon(text, close)))
        at = text.find("function", at + 8)
    return spans


#: How far before its ".name(" trigger a dotted call may start.
_CALL_REACH = 300


def _call_spans(text: str) -> list[tuple[int, int]]:
    """Calls on dotted names, found from their ".name(" trigger and a short look back."""
    spans: list[tuple[int, int]] = []
    for trigger in _CALL_TRIGGER.finditer(text):
        if spans and trigger.start() < spans[-1][1]:
            continue
        line_start = text.rfind("\n", 0, trigger.start()) + 1
        window = max(line_start, trigger.start() - _CALL_REACH)
        for call in _CALL_START.finditer(text, window, trigger.end()):
            if call.end() == trigger.end():
                close = _balanced_end(text, call.end() - 1)
                if close is not None:
                    spans.append((call.start(), _swallow_semicolon(text, close)))
                break
    return spans


def _balanced_end(text: str, open_at: int) -> int | None:
    """End of the bracketed group opening at ``open_at``, or None if it never closes."""
    stack: list[str] = []
    limit = min(len(text), open_at + _MAX_CALL)
    for i in range(open_at, limit):
        ch = text[i]
        if ch == "\n":  # junk never spans paragraphs
            return None
        if ch in _OPEN:
            stack.append(_OPEN[ch])
        elif ch in _CLOSE:
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i + 1
    return None


def _swallow_semicolon(text: str, end: int) -> int:
    probe = end
    while probe < len(text) and text[probe] in " \t":
        probe += 1
    return probe + 1 if probe < len(text) and text[probe] == ";" else end


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
