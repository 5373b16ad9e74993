"""The ASGI layer in front of FastAPI: requests refused from their heads where the body is not needed,
bodies counted in a budget as they arrive and held to a deadline, security headers on every answer
and the page's content security policy."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neardup.service.errors import ApiError, busy, too_large
from neardup.service.limits import Limits

_PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class BodyBudget:
    """Bytes of request bodies held at once — all connections together (``total``), and those of one
    client address (``per_client``) — counted as they arrive, from a body's first byte past
    ``free`` (small bodies are not counted: the connection cap bounds them) to its answer sent.
    A body that would pass either is refused at once (503): a client holding its share with slow
    uploads never makes another client wait."""

    def __init__(self, total: int, per_client: int, free: int) -> None:
        self.total, self.per_client, self.free = total, per_client, free
        self.used = 0
        self.clients: dict[str, int] = {}

    def take(self, client: str, size: int) -> bool:
        """Count ``size`` more bytes of ``client``'s body, if both budgets allow."""
        held = self.clients.get(client, 0)
        if self.used + size > self.total or held + size > self.per_client:
            return False
        self.used += size
        self.clients[client] = held + size
        return True

    def give_back(self, client: str, size: int) -> None:
        self.used -= size
        left = self.clients.get(client, 0) - size
        if left > 0:
            self.clients[client] = left
        else:
            self.clients.pop(client, None)


class _Refused(Exception):
    """A body stopped while it arrived: its answer."""

    def __init__(self, error: ApiError, busy: bool = False) -> None:
        super().__init__(error.message)
        self.error, self.busy = error, busy


class BodyGuard:
    """Before FastAPI reads anything: a request is refused from its head alone where the answer does
    not need its body — an unknown path (404), a method the path does not take or a write to a
    read-only server (405), a declared body over ``max_body`` (413), a body that is not JSON (415) —
    and the body is never read (the connection closes after the answer). A body that is read counts
    its bytes in the :class:`BodyBudget` as they arrive (503 when spent), must keep arriving (no
    pause over ``body_timeout``) and arrive whole within ``body_timeout`` + its declared size at
    ``min_body_rate`` (408). It is handed to the endpoint as ``scope["neardup.body"]`` and freed
    with the answer, or at once when it is refused."""

    def __init__(self, app: ASGIApp, router: Any, limits: Limits, writable: bool) -> None:
        self.app, self.router, self.limits, self.writable = app, router, limits, writable
        self.budget = BodyBudget(limits.body_budget, limits.client_body_budget, limits.inline_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        error = self._route_error(scope)
        if not chunked and length in (None, b"0"):
            await (_refuse(scope, send, error) if error is not None else self.app(scope, receive, send))
            return
        if length is not None and not chunked and not length.strip().isdigit():
            await _refuse(scope, send, ApiError(400, "bad_request", "Content-Length is not a number of bytes"))
            return
        declared = int(length) if length is not None and not chunked else None
        error = error or self._body_error(scope, declared, headers)
        if error is not None:
            await _refuse(scope, send, error)
        elif scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, _replay(b""), _closing(send))   # a body these do not read: left unread
        else:
            await self._with_body(scope, receive, send, declared)

    def _route_error(self, scope: Scope) -> ApiError | None:
        """404 or 405 from the path and method alone (FastAPI would say the same after the body)."""
        allowed: set[str] = set()
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                if not self.writable and scope["method"] in ("POST", "DELETE") \
                        and getattr(route, "path", "").startswith("/documents"):
                    return ApiError(405, "read_only", "this server is read-only (start it with --writable to add "
                                                      "or remove documents)", {"Allow": "GET, HEAD"})
                return None
            if match is Match.PARTIAL:
                allowed |= set(getattr(route, "methods", ()) or ())
        if allowed:
            return ApiError(405, "method_not_allowed", "method not allowed", {"Allow": ", ".join(sorted(allowed))})
        return ApiError(404, "not_found", "no such path (the API is described at /docs)")

    def _body_error(self, scope: Scope, declared: int | None, headers: dict[bytes, bytes]) -> ApiError | None:
        if declared is not None and declared > self.limits.max_body:
            return too_large(f"the body is over {self.limits.max_body:,} bytes")
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope["method"] not in ("GET", "HEAD", "DELETE", "OPTIONS") \
                and not (kind == b"application/json" or kind.endswith(b"+json")):
            return ApiError(415, "unsupported_media_type", "send the body as JSON, with Content-Type: "
                                                           "application/json")
        return None

    async def _with_body(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        limits, client = self.limits, (scope.get("client") or ("",))[0]
        body, counted = bytearray(), [0]
        deadline = limits.body_timeout + (declared if declared is not None else limits.max_body) / limits.min_body_rate
        try:
            try:
                await asyncio.wait_for(self._read(receive, declared, body, client, counted), deadline)
            except asyncio.TimeoutError:
                raise _Refused(ApiError(408, "timeout", f"the body did not arrive within {deadline:.0f} s")) from None
            scope["neardup.body"] = body
            await self.app(scope, _replay(b""), send)
        except _Refused as refused:
            body.clear()
            scope["neardup.busy"] = refused.busy   # no lingering: a busy server does not read what it refused
            await _refuse(scope, send, refused.error)
        finally:
            body.clear()   # freed now, whatever still refers to it (an exception's frames)
            self.budget.give_back(client, counted[0])

    async def _read(self, receive: Receive, declared: int | None, body: bytearray, client: str,
                    counted: list[int]) -> None:
        """The whole body into ``body``, its bytes past the free allowance counted in the budget
        (``counted``); a pause longer than ``body_timeout`` or a client gone is a timeout."""
        limits, more = self.limits, True
        while more:
            message = await asyncio.wait_for(receive(), limits.body_timeout)
            if message["type"] == "http.disconnect":
                raise asyncio.TimeoutError
            chunk = message.get("body", b"")
            size = len(body) + len(chunk)
            if size > limits.max_body or (declared is not None and size > declared):
                raise _Refused(too_large(f"the body is over {min(limits.max_body, declared or limits.max_body):,} "
                                         "bytes"))
            owed = max(0, size - self.budget.free) - counted[0]
            if owed > 0:
                if not self.budget.take(client, owed):
                    raise _Refused(busy("request bodies"), busy=True)
                counted[0] += owed
            body += chunk
            more = message.get("more_body", False)
        if declared is not None and len(body) < declared:
            raise asyncio.TimeoutError


def _closing(send: Send) -> Send:
    """``send``, with ``Connection: close`` on the answer (a body left unread cannot be skipped)."""
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)
    return sending


async def _refuse(scope: Scope, send: Send, error: ApiError) -> None:
    response = error.response()
    response.headers["Connection"] = "close"
    await response(scope, _replay(b""), send)


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
