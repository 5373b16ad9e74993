"""What neardup reads and writes, by name and by first bytes: suffixes, compressions, folders and
Hugging Face dataset folders walked in order, formats recognised from their signatures (and the
ones refused with a message that names them), optional modules with the extra that installs them."""

from __future__ import annotations

import csv
import importlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from neardup.errors import InputError

if TYPE_CHECKING:
    pass


#: Text formats by suffix; any of them may be compressed (``x.jsonl.gz``, ``x.csv.zst``).
TEXT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv",
                ".txt": "text", ".text": "text", ".md": "text"}


#: Columnar formats by suffix, read through pyarrow; they compress their own columns.
COLUMNAR_FORMATS = {".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow"}


COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2", ".xz": "xz"}












#: What neardup reads, for the messages that refuse something else.
READ_FORMATS = ("JSON Lines, JSON arrays of records, CSV/TSV, Parquet, Arrow IPC/Feather, Hugging Face "
                "dataset folders and UTF-8 text; the text formats also compressed (.gz, .zst, .bz2, .xz)")


FOLDER_FORMATS = (".jsonl, .ndjson, .json, .csv, .tsv, .txt, .text, .md (also .gz, .zst, .bz2, .xz), "
                  ".parquet, .arrow, .feather or .ipc files, nor a Hugging Face dataset")


BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class CsvLayout:
    """The columns and dialect of a CSV input, so that its rows can be written back as they came."""

    header: tuple[str, ...]
    delimiter: str
    #: The header row as read (byte-order mark removed), line ending included.
    header_line: str

    @property
    def terminator(self) -> str:
        """The line ending of the header row, used for rows written anew."""
        for ending in ("\r\n", "\n", "\r"):
            if self.header_line.endswith(ending):
                return ending
        return "\n"

    def parse(self, raw: str) -> list[str]:
        """The fields of one raw row."""
        return next(csv.reader([raw], delimiter=self.delimiter), [])

    def record_of(self, row: Sequence[str]) -> dict[str, str | None]:
        """The row as a record; columns missing from a short row are None, as :class:`csv.DictReader` has it."""
        record: dict[str, str | None] = dict(zip(self.header, row))
        for name in self.header[len(row):]:
            record.setdefault(name, None)
        return record


def total_input_bytes(sources: Iterable[str]) -> int | None:
    """Bytes of the files the sources expand to (what ``stats.source_bytes`` reaches); None for stdin."""
    total = 0
    for source in sources:
        if source == "-":
            return None
        try:
            total += sum(file_size(path) for path in expand_source(source))
        except (OSError, InputError):
            return None
    return total


def expand_source(source: str) -> Iterator[str]:
    if source == "-":
        yield source
        return
    path = Path(source)
    if path.is_dir():
        files = list(_folder_files(path))
        if not files:
            raise InputError(f"{source}: folder holds no {FOLDER_FORMATS}")
        yield from files
    elif path.is_file():
        yield source
    elif path.exists():
        raise InputError(f"{source}: not a regular file or folder")
    else:
        raise InputError(f"{source}: no such file or folder")


def _folder_files(folder: Path) -> Iterator[str]:
    """Readable files under ``folder`` in sorted path order; a Hugging Face dataset counts as its shards."""
    shards = _dataset_shards(folder)
    if shards is not None:
        yield from shards
        return
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        raise InputError(f"{folder}: cannot list the folder ({err.strerror or err})") from None
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            yield from _folder_files(entry)
        elif entry.is_file() and _is_known(entry.name):
            yield str(entry)


def _dataset_shards(folder: Path) -> list[str] | None:
    """The ``data-*.arrow`` shards of a ``datasets`` save_to_disk folder in state.json order, or None."""
    if (folder / "dataset_dict.json").is_file():
        splits = _json_file(folder / "dataset_dict.json").get("splits", [])
        return [shard for split in splits for shard in (_dataset_shards(folder / str(split)) or [])]
    state = folder / "state.json"
    names: list[str]
    if state.is_file() and "_data_files" in (content := _json_file(state)):
        names = [str(entry.get("filename", "")) for entry in content["_data_files"]]
    elif (folder / "dataset_info.json").is_file() and any(folder.glob("data-*.arrow")):
        names = sorted(p.name for p in folder.glob("data-*.arrow"))
    else:
        return None
    for name in names:
        if not (folder / name).is_file():
            raise InputError(f"{folder}: state.json lists {name!r}, which is not in the folder")
    return [str(folder / name) for name in names]


