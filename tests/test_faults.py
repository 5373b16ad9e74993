"""Fault injection: crafted folders, damaged bytes, kills, concurrent writers, hostile arguments,
unbounded inputs and full disks. Each test is a failure once seen (issue 10); none may come back.

What must hold throughout: neardup touches nothing outside its index folder; an answer is either
the answer of the undamaged index or an IndexFormatError (exit 3, naming the file); a killed
process never leaves fewer documents; a user error is one line with its exit code."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from neardup import Config, ConfigError, Document, Index, IndexFormatError, InputError, repeats
from neardup.cli.main import main
from processes import wait_for_commits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from test_diskstore import documents, synthetic_corpus, write_jsonl  # noqa: E402

#: Resource tests (time and memory measured loosely): set NEARDUP_SKIP_RESOURCE_TESTS=1 to skip them.
resource_test = pytest.mark.skipif(os.environ.get("NEARDUP_SKIP_RESOURCE_TESTS") == "1",
                                   reason="resource tests skipped (NEARDUP_SKIP_RESOURCE_TESTS=1)")
RECORDS = synthetic_corpus(48, seed=21)
QUERIES = documents(RECORDS[::3]) + [Document.from_text("probe", RECORDS[5]["text"] + "\nA closing line of words.")]


# -- helpers ----------------------------------------------------------------------------------------------


def build(path: Path, keep_text: bool = True) -> Path:
    """An index of several segments (some merged) with removed documents."""
    with Index.open(str(path), writable=True, keep_text=keep_text) as index:
        index.add(documents(RECORDS[:30]), batch_size=10)
        index.remove("doc-3")
        index.remove("doc-11")
        index.add(documents(RECORDS[30:]), batch_size=9)
        index.remove("doc-40")  # removed after the last merge: still listed as removed
        index.remove("doc-44")
    return path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("pristine") / "idx")


@pytest.fixture()
def idx(pristine, tmp_path) -> Path:
    """A fresh copy of the pristine index, with a sibling folder and a query file beside it."""
    path = tmp_path / "idx"
    shutil.copytree(pristine, path)
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "precious.txt").write_text("not neardup's")
    write_jsonl(tmp_path / "queries.jsonl", RECORDS[::3])
    write_jsonl(tmp_path / "more.jsonl", [dict(r, id=f"more-{r['id']}") for r in synthetic_corpus(40, seed=99)])
    return path


def answers(path: Path) -> tuple:
    """Everything a reader can learn: size, every query's matches, every matched document."""
    with Index.open(str(path)) as index:
        found = index.query_many(QUERIES)
        ids = sorted({m.id for matches in found for m in matches})
        stored = [(index.get(id).text, index.get(id).metadata) for id in ids]
        return len(index), [[m.to_dict() | {"metadata": m.metadata} for m in ms] for ms in found], stored


