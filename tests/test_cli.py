"""Tests of the neardup command line: help, query, repeats, input errors and exit codes."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neardup.cli.main import main
from neardup.index.disk import FORMAT_VERSION

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
WIRE = "examples/wire.jsonl"
TRUTH = "examples/wire.truth.jsonl"
STORY = "examples/query-story.txt"
PAGE = "examples/repeated-page.txt"

GOPHER_KEYS = ["dup_line_frac"] + [f"dup_{n}gram_char_frac" for n in range(5, 11)] + [
    f"top_{n}gram_char_frac" for n in range(2, 5)]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    """Run every test from the repository root so the example paths resolve as in the docs."""
    monkeypatch.chdir(ROOT)


def run(argv, capsys, stdin: bytes | None = None, monkeypatch=None):
    """Call neardup.cli.main in-process; return (exit code, stdout text, stderr text)."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue(), capsys.readouterr().err


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _wire() -> list[dict]:
    return json_lines((EXAMPLES / "wire.jsonl").read_text(encoding="utf-8"))


def _truth() -> list[dict]:
    return json_lines((EXAMPLES / "wire.truth.jsonl").read_text(encoding="utf-8"))


def _story_id() -> str:
    """The original whose text is the query story."""
    story = (EXAMPLES / "query-story.txt").read_text(encoding="utf-8").strip()
    originals = {t["id"] for t in _truth() if t["kind"] == "original"}
    found = [d["id"] for d in _wire() if d["id"] in originals and d["text"].strip() == story]
    assert len(found) == 1, found
    return found[0]


def _subprocess(args, stdin: bytes | None = None):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "neardup", *args], input=stdin, capture_output=True,
                          cwd=ROOT, env=env, timeout=60)


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize("argv", [["--help"], ["query", "--help"], ["repeats", "--help"]])
def test_help_exits_zero(argv, capsys):
    """--help of the command and of each subcommand exits 0 and prints usage; subcommands show examples."""
    with pytest.raises(SystemExit) as info:
        main(argv, out=io.StringIO())
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: neardup")
    if argv[0] != "--help":
        assert "examples:" in text
    else:
        assert "query" in text and "repeats" in text


def test_no_command_is_usage_error(capsys):
    """Running without a command is a usage error, exit 2."""
    with pytest.raises(SystemExit) as info:
        main([], out=io.StringIO())
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_query_without_corpus_needs_an_index(capsys, tmp_path):
    """query without --corpus reads its first argument as an index; a non-index is an input error, exit 2."""
    assert main(["query", STORY], out=io.StringIO()) == 2
    assert "not a neardup index" in capsys.readouterr().err
    assert main(["query"], out=io.StringIO()) == 2
    assert "--corpus" in capsys.readouterr().err


# --------------------------------------------------------------------------- query


@pytest.fixture(scope="module")
def story_matches():
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = main(["query", "--corpus", WIRE, STORY, "--json"], out=out)
    finally:
        os.chdir(cwd)
    assert code == 0
    return json_lines(out.getvalue())


def test_query_json_record_shape(story_matches):
    """Every JSON line of query has the documented keys and types, and kind is exact/near-duplicate/partial."""
    assert story_matches
    for match in story_matches:
        assert {"query", "id", "kind", "jaccard", "containment", "shared_paragraphs"} <= set(match)
        assert match["query"] == STORY
        assert match["kind"] in {"exact", "near-duplicate", "partial"}
        assert 0.0 <= match["jaccard"] <= 1.0
        assert set(match["containment"]) == {"query_in_match", "match_in_query"}
        assert all(0.0 <= v <= 1.0 for v in match["containment"].values())
        for pair in match["shared_paragraphs"]:
            assert set(pair) >= {"query_paragraph", "match_paragraph", "similarity", "query_span", "match_span"}
            assert 0.0 <= pair["similarity"] <= 1.0
            assert isinstance(pair["query_paragraph"], int) and isinstance(pair["match_paragraph"], int)


