"""Nothing lost, over the kept corpus, on Spark: the local executor's last stage
(:meth:`neardup.pipeline.local.LocalRun._nothing_lost`) as Spark operations.

Once every component is placed, the kept classes are known: a paragraph digest held by a kept
class's leader is furniture a removal may leave to others. Each removed class is scored again
against its representative with those marks (:func:`neardup.pipeline.spark_stages.loss_stream`);
of the removals that would lose text, the best-ranked holder of each paragraph that only removed
pages carry is kept, and every one that loses text of its own
(:func:`neardup.pipeline.stages.first_to_keep`), and the rest are checked again, ``loss_rounds``
times at most.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from neardup.config import Config
from neardup.pipeline import spark_stages as ss
from neardup.pipeline.elsewhere import HOLDERS
from neardup.pipeline.spark_io import pyspark_functions

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame

#: save(stage, name, frame) -> the frame materialised (the engine's ``save``).
Save = Callable[[str, str, "DataFrame"], "DataFrame"]

#: What scoring reads of a class leader, besides its paragraph marks.
LEADER_DATA = ("shingles", "paragraph_sizes", "paragraph_words", "paragraph_weights", "paragraph_figures")


def undo_losses(placed: DataFrame, prints: DataFrame, leaders: DataFrame, classes: DataFrame, config: Config,
                partial: bool, partitions: int, chunk_rows: int, save: Save) -> tuple[DataFrame, int]:
    """``placed`` (``cls`` under ``rep``, and a statistics row per chunk with ``cls < 0``) without
    the removals that would lose text, and how many were undone."""
    F = pyspark_functions()
    moved = placed.filter(F.col("cls") >= 0).select("cls", "rep")
    checking = moved
    undone: DataFrame | None = None
    count = 0
    for round_ in range(config.loss_rounds):
        held = _kept_digests(prints, leaders, moved)
        failing = save("kept", f"failing {round_}",
                       _failing(checking, prints, leaders, held, config, partial, partitions, chunk_rows))
        if failing.count() == 0:
            break
        keep = failing
        if round_ < config.loss_rounds - 1:
            keep = save("kept", f"keep {round_}", _first_to_keep(failing, prints, held, classes, config))
        count += keep.count()
        undone = keep if undone is None else undone.unionByName(keep)
        moved = save("kept", f"moved {round_}", moved.join(keep, "cls", "left_anti"))
        checking = moved.join(failing, "cls", "left_semi")
    return (placed if undone is None else placed.join(undone, "cls", "left_anti")), count


def _kept_digests(prints: DataFrame, leaders: DataFrame, moved: DataFrame) -> DataFrame:
    """``digest, held``: every paragraph digest a kept class's leader holds (held = 1)."""
    F = pyspark_functions()
    kept_leaders = leaders.select("row").join(moved.withColumnRenamed("cls", "row"), "row", "left_anti")
    return (prints.join(kept_leaders, "row", "left_semi")
            .select(F.explode(F.array_distinct("paragraph_digests")).alias("digest")).distinct()
            .withColumn("held", F.lit(1).cast("long")))


def _marked(prints: DataFrame, rows: DataFrame, held: DataFrame) -> DataFrame:
    """``row, pos, digest, held`` for every paragraph of the documents ``rows`` (held 0 or 1)."""
    F = pyspark_functions()
    return (prints.join(rows, "row", "left_semi")
            .select("row", F.posexplode("paragraph_digests").alias("pos", "digest"))
            .join(held, "digest", "left").withColumn("held", F.coalesce("held", F.lit(0).cast("long"))))


def _failing(checking: DataFrame, prints: DataFrame, leaders: DataFrame, held: DataFrame, config: Config,
             partial: bool, partitions: int, chunk_rows: int) -> DataFrame:
    """``cls``: the classes of ``checking`` (``cls, rep``) that would lose text."""
    F = pyspark_functions()
    marks = (_marked(prints, checking.select(F.col("cls").alias("row")), held)
             .groupBy("row").agg(F.sort_array(F.collect_list(F.struct("pos", "held"))).alias("s"))
             .select("row", F.col("s.held").alias("paragraph_holders")))
    firsts = (leaders.select("row", *LEADER_DATA).join(marks, "row")
              .select(F.col("row").alias("a"), F.lit(0).alias("tag"), F.lit(-1).cast("long").alias("b"),
                      *LEADER_DATA, "paragraph_holders"))
    seconds = (checking.join(leaders.select(F.col("row").alias("rep"), *LEADER_DATA, "paragraph_holders"), "rep")
               .select(F.col("cls").alias("a"), F.lit(1).alias("tag"), F.col("rep").alias("b"),
                       *LEADER_DATA, "paragraph_holders"))
    rows = firsts.unionByName(seconds).repartition(partitions, "a").sortWithinPartitions("a", "tag")

    def check(batches: Iterator[Any]) -> Iterator[Any]:
        yield from ss.loss_stream(batches, config, partial, chunk_rows)

    return rows.mapInArrow(check, "cls long")


