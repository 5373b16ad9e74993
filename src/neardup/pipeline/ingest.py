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
import os
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neardup.config import Config
from neardup.document import Document
from neardup.errors import RecordError
from neardup.io.reader import RawRecord, Reader
from neardup.pipeline import stages
from neardup.threads import batched

#: Records a worker parses and fingerprints per task.
TASK_RECORDS = 2000


@dataclass
class PrintedDocuments:
    """One batch through the fingerprint stage: who the documents are, and the stage output."""

    ids: list[str]
    lengths: np.ndarray
    dates: list[str | None] | None
    printed: stages.PrintedBatch
    documents: list[Document] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, rows: Sequence[int]) -> PrintedDocuments:
        """Some of the documents (a repeated id dropped after the fact)."""
        rows = list(rows)
        return PrintedDocuments([self.ids[r] for r in rows], self.lengths[rows],
                                None if self.dates is None else [self.dates[r] for r in rows],
                                stages.select_printed(self.printed, rows),
                                None if self.documents is None else [self.documents[r] for r in rows])


@dataclass(frozen=True)
class _Job:
    """What every worker needs, set once per process."""

    config: Config
    reader: Reader
    date_field: str | None
    keep_signatures: bool
    with_documents: bool
    drop_repeats: bool
    #: "dedup": the dedup stage output (band keys, shingles); "index": fingerprints only, for an index
    #: (with shingles when ``shingles``).
    stage: str = "dedup"
    shingles: bool = True


_JOB: _Job | None = None


def _start(job: _Job) -> None:
    global _JOB
    _JOB = job


def _work(items: list[Document | RawRecord]) -> tuple[PrintedDocuments, list[Any], Counter[str]]:
    """In a worker: parse what is raw, fingerprint every document; the outcome of each raw item."""
    job = _JOB
    assert job is not None, "worker not started"
    return _print(job, items)


def _print(job: _Job, items: list[Document | RawRecord]) -> tuple[PrintedDocuments, list[Any], Counter[str]]:
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
    if job.stage == "index":
        from neardup.sketch.fingerprint import fingerprint

        prints = fingerprint(documents, job.config, shingles=job.shingles)
        empty = np.zeros((0, 0), np.uint64)
        printed = stages.PrintedBatch(prints, empty, empty, np.zeros(0, np.int64))
    else:
        bands = stages.band_params(job.config)
        printed = stages.print_batch(documents, job.config, bands, keep_signatures=job.keep_signatures)
    if job.drop_repeats:
        printed.dropped = stages.repeated_paragraphs(documents, job.config)
    dates = None
    if job.date_field is not None:
        from neardup.pipeline.dedup import date_key

        dates = [date_key(d.metadata.get(job.date_field)) for d in documents]
    result = PrintedDocuments([d.id for d in documents],
                              np.fromiter((len(d.text) for d in documents), dtype=np.int64, count=len(documents)),
                              dates, printed, documents if job.with_documents else None)
    return result, outcomes, Counter(job.reader.stats.fields_seen)


def printed_stream(reader: Reader, sources: Sequence[str], config: Config, *, workers: int,
                   date_field: str | None = None, keep_signatures: bool = False, with_documents: bool = False,
                   drop_repeats: bool = False, task_records: int = TASK_RECORDS, stage: str = "dedup",
                   shingles: bool = True) -> Iterator[PrintedDocuments]:
    """The documents of ``sources`` through the fingerprint stage, batch by batch, in input order,
    parsed and fingerprinted by ``workers`` processes (see the module docstring). ``stage="index"``
    gives fingerprints only (with the documents), for :meth:`Index.add_fingerprinted`."""
    worker_reader = Reader(id_field=reader.id_field, text_field=reader.text_field, strict=False,
                           max_record_bytes=reader.max_record_bytes, max_paragraphs=reader.max_paragraphs)
    job = _Job(config, worker_reader, date_field, keep_signatures, with_documents, drop_repeats, stage, shingles)
    stages.band_params(config)  # computed (and cached) once here, inherited by forked workers
    tasks = batched(reader.items(sources), task_records)
    if workers <= 1:
        for items in tasks:
            yield from _admitted(reader, items, _print(job, items))
        return
    yield from _pooled(reader, tasks, job, workers)


def _pooled(reader: Reader, tasks: Iterator[list[Any]], job: _Job, workers: int) -> Iterator[PrintedDocuments]:
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    from neardup.native import compiled
    from neardup.sketch.kernel import replacement_table

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


def _admitted(reader: Reader, items: list[Any], result: tuple[PrintedDocuments, list[Any], Counter[str]]
              ) -> Iterator[PrintedDocuments]:
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


def cores() -> int:
    return max(1, os.cpu_count() or 1)
