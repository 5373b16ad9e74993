"""The HTTP service: every endpoint, every error status, durable adds, readers beside a writer.

In-process tests use Starlette's TestClient; the concurrency and crash tests run a real uvicorn
server (in a thread, or ``neardup serve`` in a subprocess killed with SIGKILL) on loopback.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:  # the serve extra; CI must have it (make test installs it), elsewhere say what is missing
    import fastapi  # noqa: F401
    import fastapi_offline  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as missing:
    if os.environ.get("CI"):
        raise
    pytest.skip(f"the server needs the serve extra: pip install 'neardup[serve]' ({missing})", allow_module_level=True)

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neardup import ConfigError, Document, Index
from neardup.service.app import create_app, listen
from neardup.service.limits import Limits
from neardup.service.workers import Service
from serving import (
    CLIENT_ERRORS,
    EXAMPLES,
    RECALL_COPIES,
    ROOT,
    STORY,
    LiveServer,
    article,
    build_index,
    call,
    error_of,
    wire_records,
)

# -- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wire_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_index(tmp_path_factory.mktemp("served") / "wire.idx")


@pytest.fixture(scope="module")
def client(wire_path: Path) -> Iterator[TestClient]:
    """A read-only server over the example corpus."""
    with TestClient(create_app(wire_path, readers=2)) as test_client:
        yield test_client


@pytest.fixture()
def writable(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """A writable server over a fresh copy of the example corpus."""
    path = build_index(tmp_path / "w.idx")
    with TestClient(create_app(path, writable=True, readers=2)) as test_client:
        yield test_client, path


# -- reading -------------------------------------------------------------------------------------------

def test_health_counts_the_documents(client: TestClient) -> None:
    """GET /health says ok and how many documents the index holds."""
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "documents": 27}


def test_query_finds_the_copies_with_metadata_scores_and_both_texts(client: TestClient) -> None:
    """POST /query returns every copy of the story, with outlet and date, containment both ways and the
    shared paragraphs quoted from both texts at their spans."""
    response = client.post("/query", json={"text": STORY})
    assert response.status_code == 200
    body = response.json()
    matches = {m["id"]: m for m in body["matches"]}
    assert set(matches) == RECALL_COPIES
    assert matches["recall-original"]["kind"] == "exact"
    assert matches["recall-riverbend-times"]["kind"] == "partial"
    assert matches["recall-daily-ledger"]["metadata"] == {"source": "Daily Ledger", "date": "2026-03-19"}
    stored = {r["id"]: r["text"] for r in wire_records()}
    for match in body["matches"]:
        assert set(match) == {"id", "kind", "jaccard", "jaccard_method", "containment", "metadata",
                              "shared_paragraphs"}
        assert set(match["containment"]) == {"query_in_match", "match_in_query"}
        assert 0 < match["jaccard"] <= 1
        assert match["shared_paragraphs"]
        for pair in match["shared_paragraphs"]:
            qs, qe = pair["query_span"]
            ms, me = pair["match_span"]
            assert pair["query_text"] == STORY[qs:qe]
            assert pair["match_text"] == stored[match["id"]][ms:me]
    spans = body["query"]["paragraphs"]
    assert len(spans) == 14 and body["query"]["id"] == "-" and "text" not in body["query"]
    assert body["query"]["metadata"] == {}
    kinds = [m["kind"] for m in body["matches"]]
    assert kinds == sorted(kinds, key=["exact", "near-duplicate", "partial"].index)


def test_query_as_paragraphs_returns_the_text_its_spans_refer_to(client: TestClient) -> None:
    """Given paragraphs, the query's spans refer to their join, which is returned with them."""
    paragraphs = [line for line in STORY.splitlines() if line.strip()]
    body = client.post("/query", json={"paragraphs": paragraphs, "id": "mine"}).json()
    assert body["query"]["id"] == "mine"
    text = body["query"]["text"]
    assert [text[s:e] for s, e in body["query"]["paragraphs"]] == paragraphs
    assert {m["id"] for m in body["matches"]} == RECALL_COPIES
    for match in body["matches"]:
        for pair in match["shared_paragraphs"]:
            assert pair["query_text"] == paragraphs[pair["query_paragraph"]]


def test_query_options_top_threshold_and_min_containment(client: TestClient) -> None:
    """top keeps the best k; a stricter threshold turns near-duplicates by Jaccard into partial copies;
    a higher min_containment drops the partial copies below it."""
    everything = [m["id"] for m in client.post("/query", json={"text": STORY}).json()["matches"]]
    assert [m["id"] for m in client.post("/query", json={"text": STORY, "top": 2}).json()["matches"]] == everything[:2]
    answer = client.post("/query", json={"text": STORY, "threshold": 0.99}).json()
    strict = {m["id"]: m["kind"] for m in answer["matches"]}
    assert strict == {"recall-original": "exact", "recall-metro-pulse": "near-duplicate",  # both containments >= 0.9
                      "recall-coastal-herald": "partial", "recall-daily-ledger": "partial",
                      "recall-riverbend-times": "partial"}
    transit = next(r["text"] for r in wire_records() if r["id"] == "transit-original")
    mixed = "\n".join(STORY.split("\n")[:6]) + "\n" + transit  # six paragraphs of one story, all of another
    found = {m: [x for x in client.post("/query", json={"text": mixed, "min_containment": m}).json()["matches"]]
             for m in (0.3, 0.9)}
    assert {x["id"] for x in found[0.3]} >= RECALL_COPIES
    assert found[0.9] and all(max(x["containment"].values()) >= 0.9 for x in found[0.9])
    assert not RECALL_COPIES & {x["id"] for x in found[0.9]}


