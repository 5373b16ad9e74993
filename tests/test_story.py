"""Dedup keeps the story, not the clutter: furniture held by other kept documents does not stop a
removal, a story of a document's own always does, and ``keep="cleanest"`` keeps the clean copy."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import corpora
from neardup import Config, Document
from neardup.cli.main import main
from neardup.pipeline.dedup import dedup

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _story(rng: random.Random, paragraphs: int = 6) -> list[str]:
    return [corpora.paragraph(rng, 30, 60) for _ in range(paragraphs)]


def _furniture(rng: random.Random, count: int = 4) -> list[str]:
    """A site's about box, newsletter box, cookie notice and copyright: 25-40 words each."""
    return [corpora.paragraph(rng, 25, 40) for _ in range(count)]


def _clusters(result) -> dict[str, str]:
    return {a.id: a.cluster for a in result}


def _kept_texts(documents: list[Document], result) -> str:
    kept = {a.id for a in result if a.representative}
    return "\n".join(d.text for d in documents if d.id in kept)


def test_a_small_sites_stories_are_never_copies_of_each_other_through_its_furniture():
    """50 pages of one site, each a different 30-word story plus the same four furniture
    paragraphs: every page is kept (before, one was kept and 49 stories removed)."""
    rng = random.Random(50)
    furniture = _furniture(rng)
    documents = [Document.from_text(f"page-{i:02d}", "\n".join([corpora.paragraph(rng, 30, 30), *furniture]))
                 for i in range(50)]
    for keep in ("first", "longest", "cleanest"):
        result = dedup(documents, keep=keep)
        assert result.summary.removed == 0, keep


def test_two_stories_sharing_their_background_are_both_kept():
    """Two different stories that share two paragraphs of background are not copies."""
    rng = random.Random(7)
    background = [corpora.paragraph(rng, 40, 50) for _ in range(2)]
    one = Document.from_text("one", "\n".join([corpora.paragraph(rng, 25, 30), *background]))
    two = Document.from_text("two", "\n".join([corpora.paragraph(rng, 25, 30), *background]))
    assert dedup([one, two]).summary.removed == 0


def test_exact_repeats_are_still_removed():
    rng = random.Random(3)
    text = "\n".join(_story(rng))
    documents = [Document.from_text(f"copy-{i}", text) for i in range(5)]
    result = dedup(documents, keep="cleanest")
    assert result.summary.removed == 4 and {a.kind for a in result if not a.representative} == {"exact"}


def _outlet_world(seed: int) -> tuple[list[Document], dict[str, str]]:
    """Six stories; each has a clean original, and an outlet copy (byline, an "ALSO READ" line, the
    outlet's long footer) from each of three outlets, one of which cut the story short. Returns the
    documents and, for each document, its story's original."""
    rng = random.Random(seed)
    outlets = {name: (f"By {name.title()} staff", _furniture(rng, 1)[0]) for name in ("north", "south", "west")}
    documents, story_of = [], {}
    for s in range(6):
        story = _story(rng)
        original = f"story-{s}"
        documents.append(Document.from_text(original, "\n".join(story)))
        story_of[original] = original
        for o, (name, (byline, footer)) in enumerate(outlets.items()):
            body = story[:3] if o == 2 else story
            also = f"ALSO READ | {corpora.paragraph(rng, 5, 7)}"
            copy = f"{name}-{s}"
            documents.append(Document.from_text(copy, "\n".join([byline, body[0], also, *body[1:], footer])))
            story_of[copy] = original
    return documents, story_of


def test_cleanest_keeps_the_clean_original_and_one_page_of_each_outlet():
    """Under ``cleanest`` every story keeps its clean original, and every outlet copy — the
    truncated one too — is removed for it, but for one page of each outlet: its footer is on no
    other kept page, so one page keeps it (the best-ranked), and the others may then go."""
    documents, story_of = _outlet_world(11)
    result = dedup(documents, keep="cleanest")
    clusters = _clusters(result)
    kept = {id for id, cluster in clusters.items() if id == cluster}
    assert {id for id in story_of if id.startswith("story-")} <= kept
    for outlet in ("north", "south", "west"):
        assert len([id for id in kept if id.startswith(outlet)]) == 1, outlet
    assert all(clusters[id] == original for id, original in story_of.items() if id not in kept)
    assert result.summary.clusters == 9 and result.summary.kept_for_loss == 3


