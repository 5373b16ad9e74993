"""neardup over HTTP: one index kept open, a JSON API (OpenAPI at ``/docs``), and a page at ``/``.

``neardup serve INDEX [--writable]`` calls :func:`serve`; tests and embedders use
:func:`create_app`. The stack is FastAPI on uvicorn: request models give the validation (422
with the field that is wrong), the OpenAPI document and ``/docs`` from one declaration, and the
Swagger UI files come from ``fastapi-offline`` so ``/docs`` works without a CDN. Measured on
this machine, FastAPI's per-request cost was no higher than plain Starlette's (p50 0.70 vs
0.83 ms for a 5 KB query-shaped round trip on loopback), so the smaller stack bought nothing.

Concurrency (an :class:`~neardup.index.Index` is not thread-safe for mixed use)::

    event loop ──► reader pool: N threads, each with its own read-only Index.open(path)
               │     every query is one SQLite read transaction (one committed snapshot);
               │     a commit made since is seen by the thread's next query
               └─► writer: 1 thread with the one writable Index (adds and removals in order)

Readers never wait for the writer: SQLite in WAL mode lets read transactions run during a write
transaction, and segments are immutable files. A write is acknowledged only after its
transaction committed (``synchronous=full``), so an acknowledged document survives ``kill -9``.
One request's documents are one batch, so one transaction: all of them or none. When more
requests wait than :class:`Limits` allows, the server answers 503 with ``Retry-After`` instead
of queueing without bound.

Errors are JSON, ``{"error": CODE, "message": TEXT}``, with the status saying whose fault it is:
400 unreadable body, 404 unknown id or path, 405 a write to a read-only server (or a wrong
method), 409 a duplicate id with ``on_duplicate="error"`` or an index without texts, 413 a body
or request over the limits, 415 a body that is not JSON, 422 a body that does not fit the schema,
503 busy. Nothing a client sends gives a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import re
import socket
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Literal, Protocol, TypeVar

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neardup import __version__
from neardup.document import Document
from neardup.errors import ConfigError, IndexFormatError, IndexLockedError, InputError, NearDupError
from neardup.index.index import AddReport, Index, OnDuplicate
from neardup.match.evidence import Match
from neardup.match.repetition import repeats

log = logging.getLogger(__name__)

T = TypeVar("T")
_JSON = "application/json"
#: The page's files (``src/neardup/web``), served by name: nothing else in that folder is reachable.
_WEB_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
              "style.css": "text/css; charset=utf-8"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class Console(Protocol):
    """Where :func:`serve` reports (the CLI's console)."""

    def say(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how many may wait. Over a size limit: 413; too many
    waiting: 503 with ``Retry-After``."""

    #: Bytes of a request body.
    max_body: int = 16 << 20
    #: Documents in one ``POST /documents`` (one transaction).
    max_documents: int = 1000
    #: Queries in one ``POST /query/batch``.
    max_queries: int = 256
    #: Paragraphs of one document or query.
    max_paragraphs: int = 10_000
    #: Paragraphs of all documents or queries of one request.
    max_request_paragraphs: int = 100_000
    #: Largest ``top``.
    max_top: int = 1000
    #: Characters of an id.
    max_id_length: int = 1024
    #: Read requests waiting for a reader thread beyond those being served.
    max_waiting_reads: int = 64
    #: Write requests waiting for the writer beyond the one being served.
    max_waiting_writes: int = 16

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"server limit {name} must be a positive integer, got {value!r}")


# -- errors ------------------------------------------------------------------------------------------

class ApiError(Exception):
    """A request the server refuses: a status, a code and a message for the client."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers, self.detail = headers or {}, detail

    def response(self) -> Response:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return Response(render(body), self.status, headers=self.headers, media_type=_JSON)


def _busy(what: str) -> ApiError:
    return ApiError(503, "busy", f"too many {what} waiting; retry shortly", {"Retry-After": "1"})


def _not_found(id: str) -> ApiError:
    return ApiError(404, "not_found", f"no document {id!r} in the index")


def _too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message)


def _library_error(err: Exception) -> ApiError:
    """A neardup exception raised while serving a request, as the response it deserves."""
    if isinstance(err, (InputError, ConfigError)):
        return ApiError(422, "invalid", str(err))
    if isinstance(err, IndexLockedError):
        return ApiError(503, "busy", str(err), {"Retry-After": "1"})
    if isinstance(err, IndexFormatError):
        log.error("index damaged: %s", err)
        return ApiError(500, "index_damaged", "the index cannot be read; see the server's log")
    log.error("unexpected neardup error: %s", err)
    return ApiError(500, "internal", "internal error; see the server's log")


# -- JSON ---------------------------------------------------------------------------------------------

def render(content: Any) -> bytes:
    """UTF-8 JSON. Numbers JSON cannot hold (NaN, infinities: stored metadata may have them)
    become null, and lone surrogates (text read with ``surrogateescape``) become U+FFFD, so a
    response is always valid JSON and its character offsets still count Python characters."""
    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)
    except ValueError:
        text = json.dumps(_finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _check_value(value: Any, where: str) -> None:
    """What a client sends must be storable and renderable: finite numbers, encodable text."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: numbers must be finite")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: text holds a lone surrogate (not valid Unicode)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, where)
            _check_value(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _check_value(item, where)


# -- request and response models (they are the OpenAPI document) --------------------------------------

Threshold = Field(None, gt=0, le=1, allow_inf_nan=False,
                  description="article Jaccard for a near-duplicate (default: the index's, 0.8)")
MinContainment = Field(None, ge=0, le=1, allow_inf_nan=False,
                       description="containment either way for a partial copy (default: the index's, 0.3)")
Top = Field(None, ge=1, description="at most this many matches per query, best first (default: all of them, "
                                    "up to the server's max_top, 1000 unless configured)")


class QueryText(BaseModel):
    """One query: a text (paragraphs found from its lines) or a list of paragraphs."""

    model_config = ConfigDict(extra="forbid")
    text: StrictStr | None = Field(None, description="the story; one paragraph per line or per blank-line block")
    paragraphs: list[StrictStr] | None = Field(None, description="the story as a list of paragraphs")
    id: StrictStr | None = Field(None, description="a name for the query, echoed back (default '-')")

    @model_validator(mode="after")
    def _one_text(self) -> QueryText:
        if (self.text is None) == (self.paragraphs is None):
            raise ValueError("give exactly one of 'text' or 'paragraphs'")
        _check_value(self.text if self.text is not None else self.paragraphs, "text")
        _check_value(self.id, "id")
        return self

    def document(self) -> Document:
        id = self.id if self.id is not None else "-"
        if self.text is not None:
            return Document.from_text(id, self.text)
        return Document.from_paragraphs(id, self.paragraphs or [])


class QueryRequest(QueryText):
    """``POST /query``: one story, and optional decision thresholds."""

    top: int | None = Top
    threshold: float | None = Threshold
    min_containment: float | None = MinContainment
    exclude_self: bool = Field(False, description="leave out the indexed document whose id is the query's id")


class BatchRequest(BaseModel):
    """``POST /query/batch``: many stories, one look-up; thresholds apply to all."""

    model_config = ConfigDict(extra="forbid")
    queries: list[QueryText] = Field(description="the stories; results come back in this order")
    top: int | None = Top
    threshold: float | None = Threshold
    min_containment: float | None = MinContainment
    exclude_self: bool = Field(False, description="leave out, for each query, the indexed document with its id")


class DocumentIn(BaseModel):
    """A document to index: ``id``, ``text`` (a string or a list of paragraphs); every other
    field is kept as metadata (``source``, ``date``, ``title``, ...)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={
        "example": {"id": "recall-ledger", "text": "Headline\nFirst paragraph.", "source": "Daily Ledger",
                    "date": "2026-03-19"}})
    id: StrictStr | StrictInt = Field(description="unique id (an integer is kept as its decimal string)")
    text: StrictStr | list[StrictStr] = Field(description="the text, or its paragraphs")

    @model_validator(mode="after")
    def _storable(self) -> DocumentIn:
        if str(self.id) == "":
            raise ValueError("id must not be empty")
        _check_value(self.id, "id")
        _check_value(self.text, "text")
        _check_value(self.model_extra or {}, "metadata")
        return self

    def document(self) -> Document:
        metadata = dict(self.model_extra or {})
        if isinstance(self.text, str):
            return Document.from_text(str(self.id), self.text, metadata)
        return Document.from_paragraphs(str(self.id), self.text, metadata)


