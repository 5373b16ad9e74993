"""The index: add documents, then ask where else a story appears, whole or in part.

Candidates come from two LSH tables, one over article signatures and one over the signatures
of body paragraphs, so a copy is found whether it is whole, cut short, embedded in a longer
page, or only reuses some paragraphs. Every candidate is then verified exactly
(:mod:`neardup.match.scores`: Jaccard, containment both ways, coverage, from the shingle sequences)
and its evidence collected (:mod:`neardup.match.evidence`). Nothing below the thresholds asked for is
returned, and a whole batch of queries is answered with one look-up per table and one
verification pass.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from neardup.arrays import sorted_unique
from neardup.config import Config
from neardup.document import Document, as_document
from neardup.errors import ConfigError, DuplicateIdError, IndexFormatError, InputError, NoTextsError
from neardup.index.disk import DiskStorage
from neardup.index.storage import MemoryStorage, Storage, StoredColumns, StoredDocument
from neardup.io.records import document_of, records_of
from neardup.match import candidates
from neardup.match.boilerplate import paragraph_weights
from neardup.match.evidence import KIND_ORDER, Match, shared_paragraphs
from neardup.match.figures import figures_differ
from neardup.match.scores import KIND_NAMES, NONE, PairScores, kinds, score_pairs
from neardup.records import Fingerprints, ShingleColumns
from neardup.sketch.fingerprint import fingerprint, fingerprint_stream
from neardup.sketch.signatures import estimate_jaccard, from_lean_minhash, to_lean_minhash
from neardup.threads import BATCH_TEXT_BYTES, batched

if TYPE_CHECKING:  # datasketch is imported when a signature is exported
    from datasketch import LeanMinHash

log = logging.getLogger(__name__)

OnDuplicate = Literal["skip", "replace", "error"]
ON_DUPLICATE = ("skip", "replace", "error")
#: Skipped ids listed in an AddReport (re-running a large ingest skips every document).
_SKIPPED_IDS_KEPT = 1000
DocumentLike = Document | str | Sequence[str]
T = TypeVar("T")


@dataclass
class AddReport:
    """What :meth:`Index.add` did: counts, and why documents were skipped (the first
    ``_SKIPPED_IDS_KEPT`` skipped ids are listed; the counts cover all). ``outcomes``, when asked
    for, says what became of each document, in input order: ``"added"``, ``"replaced"`` or the
    reason it was skipped."""

    added: int = 0
    replaced: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_ids: list[tuple[str, str]] = field(default_factory=list)
    outcomes: list[str] | None = None

    def skip(self, id: str, reason: str) -> None:
        """Count a skipped document and remember its id (the first thousand)."""
        self.skipped[reason] += 1
        if len(self.skipped_ids) < _SKIPPED_IDS_KEPT:
            self.skipped_ids.append((id, reason))

    def merge(self, other: AddReport) -> None:
        """Add another batch's report to this one."""
        self.added += other.added
        self.replaced += other.replaced
        self.skipped.update(other.skipped)
        self.skipped_ids.extend(other.skipped_ids[: max(0, _SKIPPED_IDS_KEPT - len(self.skipped_ids))])
        if self.outcomes is not None:
            self.outcomes.extend(other.outcomes or ())

    def to_dict(self) -> dict[str, Any]:
        """The counts as JSON values (what ``index --json`` prints)."""
        return {"added": self.added, "replaced": self.replaced, "skipped": sum(self.skipped.values()),
                "skipped_reasons": dict(self.skipped)}


