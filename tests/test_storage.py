"""One conformance suite for every Storage backend: MemoryStorage and DiskStorage must answer
alike, method by method, so that a test double can never drift from the real thing (a removed
document used to count in paragraph frequencies on disk until a merge, never in memory)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neardup import Config, Document, IndexFormatError
from neardup.index.disk import DiskStorage
from neardup.index.storage import MemoryStorage, Storage
from neardup.sketch.fingerprint import fingerprint

CONFIG = Config()
FOOTER = "Copyright the invented daily paper, all rights reserved, do not republish this story anywhere"
WORDS = ["port", "union", "strike", "crane", "talks", "minister", "council", "tram", "budget", "vote", "ship",
         "harbour", "city", "river", "bridge", "station", "airport", "farmer", "harvest", "price", "market", "bank",
         "rate", "growth", "export", "court", "judge", "appeal"]


def story(rng: random.Random, paragraphs: int = 4, footer: bool = False) -> str:
    body = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 30))) for _ in range(paragraphs)]
    return "\n".join(body + ([FOOTER] if footer else []))


def corpus(count: int, seed: int = 0) -> list[Document]:
    """Stories, every third with the footer, every fourth a copy of the one before."""
    rng = random.Random(seed)
    docs: list[Document] = []
    for i in range(count):
        text = docs[-1].text + "\nAn added closing line for the copy." if i % 4 == 3 else story(rng, footer=i % 3 == 0)
        docs.append(Document.from_text(f"d{i}", text, {"i": i}))
    return docs


def prints_of(docs: list[Document]):
    return fingerprint(docs, CONFIG, shingles=True)


@pytest.fixture(params=["memory", "disk"])
def make(request, tmp_path):
    """A factory of empty storages of one backend: ``make(keep_text=True)``."""
    opened: list[Storage] = []

    def factory(keep_text: bool = True, config: Config = CONFIG) -> Storage:
        if request.param == "memory":
            storage: Storage = MemoryStorage(config, keep_text=keep_text)
        else:
            storage = DiskStorage(tmp_path / f"idx{len(opened)}", config, writable=True, keep_text=keep_text)
        opened.append(storage)
        return storage

    factory.kind = request.param  # type: ignore[attr-defined]
    yield factory
    for storage in opened:
        storage.close()


@pytest.fixture()
def storage(make) -> Storage:
    return make()


def add(storage: Storage, docs: list[Document], replacing=()) -> np.ndarray:
    return storage.add(docs, prints_of(docs), replacing=replacing)


def ids_of(storage: Storage, numbers) -> set[str]:
    return {storage.document(int(n)).id for n in np.asarray(numbers).tolist()}


# -- add, number_of, present, document -------------------------------------------------------------------


def test_add_numbers_documents_in_order_and_never_reuses_a_number(storage):
    """Numbers are ascending from 0 across batches; a removed number is not given again."""
    docs = corpus(12)
    first, second = add(storage, docs[:5]), add(storage, docs[5:9])
    assert first.tolist() == list(range(5)) and second.tolist() == list(range(5, 9))
    storage.remove([8, 7])
    assert add(storage, docs[9:]).tolist() == [9, 10, 11]
    assert len(storage) == 10
    assert storage.numbers().tolist() == [0, 1, 2, 3, 4, 5, 6, 9, 10, 11]  # every live number, ascending


def test_number_of_and_present_agree_with_what_was_added(storage):
    """number_of finds each added id; present is the indexed subset of the ids asked."""
    docs = corpus(6)
    numbers = add(storage, docs)
    assert [storage.number_of(d.id) for d in docs] == numbers.tolist()
    assert storage.number_of("nope") is None
    assert storage.present(["d1", "nope", "d5", "d1"]) == {"d1", "d5"}
    assert storage.present([]) == set()


def test_document_returns_what_was_stored(make):
    """id, text (when kept), metadata, paragraph spans, digest and size of the fingerprints."""
    docs = corpus(3)
    prints = prints_of(docs)
    for keep_text in (True, False):
        storage = make(keep_text=keep_text)
        assert storage.keep_text is keep_text and (storage.needs_shingles or keep_text)
        numbers = storage.add(docs, prints)
        for row, number in enumerate(numbers.tolist()):
            stored = storage.document(number)
            assert (stored.number, stored.id, stored.metadata) == (number, docs[row].id, docs[row].metadata)
            assert stored.text == (docs[row].text if keep_text else None)
            assert np.array_equal(stored.spans, np.array(docs[row].paragraphs).reshape(-1, 2))
            assert stored.digest == tuple(int(v) for v in prints.doc_digests[row])
            assert stored.size == int(prints.doc_sizes[row])


def test_unknown_numbers_are_key_errors(storage):
    """document, columns, article_signature and article_summaries raise KeyError for a number
    never added or removed."""
    add(storage, corpus(3))
    storage.remove([1])
    for number in (1, 3, 99):
        with pytest.raises(KeyError):
            storage.document(number)
        with pytest.raises(KeyError):
            storage.columns(np.array([0, number]))
        with pytest.raises(KeyError):
            storage.article_signature(number)
        with pytest.raises(KeyError):
            storage.article_summaries(np.array([number]))


# -- remove and replace ----------------------------------------------------------------------------------


def test_a_removed_document_is_gone_from_every_method(storage):
    """After remove: not counted, not found by id, not a candidate, not in paragraph frequencies."""
    docs = corpus(8)
    prints = prints_of(docs)
    add(storage, docs)
    before = storage.paragraph_frequencies(prints.paragraph_digests)
    storage.remove([storage.number_of("d2")])
    assert len(storage) == 7 and storage.number_of("d2") is None and "d2" not in storage.present(["d2"])
    _, numbers = storage.article_candidates(prints.doc_signatures)
    _, par_numbers = storage.paragraph_candidates(prints.paragraph_signatures)
    assert 2 not in numbers.tolist() and 2 not in par_numbers.tolist()
    after = storage.paragraph_frequencies(prints.paragraph_digests)
    own = np.isin(prints.paragraph_digests, prints.paragraph_digests[prints.paragraph_rows(2)])
    assert np.array_equal(after[~own], before[~own])
    unique_own = np.unique(prints.paragraph_digests[prints.paragraph_rows(2)])
    assert np.array_equal(storage.paragraph_frequencies(unique_own),
                          MemoryCount(docs[:2] + docs[3:]).frequencies(unique_own))


class MemoryCount:
    """Paragraph document frequencies counted plainly, as the oracle."""

    def __init__(self, docs: list[Document]) -> None:
        prints = prints_of(docs)
        self.sets = [set(prints.paragraph_digests[prints.paragraph_rows(d)].tolist()) for d in range(len(docs))]

    def frequencies(self, digests: np.ndarray) -> np.ndarray:
        return np.array([sum(int(d) in s for s in self.sets) for d in digests.tolist()], dtype=np.int64)


def test_removing_unknown_or_repeated_numbers_changes_nothing(storage):
    """Numbers never added, already removed, or given twice are ignored."""
    add(storage, corpus(4))
    storage.remove([1, 1])
    storage.remove([1, 50, -3])
    storage.remove([])
    assert len(storage) == 3 and storage.present(["d0", "d1", "d2", "d3"]) == {"d0", "d2", "d3"}


def test_replacing_is_one_step(storage):
    """add(..., replacing=[n]) stores the new version and removes the old one together."""
    docs = corpus(4)
    add(storage, docs)
    new = Document.from_text("d1", docs[2].text + "\nA new ending for the replaced version.", {"v": 2})
    numbers = add(storage, [new], replacing=[storage.number_of("d1")])
    assert len(storage) == 4 and storage.number_of("d1") == int(numbers[0]) == 4
    assert storage.document(4).metadata == {"v": 2}
    with pytest.raises(KeyError):
        storage.document(1)
    assert storage.numbers().tolist() == [0, 2, 3, 4]


def test_frequencies_leave_out_removed_documents_before_and_after_merges(storage):
    """A footer held by k live documents counts k: right after a removal, and after the
    segments holding the removed ones were merged (on disk it counted them until a merge)."""
    docs = corpus(30)
    footer = prints_of([Document.from_text("f", FOOTER)]).paragraph_digests
    add(storage, docs[:6])
    holders = [d.id for d in docs if FOOTER in d.text]
    assert storage.paragraph_frequencies(footer).tolist() == [sum(FOOTER in d.text for d in docs[:6])]
    storage.remove([storage.number_of("d0"), storage.number_of("d3")])
    expected = sum(FOOTER in d.text for d in docs[:6] if d.id not in ("d0", "d3"))
    assert storage.paragraph_frequencies(footer).tolist() == [expected]
    for start in range(6, 30, 3):  # enough small batches for merges of every tier
        add(storage, docs[start:start + 3])
    live = [d for d in docs if d.id not in ("d0", "d3")]
    assert storage.stats()["segments"] < 9
    assert storage.paragraph_frequencies(footer).tolist() == [sum(FOOTER in d.text for d in live)] and holders


# -- candidates, summaries, columns ----------------------------------------------------------------------


def test_candidates_find_a_document_from_its_own_signatures_with_query_rows(storage):
    """Each document's article signature and each of its body paragraphs' signatures propose it;
    rows say which query asked."""
    docs = corpus(10)
    prints = prints_of(docs)
    numbers = add(storage, docs)
    rows, found = storage.article_candidates(prints.doc_signatures)
    pairs = set(zip(rows.tolist(), found.tolist()))
    assert all((row, int(n)) in pairs for row, n in enumerate(numbers))
    assert (3, 2) in pairs  # d3 is a copy of d2
    body = np.flatnonzero(prints.paragraph_words >= CONFIG.min_paragraph_words)
    rows, found = storage.paragraph_candidates(prints.paragraph_signatures[body])
    pairs = set(zip(rows.tolist(), found.tolist()))
    owners = prints.paragraph_owners[body]
    assert all((k, int(numbers[owner])) in pairs for k, owner in enumerate(owners.tolist()))


def test_candidates_of_nothing_are_empty(storage):
    """No signatures, or an empty storage: empty arrays, not errors."""
    empty = np.zeros((0, CONFIG.num_perm), dtype=np.uint32)
    for call in (storage.article_candidates, storage.paragraph_candidates):
        rows, numbers = call(empty)
        assert len(rows) == len(numbers) == 0
    rows, numbers = storage.article_candidates(prints_of(corpus(1)).doc_signatures)
    assert len(rows) == 0 and storage.paragraph_frequencies(np.array([1, 2], dtype=np.uint64)).tolist() == [0, 0]


def test_article_summaries_are_the_fingerprints(storage):
    """article_summaries and article_signature give back the signatures and shingle counts."""
    docs = corpus(7)
    prints = prints_of(docs)
    add(storage, docs[:4])
    add(storage, docs[4:])
    signatures, sizes = storage.article_summaries(np.array([6, 0, 3]))
    assert np.array_equal(signatures, prints.doc_signatures[[6, 0, 3]])
    assert sizes.tolist() == prints.doc_sizes[[6, 0, 3]].tolist()
    assert np.array_equal(storage.article_signature(5), prints.doc_signatures[5])


def test_columns_are_the_shingle_sequences_in_the_order_asked(make):
    """columns() gives each document's shingles, paragraph sizes, words, digests and spans, in the
    order of the numbers asked (a number asked twice comes twice), with or without kept texts."""
    docs = corpus(5)
    prints = prints_of(docs)
    for keep_text in (True, False):
        storage = make(keep_text=keep_text)
        storage.add(docs, prints)
        order = [3, 0, 3, 4]
        columns = storage.columns(np.array(order))
        assert columns.numbers.tolist() == order
        expected = prints.select(order)
        assert np.array_equal(columns.columns.shingles, expected.shingles)
        assert np.array_equal(np.diff(columns.columns.paragraph_offsets), expected.paragraph_sizes)
        assert np.array_equal(columns.columns.paragraph_words, expected.paragraph_words)
        assert np.array_equal(columns.columns.doc_offsets, expected.doc_offsets)
        assert np.array_equal(columns.paragraph_digests, expected.paragraph_digests)
        assert np.array_equal(columns.paragraph_spans, expected.paragraph_spans)
        assert np.array_equal(columns.doc_digests, expected.doc_digests)


# -- snapshots, stats ------------------------------------------------------------------------------------


def test_reading_is_reentrant_and_sees_the_storage(storage):
    """reading() nests, and everything read inside it agrees with itself."""
    docs = corpus(6)
    add(storage, docs)
    with storage.reading():
        with storage.reading():
            count = len(storage)
        _, numbers = storage.article_candidates(prints_of(docs).doc_signatures)
        assert count == 6 and ids_of(storage, numbers) == {d.id for d in docs}


def test_a_snapshot_does_not_see_a_concurrent_removal(make, tmp_path):
    """A reader inside reading() keeps seeing a document another writer removes meanwhile, and
    stops seeing it after (the disk store; in memory there is no second writer to isolate from)."""
    if make.kind == "memory":
        pytest.skip("one process, one MemoryStorage: no concurrent writer exists to isolate a reader from")
    writer = make()
    docs = corpus(6)
    prints = prints_of(docs)
    add(writer, docs)
    reader = DiskStorage(writer.path)
    try:
        with reader.reading():
            writer.remove([writer.number_of("d1")])
            add(writer, corpus(10, seed=3)[6:])
            assert len(reader) == 6 and reader.number_of("d1") == 1 and reader.document(1).id == "d1"
            _, numbers = reader.article_candidates(prints.doc_signatures[1:2])
            assert 1 in numbers.tolist() and reader.columns(np.array([1])).numbers.tolist() == [1]
        assert len(reader) == 9 and reader.number_of("d1") is None
        with pytest.raises(KeyError):
            reader.document(1)
    finally:
        reader.close()


def test_stats_describe_the_storage(storage):
    """stats() counts documents, paragraphs and segments and carries the configuration."""
    docs = corpus(5)
    prints = prints_of(docs)
    add(storage, docs)
    stats = storage.stats()
    assert stats["documents"] == 5 and stats["keep_text"] is True and stats["segments"] >= 1
    assert stats["paragraphs"] == sum(len(set(prints.paragraph_digests[prints.paragraph_rows(d)].tolist()))
                                      for d in range(5))
    assert Config.from_dict(stats["config"]) == CONFIG
    assert isinstance(storage.location, str) and storage.config == CONFIG


# -- both backends, one history ----------------------------------------------------------------------------

operations = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(1, 7)),
    st.tuples(st.just("remove"), st.lists(st.integers(0, 40), max_size=3)),
    st.tuples(st.just("replace"), st.integers(0, 40)),
), min_size=1, max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=operations)
def test_memory_and_disk_answer_alike_after_any_history(history, tmp_path_factory):
    """The same adds, removals and replacements applied to both backends leave them answering
    every method identically (numbers included)."""
    pool = corpus(60, seed=7)
    memory = MemoryStorage(CONFIG)
    disk = DiskStorage(tmp_path_factory.mktemp("history") / "idx", CONFIG, writable=True)
    try:
        added = 0
        for op, arg in history:
            for storage in (memory, disk):
                if op == "add" and added < len(pool):
                    batch = [d for d in pool[added:added + arg] if storage.number_of(d.id) is None]
                    add(storage, batch)
                elif op == "remove":
                    storage.remove([n for n in arg if n < 60])
                elif op == "replace" and storage.number_of(f"d{arg}") is not None:
                    new = Document.from_text(f"d{arg}", pool[(arg + 1) % len(pool)].text + "\nReplaced.")
                    add(storage, [new], replacing=[storage.number_of(f"d{arg}")])
            if op == "add":
                added += arg
        assert_alike(memory, disk, pool)
    finally:
        disk.close()


def assert_alike(memory: MemoryStorage, disk: DiskStorage, pool: list[Document]) -> None:
    prints = prints_of(pool)
    ids = [d.id for d in pool] + ["d-none"]
    assert len(memory) == len(disk)
    assert memory.present(ids) == disk.present(ids)
    numbers = [memory.number_of(id) for id in ids]
    assert numbers == [disk.number_of(id) for id in ids]
    for call in ("article_candidates", "paragraph_candidates"):
        signatures = prints.doc_signatures if call == "article_candidates" else prints.paragraph_signatures
        left, right = getattr(memory, call)(signatures), getattr(disk, call)(signatures)
        assert sorted(zip(*map(np.ndarray.tolist, left))) == sorted(zip(*map(np.ndarray.tolist, right)))
    assert np.array_equal(memory.paragraph_frequencies(prints.paragraph_digests),
                          disk.paragraph_frequencies(prints.paragraph_digests))
    live = np.array(sorted(n for n in numbers if n is not None), dtype=np.int64)
    for a, b in zip(memory.article_summaries(live), disk.article_summaries(live)):
        assert np.array_equal(a, b)
    if len(live):
        m, d = memory.columns(live), disk.columns(live)
        assert np.array_equal(m.columns.shingles, d.columns.shingles)
        assert np.array_equal(m.paragraph_digests, d.paragraph_digests)
        for number in live.tolist():
            a, b = memory.document(number), disk.document(number)
            assert (a.id, a.text, a.metadata, a.digest, a.size) == (b.id, b.text, b.metadata, b.digest, b.size)
    alive = [Document.from_text(memory.document(n).id, memory.document(n).text) for n in live.tolist()]
    assert np.array_equal(disk.paragraph_frequencies(prints.paragraph_digests),
                          MemoryCount(alive).frequencies(prints.paragraph_digests))
    assert memory.stats()["paragraphs"] == disk.stats()["paragraphs"]
    assert disk.verify()["documents"] == len(memory)


def test_a_disk_store_reopened_answers_as_before(tmp_path):
    """Closing and reopening (read-only) changes no answer."""
    docs = corpus(20)
    prints = prints_of(docs)
    writer = DiskStorage(tmp_path / "idx", CONFIG, writable=True)
    for start in range(0, 20, 5):
        add(writer, docs[start:start + 5])
    writer.remove([4, 9])
    before = (len(writer), writer.paragraph_frequencies(prints.paragraph_digests).tolist(),
              [a.tolist() for a in writer.article_candidates(prints.doc_signatures)])
    writer.close()
    reader = DiskStorage(tmp_path / "idx")
    try:
        after = (len(reader), reader.paragraph_frequencies(prints.paragraph_digests).tolist(),
                 [a.tolist() for a in reader.article_candidates(prints.doc_signatures)])
        assert after == before
        with pytest.raises(Exception) as caught:
            reader.remove([0])
        assert not isinstance(caught.value, IndexFormatError)
    finally:
        reader.close()
