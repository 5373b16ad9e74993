"""Input formats beyond plain JSON Lines: compression, JSON arrays, Arrow, Hugging Face folders,
recognition from the first bytes, refusal of binary formats, robustness, and bytes of progress."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import lzma
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neardup.errors import InputError, RecordError
from neardup.io.formats import total_input_bytes
from neardup.io.reader import Reader

pa = pytest.importorskip("pyarrow")
parquet = pytest.importorskip("pyarrow.parquet")

RECORDS = [{"id": f"r{i}", "text": f"Record number {i} of the test corpus."} for i in range(3)]


def _jsonl(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _read(sources, **options):
    skips: list[RecordError] = []
    reader = Reader(on_skip=skips.append, **options)
    return list(reader.documents(sources)), skips, reader


def _zstd(data: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor().compress(data)


COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress, ".zst": _zstd}


# --------------------------------------------------------------------------- compression


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
@pytest.mark.parametrize("inner", [".jsonl", ".csv", ".json"])
def test_compressed_inputs_are_read_like_plain_ones(tmp_path, suffix, inner):
    """x.jsonl.zst, x.csv.gz, x.json.xz ... are decompressed and read as their inner format."""
    if inner == ".jsonl":
        data = _jsonl(*RECORDS)
    elif inner == ".json":
        data = json.dumps(RECORDS).encode()
    else:
        data = b"id,text\r\n" + b"".join(f"{r['id']},{r['text']}\r\n".encode() for r in RECORDS)
    path = _write(tmp_path / f"c{inner}{suffix}", COMPRESSORS[suffix](data))
    documents, skips, _ = _read([path])
    assert [(d.id, d.text) for d in documents] == [(r["id"], r["text"]) for r in RECORDS]
    assert skips == []


def test_compressed_without_the_suffix_is_recognised(tmp_path):
    """gzip or zstd data under a name without a known suffix is recognised from its first bytes and read."""
    for name, compress in (("g-export", gzip.compress), ("z-export.data", _zstd)):
        path = _write(tmp_path / name, compress(_jsonl(*RECORDS)))
        assert [d.id for d in _read([path])[0]] == ["r0", "r1", "r2"]


def test_truncated_zstd_is_a_counted_skip_not_silence(tmp_path):
    """A .jsonl.zst cut in the middle yields the records before the cut and one 'cannot read the rest'."""
    records = [{"id": f"d{i}", "text": f"Record {i} " + "word " * (i % 7)} for i in range(20_000)]
    compressed = _zstd(_jsonl(*records))
    path = _write(tmp_path / "cut.jsonl.zst", compressed[: len(compressed) * 2 // 3])
    documents, skips, reader = _read([path])
    assert len(documents) < 20_000
    assert [d.id for d in documents] == [f"d{i}" for i in range(len(documents))]
    assert reader.stats.skipped == {"cannot read the rest": 1} and "cut short" in str(skips[0])


def test_several_zstd_frames_are_all_read(tmp_path):
    """Concatenated zstd frames (as `zstd` and parallel writers make them) are read to the end."""
    path = _write(tmp_path / "frames.jsonl.zst", _zstd(_jsonl(RECORDS[0])) + _zstd(_jsonl(*RECORDS[1:])))
    assert [d.id for d in _read([path])[0]] == ["r0", "r1", "r2"]


def test_zstd_without_zstandard_names_the_extra(tmp_path, monkeypatch):
    """Without the zstandard package a .zst input is an InputError saying: pip install 'neardup[zstd]'."""
    path = _write(tmp_path / "c.jsonl.zst", _zstd(_jsonl(*RECORDS)))
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(InputError, match=r"pip install 'neardup\[zstd\]'"):
        list(Reader().documents([path]))


def test_reuters_jsonl_zst_is_no_longer_a_skipped_text(tmp_path):
    """The reported bug: reuters.jsonl.zst was read as one text document and skipped as invalid UTF-8."""
    path = _write(tmp_path / "reuters.jsonl.zst", _zstd(_jsonl(*RECORDS)))
    documents, skips, _ = _read([path])
    assert len(documents) == 3 and skips == []


# --------------------------------------------------------------------------- JSON


def test_json_array_of_records_like_pandas_writes(tmp_path):
    """A .json array of records (pandas to_json(orient='records'): one line) gives one document per record."""
    records = [{"id": 1, "text": "First one.", "score": 0.5}, {"id": 2, "text": "Second one.", "score": None}]
    path = _write(tmp_path / "p.json", json.dumps(records, separators=(",", ":")).encode())
    documents, skips, _ = _read([path])
    assert [(d.id, d.text, d.metadata) for d in documents] == [("1", "First one.", {"score": 0.5}),
                                                              ("2", "Second one.", {"score": None})]
    assert skips == []


def test_json_array_pretty_printed_with_bad_elements(tmp_path):
    """Elements of an indented array are read; bad ones are skipped with their position in the array."""
    data = json.dumps([RECORDS[0], [1, 2], {"id": "x"}, "a string", RECORDS[1]], indent=2).encode()
    path = _write(tmp_path / "p.json", data)
    documents, skips, reader = _read([path])
    assert [d.id for d in documents] == ["r0", "r1"]
    assert [(s.line, s.reason) for s in skips] == [(2, "expected a JSON object, got list"),
                                                   (3, "missing field 'text'"),
                                                   (4, "expected a JSON object, got str")]
    assert reader.stats.read == 2


def test_json_one_object_is_one_record(tmp_path):
    """A .json holding one (indented) object is one record."""
    path = _write(tmp_path / "one.json", json.dumps(RECORDS[0], indent=2).encode())
    assert [d.id for d in _read([path])[0]] == ["r0"]


def test_json_lines_under_a_json_name(tmp_path):
    """JSON Lines saved as .json are read line by line (a bad line costs only itself)."""
    path = _write(tmp_path / "lines.json", _jsonl(RECORDS[0]) + b"{broken\n" + _jsonl(RECORDS[1]))
    documents, skips, _ = _read([path])
    assert [d.id for d in documents] == ["r0", "r1"] and [s.line for s in skips] == [2]


@pytest.mark.parametrize("data, found", [(b'"just a string"', "'\"'"), (b"42", "'4'")])
def test_json_of_another_kind_is_a_clear_error(tmp_path, data, found):
    """A .json holding neither an array nor an object is reported (and raised in strict mode)."""
    path = _write(tmp_path / "odd.json", data)
    documents, skips, _ = _read([path])
    assert documents == [] and "expected a JSON array of records or an object" in str(skips[0])
    with pytest.raises(RecordError):
        list(Reader(strict=True).documents([path]))


def test_json_array_broken_structure_keeps_what_came_before(tmp_path):
    """A JSON array cut short or missing a comma yields the records before the break and one skip."""
    whole = json.dumps(RECORDS).encode()
    for data in (whole[:-30], whole.replace(b"}, {", b"} {", 1)):
        path = _write(tmp_path / "broken.json", data)
        documents, _skips, reader = _read([path])
        assert [d.id for d in documents] == ["r0"][: len(documents)] or documents[0].id == "r0"
        assert reader.stats.skipped["cannot read the rest"] == 1


def test_json_array_strings_with_brackets_and_escapes(tmp_path):
    """Brackets, braces, quotes and backslashes inside strings do not confuse the scanner."""
    tricky = [{"id": "a", "text": 'He said "]}{[" and \\ left.', "x": "\\"}, {"id": "b", "text": "B ] text."}]
    path = _write(tmp_path / "t.json", json.dumps(tricky).encode())
    assert [(d.id, d.text) for d in _read([path])[0]] == [("a", tricky[0]["text"]), ("b", "B ] text.")]


@given(st.lists(st.fixed_dictionaries({"id": st.integers(0, 10**6), "text": st.text(min_size=1, max_size=30),
                                       "extra": st.recursive(st.none() | st.booleans() | st.integers()
                                                             | st.text(max_size=5),
                                                             lambda inner: st.lists(inner, max_size=3)
                                                             | st.dictionaries(st.text(max_size=3), inner,
                                                                               max_size=3), max_leaves=6)}),
                max_size=8),
       st.sampled_from([None, 0, 2]), st.integers(1, 50))
@settings(max_examples=80, deadline=None)
def test_property_json_array_scanner_agrees_with_json_loads(records, indent, chunk):
    """For any array of records, in any layout and any chunk size, the scanner reads what json.loads reads."""
    import neardup.io.streams as inputs
    from neardup.io.checks import control_share as _control_share

    data = json.dumps(records, indent=indent, ensure_ascii=bool(chunk % 2)).encode()
    expected = [r for r in records if r["text"].strip() and "\x00" not in r["text"]]
    old = inputs.CHUNK
    inputs.CHUNK = chunk
    try:
        documents, skips, _ = _read(["-"], stdin=io.BytesIO(data))
    finally:
        inputs.CHUNK = old
    if not records:
        assert documents == [] and skips == []
        return
    assert [d.id for d in documents] == [str(r["id"]) for r in expected if _control_share(r["text"]) <= 0.05]
    assert len(documents) + len(skips) == len(records)


# --------------------------------------------------------------------------- Arrow and Hugging Face


def _arrow_table():
    return pa.table({"id": pa.array([7, 8, 9], pa.int64()), "text": ["Arrow one.", "Arrow two.", ""],
                     "when": pa.array([1, 2, 3], pa.timestamp("s"))})


@pytest.mark.parametrize("suffix, stream", [(".arrow", False), (".arrow", True), (".feather", False),
                                            (".ipc", True)])
def test_arrow_ipc_files_and_streams(tmp_path, suffix, stream):
    """Arrow IPC in the file or the stream format (.arrow, .feather, .ipc) is read row by row."""
    path = tmp_path / f"t{suffix}"
    table = _arrow_table()
    with pa.OSFile(str(path), "wb") as sink:
        writer = (pa.ipc.new_stream if stream else pa.ipc.new_file)(sink, table.schema)
        writer.write_table(table, max_chunksize=2)
        writer.close()
    documents, skips, _ = _read([str(path)])
    assert [d.id for d in documents] == ["7", "8"]
    assert [(s.line, s.reason) for s in skips] == [(3, "empty text")]


def _save_dataset(folder: Path, shards: list[list[dict]]) -> None:
    """A folder as `datasets` save_to_disk writes it: Arrow stream shards listed in state.json."""
    folder.mkdir(parents=True)
    names = [f"data-{i:05d}-of-{len(shards):05d}.arrow" for i in range(len(shards))]
    for name, rows in zip(names, shards):
        table = pa.Table.from_pylist(rows)
        with pa.OSFile(str(folder / name), "wb") as sink:
            writer = pa.ipc.new_stream(sink, table.schema)
            writer.write_table(table)
            writer.close()
    (folder / "dataset_info.json").write_text(json.dumps({"features": {}}))
    state = {"_data_files": [{"filename": n} for n in reversed(names)], "_split": None}
    (folder / "state.json").write_text(json.dumps(state))


def test_hugging_face_folder_read_in_state_order(tmp_path):
    """A save_to_disk folder is read shard by shard in the order state.json lists them (not its JSON files)."""
    folder = tmp_path / "ds"
    _save_dataset(folder, [[{"id": "a", "text": "Shard zero."}], [{"id": "b", "text": "Shard one."}]])
    documents, skips, _ = _read([str(folder)])
    assert [d.id for d in documents] == ["b", "a"] and skips == []  # state.json lists shard 1 first


def test_hugging_face_dataset_dict_and_nested_in_a_folder(tmp_path):
    """A DatasetDict folder (dataset_dict.json, one folder per split) and a dataset inside a corpus folder."""
    corpus = tmp_path / "corpus"
    _save_dataset(corpus / "dd" / "train", [[{"id": "t", "text": "Train row."}]])
    _save_dataset(corpus / "dd" / "test", [[{"id": "s", "text": "Test row."}]])
    (corpus / "dd" / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    _write(corpus / "a.jsonl", _jsonl(RECORDS[0]))
    documents, skips, _ = _read([str(corpus)])
    assert [d.id for d in documents] == ["r0", "t", "s"] and skips == []


def test_hugging_face_state_naming_a_missing_shard(tmp_path):
    """state.json listing a shard that is not there is an InputError naming it."""
    folder = tmp_path / "ds"
    _save_dataset(folder, [[{"id": "a", "text": "Row."}]])
    next(folder.glob("data-*.arrow")).unlink()
    with pytest.raises(InputError, match=r"data-00000-of-00001\.arrow"):
        list(Reader().documents([str(folder)]))


def test_arrow_stream_on_stdin():
    """An Arrow IPC stream piped on stdin is recognised and read."""
    sink = io.BytesIO()
    table = _arrow_table()
    writer = pa.ipc.new_stream(sink, table.schema)
    writer.write_table(table)
    writer.close()
    documents, skips, _ = _read(["-"], stdin=io.BytesIO(sink.getvalue()))
    assert [d.id for d in documents] == ["7", "8"] and len(skips) == 1


def test_parquet_on_stdin_is_refused_clearly(tmp_path):
    """Parquet needs a file: on stdin it is an InputError saying so."""
    path = tmp_path / "p.parquet"
    parquet.write_table(pa.table({"id": ["a"], "text": ["x"]}), path)
    with pytest.raises(InputError, match="cannot be read from a stream"):
        list(Reader(stdin=io.BytesIO(path.read_bytes())).documents(["-"]))


def test_folder_of_parquet_shards_still_read(tmp_path):
    """A folder of Parquet shards is read shard by shard in name order."""
    for i in range(3):
        parquet.write_table(pa.table({"id": [f"s{i}"], "text": [f"Shard {i} text."]}), tmp_path / f"part-{i}.parquet")
    assert [d.id for d in _read([str(tmp_path)])[0]] == ["s0", "s1", "s2"]


# --------------------------------------------------------------------------- recognising and refusing


BINARIES = {
    "PDF": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    "PNG": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "SQLite": b"SQLite format 3\x00\x10\x00",
}


@pytest.mark.parametrize("name", list(BINARIES))
@pytest.mark.parametrize("suffix", ["", ".txt", ".md", ".pdf", ".dat"])
def test_binary_formats_are_refused_naming_what_is_read(tmp_path, name, suffix):
    """A PDF, zip, PNG or SQLite file named as text or as nothing known is an InputError listing the formats read."""
    path = _write(tmp_path / f"file{suffix}", BINARIES[name] + bytes(range(256)))
    with pytest.raises(InputError) as info:
        list(Reader().documents([path]))
    message = str(info.value)
    assert not isinstance(info.value, RecordError)
    assert message.startswith(f"{path}: a ") and name in message
    assert all(word in message for word in ("JSON Lines", "CSV", "Parquet", "Arrow", "text"))


def test_binary_under_a_json_lines_name_is_read_line_by_line(tmp_path):
    """A .jsonl name is trusted: a PDF under it costs one counted skip a line, not a refusal."""
    path = _write(tmp_path / "odd.jsonl", BINARIES["PDF"] + b"\n" + _jsonl(RECORDS[0]))
    documents, skips, _ = _read([path])
    assert [d.id for d in documents] == ["r0"] and [s.line for s in skips] == [1, 2, 3]  # the sample has 3 lines


def test_unknown_binary_without_signature_is_refused(tmp_path):
    """Bytes that are not UTF-8 and match no known format are an InputError, not a skipped text."""
    path = _write(tmp_path / "blob.dat", bytes(range(128, 256)) * 10)
    with pytest.raises(InputError, match="not UTF-8 text, nor a format neardup reads"):
        list(Reader().documents([path]))


def test_unknown_suffix_is_recognised_from_content(tmp_path):
    """A name without a known suffix is read as stdin is: JSON Lines, a JSON array, or one text."""
    lines = _write(tmp_path / "export.out", _jsonl(*RECORDS))
    array = _write(tmp_path / "export.data", json.dumps(RECORDS).encode())
    text = _write(tmp_path / "README", b"[Update] A story that starts with a bracket.\n")
    assert [d.id for d in _read([lines])[0]] == ["r0", "r1", "r2"]
    assert [d.id for d in _read([array])[0]] == ["r0", "r1", "r2"]
    assert [d.id for d in _read([text])[0]] == [text]


def test_folder_message_lists_every_format(tmp_path):
    """An empty folder's message names every format folders accept, CSV and Parquet included."""
    _write(tmp_path / "notes.dat", b"x")
    with pytest.raises(InputError) as info:
        list(Reader().documents([str(tmp_path)]))
    for suffix in (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".arrow", ".txt", ".zst", "Hugging Face"):
        assert suffix in str(info.value)


