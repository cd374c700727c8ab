"""Corpus embedding on Ray Data: `Embedder`, a callable class for
``Dataset.map_batches``, and `embed_dataset`, which applies it with settings
that retry failed batches.

>>> import ray, ember.ray
>>> ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)])
>>> out = ds.map_batches(ember.ray.Embedder, fn_constructor_kwargs={"model": "BAAI/bge-small-en-v1.5"},
...                      compute=ray.data.ActorPoolStrategy(size=2), batch_size=256,
...                      batch_format="numpy")
>>> out.take_batch(3)["embedding"].shape
(3, 384)

Each actor loads the model once, in its constructor, and embeds every batch
it is given; the other columns pass through unchanged, so ids stay with their
rows. Vectors are float32 and bit for bit those of ``ember embed`` (Ember's
result for a text does not depend on the batch it is in or the thread count).
See docs/deploy.md.

This module needs Ray (``pip install "ray[data]"``); ``import ember`` does not.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from ._distributed import FailOnce, InjectedFailure, embed, texts_of

try:
    import ray
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("ember.ray needs Ray: pip install \"ray[data]\"") from e

__all__ = ["Embedder", "embed_dataset", "FailOnce", "InjectedFailure"]


def _assigned_cpus() -> int:
    """CPUs Ray gave this actor (map_batches' num_cpus, default 1)."""
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    except Exception:  # noqa: BLE001 - outside a Ray worker
        cpus = 1
    return max(1, int(cpus))


class Embedder:
    """Callable class for ``ds.map_batches(Embedder, fn_constructor_kwargs={...})``.

    Args:
        model: hub id or local directory, as `ember.Model` (must be readable
            on every node: a shared path, or a hub id with the Hugging Face
            cache on each node).
        text_column: the column of texts (str; a null is a ValueError).
        output_column: the column added with the vectors.
        threads: compute threads of the model; None = the CPUs Ray assigned
            to the actor (``num_cpus`` of map_batches, default 1).
        model_kwargs: other `ember.Model` arguments (dtype, max_seq_length,
            truncate_dim, local_files_only, ...).
        encode_kwargs: `Model.encode` arguments (prompt_name, normalize_embeddings,
            truncate_dim, batch_size, ...); ``precision`` must stay float32.
        fail_once: a `FailOnce`, to test that the pipeline retries (never in
            production).

    A batch may be a dict of numpy arrays (``batch_format="numpy"``; the
    vectors come back as a 2-D float32 array, a fixed-shape tensor column), a
    pandas DataFrame (``"pandas"``; a tensor column) or a pyarrow Table
    (``"pyarrow"``; a ``fixed_size_list<float>[dim]`` column, as Parquet and
    vector stores like). Rows keep their order within the batch and every
    other column is kept.
    """

    def __init__(
        self,
        model: str = "BAAI/bge-small-en-v1.5",
        *,
        text_column: str = "text",
        output_column: str = "embedding",
        threads: Optional[int] = None,
        model_kwargs: Optional[Dict[str, Any]] = None,
        encode_kwargs: Optional[Dict[str, Any]] = None,
        fail_once: Optional[FailOnce] = None,
    ) -> None:
        import ember

        kw = dict(model_kwargs or {})
        if "threads" in kw:
            raise ValueError("give threads as Embedder(threads=...), not in model_kwargs")
        self.text_column = text_column
        self.output_column = output_column
        self.encode_kwargs = dict(encode_kwargs or {})
        if self.encode_kwargs.get("precision", "float32") != "float32":
            raise ValueError("Embedder writes float32 vectors: precision must be 'float32'")
        self.threads = threads if threads is not None else _assigned_cpus()
        self.model = ember.Model(model, threads=self.threads, **kw)
        self.dim = self.model.get_sentence_embedding_dimension()
        self.fail_once = fail_once
        self.batches = 0

    def _vectors(self, column: Any, rows: int) -> np.ndarray:
        self.batches += 1
        if self.fail_once is not None:
            self.fail_once.check(rows)
        texts = texts_of(column, self.text_column)
        vecs = embed(self.model, texts, self.encode_kwargs)
        return vecs

    def __call__(self, batch: Any) -> Any:
        col = self.text_column
        if isinstance(batch, dict):  # batch_format="numpy"
            if col not in batch:
                raise KeyError(f"no column {col!r} in the batch (columns: {sorted(batch)})")
            n = len(batch[col])
            out = dict(batch)
            out[self.output_column] = self._vectors(batch[col], n)
            return out
        mod = type(batch).__module__
        if mod.startswith("pandas"):  # batch_format="pandas"
            if col not in batch.columns:
                raise KeyError(f"no column {col!r} in the batch (columns: {list(batch.columns)})")
            vecs = self._vectors(batch[col], len(batch))
            out = batch.copy(deep=False)
            try:
                from ray.data.extensions import TensorArray

                out[self.output_column] = TensorArray(vecs)
            except ImportError:  # pragma: no cover - older Ray
                out[self.output_column] = list(vecs)
            return out
        if mod.startswith("pyarrow"):  # batch_format="pyarrow"
            import pyarrow as pa

            if col not in batch.column_names:
                raise KeyError(f"no column {col!r} in the batch (columns: {batch.column_names})")
            vecs = self._vectors(batch.column(col), batch.num_rows)
            arr = pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()),
                                                    vecs.shape[1])
            if self.output_column in batch.column_names:
                batch = batch.drop_columns([self.output_column])
            return batch.append_column(self.output_column, arr)
        raise TypeError(f"unsupported batch type {type(batch).__name__}: use batch_format "
                        f"'numpy', 'pandas' or 'pyarrow'")