def cli(*args: str) -> tuple[int, str, str]:
    """``neardup ARGS`` in this process: exit code, stderr, stdout."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(a) for a in args], out=out)
    return code, err.getvalue(), out.getvalue()


def cli_process(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "neardup", *map(str, args)], capture_output=True, text=True,
                          env=env, **kwargs)


def one_line_error(stderr: str, code: int, expected: int, naming: object = None) -> None:
    lines = [line for line in stderr.splitlines() if line.startswith("neardup: error")]
    assert code == expected, stderr
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    if naming is not None:
        assert str(naming) in lines[0], lines[0]


def tree(path: Path) -> dict[str, str]:
    """Every entry under ``path`` with a digest of its bytes (or its link target)."""
    out = {}
    for entry in sorted(path.rglob("*")):
        rel = str(entry.relative_to(path))
        if entry.is_symlink():
            out[rel] = "-> " + os.readlink(entry)
        elif entry.is_file():
            out[rel] = hashlib.sha256(entry.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def forge(path: Path, *statements: str, params: tuple = ()) -> None:
    """Change the database as a crafter would, then recompute every checksum neardup keeps of its
    metadata and manifest: what is left to catch the change is the meaning of the values."""
    from neardup.index.database import manifest_checksum as _manifest_checksum
    from neardup.index.database import meta_checksum as _meta_checksum
    db = sqlite3.connect(path / "neardup.sqlite")
    for statement in statements:
        db.execute(statement, params)
    listed = db.execute("select name, documents, checksums from segments order by name").fetchall()
    removed = [n for (n,) in db.execute("select number from removed order by number")]
    db.execute("update meta set value = ? where key = 'manifest_checksum'", (_manifest_checksum(listed, removed),))
    rows = dict(db.execute("select key, value from meta").fetchall())
    db.execute("update meta set value = ? where key = 'meta_checksum'", (_meta_checksum(rows),))
    db.commit()
    db.close()


def edit(path: Path, statement: str, params: tuple = ()) -> None:
    """Change the database without fixing any checksum."""
    db = sqlite3.connect(path / "neardup.sqlite")
    db.execute(statement, params)
    db.commit()
    db.close()


def segment_files(path: Path) -> list[Path]:
    return sorted(path.glob("seg-*/*.npy"))


def refused(path: Path, *, naming: object = None, tmp: Path | None = None) -> None:
    """Reading and writing both end in exit 3 with one line; the API raises IndexFormatError."""
    with pytest.raises(IndexFormatError):
        Index.open(str(path))
    code, err, _ = cli("query", path, tmp / "queries.jsonl" if tmp else path / "config.json")
    one_line_error(err, code, 3, naming)
    code, err, _ = cli("index", path, tmp / "more.jsonl" if tmp else path / "config.json")
    one_line_error(err, code, 3, naming)


# -- crafted folders --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", "../sibling", "seg-1/../x", "seg-000001/../../sibling", "/tmp", "seg-00001"])
@pytest.mark.parametrize("forged", [False, True])
def test_segment_names_in_the_manifest_never_lead_outside_the_folder(idx, name, forged):
    """A manifest naming '..', a sibling or an absolute path is damage (exit 3) for readers and
    writers; the merge the writer would run never starts; nothing outside the folder changes."""
    outside, inside = tree(idx.parent / "sibling"), tree(idx)
    first = sorted(p.name for p in idx.glob("seg-*"))[0]
    (forge if forged else edit)(idx, "update segments set name = ? where name = ?", params=(name, first))
    inside = tree(idx)
    refused(idx, naming=idx, tmp=idx.parent)
    assert tree(idx.parent / "sibling") == outside and tree(idx) == inside


def test_index_on_a_folder_that_is_not_an_index_touches_nothing(tmp_path):
    """A non-empty folder that is not an index (even with seg-* folders of its own) is refused
    with exit 2 and every file in it is left as it was."""
    folder = tmp_path / "photos"
    (folder / "seg-000001").mkdir(parents=True)
    (folder / "seg-000001" / "numbers.npy").write_bytes(b"mine")
    (folder / "seg-holiday").mkdir()
    (folder / "seg-holiday" / "beach.jpg").write_bytes(b"\xff\xd8")
    (folder / "notes.txt").write_text("keep me")
    before = tree(folder)
    write_jsonl(tmp_path / "in.jsonl", RECORDS[:3])
    code, err, _ = cli("index", folder, tmp_path / "in.jsonl")
    one_line_error(err, code, 2, folder)
    assert tree(folder) == before


def test_an_index_without_its_database_is_exit_3_and_nothing_is_deleted(idx):
    """Segments and a config without neardup.sqlite: an index that lost its database, for every
    command; never replaced by a new index, its segments never deleted."""
    (idx / "neardup.sqlite").unlink()
    before = tree(idx)
    for args in (("index", idx, idx.parent / "more.jsonl"), ("query", idx, idx.parent / "queries.jsonl"),
                 ("stats", idx), ("remove", idx, "doc-1"), ("verify", idx)):
        code, err, _ = cli(*args)
        one_line_error(err, code, 3, idx)
    assert tree(idx) == before


@pytest.mark.parametrize("target_exists", [False, True])
def test_a_write_lock_symlink_is_refused_and_nothing_is_created_outside(idx, target_exists):
    """write.lock pointing elsewhere: the writer refuses (exit 3), the target is neither created
    nor changed."""
    target = idx.parent / "sibling" / "lock-target"
    if target_exists:
        target.write_text("someone else's")
    (idx / "write.lock").unlink()
    (idx / "write.lock").symlink_to(target)
    before = tree(idx.parent / "sibling")
    code, err, _ = cli("index", idx, idx.parent / "more.jsonl")
    one_line_error(err, code, 3, idx / "write.lock")
    assert tree(idx.parent / "sibling") == before and target.exists() == target_exists


def test_a_query_never_changes_a_database_the_index_links_to(idx, tmp_path):
    """neardup.sqlite as a symlink to another database: refused, and that database (in rollback
    journal mode) keeps its bytes and its journal mode; no -wal or -shm appears beside it."""
    other = tmp_path / "other.sqlite"
    shutil.copy(idx / "neardup.sqlite", other)
    db = sqlite3.connect(other)
    db.execute("pragma journal_mode=delete")
    db.close()
    before = other.read_bytes()
    (idx / "neardup.sqlite").unlink()
    (idx / "neardup.sqlite").symlink_to(other)
    for args in (("query", idx, tmp_path / "queries.jsonl"), ("stats", idx), ("verify", idx)):
        code, err, _ = cli(*args)
        one_line_error(err, code, 3, idx / "neardup.sqlite")
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("other.sqlite*")) == ["other.sqlite"]


def test_symlinks_inside_segments_are_refused_and_never_followed_for_deletion(idx, tmp_path):
    """A segment file linked elsewhere is refused when read; an orphan segment folder that is a
    link is never entered by the writer's clean-up."""
    precious = tmp_path / "sibling" / "precious.txt"
    segment = sorted(idx.glob("seg-*"))[0]
    (segment / "sizes.npy").unlink()
    (segment / "sizes.npy").symlink_to(precious)
    refused(idx, naming=segment / "sizes.npy", tmp=tmp_path)
    assert precious.read_text() == "not neardup's"
    fresh = tmp_path / "fresh"
    build(fresh)
    (fresh / "seg-999999").symlink_to(tmp_path / "sibling", target_is_directory=True)
    (fresh / "seg-999998.tmp").symlink_to(tmp_path / "sibling", target_is_directory=True)
    with Index.open(str(fresh), writable=True) as index:
        index.add(documents(synthetic_corpus(3, seed=5)))
    assert precious.read_text() == "not neardup's"


def test_index_or_query_on_a_file_is_a_one_line_usage_error(tmp_path):
    """'neardup index FILE' and 'neardup query FILE' are exit 2, one line; the file is unchanged."""
    data = write_jsonl(tmp_path / "in.jsonl", RECORDS[:3])
    before = data.read_bytes()
    for args in (("index", data, data), ("query", data, data), ("stats", data), ("remove", data, "x")):
        code, err, _ = cli(*args)
        one_line_error(err, code, 2, data)
    assert data.read_bytes() == before


