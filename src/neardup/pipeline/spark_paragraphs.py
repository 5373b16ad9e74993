"""Paragraph document frequencies on Spark, and what is read from them before the weights: each
document's own words, for ``keep="cleanest"`` (:func:`neardup.pipeline.stages.own_words`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from neardup.config import Config
from neardup.pipeline import spark_stages as ss
from neardup.pipeline.spark_io import pyspark_functions

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame


def paragraph_frequencies(prints: DataFrame) -> DataFrame:
    """``row, paragraph_frequencies``: for each paragraph of each document (in order), how many
    documents hold its digest."""
    F = pyspark_functions()
    frequencies = (prints.select(F.explode(F.array_distinct("paragraph_digests")).alias("digest"))
                   .groupBy("digest").agg(F.count("*").alias("df")))
    per_paragraph = prints.select("row", F.posexplode("paragraph_digests").alias("pos", "digest")) \
        .join(frequencies, "digest")
    return (per_paragraph.groupBy("row")
            .agg(F.sort_array(F.collect_list(F.struct("pos", "df"))).alias("s"))
            .select("row", F.col("s.df").alias("paragraph_frequencies")))


def own_words(prints: DataFrame, config: Config) -> DataFrame:
    """``row, own``: each document's words of text of its own besides the story."""
    joined = (prints.select("row", "paragraph_words", "paragraph_digests")
              .join(paragraph_frequencies(prints), "row", "left"))

    def own(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            yield ss.own_words_arrow(batch, config)

    return joined.mapInArrow(own, "row long, own long")
