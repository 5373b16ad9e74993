"""Writing kept records as they came (RecordSpill), CLUSTERS rows (write_rows), and the output checks."""

from __future__ import annotations

import csv
import datetime
import decimal
import gzip
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neardup.errors import InputError
from neardup.io.kept import RecordSpill, write_rows
from neardup.io.reader import Reader
from neardup.io.writers import check_output, check_outputs, open_output, output_format

pa = pytest.importorskip("pyarrow")
parquet = pytest.importorskip("pyarrow.parquet")


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _spill(tmp_path: Path, sources, **options) -> tuple[RecordSpill, list]:
    """Read the sources with a spill in a fresh folder; (spill, documents)."""
    folder = tmp_path / f"spill-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    spill = RecordSpill(folder)
    documents = list(Reader(spill=spill, **options).documents(sources))
    assert len(spill) == len(documents)
    return spill, documents


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


WIRE = [b'{"id": 1, "text": "First story about the port strike.", "score": 0.25, "tags": ["a", 2]}',
        b'{"text":"Second, compact","id":2,"nested":{"b":[1,{"c":null}],"a":true}}',
        b'{"id": "three", "text": "Third \\u00e9 escaped \\ud83d\\ude00", "big": 123456789012345678901234567890}',
        b'{"id": 4, "text": "Fourth.", "n": 1e400, "z": -0.0}']


# --------------------------------------------------------------------------- JSON Lines


def test_jsonl_kept_records_are_the_same_bytes(tmp_path):
    """JSON Lines to JSON Lines: each kept record is the bytes of its line (integer ids stay integers)."""
    source = _write(tmp_path / "in.jsonl", b"\n".join(WIRE) + b"\n")
    spill, _ = _spill(tmp_path, [source])
    out = tmp_path / "kept.jsonl"
    assert spill.write(str(out), np.array([True, False, True, True])) == 3
    assert _lines(out) == [WIRE[0], WIRE[2], WIRE[3]]
    assert json.loads(_lines(out)[0])["id"] == 1


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)
_records = st.lists(st.builds(lambda n, words, extra, order: dict(sorted(
    {"id": n, "text": " ".join(words), **{f"f{k}": v for k, v in extra.items()}}.items(),
    key=lambda kv: order * hash(kv[0]))),
    st.integers(0, 10**9) | st.text(min_size=1, max_size=6).filter(lambda s: s.strip() and "\x00" not in s),
    st.lists(st.sampled_from(["port", "strike", "été", "北京", "talks"]), min_size=1, max_size=6),
    st.dictionaries(st.text(max_size=3), _json_values, max_size=3), st.sampled_from([1, -1])),
    min_size=1, max_size=12, unique_by=lambda r: str(r["id"]))


@given(_records, st.data(), st.sampled_from([{}, {"separators": (",", ":")}, {"ensure_ascii": False}]))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_property_jsonl_spill_round_trip(tmp_path, records, data, dump_options):
    """For any records and any keep mask, KEPT holds exactly the kept input lines, byte for byte, in order."""
    lines = [json.dumps(r, **dump_options).encode() for r in records]
    keep = data.draw(st.lists(st.booleans(), min_size=len(lines), max_size=len(lines)))
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    with RecordSpill(folder) as spill:
        reader = Reader(spill=spill, stdin=io.BytesIO(b"\n".join(lines) + b"\n"))
        assert len(list(reader.documents(["-"]))) == len(lines)
        out = folder / "kept.jsonl"
        assert spill.write(str(out), np.array(keep, dtype=bool)) == sum(keep)
        assert _lines(out) == [line for line, k in zip(lines, keep) if k]
        assert [json.loads(line) for line in _lines(out)] == [r for r, k in zip(records, keep) if k]
    assert list(folder.iterdir()) == [out]  # the spill's own files are gone


def test_stdin_records_reach_kept(tmp_path):
    """The reported bug: `cat corpus.jsonl | dedup - --out kept.jsonl` wrote an empty KEPT (stdin read twice)."""
    spill, _ = _spill(tmp_path, ["-"], stdin=io.BytesIO(b"\r\n".join(WIRE)))
    out = tmp_path / "kept.jsonl"
    spill.write(str(out))
    assert _lines(out) == WIRE


