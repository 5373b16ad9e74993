"""Dedup on Apache Spark: the local executor's stages, run inside Spark, giving the same clusters.

Install with ``pip install 'neardup[spark]'`` (pyspark >= 4, pyarrow, and pandas, which pyspark
requires for ``mapInArrow``); Java 17 or later. ::

    from neardup import spark as nd
    result = nd.dedup(df, id_col="id", text_col="text", keep="first")   # one row per document
    nd.kept(df, result).write.parquet("kept.parquet")                  # the kept rows, every column

The stages are those of :mod:`neardup.dedup` (the *local executor*), each a Spark operation
over the pure batch functions of :mod:`neardup.stages` wrapped for Arrow in
:mod:`neardup.spark_stages`:

==============  =========================================================  ==================================
stage           what runs                                                  shuffle
==============  =========================================================  ==================================
fingerprint     the compiled kernel in ``mapInArrow``, once per document   none (saved: never hashed twice)
frequencies     paragraph document frequencies, then weights per document  by paragraph digest, then by row
classes         exact classes (smallest row per digest), keep-policy       by digest; a range sort of
                ranks, each class's best member                            (policy keys, id)
candidates      band records → buckets → ``bucket_pairs`` (same cap and    by band key (38 bits); large
                pivots); pivots of large buckets by a top-k window         buckets: top-k + broadcast join
verify          both classes' shingles joined to each pair; the kernel     by first class of the pair
components      large-star / small-star over the holding pairs             by node, a few rounds
cluster         :func:`neardup.clustering.cluster` on whole components     by component
assign          each document's representative and scores                  by class
==============  =========================================================  ==================================

**Identical results.** Every stage computes, per document, bucket, pair or component, exactly what
the local executor computes, and nothing depends on how the rows are partitioned: a bucket, a
document's pairs and a component each reach one task whole; classes are named by their smallest
row and numbered locally in that order, so pairs are oriented as locally; ranks are distinct.
``tests/test_spark.py`` holds the two engines equal with 1, 3 and 8 partitions and every policy.

**Input order** (``keep="first"``, and which of two rows with one id is read): ``order_col`` if
given (ties by id); otherwise the order in which Spark reads the rows, partition by partition —
that of a file read alone, or of :func:`read_inputs` (files in the order given, folders sorted,
rows in file order), but *not* preserved by ``repartition``. Give an ``order_col`` whenever the
DataFrame was shuffled.

**Stage outputs** are saved before the next stage reads them, so a failed later stage never redoes
the hashing (a lost executor's share of the cache is recomputed, that share only): the
fingerprints are cached (memory and disk, columnar: later stages read only their columns),
every later output is checkpointed (reliably if the SparkContext has a checkpoint
directory, else locally), which also keeps query plans short. With ``checkpoint_dir`` (any file
system Spark reaches) each stage is written there as Parquet with a marker instead, and a rerun
with the same input plan, configuration and options reads the finished stages back.

**Memory.** A worker holds at most a chunk of rows (:data:`neardup.spark_stages.CHUNK_ROWS`) or one
group bigger than that: one bucket's records, one class's candidates with their shingles, or one
component with its members' shingles (the one stage where a giant component is a single task).
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:  # pragma: no cover - spark-submit .../neardup/spark.py
    import os as _os
    import sys as _sys

    if _sys.path and _os.path.abspath(_sys.path[0]) == _os.path.dirname(_os.path.abspath(__file__)):
        del _sys.path[0]  # the package's folder is no place to import modules from
    from neardup.spark import main as _script_main

    _sys.exit(_script_main())

import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlparse

from . import spark_stages as ss
from .config import Config
from .dedup import POLICIES, DedupSummary
from .errors import EXIT_OK, InputError, NearDupError
from .verify import KIND_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Rounds of large-star + small-star after which connected components give up.
MAX_COMPONENT_ROUNDS = 64
#: Columns of the result, one row per input document.
RESULT_COLUMNS = ("id", "cluster", "representative", "kind", "jaccard", "doc_in_representative",
                  "representative_in_doc", "coverage")
_KIND_SQL = " ".join(f"WHEN {code} THEN '{name}'" for code, name in KIND_NAMES.items())


class ComponentsError(NearDupError, RuntimeError):
    """Connected components did not converge within the round limit."""


def _pyspark() -> Any:
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import functions
    except ImportError as err:
        raise ImportError(f"the Spark engine needs the spark extra: pip install 'neardup[spark]' ({err})") from None
    return functions


# -- the result --------------------------------------------------------------------------------------------


@dataclass
class SparkSummary(DedupSummary):
    """The local summary's counts, plus rounds of connected components and, when Spark's REST
    API answers (``spark.ui.enabled``), bytes shuffled per stage (``{stage: {"write": .., "read": ..}}``)."""

    component_rounds: int = 0
    shuffle: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class SparkResult:
    """``frame``: one row per document (:data:`RESULT_COLUMNS`); ``rows``: the same with the
    internal ``row`` and ``order`` columns (what the CLI sorts its outputs by)."""

    frame: DataFrame
    rows: DataFrame
    summary: SparkSummary
    _release: Callable[[], None] = lambda: None

    def release(self) -> None:
        """Drop the persisted stage outputs (the frames above are recomputed if used after)."""
        self._release()


def dedup(df: DataFrame, id_col: str = "id", text_col: str = "text", config: Config | None = None,
          keep: str = "first", date_col: str = "date", include_partial: bool = True, *,
          reference: DataFrame | None = None, order_col: str | None = None, partitions: int | None = None,
          checkpoint_dir: str | None = None, max_component_rounds: int = MAX_COMPONENT_ROUNDS) -> DataFrame:
    """Cluster the documents of ``df`` and choose one representative per cluster, as
    :func:`neardup.dedup.dedup` does (same clusters, representatives, kinds and scores).

    Returns one row per document: ``id`` (as a string), ``cluster`` (the representative's id),
    ``representative``, ``kind`` (``representative``, ``exact``, ``near-duplicate``, ``partial``),
    ``jaccard``, ``doc_in_representative``, ``representative_in_doc``, ``coverage`` (null for
    representatives). ``text_col`` holds a text or a list of paragraphs. ``reference``: documents
    (same columns) that ``df`` is deduplicated against: never removed, never in the result, and
    a document they hold is removed as their copy. See the module docstring for ``order_col``,
    ``checkpoint_dir``; ``partitions`` (default ``spark.sql.shuffle.partitions``) sets the
    partitions of every shuffle. Rows without an id or a text, and later rows with the id of an
    earlier one, are skipped (as the local reader does)."""
    return run(df, id_col, text_col, config, keep, date_col, include_partial, reference=reference,
               order_col=order_col, partitions=partitions, checkpoint_dir=checkpoint_dir,
               max_component_rounds=max_component_rounds).frame


def dedup_against(df: DataFrame, reference: DataFrame, **options: Any) -> DataFrame:
    """``dedup(df, reference=reference, ...)``: only the new documents are removed or clustered."""
    return dedup(df, reference=reference, **options)


def kept(df: DataFrame, result: DataFrame, id_col: str = "id") -> DataFrame:
    """The rows of ``df`` kept by ``result`` (its representatives), with every column of ``df``.
    With repeated ids, every row of a kept id is returned (dedup read only the first)."""
    F = _pyspark()
    ids = result.filter(F.col("representative")).select(F.col("id").alias("_neardup_kept"))
    return df.join(ids, df[id_col].cast("string") == ids["_neardup_kept"], "left_semi")


def run(df: DataFrame, id_col: str = "id", text_col: str = "text", config: Config | None = None,
        keep: str = "first", date_col: str = "date", include_partial: bool = True, *,
        reference: DataFrame | None = None, order_col: str | None = None, paragraphs_col: str | None = None,
        partitions: int | None = None, checkpoint_dir: str | None = None,
        max_component_rounds: int = MAX_COMPONENT_ROUNDS, chunk_rows: int = ss.CHUNK_ROWS) -> SparkResult:
    """:func:`dedup` with its summary (counts, seconds and shuffle bytes per stage).
    ``paragraphs_col``: a column of paragraph lists preferred to ``text_col`` where not null;
    ``chunk_rows``: rows a worker gathers before it groups them (tests make it small)."""
    _pyspark()
    config = config or Config()
    if keep not in POLICIES:
        raise ValueError(f"keep must be one of {', '.join(POLICIES)}, got {keep!r}")
    engine = _Run(df.sparkSession, config, keep, include_partial, partitions, checkpoint_dir,
                  max_component_rounds, chunk_rows)
    options = _Columns(id_col, text_col, date_col if keep == "earliest" else None, order_col, paragraphs_col)
    return engine.run(df, reference, options)


# -- the engine ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    id: str
    text: str
    date: str | None
    order: str | None
    paragraphs: str | None


class _Run:
    """One Spark dedup run: the stages in order, each saved before the next reads it."""

    def __init__(self, spark: SparkSession, config: Config, keep: str, include_partial: bool,
                 partitions: int | None, checkpoint_dir: str | None, max_rounds: int, chunk_rows: int) -> None:
        self.spark, self.config, self.keep, self.include_partial = spark, config, keep, include_partial
        self.partitions = int(partitions or spark.conf.get("spark.sql.shuffle.partitions") or 200)
        self.checkpoint_dir, self.max_rounds, self.chunk_rows = checkpoint_dir, max_rounds, chunk_rows
        self.summary = SparkSummary()
        self.group = f"neardup-{uuid.uuid4().hex[:12]}"
        self.saved: list[Any] = []
        self.first_new = -1
        self.signature = ""

    # -- saving stage outputs ---------------------------------------------------------------------------------

    def save(self, stage: str, name: str, df: DataFrame, *, cache: bool = False) -> DataFrame:
        """Materialise ``df``, timed under ``stage``: as Parquet under ``checkpoint_dir`` if given;
        else cached (``cache``: columnar, so later stages read only the columns they need; for the
        fingerprints, whose plan is short) or checkpointed (which also cuts the plan: later stages
        read several earlier ones, and plans that keep their whole lineage grow without bound)."""
        sc = self.spark.sparkContext
        sc.setJobGroup(f"{self.group}:{stage}", f"neardup {stage}: {name}", interruptOnCancel=False)
        start = time.perf_counter()
        try:
            if self.checkpoint_dir:
                return self._checkpointed(name, df)
            if cache:
                from pyspark import StorageLevel

                out = df.persist(StorageLevel.MEMORY_AND_DISK)
                out.count()
            else:
                reliable = sc.getCheckpointDir() is not None
                out = df.checkpoint(eager=True) if reliable else df.localCheckpoint(eager=True)
            self.saved.append(out)
            return out
        finally:
            self.summary.seconds[stage] = round(self.summary.seconds.get(stage, 0.0) + time.perf_counter() - start, 3)

    def _checkpointed(self, name: str, df: DataFrame) -> DataFrame:
        path = f"{(self.checkpoint_dir or '').rstrip('/')}/{name.replace(' ', '-')}"
        marker = f"{path}/_NEARDUP_STAGE"
        fs = _FileSystem(self.spark)
        if fs.read(marker) == self.signature:
            log.info("stage %s: reusing %s", name, path)
            return self.spark.read.parquet(path)
        df.write.mode("overwrite").parquet(path)
        fs.write(marker, self.signature)
        return self.spark.read.parquet(path)

    def release(self) -> None:
        for df in self.saved:
            df.unpersist()
            _drop_checkpoint(df)
        self.saved.clear()

    # -- the stages ------------------------------------------------------------------------------------------

    def run(self, df: DataFrame, reference: DataFrame | None, columns: _Columns) -> SparkResult:
        self.signature = self._signature(df, reference, columns)
        # Every shuffle of the run (joins and aggregations too, not only the engine's repartitions)
        # gets ``partitions`` partitions; the session's setting is restored after.
        shuffle = self.spark.conf.get("spark.sql.shuffle.partitions")
        self.spark.conf.set("spark.sql.shuffle.partitions", str(self.partitions))
        try:
            prints = self._fingerprint(df, reference, columns)
            docs, classes = self._classes(prints, columns)
            prints = self._valid(prints, docs)
            weights = self._weights(prints)
            pairs = self._candidates(prints, weights, docs, classes)
            leaders = self._leaders(prints, weights, docs)
            known = self._verify(pairs, leaders)
            components = self._components(known)
            placed = self._cluster(known, components, classes, leaders)
            rows = self._assign(docs, classes, placed, columns)
            self._count(rows, classes, placed)
        except BaseException:
            self.release()
            raise
        finally:
            self.spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type] # clears
            if shuffle is not None:
                self.spark.conf.set("spark.sql.shuffle.partitions", shuffle)
        self.summary.shuffle = _shuffle_bytes(self.spark, self.group)
        frame = rows.select(*RESULT_COLUMNS)
        return SparkResult(frame, rows, self.summary, self.release)

    def _signature(self, df: DataFrame, reference: DataFrame | None, columns: _Columns) -> str:
        """What a checkpointed stage must match to be reused: input plans, configuration, options."""
        plans = [df.semanticHash()] + ([reference.semanticHash()] if reference is not None else [])
        return json.dumps({"neardup": 1, "config": self.config.to_dict(), "keep": self.keep,
                           "include_partial": self.include_partial, "columns": columns.__dict__,
                           "plans": plans}, sort_keys=True)

    def _inputs(self, df: DataFrame, columns: _Columns, new: bool, offset: int) -> DataFrame:
        """The columns fingerprinting reads, and a row number in reading order."""
        from pyspark.sql import types as T

        F = _pyspark()
        missing = [c for c in (columns.id, columns.text) if c not in df.columns]
        if missing:
            raise InputError(f"no column {missing[0]!r} in the input (columns: {', '.join(df.columns)})")
        kind = df.schema[columns.text].dataType
        if isinstance(kind, T.StringType):
            text, paragraphs = F.col(columns.text), F.lit(None).cast("array<string>")
        elif isinstance(kind, T.ArrayType) and isinstance(kind.elementType, T.StringType):
            text, paragraphs = F.lit(None).cast("string"), F.col(columns.text)
        else:
            raise InputError(f"column {columns.text!r} must hold strings or lists of strings, "
                             f"not {kind.simpleString()}")
        if columns.paragraphs:
            paragraphs = F.col(columns.paragraphs)
        selected = [(F.monotonically_increasing_id() + F.lit(offset)).alias("row"), F.lit(new).alias("is_new"),
                    F.col(columns.id).cast("string").alias("id"), text.alias("text"), paragraphs.alias("paragraphs")]
        if columns.order:
            selected.append(F.col(columns.order).alias("order"))
        if columns.date:
            selected.append((F.col(columns.date) if columns.date in df.columns else F.lit(None).cast("string"))
                            .alias("date"))
        return df.select(*selected)

    def _fingerprint(self, df: DataFrame, reference: DataFrame | None, columns: _Columns) -> DataFrame:
        """Every document fingerprinted once, by the compiled kernel inside ``mapInArrow``."""
        from pyspark.sql import types as T

        inputs = self._inputs(df, columns, True, ss.NEW_ROWS if reference is not None else 0)
        if reference is not None:
            inputs = self._inputs(reference, columns, False, 0).unionByName(inputs)
            self.first_new = ss.NEW_ROWS
        passthrough = ["row", "is_new"] + (["order"] if columns.order else [])
        schema = T.StructType([inputs.schema[name] for name in passthrough] + list(_PRINTS.fields))
        config = self.config

        def fingerprint(batches: Iterator[Any]) -> Iterator[Any]:
            for batch in batches:
                yield ss.fingerprint_arrow(batch, config, passthrough)

        return self.save("fingerprint", "prints", inputs.mapInArrow(fingerprint, schema), cache=True)

    def _classes(self, prints: DataFrame, columns: _Columns) -> tuple[DataFrame, DataFrame]:
        """Documents with their exact class and policy rank; classes with their best member."""
        from pyspark.sql import Window

        F = _pyspark()
        narrow = ["row", "is_new", "id", "length", "date", "hi", "lo"] + (["order"] if columns.order else [])
        docs = prints.filter(F.col("valid")).select(*narrow)
        docs = self._first_of_each_id(docs, columns)
        ranked = self._ranks(docs, columns)
        ranked = ranked.withColumn("cls", F.min("row").over(Window.partitionBy("hi", "lo")))
        docs = self.save("classes", "docs", ranked.drop("hi", "lo"))
        classes = docs.groupBy("cls").agg(F.min("rank").alias("crank"), F.min_by("row", "rank").alias("best_row"),
                                         F.min_by("id", "rank").alias("best_id"))
        return docs, self.save("classes", "classes", classes)

    def _first_of_each_id(self, docs: DataFrame, columns: _Columns) -> DataFrame:
        """Later rows with the id of an earlier one dropped (reference rows come first)."""
        F = _pyspark()
        first = F.struct(F.col("is_new"), *([F.col("order")] if columns.order else []), F.col("row"))
        repeated = (docs.groupBy("id").agg(F.count("*").alias("n"), F.min_by("row", first).alias("first"))
                    .filter("n > 1"))
        later = docs.join(repeated, "id").filter(F.col("row") != F.col("first")).select("row")
        self.summary.skipped["duplicate id"] = later.count()
        self.dropped = self.save("classes", "repeated ids", later) if self.summary.skipped["duplicate id"] else None
        return docs if self.dropped is None else docs.join(F.broadcast(later), "row", "left_anti")

    def _ranks(self, docs: DataFrame, columns: _Columns) -> DataFrame:
        """The keep policy as distinct ranks (reference documents first): ``first`` is reading
        order (or ``order_col``), ``longest`` longer text first, ``earliest`` earlier date
        first with undated documents last; ties by id."""
        F = _pyspark()
        if self.keep == "first" and not columns.order:
            return docs.withColumn("rank", F.col("row"))
        keys: list[Column] = [F.col("is_new")]
        if self.keep == "first":
            keys += [F.col("order"), F.col("id"), F.col("row")]
        elif self.keep == "longest":
            keys += [F.col("length").desc(), F.col("id")]
        else:
            keys += [F.col("date").isNull(), F.col("date"), F.col("id")]
        return self._dense(docs, keys, "rank")

    def _dense(self, df: DataFrame, keys: list[Column], name: str) -> DataFrame:
        """``name`` = 0, 1, ... in the order of ``keys`` (a range sort, numbered per partition)."""
        F = _pyspark()
        ordered = (df.repartitionByRange(self.partitions, *keys).sortWithinPartitions(*keys)
                   .withColumn("_pid", F.spark_partition_id()).withColumn("_mono", F.monotonically_increasing_id()))
        ordered = self.save("classes", "ranked", ordered)
        counts = sorted((r["_pid"], r["count"]) for r in ordered.groupBy("_pid").count().collect())
        starts, total = [], 0
        for pid, count in counts:
            starts.append((pid, total))
            total += count
        table = self.spark.createDataFrame(starts or [(0, 0)], "_pid int, _start long")
        position = F.col("_mono") - F.shiftleft(F.col("_pid").cast("long"), 33)
        return (ordered.join(F.broadcast(table), "_pid").withColumn(name, F.col("_start") + position)
                .drop("_pid", "_mono", "_start"))

    def _valid(self, prints: DataFrame, docs: DataFrame) -> DataFrame:
        """The fingerprints of the documents read (not of skipped rows)."""
        F = _pyspark()
        self.summary.skipped["missing id or text"] = prints.filter(~F.col("valid")).count()
        prints = prints.filter(F.col("valid"))
        return prints if self.dropped is None else prints.join(F.broadcast(self.dropped), "row", "left_anti")

    def _weights(self, prints: DataFrame) -> DataFrame:
        """Paragraph weights: document frequencies by digest, then the boilerplate rule per document."""
        F = _pyspark()
        config = self.config
        frequencies = (prints.select(F.explode(F.array_distinct("p_digest")).alias("digest"))
                       .groupBy("digest").agg(F.count("*").alias("df")))
        per_paragraph = prints.select("row", F.posexplode("p_digest").alias("pos", "digest")) \
            .join(frequencies, "digest")
        collected = (per_paragraph.groupBy("row")
                     .agg(F.sort_array(F.collect_list(F.struct("pos", "df"))).alias("s"))
                     .select("row", F.col("s.df").alias("freqs")))
        joined = prints.select("row", "p_words").join(collected, "row", "left")

        def weigh(batches: Iterator[Any]) -> Iterator[Any]:
            for batch in batches:
                yield ss.weights_arrow(batch, config)

        return self.save("frequencies", "weights", joined.mapInArrow(weigh, "row long, weights array<double>"))

    def _candidates(self, prints: DataFrame, weights: DataFrame, docs: DataFrame,
                    classes: DataFrame) -> DataFrame:
        """Candidate class pairs: band records grouped by bucket, each bucket's pairs as locally."""
        from pyspark.sql import Window

        F = _pyspark()
        config, chunk_rows = self.config, self.chunk_rows
        records_in = (prints.select("row", "a_keys", "p_key_rows", "p_keys").join(weights, "row")
                      .join(docs.select("row", "cls"), "row"))

        def to_records(batches: Iterator[Any]) -> Iterator[Any]:
            for batch in batches:
                yield ss.records_arrow(batch, config)

        def to_pairs(batches: Iterator[Any]) -> Iterator[Any]:
            yield from ss.bucket_pairs_stream(batches, config, chunk_rows)

        # Spark sorts each partition (spilling as it must) and the worker takes it bucket by bucket:
        # measured against gathering and sorting a whole partition in numpy, within the noise (100k).
        records = records_in.mapInArrow(to_records, "bucket long, cls long")
        grouped = (records.repartition(self.partitions, "bucket").sortWithinPartitions("bucket")
                   .mapInArrow(to_pairs, "tag int, x long, y long"))
        grouped = self.save("candidates", "buckets", grouped)
        stats = grouped.filter(F.col("tag") == ss.STATS).agg(F.sum("x"), F.max("y")).collect()[0]
        self.summary.large_buckets, self.summary.largest_bucket = int(stats[0] or 0), int(stats[1] or 0)
        small = grouped.filter(F.col("tag") == ss.PAIR).select(F.col("x").alias("a"), F.col("y").alias("b"))
        members = grouped.filter(F.col("tag") == ss.MEMBER).select(F.col("x").alias("bucket"), F.col("y").alias("cls"))
        ranked = members.join(classes.select("cls", "crank"), "cls")
        pivots = (ranked.withColumn("n", F.row_number().over(Window.partitionBy("bucket").orderBy("crank")))
                  .filter(F.col("n") <= config.bucket_pivots).select("bucket", F.col("cls").alias("pivot")))
        large = (members.join(F.broadcast(pivots), "bucket").filter(F.col("cls") != F.col("pivot"))
                 .select(F.least("cls", "pivot").alias("a"), F.greatest("cls", "pivot").alias("b")))
        pairs = small.unionByName(large).distinct()
        if self.first_new >= 0:  # two reference classes: never compared
            pairs = pairs.filter((F.col("a") >= self.first_new) | (F.col("b") >= self.first_new))
        pairs = self.save("candidates", "pairs", pairs)
        self.summary.candidate_pairs = pairs.count()
        return pairs

    def _leaders(self, prints: DataFrame, weights: DataFrame, docs: DataFrame) -> DataFrame:
        """Each class's leader (smallest row) with what verification reads of it (not saved)."""
        F = _pyspark()
        leaders = docs.filter(F.col("row") == F.col("cls")).select("row")
        return (prints.select("row", "shingles", "p_sizes", "p_words").join(leaders, "row", "left_semi")
                .join(weights, "row"))

    def _verify(self, pairs: DataFrame, leaders: DataFrame) -> DataFrame:
        """Exact scores of every candidate pair: a task gets class a's shingles once, then those
        of each b it is paired with."""
        F = _pyspark()
        config, include_partial, first_new, chunk_rows = self.config, self.include_partial, self.first_new, \
            self.chunk_rows
        data = ["shingles", "p_sizes", "p_words", "weights"]
        firsts = leaders.join(pairs.select(F.col("a").alias("row")).distinct(), "row", "left_semi")
        firsts = firsts.select(F.col("row").alias("a"), F.lit(0).alias("tag"), F.lit(-1).cast("long").alias("b"),
                               *data)
        seconds = leaders.join(pairs.select(F.col("b").alias("row")).distinct(), "row", "left_semi")
        seconds = (pairs.join(seconds.withColumnRenamed("row", "b"), "b")
                   .select("a", F.lit(1).alias("tag"), "b", *data))
        rows = firsts.unionByName(seconds).repartition(self.partitions, "a").sortWithinPartitions("a", "tag")

        def measure(batches: Iterator[Any]) -> Iterator[Any]:
            yield from ss.verify_stream(batches, config, include_partial, first_new, chunk_rows)

        return self.save("verify", "known", rows.mapInArrow(measure, _KNOWN))

    def _components(self, known: DataFrame) -> DataFrame:
        """Connected components of the holding pairs by alternating large-star and small-star
        (Kiveris et al., 2014) until every component is a star around its smallest class."""
        F = _pyspark()
        links = known.filter(F.col("rhl") | F.col("lhr")).select(F.col("b").alias("u"), F.col("a").alias("v"))
        edges = self.save("components", "edges", links.distinct())
        rounds = 0
        while not self._stars(edges):
            if rounds >= self.max_rounds:
                raise ComponentsError(f"connected components did not converge in {rounds} rounds of large-star "
                                      f"and small-star; raise max_component_rounds (now {self.max_rounds})")
            previous = edges
            edges = self.save("components", f"edges {rounds + 1}", _small_star(_large_star(edges)))
            previous.unpersist()
            rounds += 1
        self.summary.component_rounds = rounds
        centres = edges.select(F.col("v").alias("node"), F.col("v").alias("comp")).distinct()
        return self.save("components", "components",
                         edges.select(F.col("u").alias("node"), F.col("v").alias("comp")).unionByName(centres))

    def _stars(self, edges: DataFrame) -> bool:
        """True when every edge joins a leaf (one edge only, to a smaller node) to a centre (no smaller neighbour)."""
        F = _pyspark()
        forked = edges.groupBy("u").count().filter(F.col("count") > 1).select("u")
        inner = edges.select(F.col("v").alias("u")).join(edges.select("u"), "u", "left_semi")
        return not forked.unionByName(inner).limit(1).count()

    def _cluster(self, known: DataFrame, components: DataFrame, classes: DataFrame,
                 leaders: DataFrame) -> DataFrame:
        """Representatives of every component by :func:`neardup.clustering.cluster`, many whole
        components per call, with the members' shingles at hand for pairs verified late."""
        F = _pyspark()
        config, include_partial, first_new, chunk_rows = self.config, self.include_partial, self.first_new, \
            self.chunk_rows
        nodes = (components.join(classes.select(F.col("cls").alias("node"), "crank"), "node")
                 .join(leaders.withColumnRenamed("row", "node"), "node")
                 .select("comp", F.lit(0).alias("tag"), F.col("node").alias("cls"), "crank", "shingles", "p_sizes",
                         "p_words", "weights"))
        side_a = components.select(F.col("node").alias("a"), F.col("comp"))
        side_b = components.select(F.col("node").alias("b"), F.col("comp").alias("comp_b"))
        inside = (known.join(side_a, "a").join(side_b, "b").filter(F.col("comp") == F.col("comp_b"))
                  .drop("comp_b").withColumn("tag", F.lit(1)))
        rows = (nodes.unionByName(inside, allowMissingColumns=True).repartition(self.partitions, "comp")
                .sortWithinPartitions("comp", "tag"))

        def place(batches: Iterator[Any]) -> Iterator[Any]:
            yield from ss.cluster_stream(batches, config, include_partial, first_new, chunk_rows)

        return self.save("cluster", "placed", rows.mapInArrow(place, _PLACED))

    def _assign(self, docs: DataFrame, classes: DataFrame, placed: DataFrame, columns: _Columns) -> DataFrame:
        """Each document's representative (the best member of its cluster's representative class)
        and its relation to it (:func:`neardup.stages.assignments`)."""
        F = _pyspark()
        moved = placed.filter(F.col("cls") >= 0).drop("late", "unresolved")
        best = classes.select(F.col("cls").alias("rep_cls"), F.col("best_row").alias("rep_row"),
                              F.col("best_id").alias("cluster"))
        rows = (docs.join(moved, "cls", "left").withColumn("rep_cls", F.coalesce("rep", "cls"))
                .join(best, "rep_cls"))
        is_rep = F.col("row") == F.col("rep_row")
        exact = F.col("cls") == F.col("rep_cls")

        def score(name: str) -> Column:
            column: Column = F.when(is_rep, F.lit(None).cast("double")).when(exact, F.lit(1.0)).otherwise(F.col(name))
            return column

        kind = (F.when(is_rep, F.lit("representative")).when(exact, F.lit("exact"))
                .otherwise(F.expr(f"CASE kind {_KIND_SQL} END")))
        rows = rows.select("row", *(["order"] if columns.order else []), "is_new", "id", "cluster",
                           is_rep.alias("representative"), kind.alias("kind"), score("jaccard").alias("jaccard"),
                           score("inside").alias("doc_in_representative"),
                           score("outside").alias("representative_in_doc"), score("coverage").alias("coverage"))
        if self.first_new >= 0:
            rows = rows.filter(F.col("is_new"))
        return self.save("assign", "rows", rows)

    def _count(self, rows: DataFrame, classes: DataFrame, placed: DataFrame) -> None:
        F = _pyspark()
        s = self.summary
        for row in rows.groupBy("kind").count().collect():
            if row["kind"] == "representative":
                s.clusters = row["count"]
            else:
                s.by_kind[row["kind"]] = row["count"]
        s.documents = s.clusters + sum(s.by_kind.values())
        s.removed = s.documents - s.clusters
        s.exact_classes = classes.count()
        late = placed.filter(F.col("cls") < 0).agg(F.sum("late"), F.sum("unresolved")).collect()[0]
        s.verified_late, s.kept_unresolved = int(late[0] or 0), int(late[1] or 0)
        s.skipped = type(s.skipped)({k: v for k, v in s.skipped.items() if v})


def _drop_checkpoint(df: DataFrame) -> None:
    """Free the blocks of a (local) checkpoint now rather than when the JVM collects its RDD."""
    try:
        plan = df._jdf.queryExecution().analyzed()
        if plan.getClass().getSimpleName() == "LogicalRDD":
            plan.rdd().unpersist(False)
    except Exception as err:
        log.debug("checkpoint not dropped: %s", err)


# -- connected components -----------------------------------------------------------------------------------


def _large_star(edges: DataFrame) -> DataFrame:
    """Every node's larger neighbours attached to the smallest of its neighbourhood (itself included).
    Edges are ``(u, v)`` with ``u > v``."""
    F = _pyspark()
    both = edges.select(F.col("u").alias("x"), F.col("v").alias("y")).unionByName(
        edges.select(F.col("v").alias("x"), F.col("u").alias("y")))
    smallest = both.groupBy("x").agg(F.least(F.min("y"), F.col("x")).alias("m"))
    return (both.filter(F.col("y") > F.col("x")).join(smallest, "x")
            .select(F.col("y").alias("u"), F.col("m").alias("v")).distinct())


def _small_star(edges: DataFrame) -> DataFrame:
    """Every node and its smaller neighbours attached to the smallest of them."""
    F = _pyspark()
    smallest = edges.groupBy("u").agg(F.min("v").alias("m"))
    moved = (edges.join(smallest, "u").filter(F.col("v") != F.col("m"))
             .select(F.col("v").alias("u"), F.col("m").alias("v")))
    return moved.unionByName(smallest.select("u", F.col("m").alias("v"))).distinct()


# -- schemas ---------------------------------------------------------------------------------------------------


def _schema(ddl: str) -> Any:
    from pyspark.sql import types as T

    fields = []
    for item in ddl.split(","):
        name, kind = item.split()
        element = {"long": T.LongType(), "int": T.IntegerType(), "double": T.DoubleType(), "string": T.StringType(),
                   "boolean": T.BooleanType()}
        if kind.startswith("array<"):
            fields.append(T.StructField(name, T.ArrayType(element[kind[6:-1]])))
        else:
            fields.append(T.StructField(name, element[kind]))
    return T.StructType(fields)


class _LazySchema:
    def __init__(self, ddl: str) -> None:
        self.ddl = ddl

    @property
    def fields(self) -> list[Any]:
        fields: list[Any] = _schema(self.ddl).fields
        return fields

    def __str__(self) -> str:
        return self.ddl


_PRINTS = _LazySchema("valid boolean, id string, length long, date string, hi long, lo long, p_digest array<long>, "
                      "p_words array<int>, p_sizes array<int>, shingles array<int>, a_keys array<long>, "
                      "p_key_rows array<int>, p_keys array<long>")
_KNOWN = ("a long, b long, " + ", ".join(f"{name} double" for name in ss.SCORE_FIELDS)
          + ", rhl boolean, lhr boolean")
_PLACED = ("cls long, rep long, kind int, jaccard double, inside double, outside double, coverage double, "
           "late long, unresolved long")


# -- Spark's file systems and REST API ----------------------------------------------------------------------


class _FileSystem:
    """Small files on whatever file system Spark's Hadoop configuration reaches (markers)."""

    def __init__(self, spark: SparkSession) -> None:
        context: Any = spark.sparkContext
        self.jvm, self.conf = context._jvm, context._jsc.hadoopConfiguration()

    def _fs(self, path: str) -> tuple[Any, Any]:
        p = self.jvm.org.apache.hadoop.fs.Path(path)
        return p.getFileSystem(self.conf), p

    def read(self, path: str) -> str | None:
        fs, p = self._fs(path)
        if not fs.exists(p):
            return None
        stream = fs.open(p)
        try:
            return str(self.jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def write(self, path: str, text: str) -> None:
        fs, p = self._fs(path)
        stream = fs.create(p, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def files(self, source: str) -> list[str]:
        """The files of a path, glob or folder (recursively, in sorted path order, hidden files skipped)."""
        fs, p = self._fs(source)
        statuses = fs.globStatus(p)
        if not statuses:
            raise InputError(f"{source}: no such file or folder")
        out: list[str] = []
        for status in sorted(statuses, key=lambda s: s.getPath().toString()):
            out.extend(self._walk(fs, status))
        return out

    def _walk(self, fs: Any, status: Any) -> Iterator[str]:
        name = status.getPath().getName()
        if name.startswith(("_", ".")):
            return
        if not status.isDirectory():
            yield status.getPath().toString()
            return
        for child in sorted(fs.listStatus(status.getPath()), key=lambda s: s.getPath().getName()):
            yield from self._walk(fs, child)

    def rename(self, source: str, target: str) -> None:
        fs, p = self._fs(source)
        if not fs.rename(p, self._fs(target)[1]):
            raise OSError(f"cannot move {source} to {target}")


def _shuffle_bytes(spark: SparkSession, group: str) -> dict[str, dict[str, int]]:
    """Shuffle bytes written and read by the jobs of each stage of a run (Spark's REST API), or {}."""
    import urllib.request

    url = spark.sparkContext.uiWebUrl
    if not url:
        return {}
    base = f"{url}/api/v1/applications/{spark.sparkContext.applicationId}"
    try:
        with urllib.request.urlopen(f"{base}/jobs", timeout=30) as answer:
            jobs = json.load(answer)
        with urllib.request.urlopen(f"{base}/stages?status=complete", timeout=30) as answer:
            stage_list = json.load(answer)
    except (OSError, ValueError) as err:
        log.info("no shuffle figures from %s: %s", base, err)
        return {}
    stage_of = {s["stageId"]: s for s in stage_list}
    out: dict[str, dict[str, int]] = {}
    for job in jobs:
        name = job.get("jobGroup") or ""
        if not name.startswith(group + ":"):
            continue
        totals = out.setdefault(name.split(":", 1)[1], {"write": 0, "read": 0})
        for stage_id in job.get("stageIds", []):
            stage = stage_of.pop(stage_id, None)  # a stage counts once (jobs may share skipped stages)
            if stage is not None:
                totals["write"] += int(stage.get("shuffleWriteBytes", 0))
                totals["read"] += int(stage.get("shuffleReadBytes", 0))
    return out


# -- inputs and outputs of the command ---------------------------------------------------------------------


_FAMILIES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".csv": "csv",
             ".tsv": "tsv"}
_SPARK_COMPRESSIONS = (".gz", ".bz2", ".deflate", ".snappy", ".lz4")


def input_family(path: str) -> str | None:
    name = path.lower()
    for suffix in _SPARK_COMPRESSIONS:
        name = name.removesuffix(suffix)
    return next((family for suffix, family in _FAMILIES.items() if name.endswith(suffix)), None)


def read_inputs(spark: SparkSession, sources: Sequence[str], *, id_field: str = "id", text_field: str = "text",
                date_field: str = "date") -> tuple[DataFrame, str, list[str]]:
    """The documents of files as Spark reads them, in the order given (folders walked in sorted
    order, each file read alone so that its rows keep their order), with ``_neardup_row``
    numbering them in that order. JSON Lines are read as lines (``_neardup_line``, written
    back to KEPT as they came) with the id, text (or list of paragraphs) and date parsed out.
    Returns the frame, the format family and the files."""
    F = _pyspark()
    from pyspark.sql import types as T

    fs = _FileSystem(spark)
    files = [f for source in sources for f in fs.files(source)]
    unknown = [f for f in files if input_family(f) is None]
    if unknown:
        raise InputError(f"{unknown[0]}: the Spark engine reads .jsonl/.ndjson/.json (JSON Lines), .parquet, "
                         f".csv and .tsv (optionally .gz or .bz2)")
    kinds = {input_family(f) or "" for f in files}
    if len(kinds) != 1:
        raise InputError(f"the Spark engine reads inputs of one format at a time, got {', '.join(sorted(kinds))}")
    family = kinds.pop()
    if family == "jsonl":
        fields = T.StructType([T.StructField(id_field, T.StringType()), T.StructField(text_field, T.StringType())]
                              + ([T.StructField(date_field, T.StringType())] if date_field not in (id_field, text_field)
                                 else []))
        paragraphs = T.StructType([T.StructField(text_field, T.ArrayType(T.StringType()))])

        def one(path: str) -> DataFrame:
            lines = spark.read.text(path).select(F.regexp_replace("value", "^\ufeff", "").alias("_neardup_line"))
            lines = lines.filter(~F.col("_neardup_line").rlike(r"^\s*$"))
            parsed = lines.select("_neardup_line", F.from_json("_neardup_line", fields).alias("_r"),
                                  F.from_json("_neardup_line", paragraphs).alias("_p"))
            return parsed.select("_neardup_line", F.col("_r")[id_field].alias("_neardup_id"),
                                 F.col("_r")[text_field].alias("_neardup_text"),
                                 F.col("_p")[text_field].alias("_neardup_paragraphs"),
                                 (F.col("_r")[date_field] if date_field not in (id_field, text_field)
                                  else F.lit(None).cast("string")).alias("_neardup_date"))
    elif family == "parquet":
        def one(path: str) -> DataFrame:
            return spark.read.parquet(path)
    else:
        def one(path: str) -> DataFrame:
            return (spark.read.option("header", True).option("multiLine", True).option("escape", '"')
                    .option("sep", "\t" if family == "tsv" else ",").csv(path))
    frames = [one(f) for f in files]
    df = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    return df.withColumn("_neardup_row", F.monotonically_increasing_id()), family, files


def _is_local(path: str) -> bool:
    return urlparse(path).scheme in ("", "file")


def _local_path(path: str) -> str:
    parsed = urlparse(path)
    return parsed.path if parsed.scheme == "file" else path


def write_output(spark: SparkSession, df: DataFrame, path: str) -> None:
    """Write ``df`` (sorted as it should be written) to ``path``: JSON Lines when ``df`` is one
    ``value`` column of lines (``.gz``/``.bz2`` compressed by name), else Parquet. On the local
    file system the part files are joined into the one file the local engine writes; elsewhere
    ``path`` becomes a folder of part files, as Spark writes them."""
    family = "jsonl" if df.columns == ["value"] else "parquet"
    compression = next((c for c in ("gzip", "bzip2") if path.lower().endswith({"gzip": ".gz", "bzip2": ".bz2"}[c])),
                       None)
    staging = f"{path.rstrip('/')}.neardup-{uuid.uuid4().hex[:8]}"
    writer = df.write.mode("errorifexists")
    if family == "jsonl":
        writer.text(staging, compression=compression) if compression else writer.text(staging)
    else:
        writer.parquet(staging)
    if not _is_local(path):
        _FileSystem(spark).rename(staging, path)
        return
    from .outputs import atomic_path

    folder = _local_path(staging)
    try:
        parts = sorted(p for p in os.listdir(folder) if p.startswith("part-"))
        with atomic_path(_local_path(path)) as temporary:
            if family == "jsonl":
                with open(temporary, "wb") as out:
                    for part in parts:
                        with open(os.path.join(folder, part), "rb") as handle:
                            shutil.copyfileobj(handle, out, 1 << 20)
            else:
                _join_parquet([os.path.join(folder, p) for p in parts], temporary)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _join_parquet(parts: list[str], target: str) -> None:
    import pyarrow.parquet as pq

    writer = None
    try:
        for part in parts:
            source = pq.ParquetFile(part)
            if writer is None:
                writer = pq.ParquetWriter(target, source.schema_arrow)
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group))
    finally:
        if writer is not None:
            writer.close()


