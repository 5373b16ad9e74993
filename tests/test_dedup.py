"""Deduplication: nothing removed that its representative does not hold, and the same clusters
whatever the order, batch size, threads or memory budget."""

from __future__ import annotations

import csv
import io
import json
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import corpora
from neardup import Config, Document
from neardup.cli.main import main
from neardup.match.scores import VERIFY_COLUMNS, PairScores, empty_scores
from neardup.pipeline.clustering import KnownPairs, cluster
from neardup.pipeline.dedup import dedup

ROOT_EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples"


def wire_documents(wire) -> list[Document]:
    return [Document.from_text(d["id"], d["text"], {k: v for k, v in d.items() if k not in ("id", "text")})
            for d in wire]


def clusters_of(result) -> dict[str, str]:
    return {a.id: a.cluster for a in result}


def partition(result) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for a in result:
        groups.setdefault(a.cluster, set()).add(a.id)
    return {frozenset(g) for g in groups.values()}


# -- the bundled corpus ---------------------------------------------------------------------------------


def _own_story(document: Document, others: list[Document], config: Config) -> bool:
    """Whether a document has a paragraph of ``story_words`` words or more that no other holds."""
    def texts(d: Document) -> list[str]:
        return [d.text[start:end] for start, end in d.paragraphs]

    held = {p for other in others if other.id != document.id for p in texts(other)}
    return any(len(p.split()) >= config.story_words and p not in held for p in texts(document))


def test_wire_corpus_clusters_match_the_stories(wire, wire_truth):
    """Every copy except rewrites joins its original — an extended copy too, unless it carries a
    story of its own that no other document holds (recall-coastal-herald and harbour-metro-pulse
    embed a second story: removing them would lose it); rewrites and distractors stay alone."""
    documents = wire_documents(wire)
    result = dedup(documents)
    cluster_of = clusters_of(result)
    sizes = {key: list(cluster_of.values()).count(key) for key in cluster_of.values()}
    by_id = {d.id: d for d in documents}
    own = {id for id, truth in wire_truth.items() if truth["kind"] == "extended"
           and _own_story(by_id[id], documents, Config())}
    assert own == {"recall-coastal-herald", "harbour-metro-pulse"}  # each embeds a second story
    for id, truth in wire_truth.items():
        if id in own:
            assert cluster_of[id] == id, id
        elif truth["kind"] in ("full", "truncated", "dropped", "extended"):
            assert cluster_of[id] == cluster_of[truth["story"]], id
        elif truth["kind"] in ("rewrite", "distractor"):
            assert sizes[cluster_of[id]] == 1, id
    alone = sum(cluster_of[wire_truth[id]["story"]] != id for id in own)  # not representing their story
    assert result.summary.clusters == len(set(cluster_of.values())) == 5 + 3 + 4 + alone
    assert result.summary.removed == len(wire) - result.summary.clusters
    assert all(a.kind in ("representative", "exact", "near-duplicate", "partial") for a in result)


def test_representative_policies(wire):
    """Among documents that hold each other, first keeps the first in input order, longest the
    longest text, earliest the smallest date (ties by id)."""
    docs = wire_documents(wire)
    by_id = {d.id: d for d in docs}
    for policy in ("first", "longest", "earliest"):
        result = dedup(docs, keep=policy)
        members: dict[str, list[str]] = {}
        for a in result:
            members.setdefault(a.cluster, []).append(a.id)
        for representative, ids in members.items():
            mutual = [i for i in ids if i == representative or _mutual(result, i)]
            if policy == "first":
                assert min(mutual, key=lambda i: docs.index(by_id[i])) == representative
            elif policy == "longest":
                assert min(mutual, key=lambda i: (-len(by_id[i].text), i)) == representative
            else:
                assert min(mutual, key=lambda i: (by_id[i].metadata["date"], i)) == representative


