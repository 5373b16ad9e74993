"""``neardup serve``: the HTTP service and its page over an index (the serve extra)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from neardup.cli.common import Console, command_parser, usage
from neardup.errors import EXIT_OK


def add_serve(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = command_parser(commands, common, "serve", "serve an index over HTTP, with a page for people",
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
        from neardup.service.app import serve
    except ImportError as err:
        raise usage(f"serving needs the web extra: pip install 'neardup[serve]' ({err})") from None
    serve(args.index, host=args.host, port=args.port, writable=args.writable,
          max_body=int(args.max_body_mb * (1 << 20)), console=console, readers=args.readers)
    return EXIT_OK

