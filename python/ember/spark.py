"""Corpus embedding on Apache Spark (PySpark): `embed_dataframe`, a
``mapInPandas`` transform that adds a vector column and keeps every other
column, and `embed_udf`, the same as a pandas UDF.

>>> from pyspark.sql import SparkSession
>>> import ember.spark
>>> spark = SparkSession.builder.master("local[2]").getOrCreate()
>>> df = spark.createDataFrame([(0, "first text"), (1, "second text")], "id long, text string")
>>> out = ember.spark.embed_dataframe(df, "BAAI/bge-small-en-v1.5")
>>> out.select("id", "embedding").show()

The model is loaded once per executor Python process, on the first batch,
and kept in a module-level cache (`cached_model`, keyed by the model and its
options) that later tasks of the same worker reuse (Spark reuses Python
workers by default: ``spark.python.worker.reuse``). Vectors are
``array<float>`` and bit for bit those of ``ember embed``. A task that fails
is run again by Spark (``spark.task.maxFailures``; in local mode the master
``local[N,F]`` allows F attempts); its partial output is discarded. See
docs/deploy.md.

This module needs PySpark with pandas and pyarrow (``pip install
"pyspark[sql]"``); ``import ember`` does not.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Iterator, Optional

from ._distributed import FailOnce, InjectedFailure, cached_model, embed, model_cache_info, texts_of

try:
    import pyspark  # noqa: F401  (only to fail early with a clear message)
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("ember.spark needs PySpark: pip install \"pyspark[sql]\"") from e

__all__ = [
    "embed_dataframe",
    "embed_udf",
    "cached_model",
    "model_cache_info",
    "FailOnce",
    "InjectedFailure",
]


def _task_cpus() -> int:
    """CPUs of the running Spark task (``spark.task.cpus``, default 1)."""
    from pyspark import TaskContext

    tc = TaskContext.get()
    try:
        return max(1, int(tc.cpus())) if tc is not None else 1
    except Exception:  # noqa: BLE001 - older PySpark without TaskContext.cpus()
        return 1


def _model(model: str, threads: Optional[int], model_kwargs: Optional[Dict[str, Any]]) -> Any:
    kw = dict(model_kwargs or {})
    if "threads" in kw:
        raise ValueError("give threads as threads=..., not in model_kwargs")
    return cached_model(model, threads=threads if threads is not None else _task_cpus(), **kw)


def _vectors(m: Any, column: Any, name: str, encode_kwargs: Optional[Dict[str, Any]],
             fail_once: Optional[FailOnce]) -> Any:
    if fail_once is not None:
        fail_once.check(len(column))
    return embed(m, texts_of(column, name), dict(encode_kwargs or {}))


def _embed_partition(
    batches: Iterator[Any],
    *,
    model: str,
    text_column: str,
    output_column: str,
    threads: Optional[int],
    model_kwargs: Optional[Dict[str, Any]],
    encode_kwargs: Optional[Dict[str, Any]],
    fail_once: Optional[FailOnce],
) -> Iterator[Any]:
    m = _model(model, threads, model_kwargs)
    for pdf in batches:
        vecs = _vectors(m, pdf[text_column], text_column, encode_kwargs, fail_once)
        out = pdf.copy(deep=False)
        out[output_column] = list(vecs)
        yield out


def _check_encode_kwargs(encode_kwargs: Optional[Dict[str, Any]]) -> None:
    if (encode_kwargs or {}).get("precision", "float32") != "float32":
        raise ValueError("ember.spark writes float32 vectors: precision must be 'float32'")


def embed_dataframe(
    df: Any,
    model: str = "BAAI/bge-small-en-v1.5",
    *,
    text_column: str = "text",
    output_column: str = "embedding",
    threads: Optional[int] = None,
    model_kwargs: Optional[Dict[str, Any]] = None,
    encode_kwargs: Optional[Dict[str, Any]] = None,
    fail_once: Optional[FailOnce] = None,
) -> Any:
    """`df` with one more column, `output_column`: ``array<float>`` (not null),
    the embedding of `text_column`, through ``df.mapInPandas``.

    Args:
        df: a Spark DataFrame with a string column `text_column` (a null
            fails the task with a ValueError naming the column).
        model: hub id or directory, readable on every executor.
        threads: compute threads per task; None = ``spark.task.cpus``. Run
            one task per core (the default) for the best throughput.
        model_kwargs: other `ember.Model` arguments (dtype, max_seq_length...).
        encode_kwargs: `Model.encode` arguments (prompt_name, truncate_dim...).
        fail_once: a `FailOnce`, to test that Spark retries (never in production).

    Rows keep their partition and order; the result is lazy (an action such
    as ``write.parquet`` runs it).
    """
    from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

    if text_column not in df.columns:
        raise ValueError(f"no column {text_column!r} in the DataFrame (columns: {df.columns})")
    if output_column in df.columns:
        raise ValueError(f"the DataFrame already has a column {output_column!r}")
    _check_encode_kwargs(encode_kwargs)
    schema = StructType(list(df.schema.fields) + [
        StructField(output_column, ArrayType(FloatType(), containsNull=False), nullable=False)])
    fn = functools.partial(
        _embed_partition, model=model, text_column=text_column, output_column=output_column,
        threads=threads, model_kwargs=model_kwargs, encode_kwargs=encode_kwargs,
        fail_once=fail_once)
    return df.mapInPandas(fn, schema)


def embed_udf(
    model: str = "BAAI/bge-small-en-v1.5",
    *,
    threads: Optional[int] = None,
    model_kwargs: Optional[Dict[str, Any]] = None,
    encode_kwargs: Optional[Dict[str, Any]] = None,
    fail_once: Optional[FailOnce] = None,
) -> Any:
    """A pandas UDF, string column -> ``array<float>``, for ``select`` /
    ``withColumn``: ``df.withColumn("embedding", embed_udf(model)("text"))``.
    Same model cache and arguments as `embed_dataframe`."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf
    from pyspark.sql.types import ArrayType, FloatType

    _check_encode_kwargs(encode_kwargs)

    def ember_embed(texts: Any) -> Any:
        m = _model(model, threads, model_kwargs)
        vecs = _vectors(m, texts, str(texts.name or "text"), encode_kwargs, fail_once)
        return pd.Series(list(vecs), index=texts.index)

    # PySpark reads the kind of pandas UDF from real type hints (this module
    # has postponed annotations, so they are set here)
    ember_embed.__annotations__ = {"texts": pd.Series, "return": pd.Series}
    return pandas_udf(ember_embed, ArrayType(FloatType(), containsNull=False))
