"""The ``neardup`` command: a thin layer that parses, builds a Config, calls the library, prints.

Exit codes (:mod:`neardup.errors`): 0 success (skipped records are reported on stderr), 1
internal error, 2 usage or input error, 3 an index that cannot be trusted, 4 another process is
writing to the index. argparse, not click or typer: the standard library gives the help groups,
epilogs and exit codes this needs, and the command stays one import away from the library.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from . import __version__
from .config import Config
from .document import Document
from .errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, NearDupError, RecordError
from .evidence import Match
from .executor import batched
from .index import Index
from .inputs import Reader, total_input_bytes
from .kernel import compiled
from .progress import Progress, switch, track
from .repetition import RepeatReport, repeats

#: Skipped records announced one by one before the summary takes over.
_MAX_SKIP_MESSAGES = 20
#: Metadata fields a query prints when a match has them (who published it, when, what).
_SHOWN_FIELDS = ("source", "outlet", "site", "publisher", "date", "published", "title")
_FORMATS = ".jsonl/.ndjson, .json (array of records), .csv/.tsv (header row), .parquet, .arrow/.feather, " \
           "Hugging Face save_to_disk folders, .txt files, folders of these, any of them .gz/.zst, '-' for stdin"


class Console:
    """Where messages go: stderr (or --log-file), quieter with -q, with stage timings with -v."""

    def __init__(self, quiet: bool = False, verbose: bool = False, log_file: str | None = None) -> None:
        self.quiet, self.verbose = quiet, verbose
        self._log = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115 - closed in close()

    def say(self, message: str) -> None:
        """A summary or a notice: shown unless --quiet."""
        if not self.quiet:
            self._write(message)

    def detail(self, message: str) -> None:
        """Shown with --verbose only."""
        if self.verbose:
            self._write(message)

    def warn(self, message: str) -> None:
        """Always shown."""
        self._write(message)

    def _write(self, message: str) -> None:
        if self._log is not None:
            self._log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")
            self._log.flush()
        else:
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("messages")
    group.add_argument("-q", "--quiet", action="store_true", help="print errors only (no progress, no summary)")
    group.add_argument("-v", "--verbose", action="store_true",
                       help="more detail: the progress line also in logs, timings of each stage")
    group.add_argument("--no-progress", action="store_true", help="no progress line, even on a terminal")
    group.add_argument("--log-file", metavar="FILE", help="append messages (skips, summaries) to FILE, not stderr")
    parser = argparse.ArgumentParser(
        prog="neardup",
        description="Find copies of news text, whole or in part, and repetition inside documents.",
        epilog="Run 'neardup COMMAND --help' for the options and examples of each command.\n"
               "Exit codes: 0 ok, 1 internal error, 2 usage or input error, 3 index damaged or of another "
               "format, 4 index busy.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"neardup {__version__} "
                        f"({'compiled kernel' if compiled() else 'numpy path: no compiled kernel'})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for add in (_add_index, _add_query, _add_dedup, _add_show, _add_remove, _add_stats, _add_verify, _add_repeats,
                _add_serve):
        add(commands, common)
    return parser


def _command(commands: Any, common: argparse.ArgumentParser, name: str, help: str, description: str,
             epilog: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=description, epilog=epilog, parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input records")
    group.add_argument("--id-field", default="id", metavar="FIELD", help="field holding the document id (default: id)")
    group.add_argument("--text-field", default="text", metavar="FIELD",
                       help="field holding the text, a string or a list of paragraphs (default: text)")
    group.add_argument("--strict", action="store_true",
                       help="stop with exit code 2 at the first bad record instead of skipping it")
    group.add_argument("--max-record-mb", type=float, default=64.0, metavar="MB",
                       help="skip records (JSON lines, text files) larger than this (default 64)")
    group.add_argument("--max-paragraphs", type=int, default=100_000, metavar="N",
                       help="skip documents with more paragraphs than this (default 100000)")


def _add_json(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument_group("output").add_argument("--json", action="store_true", help=help)


# -- index ---------------------------------------------------------------------------------------------

_INDEX_EXAMPLES = """\
examples:
  neardup index news.idx examples/wire.jsonl            # create, or add to, an index
  neardup index news.idx archive/ today.jsonl.zst --workers 2
  zcat feed.jsonl.gz | neardup index news.idx -         # from stdin
  neardup index news.idx new-versions.jsonl --replace   # replace documents whose id is indexed

