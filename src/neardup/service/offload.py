"""Requests with bodies, prepared off the event loop: JSON → request model → documents, with the limits
checked — on a thread for a small body, whole (prepared, answered and rendered) in a worker process for
a large one.

Why a process: parsing 16 MB of JSON, normalising a text that NFKC expands, splitting four million
lines or counting n-grams are Python (or GIL-holding C) work of up to seconds; on a thread beside the
event loop they hold the GIL and the page and ``/health`` wait. A worker process has its own GIL, its
own read-only :class:`~neardup.index.Index`, and an address-space cap
(:class:`~neardup.service.errors.Limits` ``.large_worker_memory`` of heap): a request that needs more gets a
413, never the server's memory. The body reaches it through shared memory (pickling 16 MB would
hold the server's GIL for tens of milliseconds); the answer comes back rendered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import resource
import threading
import time
from dataclasses import dataclass
from multiprocessing import get_context, shared_memory
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from neardup.document import Document
from neardup.errors import NearDupError
from neardup.index.index import Index
from neardup.service.answers import check_paragraphs, query_options, repeats_dict, run_queries
from neardup.service.errors import ApiError, busy, library_error, render, too_large
from neardup.service.gate import Gate
from neardup.service.limits import Limits
from neardup.service.models import AddRequest, BatchRequest, QueryRequest, RepeatsRequest

Kind = Literal["query", "batch", "repeats", "add"]
MODELS: dict[str, type[BaseModel]] = {"query": QueryRequest, "batch": BatchRequest, "repeats": RepeatsRequest,
                                      "add": AddRequest}


@dataclass(frozen=True)
class Prepared:
    """A request ready to answer: its documents, and what it asks of them."""

    documents: list[Document]
    options: dict[str, Any]         # query options; ``on_duplicate`` for an add
    with_text: list[bool]           # per query: echo its text (it came as paragraphs)


def prepare(kind: Kind, body: bytes | bytearray, limits: Limits) -> Prepared:
    """The request in ``body``, checked against ``limits`` (ApiError otherwise: 400, 413, 422)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", "the body is not valid JSON (or nests too deeply)") from None
    _check_lines(kind, data, limits)
    try:
        request = MODELS[kind].model_validate(data)
    except ValidationError as err:
        detail = [{"loc": ["body", *map(str, e["loc"])], "msg": str(e["msg"]), "type": str(e["type"])}
                  for e in err.errors()]
        message = "; ".join(f"{'.'.join(d['loc'][1:]) or 'body'}: {d['msg']}" for d in detail[:5])
        raise ApiError(422, "invalid", message or "invalid request", detail=detail) from None
    return _prepared(kind, request, limits)


def _prepared(kind: Kind, request: Any, limits: Limits) -> Prepared:
    if kind == "add":
        if len(request.documents) > limits.max_documents:
            raise too_large(f"{len(request.documents):,} documents; at most {limits.max_documents:,} in one request")
        for item in request.documents:
            if len(str(item.id)) > limits.max_id_length:
                raise too_large(f"an id is {len(str(item.id)):,} characters; at most {limits.max_id_length:,}")
        documents = [item.document() for item in request.documents]
        check_paragraphs(documents, limits, "document")
        return Prepared(documents, {"on_duplicate": request.on_duplicate}, [])
    if kind == "batch":
        if len(request.queries) > limits.max_queries:
            raise too_large(f"{len(request.queries):,} queries; at most {limits.max_queries:,} in one request")
        documents = [q.document() for q in request.queries]
        check_paragraphs(documents, limits, "query")
        return Prepared(documents, query_options(request, limits), [q.paragraphs is not None for q in request.queries])
    document = request.document()
    check_paragraphs([document], limits, "query" if kind == "query" else "text")
    options = query_options(request, limits) if kind == "query" else {}
    return Prepared([document], options, [request.paragraphs is not None])


def _check_lines(kind: Kind, data: Any, limits: Limits) -> None:
    """A text's paragraphs are at most its lines: a request with more lines than ``max_request_lines``
    is refused before its texts are split (four million one-character lines cost seconds to split)."""
    if not isinstance(data, dict):
        return
    items = data.get("queries") if kind == "batch" else data.get("documents") if kind == "add" else [data]
    lines = 0
    for item in items if isinstance(items, list) else ():
        text = item.get("text") if isinstance(item, dict) else None
        if isinstance(text, str):
            lines += text.count("\n") + text.count("\r") + 1
        elif isinstance(text, list) or (isinstance(item, dict) and isinstance(item.get("paragraphs"), list)):
            lines += len(text if isinstance(text, list) else item["paragraphs"])
    if lines > limits.max_request_lines:
        raise too_large(f"the request's texts hold {lines:,} lines; at most {limits.max_request_lines:,}")


