"""The matching form: what it erases, what it keeps, and the map back to the original."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from neardup import normalize, normalize_with_offsets
from neardup.text.junk import junk_spans
from neardup.text.normalize import normalize_many
from strategies import messy_text


def test_quotes_dashes_case_entities_tags_and_width_are_erased():
    """Typographic variants of the same words have the same matching form."""
    plain = normalize("Beijing's \"no limits\" partnership - said Friday & more")
    fancy = normalize("<p>BEIJING’S “no&nbsp;limits” partnership — said <b>Ｆｒｉｄａｙ</b> &amp; more</p>")
    assert plain == fancy == "beijings no limits partnership said friday more"


def test_accents_compose_and_case_folds():
    """Decomposed and precomposed accents, and ß/SS, fold to one form."""
    assert normalize("Cafe\u0301 STRASSE") == normalize("café straße")


def test_scripts_without_spaces_become_character_tokens():
    """Chinese and Thai characters are tokens of their own, Thai vowel marks kept with their letter."""
    assert normalize("北京欢迎你") == "北 京 欢 迎 你"
    assert normalize("สวัสดีครับ").split() == ["ส", "วั", "ส", "ดี", "ค", "รั", "บ"]


def test_combining_vowel_signs_stay_inside_words():
    """Devanagari vowel signs are part of the word, not separators."""
    assert normalize("हिन्दी भाषा") == "हिन्दी भाषा"


def test_seed_style_ad_call_is_removed_without_eating_the_sentence():
    """An ad call fused onto a sentence disappears; the last word of the sentence stays."""
    fused = ("in Uzbekistan in September.googletag.cmd.push(function() "
             "{googletag.display(‘div-gpt-ad-8052921-2′); });")
    assert normalize(fused) == normalize("in Uzbekistan in September.")
    other = "Argentina closes debt swap(adsbygoogle = window.adsbygoogle || []).push({});"
    assert normalize(other) == "argentina closes debt swap"


def test_urls_and_scripts_are_junk_but_prose_is_not():
    """URLs and script blocks are junk; ordinary prose with dots and brackets is left alone."""
    assert normalize("Read more at https://example.org/a?utm=1 today") == "read more at today"
    assert normalize("<script>var x = {a: 1};</script>Hello") == "hello"
    prose = "The U.S. economy (the world's largest) grew 2.5% in 2019, e.g. in services."
    assert junk_spans(prose) == []


@settings(max_examples=200, deadline=None)
@given(text=messy_text)
def test_offsets_map_each_token_back_to_its_original_text(text):
    """Every token of the matching form comes from an original span that normalises to contain it."""
    normalized = normalize_with_offsets(text)
    assert normalized.text == normalize(text)
    for match in re.finditer(r"\S+", normalized.text):
        start, end = normalized.original_span(*match.span())
        assert 0 <= start < end <= len(text)
        assert match.group() in normalize(text[start:end]).split() or match.group() in normalize(text[start:end])


@settings(max_examples=200, deadline=None)
@given(text=messy_text)
def test_normalisation_is_idempotent_and_single_spaced(text):
    """The matching form is its own matching form, with single spaces and no edges."""
    once = normalize(text)
    assert normalize(once) == once
    assert "  " not in once and once == once.strip()


@settings(max_examples=200, deadline=None)
@given(paragraphs=st.lists(messy_text, max_size=6))
def test_batch_normalisation_equals_one_paragraph_at_a_time(paragraphs):
    """Normalising paragraphs joined in one pass gives each paragraph's own matching form."""
    assert normalize_many(paragraphs) == [normalize(p) for p in paragraphs]
    assert all("\n" not in p for p in normalize_many(paragraphs))


#: Characters that exercise the vectorised steps: unspaced scripts (with marks of their own, and marks
#: after other letters), compatibility characters that expand ("㌀" → "アパート"), voiced marks that
#: compose, Hangul jamo, a character outside the Basic Multilingual Plane, a lone surrogate.
PIECES = ["a", "é", "e\u0301", " ", "\n", "\u0e01", "\u0e31", "\u0e48", "\u0301", "\u3042", "\u4e00",
          "\u3300", "\u30c8", "\u3099", "\u309a", "\u1100", "\u1161", "\u11a8", "\uff21", "\ufb01",
          "\U00020001", "\u1000", "\u102c", "\ud800", "x"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_spacing_unspaced_scripts_matches_the_regex_it_replaces(text):
    """The numpy spacing of unspaced scripts puts spaces exactly where the regex substitution did."""
    from neardup.text.normalize import _UNSPACED, _space_unspaced

    assert _space_unspaced(text) == _UNSPACED.sub(r" \g<0> ", text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("".join), st.integers(1, 3))
def test_nfkc_of_long_texts_is_unicodes_nfkc(piece, repeat):
    """NFKC by table, for long texts of segment-starting characters, is exactly Unicode's NFKC."""
    import unicodedata

    import neardup.text.normalize as normalize_module

    text = piece * (normalize_module._NFKC_BY_CHAR // len(piece) + repeat)
    assert normalize_module._nfkc(text) == unicodedata.normalize("NFKC", text)


def test_a_paragraph_of_words_in_brackets_is_never_junk():
    """A dotted name before a bracket once made everything up to the closing bracket an "ad call":
    `The petition on change.org (` + paragraphs of prose + `)` vanished from the matching form, and
    so did prose written as `function (reader) {...}`. Words are content, whatever surrounds them."""
    prose = "we ask the council to keep the library open because families need it every week. " * 20
    for text in (f"The petition on change.org ({prose}) was signed by thousands.",
                 f"As the author says, function (reader) {{ {prose} }} is what a story is.",
                 f"<script>{prose}</script> and then the story went on."):
        assert "families need it every week" in normalize(text), text
    # code is still junk
    assert normalize("Read more googletag.cmd.push(function() { googletag.display('div-gpt-ad-1'); }); here") \
        == "read more here"
    assert normalize("Unrelated <!-- ad slot 3 --> text") == "unrelated text"


JUNK = st.sampled_from([
    "googletag.cmd.push(function() { googletag.display('div-gpt-ad-1'); });",
    "(adsbygoogle = window.adsbygoogle || []).push({});",
    "https://example.org/story?utm_source=feed&id=7",
    "<script>var slot = {a: 1, b: [2, 3]};</script>",
    "window.dataLayer.push({'event': 'pageview', 'id': 42});",
    "function(a,b){return a+b}",
])
WORDS = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=9), min_size=8, max_size=14)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(JUNK, WORDS.map(" ".join)), min_size=1, max_size=8), prose=WORDS,
       where=st.integers(0, 10_000))
def test_adding_prose_always_changes_the_matching_form(parts: list[str], prose: list[str], where: int) -> None:
    """Words added anywhere between a document's tokens (inside a snippet's brackets too) are in its
    matching form: no junk rule swallows a run of words."""
    text = " ".join(parts)
    gaps = [0, len(text)] + [i for i, ch in enumerate(text) if ch == " "]
    at = sorted(gaps)[where % len(gaps)]
    added = " ".join(prose)
    longer = f"{text[:at]} {added} {text[at:]}"
    assert added in normalize(longer)
