"""neardup: find copies of news text, whole or in part, and repetition inside a document.

The main entry points: :class:`Index` (add documents, then ask where else a story appears),
:func:`dedup` (one document per story, nothing removed that the kept one does not hold),
:func:`repeats` (what repeats inside a document), and :class:`Reader` (documents from JSON Lines,
CSV, Parquet, Arrow and text files, with every bad record counted).
"""

from importlib import metadata as _metadata

from neardup.config import Config
from neardup.document import Document
from neardup.errors import (
    ConfigError,
    DuplicateIdError,
    IndexFormatError,
    IndexLockedError,
    InputError,
    NearDupError,
    NoTextsError,
    RecordError,
)
from neardup.index.index import AddReport, Index
from neardup.index.storage import StoredDocument
from neardup.io.reader import Reader
from neardup.match.evidence import Match, SharedParagraph
from neardup.match.repetition import RepeatGroup, RepeatReport, repeats
from neardup.pipeline.dedup import dedup
from neardup.pipeline.policy import DedupOptions, KeepPolicy
from neardup.pipeline.result import Assignment, DedupResult, DedupSummary
from neardup.records import Fingerprints
from neardup.sketch.fingerprint import fingerprint
from neardup.text.normalize import Normalized, normalize, normalize_with_offsets

try:
    __version__ = _metadata.version("neardup")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AddReport",
    "Assignment",
    "Config",
    "ConfigError",
    "DedupOptions",
    "DedupResult",
    "DedupSummary",
    "Document",
    "DuplicateIdError",
    "Fingerprints",
    "Index",
    "IndexFormatError",
    "IndexLockedError",
    "InputError",
    "KeepPolicy",
    "Match",
    "NearDupError",
    "NoTextsError",
    "Normalized",
    "Reader",
    "RecordError",
    "RepeatGroup",
    "RepeatReport",
    "SharedParagraph",
    "StoredDocument",
    "dedup",
    "fingerprint",
    "normalize",
    "normalize_with_offsets",
    "repeats",
]
