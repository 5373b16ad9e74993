"""The Spark engine: the local engine's clusters, representatives, kinds and scores, whatever the
partitioning; dedup against a reference corpus, on both engines; the command's files.

One SparkSession (``local[2]``) for the whole module: Spark takes half a minute to start here.
Without pyspark or Java the Spark tests skip and say why; under CI (``CI`` set, as ``.ci/run`` does)
or with ``NEARDUP_REQUIRE_SPARK=1`` they fail instead, so CI never skips them.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import corpora
from neardup import Config, Document
from neardup.pipeline.dedup import dedup as local_dedup
from neardup.pipeline.spark_stages import grouped_chunks

pa = pytest.importorskip("pyarrow", reason="the Spark engine's batch functions speak Arrow: pip install pyarrow")

POLICIES = ("first", "longest", "earliest", "cleanest")
SEEDS = (1, 2, 3)


# -- the session, or why there is none ---------------------------------------------------------------------


def _why_no_spark() -> str | None:
    try:
        import pandas  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as err:
        return f"pyspark is not installed ({err}): pip install 'neardup[spark]' (make test installs it)"
    java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if os.environ.get("JAVA_HOME") \
        else shutil.which("java")
    if java is None:
        return "no Java runtime (java on the PATH or in JAVA_HOME/bin): the Spark engine needs Java 17 or later"
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        return f"{java} -version failed ({err}): the Spark engine needs a working Java 17 or later"
    return None


@pytest.fixture(scope="module")
def spark():
    reason = _why_no_spark()
    if reason is not None:
        if os.environ.get("NEARDUP_REQUIRE_SPARK") == "1" or os.environ.get("CI"):
            pytest.fail(f"CI or NEARDUP_REQUIRE_SPARK=1, but {reason}")
        pytest.skip(reason)
    from neardup.spark import session

    # Adaptive execution off for speed on tiny data (it plans every shuffle twice); the 3-partition
    # equality test turns it back on.
    spark, made = session("local[2]", [("spark.ui.enabled", "false"), ("spark.sql.shuffle.partitions", "3"),
                                       ("spark.sql.adaptive.enabled", "false"),
                                       ("spark.sql.execution.arrow.maxRecordsPerBatch", "16"),
                                       ("spark.driver.memory", "1g")])
    spark.sparkContext.setLogLevel("ERROR")
    yield spark
    if made:
        spark.stop()


# -- the corpus: invented stories with copies of every kind, and the bundled wire corpus ----------------------


@pytest.fixture(scope="module")
def records(wire) -> list[dict]:
    """Rows in input order: three invented corpora (ids made distinct), notices whose figures alone
    differ (and two re-sends), then the 26 wire documents."""
    rows = [{"id": f"c{seed}-{item.id}", "text": "\n".join(item.paragraphs), "date": item.date}
            for seed in SEEDS for item in corpora.make_corpus(seed)]
    rows += [{"id": d.id, "text": d.text, "date": None} for d in corpora.figure_notices(random.Random(4), 5)]
    rows += [{"id": d["id"], "text": d["text"], "date": d["date"]} for d in wire]
    return [dict(r, order=k) for k, r in enumerate(rows)]


def documents(rows: list[dict]) -> list[Document]:
    return [Document.from_text(r["id"], r["text"], {"date": r["date"]}) for r in rows]


def frame(spark, rows: list[dict]):
    return spark.createDataFrame([(r["order"], r["id"], r["text"], r["date"]) for r in rows],
                                 "order long, id string, text string, date string")


def local_table(result) -> dict[str, tuple]:
    """What must be equal, per document: cluster, representative, kind and the four scores."""
    return {a.id: (a.cluster, a.representative, a.kind, a.jaccard, a.doc_in_representative,
                   a.representative_in_doc, a.coverage, a.differs_from) for a in result}


def spark_table(frame_) -> dict[str, tuple]:
    return {r["id"]: (r["cluster"], r["representative"], r["kind"], r["jaccard"], r["doc_in_representative"],
                      r["representative_in_doc"], r["coverage"], r["differs_from"]) for r in frame_.collect()}


def differences(expected: dict[str, tuple], got: dict[str, tuple]) -> list[tuple]:
    return [(k, expected.get(k), got.get(k)) for k in sorted(set(expected) | set(got)) if expected.get(k) != got.get(k)]


# -- no Spark needed ---------------------------------------------------------------------------------------


def test_grouped_chunks_never_split_a_group():
    """Chunks of a key-sorted stream hold whole groups, at least min_rows rows each (but the last)."""
    rng = np.random.default_rng(5)
    keys = np.sort(rng.integers(0, 40, 500))
    batches = [pa.RecordBatch.from_pydict({"k": keys[i:i + 13]}) for i in range(0, len(keys), 13)]
    chunks = list(grouped_chunks(batches, "k", min_rows=30))
    seen = [np.asarray(c.column("k").to_numpy()) for c in chunks]
    assert np.array_equal(np.concatenate(seen), keys)
    for earlier, later in itertools.pairwise(seen):
        assert earlier[-1] < later[0]
    assert all(len(s) >= 30 for s in seen[:-1])


def _unique_text(rows: list[dict]) -> dict:
    """A row whose text no other row has (so that its exact copy can only be its copy)."""
    texts = [r["text"] for r in rows]
    return next(r for r in rows if texts.count(r["text"]) == 1)


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_same_clusters_as_local_whatever_the_partitions(spark, records, partitions):
    """Every policy: the same clusters, representatives, kinds and scores as the local engine, with
    the rows shuffled into 1, 3 or 8 partitions (order given by a column) and shuffles of as many."""
    from neardup import spark as nd

    df = frame(spark, records).repartition(partitions)
    spark.conf.set("spark.sql.adaptive.enabled", str(partitions == 3).lower())
    for keep in POLICIES:
        expected = local_table(local_dedup(documents(records), keep=keep))
        result = nd.run(df, keep=keep, order_col="order", partitions=partitions, chunk_rows=7)
        got = spark_table(result.frame)
        result.release()
        assert differences(expected, got) == [], keep
        assert result.summary.removed == sum(not v[1] for v in expected.values())
    spark.conf.set("spark.sql.adaptive.enabled", "false")


def test_reading_order_and_large_buckets(spark, records):
    """Without an order column the order is the reading order (one partition here); buckets over a
    tiny cap take their pivots as locally; duplicate ids and rows without text are skipped."""
    from neardup import spark as nd

    config = Config(bucket_cap=2, bucket_pivots=1)
    rows = records + [dict(records[3], order=len(records)), dict(records[5], order=len(records) + 1, text=None)]
    df = spark.createDataFrame([(r["id"], r["text"], r["date"]) for r in rows], "id string, text string, date string")
    result = nd.run(df.coalesce(1), config=config)
    expected = local_dedup(documents(records), config=config)
    assert differences(local_table(expected), spark_table(result.frame)) == []
    assert result.summary.large_buckets == expected.summary.large_buckets > 0
    assert result.summary.largest_bucket == expected.summary.largest_bucket
    assert result.summary.candidate_pairs == expected.summary.candidate_pairs
    assert result.summary.skipped == {"duplicate id": 1, "field 'text' must be a string or a list of strings": 1}
    kept = sorted(r["id"] for r in nd.kept(df, result.frame).collect())
    representatives = {a.id for a in expected if a.representative}
    assert kept == sorted(r["id"] for r in rows if r["id"] in representatives)  # every row of a kept id
    assert nd.kept(df, result.frame).columns == df.columns
    result.release()


def test_against_a_reference_corpus(spark, records):
    """dedup(new, reference=old) on Spark gives what neardup.dedup(new, reference=old) gives."""
    from neardup import spark as nd

    original = _unique_text(records[:40])
    reference, new = records[:40], records[40:] + [dict(original, id="copy-of-" + original["id"])]
    for keep in ("longest",):
        expected = local_table(local_dedup(documents(new), reference=documents(reference), keep=keep))
        got = nd.dedup(frame(spark, new).repartition(3), keep=keep, reference=frame(spark, reference),
                       order_col="order", partitions=3)
        assert differences(expected, spark_table(got)) == [], keep
        assert expected["copy-of-" + original["id"]][:3] == (original["id"], False, "exact")


def test_checkpointed_stages_are_reused(spark, records, tmp_path, caplog):
    """With checkpoint_dir every stage is written as Parquet with a marker; a second run of the same
    input and options reads every stage back (no hashing) and gives the same result."""
    import logging

    from neardup import spark as nd

    df = frame(spark, records[:60])
    first = spark_table(nd.dedup(df, order_col="order", partitions=2, checkpoint_dir=str(tmp_path)))
    assert (tmp_path / "prints" / "_NEARDUP_STAGE").exists()
    with caplog.at_level(logging.INFO, logger="neardup.pipeline.spark_engine"):
        again = spark_table(nd.dedup(df, order_col="order", partitions=2, checkpoint_dir=str(tmp_path)))
    assert again == first == local_table(local_dedup(documents(records[:60])))
    assert "stage prints: reusing" in caplog.text


def test_component_round_limit_is_an_error(spark, records):
    """Connected components stop at the round limit with an error that names the option."""
    from neardup import spark as nd

    with pytest.raises(nd.ComponentsError, match="max_component_rounds"):
        nd.dedup(frame(spark, records), order_col="order", partitions=2, max_component_rounds=0)


def test_command_writes_the_local_files(spark, tmp_path, examples):
    """neardup dedup --engine spark writes the CLUSTERS and KEPT files of the local command: byte
    for byte as JSON Lines, the same tables as Parquet."""
    from neardup.cli.main import Console, build_parser, main
    from neardup.cli.spark import run_spark_dedup

    corpus = examples / "wire.jsonl"
    for suffix in (".jsonl", ".parquet"):
        local, remote = tmp_path / f"local{suffix}", tmp_path / f"spark{suffix}"
        assert main(["dedup", str(corpus), "--out", f"{local}.kept{suffix}", "--clusters",
                     f"{local}.clusters{suffix}", "-q", "--keep", "earliest"]) == 0
        args = build_parser().parse_args(["dedup", str(corpus), "--out", f"{remote}.kept{suffix}", "--clusters",
                                          f"{remote}.clusters{suffix}", "-q", "--keep", "earliest", "--json"])
        args.spark_partitions = 3
        out = io.StringIO()
        assert run_spark_dedup(args, out, Console(quiet=True)) == 0
        assert json.loads(out.getvalue())["clusters"] == 13  # recall-coastal-herald carries a story of its own
        for part in ("clusters", "kept"):  # the sidecars, as the local command writes them
            meta = json.loads(Path(f"{remote}.{part}{suffix}.meta.json").read_text(encoding="utf-8"))
            assert meta["command"] == "dedup" and meta["options"]["keep"] == "earliest"
            assert meta["counts"]["clusters"] == 13 and meta["config"] == \
                json.loads(Path(f"{local}.{part}{suffix}.meta.json").read_text(encoding="utf-8"))["config"]
        for part in ("clusters", "kept"):
            mine, theirs = Path(f"{remote}.{part}{suffix}"), Path(f"{local}.{part}{suffix}")
            if suffix == ".jsonl":
                assert mine.read_bytes() == theirs.read_bytes(), part
            else:
                import pyarrow.parquet as pq

                a, b = pq.read_table(mine), pq.read_table(theirs)
                if part == "clusters":
                    assert a.to_pylist() == b.to_pylist()
                else:  # Spark infers JSON types for Parquet by itself: same rows, fields in its order
                    assert [dict(sorted(r.items())) for r in a.to_pylist()] == \
                        [dict(sorted(r.items())) for r in b.to_pylist()]


def test_command_against_a_kept_corpus_matches_the_local_command(spark, tmp_path, examples):
    """--against with --engine spark writes the local command's CLUSTERS and KEPT: the new documents only."""
    from neardup.cli.main import Console, build_parser, main
    from neardup.cli.spark import run_spark_dedup

    lines = (examples / "wire.jsonl").read_text().splitlines(keepends=True)
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text("".join(lines[::2]))
    new.write_text("".join(lines[1::2]))
    common = ["dedup", str(new), "--against", str(old), "-q"]
    assert main(common + ["--out", str(tmp_path / "lk.jsonl"), "--clusters", str(tmp_path / "lc.jsonl")]) == 0
    args = build_parser().parse_args(common + ["--out", str(tmp_path / "sk.jsonl"),
                                               "--clusters", str(tmp_path / "sc.jsonl")])
    args.spark_partitions = 3
    assert run_spark_dedup(args, io.StringIO(), Console(quiet=True)) == 0
    local = (tmp_path / "lc.jsonl").read_text()
    assert len(local.splitlines()) == len(lines[1::2]) and '"representative": false' in local
    assert (tmp_path / "sc.jsonl").read_text() == local
    assert (tmp_path / "sk.jsonl").read_bytes() == (tmp_path / "lk.jsonl").read_bytes()


