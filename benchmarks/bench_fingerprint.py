"""Speed of the fingerprint stage on real news text: neardup against datasketch and rensa.

Reads bbc-news.jsonl, reuters21578.jsonl and syndication-dev.jsonl (fields
``id``, ``text``) from the shared development data (../shared/data, or
--data); nothing from there is written anywhere. Documents are taken from the
three files in turn until --mb megabytes of UTF-8 text are loaded, and every
method runs on exactly those documents, --repeats times; the table shows
medians.

    PYTHONPATH=src python benchmarks/bench_fingerprint.py [--mb 20] [--repeats 3] [--batch-size 2000]

Rows:

* neardup ``fingerprint(docs, Config())``: normalisation, paragraph AND
  article signatures (128 permutations), digests — the baseline (ratio 1.0);
  documents are built beforehand, and a second row includes
  ``Document.from_text`` (paragraph splitting) from raw text; further rows show
  the numpy path (``NEARDUP_KERNEL=0``, no compiled kernel) and paragraph
  splitting alone;
* neardup ``fingerprint_stream`` with 1 and 2 worker processes, over the
  documents 4 times in one call (worker start-up weighs as in a long ingest);
* datasketch ``MinHash(num_perm=128, scheme="affine32", hashfunc=identity)``
  with ``update_batch``, article level: over neardup's own 32-bit shingle
  hashes (precomputed, MinHash time only; the signatures are checked to be
  identical to neardup's article signatures), and the full path from raw text
  (lower-cased whitespace words, 5-grams joined, UTF-8 encoded and hashed
  with ``xxhash.xxh32_intdigest``). MinHash objects share one permutation table
  (``permutations=``), the fast way to use datasketch;
* rensa ``RMinHash`` / ``CMinHash`` ``update`` per document over the same word
  5-gram strings (precomputed), its bulk ``digest_matrix_from_token_sets`` /
  ``digests_from_token_sets``, the bulk path from raw text, and
  ``digest_matrix_from_flat_token_hashes`` over neardup's shingle hashes.

MB are megabytes (10^6 bytes) of UTF-8 text of the documents, whatever part a
method reads. "cpu/wall" is CPU seconds (this process and its worker
processes) per wall second: above 1 a method used more than one core, below 1
it waited (for the machine, on a busy shared box, or for its workers).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
import xxhash

from neardup import Config, Document
from neardup.sketch.fingerprint import fingerprint, fingerprint_stream
from neardup.text.normalize import normalize_many
from neardup.text.shingles import shingle_paragraphs

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SOURCES = ("bbc-news.jsonl", "reuters21578.jsonl", "syndication-dev.jsonl")
NUM_PERM, SEED, SHINGLE = 128, 1, 5


# -- data ------------------------------------------------------------------------------------------


def missing_data(data: Path, names: tuple[str, ...] = SOURCES) -> list[Path]:
    return [data / name for name in names if not (data / name).exists()]


def require_data(data: Path) -> None:
    """Exit with a clear message unless the shared development data is there."""
    missing = missing_data(data)
    if missing:
        print("this benchmark reads the shared development data, which is not shipped with neardup;\n"
              "missing: " + ", ".join(str(p) for p in missing) + "\n(point --data at the folder holding them)",
              file=sys.stderr)
        sys.exit(2)


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def load_records(data: Path, megabytes: float) -> list[tuple[str, str]]:
    """(id, text) pairs taken from the source files in turn until ``megabytes`` of UTF-8 text."""
    streams = [read_jsonl(data / name) for name in SOURCES]
    budget, size, out = megabytes * 1e6, 0, []
    while streams and size < budget:
        for stream in list(streams):
            record = next(stream, None)
            if record is None:
                streams.remove(stream)
                continue
            out.append((str(record["id"]), record["text"]))
            size += len(record["text"].encode("utf-8"))
            if size >= budget:
                break
    return out


def machine_line() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    except OSError:
        pass
    return (f"machine: nproc={os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), CPU {model}, "
            f"Python {platform.python_version()}, numpy {np.__version__}")


# -- shingles for the other libraries -------------------------------------------------------------------


def neardup_doc_hashes(documents: list[Document]) -> list[list[int]]:
    """neardup's 32-bit shingle hashes of each document (all its paragraphs), as Python ints."""
    counts = [len(doc.paragraphs) for doc in documents]
    flat = normalize_many([doc.text[s:e] for doc in documents for s, e in doc.paragraphs])
    shingles = shingle_paragraphs(flat, SHINGLE)
    paragraph_owner = np.repeat(np.arange(len(documents)), counts)
    owner = paragraph_owner[shingles.paragraph]
    bounds = np.searchsorted(owner, np.arange(len(documents) + 1))
    return [shingles.hashes[bounds[i]:bounds[i + 1]].tolist() for i in range(len(documents))]