def _mutual(result, id: str) -> bool:
    """``id`` and its representative hold each other equally well: the policy chose between them."""
    a = next(x for x in result if x.id == id)
    inside, outside = a.doc_in_representative or 0.0, a.representative_in_doc or 0.0
    return a.kind == "exact" or (outside >= 0.7 and abs(inside - outside) < Config().fuller_margin)


def test_no_partial_keeps_truncated_copies_apart(wire, wire_truth):
    """include_partial=False clusters only whole copies: a truncated copy stays on its own."""
    cluster_of = clusters_of(dedup(wire_documents(wire), include_partial=False))
    truncated = [id for id, t in wire_truth.items() if t["kind"] == "truncated"]
    assert all(cluster_of[id] != cluster_of[wire_truth[id]["story"]] for id in truncated)


# -- what is removed is held --------------------------------------------------------------------------


def _check_removals(items: list[corpora.Item], result, config: Config) -> None:
    """Every removed document is held by its representative, its furniture by the kept documents
    (the oracle's rule, measured plainly: (a) and (b) of the README), and no member of a cluster
    dominates its representative (holds it without being held back, or holds its story better by
    fuller_margin) by the rule clustering uses."""
    documents = [item.document() for item in items]
    plains = {d.id: corpora.plain(d) for d in documents}
    ids = [d.id for d in documents]
    weights = dict(zip(ids, corpora.weights([plains[i] for i in ids])))
    spread = corpora.holders([plains[i] for i in ids])
    kept_forms = {f for a in result if a.representative for f in plains[a.id].forms}

    def oracle(holder: str, held: str, furniture: list[bool]) -> bool:
        return corpora.holds(plains[holder], weights[holder], plains[held], weights[held], furniture,
                             threshold=config.threshold, partial=config.partial_containment,
                             min_shared=config.min_shared_words, min_coverage=config.min_coverage,
                             min_held=config.min_held, story_words=config.story_words)

    def clustering(holder: str, held: str) -> bool:
        return oracle(holder, held, corpora.furniture_by_spread(plains[held], plains[holder], spread))

    members: dict[str, list[str]] = {}
    for a in result:
        members.setdefault(a.cluster, []).append(a.id)
        if not a.representative:
            assert oracle(a.cluster, a.id, corpora.furniture_kept(plains[a.id], kept_forms)), \
                (a.id, a.cluster, a.to_dict())

    def inside(a: str, b: str) -> float:
        return corpora.story_containment(plains[a], weights[a], plains[b], spread, config.story_words)

    for representative, ids in members.items():
        for other in ids:
            if other != representative and clustering(other, representative):
                fuller = inside(representative, other) - inside(other, representative) >= config.fuller_margin
                assert clustering(representative, other) and not fuller, (representative, other)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 100_000), keep=st.sampled_from(["first", "longest", "earliest", "cleanest"]))
def test_every_removed_document_is_held_by_its_representative(seed, keep):
    """For generated corpora (copies of every kind, footers, a footer-only page, template notices)
    and every policy, dedup never removes a document its representative does not hold."""
    items = corpora.make_corpus(seed)
    config = Config()
    result = dedup([item.document() for item in items], keep=keep, config=config)
    _check_removals(items, result, config)
    cluster_of = clusters_of(result)
    members = {}
    for id, c in cluster_of.items():
        members.setdefault(c, set()).add(id)
    assert all(cluster_of[i] == i for i in cluster_of if i.startswith("notice"))  # never merged
    if cluster_of["footer-only"] == "footer-only":  # a footer-only page represents nobody
        assert members["footer-only"] == {"footer-only"}


