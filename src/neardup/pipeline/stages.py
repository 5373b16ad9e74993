"""The stages of dedup, as pure functions over columnar batches.

Each function takes arrays (or a batch of documents) and returns arrays, with no global state,
so the local executor (:mod:`neardup.dedup`) and a distributed engine compute the same thing:

=====================  ==========================================================  ==============
stage                  in → out                                                    shuffle
=====================  ==========================================================  ==============
``print_batch``        documents → fingerprints, shingles, band keys               none
``paragraph_weights``  paragraph digests of the corpus → document frequencies →    by digest
                       weights (:mod:`neardup.boilerplate`)
``exact_classes``      document digests → one class per matching form              by digest
``policy_ranks``       lengths, dates, ids → the keep policy as distinct ranks     global sort
``group_partition``    band records of one partition → candidate pairs             by band key
``verify_class_pairs`` candidate pairs + both documents' shingles → exact scores   join on doc
``known_pairs``        scores → which side holds the other                         none
``cluster``            holding pairs → representatives (:mod:`neardup.clustering`)  components
``assignments``        representatives → each document's row of CLUSTERS           none
=====================  ==========================================================  ==============
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from neardup.arrays import ranges, run_starts, sorted_unique
from neardup.config import Config
from neardup.document import Document
from neardup.index.storage import lsh_params
from neardup.match.boilerplate import paragraph_frequencies
from neardup.match.boilerplate import paragraph_weights as weights_of
from neardup.match.candidates import BucketStats, band_keys
from neardup.match.candidates import group_partition as _group_partition
from neardup.match.scores import PARTIAL, PairScores, ShingleColumns, empty_scores, holds, kinds, verify_pairs
from neardup.pipeline.clustering import Clusters, KnownPairs
from neardup.sketch.fingerprint import Fingerprints, fingerprint

#: Paragraphs weighing less than this (boilerplate) propose no candidates.
SEARCHABLE_WEIGHT = 0.5
#: Candidate pairs verified per task.
PAIR_CHUNK = 1 << 14


def band_params(config: Config) -> tuple[tuple[int, int], tuple[int, int]]:
    """((article bands, rows), (paragraph bands, rows))."""
    paragraph, article = lsh_params(config)
    return article, paragraph


@dataclass
class PrintedBatch:
    """What the fingerprint stage keeps of a batch: fingerprints (with shingles; signatures
    only when an index wants them), article band keys (docs, bands), and the band keys of the
    paragraphs that may propose candidates (``paragraph_rows``, batch-local)."""

    prints: Fingerprints
    article_keys: np.ndarray
    paragraph_keys: np.ndarray
    paragraph_rows: np.ndarray
    dropped: dict[int, tuple[int, ...]] | None = None


def print_batch(batch: Sequence[Document], config: Config, bands: tuple[tuple[int, int], tuple[int, int]],
                *, keep_signatures: bool = False) -> PrintedBatch:
    """Fingerprint a batch once: everything later stages need of it."""
    prints = fingerprint(batch, config, shingles=True)
    return printed_from(prints, config, bands, keep_signatures=keep_signatures)


def printed_from(prints: Fingerprints, config: Config, bands: tuple[tuple[int, int], tuple[int, int]], *,
                 keep_signatures: bool = False) -> PrintedBatch:
    (ab, ar), (pb, pr) = bands
    rows = np.flatnonzero((prints.paragraph_sizes > 0) & (prints.paragraph_words >= config.min_paragraph_words))
    article = band_keys(prints.doc_signatures, ab, ar)
    paragraph = band_keys(prints.paragraph_signatures[rows], pb, pr)
    if not keep_signatures:  # 4 bytes per permutation and paragraph: the biggest part, not needed later
        prints = Fingerprints(prints.doc_offsets, prints.paragraph_spans, prints.paragraph_words,
                              prints.paragraph_sizes, prints.paragraph_digests, np.zeros((0, 0), np.uint32),
                              prints.doc_sizes, prints.doc_digests, np.zeros((0, 0), np.uint32), prints.shingles)
    return PrintedBatch(prints, article, paragraph, rows)


def select_printed(printed: PrintedBatch, rows: Sequence[int]) -> PrintedBatch:
    """The stage output of some documents of a batch (``rows`` ascending)."""
    prints = printed.prints
    counts = np.diff(prints.doc_offsets)
    kept_doc = np.zeros(len(counts), dtype=bool)
    kept_doc[np.asarray(rows, dtype=np.int64)] = True
    kept_counts = np.where(kept_doc, counts, 0)
    new_start = np.cumsum(kept_counts) - kept_counts     # first new paragraph number of each kept document
    owners = prints.paragraph_owners
    kept = kept_doc[owners[printed.paragraph_rows]]
    old = printed.paragraph_rows[kept]
    new = new_start[owners[old]] + (old - prints.doc_offsets[owners[old]])
    position = np.cumsum(kept_doc) - 1
    dropped = None if printed.dropped is None else \
        {int(position[r]): p for r, p in printed.dropped.items() if kept_doc[r]}
    return PrintedBatch(prints.select(np.flatnonzero(kept_doc)), printed.article_keys[kept_doc],
                        printed.paragraph_keys[kept], new.astype(np.int64), dropped)


def repeated_paragraphs(batch: Sequence[Document], config: Config) -> dict[int, tuple[int, ...]]:
    """Paragraphs that repeat an earlier one of the same document (``--drop-repeats``)."""
    from neardup.match.repetition import repeats

    out: dict[int, tuple[int, ...]] = {}
    for row, document in enumerate(batch):
        dropped = sorted(p for group in repeats(document, config).groups for p in group.paragraphs[1:])
        if dropped:
            out[row] = tuple(dropped)
    return out


@dataclass(frozen=True)
class Corpus:
    """The columns of a whole corpus that the stages after fingerprinting read."""

    ids: list[str]
    lengths: np.ndarray          # int64 characters of each text
    dates: list[str | None]      # parsed date keys (empty unless the policy reads them)
    doc_digests: np.ndarray      # uint64 (docs, 2)
    doc_offsets: np.ndarray      # int64 (docs + 1) into the paragraphs
    paragraph_digests: np.ndarray  # uint64
    paragraph_words: np.ndarray    # int32
    paragraph_sizes: np.ndarray    # int32

    @cached_property
    def paragraph_owners(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.ids), dtype=np.int64), np.diff(self.doc_offsets))

    @cached_property
    def shingle_offsets(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.paragraph_sizes, dtype=np.int64))).astype(np.int64)


@dataclass
class CorpusColumns:
    """The accumulator the local executor appends batches to; :meth:`finish` gives a Corpus."""

    ids: list[str] = field(default_factory=list)
    dates: list[str | None] = field(default_factory=list)
    _lengths: list[np.ndarray] = field(default_factory=list)
    _doc_digests: list[np.ndarray] = field(default_factory=list)
    _paragraph_counts: list[np.ndarray] = field(default_factory=list)
    _paragraph_digests: list[np.ndarray] = field(default_factory=list)
    _paragraph_words: list[np.ndarray] = field(default_factory=list)
    _paragraph_sizes: list[np.ndarray] = field(default_factory=list)
    documents: int = 0
    paragraphs: int = 0

    def append(self, ids: Sequence[str], lengths: np.ndarray, dates: Sequence[str | None] | None,
               printed: PrintedBatch) -> None:
        """A batch's documents: their ids, text lengths, date keys (only when the policy reads
        them) and fingerprint stage output."""
        prints = printed.prints
        self.ids.extend(ids)
        if dates is not None:
            self.dates.extend(dates)
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self._doc_digests.append(prints.doc_digests)
        self._paragraph_counts.append(np.diff(prints.doc_offsets))
        self._paragraph_digests.append(prints.paragraph_digests)
        self._paragraph_words.append(prints.paragraph_words)
        self._paragraph_sizes.append(prints.paragraph_sizes)
        self.documents += len(ids)
        self.paragraphs += len(prints.paragraph_digests)

    def finish(self) -> Corpus:
        def cat(parts: list[np.ndarray], dtype: Any, shape: tuple[int, ...] = (0,)) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype=dtype)

        counts = cat(self._paragraph_counts, np.int64)
        return Corpus(self.ids, cat(self._lengths, np.int64), self.dates, cat(self._doc_digests, np.uint64, (0, 2)),
                      np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
                      cat(self._paragraph_digests, np.uint64), cat(self._paragraph_words, np.int32),
                      cat(self._paragraph_sizes, np.int32))


def paragraph_weights(corpus: Corpus, config: Config) -> np.ndarray:
    """Every paragraph's weight, from document frequencies over the whole corpus."""
    frequencies = paragraph_frequencies(corpus.paragraph_digests, corpus.doc_offsets)
    return weights_of(frequencies, corpus.paragraph_words, corpus.doc_offsets, config)