def test_query_spans_point_into_texts(story_matches):
    """Each shared paragraph's spans are non-empty ranges inside the query text and the match's text."""
    story = (EXAMPLES / "query-story.txt").read_text(encoding="utf-8")
    texts = {d["id"]: d["text"] for d in _wire()}
    for match in story_matches:
        for pair in match["shared_paragraphs"]:
            qs, qe = pair["query_span"]
            ms, me = pair["match_span"]
            assert 0 <= qs < qe <= len(story)
            assert 0 <= ms < me <= len(texts[match["id"]])


def test_query_finds_every_copy_and_no_distractor(story_matches):
    """The story's full/truncated/dropped/extended copies are all found, the original as exact, and no distractor."""
    story_id = _story_id()
    truth = _truth()
    copies = {t["id"] for t in truth if t["story"] == story_id and t["kind"] in {"full", "truncated", "dropped",
                                                                               "extended"}}
    distractors = {t["id"] for t in truth if t["kind"] == "distractor"}
    found = {m["id"] for m in story_matches}
    assert copies and copies <= found
    assert not found & distractors
    kinds = {m["id"]: m["kind"] for m in story_matches}
    assert kinds[story_id] == "exact"
    assert len(found) == len(story_matches)  # each document reported once


def test_query_top_1(capsys):
    """--top 1 gives at most one result line per query, and it is one of the story's documents."""
    code, out, _ = run(["query", "--corpus", WIRE, STORY, "--json", "--top", "1"], capsys)
    assert code == 0
    matches = json_lines(out)
    assert len(matches) == 1
    story_id = _story_id()
    assert {t["story"] for t in _truth() if t["id"] == matches[0]["id"]} == {story_id}


def test_query_jsonl_with_two_queries(tmp_path, capsys):
    """A JSON Lines query file with two documents gives results for both query ids."""
    wire = {d["id"]: d for d in _wire()}
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"id": "q-recall", "text": wire["recall-original"]["text"]}) + "\n"
                       + json.dumps({"id": "q-harbour", "text": wire["harbour-original"]["text"]}) + "\n",
                       encoding="utf-8")
    code, out, _ = run(["query", "--corpus", WIRE, str(queries), "--json"], capsys)
    assert code == 0
    matches = json_lines(out)
    assert {m["query"] for m in matches} == {"q-recall", "q-harbour"}
    by_query = {q: {m["id"] for m in matches if m["query"] == q} for q in ("q-recall", "q-harbour")}
    assert "recall-original" in by_query["q-recall"] and "harbour-original" in by_query["q-harbour"]
    assert not by_query["q-recall"] & by_query["q-harbour"]


def test_query_table_output(capsys):
    """Without --json, query prints a header line per query with the match count, then one row per match."""
    code, out, _ = run(["query", "--corpus", WIRE, STORY], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"{STORY}: ") and "match" in lines[0]
    count = int(lines[0].split(": ")[1].split()[0])
    assert count >= 1 and len(lines) == 2 + count
    assert "recall-original" in out


def test_query_unrelated_text_has_no_match(tmp_path, capsys):
    """A query sharing no text with the corpus gives one {"query", "matches": 0} JSON line (so a batch
    shows every query asked) and a '0 matches' table line."""
    query = tmp_path / "unrelated.txt"
    query.write_text("Completely unrelated words about quantum gardening and purple submarines in winter.\n"
                     "Another sentence entirely invented for this test without overlap anywhere.\n", encoding="utf-8")
    code, out, _ = run(["query", "--corpus", WIRE, str(query), "--json"], capsys)
    assert code == 0 and json_lines(out) == [{"query": str(query), "matches": 0}]
    code, out, _ = run(["query", "--corpus", WIRE, str(query)], capsys)
    assert code == 0 and out.strip() == f"{query}: 0 matches"


@pytest.mark.parametrize("option, value", [("--threshold", "1.5"), ("--threshold", "-0.1"),
                                           ("--min-containment", "1.01"), ("--min-containment", "-1")])
