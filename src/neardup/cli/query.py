"""``neardup query``: where else does a story appear, in an index folder or in documents indexed in memory."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from neardup.cli.common import (
    FORMATS,
    Console,
    add_input_options,
    build_config,
    command_parser,
    index_config,
    make_reader,
    reading,
    report_skips,
    usage,
)
from neardup.document import Document
from neardup.errors import EXIT_OK, InputError
from neardup.index.index import Index
from neardup.match.evidence import Match
from neardup.threads import BATCH_TEXT_BYTES, batched

#: Metadata fields a query prints when a match has them (who published it, when, what).
_SHOWN_FIELDS = ("source", "outlet", "site", "publisher", "date", "published", "title")


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


def add_query(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "query", "find the documents that copy a story, whole or in part",
                      "Report, for each query document, the indexed documents holding its text: exact "
                      "copies, near-duplicates and partial copies (truncated, extended, embedded, or sharing "
                      "paragraphs), with the paragraphs they share.", _QUERY_EXAMPLES)
    parser.add_argument("queries", nargs="*", metavar="[INDEX] FILE",
                        help="an index folder (unless --corpus is given), then query documents: "
                             f"{FORMATS}; nothing for stdin")
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
    add_input_options(parser)
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="one JSON line per match (see below)")
    output.add_argument("--show-text", action="store_true", help="also print the shared passages of both texts")
    parser.set_defaults(run=run_query)


def run_query(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    if args.top is not None and args.top < 1:
        raise usage("--top must be at least 1")
    queries = list(args.queries)
    if args.corpus:
        index = _memory_index(args, console)
    else:
        if not queries:
            raise usage("give an index folder, or the documents to search with --corpus INPUT")
        path = queries.pop(0)
        index = _open_for_query(path, args)
    with index:
        sources = queries or ["-"]
        if sources == ["-"] and sys.stdin.isatty():
            console.say("neardup: reading the query from the terminal; end it with Ctrl-D")
        query_reader = make_reader(args, console)
        decisions = {"threshold": args.threshold, "min_containment": args.min_containment, "top": args.top}
        for batch in batched(query_reader.documents(sources), 256, weight=lambda d: len(d.text),
                             budget=BATCH_TEXT_BYTES):
            with index.storage.reading():  # the answers and the texts they quote from one snapshot
                for document, matches in zip(batch, index.query_many(batch, **decisions)):
                    _print_matches(out, index, document, matches, args)
        report_skips(console, query_reader, "queries")
    return EXIT_OK


def _open_for_query(path: str, args: argparse.Namespace) -> Index:
    try:
        return Index.open(path, index_config(path, args))
    except InputError as err:
        if os.path.isfile(path) or not os.path.exists(path):
            raise usage(f"{err}; to search documents without an index, give them with --corpus {path}") from None
        raise


def _memory_index(args: argparse.Namespace, console: Console) -> Index:
    index = Index(build_config(args))
    corpus_reader = make_reader(args, console, unique_ids=True)
    documents, progress = reading(corpus_reader, args.corpus, "indexing", args)
    report = index.add(documents, workers=1)
    progress.close()
    report_skips(console, corpus_reader, "corpus")
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
                record["shared_text"] = index.shared_texts(query, match)
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
            for pair in index.shared_texts(query, m):
                out.write(f"      query  ¶{pair['query_paragraph']}: {_excerpt(pair['query_text'])}\n")
                out.write(f"      match  ¶{pair['match_paragraph']}: {_excerpt(pair['match_text'])}\n")


def _excerpt(text: str | None, width: int = 100) -> str:
    if text is None:
        return "(this index keeps no texts)"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 3] + "..."