def searchable_paragraphs(weights: np.ndarray) -> np.ndarray:
    """Paragraphs whose band keys propose candidates (not short lines, not boilerplate)."""
    return np.asarray(weights) >= SEARCHABLE_WEIGHT


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
    sorted_digests = digests[order]
    new = run_starts(sorted_digests)
    group = np.cumsum(new) - 1
    first_doc = order[new]                      # each group's smallest row (rows sorted within a group)
    by_position = np.argsort(first_doc)         # classes numbered in order of their first document
    number = np.empty(len(first_doc), dtype=np.int64)
    number[by_position] = np.arange(len(first_doc))
    of_doc = np.empty(n, dtype=np.int64)
    of_doc[order] = number[group]
    return ExactClasses(of_doc, first_doc[by_position].astype(np.int64))


def policy_ranks(corpus: Corpus, keep: str) -> np.ndarray:
    """Distinct ranks (0 = kept first) of the documents under the keep policy; ties by id."""
    n = len(corpus.ids)
    if keep == "first":
        return np.arange(n, dtype=np.int64)
    by_id = np.empty(n, dtype=np.int64)
    by_id[sorted(range(n), key=corpus.ids.__getitem__)] = np.arange(n)
    if keep == "longest":
        order = np.lexsort((by_id, -corpus.lengths))
    else:
        dates = corpus.dates
        missing = np.fromiter((d is None for d in dates), dtype=bool, count=n)
        by_date = np.unique(np.array([d or "" for d in dates], dtype=str), return_inverse=True)[1].reshape(-1)
        order = np.lexsort((by_id, by_date, missing))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


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