def answer(kind: Kind, prepared: Prepared, index: Index, limits: Limits) -> Any:
    """What a read request answers (not rendered)."""
    if kind == "repeats":
        return repeats_dict(index, prepared.documents[0])
    results = run_queries(index, prepared.documents, prepared.options, prepared.with_text, limits)
    return results[0] if kind == "query" else {"results": results}


# -- the worker process ---------------------------------------------------------------------------------------

_INDEX: Index | None = None


def _start_worker(path: str, server: int, memory: int) -> None:
    """In a worker: cap its memory (its heap and private mappings: the index's segment files mapped
    read-only do not count), open the index read-only, and end when the server is gone (a worker busy
    with a big request must not outlive a server killed with -9)."""
    global _INDEX
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(server, 0)
            except OSError:
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="neardup-watch-server").start()
    _INDEX = Index.open(path)


def _in_worker(kind: Kind, name: str, size: int, limits: Limits) -> tuple[str, Any]:
    """A large request, whole, in the worker: ("bytes", the rendered answer), ("add", Prepared) for
    the writer, or ("error", the refusal)."""
    memory = shared_memory.SharedMemory(name)
    try:
        assert memory.buf is not None
        body = bytes(memory.buf[:size])
    finally:
        memory.close()
    try:
        prepared = prepare(kind, body, limits)
        if kind == "add":
            return "add", prepared
        assert _INDEX is not None, "worker not started"
        return "bytes", render(answer(kind, prepared, _INDEX, limits))
    except ApiError as err:
        return "error", (err.status, err.code, err.message, err.detail)
    except MemoryError:
        return "error", (413, "too_large", "this request needs more memory than the server gives one request "
                                           f"({limits.large_worker_memory >> 20:,} MB); send less text", None)
    except NearDupError as err:
        refusal = library_error(err)
        return "error", (refusal.status, refusal.code, refusal.message, refusal.detail)


class LargeRequests:
    """The worker processes of one server (started on the first large request)."""

    def __init__(self, path: str, limits: Limits) -> None:
        self.path, self.limits = path, limits
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._gate = Gate(limits.large_workers + limits.max_waiting_large)

    def pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    self.limits.large_workers, mp_context=get_context("forkserver"), initializer=_start_worker,
                    initargs=(self.path, os.getpid(), self.limits.large_worker_memory))
            return self._pool

    async def run(self, kind: Kind, body: bytearray) -> tuple[str, Any]:
        """Hand ``body`` to a worker (a megabyte at a time into shared memory, so the GIL changes hands
        between copies) and wait for its answer. At most ``large_workers + max_waiting_large``
        requests are in the workers' hands at once (503 beyond), counted until a worker is done with
        one — a client that leaves does not free a worker still busy with its request."""
        if not self._gate.enter():
            raise busy("large requests")
        admitted = True
        memory = shared_memory.SharedMemory(create=True, size=max(1, len(body)))
        try:
            step, shared = 1 << 20, memory.buf
            assert shared is not None
            with memoryview(body) as view:   # released here: the body is cleared after the answer
                for start in range(0, len(body), step):
                    shared[start:start + step] = view[start:start + step]
            future = self._submit(kind, memory.name, len(body))
            future.add_done_callback(self._gate.leave)
            admitted = False
            pool = self._pool
            try:
                return await asyncio.wrap_future(future)
            except concurrent.futures.BrokenExecutor:
                if pool is not None:
                    self._discard(pool)   # the next large request starts a new worker
                raise ApiError(500, "worker_lost", "the worker process answering this request ended (killed, "
                                                   "or out of memory in native code); nothing was changed") from None
        finally:
            if admitted:
                self._gate.leave()
            memory.close()
            memory.unlink()

    def _submit(self, kind: Kind, name: str, size: int) -> concurrent.futures.Future[tuple[str, Any]]:
        """The request handed to a worker; a pool found broken before it (a worker killed while idle)
        is replaced first."""
        pool = self.pool()
        try:
            return pool.submit(_in_worker, kind, name, size, self.limits)
        except concurrent.futures.BrokenExecutor:
            self._discard(pool)
            return self.pool().submit(_in_worker, kind, name, size, self.limits)

    def _discard(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                for process in list(getattr(self._pool, "_processes", {}).values()):
                    process.terminate()   # a worker busy with a big request would outlive the server
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


__all__ = ["Kind", "LargeRequests", "Prepared", "answer", "prepare"]