def test_query_threshold_out_of_range(option, value, capsys):
    """--threshold/--min-containment outside [0, 1] exit 2 with one 'neardup: error:' line and no output."""
    code, out, err = run(["query", "--corpus", WIRE, STORY, option, value], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neardup: error:")
    assert option.lstrip("-").replace("-", "_") in lines[0]


def test_query_top_zero_is_usage_error(capsys):
    """--top 0 exits 2 with a one-line error."""
    code, _, err = run(["query", "--corpus", WIRE, STORY, "--top", "0"], capsys)
    assert code == 2 and err.strip().splitlines() == ["neardup: error: --top must be at least 1"]


def test_query_from_stdin(monkeypatch, capsys):
    """'-' as the query reads the query text from stdin, with id '-'."""
    story = (EXAMPLES / "query-story.txt").read_bytes()
    code, out, _ = run(["query", "--corpus", WIRE, "-", "--json"], capsys, stdin=story, monkeypatch=monkeypatch)
    assert code == 0
    matches = json_lines(out)
    assert matches and {m["query"] for m in matches} == {"-"}
    assert _story_id() in {m["id"] for m in matches}


def test_query_stdin_is_default(monkeypatch, capsys):
    """With no query argument, query reads stdin."""
    story = (EXAMPLES / "query-story.txt").read_bytes()
    code, out, _ = run(["query", "--corpus", WIRE, "--json"], capsys, stdin=story, monkeypatch=monkeypatch)
    assert code == 0 and _story_id() in {m["id"] for m in json_lines(out)}


def test_query_stdin_json_lines(monkeypatch, capsys):
    """JSON Lines on stdin are read as separate queries with their own ids."""
    wire = {d["id"]: d for d in _wire()}
    data = (json.dumps({"id": "s1", "text": wire["transit-original"]["text"]}) + "\n").encode()
    code, out, _ = run(["query", "--corpus", WIRE, "-", "--json"], capsys, stdin=data, monkeypatch=monkeypatch)
    assert code == 0
    matches = json_lines(out)
    assert {m["query"] for m in matches} == {"s1"} and "transit-original" in {m["id"] for m in matches}


# --------------------------------------------------------------------------- corpus input errors


def _corpus_with_bad_line(tmp_path) -> Path:
    lines = (EXAMPLES / "wire.jsonl").read_text(encoding="utf-8").splitlines()
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines[:3] + ["{this is not json"] + lines[3:]) + "\n", encoding="utf-8")
    return corpus


def test_corpus_bad_line_default_skips(tmp_path, capsys):
    """A malformed corpus line is skipped: exit 0, stderr names file:line and a summary with the count."""
    corpus = _corpus_with_bad_line(tmp_path)
    code, out, err = run(["query", "--corpus", str(corpus), STORY, "--json"], capsys)
    assert code == 0
    assert f"{corpus}:4" in err
    assert "skipped 1" in err and "read 26 documents" in err
    assert _story_id() in {m["id"] for m in json_lines(out)}


def test_corpus_bad_line_strict_fails(tmp_path, capsys):
    """With --strict a malformed corpus line exits 2 with an error naming file and line, and prints no result."""
    corpus = _corpus_with_bad_line(tmp_path)
    code, out, err = run(["query", "--strict", "--corpus", str(corpus), STORY, "--json"], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].startswith(f"neardup: error: {corpus}:4: ")


def test_missing_corpus_file(tmp_path, capsys):
    """A corpus file that does not exist exits 2 with an error naming it."""
    missing = tmp_path / "nope.jsonl"
    code, out, err = run(["query", "--corpus", str(missing), STORY], capsys)
    assert code == 2 and out == ""
    assert err.startswith("neardup: error:") and str(missing) in err


def test_missing_query_file(tmp_path, capsys):
    """A query file that does not exist exits 2 with an error naming it."""
    missing = tmp_path / "nope.txt"
    code, _, err = run(["query", "--corpus", WIRE, str(missing)], capsys)
    assert code == 2 and str(missing) in err and err.startswith("neardup: error:")


def test_corpus_duplicate_ids_skipped(tmp_path, capsys):
    """A corpus id seen twice is skipped, and stderr names where it was first seen."""
    corpus = tmp_path / "dup.jsonl"
    corpus.write_text(json.dumps({"id": "x", "text": "One story text here."}) + "\n"
                      + json.dumps({"id": "x", "text": "Another story text."}) + "\n", encoding="utf-8")
    code, _, err = run(["query", "--corpus", str(corpus), STORY], capsys)
    assert code == 0
    assert f"{corpus}:2" in err and f"first at {corpus}:1" in err and "skipped 1" in err


