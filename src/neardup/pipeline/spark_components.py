"""Connected components on Spark by large-star and small-star (Kiveris et al., 2014).

Edges are ``(u, v)`` with ``u > v``. A round of large-star then small-star moves every node closer
to the smallest node of its component; when every edge joins a leaf to a centre (:func:`are_stars`),
each component is a star around its smallest node, which names it. The rounds are few (logarithmic
in practice); the engine stops after a limit and says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neardup.pipeline.spark_io import pyspark_functions

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame


def star_round(edges: DataFrame) -> DataFrame:
    """One round: large-star, then small-star."""
    return _small_star(_large_star(edges))


def are_stars(edges: DataFrame) -> bool:
    """True when every edge joins a leaf (one edge only, to a smaller node) to a centre (no smaller neighbour)."""
    F = pyspark_functions()
    forked = edges.groupBy("u").count().filter(F.col("count") > 1).select("u")
    inner = edges.select(F.col("v").alias("u")).join(edges.select("u"), "u", "left_semi")
    return not forked.unionByName(inner).limit(1).count()


def _large_star(edges: DataFrame) -> DataFrame:
    """Every node's larger neighbours attached to the smallest of its neighbourhood (itself included).
    Edges are ``(u, v)`` with ``u > v``."""
    F = pyspark_functions()
    both = edges.select(F.col("u").alias("x"), F.col("v").alias("y")).unionByName(
        edges.select(F.col("v").alias("x"), F.col("u").alias("y")))
    smallest = both.groupBy("x").agg(F.least(F.min("y"), F.col("x")).alias("m"))
    return (both.filter(F.col("y") > F.col("x")).join(smallest, "x")
            .select(F.col("y").alias("u"), F.col("m").alias("v")).distinct())


def _small_star(edges: DataFrame) -> DataFrame:
    """Every node and its smaller neighbours attached to the smallest of them."""
    F = pyspark_functions()
    smallest = edges.groupBy("u").agg(F.min("v").alias("m"))
    moved = (edges.join(smallest, "u").filter(F.col("v") != F.col("m"))
             .select(F.col("v").alias("u"), F.col("m").alias("v")))
    return moved.unionByName(smallest.select("u", F.col("m").alias("v"))).distinct()
