"""Shingles: vectorised hashing equals the plain reference; never across paragraphs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from neardup.text.shingles import (
    ngram_hashes,
    shingle_hash_reference,
    shingle_paragraphs,
    token_hash_reference,
    token_hashes,
)
from strategies import documents, tokens


def reference_shingles(paragraph: str, size: int) -> list[int]:
    words = paragraph.split()
    if not words:
        return []
    if len(words) < size:
        return [shingle_hash_reference(words)]
    return [shingle_hash_reference(words[i:i + size]) for i in range(len(words) - size + 1)]


@settings(max_examples=80, deadline=None)
@given(paragraphs=st.lists(st.lists(tokens, max_size=15).map(" ".join), min_size=1, max_size=6),
       size=st.integers(1, 7))
def test_vectorised_hashes_equal_reference(paragraphs, size):
    """Batch hashing gives, paragraph by paragraph, the shingle hashes of the plain reference."""
    result = shingle_paragraphs(paragraphs, size)
    for index, paragraph in enumerate(paragraphs):
        ours = result.hashes[result.paragraph == index].tolist()
        assert ours == reference_shingles(paragraph, size)
        assert result.paragraph_words[index] == len(paragraph.split())


@settings(max_examples=50, deadline=None)
@given(doc=documents, size=st.integers(2, 6))
def test_shingles_never_cross_paragraphs(doc, size):
    """Shingling a batch equals shingling each paragraph alone: no shingle spans a boundary."""
    together = shingle_paragraphs(doc, size)
    for index, paragraph in enumerate(doc):
        alone = shingle_paragraphs([paragraph], size)
        assert together.hashes[together.paragraph == index].tolist() == alone.hashes.tolist()


def test_short_paragraph_is_one_shingle_and_empty_is_none():
    """A paragraph shorter than the shingle size is one shingle; an empty one has none."""
    result = shingle_paragraphs(["by staff", "", "one two three four five six"], 5)
    assert result.paragraph.tolist() == [0, 2, 2]
    assert result.paragraph_words.tolist() == [2, 0, 6]


def test_order_and_words_matter():
    """Reordered or changed words give other shingles."""
    base = shingle_paragraphs(["the union said talks had collapsed"], 5).hashes
    reordered = shingle_paragraphs(["the union said had talks collapsed"], 5).hashes
    assert not set(base.tolist()) & set(reordered.tolist())


def test_golden_shingle_hash():
    """The hash of a fixed shingle is pinned."""
    assert shingle_hash_reference(["the", "union", "said", "talks", "had"]) == \
        int(shingle_paragraphs(["the union said talks had"], 5).hashes[0])
    assert shingle_hash_reference(["north", "sea"]) == GOLDEN_NORTH_SEA


GOLDEN_NORTH_SEA = 2069375955


@settings(max_examples=40, deadline=None)
@given(words=st.lists(tokens, max_size=30), n=st.integers(1, 6))
def test_ngram_hashes_equal_for_equal_ngrams(words, n):
    """Two positions have the same n-gram hash exactly when their n words are equal."""
    hashes, lengths = token_hashes(" ".join(words))
    assert lengths.tolist() == [len(w.encode("utf-8")) for w in words]
    grams = ngram_hashes(hashes, n).tolist()
    texts = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    for i in range(len(grams)):
        for j in range(len(grams)):
            assert (grams[i] == grams[j]) == (texts[i] == texts[j])


def test_tokens_longer_than_the_hash_window_hash_like_the_reference():
    """Very long tokens (a 100 MB line of one word) hash exactly as the plain reference does."""
    from neardup.text.shingles import _WINDOW, token_hash_reference
    text = "x" * (2 * _WINDOW + 5) + " ab " + "y" * (_WINDOW - 3) + " cd " + "z" * (5 * _WINDOW + 1)
    hashes, _ = token_hashes(text)
    assert [int(h) for h in hashes] == [token_hash_reference(w) for w in text.split()]


@given(st.lists(st.text(max_size=300), max_size=20))
def test_form_digests_hash_each_string_as_one_token(texts: list[str]) -> None:
    from neardup.text.shingles import form_digests

    forms = [t.encode("utf-8") for t in texts]
    assert form_digests(forms).tolist() == [token_hash_reference(t) for t in texts]
