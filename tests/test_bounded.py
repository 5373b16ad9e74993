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

import pytest

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
