"""The index: copies whole and partial come back with the right kind, scores and evidence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neardup import Config, ConfigError, Document, Index

STORY = [
    "Harbour authorities confirm dockworkers strike over crane automation plans",
    "Dockworkers at the port walked off the job at six on Saturday morning, halting container loading at "
    "both terminals and leaving fourteen cargo ships waiting at anchor in the estuary outside the city.",
    "The union said four months of talks over remote-controlled cranes had collapsed late on Friday after "
    "the port authority refused to guarantee that no jobs would be lost during the first five years.",
    "Shipping lines warned that the stoppage would cost exporters of wine, cork and paper several million "
    "euros a day and said they were already diverting vessels to other ports along the Atlantic coast.",
    "The transport minister urged both sides to return to the table and offered a state mediator, an offer "
    "the union accepted on Saturday afternoon while the employers said they would study the proposal.",
    "Automation has divided European ports for a decade, with unions arguing that remote cranes cut skilled "
    "jobs and employers insisting that terminals which do not modernise will lose traffic to their rivals.",
    "A spokeswoman for the port authority said the new cranes would be introduced gradually and that every "
    "worker affected would be offered retraining, early retirement or a post elsewhere in the harbour.",
    "Truck drivers queued for several kilometres on the motorway leading to the container terminals, and "
    "police closed one lane to keep traffic moving toward the airport and the southern bridge.",
    "The strike is due to last seventy-two hours, but union leaders said further stoppages in the summer "
    "could not be ruled out if the authority did not put a written guarantee on the table.",
    "Port officials said perishable cargo, including fruit from the islands, would be unloaded first "
    "once work resumed, and that a backlog of up to a week was expected at the northern terminal.",
]
OTHER = [
    "City council approves new tram line after a long public debate",
    "Councillors voted by thirty-one to twenty on Tuesday night to build a tram line linking the railway "
    "station with the university campus and the hospital on the eastern edge of the city.",
    "Supporters said the line would take thousands of cars off the road each day, while opponents argued the "
    "budget of four hundred million pounds would be better spent on buses and cycle lanes.",
    "Construction is expected to begin next spring and to take three years, with the first trams carrying "
    "passengers before the end of the decade if the national government confirms its share of the money.",
    "Residents of the streets along the route will be offered compensation for disruption, the council "
    "said, and a consultation on the exact location of the stops will open next month.",
]
FOOTER = ("Copyright The Daily Example. All rights reserved. This material may not be published, broadcast, "
          "rewritten or redistributed without the written permission of the publisher.")


def doc(id: str, paragraphs: list[str]) -> Document:
    return Document.from_text(id, "\n".join(paragraphs))


def padded(paragraphs: list[str]) -> list[str]:
    """An outlet's edition: byline, dateline, ALSO READ links, a fused ad call, a footer, an edited word."""
    body = list(paragraphs)
    body[1] = "LISBON (MPA) - " + body[1]
    body[3] = body[3] + "googletag.cmd.push(function() {googletag.display('div-gpt-ad-1234-2'); });"
    body[5] = body[5].replace("insisting", "arguing")
    return (["By Staff Writer"] + body[:4] + ["ALSO READ | Ferry fares to rise in spring"] + body[4:]
            + ["ALSO READ | Airport expansion delayed again",
               "(This story was auto-generated from a syndicated feed.)"])


@pytest.fixture()
def index() -> Index:
    idx = Index()
    report = idx.add([doc("original", STORY), doc("other", OTHER), doc("padded", padded(STORY)),
                      doc("truncated", STORY[:6]), doc("embedded", OTHER[:3] + STORY + OTHER[3:])])
    assert report.added == 5
    return idx


def by_id(matches):
    return {m.id: m for m in matches}


def test_truncated_copy_is_partial_and_fully_contained(index):
    """A copy cut to 60 % of the paragraphs is partial, with containment ≈ 1 in its direction."""
    match = by_id(index.query(doc("query", STORY)))["truncated"]
    assert match.kind == "partial"
    assert match.match_in_query >= 0.95
    assert 0.4 <= match.query_in_match <= 0.75
    assert {(p.query_paragraph, p.match_paragraph) for p in match.shared_paragraphs} >= {(i, i) for i in range(1, 6)}


def test_padded_copy_is_a_near_duplicate(index):
    """Byline, ALSO READ lines, a fused ad call, a footer and an edit still make a near-duplicate."""
    match = by_id(index.query(doc("query", STORY)))["padded"]
    assert match.kind == "near-duplicate"
    assert match.query_in_match >= 0.9


def test_embedded_copy_is_found_as_containing_the_story(index):
    """A page holding the whole story among other text contains the query."""
    match = by_id(index.query(doc("query", STORY)))["embedded"]
    assert match.kind == "partial" and match.query_in_match >= 0.95


