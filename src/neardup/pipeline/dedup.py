"""``dedup``: reduce a corpus to one document per story, and say what was removed and why.

The job is a chain of pure stages over columnar batches (:mod:`neardup.stages`): fingerprint
each document once → paragraph document frequencies and weights → band keys → candidate pairs
(grouped by key) → exact verification of the pairs → clusters and representatives
(:mod:`neardup.clustering`). This module is the *local executor*: it streams the documents
once, runs the batch stages on threads, keeps what does not fit in memory in spill files of
its own temporary folder, and assembles the result. A distributed engine runs the same stage
functions and gets the same clusters.

A document is removed only in favour of a representative that holds it (same text, Jaccard
≥ ``threshold``, or contained ≥ ``partial_containment`` with ``min_coverage`` of its words
covered), verified between the two. Exact duplicates (same matching form) are collapsed first
and counted once in every later stage.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from neardup.arrays import sorted_unique
from neardup.config import Config
from neardup.document import Document
from neardup.errors import ConfigError, InputError
from neardup.index.index import AddReport, Index
from neardup.io.reader import Reader
from neardup.match.candidates import BucketStats
from neardup.match.scores import KIND_NAMES, PARTIAL, PairScores
from neardup.pipeline import stages
from neardup.pipeline.clustering import Clusters, cluster
from neardup.pipeline.ingest import PrintedDocuments
from neardup.pipeline.spill import DEFAULT_BUDGET, RecordSpill, ShingleSpill
from neardup.threads import batched, ordered_map, parallel_map, resolve_workers

log = logging.getLogger(__name__)

Policy = Literal["first", "longest", "earliest"]
POLICIES = ("first", "longest", "earliest")
#: Kept only for callers of the 0.1 API; the value lives in Config.partial_containment.
PARTIAL_CONTAINMENT = Config().partial_containment
#: Progress callback: (phase, done, total or None).
ProgressCallback = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class Assignment:
    """One input document's place in the result (a line of the CLUSTERS output)."""

    id: str
    cluster: str
    representative: bool
    kind: str
    jaccard: float | None = None
    doc_in_representative: float | None = None
    representative_in_doc: float | None = None
    coverage: float | None = None
    dropped_paragraphs: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """One CLUSTERS row: the document, its representative, their relation and scores."""
        record: dict[str, Any] = {"id": self.id, "cluster": self.cluster, "representative": self.representative,
                                  "kind": self.kind}
        if self.jaccard is not None:
            record["jaccard"] = round(self.jaccard, 4)
            record["containment"] = {"doc_in_representative": round(self.doc_in_representative or 0.0, 4),
                                     "representative_in_doc": round(self.representative_in_doc or 0.0, 4)}
            record["coverage"] = round(self.coverage or 0.0, 4)
        if self.dropped_paragraphs:
            record["dropped_paragraphs"] = list(self.dropped_paragraphs)
        return record


