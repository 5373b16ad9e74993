"""The ASGI layer in front of FastAPI: body limits and content types checked before a body is read,
security headers on every answer and the page's content security policy."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neardup.service.errors import ApiError, too_large

_PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


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
            await self._refuse(send, too_large(f"the body is over {self.max_body:,} bytes"))
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await self._refuse(send, too_large(f"the body is over {self.max_body:,} bytes"))
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