def test_many_skips_are_capped_then_summarised(tmp_path, capsys):
    """After 20 skip messages the rest are only counted, and the summary gives the full count."""
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text(json.dumps({"id": "ok", "text": "A good line of text."}) + "\n" + "{bad\n" * 25,
                      encoding="utf-8")
    code, _, err = run(["query", "--corpus", str(corpus), STORY], capsys)
    assert code == 0
    assert sum(1 for line in err.splitlines() if line.startswith("neardup: skipped ")) == 20
    assert "more records skipped" in err
    assert "read 1 documents, skipped 25 (25 not valid JSON)" in err


def test_id_and_text_field_options(tmp_path, capsys):
    """--id-field and --text-field read other JSON fields for the corpus."""
    wire = {d["id"]: d for d in _wire()}
    corpus = tmp_path / "custom.jsonl"
    corpus.write_text(json.dumps({"url": "https://x/recall", "body": wire["recall-original"]["text"]}) + "\n",
                      encoding="utf-8")
    code, out, err = run(["query", "--corpus", str(corpus), STORY, "--json", "--id-field", "url",
                          "--text-field", "body"], capsys)
    assert code == 0 and "skipped" not in err
    assert [m["id"] for m in json_lines(out)] == ["https://x/recall"]


# --------------------------------------------------------------------------- repeats


def test_repeats_json(capsys):
    """repeats --json on the repeated page: 27 paragraphs, 13 repeated, fraction 0.5, 13 pairs, Gopher keys."""
    code, out, _ = run(["repeats", PAGE, "--json"], capsys)
    assert code == 0
    (report,) = json_lines(out)
    assert report["id"] == PAGE
    assert report["paragraphs"] == 27
    assert report["repeated_paragraphs"] == 13
    assert report["duplicate_fraction"] == 0.5
    assert len(report["groups"]) == 13
    assert all(len(group["paragraphs"]) == 2 for group in report["groups"])
    assert all(group["paragraphs"][1] - group["paragraphs"][0] == 13 for group in report["groups"])
    for key in GOPHER_KEYS:
        assert key in report and 0.0 <= report[key] <= 1.0


def test_repeats_table(capsys):
    """repeats without --json prints a non-empty table mentioning '13 groups' and one row per group."""
    code, out, _ = run(["repeats", PAGE], capsys)
    assert code == 0 and out.strip()
    assert "13 groups" in out.splitlines()[0]
    assert sum(1 for line in out.splitlines() if ". paragraphs " in line) == 13


def test_repeats_no_repetition(tmp_path, capsys):
    """A document without repeated paragraphs has no groups and a duplicate fraction of 0."""
    page = tmp_path / "plain.txt"
    page.write_text("The first paragraph has enough words to be a body paragraph here.\n"
                    "The second paragraph talks about something else entirely, with other words.\n", encoding="utf-8")
    code, out, _ = run(["repeats", str(page), "--json"], capsys)
    (report,) = json_lines(out)
    assert code == 0 and report["groups"] == [] and report["duplicate_fraction"] == 0
    assert report["repeated_paragraphs"] == 0 and report["paragraphs"] == 2


def test_repeats_stdin(monkeypatch, capsys):
    """repeats '-' reads the page from stdin, with id '-'."""
    data = (EXAMPLES / "repeated-page.txt").read_bytes()
    code, out, _ = run(["repeats", "-", "--json"], capsys, stdin=data, monkeypatch=monkeypatch)
    (report,) = json_lines(out)
    assert code == 0 and report["id"] == "-" and report["repeated_paragraphs"] == 13


def test_repeats_jsonl_one_line_per_document(tmp_path, capsys):
    """repeats on JSON Lines gives one report per document, in input order, skipping bad lines."""
    page = (EXAMPLES / "repeated-page.txt").read_text(encoding="utf-8")
    data = tmp_path / "pages.jsonl"
    data.write_text(json.dumps({"id": "p1", "text": page}) + "\n" + "[]\n"
                    + json.dumps({"id": "p2", "text": "Short unique page text."}) + "\n", encoding="utf-8")
    code, out, err = run(["repeats", str(data), "--json"], capsys)
    reports = json_lines(out)
    assert code == 0 and [r["id"] for r in reports] == ["p1", "p2"]
    assert reports[0]["repeated_paragraphs"] == 13 and f"{data}:2" in err