def test_without_top_a_query_returns_at_most_default_top_matches(tmp_path: Path) -> None:
    """A text every document copies returns default_top matches when no top is given, not all of them."""
    records = [article(f"same-{i}") | {"text": article("same")["text"]} for i in range(12)]
    path = build_index(tmp_path / "same.idx", records)
    with TestClient(create_app(path, limits=Limits(max_top=8, default_top=5))) as client:
        assert len(client.post("/query", json={"text": article("same")["text"]}).json()["matches"]) == 5
        assert len(client.get("/documents/same-0/copies").json()["matches"]) == 5
        assert len(client.post("/query", json={"text": article("same")["text"], "top": 3}).json()["matches"]) == 3


def test_a_read_only_server_sees_what_another_process_commits(wire_path: Path, tmp_path: Path) -> None:
    """Served read-only while `neardup index` (here: a writable Index) adds and removes: the next
    request sees each commit."""
    import shutil

    path = tmp_path / "shared.idx"
    shutil.copytree(wire_path, path)
    with TestClient(create_app(path)) as client:
        assert client.get("/documents/late").status_code == 404
        with Index.open(str(path), writable=True) as writer:
            writer.add([article("late", source="Late Wire")])
            assert client.get("/documents/late").json()["metadata"] == {"source": "Late Wire"}
            assert client.post("/query", json={"text": article("late")["text"]}).json()["matches"][0]["id"] == "late"
            assert client.get("/health").json()["documents"] == 28
            writer.remove("late")
            assert client.get("/documents/late").status_code == 404
            assert client.post("/query", json={"text": article("late")["text"]}).json()["matches"] == []


def test_query_without_a_match_is_an_empty_list(client: TestClient) -> None:
    """A story nobody copied: 200 with no matches (not an error, not nothing)."""
    body = client.post("/query", json={"text": "A story about nothing that anyone in this corpus wrote."}).json()
    assert body["matches"] == []
    assert client.post("/query", json={"text": ""}).json()["matches"] == []


def test_query_with_exclude_self_leaves_out_the_document_named_by_the_id(client: TestClient) -> None:
    """exclude_self with the id of an indexed story asks where else it appears."""
    body = client.post("/query", json={"text": STORY, "id": "recall-original", "exclude_self": True}).json()
    assert {m["id"] for m in body["matches"]} == RECALL_COPIES - {"recall-original"}


def test_batch_answers_each_query_in_order(client: TestClient) -> None:
    """POST /query/batch returns one result per query, in the order asked."""
    harbour = next(r["text"] for r in wire_records() if r["id"] == "harbour-original")
    body = client.post("/query/batch", json={"queries": [{"text": STORY, "id": "a"}, {"text": "nothing here"},
                                                         {"paragraphs": harbour.split("\n"), "id": "c"}],
                                             "top": 3}).json()
    assert [r["query"]["id"] for r in body["results"]] == ["a", "-", "c"]
    assert body["results"][0]["matches"][0]["id"] == "recall-original"
    assert body["results"][1]["matches"] == []
    assert body["results"][2]["matches"][0]["id"] == "harbour-original"
    assert all(len(r["matches"]) <= 3 for r in body["results"])


def test_get_document_returns_text_paragraphs_and_metadata(client: TestClient) -> None:
    """GET /documents/{id} gives what `neardup show --json` prints."""
    body = client.get("/documents/recall-daily-ledger").json()
    record = next(r for r in wire_records() if r["id"] == "recall-daily-ledger")
    assert body["id"] == "recall-daily-ledger" and body["text"] == record["text"]
    assert body["metadata"] == {"source": "Daily Ledger", "date": "2026-03-19"}
    assert [body["text"][s:e] for s, e in body["paragraphs"]] == [p for p in record["text"].split("\n") if p.strip()]


def test_copies_of_an_indexed_story_leave_the_story_out(client: TestClient) -> None:
    """GET /documents/{id}/copies queries with the stored text, excluding the story itself."""
    body = client.get("/documents/recall-original/copies").json()
    assert {m["id"] for m in body["matches"]} == RECALL_COPIES - {"recall-original"}
    assert body["query"]["id"] == "recall-original"
    assert body["query"]["metadata"] == {"source": "Continental Newswire", "date": "2026-03-19"}
    text = body["query"]["text"]
    for match in body["matches"]:
        for pair in match["shared_paragraphs"]:
            assert pair["query_text"] == text[pair["query_span"][0]:pair["query_span"][1]]
    assert len(client.get("/documents/recall-original/copies", params={"top": 1}).json()["matches"]) == 1
    strict = client.get("/documents/recall-original/copies", params={"min_containment": 0.99}).json()["matches"]
    assert all(m["kind"] != "partial" or max(m["containment"].values()) >= 0.99 for m in strict)


def test_repeats_of_an_indexed_document_and_of_a_posted_text(client: TestClient) -> None:
    """GET /documents/{id}/repeats and POST /repeats find the page's doubled body (13 repeats)."""
    indexed = client.get("/documents/repeated-page/repeats").json()
    page = (EXAMPLES / "repeated-page.txt").read_text(encoding="utf-8")
    posted = client.post("/repeats", json={"text": page}).json()
    for body in (indexed, posted):
        assert body["repeated_paragraphs"] == 13 and body["duplicate_fraction"] == 0.5
        assert [g["paragraphs"] for g in body["groups"]][:3] == [[1, 14], [2, 15], [3, 16]]
        assert body["text"] == page and len(body["paragraph_spans"]) == body["paragraphs"] == 27
    assert client.get("/documents/recall-original/repeats").json()["repeated_paragraphs"] == 0