def test_compressed_parquet_is_refused(tmp_path):
    """x.parquet.gz is refused with advice: Parquet compresses its own columns."""
    path = _write(tmp_path / "x.parquet.gz", gzip.compress(b"PAR1...."))
    with pytest.raises(InputError, match="decompress it first"):
        list(Reader().documents([path]))


# --------------------------------------------------------------------------- robustness


def test_one_bad_byte_in_a_csv_costs_one_row(tmp_path):
    """The reported bug: an invalid UTF-8 byte in row 2 of a 1,000-row CSV lost every row."""
    rows = [f"d{i},Row number {i} of the file.\n".encode() for i in range(1000)]
    rows[1] = b"d1,Caf\xe9 au lait in row two.\n"
    path = _write(tmp_path / "big.csv", b"id,text\n" + b"".join(rows))
    documents, skips, reader = _read([path])
    assert len(documents) == 999 and "d1" not in {d.id for d in documents}
    assert [(s.line, s.reason) for s in skips] == [(3, "invalid UTF-8 at byte 6 of the row")]
    assert reader.stats.skipped == {"invalid UTF-8": 1}


def test_csv_quoted_newlines_cr_only_and_extra_fields(tmp_path):
    """Quoted fields span lines; CR-only rows are rows; a row with more fields than the header is skipped."""
    data = b'id,text\r"q1","Line one\r\nline two"\r"q2",Plain\rq3,a,b\rq4,Last\r'
    path = _write(tmp_path / "mac.csv", data)
    documents, skips, _ = _read([path])
    assert [(d.id, d.text) for d in documents] == [("q1", "Line one\r\nline two"), ("q2", "Plain"), ("q4", "Last")]
    assert [(s.line, s.reason) for s in skips] == [(5, "more fields than the header (3 > 2)")]