A document whose id is already indexed is skipped (reason: duplicate id) unless --replace,
so re-running an interrupted command resumes it. Each batch is committed atomically (with the
documents it replaces): a killed process leaves every batch committed before the kill, and
nothing half-written. INDEX must be a new or empty folder, or a neardup index.
"""


def _add_index(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(commands, common, "index", "create or extend a persistent index",
                      "Fingerprint documents and add them to the index folder INDEX (created if missing). "
                      "Streams any number of documents in bounded memory.", _INDEX_EXAMPLES)
    parser.add_argument("index", metavar="INDEX", help="index folder: new, empty, or an index")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=_FORMATS)
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="threads fingerprinting in parallel (default 0 = one per core)")
    parser.add_argument("--batch-size", type=int, default=5000, metavar="N",
                        help="documents per committed batch (default 5000)")
    parser.add_argument("--replace", action="store_true", help="replace documents whose id is already indexed")
    parser.add_argument("--no-text", action="store_true",
                        help="do not store the texts (new index only): shingles are kept, answers stay exact, "
                             "but no evidence text and no 'show'")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long for another writer to finish (default: fail at once)")
    creation = parser.add_argument_group("fingerprints (fixed when the index is created)")
    creation.add_argument("--shingle-size", type=int, metavar="N", help="words per shingle (default 5)")
    creation.add_argument("--num-perm", type=int, metavar="P", help="MinHash permutations (default 128)")
    creation.add_argument("--seed", type=int, metavar="S", help="MinHash seed (default 1)")
    _add_input_options(parser)
    _add_json(parser, "print the summary as one JSON object on stdout")
    parser.set_defaults(run=run_index)


def run_index(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    if args.batch_size < 1:
        raise _usage("--batch-size must be at least 1")
    from .index import AddReport
    from .ingest import printed_stream

    reader = _reader(args, console)
    with Index.open(args.index, _index_config(args.index, args), writable=True, keep_text=not args.no_text,
                    wait=args.wait) as index:
        progress = Progress("indexing", total_bytes=total_input_bytes(args.inputs), enabled=_progress_enabled(args))
        report = AddReport()
        batches = printed_stream(reader, args.inputs, index.config, workers=_workers(args.workers),
                                 with_documents=True, stage="index", shingles=index.storage.needs_shingles,
                                 task_records=min(args.batch_size, 2000))
        pending: list[Any] = []
        for batch in batches:  # committed every --batch-size documents
            pending.append(batch)
            if sum(len(b) for b in pending) >= args.batch_size:
                report.merge(_commit(index, pending, args.replace))
                pending = []
            progress.update(reader.stats.read, reader.stats.source_bytes)
        if pending:
            report.merge(_commit(index, pending, args.replace))
        progress.close()
        total = len(index)
    skipped = dict(reader.stats.skipped)
    for reason, count in report.skipped.items():
        skipped[reason] = skipped.get(reason, 0) + count
    summary = {"index": args.index, "added": report.added, "replaced": report.replaced,
               "skipped": sum(skipped.values()), "skipped_reasons": skipped, "documents": total}
    if args.json:
        out.write(json.dumps(summary) + "\n")
    reasons = ", ".join(f"{n:,} {r}" for r, n in skipped.items())
    console.say(f"neardup: {args.index}: added {report.added:,}, replaced {report.replaced:,}, skipped "
                f"{summary['skipped']:,}{f' ({reasons})' if reasons else ''}; {total:,} documents in the index")
    return EXIT_OK


def _commit(index: Index, batches: list[Any], replace: bool) -> Any:
    """One committed batch of the index from several fingerprinted task batches."""
    from .fingerprint import Fingerprints

    documents = [d for b in batches for d in b.documents]
    prints = Fingerprints.concatenate([b.printed.prints for b in batches])
    return index.add_fingerprinted(documents, prints, on_duplicate="replace" if replace else "skip")


# -- query ---------------------------------------------------------------------------------------------

_QUERY_EXAMPLES = """\
examples:
  # against a persistent index (see 'neardup index')
  neardup query news.idx examples/query-story.txt --show-text
  # where else does this story appear? (a corpus indexed in memory, one JSON line per match)
  neardup query --corpus examples/wire.jsonl examples/query-story.txt --json
  # every document of a JSON Lines file as a query, against two corpora
  neardup query --corpus archive.jsonl.gz --corpus today/ queries.jsonl --top 5
  # the text on stdin, stricter near-duplicates, partial copies from 30 % containment
  cat story.txt | neardup query --corpus corpus.jsonl --threshold 0.9 --min-containment 0.3