def test_named_failures_of_the_old_dedup_do_not_come_back():
    """A footer-only page represents nobody; a flash never replaces its full story; notices of
    different companies never merge (the cases of issue 9, in invented text)."""
    rng = random.Random(7)
    footer = ("Copyright 2026 Invented Media Group. All rights reserved. This material may not be published, "
              "broadcast, rewritten or redistributed.")
    articles = [Document.from_text(f"article-{i}", "\n".join([corpora.paragraph(rng) for _ in range(5)] + [footer]))
                for i in range(8)]
    page = Document.from_text("contest", "Win a gift package!\n" + footer)
    story = [corpora.paragraph(rng, 8, 12)] + [corpora.paragraph(rng) for _ in range(6)]
    full = Document.from_text("full", "\n".join(story))
    flash = Document.from_text("flash", story[0])
    notices = [Document.from_text(f"notice-{c}", f"{c} SETS QUARTERLY\nQtly div 12-1/2 cts vs 12-1/2 cts prior\n"
                                                 f"    Pay {pay}\n    Record {record}\n Reuter")
               for c, pay, record in (("ALPHA SYSTEMS INC", "April One", "March 13"),
                                      ("BETA LAND AND FRUIT CO", "March 31", "Feb 27"))]
    for keep in ("first", "longest", "earliest"):
        result = dedup([page, flash] + articles + [full] + notices, keep=keep)
        cluster_of = clusters_of(result)
        assert all(cluster_of[a.id] == a.id for a in articles)
        assert cluster_of["full"] == "full"
        assert cluster_of["notice-ALPHA SYSTEMS INC"] != cluster_of["notice-BETA LAND AND FRUIT CO"]


def test_template_notices_of_different_companies_stay_apart():
    """Thirty dividend notices built on one template, each with its own company, amount and dates:
    the template lines recur in every notice, so no notice holds another."""
    rng = random.Random(11)
    combos = rng.sample([(div, pay, record) for div in ("10", "12-1/2", "15", "20", "25")
                         for pay in ("April One", "March 31", "April 15") for record in ("March 13", "Feb 27")], 30)
    notices = [Document.from_text(f"n{i}", f"{corpora.word(rng).upper()} {corpora.word(rng).upper()} CORP SETS "
                                           f"QUARTERLY DIVIDEND\nQtly div {div} cts vs {div} cts prior\n    Pay {pay}\n"
                                           f"    Record {record}\n Reuter")
               for i, (div, pay, record) in enumerate(combos)]
    assert dedup(notices).summary.removed == 0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.sampled_from([1, 3, 7, 1000]), workers=st.sampled_from([1, 2, 3]),
       budget=st.sampled_from([1, 1 << 30]))
def test_same_clusters_whatever_order_batch_size_threads_and_memory(seed, batch, workers, budget):
    """Shuffled input, other batch sizes, thread counts and spilling to disk give the same clusters
    and representatives (longest and earliest; first depends on the order by definition, so it is
    checked against the same order)."""
    items = corpora.make_corpus(seed % 97, stories=3)
    documents = [item.document() for item in items]
    shuffled = documents[:]
    random.Random(seed).shuffle(shuffled)
    for keep in ("longest", "earliest"):
        reference = dedup(documents, keep=keep, workers=1)
        result = dedup(shuffled, keep=keep, batch_size=batch, workers=workers, memory_budget=budget)
        assert clusters_of(result) == clusters_of(reference)
        assert {a.id: a.kind for a in result} == {a.id: a.kind for a in reference}
    reference = dedup(documents, keep="first", workers=1)
    result = dedup(documents, keep="first", batch_size=batch, workers=workers, memory_budget=budget)
    assert [a.to_dict() for a in result] == [a.to_dict() for a in reference]


def test_large_buckets_are_capped_and_exact_copies_collapse():
    """A story repeated 300 times (exact and near copies) forms one cluster: the big buckets give
    star pairs from the policy's favourites, not 45,000 pairs."""
    rng = random.Random(3)
    story = [corpora.paragraph(rng) for _ in range(6)]
    documents = [Document.from_text(f"copy-{i:03d}", "\n".join(story + ([f"By Reporter {i}"] if i % 2 else [])))
                 for i in range(300)]
    result = dedup(documents, keep="longest", config=Config(bucket_cap=16))
    assert len({a.cluster for a in result}) == 1
    assert result.summary.large_buckets > 0 and result.summary.candidate_pairs < 300 * 8