def test_csv_row_over_the_limit_is_skipped_alone(tmp_path):
    """A CSV row longer than max_record_bytes is skipped with its line; the rows after it are read."""
    path = _write(tmp_path / "long.csv", b"id,text\na,Short.\nb," + b"x" * 5000 + b"\nc,After.\n")
    documents, skips, _ = _read([path], max_record_bytes=1000)
    assert [d.id for d in documents] == ["a", "c"]
    assert [(s.line, s.reason.split(" exceeds")[0]) for s in skips] == [(3, "record of 5003 bytes")]


def test_json_lines_separated_by_cr_only(tmp_path):
    """The reported bug: JSON Lines separated by lone CRs lost both records."""
    path = _write(tmp_path / "cr.jsonl", b'{"id": "a", "text": "One."}\r{"id": "b", "text": "Two."}\r')
    documents, skips, _ = _read([path])
    assert [d.id for d in documents] == ["a", "b"] and skips == []


def test_json_lines_with_mixed_endings(tmp_path):
    """\\n, \\r\\n and a lone \\r between records in one file: every record is read."""
    data = b'{"id": "a", "text": "A."}\r\n{"id": "b", "text": "B."}\r{"id": "c", "text": "C."}\n'
    documents, skips, _ = _read([_write(tmp_path / "mixed.jsonl", data)])
    assert [d.id for d in documents] == ["a", "b", "c"] and skips == []