kinds: exact (same normalised text), near-duplicate (article Jaccard >= --threshold, or
both containments >= 0.9), partial (containment either way >= --min-containment).
containment.query_in_match is the share of the query's words found in the match, weighted
by paragraph (short lines and boilerplate count little); match_in_query the reverse.
--json prints one line per match ({"query", "id", "kind", "jaccard", "containment",
"metadata", "shared_paragraphs"}), and {"query": ID, "matches": 0} for a query without one.
"""


def _add_query(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(commands, common, "query", "find the documents that copy a story, whole or in part",
                      "Report, for each query document, the indexed documents holding its text: exact "
                      "copies, near-duplicates and partial copies (truncated, extended, embedded, or sharing "
                      "paragraphs), with the paragraphs they share.", _QUERY_EXAMPLES)
    parser.add_argument("queries", nargs="*", metavar="[INDEX] FILE",
                        help="an index folder (unless --corpus is given), then query documents: "
                             f"{_FORMATS}; nothing for stdin")
    parser.add_argument("--corpus", action="append", metavar="INPUT",
                        help="search these documents, indexed in memory, instead of an index folder; "
                             "repeat for more")
    tuning = parser.add_argument_group("thresholds")
    tuning.add_argument("--threshold", type=float, metavar="J", help="article Jaccard for a near-duplicate (0.8)")
    tuning.add_argument("--min-containment", type=float, metavar="C",
                        help="containment either way for a partial copy (default 0.3)")
    tuning.add_argument("--top", type=int, metavar="K", help="at most K matches per query")
    tuning.add_argument("--shingle-size", type=int, metavar="N", help="words per shingle (default 5)")
    tuning.add_argument("--num-perm", type=int, metavar="P", help="MinHash permutations (default 128)")
    _add_input_options(parser)
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="one JSON line per match (see below)")
    output.add_argument("--show-text", action="store_true", help="also print the shared passages of both texts")
    parser.set_defaults(run=run_query)


def run_query(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    if args.top is not None and args.top < 1:
        raise _usage("--top must be at least 1")
    queries = list(args.queries)
    if args.corpus:
        index = _memory_index(args, console)
    else:
        if not queries:
            raise _usage("give an index folder, or the documents to search with --corpus INPUT")
        path = queries.pop(0)
        index = _open_for_query(path, args)
    with index:
        sources = queries or ["-"]
        if sources == ["-"] and sys.stdin.isatty():
            console.say("neardup: reading the query from the terminal; end it with Ctrl-D")
        query_reader = _reader(args, console)
        decisions = {"threshold": args.threshold, "min_containment": args.min_containment, "top": args.top}
        for batch in batched(query_reader.documents(sources), 256):
            with index.storage.reading():  # the answers and the texts they quote from one snapshot
                for document, matches in zip(batch, index.query_many(batch, **decisions)):
                    _print_matches(out, index, document, matches, args)
        _report_skips(console, query_reader, "queries")
    return EXIT_OK


def _open_for_query(path: str, args: argparse.Namespace) -> Index:
    from .errors import InputError

    try:
        return Index.open(path, _index_config(path, args))
    except InputError as err:
        if os.path.isfile(path) or not os.path.exists(path):
            raise _usage(f"{err}; to search documents without an index, give them with --corpus {path}") from None
        raise


def _memory_index(args: argparse.Namespace, console: Console) -> Index:
    index = Index(_config(args))
    corpus_reader = _reader(args, console, unique_ids=True)
    documents, progress = _reading(corpus_reader, args.corpus, "indexing", args)
    report = index.add(documents, workers=1)
    progress.close()
    _report_skips(console, corpus_reader, "corpus")
    if report.skipped:
        reasons = ", ".join(f"{n:,} {r}" for r, n in report.skipped.items())
        console.say(f"neardup: corpus: not indexed: {reasons}")
    return index


def _print_matches(out: TextIO, index: Index, query: Document, matches: list[Match], args: argparse.Namespace) -> None:
    if args.json:
        if not matches:
            out.write(json.dumps({"query": query.id, "matches": 0}, ensure_ascii=False) + "\n")
        for match in matches:
            record = {"query": query.id, **match.to_dict(), "metadata": match.metadata}
            if args.show_text:
                record["shared_text"] = _shared_texts(index, query, match)
            out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        return
    out.write(f"{query.id}: {len(matches)} match{'es' if len(matches) != 1 else ''}\n")
    if matches:
        out.write(f"  {'kind':<15} {'jaccard':>8} {'q in m':>7} {'m in q':>7} {'shared':>6}  id\n")
    for m in matches:
        about = "; ".join(f"{k} {m.metadata[k]}" for k in _SHOWN_FIELDS if m.metadata.get(k) not in (None, ""))
        out.write(f"  {m.kind:<15} {m.jaccard:>8.3f} {m.query_in_match:>7.3f} {m.match_in_query:>7.3f} "
                  f"{len(m.shared_paragraphs):>6}  {m.id}{f'  ({about})' if about else ''}\n")
        if args.show_text:
            for pair in _shared_texts(index, query, m):
                out.write(f"      query  ¶{pair['query_paragraph']}: {_excerpt(pair['query_text'])}\n")
                out.write(f"      match  ¶{pair['match_paragraph']}: {_excerpt(pair['match_text'])}\n")


def _shared_texts(index: Index, query: Document, match: Match) -> list[dict[str, Any]]:
    try:
        stored = index.get(match.id).text
    except KeyError:  # an index in memory changed since (a folder is read in one snapshot)
        stored = None
    return [{"query_paragraph": p.query_paragraph, "match_paragraph": p.match_paragraph,
             "query_text": query.text[p.query_span[0]:p.query_span[1]],
             "match_text": None if stored is None else stored[p.match_span[0]:p.match_span[1]]}
            for p in match.shared_paragraphs]


def _excerpt(text: str | None, width: int = 100) -> str:
    if text is None:
        return "(this index keeps no texts)"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 3] + "..."


# -- dedup ---------------------------------------------------------------------------------------------

_DEDUP_EXAMPLES = """\
examples:
  neardup dedup examples/wire.jsonl --out kept.jsonl --clusters clusters.jsonl
  neardup dedup corpus/ --out kept.parquet --clusters clusters.parquet --keep earliest --date-field published
  cat feed.jsonl | neardup dedup - --out kept.jsonl.zst --clusters c.jsonl --index feed.idx