def embed_dataset(
    ds: Any,
    model: str = "BAAI/bge-small-en-v1.5",
    *,
    text_column: str = "text",
    output_column: str = "embedding",
    concurrency: int = 1,
    num_cpus: float = 1,
    batch_size: int = 256,
    batch_format: str = "numpy",
    retries: int = 3,
    model_kwargs: Optional[Dict[str, Any]] = None,
    encode_kwargs: Optional[Dict[str, Any]] = None,
    fail_once: Optional[FailOnce] = None,
) -> Any:
    """``ds.map_batches(Embedder, ...)`` on a pool of `concurrency` actors of
    `num_cpus` CPUs each (the model's threads), with failed batches retried.

    Retries, two kinds:

    - an exception raised while a batch is embedded is retried in the same
      actor, up to `retries` times, by Ray Data's map retry
      (``retried_map_errors = True`` and ``max_map_retries = retries`` set
      here on the dataset's DataContext, ``ds.context``: a Dataset runs with
      the context copied when its source was created); a deterministic error
      (a null text) still fails the job after that;
    - an actor that dies (a crash, an out-of-memory kill) is restarted and
      its unfinished batches are sent again (Ray Data's defaults for actors:
      ``max_restarts=-1``, ``max_task_retries=-1``).

    A failed attempt's output is discarded, so no row is lost or duplicated
    (Ember is deterministic, so a retried batch gives the same bits).

    Returns the lazy Dataset: consume it (``write_parquet``, ``iter_batches``,
    ``materialize``...) to run it. Output order follows Ray's
    ``DataContext.execution_options.preserve_order`` (off by default: keep an
    id column; every row keeps all its columns).
    """
    import ray.data

    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, not {retries!r}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, not {concurrency!r}")
    out = ds.map_batches(
        Embedder,
        fn_constructor_kwargs={
            "model": model,
            "text_column": text_column,
            "output_column": output_column,
            "threads": max(1, int(num_cpus)),
            "model_kwargs": model_kwargs,
            "encode_kwargs": encode_kwargs,
            "fail_once": fail_once,
        },
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus,
        batch_size=batch_size,
        batch_format=batch_format,
    )
    if retries:
        # A Dataset runs with the DataContext copied when its source was
        # created (shared along the chain), not the current one.
        ctx = out.context
        ctx.retried_map_errors = True
        ctx.max_map_retries = max(int(ctx.max_map_retries), retries)
    return out