@pytest.mark.parametrize("field", ["text", "source"])
def test_lone_surrogate_escape_is_skipped_with_a_reason(tmp_path, field):
    """A lone surrogate (\\ud800 escaped in JSON) in the text or another field is a counted skip."""
    bad = b'{"id": "x", "text": "Some words.", "source": "wire"}'.replace(f'"{field}": "'.encode(),
                                                                         f'"{field}": "\\ud800'.encode())
    good_pair = b'{"id": "y", "text": "An emoji \\ud83d\\ude00 escaped."}'
    documents, skips, _ = _read([_write(tmp_path / "s.jsonl", bad + b"\n" + good_pair + b"\n")])
    assert [d.id for d in documents] == ["y"] and documents[0].text == "An emoji \U0001f600 escaped."
    assert len(skips) == 1 and skips[0].line == 1 and "surrogate" in skips[0].reason


def test_strict_mode_raises_on_a_bad_csv_row(tmp_path):
    """Strict mode stops at the first bad CSV row, naming file and line."""
    path = _write(tmp_path / "s.csv", b"id,text\na,Good.\nb,\nc,Good.\n")
    with pytest.raises(RecordError, match=r"s\.csv:3: empty text"):
        list(Reader(strict=True).documents([path]))


# --------------------------------------------------------------------------- bytes for progress


