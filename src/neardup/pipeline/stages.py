"""The stages of dedup, as pure functions over columnar batches.

Each function takes arrays (or a batch of documents) and returns arrays, with no global state,
so the local executor (:mod:`neardup.pipeline.local`) and the Spark engine
(:mod:`neardup.pipeline.spark_engine`) compute the same thing:

=====================  ==========================================================  ==============
stage                  in → out                                                    shuffle
=====================  ==========================================================  ==============
``print_documents``    documents → fingerprints, shingles, band keys               none
``paragraph_weights``  paragraph digests of the corpus → document frequencies →    by digest
                       weights (:mod:`neardup.match.boilerplate`) and holders
``exact_classes``      document digests → one class per matching form              by digest
``policy_ranks``       lengths, dates, ids → the keep policy as distinct ranks     global sort
``group_partition``    band records of one partition → candidate pairs             by band key
``score_class_pairs``  candidate pairs + both documents' shingles → exact scores   join on doc
``known_pairs``        scores → which side holds the other (the hold rule)         none
``cluster``            holding pairs → representatives (:mod:`.clustering`)        components
``held_by_kept``       representatives → which paragraphs a kept document holds    by digest
``kept_for_loss``      removals rescored with those → removals to undo             join on doc
``assignments``        representatives → each document's row of CLUSTERS           none
=====================  ==========================================================  ==============
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from neardup.arrays import offsets, ranges, run_starts, sorted_unique
from neardup.config import Config
from neardup.document import Document
from neardup.match.boilerplate import paragraph_frequencies
from neardup.match.boilerplate import paragraph_weights as weights_of
from neardup.match.candidates import BucketStats, bucket_keys, searchable
from neardup.match.candidates import group_partition as _group_partition
from neardup.match.repetition import repeats
from neardup.match.scores import FIGURES_DIFFER, PARTIAL, PairScores, empty_scores, holds, kinds, score_pairs
from neardup.pipeline.clustering import Clusters, KnownPairs
from neardup.pipeline.elsewhere import held_elsewhere
from neardup.pipeline.figures import FigurePartners
from neardup.pipeline.policy import DedupOptions, date_key
from neardup.records import Fingerprints, ShingleColumns
from neardup.sketch.fingerprint import fingerprint
from neardup.sketch.lsh import Bands
from neardup.text.figures import with_figures

#: Candidate pairs scored per task.
PAIR_CHUNK = 1 << 14


# -- the fingerprint stage -------------------------------------------------------------------------------


@dataclass
class PrintedBatch:
    """A batch of documents through the fingerprint stage: who they are, and what later stages read.

    ``prints`` hold the shingles (and the signatures only when an index wants them);
    ``article_keys`` are the documents' bucket keys (docs, bands); ``paragraph_keys`` those of the
    paragraphs that may propose candidates, ``paragraph_rows`` (batch-local paragraph numbers).
    ``dates`` are date keys when the keep policy reads them; ``dropped`` the repeated paragraphs
    of each document (``drop_repeats``); ``documents`` the documents themselves when an index
    receives them too.
    """

    ids: list[str]
    lengths: np.ndarray
    prints: Fingerprints
    article_keys: np.ndarray
    paragraph_keys: np.ndarray
    paragraph_rows: np.ndarray
    dates: list[str | None] | None = None
    dropped: dict[int, tuple[int, ...]] | None = None
    documents: list[Document] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, rows: Sequence[int]) -> PrintedBatch:
        """The stage output of some documents of the batch (``rows`` ascending)."""
        prints = self.prints
        kept_doc = np.zeros(len(self), dtype=bool)
        kept_doc[np.asarray(rows, dtype=np.int64)] = True
        counts = np.diff(prints.doc_offsets)
        kept_counts = np.where(kept_doc, counts, 0)
        new_start = np.cumsum(kept_counts) - kept_counts     # first new paragraph number of each kept document
        owners = prints.paragraph_owners
        kept = kept_doc[owners[self.paragraph_rows]]
        old = self.paragraph_rows[kept]
        new = new_start[owners[old]] + (old - prints.doc_offsets[owners[old]])
        position = np.cumsum(kept_doc) - 1
        chosen = np.flatnonzero(kept_doc).tolist()
        return PrintedBatch(
            [self.ids[r] for r in chosen], self.lengths[chosen], prints.select(chosen), self.article_keys[kept_doc],
            self.paragraph_keys[kept], new.astype(np.int64),
            None if self.dates is None else [self.dates[r] for r in chosen],
            None if self.dropped is None else {int(position[r]): p for r, p in self.dropped.items() if kept_doc[r]},
            None if self.documents is None else [self.documents[r] for r in chosen])


def print_documents(documents: Sequence[Document], config: Config, options: DedupOptions, *,
                    keep_signatures: bool = False, keep_documents: bool = False) -> PrintedBatch:
    """Fingerprint a batch once: everything later stages need of it."""
    prints = fingerprint(documents, config, shingles=True, figures=True)
    article, paragraph, rows = batch_keys(prints, config)
    if not keep_signatures:  # 4 bytes per permutation and paragraph: the biggest part, not needed later
        prints = prints.without_signatures()
    dates = [date_key(d.metadata.get(options.date_field)) for d in documents] if options.keep.reads_dates else None
    dropped = repeated_paragraphs(documents, config) if options.drop_repeats else None
    lengths = np.fromiter((len(d.text) for d in documents), dtype=np.int64, count=len(documents))
    return PrintedBatch([d.id for d in documents], lengths, prints, article, paragraph, rows, dates, dropped,
                        list(documents) if keep_documents else None)


def batch_keys(prints: Fingerprints, config: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bucket keys of every document (docs, bands), and of the paragraphs that may propose
    candidates (rows, bands), with those rows."""
    bands = Bands.of(config)
    rows = np.flatnonzero(searchable(prints.paragraph_sizes, prints.paragraph_words, config))
    return (bucket_keys(prints.doc_signatures, *bands.article),
            bucket_keys(prints.paragraph_signatures[rows], *bands.paragraph), rows)


