"""Spark's side of the engine's inputs and outputs: reading input files into a DataFrame in their
order, writing CLUSTERS and KEPT as the local engine writes them, small files on Spark's file systems,
shuffle figures from Spark's REST API, and the session.

Everything here needs pyspark (the ``spark`` extra) at call time only: importing the module does not.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Sequence
from functools import reduce
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from neardup.errors import InputError
from neardup.io.checks import id_problem
from neardup.io.formats import json_bytes
from neardup.io.reader import Reader
from neardup.io.writers import atomic_path, jsonable, output_format
from neardup.pipeline import spark_stages as ss

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def spark_schema(ddl: str) -> Any:
    """A Spark ``StructType`` of a DDL of ``name type`` items (the types :mod:`.spark_stages` writes)."""
    from pyspark.sql import types as T

    element = {"long": T.LongType(), "int": T.IntegerType(), "double": T.DoubleType(), "string": T.StringType(),
               "boolean": T.BooleanType()}
    fields = []
    for item in ddl.split(","):
        name, kind = item.split()
        value = T.ArrayType(element[kind[6:-1]]) if kind.startswith("array<") else element[kind]
        fields.append(T.StructField(name, value))
    return T.StructType(fields)


def pyspark_functions() -> Any:
    """``pyspark.sql.functions``, or an ImportError naming the extra to install."""
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import functions
    except ImportError as err:
        raise ImportError(f"the Spark engine needs the spark extra: pip install 'neardup[spark]' ({err})") from None
    return functions


# -- Spark's file systems and REST API ----------------------------------------------------------------------


class FileSystem:
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


def shuffle_bytes(spark: SparkSession, group: str) -> dict[str, dict[str, int]]:
    """Shuffle bytes written and read by the jobs of each stage of a run (Spark's REST API), or {}."""
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
    numbering them in that order, and ``_neardup_file`` naming the file. JSON Lines are read as
    lines (``_neardup_line``, written back to KEPT as they came) with the id, text (or list of
    paragraphs) and date parsed out. ``_neardup_problem`` says why a row is no document where
    the local reader would say so from what Spark's readers hide: a JSON line judged by the local
    reader's own rule (a float id, a number as text, a lone surrogate escape, not JSON), a CSV
    row with more fields than its header, an id column of another type than strings or integers.
    Returns the frame, the format family and the files."""
    F = pyspark_functions()
    from pyspark.sql import types as T

    fs = FileSystem(spark)
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
            lines = lines.mapInArrow(_line_problems(id_field, text_field),
                                     "_neardup_line string, _neardup_problem string")
            parsed = lines.select("_neardup_line", "_neardup_problem", F.from_json("_neardup_line", fields).alias("_r"),
                                  F.from_json("_neardup_line", paragraphs).alias("_p"))
            return parsed.select("_neardup_line", "_neardup_problem", F.col("_r")[id_field].alias("_neardup_id"),
                                 F.col("_r")[text_field].alias("_neardup_text"),
                                 F.col("_p")[text_field].alias("_neardup_paragraphs"),
                                 (F.col("_r")[date_field] if date_field not in (id_field, text_field)
                                  else F.lit(None).cast("string")).alias("_neardup_date"))
    elif family == "parquet":
        def one(path: str) -> DataFrame:
            frame = spark.read.parquet(path)
            kind = frame.schema[id_field].dataType if id_field in frame.columns else None
            wrong = kind is not None and not isinstance(kind, (T.StringType, T.IntegralType))
            return frame.withColumn("_neardup_problem", F.lit(id_problem(None, id_field) if wrong else None)
                                    .cast("string"))
    else:
        def one(path: str) -> DataFrame:
            return _csv_rows(spark, path, "\t" if family == "tsv" else ",")
    frames = [one(f).withColumn("_neardup_file", F.lit(local_path(f) if is_local(f) else f)) for f in files]
    df = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    return df.withColumn("_neardup_row", F.monotonically_increasing_id()), family, files


def _line_problems(id_field: str, text_field: str) -> Any:
    """A ``mapInArrow`` function adding to each JSON line why the local reader would skip it."""
    def problems(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        reader = Reader(id_field=id_field, text_field=text_field)
        for batch in batches:
            lines = batch.column(0).to_pylist()
            found = [reader.problem_of_line(line.encode("utf-8", "surrogatepass")) for line in lines]
            yield pa.RecordBatch.from_arrays([batch.column(0), pa.array(found, pa.string())],
                                             ["_neardup_line", "_neardup_problem"])
    return problems


def _csv_rows(spark: SparkSession, path: str, sep: str) -> DataFrame:
    """A CSV file's rows under its header, every field a string (an empty one ""), and
    ``_neardup_problem`` set on a row with more fields than the header (Spark would drop the extra
    fields without a word)."""
    from pyspark.sql import types as T

    F = pyspark_functions()
    reader = spark.read.option("header", True).option("multiLine", True).option("escape", '"').option("sep", sep)
    header = reader.csv(path).columns
    schema = T.StructType([T.StructField(name, T.StringType()) for name in header]
                          + [T.StructField("_neardup_extra", T.StringType())])
    rows = reader.schema(schema).option("enforceSchema", True).csv(path)
    problem = F.when(F.col("_neardup_extra").isNotNull(),
                     F.lit(f"more fields than the header (over {len(header)})"))
    # Spark reads an empty field as null; the local reader as "" (a field missing from a short row,
    # None there, is "" here too: the row is skipped either way, as an empty text here).
    fields = [F.coalesce(F.col(f"`{name}`"), F.lit("")).alias(name) for name in header]
    return rows.select(*fields, problem.cast("string").alias("_neardup_problem"))


def is_local(path: str) -> bool:
    return urlparse(path).scheme in ("", "file")


def local_path(path: str) -> str:
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
    if not is_local(path):
        FileSystem(spark).rename(staging, path)
        return

    folder = local_path(staging)
    try:
        parts = sorted(p for p in os.listdir(folder) if p.startswith("part-"))
        with atomic_path(local_path(path)) as temporary:
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
    F = pyspark_functions()

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

        for batch in batches:
            yield pa.RecordBatch.from_pydict({"value": pa.array(
                [json_bytes(jsonable(r)).decode("utf-8") for r in batch.to_pylist()], pa.string())})

    return records.mapInArrow(as_json, "value string")


def clusters_output(rows: DataFrame, path: str, partners: bool = False) -> DataFrame:
    """CLUSTERS as the local command writes it: one row per document in input order, JSON Lines
    or Parquet by the name (with a ``differs_from`` column when ``partners``: some row names one)."""

    ordered = rows.orderBy("order")
    family, _ = output_format(path)

    def lines(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            yield ss.clusters_json_arrow(batch)

    def columns(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            yield ss.clusters_rows_arrow(batch, partners)

    if family == "jsonl":
        return ordered.mapInArrow(lines, "value string")
    named = "differs_from string, " if partners else ""
    return ordered.mapInArrow(columns, "id string, cluster string, representative boolean, kind string, " + named +
                                       "jaccard double, containment struct<doc_in_representative: double, "
                                       "representative_in_doc: double>, coverage double, "
                                       "held_elsewhere struct<paragraphs: long, by: array<string>>")


def session(master: str | None = None, conf: Iterable[tuple[str, str]] = (), tmp_dir: str | None = None
            ) -> tuple[SparkSession, bool]:
    """The active SparkSession (under ``spark-submit``), or a new one on ``master`` (default
    ``local[2]``); the flag says whether it was made here (and should be stopped after)."""
    pyspark_functions()
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


def drop_checkpoint(df: DataFrame) -> None:
    """Free the blocks of a (local) checkpoint now rather than when the JVM collects its RDD."""
    try:
        plan = df._jdf.queryExecution().analyzed()
        if plan.getClass().getSimpleName() == "LogicalRDD":
            plan.rdd().unpersist(False)
    except Exception as err:
        log.debug("checkpoint not dropped: %s", err)