@pytest.mark.parametrize("keep", ["first", "longest", "earliest", "cleanest"])
def test_every_word_of_a_removed_outlet_copy_is_kept_somewhere(keep):
    """The footer of a removed copy is in a kept document; the copies' paragraphs all are."""
    documents, _ = _outlet_world(12)
    result = dedup(documents, keep=keep)
    kept = _kept_texts(documents, result)
    for document in documents:
        for start, end in document.paragraphs:
            paragraph = document.text[start:end]
            if len(paragraph.split()) >= Config().story_words:
                assert paragraph in kept, (keep, document.id, paragraph[:40])


def test_a_removal_whose_furniture_no_kept_document_holds_is_undone():
    """Copies whose long footer only other removed copies carry (an outlet seen nowhere else):
    one of them is kept, or the footer would be lost; the others are removed."""
    rng = random.Random(5)
    footer = corpora.paragraph(rng, 30, 35)
    documents = []
    for s in range(4):
        story = _story(rng)
        documents.append(Document.from_text(f"story-{s}", "\n".join(story)))
        documents.append(Document.from_text(f"outlet-{s}", "\n".join([*story, footer])))
    result = dedup(documents, keep="cleanest")
    assert footer in _kept_texts(documents, result)
    assert result.summary.kept_for_loss == 1 and result.summary.removed == 3


def test_cleanest_on_the_command_line_keeps_what_the_api_keeps(tmp_path):
    """neardup dedup --keep cleanest gives the API's clusters: the clean originals kept."""
    documents, story_of = _outlet_world(13)
    corpus = tmp_path / "outlets.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in documents), encoding="utf-8")
    clusters = tmp_path / "clusters.jsonl"
    assert main(["dedup", str(corpus), "--out", str(tmp_path / "kept.jsonl"), "--clusters", str(clusters),
                 "--keep", "cleanest", "-q"]) == 0
    rows = {r["id"]: r["cluster"] for r in map(json.loads, clusters.read_text().splitlines())}
    assert rows == _clusters(dedup(documents, keep="cleanest"))
    assert all(rows[original] == original for original in set(story_of.values()))


def test_clusters_say_which_kept_documents_hold_what_the_representative_lacks(tmp_path):
    """A removed outlet copy whose footer its representative (the original) lacks names the kept
    page of its outlet that holds it; its count is the paragraphs concerned; on the CLI as well."""
    documents, story_of = _outlet_world(11)
    result = dedup(documents, keep="cleanest")
    kept = {a.id for a in result if a.representative}
    by_id = {d.id: d for d in documents}
    checked = 0
    for a in result:
        if a.representative or a.id.startswith("story-"):
            continue
        outlet = a.id.split("-")[0]
        page = next(id for id in kept if id.startswith(outlet))
        assert a.cluster == story_of[a.id] and a.held_elsewhere >= 1 and page in a.held_by, a
        for holder in a.held_by:
            assert holder in kept
            texts = {by_id[holder].text[s:e] for s, e in by_id[holder].paragraphs}
            mine = {by_id[a.id].text[s:e] for s, e in by_id[a.id].paragraphs}
            assert texts & mine - {by_id[a.cluster].text[s:e] for s, e in by_id[a.cluster].paragraphs}
        checked += 1
    assert checked == 15
    corpus = tmp_path / "outlets.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in documents), encoding="utf-8")
    clusters = tmp_path / "clusters.jsonl"
    assert main(["dedup", str(corpus), "--out", str(tmp_path / "kept.jsonl"), "--clusters", str(clusters),
                 "--keep", "cleanest", "-q"]) == 0
    rows = [json.loads(line) for line in clusters.read_text().splitlines()]
    assert [r.get("held_elsewhere") for r in rows] == \
        [{"paragraphs": a.held_elsewhere, "by": list(a.held_by)} if not a.representative else None for a in result]
