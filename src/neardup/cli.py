"""The ``neardup`` command: a thin layer that parses, builds a Config, calls the library, prints.

Exit codes: 0 success (skipped records are reported on stderr), 1 internal
error, 2 usage or input error, 3 an index that cannot be trusted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Iterable, Iterator, Sequence, TextIO

from . import __version__
from .kernel import compiled
from .config import Config
from .document import Document
from .errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, NearDupError, RecordError
from .evidence import Match
from .index import Index, batched
from .inputs import Reader
from .progress import Progress
from .repetition import RepeatReport, repeats

#: Skipped records announced one by one before the summary takes over.
_MAX_SKIP_MESSAGES = 20

_INDEX_EXAMPLES = """\
examples:
  neardup index news.idx examples/wire.jsonl            # create, or add to, an index
  neardup index news.idx archive/ today.jsonl.gz --workers 2
  zcat feed.jsonl.gz | neardup index news.idx -         # from stdin
  neardup index news.idx new-versions.jsonl --replace   # replace documents whose id is indexed

A document whose id is already indexed is skipped (reason: duplicate id) unless --replace,
so re-running an interrupted command resumes it. Each batch is committed atomically: a
killed process leaves every batch committed before the kill, and nothing half-written.
"""

_QUERY_EXAMPLES = """\
examples:
  # against a persistent index (see 'neardup index')
  neardup query news.idx examples/query-story.txt
  # where else does this story appear? (in-memory corpus, one JSON line per match)
  neardup query --corpus examples/wire.jsonl examples/query-story.txt --json
  # every document of a JSON Lines file as a query, against two corpora
  neardup query --corpus archive.jsonl.gz --corpus today/ queries.jsonl --top 5
  # the text on stdin, stricter near-duplicates, partial copies from 30 % containment
  cat story.txt | neardup query --corpus corpus.jsonl --threshold 0.9 --min-containment 0.3

kinds: exact (same normalised text), near-duplicate (article Jaccard >= --threshold, or
both containments >= 0.9), partial (containment either way >= --min-containment).
containment.query_in_match is the share of the query's shingles found in the match,
weighted by paragraph (short lines and boilerplate count little); match_in_query the reverse.
"""

_REPEATS_EXAMPLES = """\
examples:
  neardup repeats examples/repeated-page.txt
  neardup repeats --json pages.jsonl | jq 'select(.duplicate_fraction > 0.3) | .id'
  curl -s https://example.org/page.txt | neardup repeats -

duplicate_fraction: share of body paragraphs (>= 6 words) repeating an earlier paragraph;
duplicate_char_fraction: share of characters; the dup_*/top_* figures follow the Gopher rules.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neardup",
        description="Find copies of news text, whole or in part, and repetition inside documents.",
        epilog="Run 'neardup COMMAND --help' for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"neardup {__version__} "
                        f"({'compiled kernel' if compiled() else 'numpy path: no compiled kernel'})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _add_index(commands)
    _add_query(commands)
    _add_dedup(commands)
    _add_remove(commands)
    _add_stats(commands)
    _add_repeats(commands)
    return parser


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input")
    group.add_argument("--id-field", default="id", help="JSON field holding the document id (default: id)")
    group.add_argument("--text-field", default="text",
                       help="JSON field holding the text, a string or a list of paragraphs (default: text)")
    group.add_argument("--strict", action="store_true",
                       help="stop with exit code 2 at the first bad record instead of skipping it")
    group.add_argument("--max-record-mb", type=float, default=64.0, metavar="MB",
                       help="skip records (JSON lines, text files) larger than this (default 64)")
    group.add_argument("--max-paragraphs", type=int, default=100_000, metavar="N",
                       help="skip documents with more paragraphs than this (default 100000)")
    group.add_argument("--json", action="store_true", help="print JSON Lines instead of a table")


