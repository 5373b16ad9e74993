"""Bounded by size, not by luck: what a hostile tester broke, each a named test.

Repeated ids on every input path; work proportional to a query's bytes, not to the square of its
repeats; answers bounded in size; columnar records over the limit skipped without being read whole;
prose never taken for an ad call; the small things (ports, NaN options, id paths)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neardup.threads import batched

ROOT = Path(__file__).resolve().parents[1]
WIRE = ROOT / "examples" / "wire.jsonl"


def records() -> list[dict]:
    return [json.loads(line) for line in WIRE.read_text(encoding="utf-8").splitlines() if line.strip()]


def neardup(*args: str | Path, stdin: bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The command as users run it (a process of its own)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-m", "neardup", *map(str, args)], input=stdin, capture_output=True,
                          env=env, cwd=cwd, timeout=300)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_columnar(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        with pa.ipc.new_file(path, table.schema) as writer:
            writer.write_table(table)
    return path


def ids_of(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def dedup(tmp_path: Path, *inputs: str | Path, extra: tuple[str, ...] = (), stdin: bytes | None = None
          ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    kept, clusters = tmp_path / "kept.jsonl", tmp_path / "clusters.jsonl"
    done = neardup("dedup", *inputs, "--out", kept, "--clusters", clusters, *extra, stdin=stdin)
    return done, ids_of(clusters) if done.returncode == 0 else []


# -- 1. a repeated id is skipped and counted, on every input path ------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet", ".arrow", "stdin"])
def test_a_repeated_id_is_skipped_and_counted_in_every_format(tmp_path: Path, suffix: str, workers: str) -> None:
    """`dedup` on records whose ids repeat (any format, stdin, 1 or 2 workers): exit 0, one line per
    skip naming the first place of the id, every unique id in CLUSTERS once (it once crashed with an
    IndexError on JSON Lines)."""
    rows = records()
    repeated = rows + [dict(rows[0], text="another text under the first id"), dict(rows[5])]
    stdin = None
    if suffix == "stdin":
        stdin = "".join(json.dumps(r) + "\n" for r in repeated).encode()
        source: str | Path = "-"
    elif suffix == ".jsonl":
        source = write_jsonl(tmp_path / "in.jsonl", repeated)
    elif suffix == ".json":
        source = tmp_path / "in.json"
        source.write_text(json.dumps(repeated), encoding="utf-8")
    elif suffix == ".csv":
        source = write_csv(tmp_path / "in.csv", repeated)
    else:
        source = write_columnar(tmp_path / f"in{suffix}", repeated)
    done, ids = dedup(tmp_path, source, extra=("--workers", workers), stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("duplicate id") >= 2
    assert "skipped 2 (2 duplicate id)" in done.stderr
    assert sorted(ids) == sorted(r["id"] for r in rows)


def test_the_same_records_given_twice_and_in_two_formats_of_a_folder(tmp_path: Path) -> None:
    """The same records as two files, and a folder holding them as .jsonl and as .csv: the second
    reading of each id is skipped and counted, never a crash."""
    rows = records()
    one = write_jsonl(tmp_path / "one.jsonl", rows)
    done, ids = dedup(tmp_path, one, one)
    assert done.returncode == 0, done.stderr
    assert f"skipped {len(rows)} ({len(rows)} duplicate id)" in done.stderr
    assert sorted(ids) == sorted(r["id"] for r in rows)
    folder = tmp_path / "both"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", rows)
    write_csv(folder / "b.csv", [{k: r[k] for k in ("id", "text", "source", "date")} for r in rows])
    done, ids = dedup(tmp_path, folder)
    assert done.returncode == 0, done.stderr
    assert sorted(ids) == sorted(r["id"] for r in rows)


def test_an_id_of_the_reference_corpus_is_skipped_in_the_new_documents(tmp_path: Path) -> None:
    """--against a corpus sharing ids with the new documents: the new ones with a taken id are skipped
    and counted; the others are deduplicated against the reference."""
    rows = records()
    old = write_jsonl(tmp_path / "old.jsonl", rows[:10])
    new = write_jsonl(tmp_path / "new.jsonl", rows[5:])
    done, ids = dedup(tmp_path, new, extra=("--against", str(old), "--workers", "2"))
    assert done.returncode == 0, done.stderr
    assert "skipped 5 (5 duplicate id)" in done.stderr
    assert sorted(ids) == sorted(r["id"] for r in rows[10:])


# -- 2. a query's work follows its bytes, not the square of its repeats ----------------------------------------


def limited(args: list[str], limit: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A process with at most ``limit`` bytes of address space (a memory bound that no timing decides)."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=600, preexec_fn=cap)


@pytest.fixture(scope="module")
def repeated_story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """An index of the bundled corpus plus a page that repeats its first story 300 times, and that page as
    a query file."""
    folder = tmp_path_factory.mktemp("repeated")
    rows = records()
    page = "\n".join([rows[0]["text"]] * 300)
    write_jsonl(folder / "corpus.jsonl", rows + [{"id": "repeated-page", "text": page}])
    (folder / "page.txt").write_text(page, encoding="utf-8")
    done = neardup("index", folder / "idx", folder / "corpus.jsonl", "-q")
    assert done.returncode == 0, done.stderr
    return folder, folder / "page.txt", rows[0]["id"]


def test_a_query_repeating_its_paragraphs_costs_what_its_bytes_cost(repeated_story: tuple[Path, Path, str]) -> None:
    """A 1.3 MB page repeating one story 300 times, queried against an index holding it: answered in a
    process capped at 1 GB of address space (every repeat once met every stored repeat: gigabytes), each
    paragraph paired at most once a side."""
    folder, page, original = repeated_story
    done = limited([sys.executable, "-m", "neardup", "query", "idx", str(page), "--json"], 1 << 30, folder)
    assert done.returncode == 0, done.stderr[-2000:]
    matches = {m["id"]: m for m in map(json.loads, done.stdout.splitlines())}
    assert matches["repeated-page"]["kind"] == "exact"
    paragraphs = len(page.read_text(encoding="utf-8").splitlines())
    for match in matches.values():
        pairs = [(p["query_paragraph"], p["match_paragraph"]) for p in match["shared_paragraphs"]]
        assert len(pairs) <= 2 * paragraphs and len(set(pairs)) == len(pairs)
    assert len(matches["repeated-page"]["shared_paragraphs"]) == paragraphs  # the k-th repeat with the k-th
    assert original in matches


def test_the_copies_of_a_stored_repeated_page_cost_what_its_bytes_cost(repeated_story: tuple[Path, Path, str]
                                                                       ) -> None:
    """Where else does the stored repeated page appear (``GET /documents/ID/copies``): the same bound
    through the API the server calls."""
    folder, _, original = repeated_story
    code = ("import json, sys; from neardup import Index\n"
            "with Index.open('idx') as index:\n"
            "    matches = index.query_many([index.document('repeated-page')], exclude_self=True)[0]\n"
            "print(json.dumps([m.id for m in matches]))")
    done = limited([sys.executable, "-c", code], 1 << 30, folder)
    assert done.returncode == 0, done.stderr[-2000:]
    assert original in json.loads(done.stdout)


# -- 6. columnar records read by size ----------------------------------------------------------------------

#: Reads a columnar file with the Reader in a process of its own and prints what it read, what it
#: skipped and how much memory the reading added (peak resident bytes beyond those after imports).
READ_AND_MEASURE = """
import json, resource, sys
import pyarrow, pyarrow.parquet
from neardup.io.reader import Reader
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
before = peak()
skips = []
reader = Reader(max_record_bytes=int(sys.argv[2]), on_skip=lambda problem: skips.append(str(problem)))
ids = [document.id for document in reader.documents([sys.argv[1]])]
print(json.dumps({"ids": ids, "skips": skips, "added": peak() - before}))
"""


def read_and_measure(path: Path, max_record_bytes: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-c", READ_AND_MEASURE, str(path), str(max_record_bytes)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_parquet_record_over_the_limit_alone_in_its_row_group_is_skipped_undecoded(tmp_path: Path) -> None:
    """A 200 MB text alone in a row group, limit 1 MB: skipped from the file's metadata — reading adds
    far less than the text (decoding it and turning it into Python took five times its size)."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "big.parquet"
    with pq.ParquetWriter(path, pa.schema([("id", pa.string()), ("text", pa.string())]), compression="zstd") as out:
        out.write_table(pa.table({"id": ["small-1"], "text": ["a small story\n" * 10]}))
        out.write_table(pa.table({"id": ["huge"], "text": ["many words here\n" * (200 << 20 >> 4)]}))
        out.write_table(pa.table({"id": ["small-2"], "text": ["another small story\n" * 10]}))
    seen = read_and_measure(path, 1 << 20)
    assert seen["ids"] == ["small-1", "small-2"]
    assert len(seen["skips"]) == 1 and f"{path}:2:" in seen["skips"][0] and "exceeds the limit" in seen["skips"][0]
    assert seen["added"] < 100 << 20