def group_partition(values: np.ndarray, item_class: np.ndarray, keep_item: np.ndarray | None,
                    class_rank: np.ndarray, config: Config) -> tuple[np.ndarray, BucketStats]:
    """Candidate class pairs of one partition of band records."""
    return _group_partition(values, item_class, keep_item, class_rank, config.bucket_cap, config.bucket_pivots)


def pair_chunks(count: int, size: int = PAIR_CHUNK) -> list[slice]:
    return [slice(lo, min(lo + size, count)) for lo in range(0, count, size)]


class ShingleSource(Protocol):
    def gather(self, index: np.ndarray) -> np.ndarray: ...


def shingle_columns(corpus: Corpus, shingles: ShingleSource, weights: np.ndarray,
                    docs: np.ndarray) -> ShingleColumns:
    """The shingle columns of some documents of the corpus, gathered from where they are kept."""
    para_lo, para_hi = corpus.doc_offsets[docs], corpus.doc_offsets[docs + 1]
    paragraphs = ranges(para_lo, para_hi)
    offsets = corpus.shingle_offsets
    lo, hi = offsets[paragraphs], offsets[paragraphs + 1]
    return ShingleColumns(
        hashes=shingles.gather(ranges(lo, hi)),
        para_offsets=np.concatenate(([0], np.cumsum(hi - lo))).astype(np.int64),
        para_words=corpus.paragraph_words[paragraphs].astype(np.int64),
        para_weights=np.asarray(weights, dtype=np.float64)[paragraphs],
        doc_offsets=np.concatenate(([0], np.cumsum(para_hi - para_lo))).astype(np.int64),
    )