def _add_query(commands: Any) -> None:
    parser = commands.add_parser(
        "query", help="find the documents of a corpus that copy a story, whole or in part",
        description="Index a corpus in memory, then report, for each query document, the corpus "
                    "documents holding its text: exact copies, near-duplicates and partial copies "
                    "(truncated, extended, embedded, or sharing paragraphs), with evidence.",
        epilog=_QUERY_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("queries", nargs="*", metavar="[INDEX] FILE|-",
                        help="an index folder (unless --corpus is given), then query documents: .txt, .jsonl, "
                             ".jsonl.gz, .csv, folders; '-' or nothing for stdin")
    parser.add_argument("--corpus", action="append", metavar="INPUT",
                        help="search these documents, indexed in memory, instead of an index folder "
                             "(.jsonl, .jsonl.gz, .txt, .csv, folders, '-'); repeat for more")
    tuning = parser.add_argument_group("thresholds")
    tuning.add_argument("--threshold", type=float, metavar="J",
                        help="article Jaccard for a near-duplicate (default 0.8)")
    tuning.add_argument("--min-containment", type=float, metavar="C",
                        help="containment either way for a partial copy (default 0.3)")
    tuning.add_argument("--top", type=int, metavar="K", help="at most K matches per query")
    tuning.add_argument("--shingle-size", type=int, metavar="N", help="words per shingle (default 5)")
    tuning.add_argument("--num-perm", type=int, metavar="P", help="MinHash permutations (default 128)")
    _add_input_options(parser)
    parser.set_defaults(run=run_query)


def _add_repeats(commands: Any) -> None:
    parser = commands.add_parser(
        "repeats", help="find paragraphs repeated inside each document",
        description="Report, for each document, the groups of paragraphs that repeat each other "
                    "(exactly or nearly, e.g. a body printed twice with an ad call fused into one copy), "
                    "the share of paragraphs and characters that repeat, and the Gopher repetition figures.",
        epilog=_REPEATS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", metavar="FILE|-",
                        help=".txt, .jsonl, .jsonl.gz, folders; '-' or nothing for stdin")
    parser.add_argument("--repeat-threshold", type=float, metavar="J",
                        help="paragraph Jaccard for a near repeat (default 0.5)")
    _add_input_options(parser)
    parser.set_defaults(run=run_repeats)


def _config(args: argparse.Namespace) -> Config:
    return Config().with_options(
        threshold=getattr(args, "threshold", None), min_containment=getattr(args, "min_containment", None),
        shingle_size=getattr(args, "shingle_size", None), num_perm=getattr(args, "num_perm", None),
        repeat_threshold=getattr(args, "repeat_threshold", None))


def _reader(args: argparse.Namespace, *, unique_ids: bool = False) -> Reader:
    announced = [0]

    def on_skip(problem: RecordError) -> None:
        announced[0] += 1
        if announced[0] <= _MAX_SKIP_MESSAGES:
            print(f"neardup: skipped {problem}", file=sys.stderr)
        elif announced[0] == _MAX_SKIP_MESSAGES + 1:
            print("neardup: more records skipped; see the summary", file=sys.stderr)

    if args.max_record_mb <= 0 or args.max_paragraphs < 1:
        raise _usage("--max-record-mb and --max-paragraphs must be positive")
    return Reader(id_field=args.id_field, text_field=args.text_field, strict=args.strict,
                  unique_ids=unique_ids, on_skip=on_skip, max_record_bytes=int(args.max_record_mb * (1 << 20)),
                  max_paragraphs=args.max_paragraphs)


def _report_skips(reader: Reader, what: str) -> None:
    if reader.stats.skipped:
        print(f"neardup: {what}: {reader.stats.summary()}", file=sys.stderr)


def run_query(args: argparse.Namespace, out: TextIO) -> int:
    if args.top is not None and args.top < 1:
        raise _usage("--top must be at least 1")
    queries = list(args.queries)
    if args.corpus:
        index = _memory_index(args)
    else:
        if not queries:
            raise _usage("give an index folder, or --corpus INPUT")
        path = queries.pop(0)
        index = Index.open(path, _index_config(path, args))
    with index:
        query_reader = _reader(args)
        decisions = {"threshold": args.threshold, "min_containment": args.min_containment, "top": args.top}
        for batch in batched(query_reader.documents(queries or ["-"]), 256):
            for document, matches in zip(batch, index.query_many(batch, **decisions)):
                _print_matches(out, document, matches, args.json)
        _report_skips(query_reader, "queries")
    return EXIT_OK


def _memory_index(args: argparse.Namespace) -> Index:
    index = Index(_config(args))
    corpus_reader = _reader(args, unique_ids=True)
    progress = Progress("indexing", total_bytes=_total_bytes(args.corpus))
    report = index.add(_with_progress(corpus_reader.documents(args.corpus), corpus_reader, progress))
    progress.close()
    _report_skips(corpus_reader, "corpus")
    if report.skipped:
        reasons = ", ".join(f"{n} {r}" for r, n in report.skipped.items())
        print(f"neardup: corpus: not indexed: {reasons}", file=sys.stderr)
    return index


def _index_config(path: str, args: argparse.Namespace) -> Config | None:
    """Fingerprint options given on the command line must agree with the index (checked on open)."""
    given = {k: getattr(args, k, None) for k in ("shingle_size", "num_perm", "seed")}
    if all(v is None for v in given.values()):
        return None
    from .diskstore import DiskStorage

    stored = DiskStorage(path).config if os.path.exists(os.path.join(path, "neardup.sqlite")) else Config()
    return stored.with_options(**given)


def _add_index(commands: Any) -> None:
    parser = commands.add_parser(
        "index", help="create or extend a persistent index",
        description="Fingerprint documents and add them to the index folder INDEX (created if missing). "
                    "Streams any number of documents in bounded memory; a progress line shows on a terminal.",
        epilog=_INDEX_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", metavar="INDEX", help="index folder")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help=".jsonl, .jsonl.gz, .txt, .csv, .parquet, folders, '-' for stdin")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="threads fingerprinting in parallel (default 0 = all cores)")
    parser.add_argument("--batch-size", type=int, default=5000, metavar="N",
                        help="documents per committed batch (default 5000)")
    parser.add_argument("--replace", action="store_true", help="replace documents whose id is already indexed")
    parser.add_argument("--no-text", action="store_true",
                        help="do not store the texts (new index only): smaller, but Jaccard is estimated")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long for another writer to finish (default: fail at once)")
    creation = parser.add_argument_group("fingerprints (fixed when the index is created)")
    creation.add_argument("--shingle-size", type=int, metavar="N", help="words per shingle (default 5)")
    creation.add_argument("--num-perm", type=int, metavar="P", help="MinHash permutations (default 128)")
    creation.add_argument("--seed", type=int, metavar="S", help="MinHash seed (default 1)")
    _add_input_options(parser)
    parser.set_defaults(run=run_index)


def run_index(args: argparse.Namespace, out: TextIO) -> int:
    if args.batch_size < 1:
        raise _usage("--batch-size must be at least 1")
    workers = _workers(args.workers)
    reader = _reader(args)
    with Index.open(args.index, _index_config(args.index, args), writable=True, keep_text=not args.no_text,
                    wait=args.wait) as index:
        progress = Progress("indexing", total_bytes=_total_bytes(args.inputs))
        report = index.add(_with_progress(reader.documents(args.inputs), reader, progress),
                           batch_size=args.batch_size, workers=workers,
                           on_duplicate="replace" if args.replace else "skip")
        progress.close()
        total = len(index)
    skipped = dict(reader.stats.skipped)
    for reason, count in report.skipped.items():
        skipped[reason] = skipped.get(reason, 0) + count
    summary = {"index": args.index, "added": report.added, "replaced": report.replaced,
               "skipped": sum(skipped.values()), "skipped_reasons": skipped, "documents": total}
    if args.json:
        out.write(json.dumps(summary) + "\n")
    reasons = ", ".join(f"{n} {r}" for r, n in skipped.items())
    print(f"neardup: {args.index}: added {report.added}, replaced {report.replaced}, skipped "
          f"{summary['skipped']}{f' ({reasons})' if reasons else ''}; {total} documents in the index",
          file=sys.stderr)
    return EXIT_OK


_DEDUP_EXAMPLES = """\
examples:
  neardup dedup examples/wire.jsonl --out kept.jsonl --clusters clusters.jsonl
  neardup dedup corpus/ --out kept.jsonl.gz --clusters clusters.jsonl --keep earliest --workers 2
  neardup dedup feed.jsonl --out kept.jsonl --clusters c.jsonl --index feed.idx   # keep the index

CLUSTERS has one line per input document: id, cluster (the representative's id),
representative, kind (its relation to the representative: exact, near-duplicate,
partial, or linked when joined only through other documents), jaccard, containment.
KEPT is JSON Lines (or CSV if its name ends in .csv) with every field of the kept records.
"""


def _add_dedup(commands: Any) -> None:
    parser = commands.add_parser(
        "dedup", help="keep one document per story; report the clusters",
        description="Cluster near-duplicates (and, unless --no-partial, partial copies: truncated copies, "
                    "articles inside longer pages, updated versions) and keep one representative per cluster.",
        epilog=_DEDUP_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help=".jsonl, .jsonl.gz, .txt, .csv, .parquet, folders, '-' for stdin")
    parser.add_argument("--out", required=True, metavar="KEPT", help="where to write the kept documents")
    parser.add_argument("--clusters", required=True, metavar="CLUSTERS", help="where to write one line per input")
    parser.add_argument("--index", metavar="INDEX", help="build (or reuse) this persistent index instead of a "
                                                         "temporary one")
    parser.add_argument("--keep", choices=("first", "longest", "earliest"), default="first",
                        help="representative: first in input order (default), longest text, or earliest "
                             "--date-field; ties broken by id")
    parser.add_argument("--date-field", default="date", metavar="FIELD", help="field read by --keep earliest")
    parser.add_argument("--no-partial", action="store_true", help="cluster exact and near-duplicates only")
    parser.add_argument("--partial-containment", type=float, default=None, metavar="C",
                        help="weighted share (furniture discounted) of a removed document inside its "
                             "representative (default 0.7)")
    parser.add_argument("--min-coverage", type=float, default=None, metavar="C",
                        help="share of a removed document that its representative must hold, every word "
                             "counted (default 0.75)")
    parser.add_argument("--threshold", type=float, metavar="J", help="article Jaccard for near-duplicates (0.8)")
    parser.add_argument("--drop-repeats", action="store_true",
                        help="also remove paragraphs that repeat an earlier one from the kept documents")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="threads fingerprinting and comparing in parallel (default 0 = all cores)")
    _add_input_options(parser)
    parser.set_defaults(run=run_dedup)


def run_dedup(args: argparse.Namespace, out: TextIO) -> int:
    from .dedup import dedup
    from .outputs import open_output, write_records

    config = _config(args)
    if args.partial_containment is not None:
        if not 0.0 <= args.partial_containment <= 1.0:
            raise _usage("--partial-containment must be in [0, 1]")
        config = config.with_options(partial_containment=args.partial_containment)
    if args.min_coverage is not None:
        if not 0.0 <= args.min_coverage <= 1.0:
            raise _usage("--min-coverage must be in [0, 1]")
        config = config.with_options(min_coverage=args.min_coverage)
    reader = _reader(args, unique_ids=True)
    progress = Progress("reading", total_bytes=_total_bytes(args.inputs))
    comparing = Progress("comparing")

    def on_progress(phase: str, done: int, total: int | None) -> None:
        if phase == "comparing":
            if progress.enabled and not comparing.documents:
                progress.close()
            comparing.update(done, 0)

    index = Index.open(args.index, config, writable=True) if args.index else None
    try:
        result = dedup(_with_progress(reader.documents(args.inputs), reader, progress), config=config, index=index,
                       keep=args.keep, date_field=args.date_field, include_partial=not args.no_partial,
                       drop_repeats=args.drop_repeats, workers=_workers(args.workers), on_progress=on_progress)
    finally:
        if index is not None:
            index.close()
    comparing.close()
    if len(result) == 0:
        raise _usage("no documents read" + (f" ({reader.stats.summary()})" if reader.stats.skipped else ""))
    kept = {a.id: a for a in result if a.representative}
    with open_output(args.clusters) as handle:
        for assignment in result:
            handle.write(json.dumps(assignment.to_dict(), ensure_ascii=False) + "\n")
    second = _reader(args, unique_ids=True)
    second.on_skip = None  # the first pass already reported every skipped record
    write_records(args.out, (d for d in second.documents(args.inputs) if d.id in kept), kept,
                  id_field=args.id_field, text_field=args.text_field)
    _report_skips(reader, "inputs")
    summary = result.summary
    print(f"neardup: dedup: {summary.line()}", file=sys.stderr)
    if args.json:
        out.write(json.dumps({"documents": summary.documents, "clusters": summary.clusters,
                              "removed": summary.removed, "removed_by_kind": dict(summary.by_kind),
                              "skipped": dict(reader.stats.skipped)}) + "\n")
    return EXIT_OK


def _workers(requested: int) -> int:
    """--workers N: N processes; 0 means one per core."""
    if requested < 0:
        raise _usage("--workers must be at least 0")
    return (os.cpu_count() or 1) if requested == 0 else requested


def _add_remove(commands: Any) -> None:
    parser = commands.add_parser("remove", help="remove documents from an index by id",
                                 description="Remove the documents with these ids from the index.",
                                 epilog="example:\n  neardup remove news.idx story-17 story-18\n",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", metavar="INDEX")
    parser.add_argument("ids", nargs="+", metavar="ID")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    parser.set_defaults(run=run_remove)


def run_remove(args: argparse.Namespace, out: TextIO) -> int:
    with Index.open(args.index, writable=True, wait=args.wait) as index:
        missing = [id for id in args.ids if not index.remove(id)]
    for id in missing:
        print(f"neardup: {args.index}: no document {id!r}", file=sys.stderr)
    print(f"neardup: {args.index}: removed {len(args.ids) - len(missing)}", file=sys.stderr)
    return EXIT_OK if not missing else EXIT_USAGE


def _add_stats(commands: Any) -> None:
    parser = commands.add_parser("stats", help="describe an index",
                                 description="Documents, paragraphs, bytes on disk, parameters and format "
                                             "version of an index.",
                                 epilog="example:\n  neardup stats news.idx --json | jq .documents\n",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", metavar="INDEX")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace, out: TextIO) -> int:
    with Index.open(args.index) as index:
        stats = index.storage.stats()  # type: ignore[attr-defined]
    if args.json:
        out.write(json.dumps(stats) + "\n")
        return EXIT_OK
    config = stats.pop("config")
    for key, value in stats.items():
        out.write(f"{key:>16}: {value}\n")
    out.write(f"{'config':>16}: " + ", ".join(f"{k}={v}" for k, v in sorted(config.items())) + "\n")
    return EXIT_OK


def run_repeats(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args)
    reader = _reader(args)
    for document in reader.documents(args.inputs or ["-"]):
        report = repeats(document, config)
        if args.json:
            out.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
        else:
            _print_repeats(out, document, report)
    _report_skips(reader, "inputs")
    return EXIT_OK


def _with_progress(documents: Iterable[Document], reader: Reader, progress: Progress) -> Iterator[Document]:
    for count, document in enumerate(documents, 1):
        progress.update(count, reader.stats.bytes)
        yield document


def _total_bytes(sources: Sequence[str]) -> int | None:
    total = 0
    for source in sources:
        if source == "-" or not os.path.isfile(source) or source.endswith(".gz"):
            return None
        total += os.path.getsize(source)
    return total


def _print_matches(out: TextIO, query: Document, matches: list[Match], as_json: bool) -> None:
    if as_json:
        for match in matches:
            out.write(json.dumps({"query": query.id, **match.to_dict()}, ensure_ascii=False) + "\n")
        return
    out.write(f"{query.id}: {len(matches)} match{'es' if len(matches) != 1 else ''}\n")
    if matches:
        out.write(f"  {'kind':<15} {'jaccard':>8} {'q in m':>7} {'m in q':>7} {'shared':>6}  id\n")
    for m in matches:
        pairs = len(m.shared_paragraphs)
        out.write(f"  {m.kind:<15} {m.jaccard:>8.3f} {m.query_in_match:>7.3f} {m.match_in_query:>7.3f} "
                  f"{pairs:>6}  {m.id}\n")


def _print_repeats(out: TextIO, document: Document, report: RepeatReport) -> None:
    out.write(f"{report.id}: {report.paragraphs} paragraphs ({report.body_paragraphs} body), "
              f"{report.repeated_paragraphs} repeat an earlier one; duplicate fraction "
              f"{report.duplicate_fraction:.2f} of body paragraphs, {report.duplicate_char_fraction:.2f} "
              f"of characters; {len(report.groups)} group{'s' if len(report.groups) != 1 else ''}\n")
    for number, group in enumerate(report.groups, 1):
        start, end = group.spans[0]
        excerpt = " ".join(document.text[start:end].split())
        excerpt = excerpt if len(excerpt) <= 60 else excerpt[:57] + "..."
        note = "" if group.identical_text else ", texts differ"
        members = ", ".join(str(p) for p in group.paragraphs)
        out.write(f"  {number:>3}. paragraphs {members} ({group.kind}{note}): {excerpt}\n")
    figures = ", ".join(f"{k} {v:.3f}" for k, v in report.gopher.items() if k.startswith(("dup_line", "dup_5", "top_2")))
    out.write(f"  {figures}\n")


class _UsageError(NearDupError):
    exit_code = EXIT_USAGE


def _usage(message: str) -> _UsageError:
    return _UsageError(message)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``neardup`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out or sys.stdout
    try:
        return int(args.run(args, out))
    except NearDupError as err:
        print(f"neardup: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        print("neardup: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("neardup: error: out of memory; use smaller inputs or batches", file=sys.stderr)
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """After a closed pipe (``| head``), keep Python from complaining at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