def repeated_paragraphs(batch: Sequence[Document], config: Config) -> dict[int, tuple[int, ...]]:
    """Paragraphs that repeat an earlier one of the same document (``drop_repeats``)."""
    out: dict[int, tuple[int, ...]] = {}
    for row, document in enumerate(batch):
        dropped = sorted(p for group in repeats(document, config).groups for p in group.paragraphs[1:])
        if dropped:
            out[row] = tuple(dropped)
    return out


# -- the corpus --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """The columns of a whole corpus that the stages after fingerprinting read."""

    ids: list[str]
    lengths: np.ndarray          # int64 characters of each text
    dates: list[str | None]      # parsed date keys (empty unless the policy reads them)
    doc_digests: np.ndarray      # uint64 (docs, 2): matching form and figures (text.figures.with_figures)
    doc_offsets: np.ndarray      # int64 (docs + 1) into the paragraphs
    paragraph_digests: np.ndarray  # uint64
    paragraph_words: np.ndarray    # int32
    paragraph_sizes: np.ndarray    # int32
    paragraph_figures: np.ndarray  # uint64: text.figures keys

    @cached_property
    def paragraph_owners(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.ids), dtype=np.int64), np.diff(self.doc_offsets))

    @cached_property
    def paragraph_offsets(self) -> np.ndarray:
        """Where each paragraph's shingles start in the corpus's shingle sequence."""
        return offsets(self.paragraph_sizes)