def word_shingles(text: str) -> list[str]:
    """Lower-cased whitespace words, 5 at a time (one shingle of all words when fewer)."""
    words = text.lower().split()
    if len(words) < SHINGLE:
        return [" ".join(words)] if words else []
    return [" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)]


def identity(value: int) -> int:
    return value


# -- methods -------------------------------------------------------------------------------------------


class Inputs:
    """The documents and, built on first use, what the other libraries read. The neardup rows run
    first, while this process holds only the documents (its size slows forking workers)."""

    def __init__(self, records: list[tuple[str, str]], documents: list[Document], batch_size: int) -> None:
        self.records, self.documents, self.batch_size = records, documents, batch_size

    @cached_property
    def hashes(self) -> list[list[int]]:
        """neardup shingle hashes per document."""
        return neardup_doc_hashes(self.documents)

    @cached_property
    def flat_hashes(self) -> np.ndarray:
        """The same, concatenated, uint64 (for rensa)."""
        return np.concatenate([np.asarray(h, dtype=np.uint64) for h in self.hashes]) if self.hashes \
            else np.zeros(0, np.uint64)

    @cached_property
    def offsets(self) -> np.ndarray:
        """Document boundaries in flat_hashes, uint64."""
        return np.concatenate(([0], np.cumsum([len(h) for h in self.hashes]))).astype(np.uint64)

    @cached_property
    def shingles(self) -> list[list[str]]:
        """Word 5-gram strings per document."""
        return [word_shingles(t) for _, t in self.records]


def neardup_fingerprint(inputs: Inputs) -> None:
    fingerprint(inputs.documents, Config())


def neardup_from_text(inputs: Inputs) -> None:
    fingerprint([Document.from_text(id, text) for id, text in inputs.records], Config())


def neardup_numpy_path(inputs: Inputs) -> None:
    """The same stage without the compiled kernel (what a machine without a C compiler runs)."""
    from neardup.native import force_numpy

    force_numpy(True)
    try:
        fingerprint(inputs.documents, Config())
    finally:
        force_numpy(False)


def neardup_paragraphs(inputs: Inputs) -> None:
    for id, text in inputs.records:
        Document.from_text(id, text)


#: fingerprint_stream runs go over the documents this many times in one call, so that starting
#: the worker processes (a fork of this large process) weighs as it does in a long ingest.
STREAM_PASSES = 4


def stream_with(workers: int) -> Callable[[Inputs], None]:
    def run(inputs: Inputs) -> None:
        batches = [inputs.documents[i:i + inputs.batch_size]
                   for i in range(0, len(inputs.documents), inputs.batch_size)]
        for _ in fingerprint_stream(batches * STREAM_PASSES, Config(), workers=workers):
            pass
    run.passes = STREAM_PASSES  # type: ignore[attr-defined]
    return run


def _datasketch_template():
    from datasketch import MinHash
    return MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=identity)


