"""Where a dedup run keeps what does not fit in memory: band records and shingle sequences.

Both are held in memory up to a budget, then appended to files in a folder the run owns and
removes at the end (the local run's temporary folder; never a path read from an input). Reads
go through short-lived memory maps, so the pages read count against the page cache, not the
process: a 1M-article run keeps a few GB on disk and well under a GB in memory.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neardup.match.candidates import PARTITIONS, records

#: Bytes of records (or shingles) a spill keeps in memory before writing to disk (each spill;
#: a run has three). Past it, writes go to the run's folder in chunks of this size.
DEFAULT_BUDGET = 32 << 20
#: Where a spill writes: a folder, or a function making one on first need (none: never spill).
Folder = Path | Callable[[], Path] | None


@dataclass
class BandSpill:
    """Band records cut into partitions (:func:`neardup.match.candidates.records`): in memory up to
    ``budget`` bytes, then appended to one file per partition in ``folder``."""

    folder: Folder = None
    budget: int = DEFAULT_BUDGET
    count: int = 0
    _chunks: list[list[np.ndarray]] = field(default_factory=lambda: [[] for _ in range(PARTITIONS)])
    _held: int = 0
    _on_disk: bool = False

    def append(self, keys: np.ndarray, items: np.ndarray) -> None:
        partition, value = records(keys, items)
        if len(value) == 0:
            return
        order = np.argsort(partition.astype(np.uint8), kind="stable")  # 8-bit keys: a radix sort
        bounds = np.searchsorted(partition[order], np.arange(PARTITIONS + 1))
        value = value[order]
        for p in np.flatnonzero(np.diff(bounds)).tolist():
            self._chunks[p].append(value[bounds[p]:bounds[p + 1]])
        self._held += value.nbytes
        self.count += len(value)
        if self._held > self.budget:
            self._flush()

    def _flush(self) -> None:
        folder = _folder(self.folder)
        for p, chunks in enumerate(self._chunks):
            if chunks:
                with open(folder / f"records-{id(self):x}-{p:03d}.u64", "ab") as handle:
                    for chunk in chunks:
                        handle.write(chunk.tobytes())
                chunks.clear()
        self._held = 0
        self._on_disk = True

    def partition(self, p: int) -> np.ndarray:
        """All records of partition ``p`` (from disk, then memory: the order records came in)."""
        parts = list(self._chunks[p])
        if self._on_disk:
            path = _folder(self.folder) / f"records-{id(self):x}-{p:03d}.u64"
            if path.exists():
                parts.insert(0, np.fromfile(path, dtype=np.uint64))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)

    def partitions(self) -> Iterator[np.ndarray]:
        for p in range(PARTITIONS):
            yield self.partition(p)


@dataclass
class ShingleSpill:
    """One long sequence of shingle hashes (uint32), appended batch by batch, read back by ranges."""

    folder: Folder = None
    budget: int = DEFAULT_BUDGET
    length: int = 0
    _chunks: list[np.ndarray] = field(default_factory=list)
    _held: int = 0
    _path: Path | None = None
    _whole: np.ndarray | None = None

    def append(self, hashes: np.ndarray) -> None:
        hashes = np.ascontiguousarray(hashes, dtype=np.uint32)
        self._chunks.append(hashes)
        self._held += hashes.nbytes
        self.length += len(hashes)
        if self._held > self.budget:
            self._flush()

    def _flush(self) -> None:
        if self._path is None:
            self._path = _folder(self.folder) / f"shingles-{id(self):x}.u32"
        with open(self._path, "ab") as handle:
            for chunk in self._chunks:
                handle.write(chunk.tobytes())
        self._chunks.clear()
        self._held = 0

    def finish(self) -> None:
        """No more appends: everything goes to disk if anything did, else into one array."""
        if self._path is not None:
            self._flush()
        else:
            self._whole = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.uint32)
            self._chunks.clear()

    def gather(self, index: np.ndarray) -> np.ndarray:
        """The hashes at positions ``index`` (int64) of the whole sequence."""
        if self._whole is not None:
            return np.asarray(self._whole[index])
        if self._path is None or self.length == 0:
            return np.zeros(0, dtype=np.uint32)
        with open(self._path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = np.frombuffer(mapped, dtype=np.uint32)
            try:
                return np.asarray(view[index])
            finally:
                del view


def _folder(folder: Folder) -> Path:
    if folder is None:
        raise RuntimeError("over the memory budget with no folder to spill to")
    return folder() if callable(folder) else folder
