"""Deduplicate a table and get a table back: a pyarrow Table or a pandas DataFrame in, its kept rows
(every column, in its type) and the CLUSTERS rows out, of the same kind.

    import neardup.tables
    kept, clusters = neardup.tables.dedup_table(frame, text_column="body", keep="cleanest")

What a data engineer filtering a training set with pandas or Arrow expects; the clusters are the
rows of the CLUSTERS output (``neardup dedup --clusters``). A row whose id repeats an earlier one
is not kept (it is skipped and counted, as everywhere); its earlier row is judged as usual.
"""

from __future__ import annotations

from typing import Any

from neardup.errors import InputError
from neardup.pipeline.dedup import dedup
from neardup.pipeline.result import DedupResult


def dedup_table(table: Any, *, id_column: str = "id", text_column: str = "text",
                **options: Any) -> tuple[Any, Any]:
    """``(kept rows, clusters)`` of a pyarrow Table or a pandas DataFrame, each of the input's kind;
    ``options`` are :func:`neardup.dedup`'s (``keep``, ``config``, ``date_field``, ...)."""
    kind = type(table).__module__.split(".")[0]
    if kind not in ("pyarrow", "pandas") or not hasattr(table, "column" if kind == "pyarrow" else "iloc"):
        raise InputError(f"dedup_table takes a pyarrow Table or a pandas DataFrame, got {type(table).__name__}")
    names = list(table.column_names if kind == "pyarrow" else table.columns)
    if id_column not in names:
        raise InputError(f"dedup_table: no column {id_column!r} (columns: {', '.join(map(str, names))})")
    result = dedup(table, id_column=id_column, text_column=text_column, **options)
    ids = table.column(id_column).to_pylist() if kind == "pyarrow" else table[id_column].tolist()
    keep = _kept_rows(ids, result)
    rows = [assignment.to_dict() for assignment in result]
    if kind == "pyarrow":
        import pyarrow as pa

        return table.filter(pa.array(keep, pa.bool_())), pa.Table.from_pylist(rows)
    import pandas as pd

    return table[keep], pd.DataFrame.from_records(rows)


def _kept_rows(ids: list[Any], result: DedupResult) -> list[bool]:
    """Per input row, whether it is kept: a representative, and the first row with its id."""
    kept = {assignment.id for assignment in result if assignment.representative}
    seen: set[str] = set()
    out = []
    for value in ids:
        key = str(value.item() if hasattr(value, "item") else value)
        out.append(key in kept and key not in seen)
        seen.add(key)
    return out