def datasketch_signatures(hashes: list[list[int]]) -> list:
    from datasketch import MinHash
    permutations = _datasketch_template().permutations
    out = []
    for values in hashes:
        sketch = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=identity,
                         permutations=permutations)
        sketch.update_batch(values)
        out.append(sketch)
    return out


def datasketch_minhash_only(inputs: Inputs) -> None:
    datasketch_signatures(inputs.hashes)


def datasketch_full(inputs: Inputs) -> None:
    from datasketch import MinHash
    permutations = _datasketch_template().permutations
    hash32 = xxhash.xxh32_intdigest
    for _, text in inputs.records:
        sketch = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=identity,
                         permutations=permutations)
        sketch.update_batch([hash32(s.encode("utf-8")) for s in word_shingles(text)])


def python_shingling(inputs: Inputs) -> None:
    for _, text in inputs.records:
        word_shingles(text)


def rensa_update(kind: str) -> Callable[[Inputs], None]:
    def run(inputs: Inputs) -> None:
        import rensa
        cls = getattr(rensa, kind)
        for shingles in inputs.shingles:
            sketch = cls(num_perm=NUM_PERM, seed=SEED)
            sketch.update(shingles)
            sketch.digest()
    return run


def rensa_bulk_r(inputs: Inputs) -> None:
    import rensa
    rensa.RMinHash.digest_matrix_from_token_sets(inputs.shingles, NUM_PERM, SEED)


def rensa_bulk_c(inputs: Inputs) -> None:
    import rensa
    rensa.CMinHash.digests_from_token_sets(inputs.shingles, NUM_PERM, SEED)


def rensa_bulk_full(inputs: Inputs) -> None:
    import rensa
    rensa.RMinHash.digest_matrix_from_token_sets([word_shingles(text) for _, text in inputs.records],
                                                 NUM_PERM, SEED)


def rensa_flat_hashes(inputs: Inputs) -> None:
    import rensa
    rensa.RMinHash.digest_matrix_from_flat_token_hashes(inputs.flat_hashes, inputs.offsets, NUM_PERM, SEED)


#: (label, function, what it reads); the first row is the baseline of the ratios.
METHODS: list[tuple[str, Callable[[Inputs], None], str]] = [
    ("neardup fingerprint() [para+article], 1 proc", neardup_fingerprint, "Documents"),
    ("neardup from_text + fingerprint(), 1 proc", neardup_from_text, "raw text"),
    ("neardup fingerprint() numpy path, 1 proc", neardup_numpy_path, "Documents"),
    ("neardup Document.from_text alone", neardup_paragraphs, "raw text"),
    ("neardup fingerprint_stream workers=1", stream_with(1), "Documents"),
    ("neardup fingerprint_stream workers=2", stream_with(2), "Documents"),
    ("datasketch affine32 update_batch [article]", datasketch_minhash_only, "neardup hashes"),
    ("datasketch full: py 5-grams+xxh32+MinHash", datasketch_full, "raw text"),
    ("python word 5-gram shingling alone", python_shingling, "raw text"),
    ("rensa RMinHash.update per doc", rensa_update("RMinHash"), "str shingles"),
    ("rensa CMinHash.update per doc", rensa_update("CMinHash"), "str shingles"),
    ("rensa RMinHash bulk digest_matrix", rensa_bulk_r, "str shingles"),
    ("rensa CMinHash bulk digests", rensa_bulk_c, "str shingles"),
    ("rensa full: py 5-grams + RMinHash bulk", rensa_bulk_full, "raw text"),
    ("rensa RMinHash flat_token_hashes bulk", rensa_flat_hashes, "neardup hashes"),
]


# -- measuring -----------------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes of a pool)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(run: Callable[[Inputs], None], inputs: Inputs, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median cpu/wall of ``repeats`` runs."""
    walls, loads = [], []
    for _ in range(repeats):
        cpu, start = cpu_seconds(), time.perf_counter()
        run(inputs)
        wall = time.perf_counter() - start
        walls.append(wall)
        loads.append((cpu_seconds() - cpu) / wall)
    return statistics.median(walls), statistics.median(loads)


