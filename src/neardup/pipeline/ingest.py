"""Reading and fingerprinting on every core: worker processes parse and fingerprint, in input order.

Parsing a JSON record and building its document are Python work that holds the GIL (about 40 µs
a news article, twice what the compiled kernel needs to fingerprint it), so threads cannot
share it. Here the reading process only cuts the input into lines (:meth:`Reader.items`); worker
processes parse the lines, build the documents and run the fingerprint stage on them; what
comes back is each batch's stage output — compact columns, not documents — and the reading
process admits the records (counting skips, refusing repeated ids, spilling the records kept for
``--out``) in input order. Inputs that are not JSON Lines are parsed where they are read and only
fingerprinted in the workers. One worker means no other process.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neardup.config import Config
from neardup.document import Document
from neardup.errors import RecordError
from neardup.index.index import AddReport, Index, OnDuplicate
from neardup.io.reader import RawRecord, Reader
from neardup.native import compiled
from neardup.pipeline.policy import DedupOptions
from neardup.pipeline.stages import PrintedBatch, print_documents
from neardup.records import Fingerprints
from neardup.sketch.fingerprint import fingerprint
from neardup.sketch.kernel import replacement_table
from neardup.sketch.lsh import Bands
from neardup.threads import BATCH_TEXT_BYTES, batched

#: Records a worker parses and fingerprints per task.
TASK_RECORDS = 2000


@dataclass(frozen=True)
class _Job:
    """What every worker needs, set once per process: the dedup stage (``options``) or, without
    options, fingerprints only for an index (with shingles when ``shingles``)."""

    config: Config
    reader: Reader
    options: DedupOptions | None
    keep_signatures: bool
    keep_documents: bool
    shingles: bool = True


_JOB: _Job | None = None


def _start(job: _Job) -> None:
    global _JOB
    _JOB = job


def _work(items: list[Document | RawRecord]) -> tuple[PrintedBatch, list[Any], Counter[str]]:
    """In a worker: parse what is raw, fingerprint every document; the outcome of each raw item."""
    job = _JOB
    assert job is not None, "worker not started"
    return _print(job, items)


def _print(job: _Job, items: list[Document | RawRecord]) -> tuple[PrintedBatch, list[Any], Counter[str]]:
    documents: list[Document] = []
    outcomes: list[Any] = []  # per item: an id, or a (source, line, reason) problem
    job.reader.stats.fields_seen.clear()
    for item in items:
        if isinstance(item, RawRecord):
            try:
                document = job.reader.parse_raw(item)
            except RecordError as problem:
                outcomes.append((problem.source, problem.line, problem.reason))
                continue
        else:
            document = item
        documents.append(document)
        outcomes.append(document.id)
    if job.options is None:
        printed = _fingerprinted(documents, job.config, job.shingles)
    else:
        printed = print_documents(documents, job.config, job.options, keep_signatures=job.keep_signatures,
                                  keep_documents=job.keep_documents)
    return printed, outcomes, Counter(job.reader.stats.fields_seen)


def _fingerprinted(documents: list[Document], config: Config, shingles: bool) -> PrintedBatch:
    """Fingerprints only (no band keys), with the documents: what an index adds."""
    prints = fingerprint(documents, config, shingles=shingles)
    lengths = np.fromiter((len(d.text) for d in documents), dtype=np.int64, count=len(documents))
    empty = np.zeros((0, 0), np.uint64)
    return PrintedBatch([d.id for d in documents], lengths, prints, empty, empty, np.zeros(0, np.int64),
                        documents=documents)


def printed_stream(reader: Reader, sources: Sequence[str], config: Config, *, workers: int,
                   options: DedupOptions | None = None, keep_signatures: bool = False,
                   keep_documents: bool = False, task_records: int = TASK_RECORDS,
                   shingles: bool = True) -> Iterator[PrintedBatch]:
    """The documents of ``sources`` through the fingerprint stage, batch by batch, in input order,
    parsed and fingerprinted by ``workers`` processes (see the module docstring). Without
    ``options``: fingerprints only (with the documents), for :meth:`Index.add_fingerprinted`."""
    worker_reader = Reader(id_field=reader.id_field, text_field=reader.text_field, strict=False,
                           max_record_bytes=reader.max_record_bytes, max_paragraphs=reader.max_paragraphs)
    job = _Job(config, worker_reader, options, keep_signatures, keep_documents or options is None, shingles)
    Bands.of(config)  # computed (and cached) once here, inherited by forked workers
    tasks = batched(reader.items(sources), task_records, weight=_item_bytes, budget=BATCH_TEXT_BYTES)
    if workers <= 1:
        for items in tasks:
            yield from _admitted(reader, items, _print(job, items))
        return
    yield from _pooled(reader, tasks, job, workers)


def _item_bytes(item: Document | RawRecord) -> int:
    return len(item.raw) if isinstance(item, RawRecord) else len(item.text)


def _pooled(reader: Reader, tasks: Iterator[list[Any]], job: _Job, workers: int) -> Iterator[PrintedBatch]:
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    if compiled():
        replacement_table()  # built once here and inherited by forked workers, not once in each
    with context.Pool(workers, initializer=_start, initargs=(job,)) as pool:
        pending: deque[tuple[list[Any], Any]] = deque()
        try:
            for items in tasks:
                pending.append((items, pool.apply_async(_work, (items,))))
                if len(pending) >= 2 * workers:
                    done, result = pending.popleft()
                    yield from _admitted(reader, done, result.get())
            while pending:
                done, result = pending.popleft()
                yield from _admitted(reader, done, result.get())
        finally:
            pool.terminate()


def _admitted(reader: Reader, items: list[Any], result: tuple[PrintedBatch, list[Any], Counter[str]]
              ) -> Iterator[PrintedBatch]:
    """Admit a batch's raw items where they were read (counts, repeated ids, the spill), in order;
    documents parsed by the reader itself were admitted already."""
    batch, outcomes, fields = result
    reader.stats.fields_seen.update(fields)
    keep, row = [], 0
    for item, outcome in zip(items, outcomes):
        if isinstance(item, RawRecord):
            if isinstance(outcome, tuple):
                reader.admit_raw(item, None, outcome)
                continue
            if reader.admit_raw(item, outcome, None):
                keep.append(row)
        else:
            keep.append(row)
        row += 1
    if len(keep) == len(batch):
        yield batch
    elif keep:
        yield batch.select(keep)


def index_inputs(index: Index, reader: Reader, sources: Sequence[str], *, workers: int, batch_size: int = 5000,
                 on_duplicate: OnDuplicate = "skip", on_batch: Callable[[AddReport], None] | None = None) -> AddReport:
    """Add the documents ``reader`` reads from ``sources`` to ``index``, parsed and fingerprinted by
    ``workers`` processes, committed every ``batch_size`` documents (a killed run keeps every batch
    committed before; a rerun skips the ids already in)."""
    report = AddReport()
    batches = printed_stream(reader, sources, index.config, workers=workers, shingles=index.storage.needs_shingles,
                             task_records=min(batch_size, TASK_RECORDS))
    pending: list[PrintedBatch] = []

    def commit() -> None:
        documents = [d for b in pending for d in b.documents or ()]
        prints = Fingerprints.concatenate([b.prints for b in pending])
        done = index.add_fingerprinted(documents, prints, on_duplicate=on_duplicate)
        report.merge(done)
        pending.clear()
        if on_batch is not None:
            on_batch(done)

    for batch in batches:
        pending.append(batch)
        if sum(len(b) for b in pending) >= batch_size:
            commit()
    if pending:
        commit()
    return report
