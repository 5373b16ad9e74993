"""neardup: find copies of news text, whole or in part, and repetition inside a document.

The main entry points: :class:`Index` (add documents, then ask where else a story appears),
:func:`dedup` (one document per story, nothing removed that the kept one does not hold),
:func:`repeats` (what repeats inside a document), and :class:`Reader` (documents from JSON Lines,
CSV, Parquet, Arrow and text files, with every bad record counted).
"""

from importlib import metadata as _metadata

from .config import Config
from .dedup import Assignment, DedupResult, DedupSummary, dedup
from .document import Document
from .errors import ConfigError, IndexFormatError, IndexLockedError, InputError, NearDupError, RecordError
from .evidence import Match, SharedParagraph
from .fingerprint import Fingerprints, fingerprint
from .index import AddReport, Index
from .inputs import Reader
from .normalize import Normalized, normalize, normalize_with_offsets
from .repetition import RepeatGroup, RepeatReport, repeats
from .storage import StoredDocument

try:
    __version__ = _metadata.version("neardup")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AddReport",
    "Assignment",
    "Config",
    "ConfigError",
    "DedupResult",
    "DedupSummary",
    "Document",
    "Fingerprints",
    "Index",
    "IndexFormatError",
    "IndexLockedError",
    "InputError",
    "Match",
    "NearDupError",
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
