"""One exception tree for the whole library; the CLI maps it to exit codes.

::

    NearDupError
    ├── ConfigError(ValueError)        bad parameters             exit 2
    │   ├── DuplicateIdError           an id taken, with on_duplicate="error"
    │   └── NoTextsError               the index keeps no texts: none to show or query with
    ├── InputError(ValueError)         unreadable or bad input    exit 2
    │   └── RecordError                one bad record (file, line, reason)
    ├── IndexFormatError               an index that cannot be trusted  exit 3
    └── IndexLockedError               another process is writing       exit 4

Every class subclasses the built-in exception a caller would expect, so
``except ValueError`` keeps working for code that does not know neardup.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INDEX = 3
EXIT_LOCKED = 4


class NearDupError(Exception):
    """Base of every error neardup raises on purpose."""

    exit_code = EXIT_INTERNAL


class ConfigError(NearDupError, ValueError):
    """A parameter is out of range or inconsistent with another."""

    exit_code = EXIT_USAGE


class DuplicateIdError(ConfigError):
    """A document's id is already indexed (or repeated in the batch), with ``on_duplicate="error"``."""

    def __init__(self, id: str) -> None:
        self.id = id
        super().__init__(f"duplicate id {id!r}")


class NoTextsError(ConfigError):
    """The index was built without its texts (``--no-text``): it cannot give a document's text back."""


class InputError(NearDupError, ValueError):
    """An input cannot be read at all (missing file, unknown format)."""

    exit_code = EXIT_USAGE


class RecordError(InputError):
    """One record of an input is bad; says where and why.

    Readers raise it in strict mode and count it as a skip otherwise.
    """

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


class IndexFormatError(NearDupError):
    """A stored index or signature is damaged or was made with other parameters."""

    exit_code = EXIT_INDEX


class IndexLockedError(NearDupError):
    """Another process holds the index's write lock."""

    exit_code = EXIT_LOCKED
