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
