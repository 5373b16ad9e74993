"""What every command shares: the console, the usual options, configuration from options, the reader,
progress, and usage errors (exit code 2)."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from neardup.cli.progress import Progress, switch, track
from neardup.config import Config
from neardup.document import Document
from neardup.errors import EXIT_USAGE, NearDupError, RecordError
from neardup.index.disk import DiskStorage, is_index
from neardup.io.formats import total_input_bytes
from neardup.io.reader import Reader

#: Skipped records announced one by one before the summary takes over.
MAX_SKIP_MESSAGES = 20
FORMATS = ".jsonl/.ndjson, .json (array of records), .csv/.tsv (header row), .parquet, .arrow/.feather, " \
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



def amount(minimum: float = 0.0, *, above: bool = False, whole: bool = False, at_most: float = math.inf) -> Any:
    """An argparse type: a finite number ≥ ``minimum`` (> with ``above``), ≤ ``at_most``, whole if
    asked — ``nan``, ``inf`` and ``-5`` are usage errors, not values that run."""
    def convert(text: str) -> float | int:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{' whole' if whole else ''} number") from None
        low_ok = value > minimum if above else value >= minimum
        if not (math.isfinite(value) and low_ok and value <= at_most):
            bound = f"{'over' if above else 'at least'} {minimum:g}" + (f" and at most {at_most:g}"
                                                                       if math.isfinite(at_most) else "")
            raise argparse.ArgumentTypeError(f"{text!r}: must be a number {bound}")
        return value
    convert.__name__ = "number"   # argparse names the type in its messages
    return convert


def command_parser(commands: Any, common: argparse.ArgumentParser, name: str, help: str, description: str,
             epilog: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=description, epilog=epilog, parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input records")
    group.add_argument("--id-field", default="id", metavar="FIELD", help="field holding the document id (default: id)")
    group.add_argument("--text-field", default="text", metavar="FIELD",
                       help="field holding the text, a string or a list of paragraphs (default: text)")
    group.add_argument("--strict", action="store_true",
                       help="stop with exit code 2 at the first bad record instead of skipping it")
    group.add_argument("--max-record-mb", type=amount(above=True), default=64.0, metavar="MB",
                       help="skip records (JSON lines, text files) larger than this (default 64)")
    group.add_argument("--max-paragraphs", type=amount(1, whole=True), default=100_000, metavar="N",
                       help="skip documents with more paragraphs than this (default 100000)")


def add_json(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument_group("output").add_argument("--json", action="store_true", help=help)



def build_config(args: argparse.Namespace) -> Config:
    for name in ("threshold", "min_containment", "repeat_threshold"):
        value = getattr(args, name, None)
        if value is not None and not (isinstance(value, float) and math.isfinite(value)):
            raise usage(f"--{name.replace('_', '-')} must be a number")
    return Config().with_options(
        threshold=getattr(args, "threshold", None), min_containment=getattr(args, "min_containment", None),
        shingle_size=getattr(args, "shingle_size", None), num_perm=getattr(args, "num_perm", None),
        repeat_threshold=getattr(args, "repeat_threshold", None))


def index_config(path: str, args: argparse.Namespace) -> Config | None:
    """Fingerprint options given on the command line must agree with the index (checked on open)."""
    given = {k: getattr(args, k, None) for k in ("shingle_size", "num_perm", "seed")}
    if all(v is None for v in given.values()):
        return None

    stored = Config()
    if is_index(path):
        storage = DiskStorage(path)
        stored = storage.config
        storage.close()
    return stored.with_options(**given)


def make_reader(args: argparse.Namespace, console: Console, *, unique_ids: bool = False, spill: Any = None) -> Reader:
    announced = [0]

    def on_skip(problem: RecordError) -> None:
        announced[0] += 1
        if announced[0] <= MAX_SKIP_MESSAGES:
            console.say(f"neardup: skipped {problem}")
        elif announced[0] == MAX_SKIP_MESSAGES + 1:
            console.say("neardup: more records skipped; see the summary")

    if not (args.max_record_mb > 0 and math.isfinite(args.max_record_mb)) or args.max_paragraphs < 1:
        raise usage("--max-record-mb and --max-paragraphs must be positive")
    return Reader(id_field=args.id_field, text_field=args.text_field, strict=args.strict,
                  unique_ids=unique_ids, on_skip=on_skip, max_record_bytes=int(args.max_record_mb * (1 << 20)),
                  max_paragraphs=args.max_paragraphs, spill=spill)


def progress_enabled(args: argparse.Namespace) -> bool | None:
    if getattr(args, "no_progress", False):
        return False
    return switch(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False))


def reading(reader: Reader, sources: Sequence[str], label: str,
             args: argparse.Namespace) -> tuple[Iterator[Document], Progress]:
    progress = Progress(label, total_bytes=total_input_bytes(sources), enabled=progress_enabled(args))
    return track(reader.documents(sources), progress, lambda: reader.stats.source_bytes), progress


def report_skips(console: Console, reader: Reader, what: str) -> None:
    if reader.stats.skipped:
        console.say(f"neardup: {what}: {reader.stats.summary()}")


def workers(requested: int) -> int:
    """--workers N: N threads; 0 means one per core."""
    if requested < 0:
        raise usage("--workers must be at least 0")
    return (os.cpu_count() or 1) if requested == 0 else requested


class UsageError(NearDupError):
    exit_code = EXIT_USAGE


def usage(message: str) -> UsageError:
    return UsageError(message)



def dedup_config(args: argparse.Namespace) -> Config:
    config = build_config(args)
    for name in ("partial_containment", "min_coverage"):
        value = getattr(args, name)
        if value is not None:
            if not 0.0 <= value <= 1.0:
                raise usage(f"--{name.replace('_', '-')} must be in [0, 1]")
            config = config.with_options(**{name: value})
    return config



def printable(text: str) -> str:
    """Text a terminal can show: lone surrogates (from invalid input) replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")



def size_text(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1000
    return f"{count:,.1f} TB"

