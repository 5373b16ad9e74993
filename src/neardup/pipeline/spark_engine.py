"""Dedup on Apache Spark: the local executor's stages, run inside Spark, giving the same clusters.

Install with ``pip install 'neardup[spark]'`` (pyspark >= 4, pyarrow, and pandas, which pyspark
requires for ``mapInArrow``); Java 17 or later. ::

    from neardup import spark as nd
    result = nd.dedup(df, id_col="id", text_col="text", keep="first")   # one row per document
    nd.kept(df, result).write.parquet("kept.parquet")                  # the kept rows, every column

The stages are those of :mod:`neardup.pipeline.local` (the *local executor*), each a Spark operation
over the pure batch functions of :mod:`neardup.pipeline.stages` wrapped for Arrow in
:mod:`neardup.pipeline.spark_stages`:

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
cluster         :func:`neardup.pipeline.clustering.cluster` on whole components     by component
kept            removals rescored with the paragraphs kept documents hold  by digest, then by class
                (:mod:`neardup.pipeline.spark_kept`); those losing text undone
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

**Memory.** A worker holds at most a chunk of rows (:data:`neardup.pipeline.spark_stages.CHUNK_ROWS`) or one
group bigger than that: one bucket's records, one class's candidates with their shingles, or one
component with its members' shingles (the one stage where a giant component is a single task).
"""


from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neardup.config import Config
from neardup.errors import InputError, NearDupError
from neardup.io.checks import reason_key
from neardup.match.scores import KIND_NAMES
from neardup.pipeline import spark_stages as ss
from neardup.pipeline.policy import DedupOptions, KeepName, KeepPolicy, SortKey
from neardup.pipeline.result import DedupSummary
from neardup.pipeline.spark_components import are_stars, star_round
from neardup.pipeline.spark_io import FileSystem, drop_checkpoint, pyspark_functions, shuffle_bytes, spark_schema
from neardup.pipeline.spark_kept import LEADER_DATA, figure_partners, held_elsewhere, undo_losses
from neardup.pipeline.spark_paragraphs import own_words, paragraph_frequencies

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Rounds of large-star + small-star after which connected components give up.
MAX_COMPONENT_ROUNDS = 64
#: Columns of the result, one row per input document.
RESULT_COLUMNS = ss.RESULT_COLUMNS
_KIND_SQL = " ".join(f"WHEN {code} THEN '{name}'" for code, name in KIND_NAMES.items())


class ComponentsError(NearDupError, RuntimeError):
    """Connected components did not converge within the round limit."""


# -- the result --------------------------------------------------------------------------------------------


@dataclass
class SparkSummary(DedupSummary):
    """The local summary's counts, plus rounds of connected components and, when Spark's REST
    API answers (``spark.ui.enabled``), bytes shuffled per stage (``{stage: {"write": .., "read": ..}}``)."""

    component_rounds: int = 0
    shuffle: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The first skipped rows in reading order: (file, id, reason); the file is None for a DataFrame.
    skip_examples: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)


