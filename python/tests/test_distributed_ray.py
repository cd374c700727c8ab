"""ember.ray on a local Ray cluster (2 CPUs): the vectors equal `ember embed`'s
bit for bit, every row comes out exactly once with its other columns, and a
batch that fails (an exception, or the actor process dying) is retried
without losing or duplicating rows. docs/deploy.md describes the recipe."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_same_rows

pytestmark = pytest.mark.distributed

ray = pytest.importorskip("ray", reason="Ray not installed (scripts/setup.sh installs it)")
import ray.data  # noqa: E402

import ember.ray  # noqa: E402
from ember.ray import Embedder, FailOnce, embed_dataset  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster():
    # everything on loopback: the tests reach no other address
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=300 * 1024 * 1024, _node_ip_address="127.0.0.1")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def fresh_data_context():
    """Each test starts from Ray Data's defaults for the settings it touches."""
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.retried_map_errors, ctx.max_map_retries, ctx.execution_options.preserve_order)
    ctx.retried_map_errors, ctx.max_map_retries = False, 0
    ctx.execution_options.preserve_order = False
    yield ctx
    ctx.retried_map_errors, ctx.max_map_retries, ctx.execution_options.preserve_order = saved


def dataset(texts: list[str], blocks: int = 16):
    rows = [{"id": i, "text": t, "meta": f"row-{i}"} for i, t in enumerate(texts)]
    return ray.data.from_items(rows, override_num_blocks=blocks)


def collect(ds, fmt: str = "numpy") -> dict:
    """Every output row, as numpy columns (ids, texts, metas, vectors)."""
    ids, texts, metas, vecs = [], [], [], []
    for b in ds.iter_batches(batch_size=None, batch_format=fmt):
        if fmt == "pyarrow":
            col = b.column("embedding")
            assert str(col.type).startswith("fixed_size_list<item: float>")
            dim = col.type.list_size
            vecs.append(np.asarray(col.combine_chunks().flatten(), np.float32).reshape(-1, dim))
            b = {k: np.asarray(b.column(k).to_pylist(), dtype=object) for k in ("id", "text", "meta")}
        elif fmt == "pandas":
            vecs.append(np.stack(b["embedding"].to_numpy()))
            b = {k: b[k].to_numpy() for k in ("id", "text", "meta")}
        else:
            vecs.append(b["embedding"])
        ids.append(b["id"].astype(np.int64))
        texts.append(b["text"])
        metas.append(b["meta"])
    return {"id": np.concatenate(ids), "text": np.concatenate(texts),
            "meta": np.concatenate(metas), "embedding": np.concatenate(vecs)}


def check_columns(out: dict, texts: list[str]) -> None:
    ids = out["id"]
    assert list(out["text"]) == [texts[i] for i in ids]
    assert list(out["meta"]) == [f"row-{i}" for i in ids]


def test_real_model_equals_cli(real_reference) -> None:
    """all-MiniLM-L6-v2 on 2,048 rows, 2 actors x 1 thread, batches of 100."""
    model, texts, ref = real_reference
    out = collect(embed_dataset(dataset(texts), str(model), concurrency=2, batch_size=100))
    assert_same_rows(out["id"], out["embedding"], ref)
    check_columns(out, texts)
    assert out["embedding"].shape[1] == 384


@pytest.mark.parametrize("fmt", ["numpy", "pandas", "pyarrow"])
def test_batch_formats_keep_order(tiny_reference, fresh_data_context, fmt: str) -> None:
    """Plain map_batches(Embedder, ...) in each batch format, with Ray's
    preserve_order: the rows come out in input order."""
    model, texts, ref = tiny_reference
    fresh_data_context.execution_options.preserve_order = True
    ds = dataset(texts).map_batches(
        Embedder, fn_constructor_kwargs={"model": str(model), "threads": 1},
        compute=ray.data.ActorPoolStrategy(size=2), batch_size=128, batch_format=fmt)
    out = collect(ds, fmt)
    assert list(out["id"]) == list(range(len(texts)))
    assert_same_rows(out["id"], out["embedding"], ref)
    check_columns(out, texts)


def test_exception_in_one_batch_is_retried(tiny_reference, tmp_path: Path) -> None:
    model, texts, ref = tiny_reference
    marker = tmp_path / "failed"
    ds = embed_dataset(dataset(texts), str(model), concurrency=2, batch_size=128,
                       fail_once=FailOnce(marker, nth=3, mode="raise"))
    out = collect(ds)
    assert marker.read_text().startswith("pid="), "the failure was not injected"
    assert "mode=raise" in marker.read_text()
    assert_same_rows(out["id"], out["embedding"], ref)
    check_columns(out, texts)


def test_exception_without_retries_fails_the_job(tiny_reference, tmp_path: Path) -> None:
    """The same injected failure with retries=0 ends the job: the retry is
    what saves the run above."""
    model, texts, _ = tiny_reference
    marker = tmp_path / "failed"
    ds = embed_dataset(dataset(texts[:600], blocks=4), str(model), concurrency=1, batch_size=128,
                       retries=0, fail_once=FailOnce(marker, nth=2, mode="raise"))
    with pytest.raises(Exception, match="injected failure of batch 2"):
        collect(ds)
    assert marker.exists()


def test_actor_crash_is_retried(tiny_reference, tmp_path: Path) -> None:
    """One actor process exits in the middle of a batch (as an OOM kill would):
    Ray restarts it and runs its batches again."""
    model, texts, ref = tiny_reference
    marker = tmp_path / "crashed"
    ds = embed_dataset(dataset(texts), str(model), concurrency=2, batch_size=128,
                       fail_once=FailOnce(marker, nth=2, mode="exit"))
    out = collect(ds)
    assert "mode=exit" in marker.read_text(), "the crash was not injected"
    assert_same_rows(out["id"], out["embedding"], ref)
    check_columns(out, texts)


def test_null_text_is_a_clear_error(tiny_reference) -> None:
    model, _, _ = tiny_reference
    ds = ray.data.from_items([{"id": 0, "text": "fine"}, {"id": 1, "text": None}])
    with pytest.raises(Exception, match="column 'text': row 1 of this batch is null"):
        embed_dataset(ds, str(model), retries=0).materialize()


def test_embedder_direct_call_and_errors(tiny_reference) -> None:
    """The class itself, outside Ray: shapes, columns, bad input."""
    model, texts, ref = tiny_reference
    e = Embedder(str(model), threads=1, output_column="vec")
    out = e({"id": np.arange(5), "text": np.array(texts[:5], dtype=object)})
    assert out["vec"].dtype == np.float32 and out["vec"].shape == (5, 32)
    assert np.array_equal(out["vec"].view(np.uint32), ref[:5].view(np.uint32))
    assert list(out["id"]) == [0, 1, 2, 3, 4]
    with pytest.raises(KeyError, match="no column 'text'"):
        e({"body": np.array(["x"], dtype=object)})
    with pytest.raises(TypeError, match="unsupported batch type"):
        e(["x"])
    with pytest.raises(ValueError, match="precision"):
        Embedder(str(model), encode_kwargs={"precision": "binary"})
    with pytest.raises(ValueError, match="retries"):
        embed_dataset(None, str(model), retries=-1)


def test_import_ember_does_not_import_ray_or_spark() -> None:
    import subprocess
    import sys

    code = ("import sys, ember; "
            "bad = [m for m in ('ray', 'pyspark', 'pandas', 'pyarrow') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
    assert ember.ray.__name__ == "ember.ray"