def test_exact_copy_and_unrelated_documents(index):
    """The same text under another id is exact; an unrelated story is not returned."""
    matches = by_id(index.query(doc("query", STORY)))
    assert matches["original"].kind == "exact" and matches["original"].jaccard == 1.0
    assert "other" not in matches


def test_evidence_offsets_point_at_the_paragraphs_in_both_originals(index):
    """Shared paragraphs carry spans that quote the same paragraph in query and match."""
    query = doc("query", STORY)
    match = by_id(index.query(query))["embedded"]
    stored = index.get("embedded").text
    for pair in match.shared_paragraphs:
        q, m = pair.query_span, pair.match_span
        assert query.text[q[0]:q[1]] == stored[m[0]:m[1]]


def test_results_are_ranked_and_never_below_the_thresholds(index):
    """Exact first, then near-duplicates, then partial; every result passes the asked thresholds."""
    for threshold, containment in [(0.8, 0.5), (0.95, 0.9), (0.5, 0.3)]:
        matches = index.query(doc("query", STORY), threshold=threshold, min_containment=containment)
        order = [{"exact": 0, "near-duplicate": 1, "partial": 2}[m.kind] for m in matches]
        assert order == sorted(order)
        for m in matches:
            assert m.kind == "exact" or m.jaccard >= threshold or \
                max(m.query_in_match, m.match_in_query) >= containment


def test_query_finds_an_indexed_id_unless_asked_and_query_many_equals_query(index):
    """A query is matched against every indexed document, also one with its own id (a feed with
    ids "1", "2" against an archive with the same ids); exclude_self leaves that one out. A batch
    answers like single queries."""
    assert by_id(index.query(doc("original", STORY)))["original"].kind == "exact"
    edited = doc("original", STORY[:-1])
    assert by_id(index.query(edited))["original"].kind in ("near-duplicate", "partial")
    assert "original" not in by_id(index.query_many([doc("original", STORY)], exclude_self=True)[0])
    queries = [doc("q1", STORY), doc("q2", OTHER), doc("q3", STORY[2:5])]
    batch = index.query_many(queries)
    for query, result in zip(queries, batch):
        assert [m.to_dict() for m in result] == [m.to_dict() for m in index.query(query)]


def test_top_limits_results(index):
    """--top K keeps the K best."""
    assert len(index.query(doc("q", STORY), top=2)) == 2


def test_rewrite_reusing_paragraphs_is_partial_and_follows_min_containment():
    """An article reusing three of ten paragraphs is partial at the default, and dropped above its share."""
    idx = Index()
    idx.add([doc("rewrite", OTHER[:2] + STORY[2:5] + OTHER[2:])])
    match = idx.query(doc("q", STORY))[0]
    assert match.kind == "partial" and len(match.shared_paragraphs) == 3
    assert 0.25 <= match.query_in_match <= 0.4
    assert idx.query(doc("q", STORY), min_containment=0.7) == []


def test_duplicate_ids_are_skipped_or_replaced_or_refused():
    """Re-adding an id skips by default, replaces on request, and raises when asked to."""
    idx = Index()
    idx.add([doc("a", STORY)])
    report = idx.add([doc("a", OTHER), doc("b", OTHER), doc("b", STORY)])
    assert report.added == 1 and report.skipped["duplicate id"] == 2
    assert idx.query(doc("q", STORY))[0].id == "a"
    report = idx.add([doc("a", OTHER)], on_duplicate="replace")
    assert report.replaced == 1 and len(idx) == 2
    assert "a" not in by_id(idx.query(doc("q", STORY)))
    with pytest.raises(ConfigError):
        idx.add([doc("a", OTHER)], on_duplicate="error")


def test_documents_without_words_are_counted_not_indexed():
    """Empty and punctuation-only documents are skipped with a reason."""
    idx = Index()
    report = idx.add([Document.from_text("empty", ""), Document.from_text("dots", "... --- !!!"),
                      doc("ok", STORY)])
    assert report.added == 1 and report.skipped["no words"] == 2 and len(idx) == 1


def test_remove_forgets_a_document(index):
    """A removed document is never returned again."""
    assert index.remove("padded") and not index.remove("padded")
    assert "padded" not in by_id(index.query(doc("q", STORY)))
    assert "padded" not in index


def test_shared_template_does_not_link_different_articles():
    """Short articles of one site sharing a long footer are not copies of each other."""
    idx = Index()
    bodies = [f"Council notice number {i} about the bins in ward {i} this week" for i in range(40)]
    idx.add([doc(f"site-{i}", [body, FOOTER]) for i, body in enumerate(bodies)])
    assert idx.query(doc("q", ["The library will close early on Friday for staff training", FOOTER])) == []