def test_source_bytes_reach_the_total_of_the_inputs(tmp_path):
    """stats.source_bytes grows while files are read and ends at total_input_bytes (compressed sizes)."""
    big = _jsonl(*({"id": f"d{i}", "text": f"Record {i} with some words in it."} for i in range(20_000)))
    first = _write(tmp_path / "a.jsonl.gz", gzip.compress(big))
    folder = tmp_path / "more"
    _write(folder / "b.jsonl", _jsonl(*RECORDS))
    _write(folder / "c.txt", b"A text file.")
    total = total_input_bytes([first, str(folder)])
    assert total == Path(first).stat().st_size + len(_jsonl(*RECORDS)) + len(b"A text file.")
    reader = Reader()
    seen = [reader.stats.source_bytes for _ in reader.documents([first, str(folder)])]
    assert 0 < seen[0] < seen[10_000] < Path(first).stat().st_size  # advances within the gzip file
    assert seen == sorted(seen) and reader.stats.source_bytes == total


def test_total_input_bytes_is_none_for_stdin(tmp_path):
    """Stdin has no known size."""
    assert total_input_bytes(["-"]) is None
    assert total_input_bytes([_write(tmp_path / "a.jsonl", b"{}\n"), "-"]) is None


# --------------------------------------------------------------------------- bounded memory