def test_json_array_and_text_files_are_written_as_json_lines(tmp_path):
    """Records of a .json array keep types and order; a .txt file becomes {id, text} with the reader's fields."""
    array = _write(tmp_path / "a.json", json.dumps([{"id": 5, "text": "From\nan array.", "x": [1]}], indent=2).encode())
    text = _write(tmp_path / "story.txt", "Ein Text über den Hafen.\n".encode())
    spill, _ = _spill(tmp_path, [array, text])
    out = tmp_path / "kept.jsonl"
    spill.write(str(out))
    assert [json.loads(line) for line in _lines(out)] == [{"id": 5, "text": "From\nan array.", "x": [1]},
                                                        {"id": text, "text": "Ein Text über den Hafen.\n"}]


def test_keep_as_a_function_and_wrong_length(tmp_path):
    """keep may be a function of the record number; an array of the wrong length is refused."""
    source = _write(tmp_path / "in.jsonl", b"\n".join(WIRE))
    spill, _ = _spill(tmp_path, [source])
    out = tmp_path / "even.jsonl"
    assert spill.write(str(out), lambda k: k % 2 == 0) == 2 and _lines(out) == [WIRE[0], WIRE[2]]
    with pytest.raises(ValueError, match="3 entries for 4 records"):
        spill.write(str(out), np.ones(3, dtype=bool))


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst", ".jsonl.bz2", ".ndjson.xz"])
def test_compressed_json_lines_output(tmp_path, suffix):
    """KEPT named .jsonl.gz/.zst/.bz2/.xz is compressed accordingly and reads back as the same records."""
    if suffix.endswith(".zst"):
        pytest.importorskip("zstandard")
    source = _write(tmp_path / "in.jsonl", b"\n".join(WIRE))
    spill, _ = _spill(tmp_path, [source])
    out = tmp_path / f"kept{suffix}"
    spill.write(str(out))
    again, _ = _spill(tmp_path, [str(out)])
    plain = tmp_path / "again.jsonl"
    again.write(str(plain))
    assert _lines(plain) == WIRE


def test_json_array_output(tmp_path):
    """KEPT named .json is one JSON array of the records."""
    source = _write(tmp_path / "in.jsonl", b"\n".join(WIRE[:2]))
    spill, _ = _spill(tmp_path, [source])
    out = tmp_path / "kept.json"
    spill.write(str(out))
    assert json.loads(out.read_text()) == [json.loads(WIRE[0]), json.loads(WIRE[1])]
    spill.write(str(out), np.zeros(2, dtype=bool))
    assert json.loads(out.read_text()) == []


# --------------------------------------------------------------------------- CSV


CSV_IN = (b'text;id;source\r\n"Line one\r\nline two, quoted";c1;wire\r\nPlain text;c2;\r\n'
          b'"He said ""yes""";c3;x\r\n')


def test_csv_kept_rows_are_the_same_bytes_under_the_same_header(tmp_path):
    """CSV to CSV: the header and each kept row as they came (column order, quoting, CRLF)."""
    source = _write(tmp_path / "in.csv", CSV_IN.replace(b";", b","))
    spill, documents = _spill(tmp_path, [source])
    assert [d.id for d in documents] == ["c1", "c2", "c3"]
    out = tmp_path / "kept.csv"
    spill.write(str(out), np.array([True, False, True]))
    lines = CSV_IN.replace(b";", b",").split(b"\r\n")
    assert out.read_bytes() == b"\r\n".join([lines[0], lines[1], lines[2], lines[4]]) + b"\r\n"


def test_tsv_stays_tsv_and_csv_of_other_delimiter_is_rewritten(tmp_path):
    """A TSV written as .tsv keeps its bytes; written as .csv its fields are rewritten with commas."""
    source = _write(tmp_path / "in.tsv", CSV_IN.replace(b";", b"\t"))
    spill, _ = _spill(tmp_path, [source])
    same, other = tmp_path / "kept.tsv", tmp_path / "kept.csv"
    spill.write(str(same))
    spill.write(str(other))
    assert same.read_bytes() == CSV_IN.replace(b";", b"\t")
    rows = list(csv.reader(io.StringIO(other.read_bytes().decode(), newline="")))
    assert rows[0] == ["text", "id", "source"] and rows[1] == ["Line one\r\nline two, quoted", "c1", "wire"]


def test_csv_to_json_lines_has_string_values_in_column_order(tmp_path):
    """CSV to JSON Lines: every column, in the CSV's order, with string values (empty stays empty)."""
    source = _write(tmp_path / "in.csv", b"text,id,year\nSome text.,7,2021\nMore text.,8,\n")
    spill, _ = _spill(tmp_path, [source])
    out = tmp_path / "kept.jsonl"
    spill.write(str(out))
    records = [json.loads(line) for line in _lines(out)]
    assert records == [{"text": "Some text.", "id": "7", "year": "2021"}, {"text": "More text.", "id": "8", "year": ""}]
    assert [list(r) for r in records] == [["text", "id", "year"]] * 2