class AddRequest(BaseModel):
    """``POST /documents``: documents to index, all in one transaction."""

    model_config = ConfigDict(extra="forbid")
    documents: list[DocumentIn]
    on_duplicate: OnDuplicate = Field(
        "skip", description="an id already indexed: skip it (report it), replace the stored document, "
                            "or refuse the whole request with 409")


class Containment(BaseModel):
    query_in_match: float = Field(description="share of the query's words found in the match (weighted)")
    match_in_query: float = Field(description="share of the match's words found in the query (weighted)")


class SharedParagraphOut(BaseModel):
    query_paragraph: int = Field(description="0-based paragraph of the query")
    match_paragraph: int = Field(description="0-based paragraph of the match")
    similarity: float = Field(description="Jaccard of the two paragraphs' shingles")
    query_span: list[int] = Field(description="[start, end) character offsets in the query text")
    match_span: list[int] = Field(description="[start, end) character offsets in the match's text")
    query_text: str
    match_text: str | None = Field(description="null when the index keeps no texts")


class MatchOut(BaseModel):
    id: str
    kind: Literal["exact", "near-duplicate", "partial"]
    jaccard: float
    jaccard_method: Literal["exact", "estimated"]
    containment: Containment
    metadata: dict[str, Any]
    shared_paragraphs: list[SharedParagraphOut]


