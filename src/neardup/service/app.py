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
503 busy. Nothing a client sends gives a 500."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from dataclasses import asdict
from importlib import resources
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from neardup import __version__
from neardup.errors import (
    NearDupError,
)
from neardup.index.index import Index
from neardup.service.answers import (
    check_id,
    check_top,
    indexed_document,
    remove_document,
    repeats_dict,
    run_queries,
    stats_dict,
    stored_document,
)
from neardup.service.errors import ApiError, library_error, log
from neardup.service.http import BodyGuard, Headers
from neardup.service.limits import Limits
from neardup.service.models import (
    AddOut,
    AddRequest,
    BatchOut,
    BatchRequest,
    DocumentOut,
    HealthOut,
    QueryOut,
    QueryRequest,
    RemovedOut,
    RepeatsOut,
    RepeatsRequest,
    error_responses,
)
from neardup.service.protocol import server_config
from neardup.service.workers import Service

#: The page's files (``src/neardup/web``), served by name: nothing else in that folder is reachable.
_WEB_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
              "style.css": "text/css; charset=utf-8"}


class Console(Protocol):
    """Where :func:`serve` reports (the CLI's console)."""

    def say(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...


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
    _with_request_models(app)
    app.add_middleware(Headers)
    app.add_middleware(BodyGuard, router=app.router, limits=service.limits, writable=service.writable)
    return app


def _routes(app: FastAPI, service: Service) -> None:
    limits = service.limits
    id_path = Path(description="the document's id (may contain '/', or '%2F' where it ends in '/copies')")

    @app.get("/health", response_model=HealthOut, tags=["index"], summary="Is the index open?")
    async def health() -> Response:
        return await service.health()

    @app.get("/stats", tags=["index"], summary="Describe the index and the server's limits")
    async def stats() -> Response:
        return await service.read(lambda index: stats_dict(index, service.writable, service.readers, service.limits))

    @app.post("/query", response_model=QueryOut, tags=["query"], responses=error_responses(400, 413, 415, 422, 503),
              summary="Where else does this story appear?", openapi_extra=_body("QueryRequest"))
    async def query(request: Request) -> Response:
        return await service.request("query", _body_of(request))

    @app.post("/query/batch", response_model=BatchOut, tags=["query"], openapi_extra=_body("BatchRequest"),
              responses=error_responses(400, 413, 415, 422, 503), summary="Many stories in one look-up")
    async def query_batch(request: Request) -> Response:
        return await service.request("batch", _body_of(request))

    @app.post("/repeats", response_model=RepeatsOut, tags=["query"], responses=error_responses(400, 413, 415, 422, 503),
              summary="What repeats inside a text", openapi_extra=_body("RepeatsRequest"))
    async def repeats_of_text(request: Request) -> Response:
        return await service.request("repeats", _body_of(request))

    @app.post("/documents", response_model=AddOut, tags=["documents"], openapi_extra=_body("AddRequest"),
              responses=error_responses(400, 405, 409, 413, 415, 422, 503),
              summary="Index documents (one transaction; needs --writable)")
    async def add(request: Request) -> Response:
        return await service.request("add", _body_of(request))

    @app.get("/documents/{id:path}/copies", response_model=QueryOut, tags=["documents"],
             responses=error_responses(404, 409, 413, 422, 503), summary="Where else does this indexed story appear?")
    async def copies(request: Request, id: str = id_path, top: int | None = Query(None, ge=1),
                     threshold: float | None = Query(None, gt=0, le=1, allow_inf_nan=False),
                     min_containment: float | None = Query(None, ge=0, le=1, allow_inf_nan=False)) -> Response:
        if not _literal_suffix(request, b"/copies"):   # ".../a%2Fcopies": the document "a/copies"
            return await get_document(id + "/copies")
        options = {"top": check_top(top, limits), "threshold": threshold, "min_containment": min_containment,
                   "exclude_self": True}

        def work(index: Index) -> dict[str, Any]:
            document = indexed_document(index, check_id(id, limits))
            return run_queries(index, [document], options, [True], limits)[0]
        return await service.read(work)

    @app.get("/documents/{id:path}/repeats", response_model=RepeatsOut, tags=["documents"],
             responses=error_responses(404, 409, 503), summary="What repeats inside an indexed document")
    async def repeats_of_document(request: Request, id: str = id_path) -> Response:
        if not _literal_suffix(request, b"/repeats"):
            return await get_document(id + "/repeats")
        return await service.read(lambda index: repeats_dict(index, indexed_document(index, check_id(id, limits))))

    @app.get("/documents/{id:path}", response_model=DocumentOut, tags=["documents"],
             responses=error_responses(404, 503), summary="A stored document: text, paragraph spans, metadata")
    async def get_document(id: str = id_path) -> Response:
        return await service.read(lambda index: stored_document(index, check_id(id, limits)))

    @app.delete("/documents/{id:path}", response_model=RemovedOut, tags=["documents"],
                responses=error_responses(404, 405, 503), summary="Remove a document (needs --writable)")
    async def delete_document(id: str = id_path) -> Response:
        return await service.write(lambda index: remove_document(index, check_id(id, limits)), allow="GET, HEAD")

    _heads(app)


def _heads(app: FastAPI) -> None:
    """``HEAD`` for every ``GET`` route: the same answer without its body (left out of the OpenAPI
    document, which lists each path once)."""
    for route in list(app.router.routes):
        if isinstance(route, APIRoute) and route.methods == {"GET"}:
            app.add_api_route(route.path, route.endpoint, methods=["HEAD"], include_in_schema=False)


def _body_of(request: Request) -> bytearray:
    """The body :class:`~neardup.service.http.BodyGuard` read (empty when there was none)."""
    body = request.scope.get("neardup.body")
    return body if isinstance(body, bytearray) else bytearray()


def _literal_suffix(request: Request, suffix: bytes) -> bool:
    """Whether the path as sent ends in ``suffix`` itself (not in an id holding an encoded '/')."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    return bytes(raw).endswith(suffix)


def _body(model: str) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that reads its body itself (off the event loop)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model}"}}}}}


def _with_request_models(app: FastAPI) -> None:
    """The OpenAPI document with the request models the endpoints parse themselves."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (QueryRequest, BatchRequest, RepeatsRequest, AddRequest):
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _page(app: FastAPI) -> None:
    files = {name: (resources.files("neardup.service") / "web" / name).read_bytes() for name in _WEB_FILES}
    tags = {name: '"' + hashlib.sha256(data).hexdigest()[:16] + '"' for name, data in files.items()}

    def serve_file(name: str, request: Request) -> Response:
        headers = {"ETag": tags[name], "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == tags[name]:
            return Response(status_code=304, headers=headers)
        return Response(files[name], media_type=_WEB_FILES[name], headers=headers)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page(request: Request) -> Response:
        return serve_file("index.html", request)

    @app.api_route("/static/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static(name: str, request: Request) -> Response:
        if name not in files or name == "index.html":
            raise ApiError(404, "not_found", f"no file {name!r}")
        return serve_file(name, request)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> Response:
        return err.response()

    @app.exception_handler(NearDupError)
    async def neardup_error(request: Request, err: NearDupError) -> Response:
        return library_error(err).response()

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
    limits = limits or Limits()
    if max_body != limits.max_body:
        limits = Limits(**{**asdict(limits), "max_body": max_body, "body_budget": max(limits.body_budget, max_body),
                           "client_body_budget": max(limits.client_body_budget, max_body)})
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
    uvicorn.Server(server_config(app, limits)).run(sockets=[sock])


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


__all__ = ["Limits", "Service", "create_app", "serve"]
