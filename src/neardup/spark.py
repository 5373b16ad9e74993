"""Dedup on Apache Spark (``pip install 'neardup[spark]'``): the same clusters as :func:`neardup.dedup`. ::

    from neardup import spark as nd
    result = nd.dedup(df, id_col="id", text_col="text", keep="first")   # one row per document
    nd.kept(df, result).write.parquet("kept.parquet")                  # the kept rows, every column

The engine is :mod:`neardup.pipeline.spark_engine`; this module is its public face.
"""

from neardup.pipeline.spark_engine import (
    MAX_COMPONENT_ROUNDS,
    RESULT_COLUMNS,
    ComponentsError,
    SparkResult,
    SparkSummary,
    dedup,
    dedup_against,
    kept,
    run,
)
from neardup.pipeline.spark_io import read_inputs, session

__all__ = ["MAX_COMPONENT_ROUNDS", "RESULT_COLUMNS", "ComponentsError", "SparkResult", "SparkSummary", "dedup",
           "dedup_against", "kept", "read_inputs", "run", "session"]