class QueryInfo(BaseModel):
    id: str
    paragraphs: list[list[int]] = Field(description="paragraph spans of the query text")
    metadata: dict[str, Any] = Field(description="the indexed story's metadata (copies of a stored document); {}")
    text: str | None = Field(None, description="the text the spans refer to, when the query gave paragraphs "
                                               "(they are joined with blank lines) or was an indexed document")


class QueryOut(BaseModel):
    query: QueryInfo
    matches: list[MatchOut]


class BatchOut(BaseModel):
    results: list[QueryOut]


class AddOut(BaseModel):
    added: int
    replaced: int
    skipped: int
    skipped_reasons: dict[str, int]
    skipped_ids: list[dict[str, str]] = Field(description="[{id, reason}] of the skipped documents")
    documents: int = Field(description="documents in the index after this request")


class DocumentOut(BaseModel):
    id: str
    text: str | None = Field(description="null when the index keeps no texts")
    paragraphs: list[list[int]] = Field(description="paragraph spans of the text")
    metadata: dict[str, Any]


class RemovedOut(BaseModel):
    id: str
    removed: bool
    documents: int


class HealthOut(BaseModel):
    status: Literal["ok"]
    documents: int


class RepeatsOut(BaseModel):
    id: str
    paragraphs: int
    body_paragraphs: int
    repeated_paragraphs: int
    duplicate_fraction: float
    duplicate_char_fraction: float
    groups: list[dict[str, Any]] = Field(description="[{paragraphs, spans, kind, similarity, identical_text}]")
    text: str | None
    paragraph_spans: list[list[int]]


class RepeatsRequest(BaseModel):
    """``POST /repeats``: what repeats inside a text that is not indexed."""

    model_config = ConfigDict(extra="forbid")
    text: StrictStr | None = None
    paragraphs: list[StrictStr] | None = None
    id: StrictStr | None = None

    @model_validator(mode="after")
    def _one_text(self) -> RepeatsRequest:
        QueryText(text=self.text, paragraphs=self.paragraphs, id=self.id)
        return self


class ErrorOut(BaseModel):
    error: str = Field(description="a code: invalid, not_found, read_only, method_not_allowed, conflict, "
                                   "no_texts, too_large, unsupported_media_type, busy, ...")
    message: str
    detail: list[dict[str, Any]] | None = None


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorOut} for status in statuses}


# -- the index behind the app --------------------------------------------------------------------------

class Service:
    """Per-thread read-only indexes for queries, one writable index behind one thread for writes."""

    def __init__(self, path: str, *, writable: bool = False, readers: int | None = None,
                 limits: Limits | None = None) -> None:
        self.path, self.writable = str(path), writable
        self.limits = limits or Limits()
        self.readers = max(2, os.cpu_count() or 1) if readers is None else readers
        if isinstance(self.readers, bool) or not isinstance(self.readers, int) or self.readers < 1:
            raise ConfigError(f"readers must be a positive integer, got {readers!r}")
        self._writer: Index | None = Index.open(self.path, writable=True) if writable else None
        try:
            probe = Index.open(self.path)  # fails now, not at the first request, on a missing or damaged index
        except BaseException:
            if self._writer is not None:
                self._writer.close()
            raise
        self.config, self.keep_text = probe.config, probe.storage.keep_text
        self.documents_at_start = len(probe)
        self._local = threading.local()
        self._opened: list[Index] = [probe]
        self._opened_lock = threading.Lock()
        self._free_probe: Index | None = probe
        self._read_pool = ThreadPoolExecutor(self.readers, thread_name_prefix="neardup-read")
        self._write_thread = _Writer(self._writer, min(self.limits.max_documents, SHARED_COMMIT_DOCUMENTS)) \
            if self._writer is not None else None
        self._reads = _Gate(self.readers + self.limits.max_waiting_reads)
        self._writes = _Gate(1 + self.limits.max_waiting_writes)

    def close(self) -> None:
        self._read_pool.shutdown(wait=True)
        if self._write_thread is not None:
            self._write_thread.close()
        with self._opened_lock:
            for index in self._opened:
                index.close()
            self._opened.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def reader(self) -> Index:
        """This thread's read-only index (opened on first use)."""
        index: Index | None = getattr(self._local, "index", None)
        if index is None:
            with self._opened_lock:
                index, self._free_probe = self._free_probe, None
            if index is None:
                index = Index.open(self.path)
                with self._opened_lock:
                    self._opened.append(index)
            self._local.index = index
        return index

    def writer(self, allow: str = "") -> Index:
        """The writable index; 405 (with ``Allow``: the methods that remain) on a read-only server."""
        if self._writer is None:
            raise ApiError(405, "read_only", "this server is read-only (start it with --writable to add or "
                                             "remove documents)", {"Allow": allow})
        return self._writer

    async def read(self, work: Callable[[Index], Any]) -> Response:
        """Run ``work(reader)`` on a reader thread; its result, rendered there, is the response."""
        return await _run(self._read_pool.submit, self._reads, "queries", lambda: render(work(self.reader())))

    async def write(self, work: Callable[[Index], Any], allow: str = "") -> Response:
        """Run ``work(writer)`` on the writer thread, after the writes before it."""
        self.writer(allow)
        assert self._write_thread is not None
        return await _run(self._write_thread.submit, self._writes, "writes", _WriteJob(work=work))

    async def add(self, documents: list[Document], on_duplicate: OnDuplicate) -> Response:
        """Add ``documents`` (one transaction, perhaps shared with adds waiting beside it)."""
        self.writer()
        assert self._write_thread is not None
        return await _run(self._write_thread.submit, self._writes, "writes",
                          _WriteJob(documents=documents, on_duplicate=on_duplicate))


