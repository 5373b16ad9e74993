"""The index: :class:`Index` over a storage backend (in memory, or a folder on disk)."""

from neardup.index.index import AddReport, Index
from neardup.index.storage import StoredDocument

__all__ = ["AddReport", "Index", "StoredDocument"]
