"""``dedup``: reduce a corpus to one document per story, and say what was removed and why.

Streams the documents into an index (a temporary one on disk unless given),
then queries every document against all the others in batches, clusters the
verified pairs (:mod:`neardup.clustering`) and picks representatives.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator

from .clustering import Link, Policy, cluster, representatives
from .config import Config
from .document import Document
from .index import AddReport, Index, batched
from .repetition import repeats

log = logging.getLogger(__name__)

#: Default share of a partial copy that must lie inside the other document for it to join
#: that document's cluster: swept on the development set (README, "Quality"), 0.6/0.7/0.8 give
#: F1 0.997/0.996/0.993 and 0.5 loses precision; 0.7 keeps a margin.
PARTIAL_CONTAINMENT = 0.7


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
    dropped_paragraphs: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "cluster": self.cluster, "representative": self.representative,
                                  "kind": self.kind}
        if self.jaccard is not None:
            record["jaccard"] = round(self.jaccard, 4)
            record["containment"] = {"doc_in_representative": round(self.doc_in_representative or 0.0, 4),
                                     "representative_in_doc": round(self.representative_in_doc or 0.0, 4)}
        if self.dropped_paragraphs:
            record["dropped_paragraphs"] = list(self.dropped_paragraphs)
        return record


@dataclass
class DedupSummary:
    documents: int = 0
    clusters: int = 0
    removed: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    added: AddReport = field(default_factory=AddReport)

    def line(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_kind.items()))
        return (f"{self.documents} documents, {self.clusters} clusters, {self.removed} removed"
                + (f" ({kinds})" if kinds else ""))


def dedup(documents: Iterable[Document], *, config: Config | None = None, index: Index | None = None,
          keep: Policy = "first", date_field: str = "date", include_partial: bool = True,
          partial_containment: float = PARTIAL_CONTAINMENT, drop_repeats: bool = False, workers: int = 1,
          batch_size: int = 2000, on_progress: Callable[[int], None] | None = None
          ) -> tuple[list[Assignment], DedupSummary]:
    """Cluster ``documents`` and choose a representative for each cluster."""
    owned = index is None
    folder = tempfile.mkdtemp(prefix="neardup-dedup-") if owned else None
    index = Index.open(folder, config, writable=True) if owned else index  # type: ignore[arg-type]
    try:
        return _dedup(documents, index, keep, date_field, include_partial, partial_containment, drop_repeats,
                      workers, batch_size, on_progress)
    finally:
        if owned:
            index.close()
            shutil.rmtree(folder, ignore_errors=True)  # type: ignore[arg-type]


def _dedup(documents: Iterable[Document], index: Index, keep: Policy, date_field: str, include_partial: bool,
           partial_containment: float, drop_repeats: bool, workers: int, batch_size: int,
           on_progress: Callable[[int], None] | None) -> tuple[list[Assignment], DedupSummary]:
    summary = DedupSummary()
    order: dict[str, int] = {}
    lengths: dict[str, int] = {}
    dates: dict[str, Any] = {}

    def remember(stream: Iterable[Document]) -> Iterator[Document]:
        for document in stream:
            if document.id not in order:
                order[document.id] = len(order)
                lengths[document.id] = len(document.text)
                dates[document.id] = _date_key(document.metadata.get(date_field))
            yield document

    summary.added = index.add(remember(documents), batch_size=batch_size, workers=workers, on_duplicate="skip")
    ids = [id for id in order if id in index]
    links = _links(index, ids, partial_containment, batch_size, on_progress, workers)
    clusters = cluster(ids, links, partial_containment=partial_containment, include_partial=include_partial)
    chosen = representatives(clusters, keep, order=order, lengths=lengths, dates=dates)
    by_pair = {(link.a, link.b): link for link in links}
    assignments = [_assign(index, id, chosen[clusters[id]], by_pair, drop_repeats) for id in ids]
    summary.documents = len(ids)
    summary.clusters = len(chosen)
    summary.removed = sum(not a.representative for a in assignments)
    summary.by_kind.update(a.kind for a in assignments if not a.representative)
    return assignments, summary


def _links(index: Index, ids: list[str], partial_containment: float, batch_size: int,
           on_progress: Callable[[int], None] | None, workers: int = 1) -> list[Link]:
    """Verified pairs among ``ids``, from querying every document against the index.

    With ``workers > 1`` and an index on disk, batches are queried in that many
    processes, each opening the index read-only; links come back in batch order.
    """
    wanted = set(ids)
    chunks = list(batched(ids, batch_size))
    path = getattr(index.storage, "path", None)
    if workers > 1 and path is not None and len(chunks) > 1:
        results: Iterable[list[Link]] = _parallel_links(str(path), index.config, chunks, partial_containment,
                                                        workers)
    else:
        results = (_links_of(index, chunk, partial_containment) for chunk in chunks)
    links: list[Link] = []
    done = 0
    for chunk, found in zip(chunks, results):
        links += [link for link in found if link.b in wanted]
        done += len(chunk)
        if on_progress is not None:
            on_progress(done)
    return links


def _links_of(index: Index, ids: list[str], partial_containment: float) -> list[Link]:
    """Links from one batch of documents to documents with larger numbers (each pair once)."""
    batch = [index.document(id) for id in ids]
    numbers = [index.storage.number_of(id) for id in ids]
    results = index.query_many(batch, min_containment=partial_containment,
                               candidate_filter=lambda row, number: number > numbers[row])  # type: ignore[operator]
    return [Link(document.id, match.id, match.kind, match.jaccard, match.query_in_match, match.match_in_query,
                 frozenset(p.query_paragraph for p in match.shared_paragraphs),
                 frozenset(p.match_paragraph for p in match.shared_paragraphs))
            for document, matches in zip(batch, results) for match in matches]


def _parallel_links(path: str, config: Config, chunks: list[list[str]], partial_containment: float,
                    workers: int) -> Iterator[list[Link]]:
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers) as pool:
        yield from pool.imap(_worker_links, [(path, config, chunk, partial_containment) for chunk in chunks])


_WORKER_INDEX: Index | None = None


def _worker_links(task: tuple[str, Config, list[str], float]) -> list[Link]:
    """Runs in a worker process: query one batch against the index opened read-only once per process."""
    global _WORKER_INDEX
    path, config, ids, partial_containment = task
    if _WORKER_INDEX is None:
        _WORKER_INDEX = Index.open(path, config)
    return _links_of(_WORKER_INDEX, ids, partial_containment)


def _assign(index: Index, id: str, representative: str, links: dict[tuple[str, str], Link],
            drop_repeats: bool) -> Assignment:
    dropped: tuple[int, ...] = ()
    if id == representative:
        if drop_repeats:
            dropped = tuple(p for group in repeats(index.document(id), index.config).groups
                            for p in group.paragraphs[1:])
        return Assignment(id, id, True, "representative", dropped_paragraphs=tuple(sorted(dropped)))
    link = links.get((id, representative))
    if link is None and (representative, id) in links:  # each pair was verified once, in one direction
        link = links[(representative, id)].flipped()
    if link is None:
        match = index.compare(id, representative)
        link = Link(id, representative, match.kind, match.jaccard, match.query_in_match, match.match_in_query)
    return Assignment(id, representative, False, link.kind, link.jaccard, link.a_in_b, link.b_in_a)


def _date_key(value: Any) -> Any:
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