def test_arrow_rows_are_turned_into_python_a_budget_at_a_time(tmp_path: Path) -> None:
    """40 texts of 5 MB in one Arrow batch (200 MB), and one of 80 MB over a 64 MB limit: the file is
    mapped, rows become Python a few at a time and the mapped pages are let go, the one over the limit
    never becomes Python — reading adds well under the batch's size (it added the whole batch twice)."""
    pa = pytest.importorskip("pyarrow")
    text = "word " * (1 << 20)
    ids = [f"row-{i}" for i in range(40)]
    table = pa.table({"id": [*ids[:20], "too-big", *ids[20:]],
                      "text": [text] * 20 + ["word " * (16 << 20)] + [text] * 20})
    path = tmp_path / "rows.arrow"
    with pa.ipc.new_file(path, table.schema) as writer:
        writer.write_table(table, max_chunksize=1000)
    del table
    seen = read_and_measure(path, 64 << 20)
    assert seen["ids"] == ids
    assert len(seen["skips"]) == 1 and f"{path}:21:" in seen["skips"][0]
    assert seen["added"] < 120 << 20


def test_the_reader_skips_columnar_records_over_the_limit_on_the_cli(tmp_path: Path) -> None:
    """The same through `dedup`: one line per skip, counted in the summary."""
    pa = pytest.importorskip("pyarrow")
    rows = records()[:6]
    rows.insert(3, {"id": "huge", "text": "long text " * 300_000})
    path = tmp_path / "rows.arrow"
    table = pa.Table.from_pylist(rows)
    with pa.ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)
    done, ids = dedup(tmp_path, path, extra=("--max-record-mb", "1"))
    assert done.returncode == 0, done.stderr
    assert "skipped 1 (1 record too large)" in done.stderr and f"{path}:4:" in done.stderr
    assert sorted(ids) == sorted(r["id"] for r in rows if r["id"] != "huge")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 100), max_size=60), st.integers(1, 8), st.integers(1, 300))
