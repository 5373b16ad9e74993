"""``neardup serve``: the HTTP service and its page over an index (the serve extra)."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, TextIO

from neardup.cli.common import Console, amount, command_parser, usage
from neardup.errors import EXIT_OK, ConfigError
from neardup.service.limits import Limits


def add_serve(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "serve", "serve an index over HTTP, with a page for people",
                      "An HTTP service over one index (OpenAPI at /docs) and a page at / to paste a story and "
                      "see who republished it. Needs: pip install 'neardup[serve]'.",
                      "examples:\n  neardup serve news.idx\n  neardup serve news.idx --writable --port 8080\n"
                      "  neardup serve news.idx --limit max_connections=200 --limit header_timeout=5\n\n"
                      "limits (--limit NAME=VALUE; GET /stats lists them all):\n" + _limit_help())
    parser.add_argument("index", metavar="INDEX", help="index folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=amount(0, whole=True, at_most=65535), default=8000,
                        help="port (default 8000; 0: any free port, printed at start)")
    parser.add_argument("--writable", action="store_true", help="accept POST and DELETE of documents")
    parser.add_argument("--max-body-mb", type=amount(above=True), default=16.0, metavar="MB",
                        help="largest request body accepted (default 16)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="change one limit of what requests and clients may take (repeatable; listed below)")
    parser.add_argument("--readers", type=amount(1, whole=True), default=None, metavar="N",
                        help="threads answering queries, each with its own snapshot (default: cores, at least 2)")
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace, out: TextIO, console: Console) -> int:
    try:
        from neardup.service.app import serve
    except ImportError as err:
        raise usage(f"serving needs the web extra: pip install 'neardup[serve]' ({err})") from None
    limits = limits_of(args)
    serve(args.index, host=args.host, port=args.port, writable=args.writable, limits=limits,
          max_body=limits.max_body, console=console, readers=args.readers)
    return EXIT_OK


def limits_of(args: argparse.Namespace) -> Limits:
    """The server's Limits from ``--max-body-mb`` and ``--limit NAME=VALUE`` options (a usage error
    names what is wrong; ``--limit max_body=`` wins over ``--max-body-mb``)."""
    known = {field.name: field.type for field in fields(Limits)}
    changes: dict[str, float | int] = {"max_body": int(args.max_body_mb * (1 << 20))}
    for item in args.limit:
        name, _, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if name not in known or not value:
            raise usage(f"--limit {item!r}: expected NAME=VALUE with NAME one of {', '.join(sorted(known))}")
        try:
            changes[name] = float(value) if known[name] in (float, "float") else int(value)
        except ValueError:
            raise usage(f"--limit {item!r}: {value!r} is not a number") from None
    for budget in ("body_budget", "client_body_budget"):
        if budget not in changes:
            changes[budget] = max(getattr(Limits, budget), int(changes["max_body"]))
    try:
        return Limits(**changes)  # type: ignore[arg-type]  # each value of its field's type
    except ConfigError as err:
        raise usage(f"--limit: {err}") from None


def _limit_help() -> str:
    return ("  max_body, max_documents, max_queries, max_paragraphs, max_request_paragraphs,\n"
            "  max_request_lines, max_top, default_top, max_id_length, max_answer, max_waiting_reads,\n"
            "  max_waiting_writes, max_waiting_large, body_budget, client_body_budget, inline_body,\n"
            "  large_workers, large_worker_memory, max_connections, max_client_connections,\n"
            "  header_timeout, body_timeout, min_body_rate\n")
