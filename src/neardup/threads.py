"""Where stages run on one machine: threads that share one address space.

The stages' heavy parts (the fingerprint kernel, band keys, grouping, verification) release
the GIL, so threads keep every core busy without copying a batch's results between
processes. Results always come back in input order, so the number of threads never changes
an answer.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def resolve_workers(workers: int | None) -> int:
    """``None`` or 0: one thread per core; otherwise at least 1."""
    if not workers:
        return max(1, os.cpu_count() or 1)
    return max(1, int(workers))


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int,
                in_flight: int | None = None) -> Iterator[tuple[T, R]]:
    """``(item, function(item))`` in input order, computed on ``workers`` threads with at most
    ``in_flight`` items (default two per thread) started ahead, so memory stays bounded."""
    if workers <= 1:
        for item in items:
            yield item, function(item)
        return
    limit = in_flight or 2 * workers
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="neardup") as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        try:
            for item in items:
                pending.append((item, pool.submit(function, item)))
                if len(pending) >= limit:
                    done, job = pending.popleft()
                    yield done, job.result()
            while pending:
                done, job = pending.popleft()
                yield done, job.result()
        finally:  # stopped early: drop what has not started
            for _, job in pending:
                job.cancel()


def parallel_map(function: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """``[function(item) for item in items]`` on ``workers`` threads."""
    return [result for _, result in ordered_map(function, items, workers)]


#: Text in one batch of work, at most (plus one record): with a batch at each worker and as many
#: waiting, the text in flight is a few times this, whatever the records' sizes.
BATCH_TEXT_BYTES = 32 << 20


def batched(items: Iterable[T], size: int, *, weight: Callable[[T], int] | None = None,
            budget: int = 0) -> Iterator[list[T]]:
    """Lists of ``size`` consecutive items (the last one shorter) — or fewer, with ``weight``, once
    their weights reach ``budget``: a batch of a few huge records costs what a batch of many small
    ones does, not ``size`` times the largest."""
    batch: list[T] = []
    held = 0
    for item in items:
        batch.append(item)
        if weight is not None:
            held += weight(item)
        if len(batch) >= size or (weight is not None and held >= budget):
            yield batch
            batch, held = [], 0
    if batch:
        yield batch
