"""Documents from the data types people hold: Documents, mappings, Arrow tables, pandas frames —
the one rule for turning a record into a :class:`~neardup.document.Document`.

A record is a mapping with an id column and a text column (a string, or a list of paragraphs);
its other columns become the document's metadata. A pyarrow ``Table`` or ``RecordBatch`` and a
pandas ``DataFrame`` are read a batch of rows at a time; any other iterable of mappings (a Hugging
Face ``Dataset`` iterates as one) is read as it comes. ``dedup()`` and ``Index.add`` read
them all the same way, so a table and the same records in a JSON Lines file give the same clusters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from neardup.document import Document
from neardup.errors import InputError

#: Rows converted to Python records at a time from a table or a frame.
ROWS_AT_ONCE = 2000


def documents_of(data: Any, *, id_column: str = "id", text_column: str = "text",
                 where: str = "dedup") -> Iterator[Document]:
    """The documents of ``data`` (see the module docstring), in order."""
    return (document_of(record, id_column, text_column, where) for record in records_of(data, where))


def records_of(data: Any, where: str = "dedup") -> Iterable[Any]:
    """``data`` as an iterable of Documents or mappings: tables and frames a batch at a time."""
    kind = type(data).__module__.split(".")[0]
    if kind == "pyarrow" and hasattr(data, "to_pylist"):
        return _arrow_rows(data)
    if kind == "pandas" and hasattr(data, "to_dict") and hasattr(data, "iloc"):
        return _pandas_rows(data)
    if isinstance(data, (str, bytes, Document, Mapping)) or not isinstance(data, Iterable):
        raise InputError(f"{where} takes an iterable of documents (Documents or mappings), a pyarrow Table or a "
                         f"pandas DataFrame, got {type(data).__name__}")
    return data


def document_of(value: object, id_column: str = "id", text_column: str = "text", where: str = "dedup") -> Document:
    """A Document, or a mapping with ``id_column`` and ``text_column`` (other keys: metadata);
    ``where`` names the caller in errors."""
    if isinstance(value, Document):
        return value
    if not isinstance(value, Mapping):
        raise InputError(f"{where} takes Documents or mappings with {id_column!r} and {text_column!r}, "
                         f"got {type(value).__name__}")
    if id_column not in value or text_column not in value:
        raise InputError(f"a document given as a mapping needs {id_column!r} and {text_column!r}; "
                         f"this one has {', '.join(map(repr, value)) or 'no keys'}")
    id, text = value[id_column], value[text_column]
    if hasattr(id, "item") and not isinstance(id, (str, bytes)):  # a numpy scalar from a frame
        id = id.item()
    if isinstance(id, bool) or not isinstance(id, (str, int)) or str(id) == "":
        raise InputError(f"document id must be a non-empty string or integer, got {id!r}")
    metadata = {k: v for k, v in value.items() if k not in (id_column, text_column)}
    if isinstance(text, str):
        return Document.from_text(str(id), text, metadata)
    if isinstance(text, (list, tuple)):
        return Document.from_paragraphs(str(id), list(text), metadata)
    raise InputError(f"document {id!r}: {text_column} must be a string or a list of paragraphs")


def _arrow_rows(data: Any) -> Iterator[dict[str, Any]]:
    batches = data.to_batches(max_chunksize=ROWS_AT_ONCE) if hasattr(data, "to_batches") else [data]
    for batch in batches:
        yield from batch.to_pylist()


def _pandas_rows(frame: Any) -> Iterator[dict[str, Any]]:
    for start in range(0, len(frame), ROWS_AT_ONCE):
        yield from frame.iloc[start:start + ROWS_AT_ONCE].to_dict("records")