#: Most documents that adds waiting together may put in one shared transaction: below the number
#: of skipped ids an :class:`AddReport` lists (1,000), so each request's own report can be told apart.
SHARED_COMMIT_DOCUMENTS = 500


@dataclass
class _WriteJob:
    """One write request: an add (which may share a commit) or any other write (run alone)."""

    work: Callable[[Index], Any] | None = None
    documents: list[Document] | None = None
    on_duplicate: OnDuplicate = "skip"
    future: Future[bytes] | None = None

    @property
    def shareable(self) -> bool:
        return self.documents is not None and self.on_duplicate in ("skip", "replace")


class _Writer:
    """The one thread that writes. Adds waiting together (the same ``on_duplicate``, skip or
    replace, no id in two of them, at most ``group_documents`` in all) share one transaction: a
    commit's fixed cost (its fsyncs, its segment) is paid once for all of them, which is what lets
    many clients adding one document each go faster than one commit per request. Each is still
    acknowledged only after that commit, with its own report; if the shared add fails, each is run
    again alone, so one request's error is never another's."""

    def __init__(self, index: Index, group_documents: int) -> None:
        self.index, self.group_documents = index, group_documents
        self._jobs: deque[_WriteJob] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="neardup-write", daemon=True)
        self._thread.start()

    def submit(self, job: _WriteJob) -> Future[bytes]:
        job.future = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self._jobs.append(job)
            self._wake.notify()
        return job.future

    def close(self) -> None:
        """Finish the writes queued, then stop."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._jobs and not self._closed:
                    self._wake.wait()
                if not self._jobs:
                    return
                group = self._take()
            if group:
                self._run(group)

    def _take(self) -> list[_WriteJob]:
        """The next job and, if it is a shareable add, the shareable adds queued right behind it
        (in order: a write never overtakes an earlier one). Jobs whose client left are dropped."""
        first = self._next_running()
        if first is None or not first.shareable:
            return [] if first is None else [first]
        assert first.documents is not None
        group, ids, total = [first], {d.id for d in first.documents}, len(first.documents)
        while self._jobs:
            job = self._jobs[0]
            if not job.shareable or job.on_duplicate != first.on_duplicate:
                break
            assert job.documents is not None
            job_ids = {d.id for d in job.documents}
            if total + len(job.documents) > self.group_documents or not ids.isdisjoint(job_ids):
                break
            self._jobs.popleft()
            assert job.future is not None
            if job.future.set_running_or_notify_cancel():
                group.append(job)
                ids |= job_ids
                total += len(job.documents)
        return group

    def _next_running(self) -> _WriteJob | None:
        while self._jobs:
            job = self._jobs.popleft()
            assert job.future is not None
            if job.future.set_running_or_notify_cancel():
                return job
        return None

    def _run(self, group: list[_WriteJob]) -> None:
        if len(group) > 1:
            try:
                answers = add_together(self.index, [job.documents or [] for job in group], group[0].on_duplicate)
            except Exception:  # run each alone below: each gets its own answer or error
                pass
            else:
                for job, answer in zip(group, answers):
                    _settle(job, functools.partial(render, answer))
                return
        for job in group:
            _settle(job, functools.partial(self._rendered_alone, job))

    def _rendered_alone(self, job: _WriteJob) -> bytes:
        return render(self._alone(job))

    def _alone(self, job: _WriteJob) -> Any:
        if job.documents is not None:
            return add_documents(self.index, job.documents, job.on_duplicate)
        assert job.work is not None
        return job.work(self.index)


def _settle(job: _WriteJob, answer: Callable[[], bytes]) -> None:
    assert job.future is not None
    try:
        job.future.set_result(answer())
    except BaseException as err:
        job.future.set_exception(err)


class _Gate:
    """Requests admitted to a pool (running or waiting); more than ``capacity`` are refused."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.count = capacity, 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.count >= self.capacity:
                return False
            self.count += 1
            return True

    def leave(self, _: object = None) -> None:
        with self._lock:
            self.count -= 1


