"""The local executor: the dedup stages on this machine, batch stages on threads, spills in a folder it owns.

It streams the fingerprinted batches once (appending the corpus columns, spilling band records
and shingles past a memory budget), then runs the corpus-wide stages in order: paragraph weights,
exact classes and ranks, candidate pairs (partition by partition, on threads), exact scores and
the hold rule (chunk by chunk, on threads), clusters, assignments. The spill folder is the run's
own temporary folder, made on first need and removed at the end — never a path read from an input.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neardup.arrays import sorted_unique
from neardup.config import Config
from neardup.document import Document
from neardup.errors import InputError
from neardup.index.index import AddReport, Index
from neardup.match.candidates import PARTITIONS, BucketStats, split_pairs
from neardup.match.scores import KIND_NAMES
from neardup.pipeline import stages
from neardup.pipeline.clustering import Clusters, KnownPairs, cluster
from neardup.pipeline.figures import FigurePartners, figure_partners
from neardup.pipeline.policy import DedupOptions, policy_ranks
from neardup.pipeline.result import DedupResult, DedupSummary
from neardup.pipeline.spill import BandSpill, ShingleSpill
from neardup.pipeline.stages import PrintedBatch
from neardup.threads import BATCH_TEXT_BYTES, batched, ordered_map, parallel_map

#: Progress callback: (phase, done, total or None).
ProgressCallback = Callable[[str, int, "int | None"], None]


class LocalRun:
    """One dedup run on this machine: the stages in order, state in arrays and spills."""

    def __init__(self, config: Config, options: DedupOptions, workers: int, *, index: Index | None = None,
                 on_progress: ProgressCallback | None = None, tmp_dir: str | None = None,
                 memory_budget: int) -> None:
        self.config, self.options, self.workers = config, options, workers
        self.index, self.on_progress = index, on_progress
        self._tmp_parent = tmp_dir
        self._folder: Path | None = None
        self.summary = DedupSummary()
        self.corpus = stages.CorpusBuilder()
        self.dropped: dict[int, tuple[int, ...]] = {}
        self.reference_count = 0
        self._articles = BandSpill(self.folder, memory_budget)
        self._paragraphs = BandSpill(self.folder, memory_budget)
        self._shingles = ShingleSpill(self.folder, memory_budget)
        self._holders: np.ndarray | None = None

    # -- the spill folder ----------------------------------------------------------------------

    def folder(self) -> Path:
        """This run's temporary folder, created on first use."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="neardup-dedup-", dir=self._tmp_parent))
        return self._folder

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    # -- reading -------------------------------------------------------------------------------

    def print_documents(self, documents: Iterable[Document], batch_size: int, seen: set[str], *,
                        reference: bool = False) -> Iterator[PrintedBatch]:
        """Batches of documents through the fingerprint stage on the run's threads (a repeated id
        skipped and counted); ``reference`` documents are neither indexed nor cut."""
        keep_signatures = self.index is not None and not reference
        options = self.options.for_reference() if reference else self.options

        def accepted() -> Iterator[Document]:
            for document in documents:
                if not isinstance(document, Document):
                    raise InputError(f"dedup takes Documents, got {type(document).__name__}")
                if document.id in seen:
                    self.summary.skipped["duplicate id"] += 1
                    continue
                seen.add(document.id)
                yield document

        def work(batch: list[Document]) -> PrintedBatch:
            return stages.print_documents(batch, self.config, options, keep_signatures=keep_signatures,
                                          keep_documents=keep_signatures)

        for _, printed in ordered_map(work, batched(accepted(), batch_size, weight=_text_length,
                                                                 budget=BATCH_TEXT_BYTES), self.workers):
            yield printed

    # -- the stages ------------------------------------------------------------------------------

    def run(self, batches: Iterable[PrintedBatch], references: Iterable[PrintedBatch] | None = None) -> DedupResult:
        """The stages in order; ``references`` (read first) are documents that are never removed."""
        if references is not None:
            self._timed("reference", lambda: self._read(references, index=False))
        self.reference_count = self.corpus.documents
        self._timed("fingerprint", lambda: self._read(batches))
        self._shingles.finish()
        corpus = self.corpus.finish()
        weights, frequencies = self._timed("frequencies", lambda: stages.paragraph_weights(corpus, self.config))
        self._holders = stages.furniture_holders(frequencies, corpus.paragraph_words, self.config)
        classes = stages.exact_classes(corpus)
        own = stages.own_words(frequencies, corpus.paragraph_words, corpus.paragraph_digests, corpus.doc_offsets,
                               self.config) if self.options.keep.reads_own_words else None
        rank = policy_ranks(corpus.ids, corpus.lengths, corpus.dates, self.options.keep, own)
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
            fixed=fixed, verify_rounds=self.config.verify_rounds, max_rounds=self.config.max_rounds))
        clusters = self._timed("kept", lambda: self._nothing_lost(corpus, classes, weights, class_rank, clusters))
        partners = figure_partners(known, class_rank, self.config, self.options.partial)
        return self._result(corpus, classes, rank, clusters, partners)

    def _timed(self, name: str, step: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return step()
        finally:
            self.summary.seconds[name] = round(self.summary.seconds.get(name, 0.0) + time.perf_counter() - start, 3)
            self.summary.peak_mb[name] = _peak_mb()

    def _read(self, batches: Iterable[PrintedBatch], index: bool = True) -> None:
        for batch in batches:
            first_doc, first_para = self.corpus.documents, self.corpus.paragraphs
            self.corpus.append(batch)
            self._articles.append(batch.article_keys, first_doc + np.arange(len(batch)))
            self._paragraphs.append(batch.paragraph_keys, first_para + batch.paragraph_rows)
            assert batch.prints.shingles is not None  # print_documents keeps them
            self._shingles.append(batch.prints.shingles)
            for row, dropped in (batch.dropped or {}).items():
                self.dropped[first_doc + row] = dropped
            if index and self.index is not None and batch.documents is not None:
                self._count_index_skips(self.index.add_fingerprinted(batch.documents, batch.prints))
            if self.on_progress is not None:
                self.on_progress("reading", self.corpus.documents, None)

    def _count_index_skips(self, report: AddReport) -> None:
        for reason, count in report.skipped.items():
            if reason != "duplicate id":
                self.summary.skipped[f"index: {reason}"] += count

    def _candidates(self, corpus: stages.Corpus, classes: stages.ExactClasses, weights: np.ndarray,
                    class_rank: np.ndarray) -> np.ndarray:
        config = self.config
        article_class = classes.of_doc
        paragraph_class = classes.of_doc[corpus.paragraph_owners]
        searchable = stages.searchable_paragraphs(corpus, weights, config)

        def group(job: tuple[BandSpill, int]) -> tuple[np.ndarray, BucketStats]:
            spill, p = job
            if spill is self._articles:
                return stages.group_partition(spill.partition(p), article_class, None, class_rank, config)
            return stages.group_partition(spill.partition(p), paragraph_class, searchable, class_rank, config)

        jobs = [(spill, p) for spill in (self._articles, self._paragraphs) for p in range(PARTITIONS)]
        results = parallel_map(group, jobs, self.workers)
        stats = BucketStats()
        for _, part_stats in results:
            stats = stats.merge(part_stats)
        self.summary.large_buckets, self.summary.largest_bucket = stats.large_buckets, stats.largest_bucket
        pairs = sorted_unique(np.concatenate([pairs for pairs, _ in results])) if results else np.zeros(0, np.uint64)
        self.summary.candidate_pairs = len(pairs)
        return pairs

    def _verify(self, corpus: stages.Corpus, classes: stages.ExactClasses, weights: np.ndarray,
                pairs: np.ndarray) -> KnownPairs:
        low, high = split_pairs(pairs)
        done = [0]

        def measure(chunk: slice) -> KnownPairs:
            known = self._verify_classes(corpus, classes, weights, low[chunk], high[chunk])
            done[0] += chunk.stop - chunk.start
            if self.on_progress is not None:
                self.on_progress("comparing", done[0], len(low))
            return known

        parts = parallel_map(measure, stages.pair_chunks(len(low)), self.workers)
        return stages.merge_known(parts, self.config)

    def _verify_classes(self, corpus: stages.Corpus, classes: stages.ExactClasses, weights: np.ndarray,
                        a: np.ndarray, b: np.ndarray) -> KnownPairs:
        scores = stages.score_class_pairs(corpus, self._shingles, classes, weights, a, b, self.config,
                                          self._holders)
        return stages.known_pairs(scores, self.config, self.options.partial)

    def _nothing_lost(self, corpus: stages.Corpus, classes: stages.ExactClasses, weights: np.ndarray,
                      class_rank: np.ndarray, clusters: Clusters) -> Clusters:
        """Clusters where every removal is held by its representative and its furniture by kept
        documents: removals that would lose text are kept, round by round (``loss_rounds``), the
        best-ranked holder of a paragraph only removed pages carry first (:func:`stages.first_to_keep`)."""
        representative = clusters.representative
        checking = np.flatnonzero(representative != np.arange(len(representative)))
        for round_ in range(self.config.loss_rounds):
            held = stages.held_by_kept(corpus, classes, clusters.representative)
            failing = self._losses(corpus, classes, weights, clusters.representative, held, checking)
            if len(failing) == 0:
                break
            keep = failing
            if round_ < self.config.loss_rounds - 1:
                owner, digests = stages.unheld_paragraphs(corpus, classes, held, failing, self.config)
                keep = stages.first_to_keep(failing, owner, digests, class_rank)
            clusters = stages.undo_removals(clusters, keep)
            checking = np.setdiff1d(failing, keep)
        return clusters

    def _losses(self, corpus: stages.Corpus, classes: stages.ExactClasses, weights: np.ndarray,
                representative: np.ndarray, kept_marks: np.ndarray, removed: np.ndarray) -> np.ndarray:
        """Of the ``removed`` classes, those that would lose text: rescored against their
        representatives with the furniture that kept documents really hold (``kept_marks``:
        :func:`stages.held_by_kept`; :func:`stages.kept_for_loss`)."""
        held = stages.kept_furniture(kept_marks, corpus.paragraph_words, self.config)

        def check(chunk: slice) -> np.ndarray:
            scores = stages.score_class_pairs(corpus, self._shingles, classes, weights, removed[chunk],
                                              representative[removed[chunk]], self.config, held, relative=False)
            return stages.kept_for_loss(scores, self.config, self.options.partial)

        parts = parallel_map(check, stages.pair_chunks(len(removed)), self.workers)
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def _result(self, corpus: stages.Corpus, classes: stages.ExactClasses, rank: np.ndarray,
                clusters: Clusters, partners: FigurePartners) -> DedupResult:
        found = stages.assignments(corpus, classes, rank, clusters, self.config, partners)
        summary = self.summary
        new = np.arange(self.reference_count, len(corpus.ids))
        summary.documents = len(new)
        summary.reference_documents = self.reference_count
        summary.undated = sum(date is None for date in corpus.dates[self.reference_count:])
        summary.exact_classes = classes.count
        summary.verified_late, summary.kept_unresolved = clusters.verified_late, clusters.kept_unresolved
        summary.kept_for_loss = clusters.kept_for_loss
        is_kept = found.representative == np.arange(len(corpus.ids))
        summary.clusters = int(is_kept[new].sum())
        summary.removed = len(new) - summary.clusters
        summary.removed_for_reference = int((found.representative[new] < self.reference_count).sum())
        summary.figures_differ = int((found.differs_from[new] >= 0).sum())
        removed_kinds = found.kind[new][~is_kept[new]]
        summary.by_kind.update({KIND_NAMES[int(code)]: int(count)
                                for code, count in zip(*np.unique(removed_kinds, return_counts=True))})
        dropped = {row: paragraphs for row, paragraphs in self.dropped.items() if is_kept[row]}
        return DedupResult.of(corpus.ids, found, summary, dropped, new if self.reference_count else None)


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _text_length(document: Document) -> int:
    return len(document.text)