_CHILD = """
import json, resource, sys, time
from neardup.errors import InputError
from neardup.io.reader import Reader
skips = []
reader = Reader(on_skip=skips.append, max_record_bytes=int(sys.argv[1]))
before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
try:
    ids, error = [d.id for d in reader.documents(["-"])], None
except InputError as err:
    ids, error = [], str(err)
print(json.dumps({"ids": ids, "error": error, "skips": [[s.line, s.reason] for s in skips],
                  "read": reader.stats.source_bytes, "seconds": time.monotonic() - start,
                  "growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}))
"""

_MB = 1 << 20


def _through_pipe(chunks, limit: int = _MB) -> dict:
    """Feed the chunks to a child reading stdin through a real pipe; what it read, skipped and grew by."""
    import os
    import subprocess
    import threading

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(limit)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env)

    def feed() -> None:
        try:
            for chunk in chunks:
                child.stdin.write(chunk)
        except BrokenPipeError:  # the child stopped reading: what we want for a refused input
            pass
        finally:
            with contextlib.suppress(BrokenPipeError):
                child.stdin.close()

    writer = threading.Thread(target=feed)
    writer.start()
    out = child.stdout.read()  # the writer thread feeds stdin meanwhile
    child.wait(timeout=120)
    writer.join(timeout=120)
    return json.loads(out)


