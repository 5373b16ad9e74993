"""How a refusal reaches the client: :class:`ApiError`, rendered as ``{"error": CODE, "message": TEXT}``
with the status that says whose fault it is."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi.responses import Response

from neardup.errors import (
    ConfigError,
    IndexFormatError,
    IndexLockedError,
    InputError,
)
from neardup.service.models import SURROGATE

log = logging.getLogger(__name__)


JSON_TYPE = "application/json"


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
        return Response(render(body), self.status, headers=self.headers, media_type=JSON_TYPE)


def busy(what: str) -> ApiError:
    return ApiError(503, "busy", f"too many {what} waiting; retry shortly", {"Retry-After": "1"})


def not_found(id: str) -> ApiError:
    return ApiError(404, "not_found", f"no document {id!r} in the index")


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message)


def library_error(err: Exception) -> ApiError:
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
        return SURROGATE.sub("\ufffd", text).encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