def test_stats_describe_the_index_and_the_limits(client: TestClient) -> None:
    """GET /stats: the index's figures, without the server's file system path, and the server's limits."""
    body = client.get("/stats").json()
    assert body["documents"] == 27 and body["path"] == "wire.idx"
    assert body["server"]["writable"] is False
    assert body["server"]["limits"]["max_documents"] == Limits().max_documents


def test_ids_with_slashes_and_other_characters_are_reachable(tmp_path: Path) -> None:
    """An id with '/', spaces, '?', '%' or non-ASCII is one path parameter, plain or percent-encoded."""
    from urllib.parse import quote

    ids = ["a/b", "archive/2026/03/story.txt", "with space", "odd?#%", "Überschrift—北京"]
    path = build_index(tmp_path / "ids.idx", [article(i) for i in ids])
    with TestClient(create_app(path)) as client:
        for id in ids:
            encoded = quote(id, safe="")
            assert client.get(f"/documents/{encoded}").json()["id"] == id
            assert client.get(f"/documents/{encoded}/copies").json()["query"]["id"] == id
            assert client.get(f"/documents/{encoded}/repeats").status_code == 200
        assert client.get("/documents/archive/2026/03/story.txt").json()["id"] == "archive/2026/03/story.txt"


def test_offsets_count_characters_beyond_the_basic_plane(tmp_path: Path) -> None:
    """Spans count Python characters (code points): a copy with emoji and astral CJK quotes right."""
    paragraphs = [f"𠀀 Story {i} 🎉 about the 𝒳 harbour strike and the union vote on the cranes, day {i} 😀."
                  for i in range(6)]
    path = build_index(tmp_path / "astral.idx", [{"id": "astral", "text": "\n".join(paragraphs)}])
    with TestClient(create_app(path)) as client:
        query = "Intro line that is new\n" + "\n".join(paragraphs)
        match = client.post("/query", json={"text": query}).json()["matches"][0]
        for pair in match["shared_paragraphs"]:
            assert pair["query_text"] == query[pair["query_span"][0]:pair["query_span"][1]]
            assert pair["match_text"] == paragraphs[pair["match_paragraph"]]


def test_metadata_that_json_cannot_hold_is_rendered_as_null(tmp_path: Path) -> None:
    """A NaN stored in metadata (from the Python API) comes back as null, never as invalid JSON."""
    path = build_index(tmp_path / "nan.idx", [article("n", score=float("nan"), fine=1.5)])
    with TestClient(create_app(path)) as client:
        response = client.get("/documents/n")
        assert response.status_code == 200
        assert json.loads(response.content)["metadata"] == {"score": None, "fine": 1.5}


def test_an_index_without_texts_answers_what_it_can(tmp_path: Path) -> None:
    """--no-text index: queries answer (match_text null), a stored document has no text, and the
    copies of an indexed story (which need its text) are 409."""
    path = build_index(tmp_path / "notext.idx", keep_text=False)
    with TestClient(create_app(path)) as client:
        match = client.post("/query", json={"text": STORY}).json()["matches"][0]
        assert match["shared_paragraphs"][0]["match_text"] is None
        assert match["shared_paragraphs"][0]["query_text"]
        assert client.get("/documents/recall-original").json()["text"] is None
        response = client.get("/documents/recall-original/copies")
        assert response.status_code == 409 and error_of(response) == "no_texts"


# -- the page and the API description -------------------------------------------------------------------