@dataclass
class DedupSummary:
    """Counts of one run, for the summary line and for people tuning it."""

    documents: int = 0
    clusters: int = 0
    removed: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    exact_classes: int = 0
    candidate_pairs: int = 0
    verified_late: int = 0
    large_buckets: int = 0
    largest_bucket: int = 0
    kept_unresolved: int = 0
    #: Documents without a date, with ``keep="earliest"`` (ranked after every dated one).
    undated: int = 0
    #: A reference corpus (``dedup(..., reference=)``): its documents, the new documents removed as
    #: copies of one of them, and its records skipped.
    reference_documents: int = 0
    removed_for_reference: int = 0
    reference_skipped: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    #: Peak resident memory of this process (MB) at the end of each stage.
    peak_mb: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary the CLI prints (thousands separated)."""
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(self.by_kind.items()))
        skipped = sum(self.skipped.values())
        return (f"{self.documents:,} documents, {self.clusters:,} clusters, {self.removed:,} removed"
                + (f" ({kinds})" if kinds else "")
                + (f", {skipped:,} skipped" if skipped else ""))


@dataclass
class DedupResult:
    """The assignment of every document, as columns (``result[i]`` or iteration gives
    :class:`Assignment` objects), and the summary."""

    ids: list[str]
    representative: np.ndarray   # int64: row of each document's representative
    kind: np.ndarray             # int8: verify kind codes; -1 for representatives
    jaccard: np.ndarray          # float64 (nan for representatives)
    doc_in_representative: np.ndarray
    representative_in_doc: np.ndarray
    coverage: np.ndarray
    summary: DedupSummary
    dropped_paragraphs: dict[int, tuple[int, ...]] = field(default_factory=dict)
    #: The rows reported (a dedup against a reference corpus reports the new documents only).
    rows: np.ndarray | None = None

    def _rows(self) -> list[int]:
        return list(range(len(self.ids))) if self.rows is None else self.rows.tolist()

    def __len__(self) -> int:
        return len(self.ids) if self.rows is None else len(self.rows)

    def __getitem__(self, index: int) -> Assignment:
        row = index if self.rows is None else int(self.rows[index])
        rep = int(self.representative[row])
        dropped = self.dropped_paragraphs.get(row, ())
        if rep == row:
            return Assignment(self.ids[row], self.ids[row], True, "representative", dropped_paragraphs=dropped)
        return Assignment(self.ids[row], self.ids[rep], False, KIND_NAMES[int(self.kind[row])],
                          float(self.jaccard[row]), float(self.doc_in_representative[row]),
                          float(self.representative_in_doc[row]), float(self.coverage[row]))

    def __iter__(self) -> Iterator[Assignment]:
        return (self[index] for index in range(len(self)))

    def json_lines(self) -> Iterator[bytes]:
        """Each document's CLUSTERS line, as ``json.dumps(assignment.to_dict())`` writes it, from the
        columns directly (a million lines in seconds, not tens of seconds)."""
        import json

        quoted = [json.dumps(id, ensure_ascii=False) for id in self.ids]
        kinds = {code: json.dumps(name) for code, name in KIND_NAMES.items()}
        representative, kind = self.representative.tolist(), self.kind.tolist()
        jaccard, inside = self.jaccard.tolist(), self.doc_in_representative.tolist()
        outside, coverage = self.representative_in_doc.tolist(), self.coverage.tolist()
        for row in self._rows():
            rep, me = representative[row], quoted[row]
            dropped = self.dropped_paragraphs.get(row)
            tail = f', "dropped_paragraphs": {json.dumps(list(dropped))}' if dropped else ""
            if rep == row:
                line = f'{{"id": {me}, "cluster": {me}, "representative": true, "kind": "representative"{tail}}}'
            else:
                line = (f'{{"id": {me}, "cluster": {quoted[rep]}, "representative": false, "kind": {kinds[kind[row]]}, '
                        f'"jaccard": {round(jaccard[row], 4)!r}, "containment": {{"doc_in_representative": '
                        f'{round(inside[row], 4)!r}, "representative_in_doc": {round(outside[row], 4)!r}}}, '
                        f'"coverage": {round(coverage[row], 4)!r}}}')
            yield line.encode("utf-8", "surrogatepass")

    @property
    def kept(self) -> np.ndarray:
        """True for the documents kept (the representatives), by reported row."""
        kept = self.representative == np.arange(len(self.ids))
        return np.asarray(kept if self.rows is None else kept[self.rows])

    @property
    def dropped_by_row(self) -> dict[int, tuple[int, ...]]:
        """``dropped_paragraphs`` keyed by reported row (what the record spill numbers)."""
        if self.rows is None:
            return self.dropped_paragraphs
        position = {int(row): k for k, row in enumerate(self.rows.tolist())}
        return {position[row]: p for row, p in self.dropped_paragraphs.items() if row in position}


def dedup(documents: Iterable[Document], *, config: Config | None = None, keep: Policy = "first",
          date_field: str = "date", include_partial: bool = True, drop_repeats: bool = False,
          workers: int | None = 0, batch_size: int = 2000, index: Index | None = None,
          on_progress: ProgressCallback | None = None, tmp_dir: str | None = None,
          memory_budget: int = DEFAULT_BUDGET, reference: Iterable[Document] | Index | None = None) -> DedupResult:
    """Cluster ``documents`` and keep one representative per cluster (see the module docstring).

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
    _check_policy(keep)
    run = _LocalRun(config, keep, include_partial, resolve_workers(workers), index, on_progress, tmp_dir,
                    memory_budget)
    seen: set[str] = set()
    if isinstance(reference, Index):
        reference = reference.documents()
    try:
        references = None if reference is None else \
            _thread_batches(reference, config, keep, date_field, False, run, batch_size, seen)
        batches = _thread_batches(documents, config, keep, date_field, drop_repeats, run, batch_size, seen)
        return run.run(batches, references)
    finally:
        run.close()


