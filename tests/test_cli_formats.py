"""The command line in every format people bring: dedup reads each input format to the same
clusters, writes KEPT and CLUSTERS in the format their names say, and keeps records as they came."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neardup.cli.main import main

pa = pytest.importorskip("pyarrow")
import pyarrow.feather as feather  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WIRE = ROOT / "examples" / "wire.jsonl"


def records() -> list[dict]:
    return [json.loads(line) for line in WIRE.read_text(encoding="utf-8").splitlines()]


def clusters_of(path: Path) -> dict[str, str]:
    return {r["id"]: r["cluster"] for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def run(argv: list[str]) -> int:
    return main([str(a) for a in argv], out=io.StringIO())


def write_input(folder: Path, kind: str) -> Path:
    """The bundled corpus written in one input format."""
    rows = records()
    table = pa.Table.from_pylist(rows)
    if kind == "jsonl":
        path = folder / "in.jsonl"
        path.write_bytes(WIRE.read_bytes())
    elif kind == "jsonl.gz":
        path = folder / "in.jsonl.gz"
        path.write_bytes(gzip.compress(WIRE.read_bytes()))
    elif kind == "jsonl.zst":
        zstandard = pytest.importorskip("zstandard")
        path = folder / "in.jsonl.zst"
        path.write_bytes(zstandard.ZstdCompressor().compress(WIRE.read_bytes()))
    elif kind == "json":
        path = folder / "in.json"
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif kind in ("csv", "tsv"):
        import csv

        path = folder / f"in.{kind}"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="," if kind == "csv" else "\t")
            writer.writeheader()
            writer.writerows(rows)
    elif kind == "parquet":
        path = folder / "in.parquet"
        pq.write_table(table, path)
    elif kind == "arrow":
        path = folder / "in.arrow"
        feather.write_feather(table, path)
    elif kind == "huggingface":
        path = folder / "dataset"
        path.mkdir()
        with pa.OSFile(str(path / "data-00000-of-00001.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        (path / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
        (path / "dataset_info.json").write_text("{}")
    else:
        raise AssertionError(kind)
    return path


@pytest.mark.parametrize("kind", ["jsonl", "jsonl.gz", "jsonl.zst", "json", "csv", "tsv", "parquet", "arrow",
                                  "huggingface"])
def test_every_input_format_gives_the_same_clusters(tmp_path, kind):
    """dedup of the bundled corpus in any input format: the clusters of the JSON Lines original."""
    reference = tmp_path / "reference.jsonl"
    assert run(["dedup", WIRE, "--out", tmp_path / "k0.jsonl", "--clusters", reference]) == 0
    source = write_input(tmp_path, kind)
    clusters = tmp_path / "clusters.jsonl"
    assert run(["dedup", source, "--out", tmp_path / "kept.jsonl", "--clusters", clusters]) == 0
    assert clusters_of(clusters) == clusters_of(reference)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv", ".parquet"])
def test_kept_and_clusters_follow_their_extension(tmp_path, suffix):
    """KEPT and CLUSTERS are written in the format their names say, and hold the same rows."""
    kept, clusters = tmp_path / f"kept{suffix}", tmp_path / f"clusters{suffix}"
    assert run(["dedup", WIRE, "--out", kept, "--clusters", clusters]) == 0
    reference = tmp_path / "reference.jsonl"
    assert run(["dedup", WIRE, "--out", tmp_path / "k.jsonl", "--clusters", reference]) == 0
    expected = clusters_of(reference)
    if suffix == ".parquet":
        rows = pq.read_table(clusters).to_pylist()
        kept_ids = set(pq.read_table(kept).column("id").to_pylist())
        assert pq.ParquetFile(kept).metadata.num_rows == len(kept_ids)
    elif suffix == ".csv":
        import csv

        rows = list(csv.DictReader(clusters.open(encoding="utf-8")))
        kept_ids = {r["id"] for r in csv.DictReader(kept.open(encoding="utf-8"))}
    else:
        opener = gzip.open if suffix.endswith(".gz") else open
        with opener(clusters, "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle]
        with opener(kept, "rt", encoding="utf-8") as handle:
            kept_ids = {json.loads(line)["id"] for line in handle}
    assert {r["id"]: r["cluster"] for r in rows} == expected
    assert kept_ids == {i for i, c in expected.items() if i == c}


def test_kept_records_come_back_as_they_came(tmp_path):
    """Integer ids stay integers, field order and every extra field are kept, byte for byte."""
    rows = [{"n": 7, "id": 100 + k, "text": r["text"], "tags": ["a", 1]} for k, r in enumerate(records()[:6])]
    source = tmp_path / "typed.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    kept = tmp_path / "kept.jsonl"
    assert run(["dedup", source, "--out", kept, "--clusters", tmp_path / "c.jsonl"]) == 0
    lines = kept.read_text(encoding="utf-8").splitlines()
    originals = source.read_text(encoding="utf-8").splitlines()
    assert lines and all(line in originals for line in lines)
    assert all(isinstance(json.loads(line)["id"], int) for line in lines)
    assert list(json.loads(lines[0])) == ["n", "id", "text", "tags"]


def test_csv_kept_keeps_the_column_order(tmp_path):
    """A CSV input gives a CSV KEPT with the same header and rows as they were."""
    source = write_input(tmp_path, "csv")
    header = source.read_text(encoding="utf-8").splitlines()[0]
    kept = tmp_path / "kept.csv"
    assert run(["dedup", source, "--out", kept, "--clusters", tmp_path / "c.jsonl"]) == 0
    out = kept.read_text(encoding="utf-8").splitlines()
    assert out[0] == header


def test_stdin_in_one_pass(tmp_path):
    """cat corpus | neardup dedup - writes every kept record (the input is read once)."""
    kept, clusters = tmp_path / "kept.jsonl", tmp_path / "clusters.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run([sys.executable, "-m", "neardup", "dedup", "-", "--out", str(kept), "--clusters",
                             str(clusters)], input=WIRE.read_bytes(), capture_output=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    expected = {i for i, c in clusters_of(clusters).items() if i == c}
    assert {json.loads(line)["id"] for line in kept.read_text().splitlines()} == expected and len(expected) == 13


def test_output_naming_an_input_is_refused_before_any_work(tmp_path, capsys):
    """--clusters naming the input exits 2 and leaves the input as it was."""
    source = write_input(tmp_path, "jsonl")
    before = source.read_bytes()
    assert run(["dedup", source, "--out", tmp_path / "k.jsonl", "--clusters", source]) == 2
    assert source.read_bytes() == before and "error" in capsys.readouterr().err


def test_earliest_without_the_date_field_says_so(tmp_path, capsys):
    """--keep earliest with a --date-field the records lack warns that they are ranked last."""
    assert run(["dedup", WIRE, "--out", tmp_path / "k.jsonl", "--clusters", tmp_path / "c.jsonl", "--keep",
                "earliest", "--date-field", "published"]) == 0
    assert "26 of 26 documents have no 'published' field" in capsys.readouterr().err


def test_zero_documents_names_the_fields_the_records_have(tmp_path, capsys):
    """A wrong --text-field: exit 2, and the message lists the fields the records do have."""
    assert run(["dedup", WIRE, "--out", tmp_path / "k.jsonl", "--clusters", tmp_path / "c.jsonl",
                "--text-field", "body"]) == 2
    err = capsys.readouterr().err
    assert "no documents read" in err and "source" in err and "text" in err and "--text-field" in err


def test_python_m_neardup_and_help(tmp_path):
    """python -m neardup is the command; --help of every command exits 0 and shows examples."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    for command in ("index", "query", "dedup", "show", "remove", "stats", "verify", "repeats", "serve"):
        result = subprocess.run([sys.executable, "-m", "neardup", command, "--help"], capture_output=True, env=env,
                                timeout=60)
        assert result.returncode == 0 and b"example" in result.stdout, command
