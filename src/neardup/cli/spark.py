"""``neardup dedup --engine spark``: read the inputs with Spark, run the Spark engine, write CLUSTERS
and KEPT as the local engine does (same rows, same order)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

from neardup.cli.common import dedup_config, usage
from neardup.cli.sidecar import sidecar_paths, write_sidecars
from neardup.errors import EXIT_OK, InputError
from neardup.index.disk import is_index
from neardup.io.writers import check_outputs, output_format
from neardup.pipeline.spark_engine import SparkSummary, run
from neardup.pipeline.spark_io import (
    clusters_output,
    is_local,
    kept_output,
    local_path,
    pyspark_functions,
    read_inputs,
    session,
    write_output,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession


def run_spark_dedup(args: Any, out: TextIO, console: Any) -> int:
    """``neardup dedup ... --engine spark``: read the inputs with Spark, run :func:`run`, write
    CLUSTERS and KEPT as the local engine does (same rows, same order)."""
    try:
        pyspark_functions()
    except ImportError as err:
        raise usage(str(err)) from None
    for flag, name in (("drop_repeats", "--drop-repeats"), ("index", "--index"), ("strict", "--strict")):
        if getattr(args, flag, None):
            raise usage(f"{name} is not available with --engine spark")
    if (getattr(args, "max_record_mb", 64.0), getattr(args, "max_paragraphs", 100_000)) != (64.0, 100_000):
        raise usage("--max-record-mb and --max-paragraphs are not available with --engine spark")
    for target in (args.out, args.clusters):
        if output_format(target)[0] not in ("jsonl", "parquet"):
            raise usage(f"{target}: with --engine spark, KEPT and CLUSTERS are .jsonl (optionally .gz/.bz2) "
                         f"or .parquet")
    for path in getattr(args, "against", None) or ():
        if is_local(path) and is_index(local_path(path)):
            raise InputError(f"{path}: an index as --against runs on the local engine only; on Spark, give the "
                             "reference corpus as files (last month's KEPT)")
    config = dedup_config(args)
    local = all(is_local(p) for p in (args.out, args.clusters))
    if local:
        outputs = [local_path(args.out), local_path(args.clusters)]
        check_outputs(outputs + sidecar_paths(outputs), [local_path(p) for p in args.inputs if is_local(p)])
    conf = [tuple(item.split("=", 1)) for item in getattr(args, "spark_conf", None) or []]
    if any(len(pair) != 2 for pair in conf):
        raise usage("--spark-conf takes KEY=VALUE")
    spark, made = session(getattr(args, "spark_master", None), conf, getattr(args, "tmp_dir", None))
    try:
        spark.sparkContext.setLogLevel("ERROR")
        df, family, files = read_inputs(spark, args.inputs, id_field=args.id_field, text_field=args.text_field,
                                        date_field=args.date_field)
        columns = (("_neardup_id", "_neardup_text", "_neardup_paragraphs") if family == "jsonl"
                   else (args.id_field, args.text_field, None))
        date = "_neardup_date" if family == "jsonl" else args.date_field
        reference = _reference(spark, args, family, date) if getattr(args, "against", None) else None
        result = run(df, columns[0], columns[1], config, args.keep, date, not args.no_partial, reference=reference,
                     order_col="_neardup_row", paragraphs_col=columns[2],
                     partitions=getattr(args, "spark_partitions", None) or _default_partitions(spark),
                     checkpoint_dir=getattr(args, "spark_checkpoint", None))
        summary = result.summary
        if summary.documents == 0:
            raise usage(f"no documents read from {len(files)} file(s) (fields {args.id_field!r} and "
                         f"{args.text_field!r} expected)")
        write_output(spark, clusters_output(result.rows, args.clusters, result.summary.figures_differ > 0),
                     args.clusters)
        write_output(spark, kept_output(spark, df, result.rows, family, args.out), args.out)
        result.release()
    finally:
        if made:
            spark.stop()
    if local:
        write_sidecars([local_path(args.out), local_path(args.clusters)], args, config, summary)
    _report(summary, args, out, console)
    return EXIT_OK


def _reference(spark: SparkSession, args: Any, family: str, date: str) -> DataFrame:
    """The ``--against`` documents, read as the inputs are: of the inputs' format, so that both
    frames have the same columns (a date column the reference lacks is null)."""
    F = pyspark_functions()
    reference, kind, _ = read_inputs(spark, args.against, id_field=args.id_field, text_field=args.text_field,
                                     date_field=args.date_field)
    if kind != family:
        raise InputError(f"with --engine spark, --against inputs are of the inputs' format ({family}), got {kind}")
    if date not in reference.columns:
        reference = reference.withColumn(date, F.lit(None).cast("string"))
    return reference


def _default_partitions(spark: SparkSession) -> int | None:
    """On a local master, 4 partitions a core (Spark's default of 200 is for clusters); elsewhere
    ``spark.sql.shuffle.partitions``."""
    if (spark.sparkContext.master or "").startswith("local"):
        return 4 * spark.sparkContext.defaultParallelism
    return None


def _report(summary: SparkSummary, args: Any, out: TextIO, console: Any) -> None:
    skipped = dict(summary.skipped)
    for file, id, reason in summary.skip_examples:
        console.say(f"neardup: skipped {file or 'input'}: {reason}" + (f" (id {id!r})" if id else ""))
    total = sum(skipped.values())
    if total > len(summary.skip_examples):
        console.say("neardup: more records skipped; see the summary")
    if skipped:
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in sorted(skipped.items(), key=lambda kv: -kv[1]))
        console.say(f"neardup: inputs: read {summary.documents:,} documents, skipped {total:,} ({reasons})")
    console.say(f"neardup: dedup: {replace(summary, skipped=Counter()).line()}")  # skips: the line above
    console.detail("neardup: dedup (spark): seconds per stage: "
                   + ", ".join(f"{k} {v:.2f}" for k, v in summary.seconds.items())
                   + f"; {summary.candidate_pairs:,} candidate pairs, {summary.verified_late:,} verified late, "
                     f"{summary.large_buckets:,} buckets over the cap (largest {summary.largest_bucket:,}), "
                     f"{summary.component_rounds} rounds of connected components")
    if args.json:
        out.write(json.dumps({"documents": summary.documents, "clusters": summary.clusters,
                              "removed": summary.removed, "removed_by_kind": dict(summary.by_kind),
                              "kept_for_loss": summary.kept_for_loss, "figures_differ": summary.figures_differ,
                              "skipped": skipped, "seconds": summary.seconds, "engine": "spark",
                              "candidate_pairs": summary.candidate_pairs, "verified_late": summary.verified_late,
                              "large_buckets": summary.large_buckets, "largest_bucket": summary.largest_bucket,
                              "component_rounds": summary.component_rounds, "shuffle": summary.shuffle}) + "\n")