@pytest.mark.parametrize("extra", [["--drop-repeats"], ["--strict"], ["--max-record-mb", "1"],
                                   ["--max-paragraphs", "10"], ["--index", "idx"]])
def test_command_refuses_what_the_spark_engine_does_not_run(tmp_path, examples, extra):
    """An option the Spark engine would not honour is a one-line usage error (exit 2), never ignored."""
    from neardup.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["dedup", str(examples / "wire.jsonl"), "--engine", "spark", "--out", str(tmp_path / "k.jsonl"),
                     "--clusters", str(tmp_path / "c.jsonl"), *extra])
    assert code == 2 and "not available with --engine spark" in err.getvalue()
    assert not (tmp_path / "k.jsonl").exists()


def test_command_refuses_an_index_as_reference(tmp_path, examples):
    """An index folder as --against is a one-line error on Spark (the local engine reads it), before Spark starts."""
    from neardup.cli.main import main

    assert main(["index", str(tmp_path / "idx"), str(examples / "wire.jsonl"), "-q"]) == 0
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["dedup", str(examples / "query-story.txt"), "--engine", "spark",
                     "--against", str(tmp_path / "idx"),
                     "--out", str(tmp_path / "k.jsonl"), "--clusters", str(tmp_path / "c.jsonl")])
    assert code == 2 and "runs on the local engine only" in err.getvalue()