# --------------------------------------------------------------------------- real process


@pytest.mark.parametrize("args", [
    ["query", "--corpus", "does/not/exist.jsonl", STORY],
    ["query", "--corpus", WIRE, STORY, "--threshold", "2"],
    ["repeats", "does/not/exist.txt"],
    ["query", STORY],
], ids=["missing corpus", "bad threshold", "missing input", "not an index"])
def test_subprocess_user_errors_exit_2_without_traceback(args):
    """A user error in a real process exits 2 with a message and no Python traceback."""
    result = _subprocess(args)
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "Traceback" not in err
    assert re.search(r"^neardup( query| repeats)?: error: ", err, re.MULTILINE)
    assert result.stdout == b""


def test_subprocess_strict_bad_corpus(tmp_path):
    """In a real process, --strict with a malformed corpus line exits 2, names file:line, no traceback."""
    corpus = _corpus_with_bad_line(tmp_path)
    result = _subprocess(["query", "--strict", "--corpus", str(corpus), STORY])
    err = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in err and f"{corpus}:4" in err


def test_subprocess_query_from_stdin_succeeds():
    """In a real process, a query piped on stdin exits 0 and prints JSON lines for the story's copies."""
    story = (EXAMPLES / "query-story.txt").read_bytes()
    result = _subprocess(["query", "--corpus", WIRE, "--json"], stdin=story)
    assert result.returncode == 0, result.stderr.decode()
    ids = {json.loads(line)["id"] for line in result.stdout.decode().splitlines()}
    assert _story_id() in ids and "Traceback" not in result.stderr.decode()


def test_subprocess_lone_surrogate_id_no_traceback(tmp_path):
    """A corpus/query id with a lone surrogate escape never crashes the process with a traceback."""
    data = tmp_path / "surrogate.jsonl"
    data.write_bytes(b'{"id": "bad\\ud800id", "text": "Some words that make a paragraph of text."}\n')
    result = _subprocess(["repeats", str(data)])
    err = result.stderr.decode()
    assert result.returncode == 0 and "Traceback" not in err


def test_index_query_remove_stats_round_trip(tmp_path, capsys):
    """index creates and extends; query INDEX finds copies; remove and stats report; re-index skips."""
    idx = str(tmp_path / "news.idx")
    out = io.StringIO()
    assert main(["index", idx, WIRE, "--json"], out=out) == 0
    summary = json.loads(out.getvalue())
    assert summary["added"] == 26 and summary["documents"] == 26
    out = io.StringIO()
    assert main(["index", idx, WIRE, "--json"], out=out) == 0
    assert json.loads(out.getvalue())["skipped_reasons"] == {"duplicate id": 26}
    out = io.StringIO()
    assert main(["query", idx, STORY, "--json"], out=out) == 0
    ids = {json.loads(line)["id"] for line in out.getvalue().splitlines()}
    assert {"recall-original", "recall-metro-pulse", "recall-riverbend-times"} <= ids
    assert main(["remove", idx, "recall-metro-pulse", "no-such-id"], out=io.StringIO()) == 2
    assert "no document 'no-such-id'" in capsys.readouterr().err
    out = io.StringIO()
    assert main(["stats", idx, "--json"], out=out) == 0
    stats = json.loads(out.getvalue())
    assert stats["documents"] == 25 and stats["format_version"] == FORMAT_VERSION and stats["config"]["num_perm"] == 128
    assert stats["bytes_on_disk"] > 0
    assert main(["query", idx, STORY, "--shingle-size", "3"], out=io.StringIO()) == 2
    assert "shingle_size" in capsys.readouterr().err


def test_version_says_whether_the_compiled_kernel_runs() -> None:
    fast = _subprocess(["--version"])
    assert fast.returncode == 0 and b"neardup" in fast.stdout
    forced = subprocess.run([sys.executable, "-m", "neardup", "--version"], capture_output=True,
                            env={**os.environ, "NEARDUP_KERNEL": "0"})
    assert b"numpy path" in forced.stdout
    from neardup import native

    assert (b"compiled kernel" in fast.stdout) == native.built()