def dedup_inputs(reader: Reader, sources: Sequence[str], *, config: Config | None = None, keep: Policy = "first",
                 date_field: str = "date", include_partial: bool = True, drop_repeats: bool = False,
                 workers: int | None = 0, index: Index | None = None, on_progress: ProgressCallback | None = None,
                 tmp_dir: str | None = None, memory_budget: int = DEFAULT_BUDGET,
                 reference_sources: Sequence[str] = (), reference_indexes: Sequence[Index] = ()) -> DedupResult:
    """:func:`dedup` of the documents ``reader`` reads from ``sources``, parsed and fingerprinted in
    ``workers`` processes (:mod:`neardup.ingest`): the same result, every core busy.
    ``reference_sources``: a reference corpus, read with the same options (see :func:`dedup`);
    ``reference_indexes``: indexes whose stored documents are a reference corpus too (read first)."""
    from neardup.pipeline.ingest import printed_stream

    config = config or (index.config if index is not None else Config())
    _check_policy(keep)
    workers = resolve_workers(workers)
    run = _LocalRun(config, keep, include_partial, workers, index, on_progress, tmp_dir, memory_budget)
    dates = date_field if keep == "earliest" else None

    def reference_stream() -> Iterator[PrintedDocuments]:
        seen: set[str] = set()
        for reference in reference_indexes:
            yield from _thread_batches(reference.documents(), config, keep, date_field, False, run, 2000, seen)
        references = Reader(id_field=reader.id_field, text_field=reader.text_field, strict=reader.strict,
                            unique_ids=True, max_record_bytes=reader.max_record_bytes,
                            max_paragraphs=reader.max_paragraphs, on_skip=reader.on_skip)
        references.claim_ids(seen)
        yield from printed_stream(references, reference_sources, config, workers=workers, date_field=dates)
        reader.claim_ids(references)  # a new document cannot take an id of the reference
        run.summary.reference_skipped.update(references.stats.skipped)

    try:
        batches = printed_stream(reader, sources, config, workers=workers, date_field=dates,
                                 keep_signatures=index is not None, with_documents=index is not None,
                                 drop_repeats=drop_repeats)
        return run.run(batches, reference_stream() if reference_sources or reference_indexes else None)
    finally:
        run.close()


def _check_policy(keep: str) -> None:
    if keep not in POLICIES:
        raise ConfigError(f"keep must be one of {', '.join(POLICIES)}, got {keep!r}")


def _thread_batches(documents: Iterable[Document], config: Config, keep: str, date_field: str,
                    drop_repeats: bool, run: _LocalRun, batch_size: int,
                    seen: set[str] | None = None) -> Iterator[PrintedDocuments]:
    """Batches of documents through the fingerprint stage on the run's threads (repeated ids skipped)."""
    seen = set() if seen is None else seen
    bands = stages.band_params(config)
    keep_signatures = run.index is not None

    def accepted() -> Iterator[Document]:
        for document in documents:
            if not isinstance(document, Document):
                raise InputError(f"dedup takes Documents, got {type(document).__name__}")
            if document.id in seen:
                run.summary.skipped["duplicate id"] += 1
                continue
            seen.add(document.id)
            yield document

    def work(batch: list[Document]) -> PrintedDocuments:
        printed = stages.print_batch(batch, config, bands, keep_signatures=keep_signatures)
        if drop_repeats:
            printed.dropped = stages.repeated_paragraphs(batch, config)
        dates = [date_key(d.metadata.get(date_field)) for d in batch] if keep == "earliest" else None
        lengths = np.fromiter((len(d.text) for d in batch), dtype=np.int64, count=len(batch))
        return PrintedDocuments([d.id for d in batch], lengths, dates, printed, batch if keep_signatures else None)

    for _, result in ordered_map(work, batched(accepted(), batch_size), run.workers):
        yield result


