"""ember.spark in Spark local mode (local[2,4]: 2 cores, a task may be tried
4 times): the vectors equal `ember embed`'s bit for bit, every row comes out
exactly once with its other columns, the model is loaded once per Python
worker, and a task that fails (an exception, or the Python worker dying) is
retried by Spark without losing or duplicating rows. docs/deploy.md
describes the recipe."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_same_rows

pytestmark = pytest.mark.distributed

pyspark = pytest.importorskip("pyspark", reason="PySpark not installed (scripts/setup.sh installs it)")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java (scripts/setup.sh installs openjdk-17-jre-headless)",
                allow_module_level=True)

from pyspark.sql import SparkSession  # noqa: E402

from ember.spark import FailOnce, embed_dataframe, embed_udf  # noqa: E402

PARTITIONS = 8


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # everything on loopback
    s = (SparkSession.builder.master("local[2,4]")  # 2 cores, 4 attempts per task
         .appName("ember-tests")
         .config("spark.task.maxFailures", "4")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.memory", "1g")
         .config("spark.sql.shuffle.partitions", str(PARTITIONS))
         .config("spark.sql.execution.arrow.pyspark.enabled", "true")
         .config("spark.python.worker.reuse", "true")
         .getOrCreate())
    s.sparkContext.setLogLevel("FATAL")  # the injected failures log stack traces
    yield s
    s.stop()


def frame(spark, texts: list[str]):
    rows = [(i, t, f"row-{i}") for i, t in enumerate(texts)]
    return spark.createDataFrame(rows, "id long, text string, meta string").repartition(PARTITIONS)


def collect(df) -> dict:
    pdf = df.toPandas()
    return {"id": pdf["id"].to_numpy(np.int64), "text": pdf["text"].tolist(),
            "meta": pdf["meta"].tolist(),
            "embedding": np.stack(pdf["embedding"].to_numpy()) if len(pdf) else None}


def check_columns(out: dict, texts: list[str]) -> None:
    assert out["text"] == [texts[i] for i in out["id"]]
    assert out["meta"] == [f"row-{i}" for i in out["id"]]


def test_real_model_equals_cli(spark, real_reference) -> None:
    """all-MiniLM-L6-v2 on 2,048 rows in 8 partitions through mapInPandas."""
    model, texts, ref = real_reference
    df = embed_dataframe(frame(spark, texts), str(model))
    field = df.schema["embedding"]
    assert field.dataType.simpleString() == "array<float>" and not field.nullable
    out = collect(df)
    assert out["embedding"].shape == (len(texts), 384)
    assert_same_rows(out["id"], out["embedding"], ref)
    check_columns(out, texts)


def test_pandas_udf_and_model_cache(spark, tiny_reference) -> None:
    """The pandas UDF gives the same vectors; each Python worker loaded the
    model once for all the tasks it ran."""
    model, texts, ref = tiny_reference
    df = frame(spark, texts).withColumn("embedding", embed_udf(str(model))("text"))
    out = collect(df)
    assert_same_rows(out["id"], out["embedding"], ref)
    check_columns(out, texts)

    def report(batches):
        import os

        import pandas as pd

        import ember.spark

        for _ in batches:
            info = ember.spark.model_cache_info()
            yield pd.DataFrame({"pid": [os.getpid()], "loads": [info.misses],
                                "reuses": [info.hits]})

    stats = spark.range(PARTITIONS, numPartitions=PARTITIONS).mapInPandas(
        report, "pid long, loads long, reuses long").toPandas()
    per_pid = stats.groupby("pid").max()
    assert (per_pid["loads"] <= 2).all(), per_pid  # this model, and MiniLM if it ran here
    assert per_pid["reuses"].sum() >= PARTITIONS - 2 * len(per_pid), per_pid


def test_exception_in_one_task_is_retried(spark, tiny_reference, tmp_path: Path) -> None:
    model, texts, ref = tiny_reference
    marker = tmp_path / "failed"
    df = embed_dataframe(frame(spark, texts), str(model),
                         fail_once=FailOnce(marker, nth=1, mode="raise"))
    out = collect(df)
    assert "mode=raise" in marker.read_text(), "the failure was not injected"
    assert_same_rows(out["id"], out["embedding"], ref)
    check_columns(out, texts)


def test_worker_crash_is_retried(spark, tiny_reference, tmp_path: Path) -> None:
    """A Python worker exits in the middle of a task (as an OOM kill would):
    Spark runs the task again in a new worker."""
    model, texts, ref = tiny_reference
    marker = tmp_path / "crashed"
    df = frame(spark, texts).withColumn(
        "embedding", embed_udf(str(model), fail_once=FailOnce(marker, nth=1, mode="exit"))("text"))
    out = collect(df)
    assert "mode=exit" in marker.read_text(), "the crash was not injected"
    assert_same_rows(out["id"], out["embedding"], ref)
    check_columns(out, texts)


def test_errors(spark, tiny_reference) -> None:
    model, _, _ = tiny_reference
    df = spark.createDataFrame([(0, "fine"), (1, None)], "id long, text string")
    with pytest.raises(ValueError, match="no column 'body'"):
        embed_dataframe(df, str(model), text_column="body")
    with pytest.raises(ValueError, match="already has a column 'id'"):
        embed_dataframe(df, str(model), output_column="id")
    with pytest.raises(ValueError, match="precision"):
        embed_udf(str(model), encode_kwargs={"precision": "ubinary"})
    # a null text fails every attempt of its task, with the column named
    with pytest.raises(Exception, match="column 'text': row 1 of this batch is null"):
        embed_dataframe(df.coalesce(1), str(model)).collect()