def test_the_page_and_its_files_are_served_with_a_content_security_policy(client: TestClient) -> None:
    """/ is the page; its script and style come from /static; nothing is loaded from elsewhere."""
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<label for="story"' in page.text and "http://" not in page.text and "https://" not in page.text
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert "https://" not in response.text
        again = client.get(f"/static/{name}", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
    for missing in ("/static/nope.js", "/static/index.html", "/static/..%2Fserver.py"):
        response = client.get(missing)
        assert response.status_code == 404 and error_of(response) == "not_found"


def test_openapi_describes_every_endpoint_and_docs_work_offline(client: TestClient) -> None:
    """/openapi.json lists every endpoint; /docs loads Swagger UI from this server, not a CDN."""
    spec = client.get("/openapi.json").json()
    assert {(path, method) for path, item in spec["paths"].items() for method in item} >= {
        ("/health", "get"), ("/stats", "get"), ("/query", "post"), ("/query/batch", "post"), ("/repeats", "post"),
        ("/documents", "post"), ("/documents/{id}", "get"), ("/documents/{id}", "delete"),
        ("/documents/{id}/copies", "get"), ("/documents/{id}/repeats", "get")}
    assert "413" in spec["paths"]["/query"]["post"]["responses"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    scripts = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", docs.text)
    assert scripts and not [s for s in scripts if s.startswith(("http://", "https://", "//"))]
    for asset in scripts:
        assert client.get(asset).status_code == 200


# -- writing ---------------------------------------------------------------------------------------------

def test_add_reports_and_the_documents_are_found_at_once(writable: tuple[TestClient, Path]) -> None:
    """POST /documents returns the add report; the new document is queryable and readable right away."""
    client, _ = writable
    response = client.post("/documents", json={"documents": [article("new-1", source="Test Wire", date="2026-04-01"),
                                                             article("new-2", n=3)]})
    assert response.status_code == 200
    assert response.json() == {"added": 2, "replaced": 0, "skipped": 0, "skipped_reasons": {}, "skipped_ids": [],
                               "documents": 29}
    assert client.get("/documents/new-1").json()["metadata"] == {"source": "Test Wire", "date": "2026-04-01"}
    matches = client.post("/query", json={"text": article("new-1")["text"]}).json()["matches"]
    assert matches[0]["id"] == "new-1" and matches[0]["kind"] == "exact"
    assert client.get("/health").json()["documents"] == 29


def test_add_skips_replaces_or_refuses_duplicates(writable: tuple[TestClient, Path]) -> None:
    """An id already indexed is skipped (and listed), replaced on request, or the whole request is
    refused with 409 and nothing added."""
    client, _ = writable
    skipped = client.post("/documents", json={"documents": [article("recall-original"), article("fresh"),
                                                            {"id": "empty", "text": "  ...  "}]}).json()
    assert skipped["added"] == 1 and skipped["skipped"] == 2
    assert skipped["skipped_reasons"] == {"duplicate id": 1, "no words": 1}
    assert {"id": "recall-original", "reason": "duplicate id"} in skipped["skipped_ids"]
    replaced = client.post("/documents", json={"documents": [article("recall-original", source="Replaced")],
                                               "on_duplicate": "replace"}).json()
    assert replaced["replaced"] == 1 and replaced["added"] == 0
    assert client.get("/documents/recall-original").json()["metadata"] == {"source": "Replaced"}
    refused = client.post("/documents", json={"documents": [article("other-new"), article("fresh")],
                                              "on_duplicate": "error"})
    assert refused.status_code == 409 and error_of(refused) == "conflict"
    assert client.get("/documents/other-new").status_code == 404


def test_integer_ids_are_kept_as_strings(writable: tuple[TestClient, Path]) -> None:
    """{"id": 17} is document "17", as in `neardup index`."""
    client, _ = writable
    response = client.post("/documents", json={"documents": [{"id": 17, "text": article("x")["text"]}]})
    assert response.json()["added"] == 1
    assert client.get("/documents/17").json()["id"] == "17"


def test_delete_removes_and_then_the_id_is_unknown(writable: tuple[TestClient, Path]) -> None:
    """DELETE /documents/{id} removes it from queries and reads; a second DELETE is 404."""
    client, _ = writable
    response = client.delete("/documents/recall-metro-pulse")
    assert response.status_code == 200 and response.json() == {"id": "recall-metro-pulse", "removed": True,
                                                               "documents": 26}
    assert "recall-metro-pulse" not in {m["id"] for m in client.post("/query", json={"text": STORY}).json()["matches"]}
    assert client.get("/documents/recall-metro-pulse").status_code == 404
    again = client.delete("/documents/recall-metro-pulse")
    assert again.status_code == 404 and error_of(again) == "not_found"


def test_acknowledged_adds_are_in_the_index_when_it_is_reopened(tmp_path: Path) -> None:
    """Every add the server acknowledged is committed: a new process's Index.open sees all of it,
    while the server is still running and after it stopped."""
    path = build_index(tmp_path / "durable.idx", [article("seed")])
    ids = [f"durable-{i}" for i in range(12)]
    with TestClient(create_app(path, writable=True)) as client:
        for i in range(0, len(ids), 3):
            assert client.post("/documents", json={"documents": [article(x) for x in ids[i:i + 3]]}).status_code == 200
        with Index.open(str(path)) as reopened:  # another reader, while the server runs
            assert all(x in reopened for x in ids)
    with Index.open(str(path)) as reopened:
        assert len(reopened) == 13 and all(reopened.get(x).text == article(x)["text"] for x in ids)


def test_acknowledged_adds_survive_kill_9_of_the_server(tmp_path: Path) -> None:
    """`neardup serve --writable` killed with SIGKILL while adding: every acknowledged document is there
    when the index is reopened, and the server starts again on it."""
    path = build_index(tmp_path / "killed.idx", [article("seed")])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "neardup", "serve", str(path), "--writable", "--port", "0"]

    def start() -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"at (http://[^/\s]+)/", line)
        if not found:
            process.kill()
            pytest.fail(f"neardup serve did not start: {line}{process.stderr.read()}")
        return process, found.group(1)

    process, url = start()
    acknowledged: list[str] = []
    stop = threading.Event()

    def add() -> None:
        for batch in range(1000):
            if stop.is_set():
                return
            ids = [f"k{batch}-{i}" for i in range(5)]
            try:
                status, _ = call(url + "/documents", "POST", {"documents": [article(x) for x in ids]}, timeout=10)
            except OSError:
                return
            if status == 200:
                acknowledged.extend(ids)

    adder = threading.Thread(target=add)
    adder.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stop.set()
    adder.join(timeout=30)
    assert len(acknowledged) >= 20
    with Index.open(str(path)) as reopened:
        missing = [x for x in acknowledged if x not in reopened]
    assert missing == []
    process, url = start()
    try:
        status, health = call(url + "/health")
        assert status == 200 and health["documents"] >= len(acknowledged) + 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM, 130)


# -- errors: never a 500 for anything a client sends ---------------------------------------------------------