class _LocalRun:
    """One dedup run on this machine: the stages in order, state in arrays and spills."""

    def __init__(self, config: Config, keep: Policy, include_partial: bool, workers: int, index: Index | None,
                 on_progress: ProgressCallback | None, tmp_dir: str | None, memory_budget: int) -> None:
        self.config, self.keep = config, keep
        self.include_partial, self.workers = include_partial, workers
        self.index, self.on_progress = index, on_progress
        self._tmp_parent = tmp_dir
        self._folder: Path | None = None
        self.summary = DedupSummary()
        self.memory_budget = memory_budget
        self.corpus = stages.CorpusColumns()
        self.dropped: dict[int, tuple[int, ...]] = {}
        self.reference_count = 0

    # -- the spill folder ----------------------------------------------------------------------

    def folder(self) -> Path:
        """This run's temporary folder, created on first use."""
        if self._folder is None:
            import tempfile

            self._folder = Path(tempfile.mkdtemp(prefix="neardup-dedup-", dir=self._tmp_parent))
        return self._folder

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    # -- the stages ------------------------------------------------------------------------------

    def run(self, batches: Iterable[PrintedDocuments],
            references: Iterable[PrintedDocuments] | None = None) -> DedupResult:
        """The stages in order; ``references`` (read first) are documents that are never removed."""
        self._article_spill = RecordSpill(self.folder, self.memory_budget)
        self._paragraph_spill = RecordSpill(self.folder, self.memory_budget)
        self._shingles = ShingleSpill(self.folder, self.memory_budget)
        if references is not None:
            self._timed("reference", lambda: self._read(references, index=False))
        self.reference_count = self.corpus.documents
        self._timed("fingerprint", lambda: self._read(batches))
        self._shingles.finish()
        corpus = self.corpus.finish()
        weights = self._timed("frequencies", lambda: stages.paragraph_weights(corpus, self.config))
        classes = stages.exact_classes(corpus)
        rank = stages.policy_ranks(corpus, self.keep)
        reference = np.arange(len(corpus.ids)) < self.reference_count
        if reference.any():  # the reference comes first in every class, so it is what a class keeps
            rank = np.argsort(np.lexsort((rank, ~reference)), kind="stable").astype(np.int64)
        class_rank = stages.class_ranks(classes, rank)
        fixed = np.zeros(classes.count, dtype=bool)
        fixed[classes.of_doc[reference]] = True
        pairs = self._timed("candidates", lambda: self._candidates(corpus, classes, weights, class_rank))
        known = self._timed("verify", lambda: self._verify(corpus, classes, weights, pairs))
        clusters = self._timed("cluster", lambda: cluster(
            classes.count, known, class_rank, lambda a, b: self._verify_classes(corpus, classes, weights, a, b),
            fixed=fixed))
        return self._result(corpus, classes, rank, clusters)

    def _timed(self, name: str, step: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return step()
        finally:
            self.summary.seconds[name] = round(time.perf_counter() - start, 3)
            self.summary.peak_mb[name] = _peak_mb()

    def _read(self, batches: Iterable[PrintedDocuments], index: bool = True) -> None:
        for batch in batches:
            printed = batch.printed
            first_doc, first_para = self.corpus.documents, self.corpus.paragraphs
            self.corpus.append(batch.ids, batch.lengths, batch.dates, printed)
            self._article_spill.append(printed.article_keys, first_doc + np.arange(len(batch)))
            self._paragraph_spill.append(printed.paragraph_keys, first_para + printed.paragraph_rows)
            assert printed.prints.shingles is not None  # print_batch keeps them
            self._shingles.append(printed.prints.shingles)
            for row, dropped in (printed.dropped or {}).items():
                self.dropped[first_doc + row] = dropped
            if index and self.index is not None and batch.documents is not None:
                self.summary_index(self.index.add_fingerprinted(batch.documents, printed.prints))
            if self.on_progress is not None:
                self.on_progress("reading", self.corpus.documents, None)

    def summary_index(self, report: AddReport) -> None:
        for reason, count in report.skipped.items():
            if reason != "duplicate id":
                self.summary.skipped[f"index: {reason}"] += count

    def _candidates(self, corpus: stages.Corpus, classes: stages.ExactClasses, weights: np.ndarray,
                    class_rank: np.ndarray) -> np.ndarray:
        config = self.config
        article_class = classes.of_doc
        paragraph_class = classes.of_doc[corpus.paragraph_owners]
        searchable = stages.searchable_paragraphs(weights)

        def group(job: tuple[RecordSpill, int]) -> tuple[np.ndarray, BucketStats]:
            spill, p = job
            if spill is self._article_spill:
                return stages.group_partition(spill.partition(p), article_class, None, class_rank, config)
            return stages.group_partition(spill.partition(p), paragraph_class, searchable, class_rank, config)

        from neardup.match.candidates import PARTITIONS

        jobs = [(spill, p) for spill in (self._article_spill, self._paragraph_spill) for p in range(PARTITIONS)]
        results = parallel_map(group, jobs, self.workers)
        stats = BucketStats()
        for _, part_stats in results:
            stats = stats.merge(part_stats)
        self.summary.large_buckets, self.summary.largest_bucket = stats.large_buckets, stats.largest_bucket
        pairs = sorted_unique(np.concatenate([pairs for pairs, _ in results])) if results else np.zeros(0, np.uint64)
        self.summary.candidate_pairs = len(pairs)
        return pairs

    def _verify(self, corpus: stages.Corpus, classes: stages.ExactClasses, weights: np.ndarray,
                pairs: np.ndarray) -> Any:
        from neardup.match.candidates import split_pairs

        low, high = split_pairs(pairs)
        chunks = stages.pair_chunks(len(low))
        done = [0]

        def measure(chunk: slice) -> Any:
            known = self._verify_classes(corpus, classes, weights, low[chunk], high[chunk])
            done[0] += chunk.stop - chunk.start
            if self.on_progress is not None:
                self.on_progress("comparing", done[0], len(low))
            return known

        parts = parallel_map(measure, chunks, self.workers)
        return stages.merge_known(parts, self.config)

    def _verify_classes(self, corpus: stages.Corpus, classes: stages.ExactClasses, weights: np.ndarray,
                        a: np.ndarray, b: np.ndarray) -> Any:
        scores = stages.verify_class_pairs(corpus, self._shingles, classes, weights, a, b, self.config)
        return stages.known_pairs(scores, self.config, self.include_partial)

    def _result(self, corpus: stages.Corpus, classes: stages.ExactClasses, rank: np.ndarray,
                clusters: Clusters) -> DedupResult:
        result = stages.assignments(corpus, classes, rank, clusters, self.config)
        summary = self.summary
        new = np.arange(self.reference_count, len(corpus.ids))
        summary.documents = len(new)
        summary.reference_documents = self.reference_count
        summary.undated = sum(date is None for date in corpus.dates[self.reference_count:])
        summary.exact_classes = classes.count
        summary.verified_late, summary.kept_unresolved = clusters.verified_late, clusters.kept_unresolved
        kept = (result.representative == np.arange(len(corpus.ids)))[new]
        summary.clusters = int(kept.sum())
        summary.removed = len(new) - summary.clusters
        summary.removed_for_reference = int((result.representative[new] < self.reference_count).sum())
        removed_kinds = result.kind[new][~kept]
        summary.by_kind.update({KIND_NAMES[int(code)]: int(count)
                                for code, count in zip(*np.unique(removed_kinds, return_counts=True))})
        is_kept = result.representative == np.arange(len(corpus.ids))
        return DedupResult(corpus.ids, result.representative, result.kind, result.jaccard,
                           result.doc_in_representative, result.representative_in_doc, result.coverage, summary,
                           {row: paragraphs for row, paragraphs in self.dropped.items() if is_kept[row]},
                           new if self.reference_count else None)


def _peak_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def date_key(value: Any) -> str | None:
    """A sortable date: ISO and common wire formats parsed; other values kept as text."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%d-%b-%Y %H:%M:%S.%f"),
                  lambda t: datetime.strptime(t, "%d-%b-%Y %H:%M:%S"), lambda t: datetime.strptime(t, "%d %b %Y")):
        try:
            return parse(text).replace(tzinfo=None).isoformat()
        except ValueError:
            continue
    return text


__all__ = [
    "PARTIAL",
    "POLICIES",
    "Assignment",
    "DedupResult",
    "DedupSummary",
    "PairScores",
    "Policy",
    "date_key",
    "dedup",
    "dedup_inputs",
]