async def _run(submit: Callable[[T], Future[bytes]], gate: _Gate, what: str, job: T) -> Response:
    """``submit(job)`` if the gate admits it (else 503). A request whose client went away before
    its job started is dropped from the queue; the gate counts a job until it is done or dropped."""
    if not gate.enter():
        raise _busy(what)
    try:
        future = submit(job)
    except BaseException:
        gate.leave()
        raise
    future.add_done_callback(gate.leave)
    return Response(await asyncio.wrap_future(future), media_type=_JSON)


# -- what the endpoints compute (on reader or writer threads) -------------------------------------------

def match_dict(index: Index, query: Document, match: Match) -> dict[str, Any]:
    """A match with its metadata and both texts of every shared paragraph."""
    try:
        stored = index.get(match.id).text
    except KeyError:  # removed between the query and now
        stored = None
    pairs = [{**pair.to_dict(), "query_text": query.text[pair.query_span[0]:pair.query_span[1]],
              "match_text": None if stored is None else stored[pair.match_span[0]:pair.match_span[1]]}
             for pair in match.shared_paragraphs]
    return {**match.to_dict(), "metadata": match.metadata, "shared_paragraphs": pairs}


def query_info(query: Document, with_text: bool) -> dict[str, Any]:
    info: dict[str, Any] = {"id": query.id, "paragraphs": [[s, e] for s, e in query.paragraphs],
                            "metadata": query.metadata}
    if with_text:
        info["text"] = query.text
    return info


def run_queries(index: Index, queries: Sequence[Document], options: dict[str, Any],
                with_text: Sequence[bool]) -> list[dict[str, Any]]:
    results = index.query_many(list(queries), **options)
    return [{"query": query_info(q, text), "matches": [match_dict(index, q, m) for m in matches]}
            for q, text, matches in zip(queries, with_text, results)]


def stored_document(index: Index, id: str) -> dict[str, Any]:
    try:
        stored = index.get(id)
    except KeyError:
        raise _not_found(id) from None
    return {"id": stored.id, "text": stored.text, "paragraphs": [[int(s), int(e)] for s, e in stored.spans],
            "metadata": stored.metadata}


def indexed_document(index: Index, id: str) -> Document:
    """The indexed document ``id`` as a query (404 unknown, 409 when the index keeps no texts)."""
    if id not in index:
        raise _not_found(id)
    try:
        return index.document(id)
    except KeyError:
        raise _not_found(id) from None
    except ConfigError:
        raise ApiError(409, "no_texts", "this index keeps no texts (built with --no-text): it cannot "
                                        "query with or show a stored document's text") from None


def repeats_dict(index: Index, document: Document) -> dict[str, Any]:
    report = repeats(document, index.config).to_dict()
    return {**report, "text": document.text, "paragraph_spans": [[s, e] for s, e in document.paragraphs]}


def add_documents(index: Index, documents: list[Document], on_duplicate: OnDuplicate) -> dict[str, Any]:
    try:
        report: AddReport = index.add(documents, batch_size=max(1, len(documents)),
                                      on_duplicate=on_duplicate)
    except ConfigError as err:
        if on_duplicate == "error" and "duplicate id" in str(err):
            raise ApiError(409, "conflict", f"{err}: nothing was added") from None
        raise
    return add_answer(report, len(index))