def verify_class_pairs(corpus: Corpus, shingles: ShingleSource, classes: ExactClasses, weights: np.ndarray,
                       a: np.ndarray, b: np.ndarray, config: Config) -> PairScores:
    """Exact scores of class pairs (a[i], b[i]), measured on their leaders' shingles."""
    if len(a) == 0:
        return empty_scores()
    docs_a, docs_b = classes.leader[a], classes.leader[b]
    docs = sorted_unique(np.concatenate([docs_a, docs_b]))
    columns = shingle_columns(corpus, shingles, weights, docs)
    local_a, local_b = np.searchsorted(docs, docs_a), np.searchsorted(docs, docs_b)
    scores = verify_pairs(columns, local_a, local_b, config.shingle_size, np.asarray(a) == np.asarray(b))
    return PairScores(np.asarray(a, np.int64), np.asarray(b, np.int64), *(getattr(scores, name)
                      for name in list(PairScores.__dataclass_fields__)[2:]))


def known_pairs(scores: PairScores, config: Config, include_partial: bool = True) -> KnownPairs:
    """Which side of each verified pair holds the other."""
    if include_partial:
        held_left, held_right = holds(scores, config), holds(scores.flipped(), config)
    else:
        whole = scores.same_text | (scores.jaccard >= config.threshold)
        held_left = held_right = whole
    return KnownPairs.build(scores, held_left, held_right, config.fuller_margin)


def merge_known(parts: Sequence[KnownPairs], config: Config) -> KnownPairs:
    if not parts:
        return KnownPairs.build(empty_scores(), np.zeros(0, bool), np.zeros(0, bool), config.fuller_margin)
    scores = PairScores.concatenate([p.scores for p in parts])
    return KnownPairs.build(scores, np.concatenate([p.right_holds_left for p in parts]),
                            np.concatenate([p.left_holds_right for p in parts]), config.fuller_margin)


@dataclass(frozen=True)
class AssignmentColumns:
    representative: np.ndarray
    kind: np.ndarray
    jaccard: np.ndarray
    doc_in_representative: np.ndarray
    representative_in_doc: np.ndarray
    coverage: np.ndarray


def assignments(corpus: Corpus, classes: ExactClasses, rank: np.ndarray, clusters: Clusters,
                config: Config) -> AssignmentColumns:
    """Each document's representative (the best member of its cluster's representative class)
    and its relation to it, from the pair the two classes were verified on."""
    n = len(corpus.ids)
    best = best_members(classes, rank)
    own_class = classes.of_doc
    rep_class = clusters.representative[own_class] if n else np.zeros(0, np.int64)
    representative = best[rep_class] if n else np.zeros(0, np.int64)
    kind = np.full(n, -1, dtype=np.int8)
    values = {name: np.full(n, np.nan) for name in ("jaccard", "inside", "outside", "coverage")}
    same_class = (own_class == rep_class) & (representative != np.arange(n))
    kind[same_class] = 3  # exact
    for name in ("jaccard", "inside", "outside", "coverage"):
        values[name][same_class] = 1.0
    other = np.flatnonzero(own_class != rep_class)
    if len(other):
        row = clusters.known.find(own_class[other], rep_class[other])
        if (row < 0).any():
            raise AssertionError("a document was assigned to a representative it was not verified against")
        scores = clusters.known.scores.select(row)
        flip = own_class[other] > rep_class[other]   # stored low → high; orient as document → representative
        oriented = _oriented(scores, flip)
        kind[other] = np.maximum(kinds(oriented, config), PARTIAL)
        values["jaccard"][other] = oriented.jaccard
        values["inside"][other] = oriented.left_in_right
        values["outside"][other] = oriented.right_in_left
        values["coverage"][other] = oriented.left_coverage
    return AssignmentColumns(representative.astype(np.int64), kind, values["jaccard"], values["inside"],
                             values["outside"], values["coverage"])


def _oriented(scores: PairScores, flip: np.ndarray) -> PairScores:
    flipped = scores.flipped()
    return PairScores(*(np.where(flip, getattr(flipped, name), getattr(scores, name))
                        for name in PairScores.__dataclass_fields__))
