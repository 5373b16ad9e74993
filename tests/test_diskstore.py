"""The persistent index: same answers as in memory, crash-safe, one writer with concurrent readers."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neardup import Config, ConfigError, Document, Index, IndexFormatError, InputError
from processes import wait_for_commits

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = ["port", "union", "strike", "crane", "talks", "minister", "council", "tram", "budget", "vote", "ship",
              "harbour", "city", "river", "bridge", "station", "airport", "farmer", "harvest", "price", "market",
              "bank", "rate", "growth", "export", "court", "judge", "appeal", "police", "school", "teacher",
              "hospital", "doctor", "nurse", "storm", "flood", "drought", "energy", "grid"]


def synthetic_corpus(count: int, seed: int = 0) -> list[dict]:
    """Invented documents: every fifth one a truncated copy of the one before."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        if i % 5 == 4:
            paragraphs = records[-1]["text"].split("\n")[:3]
        else:
            paragraphs = [" ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(20, 60)))
                          for _ in range(rng.randint(3, 8))]
        records.append({"id": f"doc-{i}", "text": "\n".join(paragraphs), "n": i})
    return records


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def documents(records: list[dict]) -> list[Document]:
    return [Document.from_text(r["id"], r["text"], {"n": r["n"]}) for r in records]


def cli(*args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.Popen([sys.executable, "-m", "neardup", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kwargs)


def results(matches) -> list[dict]:
    return [m.to_dict() for m in matches]


def test_disk_index_answers_like_the_memory_index(tmp_path):
    """Built in several batches, closed and reopened, the index gives the in-memory answers."""
    records = synthetic_corpus(120)
    with Index.open(str(tmp_path / "idx"), writable=True) as index:
        report = index.add(documents(records), batch_size=17)
        assert report.added == 120
    memory = Index()
    memory.add(documents(records))
    queries = documents(records[::7])
    with Index.open(str(tmp_path / "idx")) as index:
        assert len(index) == 120 and index.get("doc-3").metadata == {"n": 3}
        assert [results(m) for m in index.query_many(queries)] == [results(m) for m in memory.query_many(queries)]
        assert index.storage.stats()["segments"] < 120 // 17  # tiers were merged


def test_remove_replace_and_resume(tmp_path):
    """Removed ids are gone after reopening; re-adding skips, --replace replaces."""
    records = synthetic_corpus(30)
    path = str(tmp_path / "idx")
    with Index.open(path, writable=True) as index:
        index.add(documents(records), batch_size=10)
        assert index.remove("doc-3") and not index.remove("doc-3")
    with Index.open(path, writable=True) as index:
        assert "doc-3" not in index and len(index) == 29
        assert "doc-3" not in {m.id for m in index.query(documents(records[3:4])[0])}
        report = index.add(documents(records[:5]))
        assert report.added == 1 and report.skipped["duplicate id"] == 4
        report = index.add([Document.from_text("doc-0", records[1]["text"])], on_duplicate="replace")
        assert report.replaced == 1
        assert "doc-0" in {m.id for m in index.query(documents(records[1:2])[0])}


def test_no_text_index_answers_exactly_from_stored_shingles(tmp_path):
    """Without stored texts the index keeps shingle sequences: the same exact answers as with texts."""
    records = synthetic_corpus(20)
    query = documents(records[3:4])[0]
    with Index.open(str(tmp_path / "text"), writable=True) as with_text:
        with_text.add(documents(records))
        expected = [m.to_dict() for m in with_text.query(query)]
    with Index.open(str(tmp_path / "idx"), writable=True, keep_text=False) as index:
        index.add(documents(records))
        matches = index.query(query)
        match = {m.id: m for m in matches}["doc-4"]
        assert match.jaccard_method == "exact" and match.shared_paragraphs
        assert [m.to_dict() for m in matches] == expected
        assert index.get("doc-4").text is None


def test_parameters_are_checked_on_open(tmp_path):
    """Opening with other fingerprint or LSH parameters is an error; thresholds may differ."""
    path = str(tmp_path / "idx")
    with Index.open(path, Config(shingle_size=4), writable=True) as index:
        index.add(documents(synthetic_corpus(5)))
    with pytest.raises(ConfigError):
        Index.open(path, Config(shingle_size=5))
    with pytest.raises(ConfigError):
        Index.open(path, Config(shingle_size=4, paragraph_lsh_threshold=0.8))
    with Index.open(path, Config(shingle_size=4, threshold=0.95)) as index:
        assert index.config.threshold == 0.95 and len(index) == 5
    with pytest.raises(InputError):
        Index.open(str(tmp_path / "nothing-here"))


def test_format_version_and_damage_are_detected(tmp_path):
    """A newer format, a truncated segment file or a flipped byte is an error, never a wrong answer."""
    import sqlite3
    path = tmp_path / "idx"
    with Index.open(str(path), writable=True) as index:
        index.add(documents(synthetic_corpus(10)))
    segment = next(path.glob("seg-*"))
    keys = segment / "paragraph_keys.npy"
    data = bytearray(keys.read_bytes())
    data[-8] ^= 0x01  # the low byte of the last key: a valid-looking table, wrong content
    keys.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum"):  # checked when first read: before any answer
        Index.open(str(path))
    keys.write_bytes(bytes(data[:-8]))
    with pytest.raises(IndexFormatError):
        Index.open(str(path))
    db = sqlite3.connect(path / "neardup.sqlite")
    db.execute("update meta set value = '99' where key = 'format_version'")
    db.commit()
    db.close()
    with pytest.raises(IndexFormatError):
        Index.open(str(path))


def test_segments_hold_no_pickle(tmp_path):
    """Every stored array loads with allow_pickle=False; the config is plain JSON."""
    path = tmp_path / "idx"
    with Index.open(str(path), writable=True) as index:
        index.add(documents(synthetic_corpus(10)))
    for file in path.glob("seg-*/*.npy"):
        np.load(file, allow_pickle=False)
    assert Config.from_json((path / "config.json").read_text()) == Config()


def check_consistent(path: str, total: dict[str, dict]) -> int:
    """The index opens, every listed document is whole and findable; returns its size."""
    with Index.open(path) as index:
        count = len(index)
        numbers = index.storage._database().execute("select number, id from documents").fetchall()
        for number, id in numbers[:: max(1, len(numbers) // 25)]:
            stored = index.storage.document(number)
            assert stored.text == total[id]["text"]
            assert id in {m.id for m in index.query(Document.from_text("probe", stored.text))}
            index.storage.article_signature(number)
            assert index.storage.article_signature(number).shape == (128,)
        segment_numbers = np.concatenate([s.numbers for s in index.storage._tables.segments]) \
            if index.storage._tables.segments else np.zeros(0, np.int64)
        assert set(int(n) for n, _ in numbers) <= set(segment_numbers.tolist())
        leftovers = [p.name for p in Path(path).glob("seg-*") if p.name not in
                     {s.name for s in index.storage._tables.segments}]
    return count, leftovers


def test_kill_during_ingest_never_corrupts_and_rerun_resumes(tmp_path):
    """kill -9 at random moments of 'neardup index': the index always opens whole; re-running completes it."""
    records = synthetic_corpus(6000, seed=3)
    corpus = write_jsonl(tmp_path / "corpus.jsonl", records)
    by_id = {r["id"]: r for r in records}
    path = str(tmp_path / "idx")
    rng = random.Random(11)
    counts = []
    for _ in range(7):  # 150 batches in all; at most 7 x 15 committed before the last kill
        process = cli("index", path, str(corpus), "--batch-size", "40", "--wait", "10")
        wait_for_commits(path, rng.randint(2, 15), process)
        time.sleep(rng.uniform(0.0, 0.1))  # a random moment of the next batch
        process.send_signal(signal.SIGKILL)
        process.wait()
        if os.path.exists(os.path.join(path, "neardup.sqlite")):
            count, _ = check_consistent(path, by_id)
            counts.append(count)
    assert counts == sorted(counts), "a committed batch was lost"
    assert len(set(counts)) >= 3, f"kills did not land mid-ingest: {counts}"
    print("documents after each kill:", counts)
    finished = cli("index", path, str(corpus), "--batch-size", "40", "--json")
    out, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["documents"] == 6000 and summary["added"] + summary["skipped"] == 6000
    count, leftovers = check_consistent(path, by_id)
    assert count == 6000 and leftovers == []


def test_readers_query_while_a_writer_ingests_and_a_second_writer_is_refused(tmp_path):
    """Queries from another process work during ingest; a second writer fails with a clear error."""
    records = synthetic_corpus(2500, seed=5)
    corpus = write_jsonl(tmp_path / "corpus.jsonl", records)
    path = str(tmp_path / "idx")
    with Index.open(path, writable=True) as index:
        index.add(documents(records[:50]))
    writer = cli("index", path, str(corpus), "--batch-size", "50")
    try:
        # Wait, reading only, until the writer has committed a batch: it then holds the lock. (Probing with a
        # writable open would race the writer for the lock and could make *it* the refused one.)
        deadline = time.monotonic() + 60
        while True:
            with Index.open(path) as reader:
                if len(reader) > 50:
                    break
            assert time.monotonic() < deadline and writer.poll() is None, "the writer never committed"
            time.sleep(0.02)
        second = cli("index", path, str(corpus))
        _, err = second.communicate(timeout=60)
        assert second.returncode == 4 and b"another process is writing" in err and b"Traceback" not in err
        sizes = []
        query = Document.from_text("q", records[10]["text"])
        while writer.poll() is None and len(sizes) < 200:
            with Index.open(path) as reader:
                sizes.append(len(reader))
                assert "doc-10" in {m.id for m in reader.query(query)}
        assert sizes == sorted(sizes)
    finally:
        _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err.decode()
    with Index.open(path) as reader:
        assert len(reader) == 2500


def test_merging_segments_drops_removed_documents_and_keeps_answers(tmp_path):
    """Removals before a tier merge disappear from the merged tables; every other answer is unchanged."""
    records = synthetic_corpus(80)
    path = str(tmp_path / "idx")
    with Index.open(path, writable=True) as index:
        index.add(documents(records[:30]), batch_size=10)
        for id in ("doc-3", "doc-4", "doc-12"):
            assert index.remove(id)
        index.add(documents(records[30:]), batch_size=10)  # enough batches to merge tiers
        assert index.storage.stats()["segments"] < 8
        tables = index.storage._tables
        stored = np.concatenate([s.numbers for s in tables.segments])
        assert not tables.removed.size or all(n not in stored for n in tables.removed)
    kept = [r for r in records if r["id"] not in ("doc-3", "doc-4", "doc-12")]
    memory = Index()
    memory.add(documents(kept))
    with Index.open(path) as index:
        assert len(index) == 77
        queries = documents(records[:40:3])
        ids = lambda results: [[m.id for m in matches] for matches in results]
        assert ids(index.query_many(queries)) == ids(memory.query_many(queries))


def test_interleaved_number_ranges_merge_correctly(tmp_path, monkeypatch):
    """Segments whose document numbers interleave (after merges of different tiers) merge in number order."""
    import neardup.index.segments as segments
    monkeypatch.setattr(segments, "MERGE_FANOUT", 2)
    monkeypatch.setattr(segments, "_CHUNK", 7)  # signatures copied in many small chunks
    records = synthetic_corpus(90)
    path = str(tmp_path / "idx")
    with Index.open(path, writable=True) as index:
        for size in (30, 5, 5, 30, 5, 5, 5, 5):
            start = len(index)
            index.add(documents(records[start:start + size]))
        numbers = [s.numbers for s in index.storage._tables.segments]
        assert all(np.all(np.diff(n) > 0) for n in numbers)
        total = len(index)
    memory = Index()
    memory.add(documents(records[:total]))
    with Index.open(path) as index:
        queries = documents(records[:total:4])
        ids = lambda results: [[m.id for m in matches] for matches in results]
        assert ids(index.query_many(queries)) == ids(memory.query_many(queries))
        for number in range(total):
            assert np.array_equal(index.storage.article_signature(number), memory.storage.article_signature(number))