class Index:
    """Documents fingerprinted at paragraph and article level, searchable by LSH."""

    def __init__(self, config: Config | None = None, *, storage: Storage | None = None) -> None:
        if config is not None and not isinstance(config, Config):
            raise ConfigError(f"config must be a neardup.Config, got {type(config).__name__}")
        if storage is not None and not isinstance(getattr(storage, "config", None), Config):
            raise ConfigError(f"storage must implement neardup.index.storage.Storage, got {type(storage).__name__}")
        self.config = config or (storage.config if storage is not None else Config())
        self.storage: Storage = storage if storage is not None else MemoryStorage(self.config)
        self.config.check_compatible(self.storage.config)

    @classmethod
    def open(cls, path: str, config: Config | None = None, *, writable: bool = False, keep_text: bool = True,
             wait: float = 0.0) -> Index:
        """Open (``writable=True``: create or extend) a persistent index folder.

        ``config`` must agree with the stored one on fingerprint and LSH parameters;
        its decision thresholds (``threshold``, ``min_containment``, …) may differ.
        ``keep_text`` applies when the index is created. A second writer waits
        ``wait`` seconds for the first, then raises :class:`~neardup.errors.IndexLockedError`.
        """
        storage = DiskStorage(path, config, writable=writable, keep_text=keep_text, wait=wait)
        return cls(storage.config, storage=storage)

    def close(self) -> None:
        """Release files and the write lock of a persistent index."""
        self.storage.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.storage)

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and self.storage.number_of(id) is not None

    # -- adding --------------------------------------------------------------------------------

    def add(self, documents: Iterable[Document | Mapping[str, Any]] | Any, *, batch_size: int = 2000,
            on_duplicate: OnDuplicate = "skip", workers: int = 1,
            on_batch: Callable[[AddReport], None] | None = None, outcomes: bool = False) -> AddReport:
        """Fingerprint and insert documents, a batch at a time.

        A document is a :class:`Document` or a mapping with ``id`` and ``text`` (a string or a
        list of paragraphs; other keys become metadata); a pyarrow Table or a pandas DataFrame of
        such rows is read a batch at a time (:mod:`neardup.io.records`).
        A document whose id is already indexed (or repeated in the input) is skipped by default —
        so re-running an interrupted ingest resumes it; ``on_duplicate="replace"`` replaces the stored one
        (atomically, with the batch) and ``"error"`` raises. Documents without a single word
        are skipped as ``"no words"``. Batches are fingerprinted on ``workers`` threads.
        ``outcomes`` keeps what became of each document in the report (memory grows with the input).
        """
        if on_duplicate not in ON_DUPLICATE:
            raise ConfigError(f"on_duplicate must be one of {', '.join(ON_DUPLICATE)}, got {on_duplicate!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        given = (document_of(d, where="Index.add") for d in records_of(documents, "Index.add"))
        report = AddReport(outcomes=[] if outcomes else None)
        shingles = self.storage.needs_shingles
        stream = fingerprint_stream(batched(given, batch_size, weight=_text_length, budget=BATCH_TEXT_BYTES),
                                    self.config, workers, shingles=shingles)
        for batch, prints in stream:
            batch_report = self.add_fingerprinted(batch, prints, on_duplicate=on_duplicate)
            report.merge(batch_report)
            if on_batch is not None:
                on_batch(batch_report)
        return report

    def add_fingerprinted(self, batch: Sequence[Document], prints: Fingerprints, *,
                          on_duplicate: OnDuplicate = "skip") -> AddReport:
        """Insert one batch whose fingerprints are already computed (as :meth:`add` does)."""
        report, rows, seen, replacing = AddReport(outcomes=[]), [], set(), []
        assert report.outcomes is not None
        indexed = self.storage.present([document.id for document in batch])
        for row, document in enumerate(batch):
            if prints.doc_sizes[row] == 0:
                report.skip(document.id, "no words")  # never replaces what is stored
                report.outcomes.append("no words")
                continue
            if document.id in seen or document.id in indexed:
                if on_duplicate == "error":
                    raise DuplicateIdError(document.id)
                if on_duplicate == "skip" or document.id in seen:
                    report.skip(document.id, "duplicate id")
                    report.outcomes.append("duplicate id")
                    continue
                number = self.storage.number_of(document.id)
                if number is not None:
                    replacing.append(number)
            seen.add(document.id)
            rows.append(row)
            report.outcomes.append("replaced" if document.id in indexed else "added")
        if rows:
            self.storage.add([batch[row] for row in rows], prints.select(rows), replacing=replacing)
        report.replaced = len(replacing)
        report.added = len(rows) - len(replacing)
        return report

    def remove(self, id: str) -> bool:
        """Remove a document; False if it was not there."""
        number = self.storage.number_of(_checked_id(id))
        if number is None:
            return False
        self.storage.remove([number])
        return True

    # -- reading -------------------------------------------------------------------------------

    def get(self, id: str) -> StoredDocument:
        """What the index keeps of ``id`` (KeyError if it is not indexed)."""
        return self._stored(id, self.storage.document)

    def document(self, id: str) -> Document:
        """An indexed document, rebuilt from the stored text and paragraph spans."""
        stored = self.get(id)
        if stored.text is None:
            raise NoTextsError(f"{id!r}: this index keeps no texts")
        return _rebuilt(stored)

    def documents(self) -> Iterator[Document]:
        """Every indexed document, rebuilt from its stored text, in the order they were added; all
        from one snapshot (another process may be writing). For ``dedup(new, reference=index)``."""
        if not self.storage.keep_text:
            raise NoTextsError(f"{self.storage.location}: this index keeps no texts, so its documents cannot "
                              "be rebuilt")
        with self._snapshot():
            for number in self.storage.numbers():
                stored = self.storage.document(int(number))
                if stored.text is None:
                    raise IndexFormatError(f"{self.storage.location}: document {stored.id!r} has no stored text")
                yield _rebuilt(stored)

    def signature(self, id: str) -> LeanMinHash:
        """The article signature of ``id`` as a ``datasketch.LeanMinHash``."""
        return to_lean_minhash(self._stored(id, self.storage.article_signature), self.config.seed)

    def _stored(self, id: str, read: Callable[[int], T]) -> T:
        """``read(number)`` of the indexed document ``id``, in one snapshot (KeyError if not indexed)."""
        id = _checked_id(id)
        with self.storage.reading():
            number = self.storage.number_of(id)
            if number is None:
                raise KeyError(id)
            with self._snapshot():
                return read(number)

    def similar_to_signature(self, sketch: object) -> list[str]:
        """Ids whose article signature shares an LSH band with a datasketch MinHash."""
        if not hasattr(sketch, "hashvalues"):
            raise InputError(f"a datasketch MinHash or LeanMinHash is needed, got {type(sketch).__name__}")
        values = from_lean_minhash(sketch, self.config.num_perm, self.config.seed)
        with self._snapshot():
            _, numbers = self.storage.article_candidates(values[None, :])
            return [self.storage.document(int(n)).id for n in numbers]

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """The storage's read snapshot. Inside it every number looked up comes from the snapshot's
        own band tables, so a number the storage does not hold is damage, not a race."""
        with self.storage.reading():
            try:
                yield
            except KeyError as err:
                number = err.args[0] if err.args else "?"
                raise IndexFormatError(f"{self.storage.location}: document number {number} is in the band tables "
                                       "but not among the stored documents; the index is damaged") from None

    # -- querying ------------------------------------------------------------------------------

    def query(self, document: DocumentLike, *, threshold: float | None = None,
              min_containment: float | None = None, top: int | None = None) -> list[Match]:
        """The indexed documents holding the text of ``document``, best first."""
        return self.query_many([_query_document(document)], threshold=threshold,
                               min_containment=min_containment, top=top)[0]

    def query_many(self, documents: Sequence[DocumentLike], *, threshold: float | None = None,
                   min_containment: float | None = None, top: int | None = None,
                   exclude_self: bool = False) -> list[list[Match]]:
        """Run many queries as one batch: one fingerprint pass, one look-up per table, one
        verification pass. ``exclude_self`` leaves out an indexed document whose id is the
        query's (to ask "where else does this indexed story appear?")."""
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
            raise ConfigError(f"top must be a positive integer, got {top!r}")
        if not isinstance(exclude_self, bool):
            raise ConfigError(f"exclude_self must be True or False, got {exclude_self!r}")
        config = self.config.with_options(threshold=threshold, min_containment=min_containment)
        queries = [_query_document(document) for document in _iterable(documents, "Index.query_many")]
        prints = fingerprint(queries, config, shingles=True)
        with self._snapshot():
            weights = paragraph_weights(self.storage.paragraph_frequencies(prints.paragraph_digests),
                                        prints.paragraph_words, prints.doc_offsets, config)
            rows, numbers = self._candidates(prints, weights)
            rows, numbers = self._worth_verifying(prints, rows, numbers, config)
            if exclude_self and len(rows):
                own = np.array([self.storage.number_of(q.id) for q in queries], dtype=object)
                own = np.array([-1 if n is None else n for n in own], dtype=np.int64)
                keep = numbers != own[rows]
                rows, numbers = rows[keep], numbers[keep]
            return self._verified(queries, prints, weights, rows, numbers, config, top)

    def _candidates(self, prints: Fingerprints, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query row, number) pairs from article bands, and from bands of paragraphs that are
        neither short nor boilerplate (a footer would make every page of its site a candidate)."""
        rows, numbers = self.storage.article_candidates(prints.doc_signatures)
        searchable = distinct_paragraphs(prints, candidates.searchable(prints.paragraph_sizes, prints.paragraph_words,
                                                                       self.config, weights))
        par_rows, par_numbers = self.storage.paragraph_candidates(prints.paragraph_signatures[searchable])
        all_rows = np.concatenate([rows, prints.paragraph_owners[searchable][par_rows]]).astype(np.int64)
        all_numbers = np.concatenate([numbers, par_numbers]).astype(np.int64)
        if len(all_rows) == 0:
            return all_rows, all_numbers
        keys = sorted_unique(all_rows * (int(all_numbers.max()) + 1) + all_numbers)
        width = int(all_numbers.max()) + 1
        return keys // width, keys % width

    def _worth_verifying(self, prints: Fingerprints, rows: np.ndarray, numbers: np.ndarray,
                         config: Config) -> tuple[np.ndarray, np.ndarray]:
        """Drop candidates whose article signatures show too little overlap to reach any threshold.

        From an upper confidence bound ``J+`` of the estimated article Jaccard and the shingle
        counts, the shared shingles are at most about ``J+(a+b)/(1+J+)``; a candidate is
        verified only if that is at least ``query_prefilter`` × ``min_containment`` of either
        document, or ``J`` is within ``query_prefilter_margin`` of the near-duplicate threshold.
        Boilerplate discounts can raise the weighted containment above this unweighted bound,
        hence the margin.
        """
        if len(rows) == 0:
            return rows, numbers
        signatures, sizes = self.storage.article_summaries(numbers)
        jaccard = estimate_jaccard(signatures, prints.doc_signatures[rows])
        perms = signatures.shape[1]
        upper = np.minimum(1.0, jaccard + 3.0 * np.sqrt(np.maximum(jaccard, 1.0 / perms) * (1 - jaccard) / perms))
        own = prints.doc_sizes[rows].astype(float)
        shared = upper * (own + sizes) / (1.0 + upper)
        best = np.maximum(shared / np.maximum(own, 1.0), shared / np.maximum(sizes, 1))
        keep = (best >= config.query_prefilter * min(config.min_containment, config.partial_containment)) \
            | (jaccard >= config.threshold - config.query_prefilter_margin)
        return rows[keep], numbers[keep]

    def _verified(self, queries: list[Document], prints: Fingerprints, weights: np.ndarray, rows: np.ndarray,
                  numbers: np.ndarray, config: Config, top: int | None) -> list[list[Match]]:
        """Verify every (query row, number) pair at once and build the matches."""
        results: list[list[Match]] = [[] for _ in queries]
        if len(rows) == 0:
            return results
        distinct = sorted_unique(numbers)
        stored = self.storage.columns(distinct)
        columns = ShingleColumns.concatenate([prints.columns(weights), self._weighed(stored, config)])
        local = np.searchsorted(distinct, numbers)
        same = (prints.doc_digests[rows] == stored.doc_digests[local]).all(axis=1)
        scores = score_pairs(columns, rows, len(queries) + local, config.shingle_size, same)
        codes = kinds(scores, config)
        for k in np.flatnonzero(codes > NONE).tolist():
            results[int(rows[k])].append(self._match(scores, k, codes[k], columns, prints, stored,
                                                     int(local[k]), config, queries[int(rows[k])]))
        for matches in results:
            matches.sort(key=lambda m: (KIND_ORDER[m.kind], -m.score, m.id))
            if top is not None:
                del matches[top:]
        return results

    def _weighed(self, stored: StoredColumns, config: Config) -> ShingleColumns:
        frequencies = self.storage.paragraph_frequencies(stored.paragraph_digests)
        weights = paragraph_weights(frequencies, stored.columns.paragraph_words, stored.columns.doc_offsets, config)
        return stored.columns.with_weights(weights)

    def _match(self, scores: PairScores, k: int, code: int, columns: ShingleColumns, prints: Fingerprints,
               stored: StoredColumns, local: int, config: Config, query: Document) -> Match:
        row, doc = int(scores.left[k]), int(scores.right[k])
        number = int(stored.numbers[local])
        document = self.storage.document(number)
        first, last = int(stored.columns.doc_offsets[local]), int(stored.columns.doc_offsets[local + 1])
        spans = prints.paragraph_spans[prints.paragraph_rows(row)]
        evidence = shared_paragraphs(columns, row, doc, spans, stored.paragraph_spans[first:last], config)
        kind = KIND_NAMES[code]
        if document.text is not None and figures_differ(
                _paragraph_texts(query.text, spans), prints.paragraph_words[prints.paragraph_rows(row)],
                _paragraph_texts(document.text, stored.paragraph_spans[first:last]),
                stored.columns.paragraph_words[first:last], config.furniture_words):
            kind = "figures-differ"
        return Match(document.id, kind, float(scores.jaccard[k]), "exact",  # type: ignore[arg-type]
                     float(scores.left_in_right[k]), float(scores.right_in_left[k]), evidence, document.metadata)

    def shared_texts(self, query: Document, match: Match) -> list[dict[str, Any]]:
        """Every shared paragraph pair of ``match`` (a match of ``query``) with both texts quoted:
        ``query_text`` from the query, ``match_text`` from the stored document (None when the
        index keeps no texts, or no longer holds the match). What the CLI and the server show."""
        try:
            stored = self.get(match.id).text
        except KeyError:
            stored = None
        return [{**pair.to_dict(), "query_text": query.text[pair.query_span[0]:pair.query_span[1]],
                 "match_text": None if stored is None else stored[pair.match_span[0]:pair.match_span[1]]}
                for pair in match.shared_paragraphs]

    def compare(self, a: str, b: str, *, config: Config | None = None) -> Match:
        """How indexed document ``a`` relates to indexed document ``b`` (``b`` is the match).

        Unlike :meth:`query` this always answers; kind ``"linked"`` means the pair is below
        every threshold."""
        if config is not None and not isinstance(config, Config):
            raise ConfigError(f"config must be a neardup.Config, got {type(config).__name__}")
        config = config or self.config
        ids = [_checked_id(a), _checked_id(b)]
        with self.storage.reading():
            numbers = [self.storage.number_of(x) for x in ids]
            if numbers[0] is None or numbers[1] is None:
                raise KeyError(a if numbers[0] is None else b)
            with self._snapshot():
                stored = self.storage.columns(np.array(numbers, dtype=np.int64))
                columns = self._weighed(stored, config)
                same = np.array([bool((stored.doc_digests[0] == stored.doc_digests[1]).all())])
                scores = score_pairs(columns, np.array([0]), np.array([1]), config.shingle_size, same)
                code = int(kinds(scores, config)[0])
                first, document = self.storage.document(numbers[0]), self.storage.document(numbers[1])
                spans = stored.paragraph_spans
                split = int(stored.columns.doc_offsets[1])
                evidence = shared_paragraphs(columns, 0, 1, spans[:split], spans[split:], config)
        kind = KIND_NAMES.get(code, "linked")
        words = stored.columns.paragraph_words
        if code > NONE and first.text is not None and document.text is not None and figures_differ(
                _paragraph_texts(first.text, spans[:split]), words[:split],
                _paragraph_texts(document.text, spans[split:]), words[split:], config.furniture_words):
            kind = "figures-differ"
        return Match(document.id, kind, float(scores.jaccard[0]), "exact",  # type: ignore[arg-type]
                     float(scores.left_in_right[0]), float(scores.right_in_left[0]), evidence, document.metadata)



def _paragraph_texts(text: str, spans: np.ndarray) -> list[str]:
    return [text[start:end] for start, end in np.asarray(spans).tolist()]


def distinct_paragraphs(prints: Fingerprints, mask: np.ndarray) -> np.ndarray:
    """The paragraphs of ``mask``, each document's repeats of one matching form (same digest) left
    out: a page that repeats a paragraph a thousand times looks it up once, not a thousand times."""
    rows = np.flatnonzero(mask)
    if len(rows) < 2:
        return rows
    keys = np.column_stack((prints.paragraph_owners[rows].astype(np.uint64), prints.paragraph_digests[rows]))
    _, first = np.unique(keys, axis=0, return_index=True)
    return rows[np.sort(first)]


def _rebuilt(stored: StoredDocument) -> Document:
    """The document a stored row with its text describes (paragraphs at the stored spans)."""
    assert stored.text is not None
    spans = tuple((int(s), int(e)) for s, e in stored.spans)
    return Document(stored.id, stored.text, spans, stored.metadata)

def _checked_id(id: object) -> str:
    if not isinstance(id, str):
        raise InputError(f"an id must be a string, got {type(id).__name__}")
    return id


def _query_document(value: object) -> Document:
    """A query: a Document, a text, or a list of paragraphs (anything else is an InputError)."""
    if isinstance(value, Document):
        return value
    if isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value)):
        return as_document(value)
    raise InputError(f"a query must be a Document, a text or a list of paragraphs, got {type(value).__name__}")


def _iterable(values: object, where: str) -> Iterable[Any]:
    """Documents given as a list or any iterable; a single text or document is a mistake to say."""
    if isinstance(values, (str, bytes, Document, Mapping)) or not isinstance(values, Iterable):
        raise InputError(f"{where} takes a list (or any iterable) of documents, got {type(values).__name__}"
                         + ("; for one document, use Index.query" if where == "Index.query_many" else ""))
    return values


def _text_length(document: Document) -> int:
    return len(document.text)
