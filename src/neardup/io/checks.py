"""What makes a record a document — the one rule both engines apply (the local reader and the Spark
stage call these functions): an id that is a non-empty string or integer of valid Unicode, a text
that is a string or a list of strings, not empty, not binary; and how a reason is counted."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Share of control characters above which a text is taken for binary junk.
BINARY_SHARE = 0.05

#: Control characters that text does not hold (tab, line feed, vertical tab, form feed, carriage return do).
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f]")


def record_problem(record: Mapping[str, Any], id_field: str, text_field: str, controls: bool = True) -> str | None:
    """Why ``record`` is no document (None: it is one). ``controls=False``: the caller knows the
    text holds no control characters (a JSON line without ``\\u`` or ``\\b`` escapes)."""
    if id_field not in record:
        return f"missing field {id_field!r}"
    if text_field not in record:
        return f"missing field {text_field!r}"
    return id_problem(record[id_field], id_field) or text_problem(record[text_field], text_field, controls)


def id_problem(value: Any, id_field: str = "id") -> str | None:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        return f"field {id_field!r} must be a non-empty string or integer"
    if isinstance(value, str) and not encodable(value):
        return f"field {id_field!r} is not valid Unicode (lone surrogate)"
    return None


def text_problem(value: Any, text_field: str = "text", controls: bool = True) -> str | None:
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        value = "\n".join(value)
    if not isinstance(value, str):
        return f"field {text_field!r} must be a string or a list of strings"
    if not value.strip():
        return "empty text"
    if controls and ("\x00" in value or control_share(value) > BINARY_SHARE):
        return "binary content, not text"
    return None


def encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def control_share(text: str) -> float:
    """Share of control characters in the first 64k characters (found by one C-level scan)."""
    sample = text[:65536]
    return len(_CONTROLS.findall(sample)) / max(len(sample), 1)


def reason_key(reason: str) -> str:
    """A reason without the specifics, for counting: 'missing field 'text''."""
    for prefix in ("duplicate id", "invalid UTF-8", "not valid JSON", "record of", "file exceeds",
                   "cannot read the rest", "expected a JSON object", "more fields than the header"):
        if reason.startswith(prefix):
            return {"record of": "record too large", "file exceeds": "record too large"}.get(prefix, prefix)
    if "paragraphs exceed the limit" in reason:
        return "too many paragraphs"
    return reason


__all__ = ["BINARY_SHARE", "control_share", "encodable", "id_problem", "reason_key", "record_problem",
           "text_problem"]
