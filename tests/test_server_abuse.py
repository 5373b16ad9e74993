"""Clients that would stall the server for everyone: silent and slow connections, heads too large,
bodies too large, too slow or too many, one client taking every connection, requests that need
more memory than one request may have, a worker killed — each gets a clear JSON refusal and the
server keeps answering everyone else. These run a real uvicorn server on loopback and speak raw
HTTP/1.1 over sockets, since the test client does not go through the connection layer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:  # the serve extra; CI must have it
    import uvicorn  # noqa: F401
except ImportError as missing:
    if os.environ.get("CI"):
        raise
    pytest.skip(f"the server needs the serve extra: pip install 'neardup[serve]' ({missing})", allow_module_level=True)

from fastapi.testclient import TestClient

from neardup.service.app import create_app
from neardup.service.limits import Limits
from neardup.service.protocol import MAX_HEAD
from serving import ROOT, STORY, LiveServer, article, build_index, call

HEAD = b"Host: test\r\nContent-Type: application/json\r\n"


def connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or resets it after the answer)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(1 << 16):
            data += chunk
    sock.close()
    return data


def answer_of(raw: bytes) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON body or None) of one raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def exchange(server: LiveServer, request: bytes) -> tuple[int, dict[str, str], Any]:
    sock = connect(server)
    sock.sendall(request)
    return answer_of(read_all(sock))


@pytest.fixture(scope="module")
def index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_index(tmp_path_factory.mktemp("abuse") / "wire.idx")


@pytest.fixture()
def strict(index_path: Path) -> Iterator[LiveServer]:
    """A read-only server with short deadlines and small caps."""
    limits = Limits(header_timeout=0.5, body_timeout=0.5, min_body_rate=1 << 20, max_client_connections=3,
                    max_body=64 << 10, body_budget=64 << 10)
    with LiveServer(create_app(index_path, limits=limits)) as server:
        yield server


def test_a_silent_or_slow_client_gets_408_while_others_are_served(strict: LiveServer) -> None:
    """A connection that says nothing, or sends half a head, is answered 408 and closed after
    ``header_timeout``; meanwhile a normal client is answered."""
    silent, slow = connect(strict), connect(strict)
    slow.sendall(b"GET /health HTTP/1.1\r\nHost: te")
    assert call(strict.url + "/health") == (200, {"status": "ok", "documents": 27})
    for sock in (silent, slow):
        status, _, body = answer_of(read_all(sock))
        assert status == 408 and body["error"] == "timeout"


def test_a_head_too_large_is_431_and_one_that_is_not_http_400(strict: LiveServer) -> None:
    status, _, body = exchange(strict, b"GET /health HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * (MAX_HEAD * 20)
                               + b"\r\n\r\n")
    assert status == 431 and body["error"] == "head_too_large"
    status, _, body = exchange(strict, b"HELLO THERE\r\n\r\n")
    assert status == 400 and body["error"] == "bad_request"
    status, _, body = exchange(strict, b"GET /health HTTP/1.1\r\n\r\n")
    assert status == 400 and "Host" in body["message"]


def test_a_body_over_the_limit_sent_whole_still_reads_its_413(strict: LiveServer) -> None:
    """The client writes its whole body before reading: the refusal, sent from the head, still
    reaches it (the server reads and discards the rest for a moment before closing)."""
    body = json.dumps({"text": "word " * 40_000}).encode()
    status, headers, answer = exchange(strict, b"POST /query HTTP/1.1\r\n" + HEAD +
                                       b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert status == 413 and answer["error"] == "too_large" and headers["connection"] == "close"


def test_a_body_that_does_not_arrive_in_time_is_408(strict: LiveServer) -> None:
    status, _, body = exchange(strict, b"POST /query HTTP/1.1\r\n" + HEAD + b"Content-Length: 1000\r\n\r\n{\"te")
    assert status == 408 and body["error"] == "timeout"
    assert call(strict.url + "/health")[0] == 200


def test_one_client_cannot_take_every_connection(strict: LiveServer) -> None:
    """Beyond ``max_client_connections`` open connections from one address, a new one is 503 with
    Retry-After; closing them gives the places back."""
    held = [connect(strict) for _ in range(3)]
    status, headers, body = exchange(strict, b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
    assert status == 503 and body["error"] == "busy" and headers["retry-after"] == "1"
    for sock in held:
        sock.close()
    for _ in range(200):   # the server sees the closes when its loop turns: ask until it has
        status, _, _ = exchange(strict, b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        if status == 200:
            break
    assert status == 200


def test_bodies_beyond_a_clients_share_are_503_and_others_are_served(index_path: Path) -> None:
    """Body bytes count as they arrive (past the first ``inline_body`` of each). While one address's
    slow uploads hold its share (``client_body_budget``), its next large body is refused at once
    (503) — but its small requests, and another address's large body, are answered."""
    limits = Limits(max_body=8000, inline_body=1000, body_budget=100_000, client_body_budget=8000, body_timeout=60)
    with LiveServer(create_app(index_path, limits=limits)) as server:
        holder = connect(server)
        holder.sendall(b"POST /query HTTP/1.1\r\n" + HEAD + b"Content-Length: 8000\r\n\r\n" + b" " * 7000)
        body = json.dumps({"text": STORY[:3000]}).encode()
        assert len(body) > limits.inline_body
        request = b"POST /query HTTP/1.1\r\n" + HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
        for _ in range(100):   # until the holder's bytes have been read and counted
            status, headers, answer = exchange(server, request)
            if status == 503:
                break
        assert status == 503 and answer["error"] == "busy" and headers["retry-after"] == "1"
        small = json.dumps({"text": "a short query"}).encode()
        assert exchange(server, b"POST /query HTTP/1.1\r\n" + HEAD + b"Content-Length: %d\r\n\r\n" % len(small)
                        + small)[0] == 200
        host, port = server.url.removeprefix("http://").split(":")
        other = socket.create_connection((host, int(port)), timeout=60, source_address=("127.0.0.2", 0))
        other.sendall(request)
        assert answer_of(read_all(other))[0] == 200
        holder.close()