def _two_versions(tmp_path: Path) -> Path:
    """Two versions of one story, each with a paragraph of its own (coverage of each by the other 0.91,
    Jaccard 0.83): a near-duplicate pair either may be removed for, unless coverage must reach 0.95."""
    words = [f"w{k}x" for k in range(400)]
    core = [" ".join(words[12 * p:12 * p + 12]) for p in range(10)]
    a = core + [" ".join(words[200:212])]
    b = core + [" ".join(words[300:312])]
    path = tmp_path / "versions.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": "\n".join(t)}) + "\n" for i, t in (("a", a), ("b", b))))
    return path


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_no_partial_still_needs_the_coverage_asked_for(spark, tmp_path, engine):
    """--no-partial removes only near-duplicates, and only when the kept one covers --min-coverage of
    the removed one's words (it once skipped the coverage check), on both engines."""
    from neardup.cli.main import Console, build_parser, main
    from neardup.cli.spark import run_spark_dedup

    corpus = _two_versions(tmp_path)

    def kept(*options: str) -> list[str]:
        argv = ["dedup", str(corpus), "--out", str(tmp_path / "k.jsonl"), "--clusters", str(tmp_path / "c.jsonl"),
                "--no-partial", "-q", *options]
        if engine == "local":
            assert main(argv) == 0
        else:
            args = build_parser().parse_args(argv)
            args.spark_partitions = 2
            assert run_spark_dedup(args, io.StringIO(), Console(quiet=True)) == 0
        return [json.loads(line)["id"] for line in (tmp_path / "k.jsonl").read_text().splitlines()]

    assert kept() == ["a"]                             # default min-coverage 0.75: b is a's near-duplicate
    assert kept("--min-coverage", "0.95") == ["a", "b"]  # b's own paragraph would be lost: both stay


