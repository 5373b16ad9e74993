"""Find machine junk fused into prose: ad calls, scripts, tracking snippets, URLs.

Scraped pages fuse things like ``googletag.cmd.push(function() {…});`` onto
the end of a sentence. Left in, they add shingles that make two copies of the
same paragraph look different. These finders return the spans to blank out;
normalisation replaces each with a space, so offsets stay traceable.
"""

from __future__ import annotations

import re

#: Whole blocks that are never prose.
_BLOCKS = re.compile(
    r"<script\b[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>|<!--.*?-->|<noscript\b[^>]*>.*?</noscript\s*>",
    re.IGNORECASE | re.DOTALL,
)
#: Web addresses: they differ between outlets (tracking parameters) and carry no story.
_URLS = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'“”‘’()]+", re.IGNORECASE)
#: A call on a dotted name starting in lower case, fused or not: ``googletag.cmd.push(``,
#: ``window.dataLayer.push(``, ``(adsbygoogle = window.adsbygoogle || []).push(``.
_CALL_START = re.compile(
    r"(?:\(\s*adsbygoogle\s*=\s*window\.adsbygoogle\s*\|\|\s*\[\]\s*\)(?:\.[A-Za-z_$][\w$]*)+"
    r"|(?<![\w$])[a-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+)\s*\("
)
#: Anonymous functions written inline by ad and tracking snippets.
_FUNCTION_START = re.compile(r"(?<![\w$])function\s*\([^()]{0,200}\)\s*\{")
_OPEN = {"(": ")", "{": "}", "[": "]"}
_CLOSE = {")", "}", "]"}
#: A call longer than this is not a snippet; leave it alone.
_MAX_CALL = 4000


def junk_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start, end) spans of junk in ``text``."""
    spans: list[tuple[int, int]] = []
    if "<" in text:
        spans += [m.span() for m in _BLOCKS.finditer(text)]
    if "(" in text:
        spans += _code_spans(text, _CALL_START)
        if "function" in text:
            spans += _code_spans(text, _FUNCTION_START)
    if "://" in text or "www." in text or "WWW." in text:
        spans += [m.span() for m in _URLS.finditer(text)]
    return _merge(spans) if spans else spans


def _code_spans(text: str, starts: re.Pattern[str]) -> list[tuple[int, int]]:
    spans = []
    for match in starts.finditer(text):
        end = _balanced_end(text, match.end() - 1)
        if end is not None:
            spans.append((match.start(), _swallow_semicolon(text, end)))
    return spans


def _balanced_end(text: str, open_at: int) -> int | None:
    """End of the bracketed group opening at ``open_at``, or None if it never closes."""
    stack: list[str] = []
    limit = min(len(text), open_at + _MAX_CALL)
    for i in range(open_at, limit):
        ch = text[i]
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
