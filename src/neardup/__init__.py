"""neardup: find copies of news text, whole or in part, and repetition inside a document."""

from .config import Config
from .document import Document
from .errors import ConfigError, IndexFormatError, IndexLockedError, InputError, NearDupError, RecordError
from .evidence import Match, SharedParagraph
from .fingerprint import Fingerprints, fingerprint
from .index import AddReport, Index
from .normalize import Normalized, normalize, normalize_with_offsets
from .repetition import RepeatGroup, RepeatReport, repeats

__version__ = "0.1.0"

__all__ = [
    "AddReport",
    "Config",
    "ConfigError",
    "Document",
    "Fingerprints",
    "Index",
    "IndexFormatError",
    "IndexLockedError",
    "InputError",
    "Match",
    "NearDupError",
    "Normalized",
    "RecordError",
    "RepeatGroup",
    "RepeatReport",
    "SharedParagraph",
    "fingerprint",
    "normalize",
    "normalize_with_offsets",
    "repeats",
]