def kept_output(spark: SparkSession, df: DataFrame, rows: DataFrame, family: str, path: str) -> DataFrame:
    """KEPT as it should be written: the kept input rows in input order, JSON Lines as they came
    when both are JSON Lines, else as the output format needs them."""
    F = _pyspark()
    from .outputs import output_format

    kept_rows = rows.filter(F.col("representative")).select(F.col("order").alias("_neardup_row"))
    chosen = df.join(kept_rows, "_neardup_row", "left_semi").orderBy("_neardup_row")
    out_family, _ = output_format(path)
    if family == "jsonl":
        lines = chosen.select(F.col("_neardup_line").alias("value"))
        if out_family == "jsonl":
            return lines
        return spark.read.json(lines.rdd.map(lambda r: r[0]))
    records = chosen.drop("_neardup_row")
    if out_family == "parquet":
        return records

    def as_json(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        from .outputs import _dumps, _jsonable

        for batch in batches:
            yield pa.RecordBatch.from_pydict({"value": pa.array(
                [_dumps(_jsonable(r)).decode("utf-8") for r in batch.to_pylist()], pa.string())})

    return records.mapInArrow(as_json, "value string")


def clusters_output(rows: DataFrame, path: str) -> DataFrame:
    """CLUSTERS as the local command writes it: one row per document in input order, JSON Lines
    or Parquet by the name."""
    from .outputs import output_format

    ordered = rows.orderBy("order")
    family, _ = output_format(path)

    def lines(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            yield ss.clusters_json_arrow(batch)

    def columns(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            yield ss.clusters_rows_arrow(batch)

    if family == "jsonl":
        return ordered.mapInArrow(lines, "value string")
    return ordered.mapInArrow(columns, "id string, cluster string, representative boolean, kind string, "
                                       "jaccard double, containment struct<doc_in_representative: double, "
                                       "representative_in_doc: double>, coverage double")


# -- the command ------------------------------------------------------------------------------------------


def session(master: str | None = None, conf: Iterable[tuple[str, str]] = (), tmp_dir: str | None = None
            ) -> tuple[SparkSession, bool]:
    """The active SparkSession (under ``spark-submit``), or a new one on ``master`` (default
    ``local[2]``); the flag says whether it was made here (and should be stopped after)."""
    _pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    if master is None and os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Under spark-submit the JVM is up with the master and settings given to spark-submit.
        return SparkSession.builder.appName("neardup dedup").getOrCreate(), False
    master = master or "local[2]"
    builder = SparkSession.builder.master(master).appName("neardup dedup")
    if master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        # Python workers of a local master are started from PYSPARK_PYTHON (default: python3 on the
        # PATH, which may not have neardup): make them this interpreter.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    if tmp_dir:
        builder = builder.config("spark.local.dir", tmp_dir)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    if not any(key == "spark.driver.extraJavaOptions" for key, _ in conf):
        quiet = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spark-log4j2.properties")
        builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{quiet}")
    for key, value in conf:
        builder = builder.config(key, value)
    return builder.getOrCreate(), True


def run_spark_dedup(args: Any, out: TextIO, console: Any) -> int:
    """``neardup dedup ... --engine spark``: read the inputs with Spark, run :func:`run`, write
    CLUSTERS and KEPT as the local engine does (same rows, same order)."""
    from .cli import _dedup_config, _usage
    from .diskstore import is_index
    from .outputs import check_outputs, output_format

    for flag, name in (("drop_repeats", "--drop-repeats"), ("index", "--index"), ("strict", "--strict")):
        if getattr(args, flag, None):
            raise _usage(f"{name} is not available with --engine spark")
    if (getattr(args, "max_record_mb", 64.0), getattr(args, "max_paragraphs", 100_000)) != (64.0, 100_000):
        raise _usage("--max-record-mb and --max-paragraphs are not available with --engine spark")
    for target in (args.out, args.clusters):
        if output_format(target)[0] not in ("jsonl", "parquet"):
            raise _usage(f"{target}: with --engine spark, KEPT and CLUSTERS are .jsonl (optionally .gz/.bz2) "
                         f"or .parquet")
    for path in getattr(args, "against", None) or ():
        if _is_local(path) and is_index(_local_path(path)):
            raise InputError(f"{path}: an index as --against runs on the local engine only; on Spark, give the "
                             "reference corpus as files (last month's KEPT)")
    config = _dedup_config(args)
    if all(_is_local(p) for p in (args.out, args.clusters)):
        check_outputs([_local_path(args.out), _local_path(args.clusters)],
                      [_local_path(p) for p in args.inputs if _is_local(p)])
    conf = [tuple(item.split("=", 1)) for item in getattr(args, "spark_conf", None) or []]
    if any(len(pair) != 2 for pair in conf):
        raise _usage("--spark-conf takes KEY=VALUE")
    spark, made = session(getattr(args, "spark_master", None), conf, getattr(args, "tmp_dir", None))
    try:
        spark.sparkContext.setLogLevel("ERROR")
        df, family, files = read_inputs(spark, args.inputs, id_field=args.id_field, text_field=args.text_field,
                                        date_field=args.date_field)
        columns = (("_neardup_id", "_neardup_text", "_neardup_paragraphs") if family == "jsonl"
                   else (args.id_field, args.text_field, None))
        date = "_neardup_date" if family == "jsonl" else args.date_field
        reference = _reference(spark, args, family, date) if getattr(args, "against", None) else None
        result = run(df, columns[0], columns[1], config, args.keep, date, not args.no_partial, reference=reference,
                     order_col="_neardup_row", paragraphs_col=columns[2],
                     partitions=getattr(args, "spark_partitions", None) or _default_partitions(spark),
                     checkpoint_dir=getattr(args, "spark_checkpoint", None))
        summary = result.summary
        if summary.documents == 0:
            raise _usage(f"no documents read from {len(files)} file(s) (fields {args.id_field!r} and "
                         f"{args.text_field!r} expected)")
        write_output(spark, clusters_output(result.rows, args.clusters), args.clusters)
        write_output(spark, kept_output(spark, df, result.rows, family, args.out), args.out)
        result.release()
    finally:
        if made:
            spark.stop()
    _report(summary, args, out, console)
    return EXIT_OK


def _reference(spark: SparkSession, args: Any, family: str, date: str) -> DataFrame:
    """The ``--against`` documents, read as the inputs are: of the inputs' format, so that both
    frames have the same columns (a date column the reference lacks is null)."""
    F = _pyspark()
    reference, kind, _ = read_inputs(spark, args.against, id_field=args.id_field, text_field=args.text_field,
                                     date_field=args.date_field)
    if kind != family:
        raise InputError(f"with --engine spark, --against inputs are of the inputs' format ({family}), got {kind}")
    if date not in reference.columns:
        reference = reference.withColumn(date, F.lit(None).cast("string"))
    return reference


def _default_partitions(spark: SparkSession) -> int | None:
    """On a local master, 4 partitions a core (Spark's default of 200 is for clusters); elsewhere
    ``spark.sql.shuffle.partitions``."""
    if (spark.sparkContext.master or "").startswith("local"):
        return 4 * spark.sparkContext.defaultParallelism
    return None


def _report(summary: SparkSummary, args: Any, out: TextIO, console: Any) -> None:
    skipped = dict(summary.skipped)
    if skipped:
        console.say("neardup: inputs: " + ", ".join(f"{n:,} skipped ({reason})" for reason, n in skipped.items()))
    console.say(f"neardup: dedup: {summary.line()}")
    console.detail("neardup: dedup (spark): seconds per stage: "
                   + ", ".join(f"{k} {v:.2f}" for k, v in summary.seconds.items())
                   + f"; {summary.candidate_pairs:,} candidate pairs, {summary.verified_late:,} verified late, "
                     f"{summary.large_buckets:,} buckets over the cap (largest {summary.largest_bucket:,}), "
                     f"{summary.component_rounds} rounds of connected components")
    if args.json:
        out.write(json.dumps({"documents": summary.documents, "clusters": summary.clusters,
                              "removed": summary.removed, "removed_by_kind": dict(summary.by_kind),
                              "skipped": skipped, "seconds": summary.seconds, "engine": "spark",
                              "candidate_pairs": summary.candidate_pairs, "verified_late": summary.verified_late,
                              "large_buckets": summary.large_buckets, "largest_bucket": summary.largest_bucket,
                              "component_rounds": summary.component_rounds, "shuffle": summary.shuffle}) + "\n")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``python -m neardup.spark dedup INPUT... --out KEPT --clusters CLUSTERS [...]`` (also the script
    given to ``spark-submit``): ``neardup dedup --engine spark``, whatever ``--engine`` says."""
    from .cli import Console, build_parser

    args = build_parser().parse_args(argv)
    args.engine = "spark"
    if args.command != "dedup":
        print("neardup.spark: only the dedup command runs on Spark", file=sys.stderr)
        return 2
    console = Console(args.quiet, args.verbose, args.log_file)
    try:
        return run_spark_dedup(args, out or sys.stdout, console)
    except NearDupError as err:
        console.warn(f"neardup: error: {err}")
        return err.exit_code
    finally:
        console.close()


__all__ = [
    "MAX_COMPONENT_ROUNDS",
    "RESULT_COLUMNS",
    "ComponentsError",
    "SparkResult",
    "SparkSummary",
    "dedup",
    "dedup_against",
    "kept",
    "main",
    "read_inputs",
    "run",
    "run_spark_dedup",
    "session",
]

if __name__ == "__main__":  # run the module's own copy (not __main__'s), so that Spark pickles by reference
    from neardup.spark import main as _main

    sys.exit(_main())