def test_clusters_lines_are_the_assignments_as_json(wire):
    """The fast CLUSTERS writer gives exactly json.dumps(assignment.to_dict()) for every document."""
    for keep in ("first", "longest"):
        result = dedup(wire_documents(wire), keep=keep, drop_repeats=True)
        assert [line.decode() for line in result.json_lines()] == \
            [json.dumps(a.to_dict(), ensure_ascii=False) for a in result]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), keep=st.sampled_from(["first", "longest", "earliest", "cleanest"]))
def test_dedup_against_a_reference_corpus(seed, keep):
    """Last month's kept documents are never removed; a new document one of them holds is removed
    as its copy (held directly); the result lists the new documents only; a new document removed
    as another new one's copy is held by it, and that one is kept."""
    items = corpora.make_corpus(seed % 53, stories=4)
    old = [i.document() for i in items if i.kind == "original"]
    new = [i.document() for i in items if i.kind != "original"]
    result = dedup(new, reference=old, keep=keep)
    assert [a.id for a in result] == [d.id for d in new]
    old_ids = {d.id for d in old}
    config = Config()
    plains = {d.id: corpora.plain(d) for d in old + new}
    kept = {a.id for a in result if a.representative}
    kept_forms = {f for i in kept | old_ids for f in plains[i].forms}

    def held(a) -> bool:  # its story by its representative, its furniture by a kept document
        furniture = corpora.furniture_kept(plains[a.id], kept_forms)
        return corpora.same_form(plains[a.id], plains[a.cluster]) or (
            corpora.story_coverage(plains[a.id], plains[a.cluster], furniture) >= config.min_coverage
            and corpora.coverage(plains[a.id], plains[a.cluster]) >= config.min_held
            and not corpora.orphans(plains[a.id], plains[a.cluster], furniture, config.story_words))

    for a in result:
        if a.cluster in old_ids:
            assert not a.representative and held(a)
    # the new documents the reference does not hold are deduplicated among themselves under the same
    # rule (the reference still counts in the paragraph frequencies, so not always as they would be alone)
    for a in result:
        if a.cluster not in old_ids and not a.representative:
            assert a.cluster in kept and held(a)
    # every copy its original holds with room to spare is found (one held less may stay: nothing is lost)
    copies = [i for i in items if i.kind in ("full", "exact", "dropped")
              and corpora.coverage(plains[i.id], plains[i.story]) >= config.min_coverage + 0.05]
    assert all(clusters_of(result)[i.id] == i.story for i in copies)


def test_cli_dedup_against(tmp_path):
    """--against: the reference's documents are not in CLUSTERS or KEPT; copies of them are removed."""
    lines = (ROOT_EXAMPLES / "wire.jsonl").read_text(encoding="utf-8").splitlines()
    originals = [line for line in lines if "-original" in json.loads(line)["id"]]
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text("\n".join(originals) + "\n", encoding="utf-8")
    new.write_text("\n".join(line for line in lines if line not in originals) + "\n", encoding="utf-8")
    kept, clusters = tmp_path / "kept.jsonl", tmp_path / "clusters.jsonl"
    assert main(["dedup", str(new), "--against", str(old), "--out", str(kept), "--clusters", str(clusters)],
                out=io.StringIO()) == 0
    rows = [json.loads(line) for line in clusters.read_text().splitlines()]
    assert len(rows) == len(lines) - len(originals)
    old_ids = {json.loads(line)["id"] for line in originals}
    assert not {r["id"] for r in rows} & old_ids and any(r["cluster"] in old_ids for r in rows)
    assert {json.loads(line)["id"] for line in kept.read_text().splitlines()} == \
        {r["id"] for r in rows if r["representative"]}


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), keep=st.sampled_from(["first", "longest", "earliest", "cleanest"]))
def test_an_index_as_the_reference_is_its_stored_documents(tmp_path_factory, seed, keep):
    """dedup(new, reference=index) gives what dedup(new, reference=the documents it holds) gives:
    on disk and in memory, after a removal (the removed document is no reference)."""
    from neardup import Index

    items = corpora.make_corpus(seed % 53, stories=4)
    old = [i.document() for i in items if i.kind == "original"]
    new = [i.document() for i in items if i.kind != "original"]
    gone, held = old[0], old[1:]
    expected = [a.to_dict() for a in dedup(new, reference=held, keep=keep)]
    path = str(tmp_path_factory.mktemp("ref") / "idx")
    with Index.open(path, writable=True) as disk:
        disk.add(old)
        assert disk.remove(gone.id)
    memory = Index()
    memory.add(old)
    memory.remove(gone.id)
    with Index.open(path) as disk:
        for index in (disk, memory):
            assert [d.id for d in index.documents()] == [d.id for d in held]
            assert [a.to_dict() for a in dedup(new, reference=index, keep=keep)] == expected