def check_same_signatures(inputs: Inputs, sample: int = 50) -> str:
    """neardup's article signatures must equal datasketch's over the same shingle hashes."""
    head = inputs.documents[:sample]
    ours = fingerprint(head, Config()).doc_signatures
    import rensa  # noqa: F401  (imported here so that no timed run pays for it)
    theirs = np.array([m.hashvalues for m in datasketch_signatures(neardup_doc_hashes(head))], dtype=np.uint32)
    same = int((ours == theirs).all(axis=1).sum())
    return f"check: neardup article signatures == datasketch affine32 over the same hashes: {same}/{len(head)}"


def prepare(records: list[tuple[str, str]], batch_size: int) -> Inputs:
    return Inputs(records, [Document.from_text(id, text) for id, text in records], batch_size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the shared development data")
    parser.add_argument("--mb", type=float, default=20.0, help="megabytes of text to fingerprint (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per method; medians are shown (default 3)")
    parser.add_argument("--batch-size", type=int, default=2000, help="documents per fingerprint_stream batch")
    parser.add_argument("--only", help="run only methods whose label contains this text (baseline always runs)")
    args = parser.parse_args()
    require_data(args.data)
    print(machine_line())
    from neardup.native import compiled
    print(f"neardup compiled kernel: {'yes' if compiled() else 'NO (numpy path)'}")
    records = load_records(args.data, args.mb)
    megabytes = sum(len(t.encode("utf-8")) for _, t in records) / 1e6
    inputs = prepare(records, args.batch_size)
    shingle_count = int(fingerprint(inputs.documents, Config()).paragraph_sizes.sum())
    print(f"corpus: {len(records):,} documents, {megabytes:.1f} MB of text, "
          f"{sum(len(d.paragraphs) for d in inputs.documents):,} paragraphs, {shingle_count:,} neardup shingles; "
          f"num_perm={NUM_PERM}, {args.repeats} runs per method, medians")
    print(check_same_signatures(inputs), flush=True)  # also warms up caches and imports
    rows = []
    for label, run, reads in METHODS:
        if args.only and rows and args.only not in label:
            continue
        if not label.startswith("neardup"):
            # The other libraries' inputs hold millions of Python strings: build them outside the
            # timing and freeze them, so that garbage collection does not scan them in every run.
            _ = inputs.hashes, inputs.flat_hashes, inputs.offsets, inputs.shingles
            gc.freeze()
        wall, load = timed(run, inputs, args.repeats)
        wall /= getattr(run, "passes", 1)
        rows.append((label, reads, megabytes / wall, len(records) / wall, load))
        print(f"  ... {label}: {wall:.2f} s", file=sys.stderr, flush=True)
    print_table(rows)
    return 0


def print_table(rows: list[tuple[str, str, float, float, float]]) -> None:
    base = rows[0][2]
    print(f"{'method':<46} {'input':<15} {'MB/s':>8} {'docs/s':>10} {'vs neardup':>10} {'cpu/wall':>8}")
    for label, reads, rate, docs, load in rows:
        print(f"{label:<46} {reads:<15} {rate:8.2f} {docs:10,.0f} {rate / base:9.2f}x {load:8.2f}")
    streams = {label: rate for label, _, rate, _, _ in rows if "fingerprint_stream" in label}
    one, two = streams.get("neardup fingerprint_stream workers=1"), streams.get("neardup fingerprint_stream workers=2")
    if one and two:
        print(f"fingerprint_stream speed-up, workers=2 vs workers=1: {two / one:.2f}x "
              f"(cpu/wall counts the worker processes too: near 2 means both cores were busy)")


if __name__ == "__main__":
    sys.exit(main())
