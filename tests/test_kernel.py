"""The compiled kernel computes exactly what the numpy path computes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neardup import Config, Document, native
from neardup.sketch import kernel
from neardup.sketch.fingerprint import fingerprint

needs_kernel = pytest.mark.skipif(native.kernel is None, reason="built without a C compiler")

#: Pieces that exercise every branch of the kernel: markup it handles itself or hands to Python,
#: junk triggers, characters from its table and outside it.
PIECES = [
    "Beijing", "PARIS", "don't", "Xi’s", "“quoted”", "—", "–", "state-run", "1,234.5", "AFP",
    "(AFP)", "said (in", "x.push(", "googletag.cmd.push(function() { ad(); });", "function (a) {b}",
    "see www.example.com/x", "https://t.co/abc", "WWW.SITE.COM", "a:b", "ftp://", "w", "W.", "www",
    "<b>bold</b>", "<AAPL>", "< 5", "<script>x()</script>", "<!-- c -->", "</p>", "<a href='x(y)'>",
    "AT&T", "&amp;", "&#8217;", "&pound;5", "& co", "R&D;", "£5", "\u00a0", "café", "Éric", "ß",
    "İstanbul", "½", "…", "€", "×", "ΣΟΦΙΑ", "Москва", "שלום", "مرحبا", "e\u0301", "\u0301",
    "北京", "ภาษาไทย", "😂", "\ufb01", "\ufe58", "_under_", "$var", "\x00", "\t", "\x0c", "\x1c",
    "\u2028", "\r\n", "\n", "\r", "\n\n", " ", "  ", "7", "a", "function", "x.", ".y (",
]

texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), min_size=0, max_size=40).map("".join)


def _both_paths(documents: list[Document], monkeypatch: pytest.MonkeyPatch):
    config = Config()
    monkeypatch.setattr(kernel, "_TABLE_WORTH", 0)  # the full table even for tiny batches
    compiled = fingerprint(documents, config, shingles=True)
    monkeypatch.setattr(native, "_numpy_forced", True)
    assert not native.compiled()
    reference = fingerprint(documents, config, shingles=True)
    monkeypatch.setattr(native, "_numpy_forced", False)
    return compiled, reference


def _assert_same(compiled, reference) -> None:
    a, b = compiled, reference
    for name in ("doc_offsets", "paragraph_spans", "paragraph_words", "paragraph_sizes", "paragraph_digests",
                 "paragraph_signatures", "doc_sizes", "doc_digests", "doc_signatures", "shingles"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_kernel_is_built_where_a_compiler_is() -> None:
    """The build makes the kernel (CI machines have gcc); without it everything is slower."""
    if native._numpy_forced:
        pytest.skip("numpy path forced")
    assert native.kernel is not None, "neardup._kernel did not build: reinstall with a C compiler"
    assert native.compiled()


@needs_kernel
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(texts, min_size=1, max_size=6))
def test_compiled_equals_numpy_on_texts(monkeypatch: pytest.MonkeyPatch, bodies: list[str]) -> None:
    documents = [Document.from_text(str(i), body) for i, body in enumerate(bodies)]
    _assert_same(*_both_paths(documents, monkeypatch))


@needs_kernel
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(texts, max_size=8), min_size=1, max_size=4))
def test_compiled_equals_numpy_on_paragraph_lists(monkeypatch: pytest.MonkeyPatch,
                                                  documents: list[list[str]]) -> None:
    prepared = [Document.from_paragraphs(str(i), paragraphs) for i, paragraphs in enumerate(documents)]
    _assert_same(*_both_paths(prepared, monkeypatch))


@needs_kernel
@pytest.mark.parametrize("shingle_size,num_perm", [(1, 1), (3, 7), (5, 128), (9, 64), (64, 16)])
def test_compiled_equals_numpy_for_every_configuration(monkeypatch: pytest.MonkeyPatch, shingle_size: int,
                                                       num_perm: int) -> None:
    body = " ".join(PIECES * 3)
    documents = [Document.from_text("a", body), Document.from_text("b", body[:500]), Document.from_text("c", "")]
    config = Config(shingle_size=shingle_size, num_perm=num_perm)
    compiled = fingerprint(documents, config)
    monkeypatch.setattr(native, "_numpy_forced", True)
    reference = fingerprint(documents, config)
    np.testing.assert_array_equal(compiled.paragraph_signatures, reference.paragraph_signatures)
    np.testing.assert_array_equal(compiled.doc_signatures, reference.doc_signatures)
    np.testing.assert_array_equal(compiled.paragraph_sizes, reference.paragraph_sizes)


@needs_kernel
def test_replacement_table_follows_normalisation() -> None:
    start, length, blob, longest = kernel.replacement_table()

    def piece(ch: str) -> bytes | None:
        at = int(start[ord(ch)])
        return None if at < 0 else blob[at:at + int(length[ord(ch)])]

    assert piece("’") == b""          # apostrophes vanish: "Xi’s" matches "Xis"
    assert piece("—") == b" "         # dashes separate
    assert piece("\u00a0") == b" "
    assert piece("É") == "é".encode()
    assert piece("ß") == b"ss"        # case folding
    assert piece("½") == b"1 2"       # compatibility decomposition, then the fraction slash separates
    assert piece("\u0301") is None    # a combining mark composes with its neighbour: Python decides
    assert piece("ก") is None         # Thai is cut into characters by the Python steps
    assert 1 <= longest <= 255


@needs_kernel
def test_dirty_paragraphs_are_the_ones_python_must_see() -> None:
    texts = ["plain words here", "said (AFP) today", "googletag.cmd.push(x)", "AT&T and R&D", "&amp; more",
             "a <b>tag</b>", "<script>x</script>", "see www.x.com", "café", "北京"]
    spans = np.array([(i, 0, len(t)) for i, t in enumerate(texts)])
    offsets = np.arange(len(texts) + 1)
    _, dirty, _, _ = kernel._kernel_pass(texts, spans, offsets, False, 5, 8, 1, False)
    flagged = {t for t, d in zip(texts, dirty.tolist()) if d}
    # Without the table (a small batch) every non-ASCII paragraph goes to Python.
    assert flagged == {"googletag.cmd.push(x)", "&amp; more", "<script>x</script>", "see www.x.com", "café", "北京"}


@needs_kernel
def test_kernel_refuses_bad_buffers_without_crashing() -> None:
    from neardup.sketch.signatures import permutations
    from neardup.text.shingles import _LEN_SALT, _P

    a, b = permutations(4, 1)
    start, length, blob, _ = kernel._NO_TABLE

    def call(spans, form_size=100, rows=1):
        return native.kernel.sign_paragraphs(
            ["some text"], np.asarray(spans, dtype=np.int64), False, 5, _P, _LEN_SALT, kernel._POSITIONS, a, b,
            start, length, blob, 1, np.empty((rows, 4), np.uint32), np.empty(rows, np.int64),
            np.empty(rows, np.int64), np.empty(rows, np.uint64), np.empty(rows, np.uint8),
            np.empty(form_size, np.uint8),
            np.empty((rows, 2), np.int64), None, None)

    assert call([[0, 0, 9]])[0] > 0
    with pytest.raises(IndexError):
        call([[1, 0, 9]])      # no such text
    with pytest.raises(IndexError):
        call([[0, 5, 99]])     # beyond the text
    with pytest.raises(ValueError):
        call([[0, 0, 9]], form_size=3)   # output too small
    with pytest.raises(ValueError):
        call([[0, 0, 9], [0, 0, 9]], rows=1)  # more paragraphs than output rows


LINES = ["", " ", "\t", "\u3000", "\x1c", "\u2028", "\n", "\r", "\r\n", "    ", "Reuter", "said.", "end:",
         "x" * 29, "y" * 61 + " z", "w " * 33, "q" * 99, "r" * 101, "“quoted”", "it’s", "(AFP)",
         "THE HEADLINE IN CAPITALS", "    indented start of a paragraph that goes on", "e\u0301"]


@needs_kernel
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(LINES) | st.text(max_size=70), max_size=30).map("\n".join)
       | st.lists(st.sampled_from(LINES), max_size=30).map("".join))
def test_compiled_paragraph_split_equals_python(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    from neardup.text.paragraphs import split_paragraphs

    compiled = split_paragraphs(text)
    monkeypatch.setattr(native, "_numpy_forced", True)
    assert compiled == split_paragraphs(text)


@needs_kernel
def test_compiled_paragraph_split_rejoins_hard_wrapped_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from neardup.text.paragraphs import split_paragraphs

    wrapped = ("A HEADLINE\n" + "\n".join(["    " + "word " * 12] + ["text " * 13] * 3) + "\n"
               + "\n".join(["    " + "more " * 12] + ["line " * 13] * 2 + ["end."]))
    compiled = split_paragraphs(wrapped)
    assert len(compiled) == 3  # the headline, then two re-joined paragraphs
    monkeypatch.setattr(native, "_numpy_forced", True)
    assert split_paragraphs(wrapped) == compiled


@needs_kernel
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 300), st.integers(1, 8), st.integers(1, 4), st.booleans(), st.integers(0, 2**32 - 1))
def test_compiled_band_table_equals_numpy(monkeypatch: pytest.MonkeyPatch, n: int, bands: int, rows: int,
                                          ordered: bool, seed: int) -> None:
    from neardup.sketch.lsh import band_keys, fold32

    rng = np.random.default_rng(seed)
    signatures = rng.integers(0, 4, (n, bands * rows + 1), dtype=np.uint32)  # small values: equal keys
    items = rng.integers(0, 2**31 - 1, n)
    if ordered:
        items = np.sort(items)
    keys, owners = kernel.sorted_band_table(signatures, bands, rows, items)
    monkeypatch.setattr(native, "_numpy_forced", True)
    np_keys, np_owners = kernel.sorted_band_table(signatures, bands, rows, items)
    np.testing.assert_array_equal(keys, np_keys)
    np.testing.assert_array_equal(owners, np_owners)
    # The table holds exactly each row's band keys, band after band, each band sorted by (key, item).
    band_keys_of = fold32(band_keys(signatures, bands, rows))
    expected = [pair for b in range(bands) for pair in sorted(zip(band_keys_of[:, b].tolist(), items.tolist()))]
    assert keys.dtype == np.uint32 and list(zip(keys.tolist(), owners.tolist())) == expected


@needs_kernel
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 6), st.integers(0, 80), st.integers(0, 60), st.integers(0, 2**32 - 1),
       st.sampled_from([4, 2**8, 2**32]))
def test_band_table_runs_find_every_equal_key(monkeypatch: pytest.MonkeyPatch, bands: int, width: int,
                                              queries: int, seed: int, spread: int) -> None:
    rng = np.random.default_rng(seed)
    keys = np.sort(rng.integers(0, spread, (bands, width), dtype=np.uint64), axis=1).astype(np.uint32).ravel()
    picks = rng.integers(0, bands * width, queries) if width else np.zeros(0, np.int64)
    picked = (picks // max(width, 1)).astype(np.uint64) << np.uint64(32) | keys[picks].astype(np.uint64)
    others = (rng.integers(0, bands + 2, queries).astype(np.uint64) << np.uint64(32)) | \
        rng.integers(0, spread, queries, dtype=np.uint64)
    needles = np.concatenate((picked, others))
    lo, hi = kernel.band_table_runs(keys, bands, needles)
    for needle, a, b in zip(needles.tolist(), lo.tolist(), hi.tolist()):
        band, key = needle >> 32, needle & 0xFFFFFFFF
        if band >= bands:
            assert a == b == len(keys)
            continue
        table = keys[band * width:(band + 1) * width]
        assert a == band * width + int(np.searchsorted(table, key, "left"))
        assert b == band * width + int(np.searchsorted(table, key, "right"))
    monkeypatch.setattr(native, "_numpy_forced", True)
    np_lo, np_hi = kernel.band_table_runs(keys, bands, needles)
    np.testing.assert_array_equal(lo, np_lo)
    np.testing.assert_array_equal(hi, np_hi)


@needs_kernel
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 500), st.integers(0, 60), st.integers(0, 2**32 - 1), st.sampled_from([3, 2**20, 2**64]))
def test_count_equal_equals_searchsorted(monkeypatch: pytest.MonkeyPatch, size: int, queries: int, seed: int,
                                         spread: int) -> None:
    rng = np.random.default_rng(seed)
    keys = np.sort(rng.integers(0, spread, size, dtype=np.uint64, endpoint=False) if spread < 2**64
                   else rng.integers(0, 2**64 - 1, size, dtype=np.uint64, endpoint=True))
    needles = np.concatenate((keys[rng.integers(0, size, queries)] if size else np.zeros(0, np.uint64),
                              rng.integers(0, 2**64 - 1, queries, dtype=np.uint64, endpoint=True),
                              np.array([0, 2**64 - 1], dtype=np.uint64)))
    counts = kernel.count_equal(keys, needles)
    monkeypatch.setattr(native, "_numpy_forced", True)
    np.testing.assert_array_equal(counts, kernel.count_equal(keys, needles))


@needs_kernel
def test_text_with_more_words_than_half_its_characters_is_fingerprinted_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """'½' is two words ("1 2") in one character: the shingle buffer sized for plain text overflows,
    the kernel says so and runs again with room for every shingle; the result equals the numpy path."""
    documents = [Document.from_text("halves", " ".join(["½½½½"] * 3000)), Document.from_text("plain", "a b c d e f")]
    compiled, reference = _both_paths(documents, monkeypatch)
    _assert_same(compiled, reference)
    assert compiled.shingles is not None and len(compiled.shingles) > 12000
