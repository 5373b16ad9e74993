"""The dedup stages as functions over Arrow batches, for engines that move data as Arrow (Spark).

Each function here wraps a pure stage of :mod:`neardup.pipeline.stages` (or one of the modules it
uses) so that it reads and writes Arrow record batches: Spark runs them in its Python workers
(``mapInArrow``), and nothing here imports pyspark, so they are tested, and can run, without it.
The columns are fixed-width integers and lists of them; unsigned 64-bit values (band keys,
digests) travel as signed ``int64`` bit for bit, since Spark has no unsigned types.

Documents are identified by a ``row``: any distinct ``int64``, not necessarily dense (Spark's
``monotonically_increasing_id``). An exact class is named by its smallest row (its *leader*),
and classes are compared and paired by those names; where a numpy stage needs dense indices
(bucket pairs, clustering) a batch numbers its own classes in the order of their names, so that
the orientation of every pair (smaller name first) is the one the local executor uses.

Functions that need whole groups (a bucket, a document's candidate pairs, a component) read a
partition sorted by the group key and take it chunk by chunk (:func:`grouped_chunks`): a group
never straddles two chunks, and many groups go through one call of the vectorised stage.

Dedup against a reference corpus follows :func:`neardup.dedup` (``reference=``): the
reference classes are the ``fixed`` nodes of :func:`~neardup.pipeline.clustering.cluster`, never held
(:func:`~neardup.pipeline.clustering.never_held`), so both engines cluster on the same links.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from neardup.arrays import offsets, run_starts
from neardup.config import Config
from neardup.io.checks import id_problem, text_problem
from neardup.io.reader import DEFAULT_MAX_PARAGRAPHS, DEFAULT_MAX_RECORD_BYTES
from neardup.match.boilerplate import paragraph_weights
from neardup.match.candidates import bucket_pairs, searchable, split_pairs
from neardup.match.scores import PairScores, holds, score_pairs
from neardup.pipeline import stages
from neardup.pipeline.clustering import Clusters, KnownPairs, cluster
from neardup.pipeline.policy import date_key
from neardup.pipeline.result import ClusterColumns, clusters_lines
from neardup.records import ShingleColumns
from neardup.sketch.fingerprint import fingerprint_columns
from neardup.sketch.lsh import Bands
from neardup.text.figures import with_figures
from neardup.text.paragraphs import spans_of_paragraph_list, split_paragraphs

try:  # Arrow is what these functions speak; the local reference dedup below does not need it
    import pyarrow as pa
except ImportError:  # pragma: no cover - the spark extra installs it
    pa = None

#: A band key's bucket is its top 38 bits (6 bits of partition, 32 compared: :mod:`neardup.match.candidates`);
#: bit 38 tells paragraph keys from article keys, which the local executor keeps in two spills.
BUCKET_SHIFT = 26
PARAGRAPH_BUCKET = 1 << 38
#: Documents of a reference corpus have rows below this (new documents' rows are offset by it).
NEW_ROWS = 1 << 62
#: Rows a grouped chunk gathers before it is processed (a larger group is taken whole).
CHUNK_ROWS = 1 << 16
#: The 11 measures of a verified pair, as :class:`~neardup.match.scores.PairScores` names them.
SCORE_FIELDS = tuple(name for name in PairScores.__dataclass_fields__ if name not in ("left", "right", "same_text"))
#: Tags of the rows a stage writes (one schema, several kinds of row).
PAIR, MEMBER, STATS = 0, 1, 2
#: The columns :func:`fingerprint_arrow`, :func:`verify_stream` and :func:`cluster_stream` write.
PRINTS_SCHEMA = ("valid boolean, problem string, id string, length long, date string, doc_digest_hi long, "
                 "doc_digest_lo long, "
                 "paragraph_digests array<long>, paragraph_figures array<long>, paragraph_words array<int>, "
                 "paragraph_sizes array<int>, "
                 "shingles array<int>, article_keys array<long>, paragraph_rows array<int>, paragraph_keys array<long>")
KNOWN_SCHEMA = ("a long, b long, " + ", ".join(f"{name} double" for name in SCORE_FIELDS)
                + ", right_holds_left boolean, left_holds_right boolean, right_would_hold_left boolean, "
                  "left_would_hold_right boolean")
PLACED_SCHEMA = ("cls long, rep long, kind int, jaccard double, doc_in_representative double, "
                 "representative_in_doc double, coverage double, late long, unresolved long")


# -- Arrow helpers --------------------------------------------------------------------------------------


def _column(data: Any, name: str) -> Any:
    """A column of a RecordBatch or Table as one Arrow array."""
    column = data.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _numbers(data: Any, name: str, dtype: Any = np.int64) -> np.ndarray:
    return np.asarray(_column(data, name).to_numpy(zero_copy_only=False), dtype=dtype)


def flat(data: Any, name: str, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """The values of a list column and the offsets (rows + 1) of each row's run; nulls are empty."""
    column = _column(data, name)
    lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=dtype), offsets(lengths)