A document is removed only in favour of a representative that holds it, verified between the
two: same text, or at least --min-coverage of its words held by the representative and either
Jaccard >= --threshold or --partial-containment of its body inside it. The policy (--keep)
chooses among the documents no other member holds better: a full story is kept over its
flash, truncated or trimmed copies whatever the policy prefers.
CLUSTERS has one row per input document: id, cluster (the representative's id),
representative, kind (exact, near-duplicate or partial), jaccard, containment
(doc_in_representative, representative_in_doc), coverage. KEPT holds the kept records as they
came (same fields, order and types), in the format its name says.
"""


def _add_dedup(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(commands, common, "dedup", "keep one document per story; report the clusters",
                      "Cluster the documents of a corpus into stories (exact copies, near-duplicates and, "
                      "unless --no-partial, partial copies: truncated copies, articles inside longer pages, "
                      "updated versions) and keep one representative per cluster.", _DEDUP_EXAMPLES)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=_FORMATS)
    output = parser.add_argument_group("output")
    output.add_argument("--out", required=True, metavar="KEPT",
                        help="the kept records: .jsonl, .json, .csv, .parquet, .arrow (optionally .gz/.zst)")
    output.add_argument("--clusters", required=True, metavar="CLUSTERS",
                        help="one row per input document: .jsonl, .csv, .parquet, .arrow")
    output.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    policy = parser.add_argument_group("what is kept")
    policy.add_argument("--keep", choices=("first", "longest", "earliest"), default="first",
                        help="representative: first in input order (default), longest text, or earliest "
                             "--date-field; ties broken by id")
    policy.add_argument("--date-field", default="date", metavar="FIELD", help="field read by --keep earliest")
    policy.add_argument("--no-partial", action="store_true", help="cluster exact and near-duplicates only")
    policy.add_argument("--partial-containment", type=float, default=None, metavar="C",
                        help="weighted share (furniture discounted) of a removed document inside its "
                             "representative (default 0.7)")
    policy.add_argument("--min-coverage", type=float, default=None, metavar="C",
                        help="share of a removed document's words its representative holds, every word "
                             "counted (default 0.75)")
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
    _add_input_options(parser)
    parser.set_defaults(run=run_dedup)


def run_dedup(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    if args.engine == "spark":
        try:
            from .spark import run_spark_dedup
        except ImportError as err:
            raise _usage(f"--engine spark needs the spark extra: pip install 'neardup[spark]' ({err})") from None
        return run_spark_dedup(args, out, console)
    from .dedup import dedup_inputs
    from .diskstore import is_index
    from .outputs import RecordSpill, check_outputs

    config = _dedup_config(args)
    check_outputs([args.out, args.clusters], list(args.inputs) + list(args.against or ()))  # before any work
    against_indexes = [path for path in args.against or () if is_index(path)]
    against_inputs = [path for path in args.against or () if path not in against_indexes]
    with contextlib.ExitStack() as opened, \
            tempfile.TemporaryDirectory(prefix="neardup-kept-", dir=args.tmp_dir) as folder, \
            RecordSpill(folder) as spill:
        reader = _reader(args, console, unique_ids=True, spill=spill)
        reading = Progress("reading", total_bytes=total_input_bytes(args.inputs), enabled=_progress_enabled(args))
        comparing = Progress("comparing", unit="pairs", enabled=_progress_enabled(args))

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
                                  drop_repeats=args.drop_repeats, workers=_workers(args.workers),
                                  on_progress=on_progress, tmp_dir=args.tmp_dir,
                                  reference_sources=against_inputs, reference_indexes=references)
        finally:
            if index is not None:
                index.close()
        reading.close()
        comparing.close()
        if len(result) == 0:
            raise _usage(_nothing_read(reader, args))
        _write_clusters(args.clusters, result, args.inputs)
        spill.write(args.out, result.kept, drop_paragraphs=result.dropped_by_row, inputs=args.inputs)
    _report_skips(console, reader, "inputs")
    summary = result.summary
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
                     f"{summary.large_buckets:,} buckets over the cap (largest {summary.largest_bucket:,})")
    if args.json:
        out.write(json.dumps({"documents": summary.documents, "clusters": summary.clusters,
                              "removed": summary.removed, "removed_by_kind": dict(summary.by_kind),
                              "skipped": dict(reader.stats.skipped) | dict(summary.skipped),
                              "seconds": summary.seconds}) + "\n")
    return EXIT_OK


def _write_clusters(path: str, result: Any, inputs: Sequence[str]) -> None:
    """CLUSTERS: JSON Lines straight from the result's columns; other formats through write_rows."""
    from .outputs import check_output, open_binary_output, output_format, write_rows

    if output_format(path)[0] != "jsonl":
        write_rows(path, (a.to_dict() for a in result), inputs=inputs)
        return
    check_output(path, inputs)
    with open_binary_output(path) as handle:
        for line in result.json_lines():
            handle.write(line + b"\n")


def _dedup_config(args: argparse.Namespace) -> Config:
    config = _config(args)
    for name in ("partial_containment", "min_coverage"):
        value = getattr(args, name)
        if value is not None:
            if not 0.0 <= value <= 1.0:
                raise _usage(f"--{name.replace('_', '-')} must be in [0, 1]")
            config = config.with_options(**{name: value})
    return config


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


# -- show, remove, stats, verify -----------------------------------------------------------------------

def _add_show(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(commands, common, "show", "print a stored document",
                      "Print the stored text, paragraphs and metadata of indexed documents.",
                      "examples:\n  neardup show news.idx recall-original\n"
                      "  neardup show news.idx a b --json | jq .metadata\n")
    parser.add_argument("index", metavar="INDEX", help="index folder")
    parser.add_argument("ids", nargs="+", metavar="ID", help="ids of indexed documents")
    _add_json(parser, "one JSON object per document: id, text, paragraphs (spans), metadata")
    parser.set_defaults(run=run_show)


def run_show(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    missing = 0
    with Index.open(args.index) as index:
        for id in args.ids:
            if id not in index:
                console.warn(f"neardup: {args.index}: no document {id!r}")
                missing += 1
                continue
            stored = index.get(id)
            spans = [[int(s), int(e)] for s, e in stored.spans]
            if args.json:
                out.write(json.dumps({"id": stored.id, "text": stored.text, "paragraphs": spans,
                                      "metadata": stored.metadata}, ensure_ascii=False, default=str) + "\n")
                continue
            out.write(f"{stored.id}\n")
            for key, value in stored.metadata.items():
                out.write(f"  {key}: {value}\n")
            if stored.text is None:
                out.write("  (this index keeps no texts)\n")
            for number, (start, end) in enumerate(spans):
                if stored.text is not None:
                    out.write(f"  ¶{number}  {stored.text[start:end]}\n")
    return EXIT_OK if not missing else EXIT_USAGE


def _add_remove(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(commands, common, "remove", "remove documents from an index by id",
                      "Remove the documents with these ids from the index (one transaction each).",
                      "example:\n  neardup remove news.idx story-17 story-18\n\n"
                      "Exit code 2 when an id is not in the index (the others are removed).\n")
    parser.add_argument("index", metavar="INDEX", help="index folder")
    parser.add_argument("ids", nargs="+", metavar="ID", help="ids of indexed documents")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long for another writer to finish (default: fail at once)")
    parser.set_defaults(run=run_remove)


def run_remove(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    with Index.open(args.index, writable=True, wait=args.wait) as index:
        missing = [id for id in args.ids if not index.remove(id)]
    for id in missing:
        console.warn(f"neardup: {args.index}: no document {id!r}")
    console.say(f"neardup: {args.index}: removed {len(args.ids) - len(missing):,}")
    return EXIT_OK if not missing else EXIT_USAGE


def _add_stats(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(commands, common, "stats", "describe an index",
                      "Documents, paragraphs, size on disk, parameters and format version of an index.",
                      "examples:\n  neardup stats news.idx\n  neardup stats news.idx --json | jq .documents\n")
    parser.add_argument("index", metavar="INDEX", help="index folder")
    _add_json(parser, "print one JSON object")
    parser.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    with Index.open(args.index) as index:
        stats = index.storage.stats()
    if args.json:
        out.write(json.dumps(stats) + "\n")
        return EXIT_OK
    config = stats.pop("config", {})
    for key, value in stats.items():
        out.write(f"{key.replace('_', ' '):>18}  {_readable(key, value)}\n")
    out.write(f"{'configuration':>18}  " + ", ".join(f"{k}={v}" for k, v in sorted(config.items())) + "\n")
    return EXIT_OK


def _readable(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and "bytes" in key:
        return _size(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def _size(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1000
    return f"{count:,.1f} TB"


def _add_verify(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(commands, common, "verify", "check every byte of an index against its checksums",
                      "Read every segment file and every stored document of an index and compare them with "
                      "their checksums; exit 3 naming the first damaged file or document.",
                      "example:\n  neardup verify news.idx && echo intact\n")
    parser.add_argument("index", metavar="INDEX", help="index folder")
    _add_json(parser, "print the result as one JSON object")
    parser.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    from .diskstore import DiskStorage

    started = time.perf_counter()
    storage = DiskStorage(args.index)
    try:
        report = storage.verify()
    finally:
        storage.close()
    report["seconds"] = round(time.perf_counter() - started, 3)
    if args.json:
        out.write(json.dumps(report) + "\n")
    else:
        console.say(f"neardup: {args.index}: intact: {report['documents']:,} documents and "
                    f"{report['files']:,} segment files ({_size(report['bytes'])}) match their checksums")
    return EXIT_OK


# -- repeats -------------------------------------------------------------------------------------------

_REPEATS_EXAMPLES = """\
examples:
  neardup repeats examples/repeated-page.txt
  neardup repeats --json pages.jsonl | jq 'select(.duplicate_fraction > 0.3) | .id'
  curl -s https://example.org/page.txt | neardup repeats

duplicate_fraction: share of body paragraphs (>= 6 words) repeating an earlier paragraph;
duplicate_char_fraction: share of characters; the dup_*/top_* figures follow the Gopher rules.
"""


def _add_repeats(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(commands, common, "repeats", "find paragraphs repeated inside each document",
                      "Report, for each document, the groups of paragraphs that repeat each other (exactly or "
                      "nearly, e.g. a body printed twice with an ad call fused into one copy), the share of "
                      "paragraphs and characters that repeat, and the Gopher repetition figures.",
                      _REPEATS_EXAMPLES)
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help=f"{_FORMATS}; nothing for stdin")
    parser.add_argument("--repeat-threshold", type=float, metavar="J",
                        help="paragraph Jaccard for a near repeat (default 0.5)")
    _add_input_options(parser)
    _add_json(parser, "one JSON object per document")
    parser.set_defaults(run=run_repeats)


def run_repeats(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    config = _config(args)
    reader = _reader(args, console)
    sources = args.inputs or ["-"]
    if sources == ["-"] and sys.stdin.isatty():
        console.say("neardup: reading the text from the terminal; end it with Ctrl-D")
    for document in reader.documents(sources):
        report = repeats(document, config)
        if args.json:
            out.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
        else:
            _print_repeats(out, document, report)
    _report_skips(console, reader, "inputs")
    return EXIT_OK


def _print_repeats(out: TextIO, document: Document, report: RepeatReport) -> None:
    out.write(f"{_printable(report.id)}: {report.paragraphs} paragraphs ({report.body_paragraphs} body), "
              f"{report.repeated_paragraphs} repeat an earlier one; duplicate fraction "
              f"{report.duplicate_fraction:.2f} of body paragraphs, {report.duplicate_char_fraction:.2f} "
              f"of characters; {len(report.groups)} group{'s' if len(report.groups) != 1 else ''}\n")
    for number, group in enumerate(report.groups, 1):
        start, end = group.spans[0]
        excerpt = _printable(" ".join(document.text[start:end].split()))
        excerpt = excerpt if len(excerpt) <= 60 else excerpt[:57] + "..."
        note = "" if group.identical_text else ", texts differ"
        members = ", ".join(str(p) for p in group.paragraphs)
        out.write(f"  {number:>3}. paragraphs {members} ({group.kind}{note}): {excerpt}\n")
    shown = ("dup_line", "dup_5", "top_2")
    figures = ", ".join(f"{k} {v:.3f}" for k, v in report.gopher.items() if k.startswith(shown))
    out.write(f"  {figures}\n")


def _printable(text: str) -> str:
    """Text a terminal can show: lone surrogates (from invalid input) replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")


# -- serve ---------------------------------------------------------------------------------------------

def _add_serve(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(commands, common, "serve", "serve an index over HTTP, with a page for people",
                      "An HTTP service over one index (OpenAPI at /docs) and a page at / to paste a story and "
                      "see who republished it. Needs: pip install 'neardup[serve]'.",
                      "examples:\n  neardup serve news.idx\n  neardup serve news.idx --writable --port 8080\n")
    parser.add_argument("index", metavar="INDEX", help="index folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--writable", action="store_true", help="accept POST and DELETE of documents")
    parser.add_argument("--max-body-mb", type=float, default=16.0, metavar="MB",
                        help="largest request body accepted (default 16)")
    parser.add_argument("--readers", type=int, default=None, metavar="N",
                        help="threads answering queries, each with its own snapshot (default: cores, at least 2)")
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    try:
        from .server import serve
    except ImportError as err:
        raise _usage(f"serving needs the web extra: pip install 'neardup[serve]' ({err})") from None
    serve(args.index, host=args.host, port=args.port, writable=args.writable,
          max_body=int(args.max_body_mb * (1 << 20)), console=console, readers=args.readers)
    return EXIT_OK


# -- shared helpers ------------------------------------------------------------------------------------

def _config(args: argparse.Namespace) -> Config:
    for name in ("threshold", "min_containment", "repeat_threshold"):
        value = getattr(args, name, None)
        if value is not None and not (isinstance(value, float) and math.isfinite(value)):
            raise _usage(f"--{name.replace('_', '-')} must be a number")
    return Config().with_options(
        threshold=getattr(args, "threshold", None), min_containment=getattr(args, "min_containment", None),
        shingle_size=getattr(args, "shingle_size", None), num_perm=getattr(args, "num_perm", None),
        repeat_threshold=getattr(args, "repeat_threshold", None))


def _index_config(path: str, args: argparse.Namespace) -> Config | None:
    """Fingerprint options given on the command line must agree with the index (checked on open)."""
    given = {k: getattr(args, k, None) for k in ("shingle_size", "num_perm", "seed")}
    if all(v is None for v in given.values()):
        return None
    from .diskstore import DiskStorage, is_index

    stored = Config()
    if is_index(path):
        storage = DiskStorage(path)
        stored = storage.config
        storage.close()
    return stored.with_options(**given)


def _reader(args: argparse.Namespace, console: Console, *, unique_ids: bool = False, spill: Any = None) -> Reader:
    announced = [0]

    def on_skip(problem: RecordError) -> None:
        announced[0] += 1
        if announced[0] <= _MAX_SKIP_MESSAGES:
            console.say(f"neardup: skipped {problem}")
        elif announced[0] == _MAX_SKIP_MESSAGES + 1:
            console.say("neardup: more records skipped; see the summary")

    if not (args.max_record_mb > 0 and math.isfinite(args.max_record_mb)) or args.max_paragraphs < 1:
        raise _usage("--max-record-mb and --max-paragraphs must be positive")
    return Reader(id_field=args.id_field, text_field=args.text_field, strict=args.strict,
                  unique_ids=unique_ids, on_skip=on_skip, max_record_bytes=int(args.max_record_mb * (1 << 20)),
                  max_paragraphs=args.max_paragraphs, spill=spill)


def _progress_enabled(args: argparse.Namespace) -> bool | None:
    if getattr(args, "no_progress", False):
        return False
    return switch(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False))


def _reading(reader: Reader, sources: Sequence[str], label: str,
             args: argparse.Namespace) -> tuple[Iterator[Document], Progress]:
    progress = Progress(label, total_bytes=total_input_bytes(sources), enabled=_progress_enabled(args))
    return track(reader.documents(sources), progress, lambda: reader.stats.source_bytes), progress


def _report_skips(console: Console, reader: Reader, what: str) -> None:
    if reader.stats.skipped:
        console.say(f"neardup: {what}: {reader.stats.summary()}")


def _workers(requested: int) -> int:
    """--workers N: N threads; 0 means one per core."""
    if requested < 0:
        raise _usage("--workers must be at least 0")
    return (os.cpu_count() or 1) if requested == 0 else requested


class _UsageError(NearDupError):
    exit_code = EXIT_USAGE


def _usage(message: str) -> _UsageError:
    return _UsageError(message)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``neardup`` command; returns the exit code."""
    _mind_closed_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out or sys.stdout
    try:
        console = Console(args.quiet, args.verbose, args.log_file)
    except OSError as err:
        print(f"neardup: error: --log-file {args.log_file}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args, out, console))
    except NearDupError as err:
        console.warn(f"neardup: error: {_printable(str(err))}")
        return err.exit_code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        console.warn("neardup: interrupted")
        return 130
    except MemoryError:
        console.warn("neardup: error: out of memory; use smaller inputs or batches")
        return EXIT_INTERNAL
    except OSError as err:  # a full disk, a closed stream, a folder given as a file...
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        console.warn(f"neardup: error: {where}{err.strerror or err}")
        return EXIT_USAGE
    finally:
        _flush_stdout(out)
        console.close()


class _ClosedStream(io.TextIOBase):
    """Stands for a standard stream whose descriptor was closed (``>&-``, ``<&-``; Python then
    sets it to None): using it is an OSError, a one-line error, not an AttributeError traceback."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.what = f"standard {name} is closed"

    def _closed(self, *_: object) -> Any:
        raise OSError(errno.EBADF, self.what)

    write = read = readline = fileno = _closed

    @property
    def buffer(self) -> Any:
        self._closed()

    def isatty(self) -> bool:
        return False

    def flush(self) -> None:
        pass


def _mind_closed_streams() -> None:
    if sys.stdin is None:
        sys.stdin = _ClosedStream("input")
    if sys.stdout is None:
        sys.stdout = _ClosedStream("output")


def _flush_stdout(out: TextIO) -> None:
    """Flush now, so that a closed or full stdout is an error here, not a traceback at exit."""
    try:
        out.flush()
    except (BrokenPipeError, ValueError):
        _silence_stdout()
    except OSError:
        _silence_stdout()


def _silence_stdout() -> None:
    """After a closed pipe (``| head``), keep Python from complaining at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
