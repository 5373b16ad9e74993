"""Where requests run: a pool of reader threads, each with its own read-only snapshot of the index, and
one writer thread that commits adds in order (adds waiting together share one transaction); a gate
in front of each refuses work beyond what may wait (503 with ``Retry-After``)."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.responses import Response

from neardup.document import Document
from neardup.errors import (
    ConfigError,
)
from neardup.index.index import Index, OnDuplicate
from neardup.service.answers import add_documents, add_together
from neardup.service.errors import JSON_TYPE, ApiError, busy, render
from neardup.service.gate import Gate
from neardup.service.limits import Limits
from neardup.service.offload import Kind, LargeRequests, answer, prepare

T = TypeVar("T")


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
        self._reads = Gate(self.readers + self.limits.max_waiting_reads)
        self._writes = Gate(1 + self.limits.max_waiting_writes)
        self._large = LargeRequests(self.path, self.limits)
        self._prepare_pool = ThreadPoolExecutor(2, thread_name_prefix="neardup-prepare")
        self._health_pool = ThreadPoolExecutor(1, thread_name_prefix="neardup-health")
        self._health: tuple[float, bytes] = (-1.0, b"")

    def close(self) -> None:
        self._large.close()
        self._prepare_pool.shutdown(wait=True)
        self._health_pool.shutdown(wait=True)
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

    async def health(self) -> Response:
        """``/health`` from its own thread, at most every half second: it answers while every reader
        is busy."""
        at, body = self._health
        if time.monotonic() - at > 0.5:
            loop = asyncio.get_running_loop()
            count = await loop.run_in_executor(self._health_pool, lambda: len(self.reader()))
            body = render({"status": "ok", "documents": count})
            self._health = (time.monotonic(), body)
        return Response(body, media_type=JSON_TYPE)

    async def request(self, kind: Kind, body: bytearray) -> Response:
        """A request with a body: prepared on a thread when small, answered whole in a worker process
        when large, or when it asks for more than :data:`INLINE_MATCHES` matches in all (see
        :mod:`neardup.service.offload`); adds go to the writer."""
        if kind == "add":
            self.writer()
        if len(body) <= self.limits.inline_body:
            loop = asyncio.get_running_loop()
            prepared = await loop.run_in_executor(self._prepare_pool, prepare, kind, body, self.limits)
            if kind == "add":
                return await self.add(prepared.documents, prepared.options["on_duplicate"])
            if len(prepared.documents) * prepared.options.get("top", 0) <= INLINE_MATCHES:
                return await self.read(lambda index: answer(kind, prepared, index, self.limits))
        status, payload = await self._large.run(kind, body)
        if status == "error":
            raise ApiError(payload[0], payload[1], payload[2], detail=payload[3])
        if status == "add":
            return await self.add(payload.documents, payload.options["on_duplicate"])
        return Response(payload, media_type=JSON_TYPE)

    async def add(self, documents: list[Document], on_duplicate: OnDuplicate) -> Response:
        """Add ``documents`` (one transaction, perhaps shared with adds waiting beside it)."""
        self.writer()
        assert self._write_thread is not None
        return await _run(self._write_thread.submit, self._writes, "writes",
                          _WriteJob(documents=documents, on_duplicate=on_duplicate))


#: Matches (queries × top) a request may ask for and still be answered on a reader thread of the
#: server: a batch asking for more is answered in a worker process, away from the event loop's GIL.
INLINE_MATCHES = 1000


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


async def _run(submit: Callable[[T], Future[bytes]], gate: Gate, what: str, job: T) -> Response:
    """``submit(job)`` if the gate admits it (else 503). A request whose client went away before
    its job started is dropped from the queue; the gate counts a job until it is done or dropped."""
    if not gate.enter():
        raise busy(what)
    try:
        future = submit(job)
    except BaseException:
        gate.leave()
        raise
    future.add_done_callback(gate.leave)
    return Response(await asyncio.wrap_future(future), media_type=JSON_TYPE)
