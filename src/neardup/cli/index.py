"""``neardup index``: create or extend a persistent index from any inputs."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from neardup.cli.common import (
    FORMATS,
    Console,
    add_input_options,
    add_json,
    amount,
    command_parser,
    index_config,
    make_reader,
    progress_enabled,
    usage,
    workers,
)
from neardup.cli.progress import Progress
from neardup.errors import EXIT_OK
from neardup.index.index import Index
from neardup.io.formats import total_input_bytes
from neardup.pipeline.ingest import index_inputs

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


def add_index(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "index", "create or extend a persistent index",
                      "Fingerprint documents and add them to the index folder INDEX (created if missing). "
                      "Streams any number of documents in bounded memory.", _INDEX_EXAMPLES)
    parser.add_argument("index", metavar="INDEX", help="index folder: new, empty, or an index")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=FORMATS)
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="threads fingerprinting in parallel (default 0 = one per core)")
    parser.add_argument("--batch-size", type=int, default=5000, metavar="N",
                        help="documents per committed batch (default 5000)")
    parser.add_argument("--replace", action="store_true", help="replace documents whose id is already indexed")
    parser.add_argument("--no-text", action="store_true",
                        help="do not store the texts (new index only): shingles are kept, answers stay exact, "
                             "but no evidence text and no 'show'")
    parser.add_argument("--wait", type=amount(), default=0.0, metavar="SECONDS",
                        help="wait this long for another writer to finish (default: fail at once)")
    creation = parser.add_argument_group("fingerprints (fixed when the index is created)")
    creation.add_argument("--shingle-size", type=int, metavar="N", help="words per shingle (default 5)")
    creation.add_argument("--num-perm", type=int, metavar="P", help="MinHash permutations (default 128)")
    creation.add_argument("--seed", type=int, metavar="S", help="MinHash seed (default 1)")
    add_input_options(parser)
    add_json(parser, "print the summary as one JSON object on stdout")
    parser.set_defaults(run=run_index)


def run_index(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    if args.batch_size < 1:
        raise usage("--batch-size must be at least 1")

    reader = make_reader(args, console)
    with Index.open(args.index, index_config(args.index, args), writable=True, keep_text=not args.no_text,
                    wait=args.wait) as index:
        progress = Progress("indexing", total_bytes=total_input_bytes(args.inputs), enabled=progress_enabled(args))
        report = index_inputs(index, reader, args.inputs, workers=workers(args.workers), batch_size=args.batch_size,
                              on_duplicate="replace" if args.replace else "skip",
                              on_batch=lambda _: progress.update(reader.stats.read, reader.stats.source_bytes))
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
