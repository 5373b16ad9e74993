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
#: ``window.dataLayer.push(``, ``(adsbygoogle = window.adsbygoogle || []).push(``.
_CALL_START = re.compile(
    r"(?:\([ \t]*adsbygoogle[ \t]*=[ \t]*window\.adsbygoogle[ \t]*\|\|[ \t]*\[\][ \t]*\)(?:\.[A-Za-z_$][\w$]*)+"
    r"|(?<![\w$])[a-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+)[ \t]*\("
)
#: Anonymous functions written inline by ad and tracking snippets.
_FUNCTION_START = re.compile(r"(?<![\w$])function[ \t]*\([^()\n]{0,200}\)[ \t]*\{")
_OPEN = {"(": ")", "{": "}", "[": "]"}
_CLOSE = {")", "}", "]"}
#: A call longer than this is not a snippet; leave it alone.
_MAX_CALL = 4000


#: Cheap literal triggers: the full patterns run only on lines where these match.
_CALL_TRIGGER = re.compile(r"\.[A-Za-z_$][\w$]*[ \t]*\(")
_URL_TRIGGER = re.compile(r"://|[wW]{3}\.")


def junk_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start, end) spans of junk in ``text``."""
    spans: list[tuple[int, int]] = []
    if "<" in text:
        spans += [m.span() for m in _BLOCKS.finditer(text)]
    if "(" in text:
        for start, end in _lines_matching(text, _CALL_TRIGGER):
            spans += _code_spans(text, _CALL_START, start, end)
        if "function" in text:
            spans += _code_spans(text, _FUNCTION_START, 0, len(text))
    for start, end in _lines_matching(text, _URL_TRIGGER):
        spans += [m.span() for m in _URLS.finditer(text, start, end)]
    return _merge(spans) if spans else spans


def _lines_matching(text: str, trigger: re.Pattern[str]) -> list[tuple[int, int]]:
    """(start, end) of each line holding a match of ``trigger``."""
    lines: list[tuple[int, int]] = []
    for match in trigger.finditer(text):
        if lines and match.start() < lines[-1][1]:
            continue
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        lines.append((start, len(text) if end < 0 else end))
    return lines


def _code_spans(text: str, starts: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    for match in starts.finditer(text, start, end):
        close = _balanced_end(text, match.end() - 1)
        if close is not None:
            spans.append((match.start(), _swallow_semicolon(text, close)))
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