def test_head_answers_every_read_route_with_the_get_headers_and_no_body(index_path: Path) -> None:
    with LiveServer(create_app(index_path)) as server:
        for path in ("/health", "/stats", "/documents/wire-original", "/documents/wire-original/copies",
                     "/documents/nobody"):
            get = exchange(server, f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            sock = connect(server)
            sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            raw = read_all(sock)
            head_status, head_headers, _ = answer_of(raw)
            assert raw.endswith(b"\r\n\r\n"), path     # no body
            assert head_status == get[0], path
            assert head_headers["content-type"] == "application/json", path
            if head_status == 200 and path != "/health":
                assert int(head_headers["content-length"]) == len(json.dumps(get[2], separators=(",", ":"),
                                                                              ensure_ascii=False).encode()), path


def test_a_large_request_is_answered_in_a_worker_as_a_small_one_is_inline(index_path: Path) -> None:
    """Bodies over ``inline_body`` are answered in a worker process: the same answer."""
    with TestClient(create_app(index_path)) as client:
        inline = client.post("/query", json={"text": STORY}).json()
    with LiveServer(create_app(index_path, limits=Limits(inline_body=1024))) as server:
        status, large = call(server.url + "/query", "POST", {"text": STORY})
        batch_status, batch = call(server.url + "/query/batch", "POST", {"queries": [{"text": STORY}] * 2})
    assert status == 200 and large == inline
    assert batch_status == 200 and batch["results"] == [inline, inline]


def test_a_batch_asking_for_many_matches_is_answered_in_a_worker(index_path: Path) -> None:
    """A small body asking for more than INLINE_MATCHES matches (queries × top) runs in a worker
    process, away from the event loop: the same answers as each query alone on a reader thread."""
    from neardup.service.workers import INLINE_MATCHES

    with TestClient(create_app(index_path)) as client:
        alone = client.post("/query", json={"text": STORY, "top": INLINE_MATCHES}).json()
        batch = client.post("/query/batch", json={"queries": [{"text": STORY}] * 2, "top": INLINE_MATCHES})
        service = client.app.state.service   # type: ignore[attr-defined]
        assert service._large._pool is not None   # the worker was started for it
    assert batch.status_code == 200 and batch.json()["results"] == [alone, alone]


def test_a_request_needing_more_memory_than_a_worker_has_is_413_and_the_server_goes_on(index_path: Path) -> None:
    """Three million '㌀' expand to twelve million characters when normalised: more than a worker
    capped at 300 MB can hold. The request is refused (413); the next ones are answered."""
    limits = Limits(inline_body=1024, large_worker_memory=300 << 20, max_body=32 << 20)
    with LiveServer(create_app(index_path, limits=limits)) as server:
        status, body = call(server.url + "/query", "POST", {"text": "\u3300" * 3_000_000})
        assert status == 413 and body["error"] == "too_large" and "memory" in body["message"]
        assert call(server.url + "/health")[0] == 200
        status, body = call(server.url + "/query", "POST", {"text": STORY})
        assert status == 200 and body["matches"]


def test_a_worker_killed_is_replaced(index_path: Path) -> None:
    """A worker process that dies (killed, or aborted in native code) does not take large requests
    down with it: the next one starts a new worker."""
    with LiveServer(create_app(index_path, limits=Limits(inline_body=1024))) as server:
        assert call(server.url + "/query", "POST", {"text": STORY})[0] == 200
        pool = server.server.config.app.state.service._large._pool
        for process in list(pool._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
            process.join()
        status, body = call(server.url + "/query", "POST", {"text": STORY})
        assert status == 200 and body["matches"]


def test_strict_types_in_requests(index_path: Path) -> None:
    """``top`` must be an integer and ``exclude_self`` a boolean: "5", 5.0 and "yes" are 422."""
    with TestClient(create_app(index_path)) as client:
        for bad in ({"top": "5"}, {"top": 5.5}, {"exclude_self": "yes"}, {"exclude_self": 1}, {"threshold": "0.5"}):
            response = client.post("/query", json={"text": "a story", **bad})
            assert response.status_code == 422, bad
        assert client.post("/query", json={"text": "a story", "top": 5, "exclude_self": True}).status_code == 200


def test_an_id_with_an_encoded_slash_and_a_route_word_is_a_document(tmp_path: Path) -> None:
    """``GET /documents/a%2Fcopies`` is the document 'a/copies', not the copies of 'a'."""
    path = build_index(tmp_path / "ids.idx", [article("a/copies"), article("a")])
    with TestClient(create_app(path)) as client:
        response = client.get("/documents/a%2Fcopies")
        assert response.status_code == 200 and response.json()["id"] == "a/copies"
        copies = client.get("/documents/a/copies")
        assert copies.status_code == 200 and "matches" in copies.json()


@pytest.mark.parametrize("option", [["--port", "99999"], ["--port", "-1"], ["--max-body-mb", "nan"],
                                    ["--max-body-mb", "inf"], ["--max-body-mb", "0"], ["--readers", "0"],
                                    ["--limit", "header_timeout=nan"], ["--limit", "max_connections=0"],
                                    ["--limit", "no_such=3"], ["--limit", "max_top=lots"]])
def test_serve_refuses_options_out_of_range_as_usage_errors(index_path: Path, option: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "neardup", "serve", str(index_path), *option],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "error:" in done.stderr and "Traceback" not in done.stderr


def test_the_limit_names_in_serve_help_are_the_limits() -> None:
    from dataclasses import fields

    from neardup.cli.serve import _limit_help
    assert sorted(_limit_help().replace(",", " ").split()) == sorted(field.name for field in fields(Limits))


def test_limits_from_the_command_line() -> None:
    import argparse

    from neardup.cli.serve import limits_of
    limits = limits_of(argparse.Namespace(max_body_mb=300.0, limit=["header_timeout=2.5", "max-connections=50"]))
    assert limits.max_body == 300 << 20 and limits.body_budget >= limits.max_body
    assert limits.header_timeout == 2.5 and limits.max_connections == 50


def test_head_of_the_page_is_the_page_without_its_body(index_path: Path) -> None:
    with LiveServer(create_app(index_path)) as server:
        sock = connect(server)
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = read_all(sock)
    status, headers, _ = answer_of(raw)
    assert status == 200 and raw.endswith(b"\r\n\r\n") and headers["content-type"].startswith("text/html")
    assert "content-security-policy" in headers


def test_an_answer_over_max_answer_is_413_not_a_server_out_of_memory(index_path: Path) -> None:
    """An answer is bounded by bytes, not by ``top``: a batch whose matches (with the texts they
    share) would exceed ``max_answer`` is refused while it is built; a smaller one is answered."""
    limits = Limits(max_answer=200_000)
    with TestClient(create_app(index_path, limits=limits)) as client:
        one = client.post("/query", json={"text": STORY})
        assert one.status_code == 200 and len(one.content) < 200_000
        times = 200_000 // len(one.content) + 2
        many = client.post("/query/batch", json={"queries": [{"text": STORY}] * times})
        assert many.status_code == 413 and many.json()["error"] == "too_large"
        assert "answer" in many.json()["message"]
