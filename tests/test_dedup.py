"""Deduplication: clusters, representatives, and independence from order, batching and workers."""

from __future__ import annotations

import io
import json
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from neardup import Document
from neardup.cli import main
from neardup.clustering import Link, cluster, representatives
from neardup.dedup import dedup
from neardup.evidence import _median_of_others


def partition(clusters: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for id, key in clusters.items():
        groups.setdefault(key, set()).add(id)
    return {frozenset(g) for g in groups.values()}


def wire_documents(wire) -> list[Document]:
    return [Document.from_text(d["id"], d["text"], {k: v for k, v in d.items() if k not in ("id", "text")})
            for d in wire]


def test_wire_corpus_clusters_match_the_stories(wire, wire_truth):
    """Every copy except rewrites joins its original; rewrites and distractors stay alone."""
    assignments, summary = dedup(wire_documents(wire))
    cluster_of = {a.id: a.cluster for a in assignments}
    sizes = {key: list(cluster_of.values()).count(key) for key in cluster_of.values()}
    for id, truth in wire_truth.items():
        if truth["kind"] in ("full", "truncated", "dropped", "extended"):
            assert cluster_of[id] == cluster_of[truth["story"]], id
        elif truth["kind"] in ("rewrite", "distractor"):
            assert sizes[cluster_of[id]] == 1, id
    assert summary.clusters == len({a.cluster for a in assignments}) == 5 + 3 + 4
    assert summary.removed == len(wire) - summary.clusters


def test_representative_policies(wire):
    """first keeps the first in input order, longest the longest text, earliest the smallest date."""
    docs = wire_documents(wire)
    for policy, better in (("first", lambda d: -docs.index(d)), ("longest", lambda d: len(d.text)),
                           ("earliest", None)):
        assignments, _ = dedup(docs, keep=policy)
        by_id = {d.id: d for d in docs}
        members: dict[str, list[str]] = {}
        for a in assignments:
            members.setdefault(a.cluster, []).append(a.id)
        for representative, ids in members.items():
            if better is not None:
                assert max(ids, key=lambda i: (better(by_id[i]), i == representative)) == representative
            else:
                assert by_id[representative].metadata["date"] == min(by_id[i].metadata["date"] for i in ids)


def test_no_partial_keeps_truncated_copies_apart(wire, wire_truth):
    """--no-partial clusters only whole copies: a truncated copy stays on its own."""
    assignments, _ = dedup(wire_documents(wire), include_partial=False)
    cluster_of = {a.id: a.cluster for a in assignments}
    truncated = [id for id, t in wire_truth.items() if t["kind"] == "truncated"]
    assert all(cluster_of[id] != cluster_of[wire_truth[id]["story"]] for id in truncated)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.sampled_from([1, 3, 7, 1000]), workers=st.sampled_from([1, 2]))
def test_same_clusters_whatever_order_batch_size_and_workers(seed, batch, workers, wire):
    """Shuffled input, other batch sizes and worker counts give the same clusters and 'longest' representatives."""
    docs = wire_documents(wire)
    reference, _ = dedup(docs, keep="longest")
    shuffled = docs[:]
    random.Random(seed).shuffle(shuffled)
    result, _ = dedup(shuffled, keep="longest", batch_size=batch, workers=workers)
    as_map = lambda assignments: {a.id: a.cluster for a in assignments}  # noqa: E731
    assert as_map(result) == as_map(reference)
    assert {a.id: a.kind for a in result} == {a.id: a.kind for a in reference}


@given(links=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8), st.sampled_from(["near-duplicate", "partial"]),
                                st.floats(0, 1), st.floats(0, 1)), max_size=20))
def test_clustering_ignores_link_order_and_direction(links):
    """The same links in any order or direction give the same partition."""
    ids = [f"d{i}" for i in range(9)]
    built = [Link(f"d{a}", f"d{b}", kind, 0.5, x, y) for a, b, kind, x, y in links if a != b]
    reference = partition(cluster(ids, built, partial_containment=0.7))
    flipped = [link.flipped() for link in reversed(built)]
    assert partition(cluster(ids, flipped, partial_containment=0.7)) == reference