@dataclass
class CorpusBuilder:
    """The columns a local run appends batches to; :meth:`finish` gives the :class:`Corpus`."""

    ids: list[str] = field(default_factory=list)
    dates: list[str | None] = field(default_factory=list)
    _lengths: list[np.ndarray] = field(default_factory=list)
    _doc_digests: list[np.ndarray] = field(default_factory=list)
    _paragraph_counts: list[np.ndarray] = field(default_factory=list)
    _paragraph_digests: list[np.ndarray] = field(default_factory=list)
    _paragraph_words: list[np.ndarray] = field(default_factory=list)
    _paragraph_sizes: list[np.ndarray] = field(default_factory=list)
    _paragraph_figures: list[np.ndarray] = field(default_factory=list)
    documents: int = 0
    paragraphs: int = 0

    def append(self, batch: PrintedBatch) -> None:
        """A batch's documents: ids, text lengths, date keys and fingerprint stage output."""
        prints = batch.prints
        self.ids.extend(batch.ids)
        if batch.dates is not None:
            self.dates.extend(batch.dates)
        self._lengths.append(np.asarray(batch.lengths, dtype=np.int64))
        figures = prints.paragraph_figures
        assert figures is not None  # print_documents asks for them
        self._doc_digests.append(with_figures(prints.doc_digests, figures, prints.doc_offsets))
        self._paragraph_figures.append(figures)
        self._paragraph_counts.append(np.diff(prints.doc_offsets))
        self._paragraph_digests.append(prints.paragraph_digests)
        self._paragraph_words.append(prints.paragraph_words)
        self._paragraph_sizes.append(prints.paragraph_sizes)
        self.documents += len(batch)
        self.paragraphs += len(prints.paragraph_digests)

    def finish(self) -> Corpus:
        def cat(parts: list[np.ndarray], dtype: Any, shape: tuple[int, ...] = (0,)) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype=dtype)

        return Corpus(self.ids, cat(self._lengths, np.int64), self.dates, cat(self._doc_digests, np.uint64, (0, 2)),
                      offsets(cat(self._paragraph_counts, np.int64)), cat(self._paragraph_digests, np.uint64),
                      cat(self._paragraph_words, np.int32), cat(self._paragraph_sizes, np.int32),
                      cat(self._paragraph_figures, np.uint64))


