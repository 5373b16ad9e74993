"""The ``neardup`` command: a thin layer over the library."""

from neardup.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