def test_cli_dedup_against_an_index_is_against_its_documents(tmp_path):
    """--against INDEX writes the files --against FILE writes for the documents the index holds."""
    lines = (ROOT_EXAMPLES / "wire.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text("".join(lines[::2]), encoding="utf-8")
    new.write_text("".join(lines[1::2]), encoding="utf-8")
    assert main(["index", str(tmp_path / "idx"), str(old), "-q"], out=io.StringIO()) == 0
    for name, against in (("file", old), ("index", tmp_path / "idx")):
        assert main(["dedup", str(new), "--against", str(against), "--out", str(tmp_path / f"{name}.kept.jsonl"),
                     "--clusters", str(tmp_path / f"{name}.clusters.jsonl"), "-q"], out=io.StringIO()) == 0
    for part in ("kept", "clusters"):
        assert (tmp_path / f"index.{part}.jsonl").read_bytes() == (tmp_path / f"file.{part}.jsonl").read_bytes()
    rows = [json.loads(line) for line in (tmp_path / "index.clusters.jsonl").read_text().splitlines()]
    old_ids = {json.loads(line)["id"] for line in lines[::2]}
    assert len(rows) == len(lines[1::2]) and any(r["cluster"] in old_ids for r in rows)


def test_duplicate_ids_are_skipped_and_counted():
    """A repeated id is skipped (the first record wins) and counted, never silently dropped."""
    a = Document.from_text("x", "One paragraph with enough words to count as a body paragraph here.")
    result = dedup([a, a, Document.from_text("y", "Another text entirely, unrelated to the first one at all.")])
    assert [r.id for r in result] == ["x", "y"] and result.summary.skipped["duplicate id"] == 1


def test_empty_corpus_gives_an_empty_result():
    result = dedup([])
    assert len(result) == 0 and result.summary.clusters == 0


# -- clustering on its own -----------------------------------------------------------------------------


def known(count: int, edges: dict[tuple[int, int], tuple[bool, bool]]) -> KnownPairs:
    """Pairs (a, b) -> (b holds a, a holds b)."""
    if not edges:
        return KnownPairs.build(empty_scores(), np.zeros(0, bool), np.zeros(0, bool))
    a = np.array([k[0] for k in edges]), np.array([k[1] for k in edges])
    scores = PairScores.from_columns(a[0], a[1], np.zeros((len(edges), VERIFY_COLUMNS)), np.zeros(len(edges), bool))
    return KnownPairs.build(scores, np.array([v[0] for v in edges.values()]), np.array([v[1] for v in edges.values()]))


def test_a_chain_is_split_where_the_representative_does_not_hold():
    """0 holds 1, 1 holds 2, 0 does not hold 2: two clusters, never 2 removed for 0."""
    pairs = known(3, {(0, 1): (False, True), (1, 2): (False, True), (0, 2): (False, False)})
    clusters = cluster(3, pairs, np.array([0, 1, 2]))
    assert clusters.representative.tolist() == [0, 0, 2]


def test_the_fuller_document_is_kept_over_the_policy_favourite():
    """The policy prefers 0, but 1 strictly holds 0 (0 is its flash): 1 is kept, 0 removed."""
    pairs = known(2, {(0, 1): (True, False)})
    assert cluster(2, pairs, np.array([0, 1])).representative.tolist() == [1, 1]


def test_pairs_needed_by_a_representative_are_verified_on_demand():
    """1 and 2 were only paired with 0; the policy's favourite is 2: pairs (2, 1) are verified late."""
    pairs = known(3, {(0, 1): (True, True), (0, 2): (True, True)})
    asked = []

    def verify(a, b):
        asked.append(sorted(zip(a.tolist(), b.tolist())))
        return known(3, {(int(x), int(y)): (True, True) for x, y in zip(a, b)})

    clusters = cluster(3, pairs, np.array([2, 1, 0]), verify)
    assert clusters.representative.tolist() == [2, 2, 2] and asked == [[(2, 1)]] and clusters.verified_late == 1


@settings(max_examples=100, deadline=None)
@given(edges=st.dictionaries(st.tuples(st.integers(0, 7), st.integers(0, 7)).filter(lambda e: e[0] < e[1]),
                             st.tuples(st.booleans(), st.booleans()), max_size=20),
       ranks=st.permutations(list(range(8))))
def test_clustering_only_removes_what_is_held(edges, ranks):
    """Whatever the pairs, every node's representative holds it (directly), and no unresolved loop."""
    pairs = known(8, edges)
    clusters = cluster(8, pairs, np.array(ranks))
    for node, rep in enumerate(clusters.representative.tolist()):
        if rep != node:
            assert clusters.representative[rep] == rep
            assert pairs.holds(np.array([rep]), np.array([node]))[0]


# -- the command line ----------------------------------------------------------------------------------


def test_cli_dedup_writes_kept_and_clusters(tmp_path, examples):
    """The command writes one CLUSTERS line per input and KEPT records with every field."""
    kept, clusters = tmp_path / "kept.jsonl", tmp_path / "clusters.jsonl"
    assert main(["dedup", str(examples / "wire.jsonl"), "--out", str(kept), "--clusters", str(clusters),
                 "--keep", "earliest"], out=io.StringIO()) == 0
    lines = [json.loads(line) for line in clusters.read_text().splitlines()]
    records = [json.loads(line) for line in kept.read_text().splitlines()]
    assert len(lines) == 26 and {r["id"] for r in records} == {c["id"] for c in lines if c["representative"]}
    assert all(set(r) == {"id", "text", "source", "date"} for r in records)
    assert {c["kind"] for c in lines} <= {"representative", "exact", "near-duplicate", "partial"}


def test_cli_dedup_drop_repeats(tmp_path, examples):
    """--drop-repeats removes the second copy of the body and records it."""
    kept, clusters = tmp_path / "kept.csv", tmp_path / "clusters.jsonl"
    assert main(["dedup", str(examples / "repeated-page.txt"), "--out", str(kept), "--clusters", str(clusters),
                 "--drop-repeats"], out=io.StringIO()) == 0
    line = json.loads(clusters.read_text())
    assert line["dropped_paragraphs"] == list(range(14, 27))
    rows = list(csv.DictReader(kept.open()))
    assert len(rows) == 1 and len(rows[0]["text"].splitlines()) == 14


def test_cli_dedup_of_zero_documents_is_an_error(tmp_path, capsys):
    """A run that reads no document (a wrong --text-field) exits 2 and says why."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "body": "Some text here."}) + "\n")
    code = main(["dedup", str(corpus), "--out", str(tmp_path / "k.jsonl"), "--clusters", str(tmp_path / "c2.jsonl")],
                out=io.StringIO())
    assert code == 2 and "no documents" in capsys.readouterr().err
