"""The data types of the Python data world: dicts, Arrow tables and record batches, pandas frames —
the same clusters as the same records in a JSON Lines file; dedup_table keeps columns and types."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from neardup import Document, Index
from neardup.cli.main import main
from neardup.errors import InputError
from neardup.pipeline.dedup import dedup
from neardup.tables import dedup_table

pd = pytest.importorskip("pandas")
WIRE = Path(__file__).resolve().parents[1] / "examples" / "wire.jsonl"


def _records() -> list[dict]:
    rows = [json.loads(line) for line in WIRE.read_text(encoding="utf-8").splitlines()]
    return [{**row, "rank": k, "score": k / 7} for k, row in enumerate(rows)]  # extra typed columns


def _clusters(result) -> list[dict]:
    return [a.to_dict() for a in result]


def test_every_data_type_gives_the_clusters_of_the_json_lines_file(tmp_path):
    records = _records()
    corpus = tmp_path / "wire.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    clusters = tmp_path / "clusters.jsonl"
    assert main(["dedup", str(corpus), "--out", str(tmp_path / "kept.jsonl"), "--clusters", str(clusters),
                 "--keep", "earliest", "-q"]) == 0
    expected = [json.loads(line) for line in clusters.read_text(encoding="utf-8").splitlines()]
    table = pa.Table.from_pylist(records)
    for data in (records, table, table.to_batches(max_chunksize=5)[0], pd.DataFrame.from_records(records),
                 [Document.from_text(r["id"], r["text"], {"date": r["date"]}) for r in records]):
        got = _clusters(dedup(data, keep="earliest"))
        if isinstance(data, pa.RecordBatch):  # the first five rows only
            assert got == _clusters(dedup(records[:5], keep="earliest"))
        else:
            assert got == expected, type(data).__name__


def test_other_column_names(tmp_path):
    records = [{"doc": r["id"], "body": r["text"], "date": r["date"]} for r in _records()]
    frame = pd.DataFrame.from_records(records)
    renamed = dedup(frame, id_column="doc", text_column="body")
    assert _clusters(renamed) == _clusters(dedup(_records()))
    with pytest.raises(InputError, match="needs 'doc' and 'body'"):
        dedup(_records(), id_column="doc", text_column="body")


def test_dedup_table_keeps_each_rows_columns_and_types():
    records = _records()
    records.append(dict(records[0], text="a second row with an id already taken"))  # skipped: repeated id
    table = pa.Table.from_pylist(records)
    kept, clusters = dedup_table(table, keep="cleanest")
    result = dedup(records, keep="cleanest")
    representatives = [a.id for a in result if a.representative]
    assert kept.schema == table.schema and kept.column("id").to_pylist() == representatives
    assert kept.to_pylist() == [r for r in records[:-1] if r["id"] in set(representatives)]
    assert clusters.to_pylist() == [
        {key: row.get(key) for key in clusters.column_names} for row in _clusters(result)]
    frame = pd.DataFrame.from_records(records)
    kept_frame, clusters_frame = dedup_table(frame, keep="cleanest")
    assert list(kept_frame.dtypes) == list(frame.dtypes) and kept_frame["id"].tolist() == representatives
    assert kept_frame["score"].tolist() == kept.column("score").to_pylist()
    assert clusters_frame["cluster"].tolist() == [a.cluster for a in result]


def test_an_index_takes_a_table_as_it_takes_the_records():
    table = pa.Table.from_pylist(_records())
    from_table, from_records = Index(), Index()
    from_table.add(table)
    from_records.add(_records())
    story = _records()[0]["text"]
    assert [(m.id, m.kind, m.jaccard) for m in from_table.query(story)] == \
        [(m.id, m.kind, m.jaccard) for m in from_records.query(story)]
    assert from_table.get(_records()[3]["id"]).metadata["rank"] == 3


@pytest.mark.parametrize("data", ["a text", 42, {"id": "x", "text": "y"}])
def test_what_is_not_a_collection_of_documents_is_refused(data):
    with pytest.raises(InputError, match="iterable of documents"):
        dedup(data)
    with pytest.raises(InputError, match="pyarrow Table or a pandas DataFrame"):
        dedup_table(data)
