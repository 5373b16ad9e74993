"""Bad input never crashes, hangs or lies; a failed write leaves the index as it was."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neardup import Document, Index, normalize, repeats
from neardup.cli.main import main
from neardup.io.reader import Reader

ROOT = Path(__file__).resolve().parents[1]
any_text = st.text(alphabet=st.characters(), max_size=400)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(any_text, min_size=1, max_size=6))
def test_any_unicode_indexes_queries_and_repeats(texts):
    """Random Unicode (controls, NULs, surrogates, marks) goes through every API without an exception."""
    index = Index()
    documents = [Document.from_text(f"d{i}", t) for i, t in enumerate(texts)]
    index.add(documents)
    for document in documents:
        for match in index.query(document):
            assert 0.0 <= match.jaccard <= 1.0 and 0.0 <= match.query_in_match <= 1.0
        report = repeats(document)
        assert 0.0 <= report.duplicate_fraction <= 1.0
        assert "\n" not in normalize(document.text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(
    st.binary(max_size=60),
    st.builds(lambda v: json.dumps(v).encode(), st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8)),
    st.builds(lambda i, t: json.dumps({"id": i, "text": t}).encode(), st.integers(0, 5), any_text),
), max_size=12))
def test_any_bytes_as_json_lines_are_read_or_counted(lines, tmp_path):
    """Whatever the bytes of a JSON Lines file, every non-blank line is read or skipped with a reason."""
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
    reader = Reader(unique_ids=True)
    read = list(reader.documents([str(path)]))
    content = path.read_bytes().removeprefix(b"\xef\xbb\xbf")  # a leading BOM marks the encoding only
    nonblank = sum(1 for line in content.split(b"\n") if line.strip())
    assert len(read) + sum(reader.stats.skipped.values()) == nonblank


def test_deeply_nested_json_is_a_counted_skip(tmp_path):
    """A line of 100,000 nested brackets is skipped as invalid, not a RecursionError."""
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000 + b"\n" + b'{"id": "ok", "text": "fine words here"}\n')
    reader = Reader()
    assert [d.id for d in reader.documents([str(path)])] == ["ok"]
    assert sum(reader.stats.skipped.values()) == 1


def test_a_hundred_megabyte_line_is_skipped_with_a_limit_or_read_within_it(tmp_path):
    """A 100 MB single line is refused by the default record limit, quickly and with a reason."""
    path = tmp_path / "huge.txt"
    with open(path, "wb") as handle:
        for _ in range(100):
            handle.write(b"word " * 209_716)
    reader = Reader()
    start = time.monotonic()
    assert list(reader.documents([str(path)])) == []
    assert reader.stats.skipped["record too large"] == 1 and time.monotonic() - start < 10


def test_a_long_single_line_within_the_limit_is_indexed(tmp_path):
    """A 5 MB line without a break is one paragraph, fingerprinted and found again."""
    text = " ".join(f"w{i % 5000}" for i in range(800_000))
    index = Index()
    index.add([Document.from_text("long", text)])
    assert index.query(Document.from_text("q", text))[0].kind == "exact"


def test_a_million_one_word_paragraphs_is_bounded(tmp_path):
    """A document of a million one-word lines is skipped by the paragraph limit, or handled below it."""
    path = tmp_path / "lines.txt"
    path.write_bytes(b"word\n" * 1_000_000)
    reader = Reader()
    assert list(reader.documents([str(path)])) == []
    assert reader.stats.skipped["too many paragraphs"] == 1
    report = repeats("\n".join(["word"] * 50_000 + ["other"] * 50_000))
    assert report.repeated_paragraphs == 99_998 and report.body_paragraphs == 0


def test_empty_files_and_folders_are_clear(tmp_path):
    """An empty text file is a counted skip; an empty JSON Lines file reads nothing; both exit 0."""
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    out = io.StringIO()
    assert main(["repeats", str(tmp_path / "empty.txt"), str(tmp_path / "empty.jsonl"), "--json"], out=out) == 0
    assert out.getvalue() == ""


@settings(max_examples=25, deadline=None)
@given(args=st.lists(st.sampled_from(["query", "repeats", "index", "dedup", "stats", "remove", "--json",
                                      "--corpus", "--top", "-1", "0", "2", "--threshold", "1.5", "x", "--strict",
                                      "--out", "--clusters", "--keep", "nonsense", "--workers", "--"]),
                     max_size=7))
def test_any_command_line_ends_with_an_exit_code_not_a_traceback(args, tmp_path_factory):
    """Random argument lists never raise out of main(): argparse exits 2 or a command returns a code."""
    folder = tmp_path_factory.mktemp("cli")
    args = [str(folder / a) if a == "x" else a for a in args]
    empty_stdin = io.TextIOWrapper(io.BytesIO(b""))
    here = os.getcwd()
    os.chdir(folder)  # words like "index" become paths: keep whatever they create out of the repository
    try:
        with mock.patch.object(sys, "stdin", empty_stdin):
            code = main(args, out=io.StringIO())
    except SystemExit as exit:
        code = exit.code
    finally:
        os.chdir(here)
    assert code in (0, 2, 3, 4)


def test_failed_segment_write_leaves_the_index_as_it_was(tmp_path, monkeypatch):
    """A write error (disk full) in the middle of a batch leaves the index unchanged and usable."""
    path = str(tmp_path / "idx")
    docs = [Document.from_text(f"d{i}", f"story number {i} about the harbour strike and the union talks " * 3)
            for i in range(40)]
    with Index.open(path, writable=True) as index:
        index.add(docs[:20])
    import neardup.index.segments as segments
    calls = {"n": 0}
    real_write = segments._write_array

    def failing_write(path, value):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(28, "No space left on device")
        return real_write(path, value)

    monkeypatch.setattr(segments, "_write_array", failing_write)
    with Index.open(path, writable=True) as index, pytest.raises(OSError):
        index.add(docs[20:])
    monkeypatch.setattr(segments, "_write_array", real_write)
    with Index.open(path, writable=True) as index:
        assert len(index) == 20 and not list(Path(path).glob("seg-*.tmp"))
        assert index.add(docs[20:]).added == 20 and len(index) == 40


def test_missing_segment_is_detected(tmp_path):
    """Deleting a segment folder makes opening fail clearly, not answer with half the corpus."""
    import shutil
    path = tmp_path / "idx"
    with Index.open(str(path), writable=True) as index:
        index.add([Document.from_text("a", "some words for the index to hold here")])
    shutil.rmtree(next(path.glob("seg-*")))
    result = subprocess.run([sys.executable, "-m", "neardup", "stats", str(path)], capture_output=True,
                            env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 3 and b"segment" in result.stderr and b"Traceback" not in result.stderr
