"""Figures matter: documents whose words agree and whose figures differ are not copies for removal
(dividend notices, weather notices, another day's price); a typo in a figure is still a copy."""

from __future__ import annotations

import json
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import corpora
from neardup import Document, native
from neardup.cli.main import main
from neardup.match.figures import figure_gaps
from neardup.pipeline.dedup import dedup
from neardup.text.figures import figure_keys, figure_strings, reference_keys, span_figure_keys, with_figures

HIGH = np.uint64(32)
SENTENCE = ("Asarco Inc said it is increasing its base spot price for refined lead by {step} cents to {price} cts "
            "a lb, effective immediately, the company said in a statement to its customers on Monday.")


def _key(text: str) -> int:
    return int(figure_keys([text])[0])


def test_what_is_a_figure():
    assert figure_strings("won 2-1 at 12:30, 5/8 of $1,234.50 (3) and -5C, +2.5 per cent") == \
        ["2-1", "12:30", "5/8", "1,234.50", "3", "-5", "+2.5"]
    # digits in entities, addresses, ad slots and words are not figures
    assert figure_strings("COVID-19 A380 &#8217; http://x.example/a?id=5 div-gpt-ad-123") == []
    assert _key("No figure here at all.") == 0


def test_same_words_other_figures_share_the_words_half_only():
    one, two = _key(SENTENCE.format(step="1.0", price="27")), _key(SENTENCE.format(step="0.50", price="26.50"))
    assert one >> 32 == two >> 32 and one != two
    assert _key("They won 2-1 at home.") == _key("They won 2\u20131 at home.")  # an en dash inside is a dash
    for a, b in [("+2.5", "-2.5"), ("-5C", "5C"), ("2-1", "2.1"), ("3\u20131", "3\u20132")]:
        x, y = _key(f"Prices moved {a} in the quarter."), _key(f"Prices moved {b} in the quarter.")
        assert x >> 32 == y >> 32 and x != y, (a, b)


def test_spacing_case_quotes_plurals_and_typos_do_not_change_a_key():
    base = SENTENCE.format(step="1.0", price="27")
    assert _key(base) == _key(base.upper().replace(" ", "  ")) == _key(base.replace("'", "\u2019"))
    assert _key("In 2001, the fund was set up.") == _key("In 200,1 the fund was set up.")
    assert _key("Rates for 1 day at 6.00 pct") >> 32 == _key("Rates for 32 days at 6.00 pct") >> 32


@given(st.lists(st.sampled_from(["price", "rose", "to", "per", "cent", "the", "notice", "of"]), min_size=3,
                max_size=12),
       st.lists(st.integers(0, 10**6), min_size=1, max_size=4), st.integers(0, 10**6))
def test_changing_one_figure_changes_the_figures_half_only(words, figures, other):
    """Property: a sentence with one figure replaced by another number keeps its words half and
    changes its figures half (unless the number is the same)."""
    text = " ".join(words) + " " + " ".join(map(str, figures))
    changed = " ".join(words) + " " + " ".join(map(str, [other, *figures[1:]]))
    a, b = _key(text), _key(changed)
    assert a >> 32 == b >> 32
    assert (a == b) == (other == figures[0])


FIGURE_TEXT = st.text(alphabet=st.sampled_from(list("0123456789+-\u2212\u2013.,:/ ()[]\"'$\u20ac\u00a3abcsS\u00e9\u00df"
                                                    "\u0130\u00a0\n\t\x00\U0001f600A")), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(FIGURE_TEXT, max_size=8))
def test_the_kernel_numpy_and_the_string_forms_give_the_same_keys(paragraphs):
    """Property: the compiled kernel, the numpy path and the plain-string reference (figures found
    one by one, figures_form and words_form hashed) give every paragraph the same key, and reading
    the paragraphs in place from whole texts gives the same keys as reading them alone."""
    expected = reference_keys(paragraphs)
    assert figure_keys(paragraphs).tolist() == expected.tolist()
    native.force_numpy(True)
    try:
        assert figure_keys(paragraphs).tolist() == expected.tolist()
    finally:
        native.force_numpy(False)
    text = "|".join(paragraphs)
    starts = np.cumsum([0] + [len(p) + 1 for p in paragraphs])[:-1]
    spans = np.array([(0, s, s + len(p)) for s, p in zip(starts.tolist(), paragraphs)], dtype=np.int64)
    assert span_figure_keys([text], spans).tolist() == expected.tolist()


def test_gaps_count_sentences_held_with_other_figures_both_ways():
    texts = [[SENTENCE.format(step="1.0", price="27"), "A line of its own with 12 figures."],
             [SENTENCE.format(step="0.50", price="26.50")],
             [SENTENCE.format(step="1.0", price="27")]]
    keys = figure_keys([p for doc in texts for p in doc])
    words = np.full(len(keys), 30)
    doc_offsets = np.array([0, 2, 3, 4])
    gaps = figure_gaps(keys, words, doc_offsets, np.array([0, 0, 1]), np.array([1, 2, 2]), 10)
    assert gaps.tolist() == [2.0, 0.0, 2.0]
    # a short line (a byline's time) is never a gap
    assert figure_gaps(keys, np.full(len(keys), 5), doc_offsets, np.array([0]), np.array([1]), 10).tolist() == [0.0]