def test_a_page_holding_two_stories_does_not_merge_them():
    """Two stories contained in one page join it through one story only."""
    links = [Link("story-a", "page", "partial", 0.4, 1.0, 0.45, frozenset({0, 1}), frozenset({2, 3})),
             Link("story-b", "page", "partial", 0.4, 1.0, 0.4, frozenset({0, 1}), frozenset({5, 6})),
             Link("copy-a", "story-a", "near-duplicate", 0.9, 0.95, 0.95)]
    groups = partition(cluster(["story-a", "story-b", "page", "copy-a"], links, partial_containment=0.7))
    assert frozenset({"story-a", "copy-a", "page"}) in groups and frozenset({"story-b"}) in groups


def test_overlapping_partial_copies_all_join_their_original():
    """A trimmed and a truncated copy inside one original hold the same lead paragraph: both join."""
    links = [Link("dropped", "original", "partial", 0.7, 0.98, 0.7, frozenset({0, 1, 2}), frozenset({0, 1, 3})),
             Link("truncated", "original", "partial", 0.4, 0.99, 0.39, frozenset({0, 1}), frozenset({0, 1}))]
    groups = partition(cluster(["original", "dropped", "truncated"], links, partial_containment=0.7))
    assert groups == {frozenset({"original", "dropped", "truncated"})}


def test_representatives_break_ties_by_id():
    """Equal lengths or dates choose the smallest id, whatever the order."""
    clusters = {"b": "a", "a": "a", "c": "a"}
    chosen = representatives(clusters, "longest", order={"b": 0, "a": 1, "c": 2},
                             lengths={"a": 5, "b": 5, "c": 4}, dates={})
    assert chosen == {"a": "a"}


@settings(max_examples=200)
@given(values=st.lists(st.integers(0, 30), max_size=12), mask=st.lists(st.booleans(), max_size=12))
def test_median_of_the_other_paragraphs(values, mask):
    """The vectorised leave-one-out median equals the plain one."""
    mask = (mask + [True] * len(values))[: len(values)]
    v, included = np.array(values, dtype=float), np.array(mask, dtype=bool)
    got = _median_of_others(v, included)
    for i in range(len(values)):
        others = [values[j] for j in range(len(values)) if included[j] and j != i]
        assert got[i] == (float(np.median(others)) if others else 0.0)


def test_cli_dedup_writes_kept_and_clusters(tmp_path, examples):
    """The command writes one CLUSTERS line per input and KEPT records with every field."""
    kept, clusters = tmp_path / "kept.jsonl", tmp_path / "clusters.jsonl"
    assert main(["dedup", str(examples / "wire.jsonl"), "--out", str(kept), "--clusters", str(clusters),
                 "--keep", "earliest"], out=io.StringIO()) == 0
    lines = [json.loads(line) for line in clusters.read_text().splitlines()]
    records = [json.loads(line) for line in kept.read_text().splitlines()]
    assert len(lines) == 26 and {r["id"] for r in records} == {c["id"] for c in lines if c["representative"]}
    assert all(set(r) == {"id", "text", "source", "date"} for r in records)
    assert {c["kind"] for c in lines} <= {"representative", "exact", "near-duplicate", "partial", "linked"}


def test_cli_dedup_drop_repeats(tmp_path, examples):
    """--drop-repeats removes the second copy of the body and records it."""
    kept, clusters = tmp_path / "kept.csv", tmp_path / "clusters.jsonl"
    assert main(["dedup", str(examples / "repeated-page.txt"), "--out", str(kept), "--clusters", str(clusters),
                 "--drop-repeats"], out=io.StringIO()) == 0
    line = json.loads(clusters.read_text())
    assert line["dropped_paragraphs"] == list(range(14, 27))
    import csv
    rows = list(csv.DictReader(kept.open()))
    assert len(rows) == 1 and len(rows[0]["text"].splitlines()) == 14
