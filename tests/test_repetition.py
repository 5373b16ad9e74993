"""Repetition inside a document: the repeated body of a scraped page, and the Gopher figures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from neardup.match.repetition import gopher_figures, repeats
from strategies import documents


def test_page_repeating_its_body_reports_thirteen_pairs(examples):
    """The example page (byline + 13-paragraph body twice, one copy with an ad call) gives 13 groups of 2."""
    report = repeats((examples / "repeated-page.txt").read_text(encoding="utf-8"))
    assert report.paragraphs == 27 and report.body_paragraphs == 26
    assert len(report.groups) == 13 and all(len(g.paragraphs) == 2 for g in report.groups)
    assert [g.paragraphs for g in report.groups] == [(i, i + 13) for i in range(1, 14)]
    assert report.repeated_paragraphs == 13
    assert report.duplicate_fraction == pytest.approx(0.5)
    assert 0.45 <= report.duplicate_char_fraction <= 0.55
    fused = [g for g in report.groups if not g.identical_text]
    assert [g.paragraphs for g in fused] == [(3, 16)]
    assert report.gopher["dup_5gram_char_frac"] == pytest.approx(0.5, abs=0.05)


def test_group_spans_quote_the_repeated_paragraphs(examples):
    """Each group's spans point at paragraphs of the original text that match in matching form."""
    from neardup import normalize
    text = (examples / "repeated-page.txt").read_text(encoding="utf-8")
    for group in repeats(text).groups:
        quoted = [normalize(text[s:e]) for s, e in group.spans]
        assert len(set(quoted)) == 1


def test_near_repeat_with_an_edit_is_grouped_as_near():
    """A paragraph repeated with one word changed is a near repeat."""
    paragraph = ("The council said the new tram line would open in spring, carrying about twelve thousand "
                 "passengers a day between the station and the university campus on the hill.")
    edited = paragraph.replace("twelve", "fifteen")
    report = repeats("\n".join([paragraph, "Something else entirely, written for this test alone.", edited]))
    assert [(g.paragraphs, g.kind) for g in report.groups] == [((0, 2), "near")]


def test_a_document_without_repetition_has_none():
    """Distinct paragraphs give no group and zero fractions."""
    report = repeats("First paragraph about ports and ships and cranes.\nSecond about trams and councils.")
    assert report.groups == () and report.duplicate_fraction == 0.0 and report.repeated_paragraphs == 0


def test_gopher_figures_on_a_small_text():
    """Duplicate lines and n-grams are counted as repeats of an earlier occurrence."""
    text = "alpha beta gamma delta epsilon\nalpha beta gamma delta epsilon\nzeta eta"
    figures = gopher_figures(text)
    assert figures["dup_line_frac"] == pytest.approx(1 / 3)
    assert figures["dup_5gram_char_frac"] == pytest.approx(26 / (26 * 2 + 7))
    assert figures["top_2gram_char_frac"] == pytest.approx(2 * 9 / (26 * 2 + 7))


@settings(max_examples=40, deadline=None)
@given(doc=documents)
def test_doubling_a_document_makes_every_body_paragraph_of_the_second_copy_a_repeat(doc):
    """Printing a document twice: the second copy repeats; fractions stay within [0, 1]."""
    report = repeats(doc + doc)
    assert report.repeated_paragraphs >= len(doc)
    assert 0.0 <= report.duplicate_fraction <= 1.0 and 0.0 <= report.duplicate_char_fraction <= 1.0
    repeated = {p for g in report.groups for p in g.paragraphs[1:]}
    assert {i + len(doc) for i in range(len(doc))} <= repeated | {g.paragraphs[0] for g in report.groups}
    for value in report.gopher.values():
        assert 0.0 <= value <= 1.0
