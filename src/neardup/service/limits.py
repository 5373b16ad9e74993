"""What a request, a connection and the whole server may take: :class:`Limits` (no web framework
needed to read them: the command line builds them before the server starts)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from neardup.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """What one request, one connection and the whole server may take. Over a size limit: 413; too
    many waiting, or the bytes of bodies held spent: 503 with ``Retry-After``; too slow: 408.

    The bounds they give (``GET /stats`` lists them): the server holds at most ``body_budget`` bytes
    of request bodies (``client_body_budget`` for one address) plus ``inline_body`` a connection,
    and ``max_connections`` connections, each at most ~340 KB of unread bytes (uvicorn pauses
    reading); a request costs work and memory in proportion to its bytes, a large one in a worker
    process capped at ``large_worker_memory``; an answer is at most ``max_answer`` bytes."""

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
    #: Lines of all texts of one request (a text's paragraphs are at most its lines): refused before
    #: the texts are split into paragraphs.
    max_request_lines: int = 400_000
    #: Largest ``top``.
    max_top: int = 1000
    #: ``top`` when a request gives none (a story with a thousand copies answers its 100 best unless
    #: more are asked for).
    default_top: int = 100
    #: Characters of an id.
    max_id_length: int = 1024
    #: Bytes of one answer (matches with the texts they share, a stored document): 413 above it.
    max_answer: int = 64 << 20
    #: Read requests waiting for a reader thread beyond those being served.
    max_waiting_reads: int = 64
    #: Write requests waiting for the writer beyond the one being served.
    max_waiting_writes: int = 16
    #: Large requests waiting for a worker process beyond those being served.
    max_waiting_large: int = 8
    #: Bytes of request bodies held at once, all connections together, and those of one client address
    #: (counted as they arrive, past the first ``inline_body`` bytes of each; 503 beyond).
    body_budget: int = 256 << 20
    client_body_budget: int = 64 << 20
    #: Bodies over this many bytes are parsed and answered in a worker process, not on a thread of the
    #: server (where their Python work would take the GIL from the event loop).
    inline_body: int = 64 << 10
    #: Worker processes for large requests, and the bytes of address space each may use.
    large_workers: int = 1
    large_worker_memory: int = 768 << 20
    #: Open connections, and those of one client address (503 beyond).
    max_connections: int = 1000
    max_client_connections: int = 200
    #: Seconds from a connection's first byte (or its last answer) to a whole request head (408 after).
    header_timeout: float = 10.0
    #: Seconds for a body: this, plus one a ``min_body_rate`` bytes declared (408 after).
    body_timeout: float = 10.0
    min_body_rate: int = 1 << 20

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name.endswith("_timeout"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                        or value <= 0:
                    raise ConfigError(f"server limit {name} must be a positive number of seconds, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"server limit {name} must be a positive integer, got {value!r}")
        if self.default_top > self.max_top:
            raise ConfigError(f"server limit default_top ({self.default_top}) must be at most max_top "
                              f"({self.max_top})")
        for name in ("body_budget", "client_body_budget"):
            if getattr(self, name) < self.max_body:
                raise ConfigError(f"server limit {name} ({getattr(self, name):,}) must be at least max_body "
                                  f"({self.max_body:,}): a body of max_body bytes could never be read")


__all__ = ["Limits"]