# -- damaged bytes ----------------------------------------------------------------------------------------


def damage(path: Path, rng: random.Random, kind: str) -> int:
    """Flip one bit, zero the 512-byte sector, or cut the file, at a random offset."""
    data = bytearray(path.read_bytes())
    offset = rng.randrange(len(data))
    if kind == "flip":
        data[offset] ^= 1 << rng.randrange(8)
    elif kind == "zero":
        start = offset - offset % 512
        data[start:start + 512] = bytes(len(data[start:start + 512]))
    else:
        del data[offset:]
    path.write_bytes(bytes(data))
    return offset


def check_damage(pristine: Path, work: Path, rel: Path, kind: str, rng: random.Random, expected: tuple,
                 outcomes: dict) -> None:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work)
    offset = damage(work / rel, rng, kind)
    what = f"{rel} {kind} at {offset}"
    try:
        got = answers(work)
    except IndexFormatError as err:
        assert str(work) in str(err), (what, str(err))
        code, stderr, _ = cli("query", work, work.parent / "queries.jsonl")
        one_line_error(stderr, code, 3, work)
        outcomes["error"] = outcomes.get("error", 0) + 1
        return
    assert got == expected, f"{what}: a different answer from damaged bytes"
    outcomes["same"] = outcomes.get("same", 0) + 1


@pytest.mark.parametrize("keep_text", [True, False])
def test_damage_at_random_offsets_of_every_file_is_an_error_or_changes_nothing(tmp_path, keep_text):
    """Every file of an index (each .npy, the database, config.json) flipped, zeroed by sector or
    cut at seeded random offsets: opening and querying raise IndexFormatError naming the file
    (CLI: exit 3, one line) or give exactly the undamaged answers — never a traceback, never
    another answer."""
    pristine = build(tmp_path / "pristine", keep_text=keep_text)
    write_jsonl(tmp_path / "queries.jsonl", RECORDS[::3])
    expected = answers(pristine)
    rng = random.Random(1000 + keep_text)
    files = sorted(p.relative_to(pristine) for p in pristine.rglob("*") if p.is_file() and p.stat().st_size)
    assert {"neardup.sqlite", "config.json"} <= {str(f) for f in files} and len(files) > 20
    outcomes: dict[str, int] = {}
    for rel in files:
        trials = 14 if rel.name == "neardup.sqlite" else 1
        for kind in ("flip", "zero", "cut"):
            for _ in range(trials):
                check_damage(pristine, tmp_path / "work", rel, kind, rng, expected, outcomes)
    assert outcomes.get("error", 0) > 2 * len(files), outcomes  # the damage was seen, not only survived


def test_a_zeroed_sector_of_article_signatures_is_an_error_not_a_lost_exact_match(idx):
    """Zeroing 512 bytes of article_signatures.npy used to drop an exact match silently."""
    path = max(idx.glob("seg-*/article_signatures.npy"), key=lambda p: p.stat().st_size)
    data = bytearray(path.read_bytes())
    data[512:1024] = bytes(512)
    path.write_bytes(bytes(data))
    refused(idx, naming=path, tmp=idx.parent)


def stored_row(idx: Path, id: str) -> dict:
    db = sqlite3.connect(idx / "neardup.sqlite")
    db.row_factory = sqlite3.Row
    row = dict(db.execute("select * from documents where id = ?", (id,)).fetchone())
    db.close()
    return row


def flipped(blob: bytes, byte: int = 0, bit: int = 0) -> bytes:
    data = bytearray(blob)
    data[byte] ^= 1 << bit
    return bytes(data)


