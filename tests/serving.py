"""What the server tests share: the example corpus as an index, documents of their own words, a real
uvicorn server on a loopback port, and a request made with the standard library."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from neardup import Index
from neardup.service.app import listen

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STORY = (EXAMPLES / "query-story.txt").read_text(encoding="utf-8")
RECALL_COPIES = {"recall-original", "recall-metro-pulse", "recall-riverbend-times", "recall-daily-ledger",
                 "recall-coastal-herald"}
CLIENT_ERRORS = {400, 404, 405, 409, 413, 415, 422}


# -- fixtures and helpers ------------------------------------------------------------------------------

def wire_records() -> list[dict[str, Any]]:
    with (EXAMPLES / "wire.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    page = (EXAMPLES / "repeated-page.txt").read_text(encoding="utf-8")
    return records + [{"id": "repeated-page", "text": page, "source": "Example Scrape", "date": "2026-03-30"}]


def build_index(path: Path, records: list[dict[str, Any]] | None = None, *, keep_text: bool = True) -> Path:
    """An index folder holding the example corpus (and the repeated page)."""
    with Index.open(str(path), writable=True, keep_text=keep_text) as index:
        index.add(records if records is not None else wire_records())
    return path


def article(id: str, n: int = 8, **metadata: Any) -> dict[str, Any]:
    """A document of its own words: nothing else in the corpus shares them."""
    paragraphs = [f"Paragraph {p} of {id} reports that the {id} council met on day {p} and agreed on item "
                  f"{p * 7 + len(id)} with a vote of {p + 3} to {p + 1} after a long debate about {id}."
                  for p in range(n)]
    return {"id": id, "text": "\n".join(paragraphs), **metadata}


class LiveServer:
    """uvicorn serving an app on a free loopback port, in a thread."""

    def __init__(self, app: Any, limits: Any = None) -> None:
        import uvicorn

        from neardup.service.protocol import server_config

        self.sock = listen("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(server_config(app, limits or app.state.service.limits))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def call(url: str, method: str = "GET", body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    """(status, decoded JSON) of one request with the standard library (no client state shared)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def error_of(response: Any) -> str:
    body = response.json()
    assert set(body) >= {"error", "message"}, body
    assert isinstance(body["message"], str) and body["message"]
    return str(body["error"])
