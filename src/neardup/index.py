"""The index: add documents, then ask where else a story appears, whole or in part.

Candidates come from two LSH tables, one over article signatures and one over
paragraph signatures, so a copy is found whether it is whole, cut short,
embedded in a longer page, or only reuses some paragraphs. Every candidate is
then verified: full-signature Jaccard, containment both ways from the
paragraph signatures, and the exact Jaccard of the shingle sets where the text
is at hand. Nothing below the thresholds asked for is returned.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Literal, Sequence, TypeVar

import numpy as np

from .config import Config
from .document import Document, as_document
from .errors import ConfigError
from .evidence import KIND_ORDER, Match, Side, boilerplate_weights, compare, decide_kind
from .fingerprint import Fingerprints, fingerprint, fingerprint_stream, fingerprint_with_sets
from .signatures import estimate_jaccard, from_lean_minhash, to_lean_minhash
from .storage import LruCache, MemoryStorage, ParagraphArrays, Storage, StoredDocument

log = logging.getLogger(__name__)

T = TypeVar("T")
OnDuplicate = Literal["skip", "replace", "error"]
#: Skipped ids listed in an AddReport (re-running a large ingest skips every document).
_SKIPPED_IDS_KEPT = 1000
#: Shingle sets of indexed documents kept for exact Jaccard (a few MB).
_SHINGLE_CACHE = 4096
#: Share of ``min_containment`` the unweighted estimate must reach for a candidate to be verified.
_PREFILTER = 0.5
DocumentLike = Document | str | Sequence[str]


@dataclass
class AddReport:
    """What :meth:`Index.add` did: counts, and why documents were skipped (the first
    ``_SKIPPED_IDS_KEPT`` skipped ids are listed; the counts cover all)."""

    added: int = 0
    replaced: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_ids: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, id: str, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.skipped_ids) < _SKIPPED_IDS_KEPT:
            self.skipped_ids.append((id, reason))

    def merge(self, other: "AddReport") -> None:
        self.added += other.added
        self.replaced += other.replaced
        self.skipped.update(other.skipped)
        self.skipped_ids.extend(other.skipped_ids[: max(0, _SKIPPED_IDS_KEPT - len(self.skipped_ids))])


class Index:
    """Documents fingerprinted at paragraph and article level, searchable by LSH."""

    def __init__(self, config: Config | None = None, *, storage: Storage | None = None) -> None:
        self.config = config or (storage.config if storage is not None else Config())
        self.storage: Storage = storage if storage is not None else MemoryStorage(self.config)
        self.config.check_compatible(self.storage.config)
        self._shingle_cache: LruCache[int, np.ndarray] = LruCache(_SHINGLE_CACHE)

    @classmethod
    def open(cls, path: str, config: Config | None = None, *, writable: bool = False, keep_text: bool = True,
             wait: float = 0.0) -> "Index":
        """Open (``writable=True``: create or extend) a persistent index folder.

        ``config`` must agree with the stored one on fingerprint and LSH parameters;
        its decision thresholds (``threshold``, ``min_containment``, …) may differ.
        ``keep_text`` applies when the index is created. A second writer waits
        ``wait`` seconds for the first, then raises :class:`~neardup.errors.IndexLockedError`.
        """
        from .diskstore import DiskStorage

        storage = DiskStorage(path, config, writable=writable, keep_text=keep_text, wait=wait)
        return cls(storage.config, storage=storage)

    def close(self) -> None:
        """Release files and the write lock of a persistent index."""
        close = getattr(self.storage, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.storage)

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and self.storage.number_of(id) is not None

    def add(self, documents: Iterable[Document], *, batch_size: int = 2000, on_duplicate: OnDuplicate = "skip",
            workers: int = 1, on_batch: Callable[[AddReport], None] | None = None) -> AddReport:
        """Fingerprint and insert documents, a batch at a time.

        A document whose id is already indexed (or repeated in the input) is
        skipped by default — so re-running an interrupted ingest resumes it;
        ``on_duplicate="replace"`` replaces the stored one and ``"error"`` raises.
        Documents without a single word are skipped as ``"no words"``. With
        ``workers > 1`` batches are fingerprinted in that many processes, with at
        most two batches per worker in flight, so memory stays bounded.
        """
        report = AddReport()
        for batch, prints in fingerprint_stream(batched(documents, batch_size), self.config, workers):
            batch_report = self._add_batch(batch, on_duplicate, prints)
            report.merge(batch_report)
            if on_batch is not None:
                on_batch(batch_report)
        return report

    def _add_batch(self, batch: list[Document], on_duplicate: OnDuplicate,
                   prints: Fingerprints | None = None) -> AddReport:
        report, rows, seen = AddReport(), [], set()
        indexed = self.storage.present([document.id for document in batch])
        for row, document in enumerate(batch):
            if document.id in seen or document.id in indexed:
                if on_duplicate == "error":
                    raise ConfigError(f"duplicate id {document.id!r}")
                if on_duplicate == "skip" or document.id in seen:
                    report.skip(document.id, "duplicate id")
                    continue
                self.storage.remove(self.storage.number_of(document.id))  # type: ignore[arg-type]
                report.replaced += 1
            seen.add(document.id)
            rows.append(row)
        accepted = [batch[row] for row in rows]
        prints = _select(prints, rows) if prints is not None else fingerprint(accepted, self.config)
        keep = [row for row in range(len(accepted)) if prints.doc_sizes[row] > 0]
        for row in sorted(set(range(len(accepted))) - set(keep)):
            report.skip(accepted[row].id, "no words")
        if keep:
            self.storage.add([accepted[row] for row in keep], _select(prints, keep))
        report.added = len(keep) - report.replaced
        return report

    def remove(self, id: str) -> bool:
        """Remove a document; False if it was not there."""
        number = self.storage.number_of(id)
        if number is None:
            return False
        self.storage.remove(number)
        return True

    def get(self, id: str) -> StoredDocument:
        number = self.storage.number_of(id)
        if number is None:
            raise KeyError(id)
        return self.storage.document(number)

    def signature(self, id: str) -> "object":
        """The article signature of ``id`` as a ``datasketch.LeanMinHash``."""
        number = self.storage.number_of(id)
        if number is None:
            raise KeyError(id)
        return to_lean_minhash(self.storage.article_signature(number), self.config.seed)

    def query(self, document: DocumentLike, *, threshold: float | None = None,
              min_containment: float | None = None, top: int | None = None) -> list[Match]:
        """The indexed documents holding the text of ``document``, best first."""
        return self.query_many([as_document(document)], threshold=threshold,
                               min_containment=min_containment, top=top)[0]

    def query_many(self, documents: Sequence[Document], *, threshold: float | None = None,
                   min_containment: float | None = None, top: int | None = None,
                   candidate_filter: Callable[[int, int], bool] | None = None) -> list[list[Match]]:
        """Run many queries as one batch: one fingerprint pass, one LSH look-up per table.

        ``candidate_filter(row, number)`` may skip candidates before verification
        (dedup verifies each pair once, from the document with the smaller number).
        """
        config = self.config.with_options(threshold=threshold, min_containment=min_containment)
        prints, sets = fingerprint_with_sets(documents, config)
        frequencies = self.storage.paragraph_frequencies(prints.paragraph_digests)  # one look-up per batch
        sides = [self._side_of(prints, row, config, frequencies[prints.paragraph_rows(row)])
                 for row in range(len(documents))]
        candidates = self._candidates(prints, np.concatenate([side.paragraph_weights for side in sides]
                                                             ) if sides else np.zeros(0))
        results = []
        for row, document in enumerate(documents):
            query = _Query(document, sides[row], sets[row])
            numbers = sorted(candidates.get(row, ()))
            if candidate_filter is not None:
                numbers = [n for n in numbers if candidate_filter(row, n)]
            numbers = self._worth_verifying(prints, row, numbers, config)
            matches = [m for number in numbers if (m := self._verify(query, number, config)) is not None]
            matches.sort(key=lambda m: (KIND_ORDER[m.kind], -m.score, m.id))
            results.append(matches[:top] if top else matches)
        return results

    def similar_to_signature(self, sketch: object) -> list[str]:
        """Ids whose article signature shares an LSH band with a datasketch MinHash."""
        values = from_lean_minhash(sketch, self.config.num_perm, self.config.seed)
        _, numbers = self.storage.article_candidates(values[None, :])
        return [self.storage.document(int(n)).id for n in numbers]

    def _candidates(self, prints: Fingerprints, weights: np.ndarray) -> dict[int, set[int]]:
        """Candidate documents per query: article bands, and bands of paragraphs that are
        neither short nor boilerplate (a footer would make every page of its site a candidate)."""
        found: dict[int, set[int]] = {}
        rows, numbers = self.storage.article_candidates(prints.doc_signatures)
        searchable = np.flatnonzero((prints.paragraph_sizes > 0) & (weights >= 0.5)
                                    & (prints.paragraph_words >= self.config.min_paragraph_words))
        par_rows, par_numbers = self.storage.paragraph_candidates(prints.paragraph_signatures[searchable])
        owner = np.repeat(np.arange(len(prints)), np.diff(prints.doc_offsets))
        all_rows = np.concatenate([rows, owner[searchable][par_rows]])
        all_numbers = np.concatenate([numbers, par_numbers])
        for row, number in zip(all_rows.tolist(), all_numbers.tolist()):
            found.setdefault(row, set()).add(number)
        return found

    def _worth_verifying(self, prints: Fingerprints, row: int, numbers: list[int], config: Config) -> list[int]:
        """Drop candidates whose article signatures show too little overlap to reach any threshold.

        From an upper confidence bound ``J+`` of the estimated article Jaccard and the
        shingle counts, the shared shingles are at most about ``J+(a+b)/(1+J+)``; a
        candidate is verified only if that is at least ``PREFILTER`` × ``min_containment``
        of either document, or ``J`` is near the near-duplicate threshold. Boilerplate
        discounts can raise the weighted containment above this unweighted bound, hence
        the margin.
        """
        if len(numbers) < 2:
            return numbers
        candidates = np.array(numbers, dtype=np.int64)
        signatures, sizes = self.storage.article_summaries(candidates)
        jaccard = estimate_jaccard(signatures, prints.doc_signatures[row][None, :])
        # an upper confidence bound: a small document inside a large one has a tiny, noisy J
        perms = signatures.shape[1]
        upper = np.minimum(1.0, jaccard + 3.0 * np.sqrt(np.maximum(jaccard, 1.0 / perms) * (1 - jaccard) / perms))
        own = float(prints.doc_sizes[row])
        shared = upper * (own + sizes) / (1.0 + upper)
        best = np.maximum(shared / max(own, 1.0), shared / np.maximum(sizes, 1))
        keep = (best >= _PREFILTER * config.min_containment) | (jaccard >= config.threshold - 0.2)
        return candidates[keep].tolist()

    def _stored_shingles(self, number: int, stored: StoredDocument, paragraphs: ParagraphArrays,
                         config: Config) -> np.ndarray:
        """The shingle set of an indexed document, cached: popular documents are candidates often."""
        from_storage = getattr(self.storage, "shingle_set", None)
        if from_storage is not None:
            return from_storage(number)
        spans = tuple((int(s), int(e)) for s, e in paragraphs.spans)
        document = Document(stored.id, stored.text or "", spans)
        return self._shingle_cache.get(number, lambda _: fingerprint_with_sets([document], config)[1][0])

    def _side_of(self, prints: Fingerprints, row: int, config: Config,
                 frequencies: np.ndarray | None = None) -> Side:
        """A query's side of verification; ``frequencies``: its paragraphs' document frequencies
        when the caller looked them up for a whole batch."""
        rows = prints.paragraph_rows(row)
        digest = prints.doc_digests[row]
        if frequencies is None:
            frequencies = self.storage.paragraph_frequencies(prints.paragraph_digests[rows])
        weights = boilerplate_weights(frequencies, prints.paragraph_words[rows], config)
        return Side(prints.doc_signatures[row], (int(digest[0]), int(digest[1])), prints.paragraph_signatures[rows],
                    prints.paragraph_sizes[rows], prints.paragraph_words[rows], prints.paragraph_spans[rows], weights)

    def compare(self, a: str, b: str, *, config: Config | None = None) -> Match:
        """How indexed document ``a`` relates to indexed document ``b`` (``b`` is the match).

        Unlike :meth:`query` this always answers; kind ``"linked"`` means the pair is
        below every threshold (two documents joined only through others).
        """
        config = config or self.config
        document = self.document(a)
        prints, sets = fingerprint_with_sets([document], config)
        number = self.storage.number_of(b)
        if number is None:
            raise KeyError(b)
        match = self._verify(_Query(document, self._side_of(prints, 0, config), sets[0]), number, config,
                             always=True)
        assert match is not None  # always=True
        return match

    def document(self, id: str) -> Document:
        """An indexed document, rebuilt from the stored text and paragraph spans."""
        number = self.storage.number_of(id)
        if number is None:
            raise KeyError(id)
        stored = self.storage.document(number)
        if stored.text is None:
            raise ConfigError(f"{id!r}: this index keeps no texts")
        return Document(stored.id, stored.text, self._spans(number, stored), stored.metadata)

    def _spans(self, number: int, stored: StoredDocument) -> tuple[tuple[int, int], ...]:
        spans = getattr(self.storage, "paragraph_spans", None)
        array = spans(number) if spans is not None else self.storage.paragraphs(number).spans
        return tuple((int(s), int(e)) for s, e in array)

    def _verify(self, query: "_Query", number: int, config: Config, always: bool = False) -> Match | None:
        stored = self.storage.document(number)
        if stored.id == query.document.id and not always:
            return None
        paragraphs = self.storage.paragraphs(number)
        weights = boilerplate_weights(self.storage.paragraph_frequencies(paragraphs.digests), paragraphs.words, config)
        other = Side(self.storage.article_signature(number), stored.digest, paragraphs.signatures,
                     paragraphs.sizes, paragraphs.words, paragraphs.spans, weights)
        comparison = compare(query.side, other, config)
        jaccard, method = comparison.jaccard, "estimated"
        if stored.text is not None:
            jaccard, method = _exact_jaccard(query.shingle_set, self._stored_shingles(number, stored, paragraphs,
                                                                                       config)), "exact"
        kind = decide_kind(comparison, jaccard, config)
        if kind is None:
            if not always:
                return None
            kind = "linked"
        return Match(stored.id, kind, jaccard, method, comparison.query_in_match,  # type: ignore[arg-type]
                     comparison.match_in_query, comparison.shared, stored.metadata)




@dataclass(frozen=True)
class _Query:
    """One query document, its side of verification and its sorted distinct shingle hashes
    (from the same fingerprint pass)."""

    document: Document
    side: Side
    shingle_set: np.ndarray


def _exact_jaccard(left: np.ndarray, right: np.ndarray) -> float:
    """|A ∩ B| / |A ∪ B| of two sorted sets of distinct shingle hashes."""
    if len(left) == 0 or len(right) == 0:
        return 0.0
    where = np.minimum(np.searchsorted(right, left), len(right) - 1)
    shared = int((right[where] == left).sum())
    return shared / (len(left) + len(right) - shared)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` consecutive items (the last one shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _select(prints: Fingerprints, rows: list[int]) -> Fingerprints:
    if len(rows) == len(prints):
        return prints
    if not rows:
        return fingerprint([], Config(num_perm=prints.doc_signatures.shape[1]))
    paragraph_rows = np.concatenate([np.arange(prints.doc_offsets[r], prints.doc_offsets[r + 1]) for r in rows]
                                    ).astype(np.int64)
    counts = np.diff(prints.doc_offsets)[rows]
    return Fingerprints(np.concatenate(([0], np.cumsum(counts))), prints.paragraph_spans[paragraph_rows],
                        prints.paragraph_words[paragraph_rows], prints.paragraph_sizes[paragraph_rows],
                        prints.paragraph_digests[paragraph_rows], prints.paragraph_signatures[paragraph_rows],
                        prints.doc_sizes[rows], prints.doc_digests[rows], prints.doc_signatures[rows])