def add_together(index: Index, requests: Sequence[list[Document]], on_duplicate: OnDuplicate) -> list[dict[str, Any]]:
    """Several requests' documents (no id in two of them) added in one transaction, and each
    request's report as if it had been added alone: its skipped ids (every skip is listed, there
    being fewer than :data:`SHARED_COMMIT_DOCUMENTS` documents), the stored ids it replaced."""
    everything = [document for documents in requests for document in documents]
    before = index.storage.present([d.id for d in everything]) if on_duplicate == "replace" else set()
    report: AddReport = index.add(everything, batch_size=max(1, len(everything)),
                                  on_duplicate=on_duplicate)
    if sum(report.skipped.values()) != len(report.skipped_ids):  # cannot happen below the limit
        raise RuntimeError("a shared add skipped more documents than its report lists")
    owner = {d.id: number for number, documents in enumerate(requests) for d in documents}
    reports = [AddReport() for _ in requests]
    for id, reason in report.skipped_ids:  # in the order of the documents, as each alone would list them
        reports[owner[id]].skip(id, reason)
    total = len(index)
    for own, documents in zip(reports, requests):
        skips = Counter(id for id, _ in own.skipped_ids)
        stored = [id for id, count in Counter(d.id for d in documents).items() if count > skips[id]]
        own.replaced = sum(1 for id in stored if id in before)
        own.added = len(stored) - own.replaced
    return [add_answer(own, total) for own in reports]


def add_answer(report: AddReport, documents: int) -> dict[str, Any]:
    return {**report.to_dict(), "skipped_ids": [{"id": i, "reason": r} for i, r in report.skipped_ids],
            "documents": documents}


def remove_document(index: Index, id: str) -> dict[str, Any]:
    if not index.remove(id):
        raise _not_found(id)
    return {"id": id, "removed": True, "documents": len(index)}


def stats_dict(index: Index, service: Service) -> dict[str, Any]:
    stats = dict(index.storage.stats())
    stats["path"] = os.path.basename(str(stats.get("path", "")).rstrip("/"))  # not the server's file system
    stats["server"] = {"version": __version__, "writable": service.writable, "readers": service.readers,
                       "limits": asdict(service.limits)}
    return stats


# -- checks on requests ----------------------------------------------------------------------------------

def _check_top(top: int | None, limits: Limits) -> int:
    """``top`` as asked, or ``max_top`` when not given: a response never grows without bound."""
    if top is not None and top > limits.max_top:
        raise _too_large(f"top is {top}; at most {limits.max_top}")
    return limits.max_top if top is None else top


def _check_paragraphs(documents: Sequence[Document], limits: Limits, what: str) -> None:
    total = 0
    for document in documents:
        count = len(document.paragraphs)
        if count > limits.max_paragraphs:
            raise _too_large(f"{what} {document.id!r} has {count:,} paragraphs; at most {limits.max_paragraphs:,}")
        total += count
    if total > limits.max_request_paragraphs:
        raise _too_large(f"the request holds {total:,} paragraphs; at most {limits.max_request_paragraphs:,}")


def _check_id(id: str, limits: Limits) -> str:
    if id == "" or len(id) > limits.max_id_length:
        raise _not_found(id[:100])
    return id


def _options(request: QueryRequest | BatchRequest, limits: Limits) -> dict[str, Any]:
    return {"top": _check_top(request.top, limits), "threshold": request.threshold,
            "min_containment": request.min_containment, "exclude_self": request.exclude_self}


# -- the ASGI layer: body limit and content type, before FastAPI reads anything ---------------------------

class BodyLimit:
    """413 for a body over ``max_body`` bytes (declared or streamed), 415 for a body that is not JSON."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await self._refuse(send, _too_large(f"the body is over {self.max_body:,} bytes"))
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await self._refuse(send, _too_large(f"the body is over {self.max_body:,} bytes"))
                return
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if body and not (kind == b"application/json" or kind.endswith(b"+json")):
            await self._refuse(send, ApiError(415, "unsupported_media_type",
                                              "send the body as JSON, with Content-Type: application/json"))
            return
        await self.app(scope, _replay(bytes(body)), send)

    @staticmethod
    async def _refuse(send: Send, error: ApiError) -> None:
        response = error.response()
        response.headers["Connection"] = "close"
        await response({"type": "http"}, _replay(b""), send)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # as a client that says nothing more: wait to be cancelled
        return {"type": "http.disconnect"}

    return receive


class Headers:
    """``nosniff`` on every response; the page's content security policy on the page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope["path"] == "/" or scope["path"].startswith("/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff")]
                if page:
                    extra += [(b"content-security-policy", _PAGE_POLICY.encode()), (b"referrer-policy", b"no-referrer")]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, sending)


# -- the app ---------------------------------------------------------------------------------------------

_DESCRIPTION = """Where else does this story appear? Copies of a text in a neardup index — exact, near-duplicate
or partial — with the paragraphs they share (character spans and texts of both sides) and each copy's
metadata (outlet, date, ...). A page for people is at [/](/).

Errors are `{"error": CODE, "message": TEXT}`: 400 unreadable JSON, 404 unknown id, 405 a write to a
read-only server, 409 a duplicate id with `on_duplicate="error"`, 413 over a limit (`GET /stats` lists
them), 415 not JSON, 422 a field that does not fit, 503 busy (retry after `Retry-After` seconds)."""