def lists(values: np.ndarray, lengths: np.ndarray) -> Any:
    """An Arrow list array of consecutive runs of ``values`` with these lengths."""
    ends = offsets(np.asarray(lengths, dtype=np.int64))
    if ends[-1] >= 1 << 31:
        raise ValueError("an Arrow batch holds more than 2**31 list values; use smaller batches")
    return pa.ListArray.from_arrays(pa.array(ends.astype(np.int32), pa.int32()), pa.array(values))


def _signed(values: np.ndarray) -> np.ndarray:
    """uint64/uint32 bits as int64/int32 (how Spark holds them)."""
    values = np.ascontiguousarray(values)
    return values.view(np.int64 if values.dtype.itemsize == 8 else np.int32)


def _batch(columns: dict[str, Any]) -> Any:
    return pa.RecordBatch.from_pydict(columns)


def grouped_chunks(batches: Iterable[Any], key: str, min_rows: int = CHUNK_ROWS) -> Iterator[Any]:
    """Tables of whole groups from batches sorted by ``key``: each holds at least ``min_rows``
    rows (except the last), and every group lies inside one table."""
    pending: list[Any] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        if count < min_rows:
            continue
        table = pa.Table.from_batches(pending)
        keys = _numbers(table, key)
        cut = int(np.searchsorted(keys, keys[-1], side="left"))
        if cut < min_rows:  # the whole groups so far are too few rows: gather more
            continue
        yield table.slice(0, cut)
        rest = table.slice(cut)
        pending, count = rest.to_batches(), rest.num_rows
    if pending:
        yield pa.Table.from_batches(pending)


# -- fingerprints ---------------------------------------------------------------------------------------


