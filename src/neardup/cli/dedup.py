"""``neardup dedup``: one document per story, on this machine or on Spark; KEPT and CLUSTERS written."""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections.abc import Sequence
from typing import Any, TextIO

from neardup.cli.common import (
    FORMATS,
    Console,
    add_input_options,
    command_parser,
    dedup_config,
    make_reader,
    progress_enabled,
    report_skips,
    usage,
    workers,
)
from neardup.cli.progress import Progress
from neardup.cli.sidecar import sidecar_paths, write_sidecars
from neardup.cli.spark import run_spark_dedup
from neardup.errors import EXIT_OK
from neardup.index.disk import is_index
from neardup.index.index import Index
from neardup.io.formats import total_input_bytes
from neardup.io.kept import RecordSpill, write_rows
from neardup.io.reader import Reader
from neardup.io.writers import check_output, check_outputs, open_binary_output, output_format
from neardup.pipeline.dedup import dedup_inputs
from neardup.pipeline.policy import POLICIES

_DEDUP_EXAMPLES = """\
examples:
  neardup dedup examples/wire.jsonl --out kept.jsonl --clusters clusters.jsonl
  neardup dedup corpus/ --out kept.parquet --clusters clusters.parquet --keep earliest --date-field published
  cat feed.jsonl | neardup dedup - --out kept.jsonl.zst --clusters c.jsonl --index feed.idx

A document is removed only when its representative holds its story, verified between the
two (same text, or at least --min-coverage of its words held, its furniture aside, none of its
own long paragraphs missing, and either Jaccard >= --threshold or --partial-containment of its
body inside it), and kept documents hold the rest of it (its outlet's footer, its "ALSO READ"
lines): nothing is lost over the kept corpus. The policy (--keep) chooses among the documents
no other member holds better: a full story is kept over its flash, truncated or trimmed copies
whatever the policy prefers; --keep cleanest keeps the copy with the least text of its own.
Figures matter: a document is never removed for one whose sentences say the same with other
figures (another day's prices, a notice's amount, "+2.5" for "-2.5").
CLUSTERS has one row per input document: id, cluster (the representative's id),
representative, kind (exact, near-duplicate or partial), jaccard, containment
(doc_in_representative, representative_in_doc), coverage, held_elsewhere (paragraphs its
representative lacks that kept documents hold, and up to three of them); a kept document that
another would hold but for its figures has kind figures-differ and differs_from. KEPT holds the
kept records as they came (same fields, order and types), in the format its name says; each
output gets FILE.meta.json (options, config, inputs, counts), which --config reads back.
"""


def add_dedup(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "dedup", "keep one document per story; report the clusters",
                      "Cluster the documents of a corpus into stories (exact copies, near-duplicates and, "
                      "unless --no-partial, partial copies: truncated copies, articles inside longer pages, "
                      "updated versions) and keep one representative per cluster.", _DEDUP_EXAMPLES)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=FORMATS)
    output = parser.add_argument_group("output")
    output.add_argument("--out", required=True, metavar="KEPT",
                        help="the kept records: .jsonl, .json, .csv, .parquet, .arrow (optionally .gz/.zst)")
    output.add_argument("--clusters", required=True, metavar="CLUSTERS",
                        help="one row per input document: .jsonl, .csv, .parquet, .arrow")
    output.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    policy = parser.add_argument_group("what is kept")
    policy.add_argument("--keep", choices=POLICIES, default="first",
                        help="representative: first in input order (default), longest text, earliest "
                             "--date-field, or cleanest (least text of its own besides the story: the clean "
                             "original over an outlet's page); ties broken by id")
    policy.add_argument("--date-field", default="date", metavar="FIELD", help="field read by --keep earliest")
    policy.add_argument("--no-partial", action="store_true", help="cluster exact and near-duplicates only")
    policy.add_argument("--partial-containment", type=float, default=None, metavar="C",
                        help="weighted share (furniture discounted) of a removed document inside its "
                             "representative (default 0.7)")
    policy.add_argument("--min-coverage", type=float, default=None, metavar="C",
                        help="share of a removed document's words its representative holds, furniture that "
                             "kept documents hold aside (default 0.75)")
    policy.add_argument("--threshold", type=float, metavar="J", help="article Jaccard for near-duplicates (0.8)")
    policy.add_argument("--drop-repeats", action="store_true",
                        help="also cut paragraphs that repeat an earlier one from the kept records")
    run = parser.add_argument_group("running")
    run.add_argument("--workers", type=int, default=0, metavar="N",
                     help="threads fingerprinting and comparing in parallel (default 0 = one per core)")
    run.add_argument("--index", metavar="INDEX", help="also add every document to this persistent index")
    policy.add_argument("--against", action="append", metavar="INPUT",
                        help="documents kept before (last month's KEPT, or an index folder that keeps texts): "
                             "never removed; a new document one of "
                             "them holds is removed as its copy; CLUSTERS and KEPT list the new documents only "
                             "(repeat for more inputs)")
    run.add_argument("--tmp-dir", metavar="DIR", help="folder for the run's spill files (default: the system's)")
    spark = parser.add_argument_group("Spark (--engine spark; pip install 'neardup[spark]')")
    spark.add_argument("--engine", choices=("local", "spark"), default="local",
                       help="run on this machine (default) or on Apache Spark: the same clusters either way")
    spark.add_argument("--spark-master", metavar="URL",
                       help="Spark master when no session is active (default local[2]); under spark-submit the "
                            "active session is used")
    spark.add_argument("--spark-partitions", type=int, metavar="N",
                       help="partitions of every shuffle (default: 4 per core on a local master, else "
                            "spark.sql.shuffle.partitions)")
    spark.add_argument("--spark-checkpoint", metavar="DIR",
                       help="write each stage's output to DIR (any Spark file system); a rerun reuses finished "
                            "stages")
    spark.add_argument("--spark-conf", action="append", metavar="KEY=VALUE",
                       help="a Spark setting for the session made here (repeatable)")
    add_input_options(parser)
    parser.set_defaults(run=run_dedup)