def paragraph_weights(corpus: Corpus, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Every paragraph's weight, from document frequencies over the whole corpus, and those
    frequencies (how many documents hold it: what tells furniture from story, :mod:`neardup.match.scores`)."""
    frequencies = paragraph_frequencies(corpus.paragraph_digests, corpus.doc_offsets)
    return weights_of(frequencies, corpus.paragraph_words, corpus.doc_offsets, config), frequencies


def furniture_holders(holders: np.ndarray, words: np.ndarray, config: Config) -> np.ndarray:
    """The holders the furniture rule reads while clustering: the documents holding each
    paragraph, but none beyond the document itself for a paragraph shorter than
    ``furniture_words`` (never furniture)."""
    holders = np.asarray(holders, np.int64)
    return np.where(np.asarray(words) >= config.furniture_words, holders, np.minimum(holders, 1))


def kept_furniture(marks: np.ndarray, words: np.ndarray, config: Config) -> np.ndarray:
    """The holders the furniture rule reads once the clusters are known: 1 where a kept document
    holds a paragraph of ``furniture_words`` words or more (:func:`held_by_kept`), else 0."""
    return np.where(np.asarray(words) >= config.furniture_words, np.asarray(marks, np.int64), 0)


def own_words(frequencies: np.ndarray, words: np.ndarray, digests: np.ndarray, doc_offsets: np.ndarray,
              config: Config) -> np.ndarray:
    """Per document, the words of text of its own besides the story (what ``keep="cleanest"``
    keeps least of): paragraphs no other document holds (a byline, an edit, an "ALSO READ"
    line), repeats of an earlier paragraph of the same document (a page holding its body
    twice), and paragraphs held ``boilerplate_ratio`` times more widely than the document's
    typical paragraph (its outlet's footer)."""
    count = len(doc_offsets) - 1
    frequencies = np.asarray(frequencies, np.int64)
    words = np.asarray(words, np.int64)
    owner = np.repeat(np.arange(count), np.diff(doc_offsets))
    body = words >= config.min_paragraph_words
    order = np.lexsort((frequencies[body], owner[body]))
    sorted_frequencies = frequencies[body][order]
    per_doc = np.bincount(owner[body], minlength=count)
    starts = offsets(per_doc)[:-1]
    lo = np.minimum(starts + (per_doc - 1) // 2, max(len(sorted_frequencies) - 1, 0))
    hi = np.minimum(starts + per_doc // 2, max(len(sorted_frequencies) - 1, 0))
    typical = np.zeros(count)
    has_body = per_doc > 0
    typical[has_body] = (sorted_frequencies[lo[has_body]] + sorted_frequencies[hi[has_body]]) / 2
    by_digest = np.lexsort((np.arange(len(digests)), np.asarray(digests, np.uint64), owner))
    repeat = np.zeros(len(digests), dtype=bool)
    same = (owner[by_digest][1:] == owner[by_digest][:-1]) & (digests[by_digest][1:] == digests[by_digest][:-1])
    repeat[by_digest[1:][same]] = True
    own = (frequencies <= 1) | repeat | (frequencies > config.boilerplate_ratio * typical[owner])
    return np.bincount(owner, weights=(words * own).astype(np.float64), minlength=count).astype(np.int64)


def searchable_paragraphs(corpus: Corpus, weights: np.ndarray, config: Config) -> np.ndarray:
    """The corpus's paragraphs whose band keys propose candidates (:func:`~neardup.match.candidates.searchable`)."""
    return searchable(corpus.paragraph_sizes, corpus.paragraph_words, config, weights)


# -- exact classes and ranks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExactClasses:
    """Documents with the same matching form: ``of_doc[d]`` is d's class, ``leader[c]`` the
    class's first document (whose shingles stand for the class)."""

    of_doc: np.ndarray
    leader: np.ndarray

    @property
    def count(self) -> int:
        return len(self.leader)


def exact_classes(corpus: Corpus) -> ExactClasses:
    """Group documents by their 128-bit digest of the matching form."""
    n = len(corpus.ids)
    if n == 0:
        return ExactClasses(np.zeros(0, np.int64), np.zeros(0, np.int64))
    digests = corpus.doc_digests
    order = np.lexsort((np.arange(n), digests[:, 1], digests[:, 0]))
    new = run_starts(digests[order])
    group = np.cumsum(new) - 1
    first_doc = order[new]                      # each group's smallest row (rows sorted within a group)
    by_position = np.argsort(first_doc)         # classes numbered in order of their first document
    number = np.empty(len(first_doc), dtype=np.int64)
    number[by_position] = np.arange(len(first_doc))
    of_doc = np.empty(n, dtype=np.int64)
    of_doc[order] = number[group]
    return ExactClasses(of_doc, first_doc[by_position].astype(np.int64))


def class_ranks(classes: ExactClasses, rank: np.ndarray) -> np.ndarray:
    """Each class ranked by its best member, as distinct ranks 0..classes-1."""
    best = np.full(classes.count, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, classes.of_doc, rank)
    dense = np.empty(classes.count, dtype=np.int64)
    dense[np.argsort(best, kind="stable")] = np.arange(classes.count)
    return dense


def best_members(classes: ExactClasses, rank: np.ndarray) -> np.ndarray:
    """The best-ranked document of each class (the one kept when its class is kept)."""
    order = np.lexsort((rank, classes.of_doc))
    return np.asarray(order[run_starts(classes.of_doc[order])])


# -- candidates and scores ---------------------------------------------------------------------------------


def group_partition(values: np.ndarray, item_class: np.ndarray, keep_item: np.ndarray | None,
                    class_rank: np.ndarray, config: Config) -> tuple[np.ndarray, BucketStats]:
    """Candidate class pairs of one partition of band records."""
    return _group_partition(values, item_class, keep_item, class_rank, config.bucket_cap, config.bucket_pivots)


def pair_chunks(count: int, size: int = PAIR_CHUNK) -> list[slice]:
    """Consecutive slices of ``count`` pairs, ``size`` at a time (a task each)."""
    return [slice(lo, min(lo + size, count)) for lo in range(0, count, size)]


class ShingleSource(Protocol):
    """Where a run keeps the corpus's shingle sequence (in memory or spilled)."""

    def gather(self, index: np.ndarray) -> np.ndarray: ...


def gather_columns(corpus: Corpus, shingles: ShingleSource, weights: np.ndarray,
                   docs: np.ndarray, holders: np.ndarray | None = None) -> ShingleColumns:
    """The shingle columns of some documents of the corpus, gathered from where they are kept."""
    para_lo, para_hi = corpus.doc_offsets[docs], corpus.doc_offsets[docs + 1]
    paragraphs = ranges(para_lo, para_hi)
    lo, hi = corpus.paragraph_offsets[paragraphs], corpus.paragraph_offsets[paragraphs + 1]
    return ShingleColumns(
        shingles=shingles.gather(ranges(lo, hi)),
        paragraph_offsets=offsets(hi - lo),
        paragraph_words=corpus.paragraph_words[paragraphs].astype(np.int64),
        paragraph_weights=np.asarray(weights, dtype=np.float64)[paragraphs],
        doc_offsets=offsets(para_hi - para_lo),
        paragraph_holders=None if holders is None else np.asarray(holders, np.int64)[paragraphs],
        paragraph_figures=corpus.paragraph_figures[paragraphs],
    )


def score_class_pairs(corpus: Corpus, shingles: ShingleSource, classes: ExactClasses, weights: np.ndarray,
                      a: np.ndarray, b: np.ndarray, config: Config,
                      holders: np.ndarray | None = None, relative: bool = True) -> PairScores:
    """Exact scores of class pairs (a[i], b[i]), measured on their leaders' shingles, with the
    documents holding each paragraph (``holders`` and ``relative``, :func:`~neardup.match.scores.score_pairs`)."""
    if len(a) == 0:
        return empty_scores()
    docs_a, docs_b = classes.leader[a], classes.leader[b]
    docs = sorted_unique(np.concatenate([docs_a, docs_b]))
    columns = gather_columns(corpus, shingles, weights, docs, holders)
    local_a, local_b = np.searchsorted(docs, docs_a), np.searchsorted(docs, docs_b)
    scores = score_pairs(columns, local_a, local_b, config.shingle_size, np.asarray(a) == np.asarray(b),
                         config.story_words, relative, config.furniture_words)
    return PairScores(np.asarray(a, np.int64), np.asarray(b, np.int64), *(getattr(scores, name)
                      for name in list(PairScores.__dataclass_fields__)[2:]))


def known_pairs(scores: PairScores, config: Config, partial: bool = True) -> KnownPairs:
    """Which side of each scored pair holds the other (:func:`~neardup.match.scores.holds`)."""
    return KnownPairs.build(scores, holds(scores, config, partial=partial),
                            holds(scores.flipped(), config, partial=partial), config.fuller_margin)


def merge_known(parts: Sequence[KnownPairs], config: Config) -> KnownPairs:
    """One table of the pairs scored in several tasks."""
    if not parts:
        return KnownPairs.build(empty_scores(), np.zeros(0, bool), np.zeros(0, bool), config.fuller_margin)
    scores = PairScores.concatenate([p.scores for p in parts])
    return KnownPairs.build(scores, np.concatenate([p.right_holds_left for p in parts]),
                            np.concatenate([p.left_holds_right for p in parts]), config.fuller_margin)


# -- nothing lost, over the kept corpus ----------------------------------------------------------------------


def unheld_paragraphs(corpus: Corpus, classes: ExactClasses, held: np.ndarray, failing: np.ndarray,
                      config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The paragraphs of ``failing`` classes (their leaders') that no kept document holds (``held``:
    :func:`held_by_kept`), lines shorter than ``min_paragraph_words`` left out: (class, digest) of each."""
    docs = classes.leader[failing]
    lo, hi = corpus.doc_offsets[docs], corpus.doc_offsets[docs + 1]
    owner, paragraphs = np.repeat(np.asarray(failing, np.int64), hi - lo), ranges(lo, hi)
    unheld = (held[paragraphs] == 0) & (corpus.paragraph_words[paragraphs] >= config.min_paragraph_words)
    return owner[unheld], corpus.paragraph_digests[paragraphs][unheld]


def held_by_kept(corpus: Corpus, classes: ExactClasses, representative: np.ndarray) -> np.ndarray:
    """Per paragraph of the corpus: 1 when a kept document (the leader of a class that
    represents itself) holds a paragraph of the same matching form, else 0 — the furniture a
    removal may leave to others, now that the kept documents are known (scored with
    ``relative=False``, through :func:`kept_furniture`)."""
    kept_docs = classes.leader[representative == np.arange(len(representative))]
    owners = np.repeat(np.arange(len(corpus.ids)), np.diff(corpus.doc_offsets))
    is_kept = np.zeros(len(corpus.ids), dtype=bool)
    is_kept[kept_docs] = True
    kept_digests = sorted_unique(corpus.paragraph_digests[is_kept[owners]])
    return np.isin(corpus.paragraph_digests, kept_digests).astype(np.int64)


def kept_for_loss(scores: PairScores, config: Config, partial: bool) -> np.ndarray:
    """Of removals (left) scored against their representatives (right) with the furniture that
    kept documents really hold: those that no longer pass the hold rule — text of theirs that
    no kept document holds. Keeping a document only adds kept text, so removals that pass stay
    sound; :func:`first_to_keep` says which of those that fail to keep first."""
    return np.asarray(scores.left[~holds(scores, config, partial=partial)], dtype=np.int64)


def first_to_keep(failing: np.ndarray, owner: np.ndarray, digests: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Of removals that would lose text (classes ``failing``), those to keep now: for every
    paragraph that several of them hold and no kept document does (``owner[i]`` holds
    ``digests[i]``; an outlet's footer seen only on removed pages), the best-ranked holder alone —
    once it is kept, the others may hold on to it — and every one that holds no such paragraph
    (it loses text of its own). The others are checked again."""
    owner, digests = np.asarray(owner, np.int64), np.asarray(digests, np.uint64)
    order = np.lexsort((rank[owner], digests))  # each paragraph's holders, best-ranked first
    owner, digests = owner[order], digests[order]
    distinct = np.ones(len(owner), dtype=bool)
    distinct[1:] = (owner[1:] != owner[:-1]) | (digests[1:] != digests[:-1])
    owner, digests = owner[distinct], digests[distinct]
    starts = np.flatnonzero(run_starts(digests))
    counts = np.diff(np.append(starts, len(digests)))
    best = owner[starts[counts >= 2]]
    with_shared = np.unique(owner[np.repeat(counts >= 2, counts)])
    alone = np.setdiff1d(np.asarray(failing, np.int64), with_shared)
    return np.union1d(best, alone)


def undo_removals(clusters: Clusters, keep: np.ndarray) -> Clusters:
    """Clusters with the nodes ``keep`` representing themselves."""
    representative = clusters.representative.copy()
    representative[keep] = keep
    return Clusters(representative, clusters.known, clusters.verified_late, clusters.kept_unresolved,
                    clusters.kept_for_loss + len(keep))


# -- assignments ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relations:
    """How some nodes relate to the representatives they were placed under: the kind of the pair
    and its scores, seen from the node (the CLUSTERS columns)."""

    kind: np.ndarray
    jaccard: np.ndarray
    doc_in_representative: np.ndarray
    representative_in_doc: np.ndarray
    coverage: np.ndarray


def relations(known: KnownPairs, nodes: np.ndarray, representatives: np.ndarray, config: Config) -> Relations:
    """The relation of each node to its representative, from the pair the two were verified on."""
    row = known.find(nodes, representatives)
    if (row < 0).any():
        raise AssertionError("a document was assigned to a representative it was not verified against")
    oriented = known.scores.select(row).oriented(nodes > representatives)  # stored low → high
    return Relations(np.maximum(kinds(oriented, config), PARTIAL), oriented.jaccard, oriented.left_in_right,
                     oriented.right_in_left, oriented.left_coverage)


@dataclass(frozen=True)
class Assignments:
    """Each document's representative (row) and its relation to it; kind -1 for representatives."""

    representative: np.ndarray
    kind: np.ndarray
    jaccard: np.ndarray
    doc_in_representative: np.ndarray
    representative_in_doc: np.ndarray
    coverage: np.ndarray
    held_elsewhere: np.ndarray  # int64: paragraphs kept documents hold and the representative lacks; -1 if kept
    held_by: np.ndarray         # int64 (docs, HOLDERS): rows of those kept documents, -1 padded
    differs_from: np.ndarray    # int64: for a kept document of kind figures-differ, the row named; else -1


def assignments(corpus: Corpus, classes: ExactClasses, rank: np.ndarray, clusters: Clusters,
                config: Config, partners: FigurePartners | None = None) -> Assignments:
    """Each document's representative (the best member of its cluster's representative class)
    and its relation to it, from the pair the two classes were verified on; a kept document with
    a figure partner (:mod:`neardup.pipeline.figures`) names it, with their scores."""
    n = len(corpus.ids)
    own_class = classes.of_doc
    rep_class = clusters.representative[own_class] if n else np.zeros(0, np.int64)
    best = best_members(classes, rank) if n else np.zeros(0, np.int64)
    representative = best[rep_class] if n else np.zeros(0, np.int64)
    kind = np.full(n, -1, dtype=np.int8)
    values = {name: np.full(n, np.nan) for name in ("jaccard", "inside", "outside", "coverage")}
    same_class = (own_class == rep_class) & (representative != np.arange(n))
    kind[same_class] = 3  # exact
    for name in values:
        values[name][same_class] = 1.0
    other = np.flatnonzero(own_class != rep_class)
    if len(other):
        found = relations(clusters.known, own_class[other], rep_class[other], config)
        kind[other] = found.kind
        values["jaccard"][other] = found.jaccard
        values["inside"][other] = found.doc_in_representative
        values["outside"][other] = found.representative_in_doc
        values["coverage"][other] = found.coverage
    count, held_by = _held_elsewhere(corpus, classes, rank, best, clusters.representative)
    kept = representative == np.arange(n)
    count[kept] = -1
    differs = np.full(n, -1, dtype=np.int64)
    if partners is not None and len(partners.held):
        at = np.minimum(np.searchsorted(partners.held, own_class), len(partners.held) - 1)
        rows = np.flatnonzero(kept & (partners.held[at] == own_class))
        differs[rows] = best[partners.partner[at[rows]]]
        kind[rows] = FIGURES_DIFFER
        for name, column in (("jaccard", partners.jaccard), ("inside", partners.inside),
                             ("outside", partners.outside), ("coverage", partners.coverage)):
            values[name][rows] = column[at[rows]]
    return Assignments(representative.astype(np.int64), kind, values["jaccard"], values["inside"],
                       values["outside"], values["coverage"], count, held_by, differs)


def _held_elsewhere(corpus: Corpus, classes: ExactClasses, rank: np.ndarray, best: np.ndarray,
                    representative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per document, :func:`~neardup.pipeline.elsewhere.held_elsewhere` of its class (none for a
    document in its representative's class) and the kept documents it names, as rows."""
    n = len(corpus.ids)
    owner = np.repeat(np.arange(n), np.diff(corpus.doc_offsets))
    leads = classes.leader[classes.of_doc[owner]] == owner
    found = held_elsewhere(classes.of_doc[owner[leads]], corpus.paragraph_digests[leads], representative,
                           class_ranks(classes, rank))
    own = classes.of_doc
    count = np.where(representative[own] == own, 0, found.count[own])
    holders = found.holders[own]
    return count.astype(np.int64), np.where(holders >= 0, best[np.maximum(holders, 0)], -1)
