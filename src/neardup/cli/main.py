"""The ``neardup`` command: a thin layer that parses, builds a Config, calls the library, prints.

Exit codes (:mod:`neardup.errors`): 0 success (skipped records are reported on stderr), 1
internal error, 2 usage or input error, 3 an index that cannot be trusted, 4 another process is
writing to the index. argparse, not click or typer: the standard library gives the help groups,
epilogs and exit codes this needs, and the command stays one import away from the library.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from neardup import __version__
from neardup.cli import completion, dedup, index, maintain, query, repeats, serve, settings
from neardup.cli.common import Console, printable
from neardup.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, NearDupError
from neardup.native import compiled


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("messages")
    group.add_argument("-q", "--quiet", action="store_true", help="print errors only (no progress, no summary)")
    group.add_argument("-v", "--verbose", action="store_true",
                       help="more detail: the progress line also in logs, timings of each stage")
    group.add_argument("--no-progress", action="store_true", help="no progress line, even on a terminal")
    group.add_argument("--log-file", metavar="FILE", help="append messages (skips, summaries) to FILE, not stderr")
    common.add_argument("--config", metavar="FILE",
                        help="options from a TOML file (keys as the options are named; a [COMMAND] table for one "
                             "command) or a run's .meta.json sidecar; the command line wins")
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
    for add in (index.add_index, query.add_query, dedup.add_dedup, maintain.add_show, maintain.add_remove,
                maintain.add_stats, maintain.add_verify, repeats.add_repeats, serve.add_serve,
                completion.add_completion):
        add(commands, common)
    return parser



def _apply_config_file(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """With ``--config FILE``, the file's options become the command's defaults (the command line wins)."""
    path = settings.config_path(argv)
    if path is None:
        return
    commands: dict[str, argparse.ArgumentParser] = next(
        action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    command = next((word for word in argv if word in commands), None)
    if command is None:
        return  # argparse says what is missing
    shared, own = settings.load_options(path, command)
    settings.apply_options(commands, command, shared, own, path)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``neardup`` command; returns the exit code."""
    _mind_closed_streams()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _apply_config_file(parser, argv)
    except NearDupError as err:
        print(f"neardup: error: {printable(str(err))}", file=sys.stderr)
        return err.exit_code
    args = parser.parse_args(argv)
    args.argv = argv
    out = out or sys.stdout
    try:
        console = Console(args.quiet, args.verbose, args.log_file)
    except OSError as err:
        print(f"neardup: error: --log-file {args.log_file}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args, out, console))
    except NearDupError as err:
        console.warn(f"neardup: error: {printable(str(err))}")
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
