"""Records written as they came: :class:`RecordSpill` keeps the original record of every document a
:class:`~neardup.io.reader.Reader` yields (on disk: the bytes of a JSON line, a CSV row's text under
its header, Arrow rows with their schema), and writes the kept ones in the format the output's name
says; :func:`write_rows` writes plain rows (CLUSTERS) the same way."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from neardup.errors import InputError
from neardup.io.formats import CsvLayout, json_bytes
from neardup.io.kept_formats import Edits, Keep, Kept, Selection, write_columnar, write_csv, write_json
from neardup.io.record_files import ArrowRows, Frames, Segment
from neardup.io.writers import check_output, open_binary_output, output_format


class RecordSpill:
    """The original record of every document a :class:`~neardup.io.reader.Reader` yields, on disk.

    Record k is the k-th document the reader yielded. JSON records are kept as the bytes
    of their line, CSV rows as their raw text with the file's header and dialect, Parquet,
    Arrow and ``datasets`` rows as Arrow batches (an IPC stream per schema), plain-text
    files as ``{id, text}``. Memory holds only the run lengths (one pair per change of
    format), so the spill costs disk, not RAM. :meth:`write` then writes the kept records
    in input order, as they came. The files live in ``folder``, which the caller owns;
    :meth:`close` (or leaving a ``with`` block) removes them.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{folder}: no such folder for the record spill")
        self.id_field, self.text_field = "id", "text"
        self._segments: list[Segment] = []
        self._runs: list[list[int]] = []  # [segment index, records] in input order
        self._count = 0
        self._json: Frames | None = None
        self._arrow_batch: Any = None

    def bind(self, id_field: str, text_field: str) -> None:
        """The fields the reader uses (the text field is the one replace_text and drop_paragraphs change)."""
        self.id_field, self.text_field = id_field, text_field

    def __len__(self) -> int:
        return self._count

    def __enter__(self) -> RecordSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_json(self, raw: bytes) -> None:
        """One JSON record, as the bytes of its line (no line break inside)."""
        segment = self._place(lambda s: isinstance(s, Frames) and s.layout is None,
                              lambda: Frames(self.folder, None))
        cast(Frames, segment).add(raw)

    def add_csv(self, layout: CsvLayout, raw: bytes) -> None:
        """One CSV row, as its raw text (line ending included) in the file's layout."""
        segment = self._place(lambda s: isinstance(s, Frames) and s.layout == layout,
                              lambda: Frames(self.folder, layout))
        cast(Frames, segment).add(raw)

    def add_arrow(self, batch: Any, row: int) -> None:
        """Row ``row`` of an Arrow record batch."""
        if batch is self._arrow_batch:  # the next row of the batch just seen
            self._runs[-1][1] += 1
            self._count += 1
            segment = self._segments[self._runs[-1][0]]
        else:
            schema = batch.schema
            segment = self._place(lambda s: isinstance(s, ArrowRows) and s.schema.equals(schema, check_metadata=True),
                                  lambda: ArrowRows(self.folder, schema))
            self._arrow_batch = batch
        cast(ArrowRows, segment).add(batch, row)

    def _place(self, match: Callable[[Segment], bool], create: Callable[[], Segment]) -> Segment:
        """The segment for the next record (extending the current run when it matches)."""
        self._count += 1
        self._arrow_batch = None
        if self._runs and match(self._segments[self._runs[-1][0]]):
            self._runs[-1][1] += 1
            return self._segments[self._runs[-1][0]]
        index = next((i for i, s in enumerate(self._segments) if match(s)), None)
        if index is None:
            self._segments.append(create())
            index = len(self._segments) - 1
        self._runs.append([index, 1])
        return self._segments[index]

    def flush(self) -> None:
        for segment in self._segments:
            segment.flush()

    def close(self) -> None:
        """Remove the spill's files."""
        for segment in self._segments:
            segment.close()
        self._segments, self._runs, self._count = [], [], 0

    def write(self, path: str, keep: Keep = None, *, replace_text: Mapping[int, str | Sequence[str]] | None = None,
              drop_paragraphs: Mapping[int, Collection[int]] | None = None, inputs: Iterable[str] = ()) -> int:
        """Write the records whose ``keep[k]`` is true (all if None) to ``path``, in input order; returns how many.

        The format follows the extension. Records keep their form where the format allows:
        JSON lines their bytes (so types and field order), CSV rows their text under the
        same header, Arrow rows their schema. Across formats: JSON to Parquet by Arrow's
        type inference (a field whose types cannot be unified is written as text: strings
        as they are, other values as JSON),
        Arrow to JSON with JSON values (dates in ISO 8601), CSV to JSON with string values.
        ``replace_text`` gives new texts for some records; ``drop_paragraphs`` paragraph
        numbers to cut from their texts (``dedup --drop-repeats``), the rest unchanged.
        """
        family, _ = output_format(path)
        check_output(path, inputs)
        self.flush()
        kept = Kept(self._segments, self._pieces, Selection(keep, self._count),
                    Edits(self.text_field, replace_text or {}, drop_paragraphs or {}))
        if family in ("jsonl", "json"):
            return write_json(path, kept, array=family == "json")
        if family in ("csv", "tsv"):
            return write_csv(path, kept, "\t" if family == "tsv" else ",")
        return write_columnar(path, kept, family)

    def _pieces(self) -> Iterator[tuple[Segment, int, Any]]:
        """(segment, k, bytes or Arrow batch) in input order, k being the number of the first record."""
        cursors = [segment.cursor() for segment in self._segments]
        try:
            k = 0
            for index, count in self._runs:
                for item in cursors[index].take(count):
                    yield self._segments[index], k, item
                    k += 1 if isinstance(item, bytes) else item.num_rows
        finally:
            for cursor in cursors:
                cursor.close()


def write_rows(path: str, rows: Iterable[Mapping[str, Any]], *, inputs: Iterable[str] = ()) -> int:
    """Write plain rows (CLUSTERS) in the format of the path's extension; returns how many.

    JSON Lines are written as the rows come; for the other formats the rows are first
    spooled to a temporary folder beside the output (removed after), since their schema
    or columns are known only once every row has been seen.
    """
    family, _ = output_format(path)
    check_output(path, inputs)
    if family == "jsonl":
        count = 0
        with open_binary_output(path) as handle:
            for row in rows:
                handle.write(json_bytes(row) + b"\n")
                count += 1
        return count
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".neardup-rows-") as spool, RecordSpill(spool) as spill:
        for row in rows:
            spill.add_json(json_bytes(row))
        return spill.write(path)