def test_digests_tell_apart_texts_whose_figures_alone_differ():
    keys = figure_keys(["Prices moved +2.5 in the quarter.", "Prices moved -2.5 in the quarter.", "No figure."])
    digests = with_figures(np.zeros((3, 2), np.uint64), keys, np.array([0, 1, 2, 3]))
    assert digests[0].tolist() != digests[1].tolist()
    assert digests[2].tolist() == [0, 0]  # a document without a figure keeps its digest


def _notices() -> list[Document]:
    return corpora.figure_notices(random.Random(12))


def test_notices_that_differ_in_their_figures_stay_apart_and_a_resend_is_removed():
    """Twelve dividend notices of one company and twelve weather notices of one city: every one
    kept under every policy; an exact re-send of one is removed for it."""
    documents = _notices()
    for keep in ("first", "longest", "cleanest"):
        result = dedup(documents, keep=keep)
        removed = {a.id: a.cluster for a in result if not a.representative}
        assert removed == {"dividend-00-again": "dividend-00", "weather-00-again": "weather-00"}, keep
        # every kept notice says which notice would have held it but for its figures, with their scores
        for a in result:
            if a.representative:
                assert a.kind == "figures-differ" and a.differs_from is not None, a
                assert a.differs_from.split("-")[0] == a.id.split("-")[0] and a.differs_from != a.id
                assert (a.coverage or 0) >= 0.75 and (a.jaccard or 0) > 0.5
        assert result.summary.figures_differ == 24


def test_an_edition_with_other_prices_is_kept_and_a_typo_copy_is_removed():
    editions = [Document.from_text(f"lead-{k}", f"ASARCO UPS LEAD PRICE TO {p} CTS\n\n"
                                   + SENTENCE.format(step=s, price=p))
                for k, (s, p) in enumerate([("1.0", "27"), ("0.50", "26.50"), ("0.50", "27.50")])]
    typo_text = editions[0].text.replace("1.0 cents", "1.0cents").replace("Monday.", "Monday. ALSO READ")
    typo = Document.from_text("lead-0-copy", typo_text)
    signs = [Document.from_text(f"sign-{s}", f"Copper prices moved {s}2.5 per cent in the quarter as demand from "
                                "builders in the south of the country grew for the third month in a row.")
             for s in "+-"]
    result = {a.id: a for a in dedup([*editions, typo, *signs])}
    assert all(result[d.id].representative for d in [*editions, *signs])
    assert result["lead-0-copy"].cluster == "lead-0"


def test_the_command_line_keeps_the_notices_apart(tmp_path, capsys):
    documents = _notices()
    corpus = tmp_path / "notices.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in documents), encoding="utf-8")
    clusters = tmp_path / "clusters.jsonl"
    assert main(["dedup", str(corpus), "--out", str(tmp_path / "kept.jsonl"), "--clusters", str(clusters), "-q"]) == 0
    rows = [json.loads(line) for line in clusters.read_text().splitlines()]
    assert {r["id"]: r["cluster"] for r in rows if not r["representative"]} == \
        {"dividend-00-again": "dividend-00", "weather-00-again": "weather-00"}
    assert len(tmp_path.joinpath("kept.jsonl").read_text().splitlines()) == len(documents) - 2
    # the CLI writes the API's rows, figures-differ rows included, and counts them in --json
    assert rows == [a.to_dict() for a in dedup(documents)]
    assert {r["kind"] for r in rows if r["representative"]} == {"figures-differ"}
    capsys.readouterr()
    assert main(["dedup", str(corpus), "--out", str(tmp_path / "kept2.jsonl"), "--clusters",
                 str(tmp_path / "clusters2.jsonl"), "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["figures_differ"] == 24


def test_queries_still_find_another_edition_and_say_its_figures_differ(tmp_path, capsys):
    """An index that keeps texts answers a notice's other editions with kind figures-differ (the
    same notice with the same figures is exact); the CLI says the same; without texts the kind
    stays what the words say."""
    from neardup import Index

    documents = _notices()
    index = Index()
    index.add(documents)
    query = documents[0]  # dividend-00
    kinds = {m.id: m.kind for m in index.query(query.text)}
    assert kinds["dividend-00"] == kinds["dividend-00-again"] == "exact"
    assert {kinds[f"dividend-{k:02d}"] for k in range(1, 12)} == {"figures-differ"}
    assert not any(id.startswith("weather") for id in kinds)
    assert index.compare("dividend-01", "dividend-02").kind == "figures-differ"
    assert index.compare("dividend-00", "dividend-00-again").kind == "exact"
    corpus = tmp_path / "notices.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in documents), encoding="utf-8")
    story = tmp_path / "story.txt"
    story.write_text(query.text, encoding="utf-8")
    capsys.readouterr()
    assert main(["query", "--corpus", str(corpus), str(story), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["id"]: r["kind"] for r in rows} == kinds
    plain = Index.open(str(tmp_path / "plain.idx"), writable=True, keep_text=False)
    plain.add(documents)
    assert {m.kind for m in plain.query(query.text)} <= {"exact", "near-duplicate", "partial"}
    plain.close()