def run_dedup(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    if args.engine == "spark":
        return run_spark_dedup(args, out, console)

    config = dedup_config(args)
    outputs = [args.out, args.clusters]
    check_outputs(outputs + sidecar_paths(outputs), list(args.inputs) + list(args.against or ()))  # before any work
    against_indexes = [path for path in args.against or () if is_index(path)]
    against_inputs = [path for path in args.against or () if path not in against_indexes]
    with contextlib.ExitStack() as opened, \
            tempfile.TemporaryDirectory(prefix="neardup-kept-", dir=args.tmp_dir) as folder, \
            RecordSpill(folder) as spill:
        reader = make_reader(args, console, unique_ids=True, spill=spill)
        reading = Progress("reading", total_bytes=total_input_bytes(args.inputs), enabled=progress_enabled(args))
        comparing = Progress("comparing", unit="pairs", enabled=progress_enabled(args))

        def on_progress(phase: str, done: int, total: int | None) -> None:
            if phase == "reading":
                reading.update(done, reader.stats.source_bytes)
            elif phase == "comparing":
                if comparing.total is None:
                    reading.close()
                    comparing.total = total
                comparing.update(done)

        references = [opened.enter_context(Index.open(path)) for path in against_indexes]
        index = Index.open(args.index, config, writable=True) if args.index else None
        try:
            result = dedup_inputs(reader, args.inputs, config=config, index=index, keep=args.keep,
                                  date_field=args.date_field, include_partial=not args.no_partial,
                                  drop_repeats=args.drop_repeats, workers=workers(args.workers),
                                  on_progress=on_progress, tmp_dir=args.tmp_dir,
                                  reference_sources=against_inputs, reference_indexes=references)
        finally:
            if index is not None:
                index.close()
        reading.close()
        comparing.close()
        if len(result) == 0:
            raise usage(_nothing_read(reader, args))
        _write_clusters(args.clusters, result, args.inputs)
        spill.write(args.out, result.kept, drop_paragraphs=result.dropped_by_row, inputs=args.inputs)
    report_skips(console, reader, "inputs")
    summary = result.summary
    write_sidecars(outputs, args, config, summary)
    if args.keep == "earliest" and summary.undated:
        console.warn(f"neardup: dedup: {summary.undated:,} of {summary.documents:,} documents have no "
                     f"{args.date_field!r} field (or an empty one); they are ranked after every dated one")
    console.say(f"neardup: dedup: {summary.line()}")
    if summary.reference_documents:
        console.say(f"neardup: dedup: {summary.removed_for_reference:,} removed as copies of the "
                    f"{summary.reference_documents:,} reference documents (--against)")
    console.detail("neardup: dedup: seconds per stage: "
                   + ", ".join(f"{k} {v:.2f}" for k, v in summary.seconds.items())
                   + "; peak MB after each: " + ", ".join(f"{k} {v:,.0f}" for k, v in summary.peak_mb.items())
                   + f"; {summary.candidate_pairs:,} candidate pairs, {summary.verified_late:,} verified late, "
                     f"{summary.large_buckets:,} buckets over the cap (largest {summary.largest_bucket:,}); "
                     f"{summary.kept_for_loss:,} removals undone: no kept document held all of their text; "
                     f"{summary.figures_differ:,} kept because their figures differ (kind figures-differ)")
    if args.json:
        out.write(json.dumps({"documents": summary.documents, "clusters": summary.clusters,
                              "removed": summary.removed, "removed_by_kind": dict(summary.by_kind),
                              "kept_for_loss": summary.kept_for_loss, "figures_differ": summary.figures_differ,
                              "skipped": dict(reader.stats.skipped) | dict(summary.skipped),
                              "seconds": summary.seconds}) + "\n")
    return EXIT_OK


def _write_clusters(path: str, result: Any, inputs: Sequence[str]) -> None:
    """CLUSTERS: JSON Lines straight from the result's columns; other formats through write_rows."""
    if output_format(path)[0] != "jsonl":
        write_rows(path, (a.to_dict() for a in result), inputs=inputs)
        return
    check_output(path, inputs)
    with open_binary_output(path) as handle:
        for line in result.json_lines():
            handle.write(line + b"\n")



def _nothing_read(reader: Reader, args: argparse.Namespace) -> str:
    """Why no document was read, naming the fields the records do have."""
    message = "no documents read"
    if reader.stats.skipped:
        message += f" ({reader.stats.summary()})"
    if reader.stats.fields_seen:
        fields = ", ".join(name for name, _ in reader.stats.fields_seen.most_common(12))
        message += (f"; the records have the fields {fields}: choose them with --id-field and --text-field "
                    f"(now {args.id_field!r} and {args.text_field!r})")
    return message