def layout_texts(texts: Sequence[Any], paragraphs: Sequence[Any] | None = None
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts and paragraph spans as :class:`~neardup.document.Document` makes them: a text is
    split into paragraphs (``from_text``); a list of paragraphs is joined (``from_paragraphs``)."""
    out, spans, counts = [], [], np.zeros(len(texts), dtype=np.int64)
    for row, text in enumerate(texts):
        items = paragraphs[row] if paragraphs is not None else None
        if isinstance(text, list) and items is None:
            items = text
        if items is not None:
            text, parts = spans_of_paragraph_list([p if isinstance(p, str) else "" for p in items])
        else:
            text = text if isinstance(text, str) else ""
            parts = split_paragraphs(text)
        out.append(text)
        spans.extend(parts)
        counts[row] = len(parts)
    return out, np.array(spans, dtype=np.int64).reshape(-1, 2), offsets(counts)


def record_value_problem(id: str | None, text: str | None, paragraphs: list[str] | None,
                         count: int) -> str | None:
    """Why a row is no document, by the local reader's rule on its values (``count``: its paragraphs)."""
    value = paragraphs if paragraphs is not None else text
    problem = id_problem(id) or text_problem(value)
    if problem is not None:
        return problem
    size = sum(len(p.encode("utf-8", "surrogatepass")) for p in paragraphs) if paragraphs is not None \
        else len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else 0
    if size > DEFAULT_MAX_RECORD_BYTES:
        return f"record of {size} bytes exceeds the limit of {DEFAULT_MAX_RECORD_BYTES} bytes"
    if count > DEFAULT_MAX_PARAGRAPHS:
        return f"{count} paragraphs exceed the limit of {DEFAULT_MAX_PARAGRAPHS}"
    return None


def fingerprint_arrow(batch: Any, config: Config, passthrough: Sequence[str] = ("row",)) -> Any:
    """``id, text[, paragraphs][, date]`` and the ``passthrough`` columns → one row of fingerprints
    per document: the passthrough columns, ``valid`` (an id and a text or list of paragraphs were
    there), ``id, length, date``, ``doc_digest_hi, doc_digest_lo``, per paragraph
    ``paragraph_digests, paragraph_words, paragraph_sizes``, ``shingles`` (all, in paragraph
    order), ``article_keys`` (bucket keys), ``paragraph_rows`` and ``paragraph_keys`` (bucket keys of
    the paragraphs that may propose candidates, ``bands`` per row)."""
    names = batch.schema.names
    texts = batch.column(names.index("text")).to_pylist()
    paragraphs = batch.column(names.index("paragraphs")).to_pylist() if "paragraphs" in names else None
    ids = batch.column(names.index("id")).to_pylist()
    given = batch.column(names.index("problem")).to_pylist() if "problem" in names else [None] * len(ids)
    text, spans, doc_offsets = layout_texts(texts, paragraphs)
    problems = [given[k] or record_value_problem(ids[k], texts[k], paragraphs[k] if paragraphs else None,
                                                 int(doc_offsets[k + 1] - doc_offsets[k]))
                for k in range(len(ids))]
    prints = fingerprint_columns(text, spans, doc_offsets, config, shingles=True, figures=True)
    assert prints.paragraph_figures is not None
    digests = with_figures(prints.doc_digests, prints.paragraph_figures, prints.doc_offsets)
    bands = Bands.of(config)
    article_keys, paragraph_keys, rows = stages.batch_keys(prints, config)
    n = len(text)
    counts = np.diff(prints.doc_offsets)
    owner = np.repeat(np.arange(n), counts)[rows]
    keyed = np.bincount(owner, minlength=n)
    dates = batch.column(names.index("date")).to_pylist() if "date" in names else [None] * n
    shingles = prints.shingles if prints.shingles is not None else np.zeros(0, np.uint32)
    out = {name: batch.column(names.index(name)) for name in passthrough}
    return _batch({
        **out,
        "valid": pa.array([p is None for p in problems], pa.bool_()),
        "problem": pa.array(problems, pa.string()),
        "id": pa.array(ids, pa.string()),
        "length": pa.array(np.fromiter(map(len, text), dtype=np.int64, count=n)),
        "date": pa.array([date_key(d) for d in dates], pa.string()),
        "doc_digest_hi": pa.array(_signed(digests[:, 0])),
        "doc_digest_lo": pa.array(_signed(digests[:, 1])),
        "paragraph_digests": lists(_signed(prints.paragraph_digests), counts),
        "paragraph_figures": lists(_signed(prints.paragraph_figures), counts),
        "paragraph_words": lists(prints.paragraph_words.astype(np.int32), counts),
        "paragraph_sizes": lists(prints.paragraph_sizes.astype(np.int32), counts),
        "shingles": lists(_signed(shingles.astype(np.uint32)), prints.doc_sizes),
        "article_keys": lists(_signed(article_keys.reshape(-1)), np.full(n, bands.article[0])),
        "paragraph_rows": lists((rows - prints.doc_offsets[owner]).astype(np.int32), keyed),
        "paragraph_keys": lists(_signed(paragraph_keys.reshape(-1)), keyed * bands.paragraph[0]),
    })


# -- paragraph weights and band records -----------------------------------------------------------------


def weights_arrow(batch: Any, config: Config) -> Any:
    """``row, paragraph_words, paragraph_frequencies`` (each paragraph's document frequency) →
    ``row, paragraph_weights, paragraph_holders`` (:func:`~neardup.pipeline.stages.furniture_holders`)."""
    words, doc_offsets = flat(batch, "paragraph_words", np.int64)
    frequencies, check = flat(batch, "paragraph_frequencies", np.int64)
    if not np.array_equal(doc_offsets, check):
        raise ValueError("paragraph frequencies do not line up with the paragraphs")
    weights = paragraph_weights(frequencies, words, doc_offsets, config) if len(words) else np.zeros(0)
    return _batch({"row": _column(batch, "row"),
                   "paragraph_weights": lists(np.asarray(weights, np.float64), np.diff(doc_offsets)),
                   "paragraph_holders": lists(stages.furniture_holders(frequencies, words, config),
                                              np.diff(doc_offsets))})


def own_words_arrow(batch: Any, config: Config) -> Any:
    """``row, paragraph_words, paragraph_digests, paragraph_frequencies`` → ``row, own``
    (:func:`neardup.pipeline.stages.own_words`)."""
    words, doc_offsets = flat(batch, "paragraph_words", np.int64)
    digests, _ = flat(batch, "paragraph_digests", np.int64)
    frequencies, check = flat(batch, "paragraph_frequencies", np.int64)
    if not np.array_equal(doc_offsets, check):
        raise ValueError("paragraph frequencies do not line up with the paragraphs")
    own = stages.own_words(frequencies, words, digests.view(np.uint64), doc_offsets, config)
    return _batch({"row": _column(batch, "row"), "own": pa.array(own, pa.int64())})


def records_arrow(batch: Any, config: Config) -> Any:
    """``cls, article_keys, paragraph_rows, paragraph_keys, paragraph_sizes, paragraph_words,
    paragraph_weights`` → band records ``bucket, cls``: every article key, and the keys of the
    paragraphs that may search (:func:`~neardup.match.candidates.searchable`: the local spills)."""
    cls = _numbers(batch, "cls")
    article_keys, article_offsets = flat(batch, "article_keys", np.int64)
    key_rows, row_offsets = flat(batch, "paragraph_rows", np.int64)
    paragraph_keys, _ = flat(batch, "paragraph_keys", np.int64)
    weights, paragraph_offsets = flat(batch, "paragraph_weights", np.float64)
    sizes, _ = flat(batch, "paragraph_sizes", np.int64)
    words, _ = flat(batch, "paragraph_words", np.int64)
    owner = np.repeat(np.arange(len(cls)), np.diff(row_offsets))
    at = paragraph_offsets[owner] + key_rows
    chosen = searchable(sizes[at], words[at], config, weights[at])
    per_row = Bands.of(config).paragraph[0]
    paragraph_keys = paragraph_keys.reshape(-1, per_row)[chosen].reshape(-1)
    shift = np.uint64(BUCKET_SHIFT)
    buckets = np.concatenate([article_keys.view(np.uint64) >> shift,
                              (paragraph_keys.view(np.uint64) >> shift) | np.uint64(PARAGRAPH_BUCKET)])
    owners = np.concatenate([np.repeat(cls, np.diff(article_offsets)), np.repeat(cls[owner[chosen]], per_row)])
    return _batch({"bucket": pa.array(buckets.astype(np.int64)), "cls": pa.array(owners)})


# -- candidate pairs ------------------------------------------------------------------------------------


def _tagged(tag: int, x: np.ndarray, y: np.ndarray) -> Any:
    return _batch({"tag": pa.array(np.full(len(x), tag, np.int32)), "x": pa.array(np.asarray(x, np.int64)),
                   "y": pa.array(np.asarray(y, np.int64))})


def _unique_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    first = run_starts(np.column_stack((a, b))) if len(a) else np.zeros(0, bool)
    return a[first], b[first]


def bucket_pairs_stream(batches: Iterable[Any], config: Config, chunk_rows: int = CHUNK_ROWS) -> Iterator[Any]:
    """Band records sorted by bucket → ``tag, x, y`` rows: candidate pairs ``(PAIR, low, high)``
    of every bucket of at most ``bucket_cap`` classes (by :func:`~neardup.match.candidates.bucket_pairs`),
    the classes of larger buckets ``(MEMBER, bucket, class)`` (their pairs are made with the
    pivots afterwards, which takes the ranks of all their members), and ``(STATS, large buckets,
    largest bucket)``."""
    stats = [0, 0]
    for chunk in grouped_chunks(batches, "bucket", chunk_rows):
        yield from _bucket_chunk(_numbers(chunk, "bucket"), _numbers(chunk, "cls"), config, stats)
    yield _tagged(STATS, np.array([stats[0]]), np.array([stats[1]]))


def _bucket_chunk(bucket: np.ndarray, cls: np.ndarray, config: Config, stats: list[int]) -> Iterator[Any]:
    """The rows of :func:`bucket_pairs_stream` for whole buckets; ``stats`` accumulates."""
    bucket, cls = _unique_rows(bucket, cls)
    if len(bucket) == 0:
        return
    starts = run_starts(bucket)
    number = np.cumsum(starts) - 1
    sizes = np.bincount(number)
    size = sizes[number]
    small = (size >= 2) & (size <= config.bucket_cap)
    names, local = np.unique(cls[small], return_inverse=True)
    values = (number[small].astype(np.uint64) << np.uint64(32)) | local.astype(np.uint64)
    pairs, _ = bucket_pairs(values, np.zeros(len(names), np.uint32), config.bucket_cap, config.bucket_pivots)
    low, high = split_pairs(pairs)
    low, high = _unique_rows(names[low], names[high])
    yield _tagged(PAIR, low, high)
    large = size > config.bucket_cap
    if large.any():
        yield _tagged(MEMBER, bucket[large], cls[large])
    stats[0] += int((sizes > config.bucket_cap).sum())
    stats[1] = max(stats[1], int(sizes.max()))


# -- verification ---------------------------------------------------------------------------------------


def columns_arrow(data: Any) -> ShingleColumns:
    """The documents of a table with ``shingles, paragraph_sizes, paragraph_words,
    paragraph_weights, paragraph_holders, paragraph_figures`` (one document per row)."""
    shingles, _ = flat(data, "shingles", np.int32)
    sizes, doc_offsets = flat(data, "paragraph_sizes", np.int64)
    words, _ = flat(data, "paragraph_words", np.int64)
    weights, _ = flat(data, "paragraph_weights", np.float64)
    holders, _ = flat(data, "paragraph_holders", np.int64)
    figures, _ = flat(data, "paragraph_figures", np.int64)
    return ShingleColumns(shingles.view(np.uint32), offsets(sizes), words, weights, doc_offsets, holders,
                          figures.view(np.uint64))


def _paired(chunk: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A chunk of rows sorted by ``a, tag`` (tag 0: document ``a``; tag 1: a document ``b``
    paired with it) → the chunk in that order, ``a``, ``b``, and the rows of each pair's two sides."""
    a, tag, b = _numbers(chunk, "a"), _numbers(chunk, "tag"), _numbers(chunk, "b")
    order = np.lexsort((b, tag, a))
    if not np.array_equal(order, np.arange(len(a))):
        chunk = chunk.take(pa.array(order))
        a, tag, b = a[order], tag[order], b[order]
    leader = np.maximum.accumulate(np.where(tag == 0, np.arange(len(a)), -1))
    pairs = np.flatnonzero(tag == 1)
    left = leader[pairs]
    if len(pairs) and ((left < 0).any() or (a[np.maximum(left, 0)] != a[pairs]).any()):
        raise ValueError("a pair reached its stage without its first document")
    return chunk, a, b, left, pairs


def verify_stream(batches: Iterable[Any], config: Config, partial: bool, first_new: int,
                  chunk_rows: int = CHUNK_ROWS) -> Iterator[Any]:
    """Rows sorted by ``a, tag``: each class ``a``'s leader (tag 0: its shingles) then its
    candidates ``b > a`` (tag 1: ``b``'s shingles) → the exact scores of every pair ``(a, b)``
    and which side holds the other (``right_holds_left``: b holds a; ``left_holds_right``: a
    holds b), classes named below ``first_new`` being reference classes that are never held."""
    for chunk in grouped_chunks(batches, "a", chunk_rows):
        chunk, a, b, left, pairs = _paired(chunk)
        scores = score_pairs(columns_arrow(chunk), left, pairs, config.shingle_size, np.zeros(len(pairs), bool),
                             config.story_words, figure_words=config.furniture_words)
        known = stages.known_pairs(scores, config, partial)
        at = known.find(left, pairs)
        held_left, held_right = known.right_holds_left[at], known.left_holds_right[at]
        oriented = known.scores.select(at)
        out = {"a": pa.array(a[pairs]), "b": pa.array(b[pairs])}
        out.update({name: pa.array(np.asarray(getattr(oriented, name), np.float64)) for name in SCORE_FIELDS})
        out["right_holds_left"] = pa.array(held_left & ~(a[pairs] < first_new))
        out["left_holds_right"] = pa.array(held_right & ~(b[pairs] < first_new))
        # whether one would hold the other but for their figures (the figure partners of CLUSTERS)
        out["right_would_hold_left"] = pa.array(holds(oriented, config, partial=partial, figures=False))
        out["left_would_hold_right"] = pa.array(holds(oriented.flipped(), config, partial=partial, figures=False))
        yield _batch(out)


# -- clusters -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacedClasses:
    """Classes placed under another: ``cls`` under ``rep``, and how each relates to it."""

    cls: np.ndarray
    rep: np.ndarray
    relations: stages.Relations


def placed(clusters: Clusters, names: np.ndarray, config: Config) -> PlacedClasses:
    """The classes ``clusters`` placed under another (node i is class ``names[i]``)."""
    rep = clusters.representative
    moved = np.flatnonzero(rep != np.arange(len(rep)))
    return PlacedClasses(names[moved], names[rep[moved]], stages.relations(clusters.known, moved, rep[moved], config))


def cluster_chunk(chunk: Any, config: Config, partial: bool, first_new: int) -> tuple[PlacedClasses, int, int]:
    """Whole components (node rows tag 0: ``cls, crank`` and shingles; pair rows tag 1: the
    verified pairs inside the component) → the classes placed under another, pairs verified
    late, nodes left unresolved. Components are independent, so many go through one call."""
    tag = _numbers(chunk, "tag")
    nodes, pairs = chunk.filter(pa.array(tag == 0)), chunk.filter(pa.array(tag == 1))
    names = _numbers(nodes, "cls")
    order = np.argsort(names, kind="stable")
    nodes, names = nodes.take(pa.array(order)), names[order]
    rank = _numbers(nodes, "crank")
    a = np.searchsorted(names, _numbers(pairs, "a"))
    b = np.searchsorted(names, _numbers(pairs, "b"))
    measures: dict[str, Any] = {name: _numbers(pairs, name, np.float64) for name in SCORE_FIELDS}
    scores = PairScores(left=a, right=b, same_text=np.zeros(len(a), bool), **measures)
    known = KnownPairs.build(scores, _numbers(pairs, "right_holds_left", bool),
                             _numbers(pairs, "left_holds_right", bool), config.fuller_margin)
    is_reference = names < first_new
    columns: list[ShingleColumns] = []

    def verify(x: np.ndarray, y: np.ndarray) -> KnownPairs:
        if not columns:
            columns.append(columns_arrow(nodes))
        measured = score_pairs(columns[0], x, y, config.shingle_size, np.asarray(x) == np.asarray(y),
                               config.story_words, figure_words=config.furniture_words)
        return stages.known_pairs(measured, config, partial)

    clusters = cluster(len(names), known, rank, verify, fixed=is_reference, verify_rounds=config.verify_rounds,
                       max_rounds=config.max_rounds)
    return placed(clusters, names, config), clusters.verified_late, clusters.kept_unresolved


def cluster_stream(batches: Iterable[Any], config: Config, partial: bool, first_new: int,
                   chunk_rows: int = CHUNK_ROWS) -> Iterator[Any]:
    """Rows sorted by ``comp, tag`` (see :func:`cluster_chunk`) → ``cls, rep, kind, jaccard,
    doc_in_representative, representative_in_doc, coverage`` for every class placed under
    another, and one row per chunk with ``cls = -1`` counting ``late`` verifications and
    ``unresolved`` nodes."""
    for chunk in grouped_chunks(batches, "comp", chunk_rows):
        done, late, unresolved = cluster_chunk(chunk, config, partial, first_new)
        n, found = len(done.cls), done.relations
        yield _batch({"cls": pa.array(np.append(done.cls, -1)), "rep": pa.array(np.append(done.rep, -1)),
                      "kind": pa.array(np.append(found.kind, 0).astype(np.int32)),
                      **{name: pa.array(np.append(getattr(found, name), np.nan))
                         for name in ("jaccard", "doc_in_representative", "representative_in_doc", "coverage")},
                      "late": pa.array(np.append(np.zeros(n, np.int64), late)),
                      "unresolved": pa.array(np.append(np.zeros(n, np.int64), unresolved))})


def loss_stream(batches: Iterable[Any], config: Config, partial: bool, chunk_rows: int = CHUNK_ROWS) -> Iterator[Any]:
    """Rows sorted by ``a, tag``: a removed class ``a`` (tag 0, its ``paragraph_holders`` 1 where a
    kept document holds the paragraph) then its representative ``b`` (tag 1) → the classes to
    keep after all (:func:`neardup.pipeline.stages.kept_for_loss`), as ``cls``."""
    for chunk in grouped_chunks(batches, "a", chunk_rows):
        chunk, a, _, left, pairs = _paired(chunk)
        columns = columns_arrow(chunk)
        columns = replace(columns, paragraph_holders=stages.kept_furniture(columns.holders(), columns.paragraph_words,
                                                                           config))
        scores = score_pairs(columns, left, pairs, config.shingle_size, np.zeros(len(pairs), bool),
                             config.story_words, relative=False, figure_words=config.furniture_words)
        yield _batch({"cls": pa.array(a[stages.kept_for_loss(scores, config, partial)], pa.int64())})


# -- the CLUSTERS rows ----------------------------------------------------------------------------------

#: The result rows' columns, in :class:`~neardup.pipeline.result.ClusterColumns` order.
RESULT_COLUMNS = ("id", "cluster", "representative", "kind", "jaccard", "doc_in_representative",
                  "representative_in_doc", "coverage", "held_elsewhere", "held_by", "differs_from")


def _cluster_columns(batch: Any) -> ClusterColumns:
    values = {n: batch.column(batch.schema.names.index(n)).to_pylist() for n in RESULT_COLUMNS}
    values["held_by"] = [by or [] for by in values["held_by"]]
    values["held_elsewhere"] = [count or 0 for count in values["held_elsewhere"]]
    return ClusterColumns(**values)


def clusters_json_arrow(batch: Any) -> Any:
    """Result rows → the CLUSTERS line of each (:func:`~neardup.pipeline.result.clusters_lines`)."""
    lines = [line.decode("utf-8", "surrogatepass") for line in clusters_lines(_cluster_columns(batch))]
    return _batch({"value": pa.array(lines, pa.string())})


def clusters_rows_arrow(batch: Any, partners: bool = True) -> Any:
    """Result rows → CLUSTERS columns as the local CLI writes them to Parquet (rounded, containment
    nested; ``differs_from`` when some row of the run has one, as the local writer's types say)."""
    columns = _cluster_columns(batch)
    rows = [columns.assignment(k).to_dict() for k in range(len(columns))]
    containment = [r.get("containment") for r in rows]
    named = {"differs_from": pa.array([r.get("differs_from") for r in rows], pa.string())} if partners else {}
    return _batch({
        "id": pa.array([r["id"] for r in rows], pa.string()),
        "cluster": pa.array([r["cluster"] for r in rows], pa.string()),
        "representative": pa.array([r["representative"] for r in rows], pa.bool_()),
        "kind": pa.array([r["kind"] for r in rows], pa.string()),
        **named,
        "jaccard": pa.array([r.get("jaccard") for r in rows], pa.float64()),
        "containment": pa.array(containment, pa.struct([("doc_in_representative", pa.float64()),
                                                       ("representative_in_doc", pa.float64())])),
        "coverage": pa.array([r.get("coverage") for r in rows], pa.float64()),
        "held_elsewhere": pa.array([r.get("held_elsewhere") for r in rows],
                                   pa.struct([("paragraphs", pa.int64()), ("by", pa.list_(pa.string()))])),
    })