def _repeat(piece: bytes, total: int):
    block = piece * (_MB // len(piece))
    for _ in range(total // len(block)):
        yield block


def test_pipe_endless_json_line_is_skipped_in_bounded_memory():
    """200 MB of one JSON line through a pipe with a 1 MB limit: skipped with its line, memory flat, fast."""
    chunks = [b'{"id": "huge", "text": "', *_repeat(b"a", 200 * _MB), b'"}\n{"id": "next", "text": "Read."}\n']
    result = _through_pipe(chunks)
    assert result["ids"] == ["next"]
    assert [line for line, _ in result["skips"]] == [1] and "exceeds the limit" in result["skips"][0][1]
    assert result["growth_mb"] < 50 and result["seconds"] < 60


def test_pipe_of_zeros_is_refused_without_reading_it_all():
    """/dev/zero-like stdin (also with a 1 MB limit) is refused at once, not read until memory runs out."""
    result = _through_pipe(_repeat(b"\x00", 200 * _MB))
    assert result["error"].startswith("-: not UTF-8 text") and result["read"] < 10 * _MB
    assert result["growth_mb"] < 50


def test_pipe_plain_text_over_the_limit_stops_at_the_limit():
    """A plain-text document on stdin is read up to the limit only, then skipped as too large."""
    result = _through_pipe([b"A story that never ends. ", *_repeat(b"word ", 200 * _MB)])
    assert result["ids"] == [] and "exceeds the limit" in result["skips"][0][1]
    assert result["read"] < 10 * _MB and result["growth_mb"] < 50


class _Endless(io.RawIOBase):
    """A stream of ``head``, ``size`` bytes of ``fill`` and ``tail``, made as it is read (no memory of its own)."""

    def __init__(self, head: bytes, fill: bytes, size: int, tail: bytes) -> None:
        super().__init__()
        self._parts = iter([head, *_repeat(fill, size), tail])
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._left:
            self._left = next(self._parts, None)
            if self._left is None:
                self._left = b""
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n], self._left = self._left[:n], self._left[n:]
        return n


def _peak_mb(run) -> tuple[object, float]:
    import tracemalloc

    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1] / _MB
    finally:
        tracemalloc.stop()


def test_json_array_with_a_huge_element_in_bounded_memory():
    """A 100 MB element of a JSON array is skipped while scanned; the next element is read; peak stays small."""
    stream = _Endless(b'[{"id": "huge", "text": "', b"abc[]{}\\\\", 100 * _MB,
                      b'"}, {"id": "next", "text": "Read."}]')
    (documents, skips, _), peak = _peak_mb(lambda: _read(["-"], stdin=stream, max_record_bytes=_MB))
    assert [d.id for d in documents] == ["next"] and [s.line for s in skips] == [1]
    assert peak < 20


def test_csv_with_a_huge_line_in_bounded_memory(tmp_path):
    """A 50 MB CSV line costs its row only, read in bounded memory."""
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:
        handle.write(b"id,text\nbig,")
        for block in _repeat(b"x", 50 * _MB):
            handle.write(block)
        handle.write(b"\nsmall,Read.\n")
    (documents, skips, _), peak = _peak_mb(lambda: _read([str(path)], max_record_bytes=_MB))
    assert [d.id for d in documents] == ["small"] and [s.line for s in skips] == [2]
    assert peak < 20
