"""A document: an id, its original text, its paragraphs (spans of the text) and metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neardup.errors import InputError
from neardup.text.paragraphs import Span, spans_of_paragraph_list, split_paragraphs

#: Span lists longer than this are checked with numpy; shorter ones in a loop (cheaper for them).
_NUMPY_SPANS = 64


@dataclass(frozen=True)
class Document:
    """The unit neardup indexes and queries.

    ``paragraphs`` are (start, end) spans of ``text``: integers with ``0 <= start <= end <=
    len(text)``, in order, not overlapping (checked: anything else is an
    :class:`~neardup.errors.InputError`); evidence quotes them. Build with :meth:`from_text`
    (paragraphs found by line structure) or :meth:`from_paragraphs` (each item is one
    paragraph whatever its line breaks).
    """

    id: str
    text: str
    paragraphs: tuple[Span, ...]
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise InputError(f"a document id must be a string, got {type(self.id).__name__}")
        if not isinstance(self.text, str):
            raise InputError(f"document {self.id!r}: text must be a string, got {type(self.text).__name__}")
        if not isinstance(self.metadata, dict):
            raise InputError(f"document {self.id!r}: metadata must be a dict, got {type(self.metadata).__name__}")
        object.__setattr__(self, "paragraphs", checked_spans(self.id, self.text, self.paragraphs))

    @classmethod
    def from_text(cls, id: str | int, text: str, metadata: Mapping[str, Any] | None = None) -> Document:
        """A document whose paragraphs are found in ``text`` (lines, or blocks between blank lines;
        hard-wrapped wire copy re-joined)."""
        id = _document_id(id)
        if not isinstance(text, str):
            raise InputError(f"document {id!r}: text must be a string, got {type(text).__name__}")
        return cls._made(id, text, tuple(split_paragraphs(text)), _metadata(id, metadata))

    @classmethod
    def from_paragraphs(cls, id: str | int, paragraphs: Sequence[str],
                        metadata: Mapping[str, Any] | None = None) -> Document:
        """A document of the paragraphs given, joined by newlines (spans point into that text)."""
        id = _document_id(id)
        if not isinstance(paragraphs, (list, tuple)) or not all(isinstance(p, str) for p in paragraphs):
            raise InputError(f"document {id!r}: paragraphs must be a list of strings")
        text, spans = spans_of_paragraph_list(list(paragraphs))
        return cls._made(id, text, tuple(spans), _metadata(id, metadata))

    @classmethod
    def _made(cls, id: str, text: str, spans: tuple[Span, ...], metadata: dict[str, Any]) -> Document:
        """A document whose spans neardup computed itself (valid by construction: not re-checked)."""
        document = object.__new__(cls)
        for name, value in (("id", id), ("text", text), ("paragraphs", spans), ("metadata", metadata)):
            object.__setattr__(document, name, value)
        return document

    def paragraph_text(self, index: int) -> str:
        """The text of paragraph ``index`` (0-based), as it is in the original."""
        start, end = self.paragraphs[index]
        return self.text[start:end]


def checked_spans(id: str, text: str, spans: object) -> tuple[Span, ...]:
    """``spans`` as a tuple of (start, end) int pairs, or an InputError saying which span is wrong."""
    if isinstance(spans, np.ndarray) or (isinstance(spans, (list, tuple)) and len(spans) > _NUMPY_SPANS):
        return _checked_with_numpy(id, text, spans)
    if not isinstance(spans, (list, tuple)):
        raise InputError(f"document {id!r}: paragraphs must be a sequence of (start, end) spans, "
                         f"got {type(spans).__name__}")
    out, previous, length = [], 0, len(text)
    for i, span in enumerate(spans):
        try:
            start, end = span
        except (TypeError, ValueError):
            start = end = None
        if not (type(start) is int and type(end) is int):
            if not (_is_int(start) and _is_int(end)):
                raise InputError(f"document {id!r}: paragraph {i} is {span!r}, not a (start, end) pair of integers")
            start, end = int(start), int(end)
        if not previous <= start <= end <= length:
            raise InputError(_span_problem(id, i, start, end, previous, length))
        out.append((start, end))
        previous = end
    return tuple(out)


def _checked_with_numpy(id: str, text: str, spans: Any) -> tuple[Span, ...]:
    try:
        array = np.asarray(spans)
    except (ValueError, TypeError, OverflowError):
        array = np.zeros((1, 3))  # ragged: reported below
    if array.size == 0:
        return ()
    if array.ndim != 2 or array.shape[1] != 2 or array.dtype.kind not in "iu":
        raise InputError(f"document {id!r}: paragraphs must be (start, end) pairs of integers")
    array = array.astype(np.int64)
    starts, ends = array[:, 0], array[:, 1]
    previous = np.concatenate(([0], ends[:-1]))
    bad = (starts < previous) | (ends < starts) | (ends > len(text))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(_span_problem(id, i, int(starts[i]), int(ends[i]), int(previous[i]), len(text)))
    return tuple(zip(starts.tolist(), ends.tolist()))


def _span_problem(id: str, i: int, start: int, end: int, previous: int, length: int) -> str:
    if end < start:
        why = "ends before it starts"
    elif start < 0 or end > length:
        why = f"lies outside the text ({length} characters)"
    else:
        why = f"overlaps or precedes the paragraph before it (which ends at {previous})"
    return f"document {id!r}: paragraph {i} ({start}, {end}) {why}"


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _document_id(id: object) -> str:
    if isinstance(id, str):
        return id
    if _is_int(id):
        return str(id)
    raise InputError(f"a document id must be a string or an integer, got {type(id).__name__}")


def _metadata(id: str, metadata: object) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InputError(f"document {id!r}: metadata must be a mapping, got {type(metadata).__name__}")
    return dict(metadata)


def as_document(value: Document | str | Sequence[str], id: str = "-") -> Document:
    """Accept a Document, a text, or a list of paragraphs (anything else is an InputError)."""
    if isinstance(value, Document):
        return value
    if isinstance(value, str):
        return Document.from_text(id, value)
    if isinstance(value, (list, tuple)):
        return Document.from_paragraphs(id, value)
    raise InputError(f"a document is a Document, a text or a list of paragraphs, got {type(value).__name__}")