def _json_file(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read ({short_error(err)})") from None
    return content if isinstance(content, dict) else {}


def _family_of(name: str) -> tuple[str | None, str | None]:
    """(format, compression) told by a file name: ('jsonl', 'zstd') for x.jsonl.zst, (None, None) if unknown."""
    lower = name.lower()
    compression = next((c for suffix, c in COMPRESSIONS.items() if lower.endswith(suffix)), None)
    if compression is not None:
        lower = lower[:lower.rfind(".")]
    suffix = lower[lower.rfind("."):] if "." in os.path.basename(lower) else ""
    return TEXT_FORMATS.get(suffix) or COLUMNAR_FORMATS.get(suffix), compression


def format_suffix(name: str) -> str:
    lower = name.lower()
    if any(lower.endswith(suffix) for suffix in COMPRESSIONS):
        lower = lower[:lower.rfind(".")]
    return lower[lower.rfind("."):] if "." in lower else ""


def _is_known(name: str) -> bool:
    return _family_of(name)[0] is not None


#: First bytes of formats: (signature, kind, name). Kinds: a compression, 'parquet', 'arrow'
#: (IPC file), 'arrow-stream', or 'refused' (a format neardup does not read).
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b\x08", "gzip", "gzip data"),
    (b"\x28\xb5\x2f\xfd", "zstd", "zstd data"),
    (b"\xfd7zXZ\x00", "xz", "xz data"),
    (b"PAR1", "parquet", "Parquet file"),
    (b"ARROW1", "arrow", "Arrow IPC file"),
    (b"\xff\xff\xff\xff", "arrow-stream", "Arrow IPC stream"),
    (b"PK\x03\x04", "refused", "zip archive (or a .docx, .xlsx, .epub)"),
    (b"PK\x05\x06", "refused", "zip archive"),
    (b"%PDF-", "refused", "PDF document"),
    (b"\x89PNG\r\n\x1a\n", "refused", "PNG image"),
    (b"\xff\xd8\xff", "refused", "JPEG image"),
    (b"GIF87a", "refused", "GIF image"),
    (b"GIF89a", "refused", "GIF image"),
    (b"7z\xbc\xaf\x27\x1c", "refused", "7-Zip archive"),
    (b"Rar!\x1a\x07", "refused", "RAR archive"),
    (b"SQLite format 3\x00", "refused", "SQLite database"),
    (b"\x7fELF", "refused", "executable (ELF)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "refused", "Microsoft Office (OLE) document"),
    (b"FEA1", "refused", "Feather version 1 file (save it again as Feather version 2, i.e. Arrow IPC)"),
    (b"Obj\x01", "refused", "Avro file"),
    (b"\x04\x22\x4d\x18", "refused", "LZ4 archive"),
    (b"\x93NUMPY", "refused", "NumPy array"),
    (b"\x89HDF\r\n\x1a\n", "refused", "HDF5 file"),
    (b"\x80\x04\x95", "refused", "Python pickle"),
    (b"\x80\x05\x95", "refused", "Python pickle"),
)


_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")


def format_signature(head: bytes) -> tuple[str | None, str]:
    """(kind, name) of the format the first bytes show, or (None, '') for none of the known ones."""
    for prefix, kind, name in _SIGNATURES:
        if head.startswith(prefix):
            return kind, name
    if _BZIP2.match(head):
        return "bz2", "bzip2 data"
    if head[257:262] == b"ustar":
        return "refused", "tar archive"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI ", b"WEBP"):
        return "refused", "RIFF media file"
    return None, ""


def refused_format(source: str, name: str) -> InputError:
    return InputError(f"{source}: a {name}, not a format neardup reads (it reads {READ_FORMATS})")


def detect_format(source: str, head: bytes) -> tuple[str | None, str | None]:
    """(format, compression) of a file from its name, and for plain-text or unknown names its first bytes.

    A name saying JSON Lines, JSON or CSV is trusted, so that whatever bytes such a file
    holds, each record is read or counted as skipped; a .txt or a name without a known
    suffix holding a PDF, a zip, an image... is refused, and compressed data is decompressed.
    """
    family, compression = _family_of(source)
    if family in ("jsonl", "json", "csv"):
        return family, compression  # the name is trusted: any bytes are read (or skipped) record by record
    kind, name = format_signature(head)
    if kind == "refused":
        raise refused_format(source, name)
    if compression is None and kind in ("gzip", "zstd", "bz2", "xz"):
        compression = kind  # compressed, though the name does not say so
    elif compression is None and kind in ("parquet", "arrow"):
        family = kind
    elif kind == "arrow-stream" and family is None:
        family = "arrow"
    if family in ("parquet", "arrow") and compression is not None:
        raise InputError(f"{source}: a compressed {'Parquet' if family == 'parquet' else 'Arrow'} file; "
                         f"decompress it first (the format compresses its own columns)")
    return family, compression


def stream_compression(source: str, head: bytes) -> str | None:
    """The compression of stdin from its first bytes; refuses what cannot be read from a stream."""
    kind, name = format_signature(head)
    if kind == "refused":
        raise refused_format(source, name)
    if kind in ("parquet", "arrow"):
        raise InputError(f"{source}: a {name} cannot be read from a stream; save it and give its path")
    return kind if kind in ("gzip", "zstd", "bz2", "xz") else None


def file_head(source: str) -> bytes:
    with open_binary(source) as handle:
        return handle.read(512)


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def open_binary(source: str) -> IO[bytes]:
    try:
        return open(source, "rb")
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except (IsADirectoryError, PermissionError) as err:
        raise InputError(f"{source}: {os.strerror(err.errno or 0) or err}") from None


def optional_module(name: str, extra: str, purpose: str, source: str) -> Any:
    """Import an optional dependency, or raise a one-line InputError saying which extra to install."""
    try:
        return importlib.import_module(name)
    except ImportError:
        package = name.split(".")[0]
        raise InputError(f"{source}: {purpose} needs {package}: pip install 'neardup[{extra}]'") from None


def json_bytes(value: Any) -> bytes:
    """A value as compact UTF-8 JSON (non-ASCII kept as it is)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def short_error(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 80 else text[:77] + "..."
