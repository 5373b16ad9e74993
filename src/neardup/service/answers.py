"""What the endpoints compute, on reader or writer threads: matches with both texts quoted, stored
documents, repeats, adds with each request's own report, statistics; and the checks on requests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from neardup import __version__
from neardup.document import Document
from neardup.errors import (
    DuplicateIdError,
    NoTextsError,
)
from neardup.index.index import AddReport, Index, OnDuplicate
from neardup.match.evidence import Match
from neardup.match.repetition import repeats
from neardup.service.errors import ApiError, not_found, too_large
from neardup.service.limits import Limits
from neardup.service.models import BatchRequest, QueryRequest


def match_dict(index: Index, query: Document, match: Match) -> dict[str, Any]:
    """A match with its metadata and both texts of every shared paragraph."""
    return {**match.to_dict(), "metadata": match.metadata, "shared_paragraphs": index.shared_texts(query, match)}


def query_info(query: Document, with_text: bool) -> dict[str, Any]:
    info: dict[str, Any] = {"id": query.id, "paragraphs": [[s, e] for s, e in query.paragraphs],
                            "metadata": query.metadata}
    if with_text:
        info["text"] = query.text
    return info


def run_queries(index: Index, queries: Sequence[Document], options: dict[str, Any], with_text: Sequence[bool],
                limits: Limits) -> list[dict[str, Any]]:
    """Each query's matches with their quoted texts; 413 once the quoted texts pass ``max_answer``
    bytes (a smaller ``top``, or fewer queries at once, answers) — checked after every few queries,
    so a batch that cannot be answered stops early."""
    out: list[dict[str, Any]] = []
    size = 0
    for start in range(0, len(queries), ANSWER_CHUNK):
        chunk = list(queries[start:start + ANSWER_CHUNK])
        found, size = _answers(index, chunk, index.query_many(chunk, **options), with_text[start:start + len(chunk)],
                               size, limits)
        out += found
    return out


#: Queries of a batch searched together between checks of the answer's size.
ANSWER_CHUNK = 8


def _answers(index: Index, queries: Sequence[Document], results: Sequence[Sequence[Match]],
             with_text: Sequence[bool], size: int, limits: Limits) -> tuple[list[dict[str, Any]], int]:
    out = []
    for query, text, matches in zip(queries, with_text, results):
        found = []
        for match in matches:
            found.append(match_dict(index, query, match))
            pairs = found[-1]["shared_paragraphs"]
            size += 256 + sum(len(p["query_text"]) + len(p["match_text"] or "") + 64 for p in pairs)
            if size > limits.max_answer:
                raise too_large(f"the answer would pass {limits.max_answer:,} bytes of quoted text; ask with a smaller "
                                "'top', or fewer queries at once")
        out.append({"query": query_info(query, text), "matches": found})
    return out, size


def stored_document(index: Index, id: str) -> dict[str, Any]:
    try:
        stored = index.get(id)
    except KeyError:
        raise not_found(id) from None
    return {"id": stored.id, "text": stored.text, "paragraphs": [[int(s), int(e)] for s, e in stored.spans],
            "metadata": stored.metadata}


def indexed_document(index: Index, id: str) -> Document:
    """The indexed document ``id`` as a query (404 unknown, 409 when the index keeps no texts)."""
    if id not in index:
        raise not_found(id)
    try:
        return index.document(id)
    except KeyError:
        raise not_found(id) from None
    except NoTextsError:
        raise ApiError(409, "no_texts", "this index keeps no texts (built with --no-text): it cannot "
                                        "query with or show a stored document's text") from None


def repeats_dict(index: Index, document: Document) -> dict[str, Any]:
    report = repeats(document, index.config).to_dict()
    return {**report, "text": document.text, "paragraph_spans": [[s, e] for s, e in document.paragraphs]}


def add_documents(index: Index, documents: list[Document], on_duplicate: OnDuplicate) -> dict[str, Any]:
    try:
        report: AddReport = index.add(documents, batch_size=max(1, len(documents)), on_duplicate=on_duplicate)
    except DuplicateIdError as err:
        raise ApiError(409, "conflict", f"{err}: nothing was added") from None
    return add_answer(report, len(index))


def add_together(index: Index, requests: Sequence[list[Document]], on_duplicate: OnDuplicate) -> list[dict[str, Any]]:
    """Several requests' documents (no id in two of them) added in one transaction, and each
    request's report as if it had been added alone, from what became of each of its documents."""
    everything = [document for documents in requests for document in documents]
    report = index.add(everything, batch_size=max(1, len(everything)), on_duplicate=on_duplicate, outcomes=True)
    outcomes = iter(report.outcomes or ())
    total, answers = len(index), []
    for documents in requests:
        own = AddReport()
        for document, outcome in zip(documents, outcomes):
            if outcome == "added":
                own.added += 1
            elif outcome == "replaced":
                own.replaced += 1
            else:
                own.skip(document.id, outcome)
        answers.append(add_answer(own, total))
    return answers


def add_answer(report: AddReport, documents: int) -> dict[str, Any]:
    return {**report.to_dict(), "skipped_ids": [{"id": i, "reason": r} for i, r in report.skipped_ids],
            "documents": documents}


def remove_document(index: Index, id: str) -> dict[str, Any]:
    if not index.remove(id):
        raise not_found(id)
    return {"id": id, "removed": True, "documents": len(index)}


def stats_dict(index: Index, writable: bool, readers: int, limits: Limits) -> dict[str, Any]:
    stats = dict(index.storage.stats())
    stats["path"] = os.path.basename(str(stats.get("path", "")).rstrip("/"))  # not the server's file system
    stats["server"] = {"version": __version__, "writable": writable, "readers": readers, "limits": asdict(limits)}
    return stats


def check_top(top: int | None, limits: Limits) -> int:
    """``top`` as asked (at most ``max_top``), or ``default_top`` when not given."""
    if top is not None and top > limits.max_top:
        raise too_large(f"top is {top}; at most {limits.max_top}")
    return limits.default_top if top is None else top


def check_paragraphs(documents: Sequence[Document], limits: Limits, what: str) -> None:
    total = 0
    for document in documents:
        count = len(document.paragraphs)
        if count > limits.max_paragraphs:
            raise too_large(f"{what} {document.id!r} has {count:,} paragraphs; at most {limits.max_paragraphs:,}")
        total += count
    if total > limits.max_request_paragraphs:
        raise too_large(f"the request holds {total:,} paragraphs; at most {limits.max_request_paragraphs:,}")


def check_id(id: str, limits: Limits) -> str:
    if id == "" or len(id) > limits.max_id_length:
        raise not_found(id[:100])
    return id


def query_options(request: QueryRequest | BatchRequest, limits: Limits) -> dict[str, Any]:
    return {"top": check_top(request.top, limits), "threshold": request.threshold,
            "min_containment": request.min_containment, "exclude_self": request.exclude_self}