GOOD = "The council approved the budget for the new library after a long debate on Tuesday evening."
BAD_LINES = [
    json.dumps({"id": "a1", "text": GOOD}),
    json.dumps({"id": "a2", "text": ""}),
    json.dumps({"id": "a3", "text": 5}),
    json.dumps({"id": 1.5, "text": "A float id is no id: the local reader skips the record and says why."}),
    '{"id": "a5", "text": "a lone \\ud800 surrogate escape in the text of a record both engines skip"}',
    json.dumps({"id": "a6", "text": GOOD}),
    "not json at all",
    json.dumps({"id": "a8", "text": ["a first paragraph of a list that is perfectly fine", "and a second"]}),
    json.dumps({"id": 9, "text": "An integer id is an id: it is kept as its decimal string by both engines."}),
    json.dumps({"id": "a10", "text": "\x00\x01\x02 binary junk \x03\x04"}),
    json.dumps({"text": "no id at all in this record, which both engines skip with a reason"}),
]
BAD_CSV = ("id,text\n"
           f"c1,{GOOD}\n"
           "c2,\n"
           'c3,"a row with more fields than its header",extra,fields\n'
           f'c4,"{GOOD}"\n'
           "c5,A short row that is fine on its own and kept by both engines.\n")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_both_engines_skip_the_same_bad_records_and_say_so(spark, tmp_path, suffix):
    """The same bad corpus through both engines: the same CLUSTERS, the same skips counted by reason,
    and Spark names the file of each skipped row (it once kept empty texts, numbers as texts, float
    ids, lone surrogates and CSV rows with extra fields, and said only "5 skipped")."""
    from neardup.cli.main import Console, build_parser, main
    from neardup.cli.spark import run_spark_dedup

    path = tmp_path / f"bad{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(BAD_LINES) + "\n", encoding="utf-8")
    elif suffix == ".csv":
        path.write_text(BAD_CSV, encoding="utf-8")
    else:
        import pyarrow.parquet as pq

        rows = [{"id": 1.5, "text": GOOD}, {"id": 2.5, "text": "another story of its own words"}]
        pq.write_table(pa.Table.from_pylist(rows), path)
    local_err = io.StringIO()
    with contextlib.redirect_stderr(local_err):
        code = main(["dedup", str(path), "--out", str(tmp_path / "lk.jsonl"), "--clusters", str(tmp_path / "lc.jsonl"),
                     "--json"])
    args = build_parser().parse_args(["dedup", str(path), "--out", str(tmp_path / "sk.jsonl"), "--clusters",
                                      str(tmp_path / "sc.jsonl"), "--json"])
    args.spark_partitions = 3
    spark_err = io.StringIO()
    with contextlib.redirect_stderr(spark_err):
        try:
            spark_code = run_spark_dedup(args, io.StringIO(), Console())
        except Exception as err:
            spark_code, spark_err = 2, io.StringIO(str(err))
    assert spark_code == code, (local_err.getvalue(), spark_err.getvalue())
    if code != 0:   # the Parquet file: every id a float, so no document either way
        assert "no documents read" in local_err.getvalue() and "no documents read" in spark_err.getvalue()
        return
    assert (tmp_path / "sc.jsonl").read_text() == (tmp_path / "lc.jsonl").read_text()
    local_reasons = re.search(r"skipped \d+ \((.*)\)", local_err.getvalue()).group(1)
    spark_reasons = re.search(r"skipped \d+ \((.*)\)", spark_err.getvalue()).group(1)
    assert sorted(local_reasons.split(", ")) == sorted(spark_reasons.split(", "))
    named = [line for line in spark_err.getvalue().splitlines() if line.startswith("neardup: skipped ")]
    assert named and all(f"{path}:" in line for line in named)
