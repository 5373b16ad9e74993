"""``neardup show``, ``remove``, ``stats`` and ``verify``: look into an index, change it, check it."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from neardup.cli.common import Console, add_json, amount, command_parser, size_text
from neardup.errors import EXIT_OK, EXIT_USAGE
from neardup.index.disk import DiskStorage
from neardup.index.index import Index


def add_show(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "show", "print a stored document",
                      "Print the stored text, paragraphs and metadata of indexed documents.",
                      "examples:\n  neardup show news.idx recall-original\n"
                      "  neardup show news.idx a b --json | jq .metadata\n")
    parser.add_argument("index", metavar="INDEX", help="index folder")
    parser.add_argument("ids", nargs="+", metavar="ID", help="ids of indexed documents")
    add_json(parser, "one JSON object per document: id, text, paragraphs (spans), metadata")
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


def add_remove(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "remove", "remove documents from an index by id",
                      "Remove the documents with these ids from the index (one transaction each).",
                      "example:\n  neardup remove news.idx story-17 story-18\n\n"
                      "Exit code 2 when an id is not in the index (the others are removed).\n")
    parser.add_argument("index", metavar="INDEX", help="index folder")
    parser.add_argument("ids", nargs="+", metavar="ID", help="ids of indexed documents")
    parser.add_argument("--wait", type=amount(), default=0.0, metavar="SECONDS",
                        help="wait this long for another writer to finish (default: fail at once)")
    parser.set_defaults(run=run_remove)


def run_remove(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    with Index.open(args.index, writable=True, wait=args.wait) as index:
        missing = [id for id in args.ids if not index.remove(id)]
    for id in missing:
        console.warn(f"neardup: {args.index}: no document {id!r}")
    console.say(f"neardup: {args.index}: removed {len(args.ids) - len(missing):,}")
    return EXIT_OK if not missing else EXIT_USAGE


def add_stats(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "stats", "describe an index",
                      "Documents, paragraphs, size on disk, parameters and format version of an index.",
                      "examples:\n  neardup stats news.idx\n  neardup stats news.idx --json | jq .documents\n")
    parser.add_argument("index", metavar="INDEX", help="index folder")
    add_json(parser, "print one JSON object")
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
        return size_text(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)



def add_verify(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "verify", "check every byte of an index against its checksums",
                      "Read every segment file and every stored document of an index and compare them with "
                      "their checksums; exit 3 naming the first damaged file or document.",
                      "example:\n  neardup verify news.idx && echo intact\n")
    parser.add_argument("index", metavar="INDEX", help="index folder")
    add_json(parser, "print the result as one JSON object")
    parser.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace, out: TextIO, console: Console) -> int:
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
                    f"{report['files']:,} segment files ({size_text(report['bytes'])}) match their checksums")
    return EXIT_OK

