"""``neardup repeats``: what repeats inside each document."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from neardup.cli.common import (
    FORMATS,
    Console,
    add_input_options,
    add_json,
    build_config,
    command_parser,
    make_reader,
    printable,
    report_skips,
)
from neardup.document import Document
from neardup.errors import EXIT_OK
from neardup.match.repetition import RepeatReport, repeats

_REPEATS_EXAMPLES = """\
examples:
  neardup repeats examples/repeated-page.txt
  neardup repeats --json pages.jsonl | jq 'select(.duplicate_fraction > 0.3) | .id'
  curl -s https://example.org/page.txt | neardup repeats

duplicate_fraction: share of body paragraphs (>= 6 words) repeating an earlier paragraph;
duplicate_char_fraction: share of characters; the dup_*/top_* figures follow the Gopher rules.
"""


def add_repeats(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "repeats", "find paragraphs repeated inside each document",
                      "Report, for each document, the groups of paragraphs that repeat each other (exactly or "
                      "nearly, e.g. a body printed twice with an ad call fused into one copy), the share of "
                      "paragraphs and characters that repeat, and the Gopher repetition figures.",
                      _REPEATS_EXAMPLES)
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help=f"{FORMATS}; nothing for stdin")
    parser.add_argument("--repeat-threshold", type=float, metavar="J",
                        help="paragraph Jaccard for a near repeat (default 0.5)")
    add_input_options(parser)
    add_json(parser, "one JSON object per document")
    parser.set_defaults(run=run_repeats)


def run_repeats(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    config = build_config(args)
    reader = make_reader(args, console)
    sources = args.inputs or ["-"]
    if sources == ["-"] and sys.stdin.isatty():
        console.say("neardup: reading the text from the terminal; end it with Ctrl-D")
    for document in reader.documents(sources):
        report = repeats(document, config)
        if args.json:
            out.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
        else:
            _print_repeats(out, document, report)
    report_skips(console, reader, "inputs")
    return EXIT_OK


def _print_repeats(out: TextIO, document: Document, report: RepeatReport) -> None:
    out.write(f"{printable(report.id)}: {report.paragraphs} paragraphs ({report.body_paragraphs} body), "
              f"{report.repeated_paragraphs} repeat an earlier one; duplicate fraction "
              f"{report.duplicate_fraction:.2f} of body paragraphs, {report.duplicate_char_fraction:.2f} "
              f"of characters; {len(report.groups)} group{'s' if len(report.groups) != 1 else ''}\n")
    for number, group in enumerate(report.groups, 1):
        start, end = group.spans[0]
        excerpt = printable(" ".join(document.text[start:end].split()))
        excerpt = excerpt if len(excerpt) <= 60 else excerpt[:57] + "..."
        note = "" if group.identical_text else ", texts differ"
        members = ", ".join(str(p) for p in group.paragraphs)
        out.write(f"  {number:>3}. paragraphs {members} ({group.kind}{note}): {excerpt}\n")
    shown = ("dup_line", "dup_5", "top_2")
    figures = ", ".join(f"{k} {v:.3f}" for k, v in report.gopher.items() if k.startswith(shown))
    out.write(f"  {figures}\n")