def _first_to_keep(failing: DataFrame, prints: DataFrame, held: DataFrame, classes: DataFrame,
                   config: Config) -> DataFrame:
    """``cls``: of the ``failing`` classes, the best-ranked holder of every paragraph that several
    of them hold and no kept document does, and each one that holds no such paragraph."""
    F = pyspark_functions()
    words = prints.join(failing.withColumnRenamed("cls", "row"), "row", "left_semi") \
        .select("row", F.posexplode("paragraph_words").alias("pos", "words"))
    unheld = (_marked(prints, failing.withColumnRenamed("cls", "row"), held).join(words, ["row", "pos"])
              .filter((F.col("held") == 0) & (F.col("words") >= config.min_paragraph_words))
              .select(F.col("row").alias("cls"), "digest").distinct()
              .join(classes.select("cls", "crank"), "cls"))
    shared = (unheld.groupBy("digest").agg(F.count("*").alias("n"), F.min_by("cls", "crank").alias("best"))
              .filter(F.col("n") >= 2))
    best = shared.select(F.col("best").alias("cls"))
    with_shared = unheld.join(shared.select("digest"), "digest", "left_semi").select("cls")
    alone = failing.join(with_shared, "cls", "left_anti")
    return best.unionByName(alone).distinct()


def held_elsewhere(placed: DataFrame, prints: DataFrame, leaders: DataFrame, classes: DataFrame) -> DataFrame:
    """``cls, held_elsewhere, held_by``: for each removed class, the paragraphs of its leader that
    its representative does not carry and a kept class does, and the ids of up to ``HOLDERS`` of
    those kept classes' documents, best-ranked first (:mod:`neardup.pipeline.elsewhere`)."""
    F = pyspark_functions()
    moved = placed.filter(F.col("cls") >= 0).select("cls", "rep")
    paragraphs = (prints.join(leaders.select("row"), "row", "left_semi")
                  .select(F.col("row").alias("cls"), F.explode("paragraph_digests").alias("digest")))
    holder = (paragraphs.join(moved, "cls", "left_anti").join(classes.select("cls", "crank"), "cls")
              .groupBy("digest").agg(F.min_by("cls", "crank").alias("holder")))
    carried = paragraphs.select(F.col("cls").alias("rep"), "digest").distinct()
    rest = (paragraphs.join(moved, "cls").join(carried, ["rep", "digest"], "left_anti").join(holder, "digest")
            .select("cls", "holder"))
    named = (rest.distinct().join(classes.select(F.col("cls").alias("holder"), F.col("crank").alias("hrank"),
                                                 F.col("best_id").alias("hid")), "holder")
             .groupBy("cls").agg(F.sort_array(F.collect_list(F.struct("hrank", "hid"))).alias("s"))
             .select("cls", F.slice(F.col("s.hid"), 1, HOLDERS).alias("held_by")))
    return rest.groupBy("cls").agg(F.count("*").alias("held_elsewhere")).join(named, "cls")


def figure_partners(known: DataFrame, classes: DataFrame) -> DataFrame:
    """``cls, differs_from, fd_jaccard, fd_doc_in_representative, fd_representative_in_doc,
    fd_coverage``: for each class that another would hold but for their figures, the best-ranked
    such class's document and their scores seen from ``cls`` (:mod:`neardup.pipeline.figures`)."""
    from pyspark.sql import Window

    F = pyspark_functions()
    apart = known.filter(F.col("figure_gaps") > 0)

    def ratio(numerator: str, denominator: str) -> Column:
        column: Column = F.when(F.col(denominator) > 0, F.col(numerator) / F.col(denominator)).otherwise(F.lit(0.0))
        return column

    def side(held: str, partner: str, mine: str, other: str, flag: str) -> DataFrame:
        union = F.col("left_distinct") + F.col("right_distinct") - F.col("shared")
        jaccard = F.when(union > 0, F.col("shared") / union).otherwise(F.lit(0.0))
        coverage = F.least(ratio(f"{mine}_covered", f"{mine}_words"), ratio("shared", f"{mine}_distinct"))
        return apart.filter(F.col(flag)).select(
            F.col(held).alias("cls"), F.col(partner).alias("partner"), jaccard.alias("fd_jaccard"),
            ratio(f"{mine}_found", f"{mine}_total").alias("fd_doc_in_representative"),
            ratio(f"{other}_found", f"{other}_total").alias("fd_representative_in_doc"),
            coverage.alias("fd_coverage"))

    pairs = side("a", "b", "left", "right", "right_would_hold_left").unionByName(
        side("b", "a", "right", "left", "left_would_hold_right"))
    ranked = pairs.join(classes.select(F.col("cls").alias("partner"), F.col("crank").alias("prank"),
                                       F.col("best_id").alias("differs_from")), "partner")
    first = F.row_number().over(Window.partitionBy("cls").orderBy("prank"))
    return ranked.withColumn("k", first).filter(F.col("k") == 1).drop("k", "prank", "partner")