@given(st.lists(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                 max_size=10), min_size=3, max_size=3), min_size=1, max_size=10),
       st.sampled_from([",", "\t"]), st.sampled_from(["\n", "\r\n"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_property_csv_round_trip(tmp_path, rows, delimiter, ending):
    """For any CSV the csv module writes with every line break inside a field quoted, the accepted
    rows come back byte for byte under the same header. (A bare carriage return in an unquoted
    field is a line break for the reader, as for spreadsheet programs: csv.writer leaves it
    unquoted when the line terminator is "\n", so such fields are quoted here.)"""
    buffer = io.StringIO()
    quoting = csv.QUOTE_ALL if any("\r" in field for row in rows for field in row) else csv.QUOTE_MINIMAL
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=ending, quoting=quoting)
    writer.writerow(["id", "text", "note"])
    for i, row in enumerate(rows):
        writer.writerow([f"r{i}", *row[1:]])
    suffix = ".tsv" if delimiter == "\t" else ".csv"
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    source = _write(folder / f"in{suffix}", buffer.getvalue().encode())
    with RecordSpill(folder) as spill:
        documents = list(Reader(spill=spill).documents([source]))
        out = folder / f"kept{suffix}"
        spill.write(str(out))
        accepted = {d.id for d in documents}
        if not accepted:  # the spill learns a CSV's header from its first accepted row
            assert out.read_bytes() == b""
            return
        back = list(csv.reader(io.StringIO(out.read_bytes().decode(), newline=""), delimiter=delimiter))
        original = list(csv.reader(io.StringIO(buffer.getvalue(), newline=""), delimiter=delimiter))
        assert back == [original[0]] + [row for row in original[1:] if row[0] in accepted]
        if len(accepted) == len(rows):
            assert out.read_bytes() == buffer.getvalue().encode()


# --------------------------------------------------------------------------- Parquet and Arrow


def _typed_table():
    return pa.table({
        "id": pa.array([10, 11, 12], pa.int32()),
        "text": ["Parquet one.", "Parquet two.", "Parquet three."],
        "when": pa.array([datetime.datetime(2026, 3, 14, 9, 30)] * 3, pa.timestamp("ms")),
        "price": pa.array([decimal.Decimal("1.25")] * 3, pa.decimal128(5, 2)),
        "tags": pa.array([["a"], [], ["b", "c"]], pa.list_(pa.string())),
        "meta": pa.array([{"k": 1}, {"k": None}, None], pa.struct([("k", pa.int64())])),
    }).replace_schema_metadata({b"origin": b"test"})


def test_parquet_kept_rows_keep_the_schema(tmp_path):
    """Parquet to Parquet: the same schema (types and metadata), the kept rows in order."""
    source = tmp_path / "in.parquet"
    parquet.write_table(_typed_table(), source, row_group_size=2)
    spill, _ = _spill(tmp_path, [str(source)])
    out = tmp_path / "kept.parquet"
    assert spill.write(str(out), np.array([True, False, True])) == 2
    table = parquet.read_table(out)
    assert table.schema.equals(parquet.read_table(source).schema, check_metadata=True)
    assert table.column("id").to_pylist() == [10, 12] and table.column("tags").to_pylist() == [["a"], ["b", "c"]]


def test_parquet_to_json_lines_has_json_values(tmp_path):
    """Parquet to JSON Lines: timestamps in ISO 8601, decimals as strings, lists and structs as JSON."""
    source = tmp_path / "in.parquet"
    parquet.write_table(_typed_table(), source)
    spill, _ = _spill(tmp_path, [str(source)])
    out = tmp_path / "kept.jsonl"
    spill.write(str(out), np.array([True, False, False]))
    assert [json.loads(line) for line in _lines(out)] == [{
        "id": 10, "text": "Parquet one.", "when": "2026-03-14T09:30:00", "price": "1.25", "tags": ["a"],
        "meta": {"k": 1}}]


def test_arrow_and_hugging_face_to_arrow_and_parquet(tmp_path):
    """Arrow IPC rows and a datasets folder's rows are written with their schema to .arrow and .parquet."""
    table = _typed_table()
    folder = tmp_path / "ds"
    folder.mkdir()
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink:
        writer = pa.ipc.new_stream(sink, table.schema)
        writer.write_table(table)
        writer.close()
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (folder / "dataset_info.json").write_text("{}")
    spill, _ = _spill(tmp_path, [str(folder)])
    for name in ("kept.arrow", "kept.parquet"):
        out = tmp_path / name
        spill.write(str(out), np.array([False, True, True]))
        back = pa.ipc.open_file(str(out)).read_all() if name.endswith(".arrow") else parquet.read_table(out)
        assert back.schema.equals(table.schema) and back.column("id").to_pylist() == [11, 12]


def test_json_lines_to_parquet_infers_and_unifies_types(tmp_path):
    """JSON to Parquet: ids stay integers, int and float make float, nulls join, clashing types become text."""
    lines = [{"id": 1, "text": "One.", "score": 1, "when": None, "mixed": 5, "nested": {"a": 1}},
             {"id": 2, "text": "Two.", "score": 2.5, "when": "2026-01-01", "mixed": "five", "nested": {"b": "x"}}]
    source = _write(tmp_path / "in.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in lines))
    spill, _ = _spill(tmp_path, [source])
    out = tmp_path / "kept.parquet"
    spill.write(str(out))
    table = parquet.read_table(out)
    types = {f.name: str(f.type) for f in table.schema}
    assert types["id"] == "int64" and types["score"] == "double" and types["when"] == "string"
    assert types["mixed"] == "string" and table.column("mixed").to_pylist() == ["5", "five"]
    assert table.column("nested").to_pylist() == [{"a": 1, "b": None}, {"a": None, "b": "x"}]


def test_mixed_inputs_keep_input_order(tmp_path):
    """JSON Lines, CSV and Parquet inputs in turn: KEPT has their records in input order."""
    first = _write(tmp_path / "a.jsonl", b'{"id": 1, "text": "From JSON."}\n')
    second = _write(tmp_path / "b.csv", b"id,text\nc,From CSV.\n")
    third = tmp_path / "c.parquet"
    parquet.write_table(pa.table({"id": ["p"], "text": ["From Parquet."]}), third)
    fourth = _write(tmp_path / "d.jsonl", b'{"id": 2, "text": "JSON again."}\n')
    spill, _ = _spill(tmp_path, [first, second, str(third), fourth])
    out = tmp_path / "kept.jsonl"
    spill.write(str(out))
    assert [json.loads(line) for line in _lines(out)] == [
        {"id": 1, "text": "From JSON."}, {"id": "c", "text": "From CSV."}, {"id": "p", "text": "From Parquet."},
        {"id": 2, "text": "JSON again."}]


# --------------------------------------------------------------------------- edits


def test_replace_text_keeps_field_order_and_types(tmp_path):
    """A replaced text re-serialises only that record, keeping its fields' order and types."""
    source = _write(tmp_path / "in.jsonl", b"\n".join(WIRE[:2]))
    csv_source = _write(tmp_path / "in.csv", b"text,id\nOld text.,c1\n")
    spill, _ = _spill(tmp_path, [source, csv_source])
    out = tmp_path / "kept.jsonl"
    spill.write(str(out), replace_text={1: "New text.", 2: ["A", "B"]})
    records = [json.loads(line) for line in _lines(out)]
    assert _lines(out)[0] == WIRE[0]
    assert list(records[1]) == ["text", "id", "nested"] and records[1]["text"] == "New text." and records[1]["id"] == 2
    assert records[2] == {"text": "A\nB", "id": "c1"}
    csv_out = tmp_path / "kept.csv"
    spill.write(str(csv_out), np.array([False, False, True]), replace_text={2: "Quoted, now."})
    assert csv_out.read_bytes() == b'text,id\n"Quoted, now.",c1\n'


def test_drop_paragraphs_cuts_them_and_keeps_the_rest_as_it_was(tmp_path):
    """drop_paragraphs removes paragraphs by the reader's numbering; spacing of the rest is unchanged."""
    text = "Headline\n\nFirst paragraph here.\nRepeated paragraph.\n\nLast one.\n"
    records = [{"id": "s", "text": text}, {"id": "l", "text": ["One.", "  ", "Two.", "Three."]}]
    source = _write(tmp_path / "in.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in records))
    spill, documents = _spill(tmp_path, [source])
    assert documents[0].paragraph_text(2) == "Repeated paragraph."
    out = tmp_path / "kept.jsonl"
    spill.write(str(out), drop_paragraphs={0: [2], 1: [1]})
    assert [json.loads(line)["text"] for line in _lines(out)] == [
        "Headline\n\nFirst paragraph here.\n\nLast one.\n", ["One.", "  ", "Three."]]
    spill.write(str(out), drop_paragraphs={0: [3]})
    assert json.loads(_lines(out)[0])["text"] == "Headline\n\nFirst paragraph here.\nRepeated paragraph.\n"
    spill.write(str(out), drop_paragraphs={0: [1]})
    assert json.loads(_lines(out)[0])["text"] == "Headline\n\nRepeated paragraph.\n\nLast one.\n"


def test_replace_text_in_parquet_rows(tmp_path):
    """A replaced text in an Arrow row keeps the column's type and the other rows untouched."""
    source = tmp_path / "in.parquet"
    parquet.write_table(_typed_table(), source)
    spill, _ = _spill(tmp_path, [str(source)])
    out = tmp_path / "kept.parquet"
    spill.write(str(out), np.array([True, True, False]), replace_text={1: "Changed."})
    assert parquet.read_table(out).column("text").to_pylist() == ["Parquet one.", "Changed."]


# --------------------------------------------------------------------------- refusals and atomic writes


def test_output_that_is_an_input_is_refused_before_writing(tmp_path):
    """The reported bug: `dedup IN --out K --clusters IN` emptied IN. Same path, symlink or hard link: refused."""
    source = _write(tmp_path / "in.jsonl", b"\n".join(WIRE))
    (tmp_path / "link.jsonl").symlink_to(source)
    os.link(source, tmp_path / "hard.jsonl")
    spill, _ = _spill(tmp_path, [source])
    for output in (source, str(tmp_path / "link.jsonl"), str(tmp_path / "hard.jsonl"),
                   str(tmp_path / "." / "in.jsonl")):
        with pytest.raises(InputError, match="is also an input"):
            spill.write(output, inputs=[source])
        with pytest.raises(InputError, match="is also an input"):
            write_rows(output, [{"id": "x"}], inputs=[source])
    assert _lines(Path(source)) == WIRE


def test_output_inside_an_input_folder_folder_or_missing_folder(tmp_path):
    """An output inside an input folder, a folder as output, or a missing folder: one-line InputErrors."""
    corpus = tmp_path / "corpus"
    _write(corpus / "a.jsonl", WIRE[0])
    with pytest.raises(InputError, match="inside the input folder"):
        check_output(str(corpus / "kept.jsonl"), [str(corpus)])
    with pytest.raises(InputError, match="is a folder"):
        check_output(str(corpus), [])
    with pytest.raises(InputError, match="cannot write"):
        check_output(str(tmp_path / "nowhere" / "kept.jsonl"), [])
    check_output(str(tmp_path / "kept.jsonl"), [str(corpus), "-"])


def test_check_outputs_refuses_the_same_file_twice(tmp_path):
    """--out X --clusters X (or via ./X) is refused."""
    with pytest.raises(InputError, match="given twice"):
        check_outputs([str(tmp_path / "x.jsonl"), str(tmp_path / "." / "x.jsonl")], [])
    check_outputs([str(tmp_path / "kept.jsonl"), str(tmp_path / "clusters.jsonl")], [])


def test_failed_write_leaves_nothing(tmp_path):
    """If writing fails half way, neither the output nor a temporary file is left (and an old output survives)."""
    out = tmp_path / "clusters.jsonl"
    out.write_text("old\n")

    def rows():
        yield {"id": "a"}
        raise RuntimeError("boom")

    for name in ("clusters.jsonl", "clusters.parquet"):
        with pytest.raises(RuntimeError):
            write_rows(str(tmp_path / name), rows())
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["clusters.jsonl"]


def test_open_output_text_and_compressed(tmp_path):
    """open_output gives a text handle, gzip-compressed for .gz, renamed into place at the end."""
    with open_output(str(tmp_path / "o.txt.gz")) as handle:
        handle.write("héllo\n")
    assert gzip.decompress((tmp_path / "o.txt.gz").read_bytes()) == "héllo\n".encode()


def test_output_formats_by_extension():
    """The extension names the format; unknown names are JSON Lines; compressed Parquet is refused."""
    assert output_format("k.jsonl.gz") == ("jsonl", "gzip") and output_format("k.out") == ("jsonl", None)
    assert output_format("K.CSV.ZST") == ("csv", "zstd") and output_format("c.parquet") == ("parquet", None)
    assert output_format("-") == ("jsonl", None) and output_format("x.feather") == ("arrow", None)
    with pytest.raises(InputError, match=r"drop the \.gz"):
        output_format("c.parquet.gz")


# --------------------------------------------------------------------------- CLUSTERS rows


CLUSTERS = [{"id": "a", "cluster": "a", "representative": True, "kind": "exact"},
            {"id": "b", "cluster": "a", "representative": False, "kind": "near-duplicate", "jaccard": 0.91,
             "containment": {"doc_in_representative": 0.9, "representative_in_doc": 0.95},
             "dropped_paragraphs": [2, 3]}]


def test_clusters_as_parquet_is_parquet(tmp_path):
    """The reported bug: --clusters c.parquet wrote JSON Lines. Now Parquet, with nested and optional fields."""
    out = tmp_path / "c.parquet"
    assert write_rows(str(out), iter(CLUSTERS)) == 2
    assert out.read_bytes()[:4] == b"PAR1"
    table = parquet.read_table(out)
    assert table.column("containment").to_pylist()[1] == CLUSTERS[1]["containment"]
    assert table.column("jaccard").to_pylist() == [None, 0.91]
    assert [p.name for p in tmp_path.iterdir()] == ["c.parquet"]  # the spool folder is gone


@pytest.mark.parametrize("name", ["c.jsonl", "c.jsonl.gz", "c.csv"])
def test_clusters_as_json_lines_or_csv(tmp_path, name):
    """CLUSTERS rows as JSON Lines (plain, gzip) are the rows; as CSV nested values are JSON text."""
    out = tmp_path / name
    write_rows(str(out), CLUSTERS)
    data = out.read_bytes()
    data = gzip.decompress(data) if name.endswith(".gz") else data
    if name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert rows[1]["dropped_paragraphs"] == "[2, 3]" and rows[0]["jaccard"] == ""
    else:
        assert [json.loads(line) for line in data.splitlines()] == CLUSTERS


# --------------------------------------------------------------------------- the spill itself


def test_spill_lives_in_its_folder_and_close_removes_it(tmp_path):
    """The spill writes only inside the folder it is given, and closing it removes its files."""
    source = _write(tmp_path / "in.jsonl", b"\n".join(WIRE))
    folder = tmp_path / "spill"
    folder.mkdir()
    with RecordSpill(folder) as spill:
        list(Reader(spill=spill).documents([source]))
        assert len(list(folder.iterdir())) == 1
    assert list(folder.iterdir()) == []
    with pytest.raises(InputError, match="no such folder"):
        RecordSpill(tmp_path / "missing")


def test_spill_holds_records_on_disk_not_in_memory(tmp_path):
    """Spilling 40 MB of records keeps the Python heap small: the records are on disk."""
    import tracemalloc

    record = {"id": 0, "text": "word " * 400}
    source = tmp_path / "big.jsonl"
    with open(source, "wb") as handle:
        for i in range(20_000):
            record["id"] = i
            handle.write(json.dumps(record).encode() + b"\n")
    folder = tmp_path / "spill"
    folder.mkdir()
    with RecordSpill(folder) as spill:
        tracemalloc.start()
        try:
            for _ in Reader(spill=spill).documents([str(source)]):
                pass
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(spill) == 20_000 and peak < 10 << 20
        out = tmp_path / "kept.jsonl"
        assert spill.write(str(out), lambda k: k % 1000 == 0) == 20


@given(st.lists(st.sampled_from(["good", "dup", "bad", "many", "blank"]), min_size=1, max_size=20))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_property_spill_record_k_is_document_k(tmp_path, kinds):
    """Whatever is skipped, and where (bad JSON, duplicate ids, too many paragraphs), record k is document k."""
    lines = []
    for i, kind in enumerate(kinds):
        lines.append({"good": json.dumps({"id": i, "text": f"Text {i}."}),
                      "dup": json.dumps({"id": 0, "text": "Same id as the first."}),
                      "bad": "{not json",
                      "many": json.dumps({"id": f"m{i}", "text": ["p"] * 5}),
                      "blank": "  "}[kind])
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    with RecordSpill(folder) as spill:
        reader = Reader(spill=spill, unique_ids=True, max_paragraphs=3,
                        stdin=io.BytesIO(b'{"id": "head", "text": "Head."}\n' + "\n".join(lines).encode()))
        ids = [d.id for d in reader.documents(["-"])]
        out = folder / "kept.jsonl"
        spill.write(str(out))
        assert [str(json.loads(line)["id"]) for line in _lines(out)] == ids