@pytest.mark.parametrize("column, change", [
    ("digest", lambda b: flipped(b, 3)),        # 'exact' turned into 'near-duplicate'
    ("spans", lambda b: flipped(b, 8, 1)),      # evidence offsets shifted
    ("spans", lambda b: b""),                   # 'exact' with Jaccard 0
    ("text", lambda b: flipped(b, len(b) // 2)),  # a damaged compressed text: a traceback
    ("text", lambda b: b[:-4]),
    ("metadata", lambda b: b.replace("6", "7") if "6" in b else b + " "),
    ("size", lambda b: b + 1),
])
def test_a_changed_document_row_is_an_error_not_another_answer(idx, column, change):
    """A stored digest, spans, compressed text, metadata or size changed in the database is
    caught by the row's checksum when read: exit 3 naming the database, never an answer."""
    row = stored_row(idx, "doc-6")
    edit(idx, f"update documents set {column} = ? where id = 'doc-6'", (change(row[column]),))
    refused_on_read(idx, Document.from_text("q", RECORDS[6]["text"]))


def refused_on_read(idx: Path, query: Document) -> None:
    with Index.open(str(idx)) as index, pytest.raises(IndexFormatError, match=r"neardup\.sqlite"):
        index.query(query)
    write_jsonl(idx.parent / "one.jsonl", [{"id": "q", "text": query.text}])
    code, err, _ = cli("query", idx, idx.parent / "one.jsonl")
    one_line_error(err, code, 3, idx / "neardup.sqlite")


def test_a_flipped_bit_in_the_no_text_shingles_is_an_error(tmp_path):
    """In an index without texts, the stored shingle sequence is checked like the text."""
    path = build(tmp_path / "idx", keep_text=False)
    row = stored_row(path, "doc-6")
    edit(path, "update documents set paragraphs = ? where id = 'doc-6'", (flipped(row["paragraphs"], 20, 2),))
    refused_on_read(path, Document.from_text("q", RECORDS[6]["text"]))


@pytest.mark.parametrize("forged", [False, True])
def test_a_config_with_another_shingle_size_in_the_meta_table_is_an_error(idx, forged):
    """The meta table's configuration changed (shingle size 4): refused — by the meta checksum,
    or, with it recomputed, by the configuration digest every segment carries. Used to give
    0 matches with exit 0."""
    config = json.loads(sqlite3.connect(idx / "neardup.sqlite").execute(
        "select value from meta where key = 'config'").fetchone()[0])
    config["shingle_size"] = 4
    (forge if forged else edit)(idx, "update meta set value = ? where key = 'config'",
                                params=(json.dumps(config, indent=2, sort_keys=True),))
    refused(idx, naming=idx, tmp=idx.parent)


@pytest.mark.parametrize("value", ["4.5", "four", "", "5 ", "05x"])
def test_a_non_integer_format_version_is_an_error(idx, value):
    """format_version that is not the integer this version writes: exit 3, no traceback."""
    forge(idx, "update meta set value = ? where key = 'format_version'", params=(value,))
    refused(idx, naming=idx, tmp=idx.parent)


@pytest.mark.parametrize("checksums", ["not json", "[1, 2]", "{}", '{"numbers": "x"}', "null"])
def test_a_damaged_checksum_list_is_an_error(idx, checksums):
    """A segment's checksum list that is not JSON, or not the expected object: exit 3."""
    first = sorted(p.name for p in idx.glob("seg-*"))[0]
    forge(idx, "update segments set checksums = ? where name = ?", params=(checksums, first))
    refused(idx, naming=idx, tmp=idx.parent)


@pytest.mark.parametrize("statement", [
    "delete from segments where name = (select min(name) from segments)",   # a lost segment row
    "delete from removed",                                                  # removed documents back
    "update removed set number = number + 1",                               # another document gone
    "update segments set documents = documents + 1",
])
def test_a_changed_manifest_is_an_error(idx, statement):
    """The segment list and the removed numbers are checked against the manifest checksum: a
    lost row never loses or revives documents silently."""
    edit(idx, statement)
    refused(idx, naming=idx, tmp=idx.parent)


@pytest.mark.parametrize("key, value", [("next_number", "1"), ("next_segment", "2"), ("generation", "x")])
def test_damaged_counters_stop_the_writer(idx, key, value):
    """Counters that would make a writer reuse a document number or a segment name (or that are
    not numbers): the writer refuses before writing anything, exit 3."""
    before = tree(idx)
    edit(idx, "update meta set value = ? where key = ?", (value, key))
    code, err, _ = cli("index", idx, idx.parent / "more.jsonl")
    one_line_error(err, code, 3, idx)
    assert {k: v for k, v in tree(idx).items() if k != "neardup.sqlite"} == \
           {k: v for k, v in before.items() if k != "neardup.sqlite"}


@pytest.mark.parametrize("name, size", [("numbers.npy", 0), ("paragraph_items.npy", None), ("numbers.npy", None)])
def test_an_empty_or_flipped_segment_file_is_an_error(idx, name, size):
    """A segment .npy of 0 bytes, or one bit flipped in numbers / paragraph_items: exit 3 naming
    the file (each used to end in a traceback)."""
    path = max(idx.glob(f"seg-*/{name}"), key=lambda p: p.stat().st_size)
    if size == 0:
        path.write_bytes(b"")
    else:
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x10
        path.write_bytes(bytes(data))
    refused(idx, naming=path, tmp=idx.parent)


@pytest.mark.parametrize("sql, undo", [
    ("create trigger lose after insert on documents begin delete from documents where number = new.number; end",
     "drop trigger lose"),
    ("create trigger keep before delete on documents begin select raise(ignore); end", "drop trigger keep"),
    ("create view everything as select * from documents", "drop view everything"),
    ("create table extra(x)", "drop table extra"),
    ("create index by_size on documents(size)", "drop index by_size"),
])
def test_a_database_with_triggers_or_foreign_objects_is_refused(idx, sql, undo):
    """A trigger deleting rows (it lost 1,000 documents with exit 0), a view, a table or an index
    neardup does not create: refused by readers and writers, the documents untouched."""
    expected = answers(idx)
    edit(idx, sql)
    refused(idx, naming=idx / "neardup.sqlite", tmp=idx.parent)
    edit(idx, undo)
    assert answers(idx) == expected


def test_verify_finds_damage_no_reader_looks_at(idx):
    """'neardup verify' reads every byte: a damaged row of a document no query touches is exit 3."""
    assert cli("verify", idx)[0] == 0
    row = stored_row(idx, "doc-41")
    edit(idx, "update documents set text = ? where id = 'doc-41'", (flipped(row["text"], 5),))
    code, err, _ = cli("verify", idx)
    one_line_error(err, code, 3, idx / "neardup.sqlite")


# -- lost documents ---------------------------------------------------------------------------------------


def texts_by_id(path: Path) -> dict[str, str]:
    db = sqlite3.connect(f"file:{path / 'neardup.sqlite'}?mode=ro", uri=True)
    numbers = [n for (n,) in db.execute("select number from documents")]
    db.close()
    with Index.open(str(path)) as index:
        return {(stored := index.storage.document(n)).id: stored.text for n in numbers}


def test_kill_during_replace_leaves_the_old_or_the_new_version_of_every_document(tmp_path):
    """kill -9 at random moments of 'neardup index --replace': every document is there, in its
    old or its new version (--replace used to lose 678 of 2,000)."""
    old = [{"id": f"d{i}", "text": f"old version {i}: " + r["text"]} for i, r in enumerate(synthetic_corpus(1500, 4))]
    new = [{"id": f"d{i}", "text": f"new version {i}: " + r["text"]} for i, r in enumerate(synthetic_corpus(1500, 8))]
    path = tmp_path / "idx"
    assert cli_process("index", path, write_jsonl(tmp_path / "old.jsonl", old)).returncode == 0
    write_jsonl(tmp_path / "new.jsonl", new)
    versions = {r["id"]: {r["text"], n["text"]} for r, n in zip(old, new)}
    newest = {n["id"]: n["text"] for n in new}
    rng, mixed = random.Random(5), 0
    for _ in range(6):
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        process = subprocess.Popen([sys.executable, "-m", "neardup", "index", str(path),
                                    str(tmp_path / "new.jsonl"),
                                    "--replace", "--batch-size", "60", "--workers", "1"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_commits(path, rng.randint(1, 18), process)
        time.sleep(rng.uniform(0.0, 0.2))  # a random moment of the next batch
        process.send_signal(signal.SIGKILL)
        process.wait()
        texts = texts_by_id(path)
        assert set(texts) == set(versions), f"{len(texts)} of {len(versions)} documents after a kill"
        assert all(text in versions[id] for id, text in texts.items())
        replaced = sum(texts[id] == newest[id] for id in texts)
        mixed += 0 < replaced < len(texts)
        assert cli("verify", path)[0] == 0
    assert mixed >= 2, "no kill landed in the middle of a run"
    done = cli_process("index", path, tmp_path / "new.jsonl", "--replace", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["documents"] == 1500
    assert texts_by_id(path) == newest


@pytest.mark.parametrize("empty", ["", "... --- !!!", "\n\n  \t"])
def test_a_replacement_without_words_keeps_the_original(tmp_path, empty):
    """Replacing a document by one without a single word is a skip: the original stays, and the
    report never says added -1."""
    path = tmp_path / "idx"
    with Index.open(str(path), writable=True) as index:
        index.add(documents(RECORDS[:3]))
        report = index.add([Document.from_text("doc-1", empty)], on_duplicate="replace")
        assert (report.added, report.replaced, dict(report.skipped)) == (0, 0, {"no words": 1})
        assert index.get("doc-1").text == RECORDS[1]["text"] and len(index) == 3
    write_jsonl(tmp_path / "empty.jsonl", [{"id": "doc-2", "text": empty or " "}])
    code, _, out = cli("index", path, tmp_path / "empty.jsonl", "--replace", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["added"] == 0 and summary["replaced"] == 0 and summary["documents"] == 3
    with Index.open(str(path)) as index:
        assert index.get("doc-2").text == RECORDS[2]["text"]


# -- concurrency ------------------------------------------------------------------------------------------

_FLIPPER = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from neardup import Index
from test_diskstore import documents, synthetic_corpus
records = synthetic_corpus(int(sys.argv[2]), seed=31)
group = [r for r in records if r["id"] in set(sys.argv[4].split(","))]
deadline = time.monotonic() + float(sys.argv[5])
cycles = 0
with Index.open(sys.argv[1], writable=True) as index:
    while time.monotonic() < deadline:
        numbers = [index.storage.number_of(r["id"]) for r in group]
        index.storage.remove(numbers)                 # the whole group goes in one transaction
        time.sleep(0.02)
        index.add(documents(group))                   # and comes back in one
        cycles += 1
        time.sleep(0.02)
print(cycles)
"""


def test_queries_in_other_processes_see_one_snapshot_while_documents_are_removed_and_readded(tmp_path):
    """While another process removes a group of documents and adds it back, over and over, every
    query batch (API in this process, CLI in others) answers from one committed state: the whole
    group found or none of it; never a KeyError, never a traceback."""
    count = 150
    records = synthetic_corpus(count, seed=31)
    group = [r for r in records[:60] if r["n"] % 5 not in (3, 4)][:24]  # no copies among them
    path = tmp_path / "idx"
    with Index.open(str(path), writable=True) as index:
        index.add(documents(records), batch_size=25)
    queries = [Document.from_text(r["id"], r["text"]) for r in group]
    write_jsonl(tmp_path / "group.jsonl", group)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    seconds = 12
    flipper = subprocess.Popen([sys.executable, "-c", _FLIPPER, str(path), str(count), str(Path(__file__).parent),
                                ",".join(r["id"] for r in group), str(seconds)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    states = {"all": 0, "none": 0}
    cli_runs: list[subprocess.CompletedProcess] = []

    def cli_queries() -> None:
        while flipper.poll() is None:
            cli_runs.append(cli_process("query", path, tmp_path / "group.jsonl", "--json"))

    thread = threading.Thread(target=cli_queries)
    thread.start()
    try:
        with Index.open(str(path)) as reader:
            while flipper.poll() is None:
                found = [q.id in {m.id for m in ms} for q, ms in zip(queries, reader.query_many(queries))]
                assert all(found) or not any(found), f"a batch saw {sum(found)} of {len(found)}: two snapshots"
                states["all" if all(found) else "none"] += 1
                assert len(reader) in (count, count - len(group))
    finally:
        thread.join()
        out, err = flipper.communicate()
    assert flipper.returncode == 0, err
    assert int(out) >= 20 and states["all"] > 3 and states["none"] > 3, (out, states)
    assert len(cli_runs) >= 3
    for run in cli_runs:
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        found = {line["query"] for line in lines if line.get("id") == line["query"]}
        assert len(found) in (0, len(group)), f"a CLI run found {len(found)} of {len(group)}"


# -- the engine's arguments -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> Index:
    index = Index()
    index.add(documents(RECORDS[:5]))
    return index


HOSTILE = [
    ("top=-1", lambda i: i.query(RECORDS[0]["text"], top=-1), ConfigError, "top"),
    ("top=0", lambda i: i.query(RECORDS[0]["text"], top=0), ConfigError, "top"),
    ("top=1.5", lambda i: i.query(RECORDS[0]["text"], top=1.5), ConfigError, "top"),
    ("on_duplicate", lambda i: i.add(documents(RECORDS[:1]), on_duplicate="bogus"), ConfigError, "on_duplicate"),
    ("lsh_weights", lambda i: Config(lsh_weights=(1.5, -0.5)), ConfigError, "lsh_weights"),
    ("nan words", lambda i: Config(min_shared_words=math.nan), ConfigError, "min_shared_words"),
    ("inf words", lambda i: Config(min_shared_words=math.inf), ConfigError, "min_shared_words"),
    ("nan ratio", lambda i: Config(boilerplate_ratio=math.nan), ConfigError, "boilerplate_ratio"),
    ("inf ratio", lambda i: Config(boilerplate_ratio=math.inf), ConfigError, "boilerplate_ratio"),
    ("nan threshold", lambda i: i.query(RECORDS[0]["text"], threshold=math.nan), ConfigError, "threshold"),
    ("bands", lambda i: Config(paragraph_bands=(1.5, 2)), ConfigError, "paragraph_bands"),
    ("bands str", lambda i: Config(article_bands="ab"), ConfigError, "article_bands"),
    ("unknown option", lambda i: i.config.with_options(colour="red"), ConfigError, "colour"),
    ("open None", lambda i: Index.open(None), InputError, "folder"),
    ("open int", lambda i: Index.open(5), InputError, "path"),
    ("query None", lambda i: i.query(None), InputError, "query"),
    ("query int", lambda i: i.query(5), InputError, "query"),
    ("query_many None", lambda i: i.query_many(None), InputError, "query_many"),
    ("query_many text", lambda i: i.query_many("a text"), InputError, "query_many"),
    ("exclude_self", lambda i: i.query_many(["a b"], exclude_self="yes"), ConfigError, "exclude_self"),
    ("add texts", lambda i: i.add(["text"]), InputError, "Index.add"),
    ("add None", lambda i: i.add(None), InputError, "Index.add"),
    ("add workers", lambda i: i.add(documents(RECORDS[:1]), workers=-1), ConfigError, "workers"),
    ("remove None", lambda i: i.remove(None), InputError, "id"),
    ("get int", lambda i: i.get(3), InputError, "id"),
    ("span out of range", lambda i: Document("x", "abc", ((0, 10),)), InputError, "outside"),
    ("span reversed", lambda i: Document("x", "abcdef", ((4, 2),)), InputError, "before it starts"),
    ("spans overlapping", lambda i: Document("x", "abcdef", ((0, 4), (2, 5))), InputError, "overlaps"),
    ("span negative", lambda i: Document("x", "abcdef", ((-1, 2),)), InputError, "outside"),
    ("span floats", lambda i: Document("x", "abcdef", ((0.5, 2),)), InputError, "integers"),
    ("spans a string", lambda i: Document("x", "abcdef", "ab"), InputError, "spans"),
    ("many spans overlapping", lambda i: Document("x", "a" * 500, tuple((k, k + 3) for k in range(0, 400, 2))),
     InputError, "overlaps"),
    ("numpy spans reversed", lambda i: Document("x", "a" * 50, np.array([[5, 2]])), InputError, "before it starts"),
    ("id None", lambda i: Document(None, "abc", ()), InputError, "id"),
    ("text None", lambda i: Document("x", None, ()), InputError, "text"),
    ("from_text id", lambda i: Document.from_text(None, "abc"), InputError, "id"),
    ("from_paragraphs None", lambda i: Document.from_paragraphs("x", None), InputError, "paragraphs"),
    ("metadata list", lambda i: Document.from_text("x", "abc", ["a"]), InputError, "metadata"),
    ("repeats None", lambda i: repeats(None), InputError, "document"),
    ("repeats config", lambda i: repeats("a b c", config="fast"), ConfigError, "config"),
    ("signature None", lambda i: i.similar_to_signature(None), InputError, "MinHash"),
    ("storage", lambda i: Index(storage=object()), ConfigError, "Storage"),
]


@pytest.mark.parametrize("call, error, word", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_arguments_raise_the_documented_exception(small, call, error, word):
    """Each bad argument raises ConfigError or InputError (both ValueErrors) saying what is wrong,
    never a raw TypeError, AttributeError or IndexError — and changes nothing."""
    before = len(small)
    with pytest.raises(error, match=word) as caught:
        call(small)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)
    assert len(small) == before


def test_valid_spans_are_accepted_and_normalised():
    """Lists, numpy arrays and empty paragraphs are fine; spans come back as int tuples."""
    document = Document("x", "abc def", [[0, 3], (4, 4), np.array([4, 7])])
    assert document.paragraphs == ((0, 3), (4, 4), (4, 7))
    assert Document("y", "a" * 300, np.arange(200).reshape(-1, 2)).paragraphs[-1] == (198, 199)


# -- unbounded work ---------------------------------------------------------------------------------------

_REPEATS_CHILD = r"""
import random, resource, sys, time
from neardup import repeats
rng = random.Random(3)
vocabulary = [f"w{i}" for i in range(400)]
base = [rng.choice(vocabulary) for _ in range(30)]
paragraphs = []
for _ in range(int(sys.argv[1])):
    words = list(base)
    words[rng.randrange(30)] = rng.choice(vocabulary)
    paragraphs.append(" ".join(words))
text = "\n".join(paragraphs)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
report = repeats(text)
print(time.perf_counter() - start, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
      report.repeated_paragraphs, len(report.groups))
"""


@resource_test
def test_repeats_of_30000_similar_paragraphs_is_bounded():
    """30,000 paragraphs that all resemble each other (one word changed of 30): seconds and a
    few hundred MB at most (it ran for minutes and reached 3.1 GB)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", _REPEATS_CHILD, "30000"], capture_output=True, text=True, env=env,
                         timeout=300, check=True).stdout.split()
    seconds, growth_mb, repeated, groups = float(out[0]), float(out[1]), int(out[2]), int(out[3])
    assert repeated == 29_999 and groups == 1  # every paragraph repeats the first, near or exactly
    assert seconds < 20 and growth_mb < 500, (seconds, growth_mb)


def test_repeats_finds_near_repeats_among_many_paragraphs_as_among_few():
    """Above the all-pairs limit (LSH buckets with a cap) the groups are those found below it."""
    import neardup.match.repetition as repetition
    rng = random.Random(8)
    vocabulary = [f"v{i}" for i in range(3000)]
    stories = [[rng.choice(vocabulary) for _ in range(40)] for _ in range(60)]
    paragraphs = []
    for k in range(600):
        words = list(stories[k % 60])
        words[rng.randrange(40)] = rng.choice(vocabulary)
        paragraphs.append(" ".join(words))
    text = "\n".join(paragraphs)
    few = repeats(text)
    limit = repetition._ALL_PAIRS_LIMIT
    try:
        repetition._ALL_PAIRS_LIMIT = 10
        many = repeats(text)
    finally:
        repetition._ALL_PAIRS_LIMIT = limit
    assert [g.paragraphs for g in many.groups] == [g.paragraphs for g in few.groups]
    assert len(few.groups) == 60 and few.repeated_paragraphs == 540


@resource_test
def test_dedup_of_a_thousand_near_identical_one_line_documents_is_quick():
    """989 one-line documents differing in one word did not finish in a minute (quadratic buckets)."""
    from neardup.pipeline.dedup import dedup
    rng = random.Random(1)
    base = ["the", "minister", "said", "the", "port", "strike", "talks", "would", "resume", "on", "friday",
            "after", "the", "union", "vote"]
    docs = []
    for i in range(1000):
        words = list(base)
        words[rng.randrange(len(words))] = f"x{i}"
        docs.append(Document.from_text(f"d{i}", " ".join(words)))
    start = time.perf_counter()
    result = dedup(docs, workers=1)
    assert time.perf_counter() - start < 10
    assert result.summary.large_buckets > 0 and len(result) == 1000


# -- full disks, read-only folders, closed pipes ---------------------------------------------------------


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_full_disk_during_a_batch_is_one_line_and_leaves_the_index_intact(idx, monkeypatch):
    """Writing a segment fails with ENOSPC: exit 2, one line naming the file, the index as it was."""
    import neardup.index.segments as segments
    before = answers(idx)
    calls = {"n": 0}
    real = segments._write_array

    def fails_on_the_third(path, value):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(path, value)

    monkeypatch.setattr(segments, "_write_array", fails_on_the_third)
    code, err, _ = cli("index", idx, idx.parent / "more.jsonl", "--batch-size", "10")
    one_line_error(err, code, 2, idx)
    assert "No space left" in err
    monkeypatch.setattr(segments, "_write_array", real)
    assert answers(idx) == before and not list(idx.glob("seg-*.tmp"))
    assert cli("verify", idx)[0] == 0


def test_a_full_disk_during_a_merge_is_one_line_and_loses_no_batch(idx, monkeypatch):
    """The merged segment cannot be written: exit 2, one line; every committed batch is there,
    the merge inputs are untouched, and the next write merges."""
    import neardup.index.segments as segments
    monkeypatch.setattr(segments, "_write_pair", _disk_full)  # band tables are streamed in merges only
    before = answers(idx)[0]
    code, err, _ = cli("index", idx, idx.parent / "more.jsonl", "--batch-size", "10")
    one_line_error(err, code, 2, idx)
    assert "merging" in err and "committed" in err
    with Index.open(str(idx)) as index:
        after = len(index)
    assert after > before and cli("verify", idx)[0] == 0 and not list(idx.glob("seg-*.tmp"))
    monkeypatch.undo()
    assert cli("index", idx, idx.parent / "more.jsonl")[0] == 0
    with Index.open(str(idx)) as index:
        assert len(index) == before + 40 and index.storage.stats()["segments"] < 4


def test_a_failing_database_write_is_one_line_and_leaves_the_index_intact(idx, monkeypatch):
    """SQLite failing to grow the database (disk full) inside the batch's transaction: the
    transaction rolls back, exit 2 with one line naming the database, no 'cannot rollback'."""
    import neardup.index.disk as diskstore
    before = answers(idx)

    class FullDisk(sqlite3.Connection):
        def executemany(self, sql, rows):
            if sql.startswith("insert into documents"):
                raise sqlite3.OperationalError("database or disk is full")
            return super().executemany(sql, rows)

    real_connect = sqlite3.connect
    monkeypatch.setattr(diskstore.sqlite3, "connect", lambda *a, **k: real_connect(*a, factory=FullDisk, **k))
    code, err, _ = cli("index", idx, idx.parent / "more.jsonl")
    one_line_error(err, code, 2, idx / "neardup.sqlite")
    assert "No space left" in err and "rollback" not in err
    monkeypatch.undo()
    assert answers(idx) == before and cli("verify", idx)[0] == 0 and not list(idx.glob("seg-*.tmp"))


@pytest.fixture()
def small_disk(tmp_path):
    """A 3 MB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here: " + done.stderr.decode(errors="replace").strip())
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_is_one_line_no_signal_and_the_index_stays_intact(small_disk, tmp_path):
    """On a 3 MB tmpfs, batches are added until the disk is full: each run ends with exit 0 or a
    one-line exit 2 (never a traceback or SIGBUS), and the index verifies after every run with
    never fewer documents."""
    path = small_disk / "idx"
    counts, failures = [], 0
    for part in range(6):
        source = write_jsonl(tmp_path / f"part{part}.jsonl",
                             [dict(r, id=f"{part}-{r['id']}") for r in synthetic_corpus(500, seed=40 + part)])
        run = cli_process("index", path, source, "--batch-size", "100")
        assert run.returncode in (0, 2) and "Traceback" not in run.stderr, run.stderr
        if run.returncode == 2:
            failures += 1
            one_line_error(run.stderr, run.returncode, 2)
            assert "No space left" in run.stderr
        check = cli_process("verify", path)
        assert check.returncode == 0, check.stderr
        with Index.open(str(path)) as index:
            counts.append(len(index))
    assert failures >= 2 and counts == sorted(counts) and counts[0] > 0


def _as_nobody(function, *args):
    """Run ``function(*args)`` in a forked child with the uid and gid of nobody; its result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            result = function(*args)
        except BaseException as err:
            result = ["exception", f"{type(err).__name__}: {err}"]
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.fixture()
def shared_folder(idx):
    """A copy of the index where another user can reach it (pytest's own folders are private)."""
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="neardup-readonly-"))
    try:
        os.chmod(folder, 0o755)
        shutil.copytree(idx, folder / "idx")
        for name in ("queries.jsonl", "more.jsonl"):
            shutil.copy(idx.parent / name, folder / name)
            os.chmod(folder / name, 0o644)
        yield folder / "idx"
    finally:
        for path in [folder, *folder.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        shutil.rmtree(folder)


def test_an_index_this_user_cannot_write_answers_queries_and_refuses_writes(shared_folder):
    """Folder and files without write permission (read as the user nobody when the tests run as
    root, whom permissions do not stop): queries, stats and verify work; index and remove are
    one-line errors; nothing changes."""
    idx = shared_folder
    for path in [idx, *idx.rglob("*")]:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    before = tree(idx)
    expected = cli("query", idx, idx.parent / "queries.jsonl", "--json")[2]
    if os.geteuid() == 0:
        if _as_nobody(lambda: [os.getuid(), os.access(idx / "neardup.sqlite", os.R_OK)]) != [65534, True]:
            pytest.skip("cannot drop privileges to the user nobody here")
        def run(*args: object) -> list:
            result = _as_nobody(lambda: list(cli(*args)))
            assert result[0] != "exception", result
            return result
    else:
        run = cli  # permissions bite a normal user already
    code, err, out = run("query", idx, idx.parent / "queries.jsonl", "--json")
    assert code == 0 and out == expected and "Traceback" not in err
    assert run("stats", idx)[0] == 0 and run("verify", idx)[0] == 0
    for args in (("index", idx, idx.parent / "more.jsonl"), ("remove", idx, "doc-1")):
        code, err, _ = run(*args)
        one_line_error(err, code, 2, idx)
    for path in [idx, *idx.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    after = tree(idx)
    assert {k: v for k, v in after.items() if not k.startswith("neardup.sqlite-")} == \
           {k: v for k, v in before.items() if not k.startswith("neardup.sqlite-")}


@pytest.mark.parametrize("shell", [
    "neardup query {idx} {q} --json | head -c 10 > /dev/null",
    "neardup query {idx} {q} >&-",
    "neardup query {idx} {q} > /dev/full",
    "neardup query {idx} <&-",
    "neardup stats {idx} > /dev/full",
])
def test_closed_or_full_pipes_end_without_a_traceback(idx, shell):
    """stdout closed, full or cut short, stdin closed: an exit code and at most one line."""
    neardup = f"{sys.executable} -m neardup"
    command = shell.replace("neardup", neardup, 1).format(idx=idx, q=idx.parent / "queries.jsonl")
    run = subprocess.run(["bash", "-c", "set -o pipefail; " + command], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "src")), timeout=60)
    assert "Traceback" not in run.stderr and len(run.stderr.splitlines()) <= 1, run.stderr
    assert run.returncode in (0, 1, 2, 141), run.returncode