def test_without_other_documents_a_shared_footer_does_count():
    """The same pair, alone in an index, is reported: the footer is only boilerplate by frequency."""
    idx = Index()
    idx.add([doc("site-0", ["Council notice number 0 about the bins in ward 0 this week", FOOTER])])
    assert [m.id for m in idx.query(doc("q", ["The library will close early on Friday for staff training",
                                              FOOTER]))] == ["site-0"]


def test_signature_export_is_datasketch_compatible(index):
    """An indexed article's signature comes out as a LeanMinHash and finds the document again."""
    lean = index.signature("original")
    assert "original" in index.similar_to_signature(lean)
    with pytest.raises(KeyError):
        index.signature("missing")


def test_index_refuses_storage_with_other_fingerprint_parameters():
    """An index and a storage made with different shingle sizes cannot be combined."""
    from neardup.index.storage import MemoryStorage
    with pytest.raises(ConfigError):
        Index(Config(shingle_size=4), storage=MemoryStorage(Config(shingle_size=5)))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(3, 9), drop=st.integers(1, 8))
def test_any_prefix_or_dropped_paragraph_copy_is_found(cut, drop):
    """Copies cut at any paragraph, or missing any one paragraph, are returned."""
    idx = Index()
    idx.add([doc("prefix", STORY[:cut]), doc("dropped", STORY[:drop] + STORY[drop + 1:]), doc("other", OTHER)])
    found = by_id(idx.query(doc("q", STORY)))
    assert set(found) == {"prefix", "dropped"}
    assert found["prefix"].match_in_query >= 0.9
    assert found["dropped"].kind == "near-duplicate"


def test_bundled_wire_corpus_every_copy_found_no_distractor(wire, wire_truth):
    """Querying each original of examples/wire.jsonl returns all its copies and nothing else."""
    idx = Index()
    idx.add(Document.from_text(d["id"], d["text"], {"source": d["source"]}) for d in wire)
    originals = [Document.from_text(d["id"], d["text"]) for d in wire if wire_truth[d["id"]]["kind"] == "original"]
    for query, matches in zip(originals, idx.query_many(originals, exclude_self=True)):
        expected = {id for id, t in wire_truth.items() if t["story"] == query.id and id != query.id}
        assert {m.id for m in matches} == expected
        kinds = {m.id: m.kind for m in matches}
        for id in expected:
            if wire_truth[id]["kind"] in ("full", "dropped"):
                assert kinds[id] == "near-duplicate", id
            if wire_truth[id]["kind"] in ("truncated", "rewrite"):
                assert kinds[id] == "partial", id


def test_a_shared_template_line_between_short_notices_is_not_a_copy():
    """Two dividend notices sharing only their template line are not near-duplicates (too little evidence)."""
    a = "KNUTSON MORTGAGE CORP SETS QUARTERLY\nQtly div 10 cts vs 10 cts prior\n    Pay April 13\n Reuter"
    b = "CONCHEMCO INC SETS QUARTERLY\nQtly div 10 cts vs 10 cts prior\n    Pay April Six\n Reuter"
    idx = Index()
    idx.add([Document.from_text("a", a)])
    assert idx.query(Document.from_text("b", b)) == []


def test_same_words_in_other_paragraphs_are_not_exact():
    """'exact' means the same matching form paragraph by paragraph, consistent with the shingles."""
    idx = Index()
    idx.add([doc("one", STORY[1:4])])
    match = idx.query(Document.from_text("q", " ".join(STORY[1:4])))[0]
    assert match.kind == "near-duplicate" and match.jaccard > 0.9 and match.query_in_match > 0.8


def test_an_index_written_by_an_earlier_version_opens_and_answers_as_it_did(tmp_path):
    """tests/fixtures/index-e21474a: the bundled wire corpus indexed by neardup at e21474a (before the
    layout by layer and Bands from Config), with that version's answer to the query story. Opened
    now, read-only and writable, it answers the same, byte for byte, and takes new documents."""
    root = Path(__file__).resolve().parent
    folder = tmp_path / "old.idx"
    shutil.copytree(root / "fixtures" / "index-e21474a", folder)
    story = "examples/query-story.txt"  # relative, as the fixture's answer echoes it
    env = {**os.environ, "PYTHONPATH": str(root.parent / "src")}
    done = subprocess.run([sys.executable, "-m", "neardup", "query", str(folder), story, "--json"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=root.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (root / "fixtures" / "index-e21474a-query.jsonl").read_text(encoding="utf-8")

    with Index.open(str(folder), writable=True) as old:
        before = len(old)
        old.add([{"id": "new-one", "text": (root.parent / story).read_text(encoding="utf-8")}])
        assert len(old) == before + 1
        assert "new-one" in {m.id for m in old.query(old.document("recall-original"))}
    assert json.loads(done.stdout.splitlines()[0])
