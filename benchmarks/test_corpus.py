"""Checks of the benchmark corpus generator (benchmarks/corpus.py): not part of the test suite (it reads the
shared data, which CI may not have, and takes ~1 minute).

    PYTHONPATH=src python -m pytest benchmarks/test_corpus.py -q
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus

pytestmark = pytest.mark.skipif(bool(corpus.missing_data(corpus.DATA)), reason="shared data missing")


@pytest.fixture(scope="module")
def model() -> corpus.Model:
    return corpus.build_model(corpus.training_text(corpus.DATA))


def generate(tmp: Path, name: str, docs: int, seed: int, model: corpus.Model) -> tuple[Path, Path]:
    path, truth = tmp / f"{name}.jsonl", tmp / f"{name}.truth.jsonl"
    corpus.write_corpus(path, truth, "realistic", docs, seed, corpus.DATA, progress=False, model=model)
    return path, truth


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_bytes_for_a_seed_and_size(tmp_path: Path, model: corpus.Model) -> None:
    a, ta = generate(tmp_path, "a", 3000, 11, model)
    b, tb = generate(tmp_path, "b", 3000, 11, model)
    c, _ = generate(tmp_path, "c", 3000, 12, model)
    assert digest(a) == digest(b) and digest(ta) == digest(tb)
    assert digest(a) != digest(c)


def test_fresh_model_same_bytes(tmp_path: Path, model: corpus.Model) -> None:
    """The chains themselves are rebuilt identically (no set or hash order in the training)."""
    a, _ = generate(tmp_path, "a", 500, 3, model)
    b, _ = generate(tmp_path, "b", 500, 3, corpus.build_model(corpus.training_text(corpus.DATA)))
    assert digest(a) == digest(b)


def test_smaller_corpus_is_a_prefix(tmp_path: Path, model: corpus.Model) -> None:
    small, _ = generate(tmp_path, "small", corpus.BATCH + 500, 5, model)
    large, _ = generate(tmp_path, "large", corpus.BATCH + 2000, 5, model)
    head = small.read_bytes()
    assert large.read_bytes()[:len(head)] == head


def test_records_and_truth(tmp_path: Path, model: corpus.Model) -> None:
    path, truth_path = generate(tmp_path, "t", 12_000, 9, model)
    records = [json.loads(line) for line in path.open(encoding="utf-8")]
    truth = corpus.load_truth(truth_path)
    assert len(records) == len(truth) == 12_000
    by_id = {r["id"]: r for r in records}
    order = {r["id"]: i for i, r in enumerate(records)}
    kinds = {t["kind"] for t in truth.values()}
    assert kinds == {"original", "notice", *corpus.COPY_KINDS}
    for record in records:
        assert set(record) == {"id", "text", "source", "date", "title"}
        assert record["text"].startswith(record["title"]) or truth[record["id"]]["kind"] == "embedded"
        t = truth[record["id"]]
        if t["kind"] in ("original", "notice"):
            assert t["story"] == record["id"] and t["original"] is None
            continue
        original = by_id[t["original"]]
        assert t["story"] == t["original"] and truth[t["original"]]["kind"] == "original"
        assert order[t["original"]] < order[record["id"]] and original["date"] < record["date"]
        if t["kind"] == "exact":
            assert record["text"] == original["text"] and record["source"] == original["source"]
        else:
            assert record["text"] != original["text"]
    sizes = [len(r["text"].encode("utf-8")) for r in records]
    assert 1500 <= sum(sizes) / len(sizes) <= 2500


def test_missing_data_exits_2(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(Path(corpus.__file__)), "--docs", "10", "--out",
                          str(tmp_path / "x.jsonl"), "--data", str(tmp_path / "nowhere")],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "bbc-news.jsonl" in run.stderr and "news-scrape-2019-06-01.jsonl" in run.stderr


def test_cache_reuses(tmp_path: Path) -> None:
    first = corpus.ensure_corpus("realistic", 200, 4, corpus.DATA, tmp_path)
    stamp = first[0].stat().st_mtime_ns
    second = corpus.ensure_corpus("realistic", 200, 4, corpus.DATA, tmp_path)
    assert first == second and second[0].stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in first)
