"""The files of an index folder, and the only ways neardup touches them.

An index folder holds exactly these entries, all created by neardup::

    neardup.sqlite (+ -wal, -shm)   the database
    config.json                     the configuration, for people
    write.lock                      the writer's lock
    seg-NNNNNN/                     immutable segments (seg-NNNNNN.tmp/ while being written)
        <array>.npy                 the segment's arrays (and <array>.npy.items while merging)

Names read from the index (segment names in the manifest) are data: a name that is not
``seg-`` and six digits is damage, never a path. Every file opened, written or deleted is one
of the entries above, directly inside the folder, and not a symbolic link; a segment is
removed file by file (only the files it should hold), then its folder if it is then empty —
never with a recursive delete. A folder becomes an index only when it is new or empty.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import time
from pathlib import Path

from neardup.errors import IndexFormatError, IndexLockedError, InputError

DATABASE = "neardup.sqlite"
CONFIG = "config.json"
LOCK = "write.lock"
_SEGMENT = re.compile(r"seg-\d{6}")
_SEGMENT_ENTRY = re.compile(r"seg-\d{6}(\.tmp)?")
_SEGMENT_FILE = re.compile(r"[a-z_]+\.npy(\.items)?")
_DATABASE_FILES = (DATABASE, DATABASE + "-wal", DATABASE + "-shm", DATABASE + "-journal")


def is_segment_name(name: object) -> bool:
    return isinstance(name, str) and _SEGMENT.fullmatch(name) is not None


def check_segment_name(name: object, where: object) -> str:
    if not is_segment_name(name):
        raise IndexFormatError(f"{where}: the manifest lists a segment named {name!r}, which no neardup index "
                               "writes; the index is damaged")
    return str(name)


class IndexFolder:
    """One index folder: what is in it, and the checked paths of its files."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if path is None or (isinstance(path, str) and path == ""):
            raise InputError("an index folder is needed (got no path)")
        if not isinstance(path, (str, os.PathLike)):
            raise InputError(f"an index folder is a path, got {type(path).__name__}")
        self.path = Path(path)
        if "\x00" in str(self.path):
            raise InputError(f"{str(self.path)!r}: a path cannot hold a NUL character")

    def __str__(self) -> str:
        return str(self.path)

    # -- what the folder is --------------------------------------------------------------------

    def state(self) -> str:
        """``missing``, ``empty``, ``index``, ``lost-database`` (only entries an index holds,
        segments or a config among them, but no database: an index whose database is gone)
        or ``foreign`` (anything else: never written to, never deleted from)."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return "missing"
        except NotADirectoryError:
            return "foreign"
        if not stat.S_ISDIR(info.st_mode):
            return "foreign"
        names = set(os.listdir(self.path))
        if not names:
            return "empty"
        if DATABASE in names:
            return "index"
        ours = all(n in (CONFIG, LOCK, CONFIG + ".tmp") or n in _DATABASE_FILES or _SEGMENT_ENTRY.fullmatch(n)
                   for n in names)
        if ours and (CONFIG in names or any(_SEGMENT_ENTRY.fullmatch(n) for n in names)):
            return "lost-database"
        return "foreign"

    def require_index(self) -> None:
        """Raise unless the folder is a neardup index (for readers)."""
        state = self.state()
        if state == "index":
            self._check_entry(DATABASE)
            return
        if state == "lost-database":
            raise IndexFormatError(f"{self}: its database {DATABASE} is missing: the index is damaged "
                                   "(restore it, or build a new index in another folder)")
        if os.path.isfile(self.path):
            raise InputError(f"{self}: not a neardup index but a file")
        raise InputError(f"{self}: not a neardup index (create one with 'neardup index')")

    def prepare_for_writing(self) -> bool:
        """Make sure the folder can be an index: True when it is new (created now, or empty)."""
        state = self.state()
        if state == "index":
            self._check_entry(DATABASE)
            return False
        if state == "missing":
            try:
                self.path.mkdir(parents=True)
            except OSError as err:
                raise InputError(f"{self}: cannot create the index folder ({err.strerror or err})") from None
            return True
        if state == "empty":
            return True
        if state == "lost-database":
            self.require_index()
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise InputError(f"{self}: is a file, not an index folder")
        raise InputError(f"{self}: the folder is not empty and is not a neardup index; refusing to write in it "
                         "(give a new or empty folder)")

    # -- files -----------------------------------------------------------------------------------

    def database(self) -> Path:
        self._check_entry(DATABASE)
        return self.path / DATABASE

    def entry(self, name: str) -> Path:
        """One top-level entry of the folder, checked: a known name, not a symbolic link."""
        if name not in (CONFIG, LOCK, CONFIG + ".tmp") and name not in _DATABASE_FILES \
                and not _SEGMENT_ENTRY.fullmatch(name):
            raise ValueError(f"not a file of an index folder: {name!r}")
        self._check_entry(name)
        return self.path / name

    def segment_file(self, segment: str, name: str) -> Path:
        """A file of a segment folder, checked like :meth:`entry`."""
        if not _SEGMENT_ENTRY.fullmatch(segment) or not _SEGMENT_FILE.fullmatch(name):
            raise ValueError(f"not a segment file: {segment}/{name}")
        self._check_entry(segment)
        path = self.path / segment / name
        if os.path.islink(path):
            raise IndexFormatError(f"{path}: a symbolic link inside an index folder; refusing to follow it")
        return path

    def _check_entry(self, name: str) -> None:
        path = self.path / name
        if os.path.islink(path):
            raise IndexFormatError(f"{path}: a symbolic link inside an index folder; refusing to follow it")

    def open_lock(self) -> int:
        """The writer's lock file, opened without following a link (created if missing)."""
        path = self.entry(LOCK)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise IndexFormatError(f"{path}: a symbolic link inside an index folder; refusing to follow it") \
                    from None
            raise InputError(f"{path}: cannot open the write lock ({err.strerror or err})") from None

    def lock(self, wait: float) -> int:
        """Take the writer's lock (``flock`` on the lock file), waiting up to ``wait`` seconds for
        another writer; its descriptor (closing it releases the lock), or IndexLockedError."""
        fd = self.open_lock()
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise IndexLockedError(f"{self.path}: another process is writing to this index "
                                           f"(retry later, or pass a longer wait)") from None
                time.sleep(0.1)

    def segment_entries(self) -> list[str]:
        """The names of the segment folders (final and temporary) present, real folders only."""
        out = []
        for name in os.listdir(self.path):
            if _SEGMENT_ENTRY.fullmatch(name) and not os.path.islink(self.path / name) \
                    and os.path.isdir(self.path / name):
                out.append(name)
        return sorted(out)

    def remove_segment(self, name: str) -> bool:
        """Delete a segment folder that neardup wrote: its own files, then the folder if empty.
        Anything else found inside is left alone (and the folder with it). True if removed."""
        if not _SEGMENT_ENTRY.fullmatch(name):
            raise ValueError(f"not a segment folder: {name!r}")
        folder = self.path / name
        if os.path.islink(folder) or not os.path.isdir(folder):
            return False
        for entry in os.listdir(folder):
            path = folder / entry
            if _SEGMENT_FILE.fullmatch(entry) and not os.path.isdir(path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        try:
            os.rmdir(folder)
        except OSError:
            return False
        return True