#: Skipped rows named one by one (as the local command names its first twenty).
SKIP_EXAMPLES = 20


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
          keep: KeepName | KeepPolicy = "first", date_col: str = "date", include_partial: bool = True, *,
          reference: DataFrame | None = None, order_col: str | None = None, partitions: int | None = None,
          checkpoint_dir: str | None = None, max_component_rounds: int = MAX_COMPONENT_ROUNDS) -> DataFrame:
    """Cluster the documents of ``df`` and choose one representative per cluster, as
    :func:`neardup.dedup` does (same clusters, representatives, kinds and scores).

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
    F = pyspark_functions()
    ids = result.filter(F.col("representative")).select(F.col("id").alias("_neardup_kept"))
    return df.join(ids, df[id_col].cast("string") == ids["_neardup_kept"], "left_semi")


def run(df: DataFrame, id_col: str = "id", text_col: str = "text", config: Config | None = None,
        keep: KeepName | KeepPolicy = "first", date_col: str = "date", include_partial: bool = True, *,
        reference: DataFrame | None = None, order_col: str | None = None, paragraphs_col: str | None = None,
        partitions: int | None = None, checkpoint_dir: str | None = None,
        max_component_rounds: int = MAX_COMPONENT_ROUNDS, chunk_rows: int = ss.CHUNK_ROWS) -> SparkResult:
    """:func:`dedup` with its summary (counts, seconds and shuffle bytes per stage).
    ``paragraphs_col``: a column of paragraph lists preferred to ``text_col`` where not null;
    ``chunk_rows``: rows a worker gathers before it groups them (tests make it small)."""
    pyspark_functions()
    options = DedupOptions.of(keep, date_col, include_partial)
    engine = _Run(df.sparkSession, config or Config(), options, partitions, checkpoint_dir, max_component_rounds,
                  chunk_rows)
    columns = _Columns(id_col, text_col, date_col if options.keep.reads_dates else None, order_col, paragraphs_col)
    return engine.run(df, reference, columns)


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

    def __init__(self, spark: SparkSession, config: Config, options: DedupOptions, partitions: int | None,
                 checkpoint_dir: str | None, max_rounds: int, chunk_rows: int) -> None:
        self.spark, self.config, self.options = spark, config, options
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
        fs = FileSystem(self.spark)
        if fs.read(marker) == self.signature:
            log.info("stage %s: reusing %s", name, path)
            return self.spark.read.parquet(path)
        df.write.mode("overwrite").parquet(path)
        fs.write(marker, self.signature)
        return self.spark.read.parquet(path)

    def release(self) -> None:
        for df in self.saved:
            df.unpersist()
            drop_checkpoint(df)
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
            placed, self.summary.kept_for_loss = undo_losses(placed, prints, leaders, classes, self.config,
                                                             self.options.partial, self.partitions, self.chunk_rows,
                                                             self.save)
            held = held_elsewhere(placed, prints, leaders, classes).join(figure_partners(known, classes), "cls", "full")
            rows = self._assign(docs, classes, placed, held, columns)
            self._count(rows, classes, placed)
        except BaseException:
            self.release()
            raise
        finally:
            self.spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type] # clears
            if shuffle is not None:
                self.spark.conf.set("spark.sql.shuffle.partitions", shuffle)
        self.summary.shuffle = shuffle_bytes(self.spark, self.group)
        frame = rows.select(*RESULT_COLUMNS)
        return SparkResult(frame, rows, self.summary, self.release)

    def _signature(self, df: DataFrame, reference: DataFrame | None, columns: _Columns) -> str:
        """What a checkpointed stage must match to be reused: input plans, configuration, options."""
        plans = [df.semanticHash()] + ([reference.semanticHash()] if reference is not None else [])
        return json.dumps({"neardup": 2, "config": self.config.to_dict(), "options": self.options.to_dict(),
                           "columns": columns.__dict__, "plans": plans}, sort_keys=True)

    def _inputs(self, df: DataFrame, columns: _Columns, new: bool, offset: int) -> DataFrame:
        """The columns fingerprinting reads, and a row number in reading order."""
        from pyspark.sql import types as T

        F = pyspark_functions()
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
        for given, name in (("_neardup_problem", "problem"), ("_neardup_file", "file")):
            selected.append((F.col(given) if given in df.columns else F.lit(None)).cast("string").alias(name))
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
        passthrough = ["row", "is_new", "file"] + (["order"] if columns.order else [])
        fields = list(spark_schema(ss.PRINTS_SCHEMA).fields)
        schema = T.StructType([inputs.schema[name] for name in passthrough] + fields)
        config = self.config

        def fingerprint(batches: Iterator[Any]) -> Iterator[Any]:
            for batch in batches:
                yield ss.fingerprint_arrow(batch, config, passthrough)

        return self.save("fingerprint", "prints", inputs.mapInArrow(fingerprint, schema), cache=True)

    def _classes(self, prints: DataFrame, columns: _Columns) -> tuple[DataFrame, DataFrame]:
        """Documents with their exact class and policy rank; classes with their best member."""
        from pyspark.sql import Window

        F = pyspark_functions()
        narrow = ["row", "is_new", "id", "length", "date", "doc_digest_hi", "doc_digest_lo"] \
            + (["order"] if columns.order else [])
        docs = prints.filter(F.col("valid")).select(*narrow)
        docs = self._first_of_each_id(docs, columns)
        if self.options.keep.reads_own_words:  # keep="cleanest": the frequencies of the documents read
            own = own_words(prints.join(docs.select("row"), "row", "left_semi"), self.config)
            docs = docs.join(own, "row", "left").fillna(0, ["own"])
        ranked = self._ranks(docs, columns)
        ranked = ranked.withColumn("cls", F.min("row").over(Window.partitionBy("doc_digest_hi", "doc_digest_lo")))
        docs = self.save("classes", "docs", ranked.drop("doc_digest_hi", "doc_digest_lo"))
        classes = docs.groupBy("cls").agg(F.min("rank").alias("crank"), F.min_by("row", "rank").alias("best_row"),
                                         F.min_by("id", "rank").alias("best_id"))
        return docs, self.save("classes", "classes", classes)

    def _first_of_each_id(self, docs: DataFrame, columns: _Columns) -> DataFrame:
        """Later rows with the id of an earlier one dropped (reference rows come first)."""
        F = pyspark_functions()
        first = F.struct(F.col("is_new"), *([F.col("order")] if columns.order else []), F.col("row"))
        repeated = (docs.groupBy("id").agg(F.count("*").alias("n"), F.min_by("row", first).alias("first"))
                    .filter("n > 1"))
        later = docs.join(repeated, "id").filter(F.col("row") != F.col("first")).select("row")
        self.summary.skipped["duplicate id"] = later.count()
        self.dropped = self.save("classes", "repeated ids", later) if self.summary.skipped["duplicate id"] else None
        return docs if self.dropped is None else docs.join(F.broadcast(later), "row", "left_anti")

    def _ranks(self, docs: DataFrame, columns: _Columns) -> DataFrame:
        """The keep policy's sort keys (:class:`~neardup.pipeline.policy.KeepPolicy`) as distinct
        ranks, reference documents first, ties by id: the ranks the local executor gives."""
        F = pyspark_functions()
        sort_keys = self.options.keep.sort_keys
        if sort_keys == (SortKey("order"),) and not columns.order:
            return docs.withColumn("rank", F.col("row"))
        keys: list[Column] = [F.col("is_new")]
        for key in sort_keys:
            keys += _order_columns(key, F)
        if sort_keys[-1].column != "id":
            keys.append(F.col("id"))
        return self._dense(docs, keys + [F.col("row")], "rank")

    def _dense(self, df: DataFrame, keys: list[Column], name: str) -> DataFrame:
        """``name`` = 0, 1, ... in the order of ``keys`` (a range sort, numbered per partition)."""
        F = pyspark_functions()
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
        """The fingerprints of the documents read (not of skipped rows, counted by reason as the
        local reader counts them, the first few named)."""
        F = pyspark_functions()
        skipped = prints.filter(~F.col("valid")).select("row", "file", "id", "problem")
        for found in skipped.groupBy("problem").count().collect():
            self.summary.skipped[reason_key(found["problem"] or "missing id or text")] += found["count"]
        self.summary.skip_examples = [(r["file"], r["id"], r["problem"]) for r in
                                      skipped.orderBy("row").limit(SKIP_EXAMPLES).collect()]
        prints = prints.filter(F.col("valid"))
        return prints if self.dropped is None else prints.join(F.broadcast(self.dropped), "row", "left_anti")

    def _weights(self, prints: DataFrame) -> DataFrame:
        """Paragraph weights: document frequencies by digest, then the boilerplate rule per document."""
        config = self.config
        joined = prints.select("row", "paragraph_words").join(paragraph_frequencies(prints), "row", "left")

        def weigh(batches: Iterator[Any]) -> Iterator[Any]:
            for batch in batches:
                yield ss.weights_arrow(batch, config)

        weighed = joined.mapInArrow(weigh, "row long, paragraph_weights array<double>, paragraph_holders array<long>")
        return self.save("frequencies", "weights", weighed)

    def _candidates(self, prints: DataFrame, weights: DataFrame, docs: DataFrame,
                    classes: DataFrame) -> DataFrame:
        """Candidate class pairs: band records grouped by bucket, each bucket's pairs as locally."""
        from pyspark.sql import Window

        F = pyspark_functions()
        config, chunk_rows = self.config, self.chunk_rows
        records_in = (prints.select("row", "article_keys", "paragraph_rows", "paragraph_keys", "paragraph_sizes",
                                    "paragraph_words").join(weights, "row").join(docs.select("row", "cls"), "row"))

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
        F = pyspark_functions()
        leaders = docs.filter(F.col("row") == F.col("cls")).select("row")
        return (prints.select("row", "shingles", "paragraph_sizes", "paragraph_words", "paragraph_figures")
                .join(leaders, "row", "left_semi")
                .join(weights, "row"))

    def _verify(self, pairs: DataFrame, leaders: DataFrame) -> DataFrame:
        """Exact scores of every candidate pair: a task gets class a's shingles once, then those
        of each b it is paired with."""
        F = pyspark_functions()
        config, partial, first_new, chunk_rows = self.config, self.options.partial, self.first_new, \
            self.chunk_rows
        data = [*LEADER_DATA, "paragraph_holders"]
        firsts = leaders.join(pairs.select(F.col("a").alias("row")).distinct(), "row", "left_semi")
        firsts = firsts.select(F.col("row").alias("a"), F.lit(0).alias("tag"), F.lit(-1).cast("long").alias("b"),
                               *data)
        seconds = leaders.join(pairs.select(F.col("b").alias("row")).distinct(), "row", "left_semi")
        seconds = (pairs.join(seconds.withColumnRenamed("row", "b"), "b")
                   .select("a", F.lit(1).alias("tag"), "b", *data))
        rows = firsts.unionByName(seconds).repartition(self.partitions, "a").sortWithinPartitions("a", "tag")

        def measure(batches: Iterator[Any]) -> Iterator[Any]:
            yield from ss.verify_stream(batches, config, partial, first_new, chunk_rows)

        return self.save("verify", "known", rows.mapInArrow(measure, ss.KNOWN_SCHEMA))

    def _components(self, known: DataFrame) -> DataFrame:
        """Connected components of the holding pairs by alternating large-star and small-star
        (Kiveris et al., 2014) until every component is a star around its smallest class."""
        F = pyspark_functions()
        links = known.filter(F.col("right_holds_left") | F.col("left_holds_right"))\
            .select(F.col("b").alias("u"), F.col("a").alias("v"))
        edges = self.save("components", "edges", links.distinct())
        rounds = 0
        while not are_stars(edges):
            if rounds >= self.max_rounds:
                raise ComponentsError(f"connected components did not converge in {rounds} rounds of large-star "
                                      f"and small-star; raise max_component_rounds (now {self.max_rounds})")
            previous = edges
            edges = self.save("components", f"edges {rounds + 1}", star_round(edges))
            previous.unpersist()
            rounds += 1
        self.summary.component_rounds = rounds
        centres = edges.select(F.col("v").alias("node"), F.col("v").alias("comp")).distinct()
        return self.save("components", "components",
                         edges.select(F.col("u").alias("node"), F.col("v").alias("comp")).unionByName(centres))

    def _cluster(self, known: DataFrame, components: DataFrame, classes: DataFrame,
                 leaders: DataFrame) -> DataFrame:
        """Representatives of every component by :func:`neardup.pipeline.clustering.cluster`, many whole
        components per call, with the members' shingles at hand for pairs verified late."""
        F = pyspark_functions()
        config, partial, first_new, chunk_rows = self.config, self.options.partial, self.first_new, \
            self.chunk_rows
        nodes = (components.join(classes.select(F.col("cls").alias("node"), "crank"), "node")
                 .join(leaders.withColumnRenamed("row", "node"), "node")
                 .select("comp", F.lit(0).alias("tag"), F.col("node").alias("cls"), "crank", *LEADER_DATA,
                         "paragraph_holders"))
        side_a = components.select(F.col("node").alias("a"), F.col("comp"))
        side_b = components.select(F.col("node").alias("b"), F.col("comp").alias("comp_b"))
        inside = (known.join(side_a, "a").join(side_b, "b").filter(F.col("comp") == F.col("comp_b"))
                  .drop("comp_b").withColumn("tag", F.lit(1)))
        rows = (nodes.unionByName(inside, allowMissingColumns=True).repartition(self.partitions, "comp")
                .sortWithinPartitions("comp", "tag"))

        def place(batches: Iterator[Any]) -> Iterator[Any]:
            yield from ss.cluster_stream(batches, config, partial, first_new, chunk_rows)

        return self.save("cluster", "placed", rows.mapInArrow(place, ss.PLACED_SCHEMA))

    def _assign(self, docs: DataFrame, classes: DataFrame, placed: DataFrame, held: DataFrame,
                columns: _Columns) -> DataFrame:
        """Each document's representative (the best member of its cluster's representative class)
        and its relation to it (:func:`neardup.pipeline.stages.assignments`)."""
        F = pyspark_functions()
        moved = placed.filter(F.col("cls") >= 0).drop("late", "unresolved")
        best = classes.select(F.col("cls").alias("rep_cls"), F.col("best_row").alias("rep_row"),
                              F.col("best_id").alias("cluster"))
        rows = (docs.join(moved, "cls", "left").withColumn("rep_cls", F.coalesce("rep", "cls"))
                .join(best, "rep_cls").join(held, "cls", "left"))
        is_rep = F.col("row") == F.col("rep_row")
        exact = F.col("cls") == F.col("rep_cls")

        def held_column(name: str, kind: str, none: Column) -> Column:  # exact copies of the kept one lose nothing
            column: Column = F.when(is_rep, F.lit(None).cast(kind)).when(exact, none).otherwise(F.coalesce(name, none))
            return column.alias(name)

        def score(name: str) -> Column:  # a kept one: the scores of its figure partner, if any
            column: Column = F.when(is_rep, F.col(f"fd_{name}")).when(exact, F.lit(1.0)).otherwise(F.col(name))
            return column

        partner = F.when(is_rep, F.col("differs_from"))
        kind = (F.when(partner.isNotNull(), F.lit("figures-differ")).when(is_rep, F.lit("representative"))
                .when(exact, F.lit("exact")).otherwise(F.expr(f"CASE kind {_KIND_SQL} END")))
        rows = rows.select("row", *(["order"] if columns.order else []), "is_new", "id", "cluster",
                           is_rep.alias("representative"), kind.alias("kind"), score("jaccard").alias("jaccard"),
                           score("doc_in_representative").alias("doc_in_representative"),
                           score("representative_in_doc").alias("representative_in_doc"),
                           score("coverage").alias("coverage"),
                           held_column("held_elsewhere", "long", F.lit(0).cast("long")),
                           held_column("held_by", "array<string>", F.array().cast("array<string>")),
                           partner.alias("differs_from"))
        if self.first_new >= 0:
            rows = rows.filter(F.col("is_new"))
        return self.save("assign", "rows", rows)

    def _count(self, rows: DataFrame, classes: DataFrame, placed: DataFrame) -> None:
        F = pyspark_functions()
        s = self.summary
        for row in rows.groupBy("representative", "kind").count().collect():
            if row["representative"]:
                s.clusters += row["count"]
                s.figures_differ += row["count"] if row["kind"] == "figures-differ" else 0
            else:
                s.by_kind[row["kind"]] = row["count"]
        s.documents = s.clusters + sum(s.by_kind.values())
        s.removed = s.documents - s.clusters
        s.exact_classes = classes.count()
        late = placed.filter(F.col("cls") < 0).agg(F.sum("late"), F.sum("unresolved")).collect()[0]
        s.verified_late, s.kept_unresolved = int(late[0] or 0), int(late[1] or 0)
        s.skipped = type(s.skipped)({k: v for k, v in s.skipped.items() if v})


def _order_columns(key: SortKey, F: Any) -> list[Column]:
    """Spark columns of a policy's sort key (``order``: the input order, then id and row)."""
    if key.column == "order":
        return [F.col("order"), F.col("id")]
    if key.column == "undated":
        return [F.col("date").isNull()]
    column: Column = F.col(key.column)
    return [column.desc() if key.descending else column]


__all__ = ["MAX_COMPONENT_ROUNDS", "RESULT_COLUMNS", "ComponentsError", "SparkResult", "SparkSummary", "dedup",
           "dedup_against", "kept", "run"]
