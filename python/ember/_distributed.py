"""What ember.ray and ember.spark share: a per-process model cache, the text
column check, and `FailOnce`, the fault injection that proves retries.

Nothing here imports Ray or Spark.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any, Dict, Hashable, List, Sequence, Tuple

import numpy as np

from . import Model

__all__ = ["cached_model", "model_cache_info", "texts_of", "FailOnce", "InjectedFailure"]

_lock = threading.Lock()


def _freeze(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


@functools.lru_cache(maxsize=8)
def _load(name: str, frozen_kwargs: Tuple[Tuple[str, Hashable], ...]) -> Model:
    return Model(name, **dict(frozen_kwargs))


def cached_model(name: str, **model_kwargs: Any) -> Model:
    """The `ember.Model(name, **model_kwargs)` of this process, loaded on first use.

    The cache is keyed by the model name or path and every keyword argument,
    so one executor process that runs many tasks loads each model once
    (at most 8 different ones are kept). Thread-safe: a `Model` may be shared
    by threads.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"model must be a hub id or a directory, not {type(name).__name__}")
    frozen = _freeze(model_kwargs)
    with _lock:  # two threads asking at once load once
        return _load(os.fspath(name), frozen)  # type: ignore[arg-type]


def model_cache_info() -> Any:
    """``functools.lru_cache`` statistics of `cached_model` in this process:
    ``misses`` is the number of models loaded, ``hits`` the reuses."""
    return _load.cache_info()


def texts_of(column: Any, name: str) -> List[str]:
    """The texts of one batch column (numpy array, pandas Series, pyarrow
    array or list) as a list of str; a null or non-string value is a
    ValueError naming the column and the first bad row of the batch."""
    if hasattr(column, "to_pylist"):  # pyarrow Array / ChunkedArray
        values = column.to_pylist()
    elif hasattr(column, "tolist"):  # numpy, pandas
        values = column.tolist()
    else:
        values = list(column)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            what = "null" if v is None or (isinstance(v, float) and v != v) else type(v).__name__
            raise ValueError(f"column {name!r}: row {i} of this batch is {what}, not a string "
                             f"(filter or fill nulls before embedding)")
    return values


def embed(model: Model, texts: Sequence[str], encode_kwargs: Dict[str, Any]) -> np.ndarray:
    """`model.encode(texts)` as a C-contiguous float32 ``(n, dim)`` array."""
    out = model.encode(list(texts), **encode_kwargs)
    return np.ascontiguousarray(out, dtype=np.float32)


class InjectedFailure(RuntimeError):
    """Raised by `FailOnce` (mode "raise")."""


class FailOnce:
    """Fault injection for testing retries: makes one batch fail, once.

    Each copy of the object counts the batches it sees (a Ray actor has one
    copy; Spark unpickles one per task): its `nth` batch (1-based) fails, but
    only if the marker file can still be created (``O_CREAT | O_EXCL``). The
    first copy to get there creates it and fails; every other batch,
    including the retry of the failed one, runs normally. The marker records the process id,
    the batch number and the time, so a test can check that the failure
    happened. With several machines, give a path on a shared filesystem (or
    accept one failure per machine).

    Args:
        marker: path of the marker file (its directory must exist).
        nth: which batch of a process fails (1 = the first).
        mode: ``"raise"`` raises `InjectedFailure` (an application error:
            retried by Ray with ``actor_task_retry_on_errors``, by Spark as a
            failed task); ``"exit"`` ends the worker process at once with
            ``os._exit(17)``, as a crash or an out-of-memory kill would.
    """

    def __init__(self, marker: "str | os.PathLike[str]", nth: int = 1, mode: str = "raise") -> None:
        if mode not in ("raise", "exit"):
            raise ValueError(f"mode must be 'raise' or 'exit', not {mode!r}")
        if isinstance(nth, bool) or not isinstance(nth, int) or nth < 1:
            raise ValueError(f"nth must be an int >= 1, not {nth!r}")
        self.marker = os.fspath(marker)
        self.nth = nth
        self.mode = mode
        self.seen = 0

    def __repr__(self) -> str:
        return f"FailOnce({self.marker!r}, nth={self.nth}, mode={self.mode!r})"

    def check(self, rows: int) -> None:
        """Called by the helpers before they embed a batch of `rows` rows."""
        self.seen += 1
        batch_no = self.seen
        if batch_no != self.nth:
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as f:
            f.write(f"pid={os.getpid()} batch={batch_no} rows={rows} mode={self.mode} "
                    f"time={time.time():.3f}\n")
        if self.mode == "exit":
            os._exit(17)
        raise InjectedFailure(f"injected failure of batch {batch_no} ({rows} rows) in process "
                              f"{os.getpid()} (marker {self.marker})")