@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/query", b"{not json", 400, "bad_json"),
    ("/query", b"\xff\xfe{}", 400, "bad_json"),
    ("/query", b"[" * 100_000 + b"]" * 100_000, 400, "bad_json"),
    ("/query", b'{"text": "a", "text": 5}', 422, "invalid"),
    ("/query", b"[]", 422, "invalid"),
    ("/query", b"{}", 422, "invalid"),
    ("/query", b'{"text": "a", "paragraphs": ["a"]}', 422, "invalid"),
    ("/query", b'{"text": 5}', 422, "invalid"),
    ("/query", b'{"paragraphs": "one string"}', 422, "invalid"),
    ("/query", b'{"paragraphs": ["a", 3]}', 422, "invalid"),
    ("/query", b'{"text": "a", "top": 0}', 422, "invalid"),
    ("/query", b'{"text": "a", "top": "many"}', 422, "invalid"),
    ("/query", b'{"text": "a", "top": 2.5}', 422, "invalid"),
    ("/query", b'{"text": "a", "threshold": 1.5}', 422, "invalid"),
    ("/query", b'{"text": "a", "threshold": 0}', 422, "invalid"),
    ("/query", b'{"text": "a", "threshold": NaN}', 422, "invalid"),
    ("/query", b'{"text": "a", "min_containment": -0.1}', 422, "invalid"),
    ("/query", b'{"text": "a", "min_containment": Infinity}', 422, "invalid"),
    ("/query", b'{"text": "a", "colour": "blue"}', 422, "invalid"),
    ("/query", b'{"text": "\\ud800 lone surrogate"}', 422, "invalid"),
    ("/query/batch", b'{"queries": [{"text": "a"}, {}]}', 422, "invalid"),
    ("/query/batch", b'{"queries": "a"}', 422, "invalid"),
    ("/repeats", b'{"text": null}', 422, "invalid"),
    ("/documents", b'{"documents": [{"id": "x"}]}', 422, "invalid"),
])
def test_malformed_requests_are_400_or_422(writable: tuple[TestClient, Path], path: str, body: bytes, status: int,
                                           code: str) -> None:
    """Unreadable JSON is 400; JSON that does not fit the request's schema is 422 naming the field."""
    client, _ = writable
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert error_of(response) == code