def create_app(index: str | os.PathLike[str] | Service, *, writable: bool = False, limits: Limits | None = None,
               readers: int | None = None) -> FastAPI:
    """The ASGI app over an index folder (opened now: errors raise here, not at the first request).

    The indexes are closed when the app's lifespan ends (uvicorn's shutdown, leaving a
    ``TestClient`` block), or by ``app.state.service.close()``."""
    from fastapi_offline import FastAPIOffline

    service = index if isinstance(index, Service) else Service(os.fspath(index), writable=writable,
                                                               readers=readers, limits=limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        try:
            yield
        finally:
            service.close()

    app = FastAPIOffline(title="neardup", version=__version__, description=_DESCRIPTION, lifespan=lifespan,
                         redoc_url=None, swagger_ui_parameters={"defaultModelsExpandDepth": 0})
    app.state.service = service
    _routes(app, service)
    _page(app)
    _error_handlers(app)
    app.add_middleware(Headers)
    app.add_middleware(BodyLimit, max_body=service.limits.max_body)
    return app


def _routes(app: FastAPI, service: Service) -> None:
    limits = service.limits
    id_path = Path(description="the document's id (may contain '/')")

    @app.get("/health", response_model=HealthOut, tags=["index"], summary="Is the index open?")
    async def health() -> Response:
        return await service.read(lambda index: {"status": "ok", "documents": len(index)})

    @app.get("/stats", tags=["index"], summary="Describe the index and the server's limits")
    async def stats() -> Response:
        return await service.read(lambda index: stats_dict(index, service))

    @app.post("/query", response_model=QueryOut, tags=["query"], responses=_errors(400, 413, 415, 422, 503),
              summary="Where else does this story appear?")
    async def query(request: QueryRequest) -> Response:
        options = _options(request, limits)
        document = request.document()
        _check_paragraphs([document], limits, "query")
        return await service.read(
            lambda index: run_queries(index, [document], options, [request.paragraphs is not None])[0])

    @app.post("/query/batch", response_model=BatchOut, tags=["query"], responses=_errors(400, 413, 415, 422, 503),
              summary="Many stories in one look-up")
    async def query_batch(request: BatchRequest) -> Response:
        options = _options(request, limits)
        if len(request.queries) > limits.max_queries:
            raise _too_large(f"{len(request.queries):,} queries; at most {limits.max_queries:,} in one request")
        documents = [q.document() for q in request.queries]
        _check_paragraphs(documents, limits, "query")
        with_text = [q.paragraphs is not None for q in request.queries]
        return await service.read(lambda index: {"results": run_queries(index, documents, options, with_text)})

    @app.post("/repeats", response_model=RepeatsOut, tags=["query"], responses=_errors(400, 413, 415, 422, 503),
              summary="What repeats inside a text")
    async def repeats_of_text(request: RepeatsRequest) -> Response:
        document = QueryText(text=request.text, paragraphs=request.paragraphs, id=request.id).document()
        _check_paragraphs([document], limits, "text")
        return await service.read(lambda index: repeats_dict(index, document))

    @app.post("/documents", response_model=AddOut, tags=["documents"],
              responses=_errors(400, 405, 409, 413, 415, 422, 503),
              summary="Index documents (one transaction; needs --writable)")
    async def add(request: AddRequest) -> Response:
        service.writer()
        if len(request.documents) > limits.max_documents:
            raise _too_large(f"{len(request.documents):,} documents; at most {limits.max_documents:,} in one request")
        for item in request.documents:
            if len(str(item.id)) > limits.max_id_length:
                raise _too_large(f"an id is {len(str(item.id)):,} characters; at most {limits.max_id_length:,}")
        documents = [item.document() for item in request.documents]
        _check_paragraphs(documents, limits, "document")
        return await service.add(documents, request.on_duplicate)

    @app.get("/documents/{id:path}/copies", response_model=QueryOut, tags=["documents"],
             responses=_errors(404, 409, 413, 422, 503), summary="Where else does this indexed story appear?")
    async def copies(id: str = id_path, top: int | None = Query(None, ge=1), threshold: float | None = Query(
            None, gt=0, le=1, allow_inf_nan=False), min_containment: float | None = Query(
            None, ge=0, le=1, allow_inf_nan=False)) -> Response:
        options = {"top": _check_top(top, limits), "threshold": threshold, "min_containment": min_containment,
                   "exclude_self": True}

        def work(index: Index) -> dict[str, Any]:
            document = indexed_document(index, _check_id(id, limits))
            return run_queries(index, [document], options, [True])[0]
        return await service.read(work)

    @app.get("/documents/{id:path}/repeats", response_model=RepeatsOut, tags=["documents"],
             responses=_errors(404, 409, 503), summary="What repeats inside an indexed document")
    async def repeats_of_document(id: str = id_path) -> Response:
        return await service.read(lambda index: repeats_dict(index, indexed_document(index, _check_id(id, limits))))

    @app.get("/documents/{id:path}", response_model=DocumentOut, tags=["documents"], responses=_errors(404, 503),
             summary="A stored document: text, paragraph spans, metadata")
    async def get_document(id: str = id_path) -> Response:
        return await service.read(lambda index: stored_document(index, _check_id(id, limits)))

    @app.delete("/documents/{id:path}", response_model=RemovedOut, tags=["documents"],
                responses=_errors(404, 405, 503), summary="Remove a document (needs --writable)")
    async def delete_document(id: str = id_path) -> Response:
        return await service.write(lambda index: remove_document(index, _check_id(id, limits)), allow="GET")


def _page(app: FastAPI) -> None:
    files = {name: (resources.files("neardup.service") / "web" / name).read_bytes() for name in _WEB_FILES}
    tags = {name: '"' + hashlib.sha256(data).hexdigest()[:16] + '"' for name, data in files.items()}

    def serve_file(name: str, request: Request) -> Response:
        headers = {"ETag": tags[name], "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == tags[name]:
            return Response(status_code=304, headers=headers)
        return Response(files[name], media_type=_WEB_FILES[name], headers=headers)

    @app.get("/", include_in_schema=False)
    async def page(request: Request) -> Response:
        return serve_file("index.html", request)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str, request: Request) -> Response:
        if name not in files or name == "index.html":
            raise ApiError(404, "not_found", f"no file {name!r}")
        return serve_file(name, request)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> Response:
        return err.response()

    @app.exception_handler(NearDupError)
    async def library_error(request: Request, err: NearDupError) -> Response:
        return _library_error(err).response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> Response:
        errors = err.errors()
        detail = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in errors]
        if any(e.get("type") == "json_invalid" for e in errors):
            return ApiError(400, "bad_json", "the body is not valid JSON", detail=detail).response()
        message = "; ".join(f"{'.'.join(d['loc'][1:]) or d['loc'][0] if d['loc'] else 'body'}: {d['msg']}"
                            for d in detail[:5])
        return ApiError(422, "invalid", message or "invalid request", detail=detail).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        codes = {400: "bad_json", 404: "not_found", 405: "method_not_allowed"}  # 400: a body FastAPI cannot parse
        messages = {400: "the body is not valid JSON (or nests too deeply)",
                    404: "no such path (the API is described at /docs)"}
        message = messages.get(err.status_code, str(err.detail))
        return ApiError(err.status_code, codes.get(err.status_code, "error"), message,
                        dict(err.headers or {})).response()

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return ApiError(500, "internal", "internal error; see the server's log").response()


