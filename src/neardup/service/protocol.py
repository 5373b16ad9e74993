"""The HTTP connection, with the deadlines and caps uvicorn does not have.

uvicorn (with h11, pinned: httptools reads request heads of any size) gives no deadline for a
request head and counts idle connections toward its one concurrency limit, answered in plain
text. :class:`GuardedProtocol` adds, for each connection:

* a **head deadline**: from the first byte (or from the end of the last answer) to a whole request
  head, ``header_timeout`` seconds — then 408, and the connection closes; an idle or byte-a-second
  client cannot hold a connection;
* **connection caps**: ``max_connections`` in all, ``max_client_connections`` for one address —
  beyond, 503 in JSON, never a shut-out of everyone else;
* **JSON refusals** where uvicorn answers by itself (a request that is not HTTP: 400; a head over
  ``MAX_HEAD`` bytes: 431);
* a **lingering close**: when a body the server refuses unread is still arriving, the connection is
  half-closed after the answer and the rest is discarded for a moment (at most ``_LINGER_BYTES``),
  so that a client that writes its whole body before reading still reads the refusal.

uvicorn pauses reading a connection once ~64 KB of body waits for the app, so a connection holds at
most a few hundred KB whatever it sends; bodies the app reads count against
:class:`~neardup.service.errors.Limits` ``.body_budget`` (:mod:`neardup.service.http`). This relies
on uvicorn's protocol class (``connections``, ``tasks``, ``cycle``, ``conn``); the server tests run
through it.
"""

from __future__ import annotations

import asyncio
import http
import json
import sys
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from neardup.service.limits import Limits

#: Seconds a refused body is read and discarded before the connection closes, and bytes at most.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 4 << 20
#: Bytes of a request head (request line and headers) still incomplete: 431 beyond. (A head that
#: arrives whole in one read, at most 64 KB, is parsed.)
MAX_HEAD = 16 << 10


def raw_json(status: int, code: str, message: str, extra: str = "") -> bytes:
    """A whole HTTP/1.1 response with a JSON error body, for the connection to write by itself."""
    body = json.dumps({"error": code, "message": message}).encode()
    return (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n").encode() + body


class _Lingering:
    """The transport as uvicorn sees it: closing it while the client is still sending a body the
    server refused half-closes instead (the answer, then end of file), discards what still comes for
    a moment, then closes."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedProtocol) -> None:
        self._transport, self._protocol, self.lingering = transport, protocol, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        transport, protocol = self._transport, self._protocol
        scope = protocol.scope or {}
        still_sending = protocol.conn.their_state is h11.SEND_BODY
        if still_sending and not self.lingering and not transport.is_closing() and not scope.get("neardup.busy"):
            try:
                transport.resume_reading()
                if transport.can_write_eof():
                    transport.write_eof()
            except OSError:   # the client is gone already (reset): nothing to linger for
                transport.close()
                return
            self.lingering = True
            protocol.loop.call_later(_LINGER_SECONDS, transport.close)
        else:
            transport.close()

    def abort_lingering(self) -> None:
        self._transport.close()


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a head deadline, connection caps and JSON refusals (a subclass is
    made for each server with its :class:`Limits`: :func:`protocol_for`)."""

    limits: ClassVar[Limits] = Limits()
    clients: ClassVar[dict[str, int]] = {}  # open connections by client address, for the whole server

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit_concurrency = None       # uvicorn's own check answers in plain text: ours answers JSON
        self._app, self.app = self.app, self._admit
        self._deadline: asyncio.TimerHandle | None = None
        self._host = ""
        self._discarded = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Lingering(transport, self))  # type: ignore[arg-type]
        self._host = self.client[0] if self.client else ""
        self.clients[self._host] = self.clients.get(self._host, 0) + 1
        if self.clients[self._host] > self.limits.max_client_connections \
                or len(self.connections) > 2 * self.limits.max_connections:
            transport.write(raw_json(503, "busy", "too many connections; retry shortly", "retry-after: 1\r\n"))
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        left = self.clients.get(self._host, 1) - 1
        if left > 0:
            self.clients[self._host] = left
        else:
            self.clients.pop(self._host, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if isinstance(transport, _Lingering) and transport.lingering:
            self._discarded += len(data)
            if self._discarded > _LINGER_BYTES:
                transport.abort_lingering()
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:   # between requests, or a head begun and not finished
            if self._deadline is None:
                self._arm()
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._deadline is None:
            self._arm()   # the next head has its deadline from now (uvicorn's keep-alive timer ends idling)

    def send_400_response(self, msg: str) -> None:
        error = sys.exc_info()[1]   # called by uvicorn while it handles h11's error, which says why
        if isinstance(error, h11.RemoteProtocolError) and error.error_status_hint == 431:
            self.transport.write(raw_json(431, "head_too_large", f"the request head is over {MAX_HEAD:,} bytes"))
        else:
            why = f": {error}" if isinstance(error, h11.RemoteProtocolError) else ""
            self.transport.write(raw_json(400, "bad_request", f"the request is not valid HTTP/1.1{why}"))
        self.transport.close()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.limits.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(raw_json(408, "timeout", "no whole request within "
                                                              f"{self.limits.header_timeout:g} s"))
            self.transport.close()

    async def _admit(self, scope: Any, receive: Any, send: Any) -> None:
        if len(self.connections) > self.limits.max_connections or len(self.tasks) > self.limits.max_connections:
            body = json.dumps({"error": "busy", "message": "too many connections; retry shortly"}).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                    (b"connection", b"close"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)


def protocol_for(limits: Limits) -> type[GuardedProtocol]:
    """The protocol class of one server: its limits, its own count of connections per client."""
    return type("NeardupProtocol", (GuardedProtocol,), {"limits": limits, "clients": {}})


def server_config(app: Any, limits: Limits, **options: Any) -> Any:
    """uvicorn's configuration for ``app``: h11 with :class:`GuardedProtocol`, no uvicorn concurrency
    limit (the protocol's caps answer in JSON), keep-alive 5 s."""

    settings: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on",
                                "timeout_keep_alive": 5, "timeout_graceful_shutdown": 10, **options}
    return uvicorn.Config(app, http=protocol_for(limits), limit_concurrency=None,
                          h11_max_incomplete_event_size=MAX_HEAD, **settings)