@pytest.mark.parametrize("document", [
    {"id": "", "text": "words words words"},
    {"id": True, "text": "words words words"},
    {"id": 1.5, "text": "words words words"},
    {"id": ["x"], "text": "words"},
    {"id": "x", "text": 5},
    {"id": "x", "text": ["a", None]},
    {"id": "x", "text": "\ud800"},
    {"id": "x\udfff", "text": "words"},
    {"id": "x", "text": "words", "source": "\udc80"},
])
def test_documents_that_cannot_be_stored_are_422(writable: tuple[TestClient, Path], document: dict[str, Any]) -> None:
    """Empty or non-string ids, non-text texts and lone surrogates are refused before anything is stored."""
    client, _ = writable
    body = json.dumps({"documents": [article("ok-first"), document]})  # json.dumps escapes lone surrogates
    response = client.post("/documents", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and error_of(response) == "invalid"
    assert client.get("/documents/ok-first").status_code == 404


def test_metadata_with_numbers_json_cannot_hold_is_422(writable: tuple[TestClient, Path]) -> None:
    """NaN or Infinity in metadata (Python's JSON reads them) is refused: it could not be served back."""
    client, _ = writable
    for literal in (b"NaN", b"Infinity", b'{"deep": [1, -Infinity]}'):
        body = b'{"documents": [{"id": "m", "text": "some words here", "score": ' + literal + b"}]}"
        response = client.post("/documents", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, literal


def test_a_body_that_is_not_json_is_415(client: TestClient) -> None:
    """A form post or plain text (curl -d without a JSON Content-Type) is 415 with the fix in the message."""
    for headers in ({"Content-Type": "application/x-www-form-urlencoded"}, {"Content-Type": "text/plain"}, {}):
        response = client.post("/query", content=b'{"text": "a"}', headers=headers)
        assert response.status_code == 415 and error_of(response) == "unsupported_media_type"
        assert "application/json" in response.json()["message"]
    assert client.post("/query", content=b'{"text": "a"}',
                       headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 200


def test_unknown_ids_and_paths_are_404(writable: tuple[TestClient, Path]) -> None:
    """Every endpoint taking an id answers 404 for one that is not indexed; unknown paths are 404 JSON."""
    client, _ = writable
    for method, path in [("GET", "/documents/nope"), ("GET", "/documents/nope/copies"),
                         ("GET", "/documents/nope/repeats"), ("DELETE", "/documents/nope"), ("GET", "/nowhere"),
                         ("GET", "/documents/" + "x" * 5000)]:
        response = client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert error_of(response) == "not_found"


def test_wrong_methods_are_405_with_allow(client: TestClient) -> None:
    """A method a path does not have is 405 JSON with the Allow header."""
    response = client.put("/query", json={"text": "a"})
    assert response.status_code == 405 and error_of(response) == "method_not_allowed"
    assert "POST" in response.headers["allow"]
    assert client.get("/query").status_code == 405


def test_a_read_only_server_refuses_writes_with_405(client: TestClient) -> None:
    """Without --writable, POST /documents and DELETE /documents/{id} are 405 read_only; nothing changes."""
    add = client.post("/documents", json={"documents": [article("never")]})
    assert add.status_code == 405 and error_of(add) == "read_only" and "writable" in add.json()["message"]
    delete = client.delete("/documents/recall-original")
    assert delete.status_code == 405 and error_of(delete) == "read_only" and delete.headers["allow"] == "GET, HEAD"
    assert client.get("/health").json()["documents"] == 27


def test_requests_over_the_limits_are_413(tmp_path: Path) -> None:
    """Bodies over max_body (declared or streamed), and too many documents, queries, paragraphs or a
    too large top, are 413 naming the limit; nothing is added."""
    path = build_index(tmp_path / "limits.idx", [article("seed")])
    limits = Limits(max_body=20_000, max_documents=2, max_queries=2, max_paragraphs=10, max_request_paragraphs=15,
                    max_top=5, default_top=5)
    with TestClient(create_app(path, writable=True, limits=limits)) as client:
        too_big = json.dumps({"text": "word " * 5000}).encode()
        cases = [
            client.post("/query", content=too_big, headers={"Content-Type": "application/json"}),
            client.post("/query", content=iter([too_big[:10_000], too_big[10_000:]]),
                        headers={"Content-Type": "application/json"}),  # chunked: no Content-Length
            client.post("/documents", json={"documents": [article(f"d{i}", n=2) for i in range(3)]}),
            client.post("/query/batch", json={"queries": [{"text": "a"}] * 3}),
            client.post("/query", json={"text": "\n".join(["line"] * 11)}),
            client.post("/query/batch", json={"queries": [{"paragraphs": ["p"] * 8}, {"paragraphs": ["p"] * 8}]}),
            client.post("/documents", json={"documents": [article("many", n=11)]}),
            client.post("/query", json={"text": "a", "top": 6}),
            client.get("/documents/seed/copies", params={"top": 6}),
        ]
        for response in cases:
            assert response.status_code == 413, response.text
            assert error_of(response) == "too_large"
        assert client.get("/health").json()["documents"] == 1
        assert client.post("/query", json={"text": "a", "top": 5}).status_code == 200


def test_a_body_declaring_a_bad_length_is_400(client: TestClient) -> None:
    """A Content-Length that is not a number is refused, as JSON, before anything is read."""
    for length in ("lots", "-5", "1e3"):
        response = client.post("/query", content=b'{"text": "a"}',
                               headers={"Content-Type": "application/json", "Content-Length": length})
        assert response.status_code == 400, length
        assert error_of(response) == "bad_request"


def test_limits_must_be_positive_integers() -> None:
    """Limits(max_body=0) and friends are ConfigErrors."""
    for bad in ({"max_body": 0}, {"max_documents": -1}, {"max_top": 1.5}, {"max_queries": True}):
        with pytest.raises(ConfigError):
            Limits(**bad)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=12)
QUERY_KEYS = st.sampled_from(["text", "paragraphs", "top", "threshold", "min_containment", "id", "exclude_self",
                              "queries", "documents", "on_duplicate", "source"])
ALMOST_QUERIES = st.dictionaries(QUERY_KEYS, JSON_VALUES | st.text(max_size=200), max_size=5)
ALMOST_DOCUMENTS = st.fixed_dictionaries({"documents": st.lists(
    st.dictionaries(st.sampled_from(["id", "text", "source", "date"]), JSON_VALUES | st.text(max_size=80),
                    max_size=4), max_size=3)},
    optional={"on_duplicate": JSON_VALUES | st.sampled_from(["skip", "replace", "error"])})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/query", "/query/batch", "/documents", "/repeats"]),
       body=JSON_VALUES | ALMOST_QUERIES | ALMOST_DOCUMENTS)
def test_no_request_body_gives_a_server_error(writable: tuple[TestClient, Path], path: str, body: Any) -> None:
    """Whatever JSON a client posts (NaN and lone surrogates included), the answer is a success or a
    client error, always JSON."""
    client, _ = writable
    response = client.post(path, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200 or response.status_code in CLIENT_ERRORS, (response.status_code, response.text)
    response.json()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(id=st.text(max_size=40), params=st.dictionaries(st.sampled_from(["top", "threshold", "min_containment"]),
                                                         st.text(max_size=6) | st.floats().map(str), max_size=3))
def test_no_id_or_parameter_gives_a_server_error(writable: tuple[TestClient, Path], id: str,
                                                 params: dict[str, str]) -> None:
    """Any id in the path and any query parameters: a success or a client error."""
    from urllib.parse import quote

    client, _ = writable
    encoded = quote(id.encode("utf-8", "surrogatepass").decode("utf-8", "replace"), safe="")
    for suffix in ("", "/copies", "/repeats"):
        response = client.get(f"/documents/{encoded}{suffix}", params=params)
        assert response.status_code == 200 or response.status_code in CLIENT_ERRORS, response.text


# -- concurrency --------------------------------------------------------------------------------------------

def test_readers_answer_while_one_client_adds(tmp_path: Path) -> None:
    """Four threads query while one adds batches: no errors, every query finds the story's copies, every
    acknowledged document is present, and a document acknowledged to one client is found by the
    others' next queries."""
    path = build_index(tmp_path / "busy.idx")
    app = create_app(path, writable=True, readers=2)
    errors: list[str] = []
    acknowledged: list[str] = []
    seen_new = threading.Event()
    done = threading.Event()

    with LiveServer(app) as server:
        def query() -> None:
            while not done.is_set():
                status, body = call(server.url + "/query", "POST", {"text": STORY})
                if status != 200 or {m["id"] for m in body["matches"]} != RECALL_COPIES:
                    errors.append(f"query: {status} {body if status != 200 else [m['id'] for m in body['matches']]}")
                if acknowledged:
                    latest = acknowledged[-1]
                    status, body = call(server.url + "/query", "POST", {"text": article(latest)["text"], "top": 1})
                    if status != 200 or not body["matches"] or body["matches"][0]["id"] != latest:
                        errors.append(f"acknowledged {latest} not found: {status} {body}")
                    else:
                        seen_new.set()

        def add() -> None:
            for batch in range(15):
                ids = [f"c{batch}-{i}" for i in range(4)]
                status, body = call(server.url + "/documents", "POST", {"documents": [article(x) for x in ids]})
                if status != 200 or body["added"] != 4:
                    errors.append(f"add: {status} {body}")
                acknowledged.extend(ids)
            done.set()

        threads = [threading.Thread(target=query) for _ in range(4)] + [threading.Thread(target=add)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert errors == []
        assert seen_new.is_set()
        assert call(server.url + "/health")[1]["documents"] == 27 + 60
    with Index.open(str(path)) as reopened:
        assert all(x in reopened for x in acknowledged)


def test_a_query_is_not_held_up_by_a_write_in_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the writer is inside an add (held there on purpose), queries and reads are answered."""
    import neardup.service.workers as workers_module

    path = build_index(tmp_path / "held.idx")
    inside, release = threading.Event(), threading.Event()
    real_add = workers_module.add_documents

    def held_add(index: Index, documents: list[Document], on_duplicate: str) -> dict[str, Any]:
        inside.set()
        release.wait(timeout=60)
        return real_add(index, documents, on_duplicate)

    monkeypatch.setattr(workers_module, "add_documents", held_add)
    with LiveServer(create_app(path, writable=True)) as server:
        result: dict[str, Any] = {}
        writer = threading.Thread(target=lambda: result.update(
            add=call(server.url + "/documents", "POST", {"documents": [article("held")]})))
        writer.start()
        assert inside.wait(timeout=30)
        started = time.monotonic()
        status, body = call(server.url + "/query", "POST", {"text": STORY}, timeout=20)
        assert status == 200 and {m["id"] for m in body["matches"]} == RECALL_COPIES
        assert call(server.url + "/documents/recall-original")[0] == 200
        assert time.monotonic() - started < 15
        assert call(server.url + "/documents/held")[0] == 404  # not acknowledged, not visible
        release.set()
        writer.join(timeout=60)
        assert result["add"][0] == 200
        assert call(server.url + "/documents/held")[0] == 200


def test_too_many_waiting_requests_are_503_with_retry_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every reader busy and the waiting room full, a query is 503 busy with Retry-After; so is a
    write when the writer's queue is full. Once they drain, requests succeed again."""
    import neardup.service.app as server_module
    import neardup.service.workers as workers_module

    path = build_index(tmp_path / "full.idx", [article("seed")])
    release = threading.Event()
    started = threading.Semaphore(0)
    real_get, real_add = server_module.stored_document, workers_module.add_documents

    def slow_get(index: Index, id: str) -> dict[str, Any]:
        if id == "slow":
            started.release()
            release.wait(timeout=60)
            id = "seed"
        return real_get(index, id)

    def slow_add(index: Index, documents: list[Document], on_duplicate: str) -> dict[str, Any]:
        started.release()
        release.wait(timeout=60)
        return real_add(index, documents, on_duplicate)

    def slow_together(index: Index, requests: Any, on_duplicate: str) -> Any:  # the two adds may share
        started.release()
        release.wait(timeout=60)
        return real_together(index, requests, on_duplicate)

    real_together = workers_module.add_together
    monkeypatch.setattr(server_module, "stored_document", slow_get)
    monkeypatch.setattr(workers_module, "add_documents", slow_add)
    monkeypatch.setattr(workers_module, "add_together", slow_together)
    limits = Limits(max_waiting_reads=1, max_waiting_writes=1)
    with LiveServer(create_app(path, writable=True, readers=1, limits=limits)) as server:
        background = [threading.Thread(target=call, args=(server.url + "/documents/slow",)) for _ in range(2)]
        background += [threading.Thread(target=call, args=(server.url + "/documents", "POST",
                                                           {"documents": [article(f"w{i}")]})) for i in range(2)]
        for thread in background:
            thread.start()
        assert started.acquire(timeout=30) and started.acquire(timeout=30)  # one reader and the writer are held
        time.sleep(0.5)  # the second of each waits
        request = urllib.request.Request(server.url + "/documents/seed")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=20)
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "1"
        assert json.loads(refused.value.read())["error"] == "busy"
        status, body = call(server.url + "/documents", "POST", {"documents": [article("w9")]}, timeout=20)
        assert status == 503 and body["error"] == "busy"
        release.set()
        for thread in background:
            thread.join(timeout=60)
        assert call(server.url + "/documents/seed")[0] == 200
        assert call(server.url + "/health")[1]["documents"] == 3


def test_a_request_abandoned_while_waiting_gives_its_place_back(tmp_path: Path) -> None:
    """A queued query whose client went away is dropped before it runs and stops counting, so the
    waiting room does not fill with requests nobody waits for."""
    import asyncio

    from neardup.service.errors import ApiError

    service = Service(str(build_index(tmp_path / "gate.idx", [article("seed")])), readers=1,
                      limits=Limits(max_waiting_reads=1))
    release, ran = threading.Event(), []

    def held(index: Index) -> dict[str, Any]:
        release.wait(timeout=30)
        return {"held": True}

    async def scenario() -> None:
        first = asyncio.ensure_future(service.read(held))
        await asyncio.sleep(0.2)
        abandoned = asyncio.ensure_future(service.read(lambda index: ran.append("abandoned") or {}))
        await asyncio.sleep(0.1)
        with pytest.raises(ApiError):  # one running, one waiting: full
            await service.read(lambda index: {})
        abandoned.cancel()
        await asyncio.sleep(0.1)
        third = asyncio.ensure_future(service.read(lambda index: {"third": True}))
        release.set()
        assert json.loads((await first).body) == {"held": True}
        assert json.loads((await third).body) == {"third": True}

    try:
        asyncio.run(scenario())
    finally:
        service.close()
    assert ran == []


def _doc(record: dict[str, Any]) -> Document:
    return Document.from_text(record["id"], record["text"])


SHARED_REQUESTS: list[tuple[list[dict[str, Any]], str]] = [
    ([article("a1"), article("a2")], "skip"),
    ([article("seed"), article("b1"), {"id": "b2", "text": "!!! ..."}, article("b3")], "skip"),  # indexed; no words
    ([article("c1"), article("c1", n=3), article("c2")], "skip"),  # repeated inside the request
    ([article("a1", n=2)], "skip"),  # the same id as an earlier request: it waits for its own commit
    ([article("old", n=4), article("d1")], "replace"),
    ([article("d1", n=2)], "replace"),  # replaces what the request before added: its own commit
    ([article("e1"), {"id": "old2", "text": "?"}, article("e1", n=2)], "replace"),  # replace nothing with nothing
    ([article("f1")], "error"),  # never shared
    ([article("g1")], "skip"),
]


def test_adds_waiting_together_share_a_commit_and_each_gets_its_own_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the writer is busy, adds queue up; those that may share a transaction commit together
    (fewer commits than requests), and every request's answer and the index's final content are what
    adding each request alone, in order, gives."""
    import asyncio

    import neardup.service.workers as workers_module

    seed = [article("seed"), article("old"), article("old2")]
    alone = build_index(tmp_path / "alone.idx", seed)
    expected = []
    with Index.open(str(alone), writable=True) as index:
        for records, on_duplicate in SHARED_REQUESTS:
            expected.append(workers_module.add_documents(index, [_doc(r) for r in records], on_duplicate))
        expected_texts = {r["id"]: index.get(r["id"]).text for rs, _ in SHARED_REQUESTS for r in rs
                          if r["id"] in index}

    shared_calls: list[int] = []
    real_together = workers_module.add_together

    def counting(index: Index, requests: Any, on_duplicate: str) -> Any:
        shared_calls.append(len(requests))
        return real_together(index, requests, on_duplicate)

    monkeypatch.setattr(workers_module, "add_together", counting)
    service = Service(str(build_index(tmp_path / "shared.idx", seed)), writable=True, readers=1,
                      limits=Limits(max_waiting_writes=len(SHARED_REQUESTS) + 1))
    release = threading.Event()

    async def scenario() -> list[Any]:
        held = asyncio.ensure_future(service.write(lambda index: release.wait(timeout=30) and {}))
        await asyncio.sleep(0.2)
        waiting = [asyncio.ensure_future(service.add([_doc(r) for r in records], on_duplicate))
                   for records, on_duplicate in SHARED_REQUESTS]
        await asyncio.sleep(0.2)
        release.set()
        await held
        return [json.loads((await answer).body) for answer in waiting]

    try:
        answers = asyncio.run(scenario())
        writer = service.writer()
        texts = {id: writer.get(id).text for id in expected_texts if id in writer}
        assert len(writer) == len(Index.open(str(alone)))
    finally:
        service.close()
    for answer, wanted in zip(answers, expected):
        assert {**answer, "documents": None} == {**wanted, "documents": None}
    assert answers[-1]["documents"] == expected[-1]["documents"]
    assert texts == expected_texts
    assert shared_calls and sum(shared_calls) >= 4 and len(shared_calls) < len(SHARED_REQUESTS)


def test_a_shared_add_that_fails_is_run_again_request_by_request(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """When the transaction the waiting adds share fails, each is run alone: every request gets its
    own answer (here: all succeed), none is lost."""
    import asyncio

    import neardup.service.workers as workers_module

    def failing(index: Index, requests: Any, on_duplicate: str) -> Any:
        raise OSError("the shared commit failed")

    monkeypatch.setattr(workers_module, "add_together", failing)
    service = Service(str(build_index(tmp_path / "retry.idx", [article("seed")])), writable=True, readers=1)
    release = threading.Event()

    async def scenario() -> list[Any]:
        held = asyncio.ensure_future(service.write(lambda index: release.wait(timeout=30) and {}))
        await asyncio.sleep(0.2)
        waiting = [asyncio.ensure_future(service.add([_doc(article(f"r{i}"))], "skip")) for i in range(3)]
        await asyncio.sleep(0.2)
        release.set()
        await held
        return [json.loads((await answer).body) for answer in waiting]

    try:
        answers = asyncio.run(scenario())
        assert len(service.writer()) == 4
    finally:
        service.close()
    assert [a["added"] for a in answers] == [1, 1, 1]


# -- serve() --------------------------------------------------------------------------------------------------

def test_serve_fails_clearly_on_a_missing_index_and_a_port_in_use(tmp_path: Path, wire_path: Path) -> None:
    """`neardup serve` on a folder that is no index exits 2 with one line; on a port in use, too."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    missing = subprocess.run([sys.executable, "-m", "neardup", "serve", str(tmp_path / "none.idx"), "--port", "0"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 2 and missing.stderr.startswith("neardup: error:")
    with contextlib.closing(listen("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        busy = subprocess.run([sys.executable, "-m", "neardup", "serve", str(wire_path), "--port", str(port)],
                              capture_output=True, text=True, env=env, timeout=60)
    assert busy.returncode == 2 and "neardup: error:" in busy.stderr and "Traceback" not in busy.stderr
    no_readers = subprocess.run([sys.executable, "-m", "neardup", "serve", str(wire_path), "--port", "0",
                                 "--readers", "0"], capture_output=True, text=True, env=env, timeout=60)
    assert no_readers.returncode == 2 and "--readers: '0': must be a number at least 1" in no_readers.stderr


def test_a_second_writer_is_refused_at_start(tmp_path: Path) -> None:
    """A writable server holds the index's write lock: another writer fails at once (IndexLockedError)."""
    from neardup import IndexLockedError

    path = build_index(tmp_path / "locked.idx", [article("seed")])
    service = Service(str(path), writable=True)
    try:
        with pytest.raises(IndexLockedError):
            Service(str(path), writable=True)
    finally:
        service.close()


def test_the_render_of_odd_values_is_always_json() -> None:
    """render() turns NaN into null and lone surrogates into U+FFFD, keeping character counts."""
    from neardup.service.errors import render

    assert json.loads(render({"a": float("nan"), "b": [math.inf], "c": "x"})) == {"a": None, "b": [None], "c": "x"}
    text = json.loads(render({"t": "a\udc80b"}))["t"]
    assert text == "a\ufffdb" and len(text) == 3
