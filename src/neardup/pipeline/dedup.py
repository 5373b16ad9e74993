"""``dedup``: reduce a corpus to one document per story, and say what was removed and why.

The job is a chain of pure stages over columnar batches (:mod:`neardup.pipeline.stages`):
fingerprint each document once → paragraph document frequencies and weights → band keys →
candidate pairs (grouped by key) → exact scores of the pairs and the hold rule → clusters and
representatives (:mod:`neardup.pipeline.clustering`). :func:`dedup` and :func:`dedup_inputs` are the
front doors of the local executor (:mod:`neardup.pipeline.local`); :mod:`neardup.spark` runs the same
stage functions on Spark and gets the same clusters.

A document is removed only in favour of a representative that holds it (same text, Jaccard
≥ ``threshold``, or contained ≥ ``partial_containment`` with ``min_coverage`` of its words
covered), verified between the two. Exact duplicates (same matching form) are collapsed first
and counted once in every later stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from neardup.config import Config
from neardup.document import Document
from neardup.index.index import Index
from neardup.io.reader import Reader
from neardup.io.records import documents_of
from neardup.pipeline.ingest import printed_stream
from neardup.pipeline.local import LocalRun, ProgressCallback
from neardup.pipeline.policy import DedupOptions, KeepName, KeepPolicy
from neardup.pipeline.result import DedupResult
from neardup.pipeline.spill import DEFAULT_BUDGET
from neardup.pipeline.stages import PrintedBatch
from neardup.threads import resolve_workers


def dedup(documents: Iterable[Document | Mapping[str, Any]] | Any, *, config: Config | None = None,
          keep: KeepName | KeepPolicy = "first", date_field: str = "date", include_partial: bool = True,
          drop_repeats: bool = False, workers: int | None = 0, batch_size: int = 2000, index: Index | None = None,
          on_progress: ProgressCallback | None = None, tmp_dir: str | None = None,
          memory_budget: int = DEFAULT_BUDGET, reference: Iterable[Document] | Index | Any | None = None,
          id_column: str = "id", text_column: str = "text") -> DedupResult:
    """Cluster ``documents`` and keep one representative per cluster (see the module docstring).

    ``documents`` (and ``reference``) are :class:`Document` objects, mappings with ``id_column``
    and ``text_column`` (other keys: metadata, where ``date_field`` is read), or a pyarrow Table
    or a pandas DataFrame of such rows (:mod:`neardup.io.records`).

    ``keep`` chooses among the documents no other member holds better: the first in input
    order, the longest text, or the earliest ``date_field`` (missing dates last); ties go to
    the smaller id. A repeated id is skipped (counted in the summary). ``workers`` threads
    fingerprint and compare (0: one per core). ``index``, if given, also receives every
    document. Spill files go to a temporary folder under ``tmp_dir`` once the records or
    shingles held in memory exceed ``memory_budget`` bytes; the folder is removed at the end.

    ``reference`` documents (a corpus deduplicated before: last month's kept documents) are
    never removed: a new document one of them holds is removed as its copy, the others are
    clustered among themselves; the result lists the new documents only. An id of the
    reference is not taken again by a new document (skipped as a duplicate id). An :class:`Index`
    as ``reference`` gives its stored documents (:meth:`Index.documents`), read in one snapshot.
    """
    config = config or (index.config if index is not None else Config())
    options = DedupOptions.of(keep, date_field, include_partial, drop_repeats)
    run = LocalRun(config, options, resolve_workers(workers), index=index, on_progress=on_progress, tmp_dir=tmp_dir,
                   memory_budget=memory_budget)
    seen: set[str] = set()
    if isinstance(reference, Index):
        reference = reference.documents()
    columns = {"id_column": id_column, "text_column": text_column}
    try:
        references = None if reference is None else run.print_documents(
            documents_of(reference, **columns, where="dedup(reference=)"), batch_size, seen, reference=True)
        return run.run(run.print_documents(documents_of(documents, **columns), batch_size, seen), references)
    finally:
        run.close()


def dedup_inputs(reader: Reader, sources: Sequence[str], *, config: Config | None = None,
                 keep: KeepName | KeepPolicy = "first", date_field: str = "date", include_partial: bool = True,
                 drop_repeats: bool = False, workers: int | None = 0, index: Index | None = None,
                 on_progress: ProgressCallback | None = None, tmp_dir: str | None = None,
                 memory_budget: int = DEFAULT_BUDGET, reference_sources: Sequence[str] = (),
                 reference_indexes: Sequence[Index] = ()) -> DedupResult:
    """:func:`dedup` of the documents ``reader`` reads from ``sources``, parsed and fingerprinted in
    ``workers`` processes (:mod:`neardup.pipeline.ingest`): the same result, every core busy.
    ``reference_sources``: a reference corpus, read with the same options (see :func:`dedup`);
    ``reference_indexes``: indexes whose stored documents are a reference corpus too (read first)."""
    config = config or (index.config if index is not None else Config())
    options = DedupOptions.of(keep, date_field, include_partial, drop_repeats)
    workers = resolve_workers(workers)
    run = LocalRun(config, options, workers, index=index, on_progress=on_progress, tmp_dir=tmp_dir,
                   memory_budget=memory_budget)
    def reference_stream() -> Iterator[PrintedBatch]:
        seen: set[str] = set()
        for reference in reference_indexes:
            yield from run.print_documents(reference.documents(), 2000, seen, reference=True)
        references = Reader(id_field=reader.id_field, text_field=reader.text_field, strict=reader.strict,
                            unique_ids=True, max_record_bytes=reader.max_record_bytes,
                            max_paragraphs=reader.max_paragraphs, on_skip=reader.on_skip)
        references.claim_ids(seen)
        yield from printed_stream(references, reference_sources, config, workers=workers,
                                  options=options.for_reference())
        reader.claim_ids(references)  # a new document cannot take an id of the reference
        run.summary.reference_skipped.update(references.stats.skipped)

    try:
        batches = printed_stream(reader, sources, config, workers=workers, options=options,
                                 keep_signatures=index is not None, keep_documents=index is not None)
        return run.run(batches, reference_stream() if reference_sources or reference_indexes else None)
    finally:
        run.close()


__all__ = ["dedup", "dedup_inputs"]
