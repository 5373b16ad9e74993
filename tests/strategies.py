"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

from hypothesis import strategies as st

WORDS = ["the", "minister", "said", "port", "strike", "talks", "on", "friday", "union", "ships", "crane",
         "workers", "agreement", "price", "city", "council", "vote", "tram", "line", "budget", "a", "of"]

#: A word of plain Latin letters.
words = st.sampled_from(WORDS)
#: Arbitrary tokens: letters of several scripts and digits.
tokens = st.text(alphabet=st.characters(categories=("Ll", "Lu", "Nd", "Lo")), min_size=1, max_size=8)
#: Paragraphs of 1–40 known words.
paragraphs = st.lists(words, min_size=1, max_size=40).map(" ".join)
#: Documents of 1–12 paragraphs.
documents = st.lists(paragraphs, min_size=1, max_size=12)
#: Sets of 32-bit shingle hashes.
hash_sets = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=300, unique=True)
#: Any Unicode text, including controls, odd spaces, quotes and markup fragments.
_pieces = st.one_of(st.characters(), st.sampled_from(
    list("<>&;'’“”—–-\n\t .(){}") + ["&amp;", "<b>", "</p>", "é", "e\u0301", "googletag.cmd.push(", "https://x.io/a",
                                   "ß", "ﬁ", "Ｆ", "北京", "ดี", "don't"]))
messy_text = st.lists(_pieces, max_size=60).map("".join)