# -- serve -----------------------------------------------------------------------------------------------

def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one): binding here makes a port in use
    an ordinary ``OSError`` for the caller, and tells the real port."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(index_path: str, *, host: str = "127.0.0.1", port: int = 8000, writable: bool = False,
          max_body: int = 16 << 20, console: Console | None = None, limits: Limits | None = None,
          readers: int | None = None) -> None:
    """Serve ``index_path`` until interrupted (SIGINT/SIGTERM finish the requests in flight, then close
    the index). ``writable`` accepts ``POST /documents`` and ``DELETE /documents/{id}``, and creates
    the index if the folder is new or empty."""
    import uvicorn

    limits = limits or Limits()
    if max_body != limits.max_body:
        limits = Limits(**{**asdict(limits), "max_body": max_body})
    service = Service(index_path, writable=writable, readers=readers, limits=limits)
    try:
        app = create_app(service)
        sock = listen(host, port)
    except BaseException:
        service.close()
        raise
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if sock.family == socket.AF_INET6 else bound[0]
    if console is not None:
        mode = "writable" if writable else "read-only"
        console.say(f"neardup: serving {index_path} ({service.documents_at_start:,} documents, {mode}) "
                    f"at http://{shown}:{bound[1]}/ — API at /docs; Ctrl-C to stop")
        if not _loopback(host):
            console.warn(f"neardup: listening on {host}: anyone who can reach this machine can query "
                         f"{'and change ' if writable else ''}the index (there is no authentication)")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=5,
                            limit_concurrency=2048, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


__all__ = ["Limits", "Service", "create_app", "serve"]