def test_batches_hold_at_most_their_count_and_about_their_budget(weights: list[int], size: int, budget: int) -> None:
    """Every item once, in order; a batch is at most ``size`` items, and under ``budget`` but for its
    last item."""
    batches = list(batched(weights, size, weight=lambda w: w, budget=budget))
    assert [w for batch in batches for w in batch] == weights
    for batch in batches:
        assert 1 <= len(batch) <= size
        assert sum(batch[:-1]) < budget


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50 << 20), max_size=80), st.integers(1, 64 << 20))
def test_runs_cover_every_row_once_and_keep_to_their_budget(sizes: list[int], limit: int) -> None:
    from neardup.io.columnar import ROWS_AT_ONCE, ROWS_BYTES, runs

    array = np.array(sizes, dtype=np.int64)
    covered = []
    for start, stop, oversized in runs(array, limit):
        covered.extend(range(start, stop))
        if oversized:
            assert stop == start + 1 and sizes[start] > limit
        else:
            assert all(s <= limit for s in sizes[start:stop]) and stop - start <= ROWS_AT_ONCE
            assert stop - start == 1 or sum(sizes[start:stop]) <= ROWS_BYTES
    assert covered == list(range(len(sizes)))


# -- 9. a gigabyte of line breaks costs a scan, not a Python step a line -----------------------------------


class Trickle:
    """A stream that hands out at most ``step`` bytes a read (chunk boundaries anywhere)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0

    def read(self, size: int = -1, /) -> bytes:
        piece = self.data[self.at:self.at + min(self.step, size if size >= 0 else self.step)]
        self.at += len(piece)
        return piece


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\n", b"\r\n", b"\r", b"{}", b" ", b"ab"]), max_size=60), st.integers(1, 9),
       st.integers(2, 12))
def test_lines_without_the_blank_ones_are_the_lines_that_are_not_blank(pieces: list[bytes], step: int,
                                                                        limit: int) -> None:
    """``read_lines(blank=False)``: the same numbers, sizes and lines as reading every line, less
    (most of) the lines that hold only line breaks — whatever the chunking and the record limit (at
    least a blank CRLF line: a run of line breaks is no record, whatever its length)."""
    from neardup.io.lines import read_lines

    data = b"".join(pieces)
    every = list(read_lines(Trickle(data, step), limit))
    filled = list(read_lines(Trickle(data, step), limit, blank=False))
    expected = [(n, line, size) for n, line, size in every if line is None or line.strip(b"\r") != b""]
    assert [item for item in filled if item[1] is None or item[1].strip(b"\r") != b""] == expected
    extra = [item for item in filled if item not in expected]   # blank lines at a chunk's edge may come
    assert all(line is not None and line.strip(b"\r") == b"" for _, line, _ in extra)


def test_an_input_of_line_breaks_is_read_at_the_speed_of_a_scan(tmp_path: Path) -> None:
    """64 MB of blank lines (a ``.gz`` of 64 KB) is 'no documents', read within a step budget that
    one Python step a line would overrun many times: counted by the calls made, not by a clock."""
    import cProfile
    import gzip
    import pstats

    from neardup.io.reader import Reader

    path = tmp_path / "blank.jsonl.gz"
    with gzip.open(path, "wb") as out:
        for _ in range(64):
            out.write(b"\n" * (1 << 20))
    profile = cProfile.Profile()
    profile.enable()
    documents = list(Reader().documents([str(path)]))
    profile.disable()
    calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    assert documents == [] and calls < 200_000   # a call a line: over 67 million
