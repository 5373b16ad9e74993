"""A document: an id, its original text, its paragraphs (spans of the text) and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .errors import InputError
from .paragraphs import Span, spans_of_paragraph_list, split_paragraphs


@dataclass(frozen=True)
class Document:
    """The unit neardup indexes and queries.

    ``paragraphs`` are (start, end) spans of ``text``; evidence quotes them.
    Build with :meth:`from_text` (paragraphs found by line structure) or
    :meth:`from_paragraphs` (each item is one paragraph whatever its line breaks).
    """

    id: str
    text: str
    paragraphs: tuple[Span, ...]
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_text(cls, id: str, text: str, metadata: dict[str, Any] | None = None) -> "Document":
        if not isinstance(text, str):
            raise InputError(f"document {id!r}: text must be a string, got {type(text).__name__}")
        return cls(str(id), text, tuple(split_paragraphs(text)), dict(metadata or {}))

    @classmethod
    def from_paragraphs(cls, id: str, paragraphs: Sequence[str],
                        metadata: dict[str, Any] | None = None) -> "Document":
        if isinstance(paragraphs, str) or not all(isinstance(p, str) for p in paragraphs):
            raise InputError(f"document {id!r}: paragraphs must be a list of strings")
        text, spans = spans_of_paragraph_list(list(paragraphs))
        return cls(str(id), text, tuple(spans), dict(metadata or {}))

    def paragraph_text(self, index: int) -> str:
        start, end = self.paragraphs[index]
        return self.text[start:end]


def as_document(value: "Document | str | Sequence[str]", id: str = "-") -> Document:
    """Accept a Document, a text, or a list of paragraphs."""
    if isinstance(value, Document):
        return value
    if isinstance(value, str):
        return Document.from_text(id, value)
    return Document.from_paragraphs(id, value)
