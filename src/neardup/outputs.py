"""Writing results: JSON Lines (plain or gzip) or CSV, to a path or to stdout ('-'), atomically."""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import sys
from typing import IO, Any, Iterable, Iterator, Mapping

from .document import Document
from .errors import InputError


@contextlib.contextmanager
def open_output(path: str) -> Iterator[IO[str]]:
    """A text handle writing to ``path`` via a temporary file renamed into place at the end."""
    if path == "-":
        yield sys.stdout
        return
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        raw = gzip.open(temporary, "wt", encoding="utf-8") if path.endswith(".gz") \
            else open(temporary, "w", encoding="utf-8", newline="")
    except OSError as err:
        raise InputError(f"{path}: cannot write ({err.strerror or err})") from None
    try:
        with raw as handle:
            yield handle
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_records(path: str, documents: Iterable[Document], assignments: Mapping[str, Any], *,
                  id_field: str = "id", text_field: str = "text") -> int:
    """Write kept documents with every field they came with; repeated paragraphs dropped if recorded."""
    count = 0
    with open_output(path) as handle:
        writer = _CsvRecords(handle) if path.removesuffix(".gz").endswith(".csv") else None
        for document in documents:
            record = {id_field: document.id, text_field: _text_without(document, assignments[document.id]),
                      **document.metadata}
            if writer is not None:
                writer.write(record)
            else:
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def _text_without(document: Document, assignment: Any) -> str:
    dropped = set(getattr(assignment, "dropped_paragraphs", ()) or ())
    if not dropped:
        return document.text
    kept = [document.paragraph_text(i) for i in range(len(document.paragraphs)) if i not in dropped]
    return "\n".join(kept)


class _CsvRecords:
    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.writer: csv.DictWriter | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self.writer is None:
            self.writer = csv.DictWriter(self.handle, fieldnames=list(record), extrasaction="ignore")
            self.writer.writeheader()
        self.writer.writerow({k: v if isinstance(v, (str, int, float)) or v is None else json.dumps(v)
                              for k, v in record.items()})



