"""Ember: sentence embeddings from a C17 library, with sentence-transformers' API.

>>> import ember
>>> model = ember.Model("sentence-transformers/all-MiniLM-L6-v2")
>>> emb = model.encode(["A man is eating food.", "A man is riding a horse."])
>>> emb.shape
(2, 384)
>>> model.similarity(emb, emb).shape
(2, 2)

`Model` loads a local model directory or a Hugging Face hub id (through the
Hugging Face cache, as the ``ember`` command does) and embeds text with
libember, linked into the extension module ``ember._ember``. One `Model` may
be shared by any number of Python threads: each concurrent call borrows its
own execution context, and the GIL is released while Ember works.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _ember

__all__ = [
    "Model",
    "CrossEncoder",
    "SentenceTransformer",
    "cos_sim",
    "version",
    "cpu_features",
    "__version__",
]

__version__ = "0.1.0"

_DTYPES: Dict[str, int] = {
    "auto": 0,
    "f32": 1,
    "fp32": 1,
    "float32": 1,
    "bf16": 2,
    "bfloat16": 2,
    "int8": 3,
    "qint8": 3,
}

_PRECISIONS = ("float32", "binary", "ubinary")

# Hub loads that set HF_HUB_CACHE for one call hold this lock, so two threads
# loading with different cache folders do not see each other's setting.
_env_lock = threading.Lock()


def version() -> str:
    """Version of the C library, e.g. ``"0.1.0"``."""
    return _ember.version()


def cpu_features() -> str:
    """CPU features Ember detected and uses, e.g. ``"avx2 fma f16c"``."""
    return _ember.cpu_features()


def _as_2d(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 1-D or 2-D array of embeddings, got {a.ndim}-D")
    return a


def cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of every row of `a` with every row of `b`.

    Accepts 1-D vectors or 2-D ``(n, dim)`` arrays (or lists of them) and
    returns a float32 ``(n, m)`` array, as ``sentence_transformers.util.cos_sim``
    (which returns a torch tensor) does.
    """
    a2 = _as_2d(a, "a")
    b2 = _as_2d(b, "b")
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(f"dimension mismatch: {a2.shape[1]} vs {b2.shape[1]}")
    na = np.linalg.norm(a2, axis=1, keepdims=True)
    nb = np.linalg.norm(b2, axis=1, keepdims=True)
    a2 = a2 / np.where(na == 0, 1, na)
    b2 = b2 / np.where(nb == 0, 1, nb)
    return (a2 @ b2.T).astype(np.float32, copy=False)


def _check_int(value: Any, name: str, *, minimum: int, allow_none: bool = True) -> Optional[int]:
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} must be an int, not None")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = int(value)
    if v < minimum or v > 2**31 - 1:
        raise ValueError(f"{name} must be in [{minimum}, {2**31 - 1}], got {v}")
    return v


class _Progress:
    """A tqdm bar when tqdm is installed, else nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-not-found]
            except ImportError:
                return
            self._bar = tqdm(total=total, desc="Batches", unit="sentence")

    @property
    def callback(self) -> Optional[Callable[[int], None]]:
        return self._bar.update if self._bar is not None else None

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class Model:
    """A sentence-embedding model run by libember.

    Args:
        name_or_path: a local model directory (config.json, model.safetensors,
            tokenizer.json, optional sentence-transformers files) or a Hugging
            Face hub id ``"org/name"`` (optionally ``"org/name@revision"``),
            resolved through the Hugging Face cache and downloaded if missing
            (unless ``HF_HUB_OFFLINE=1``). ``model_name_or_path`` is accepted
            as sentence-transformers spells it.
        device: ``"cpu"`` (or ``None``/``"auto"`` for the best driver available).
        dtype: precision of the matrix weights: ``"f32"`` (reference),
            ``"bf16"`` or ``"int8"`` (faster, approximate), or ``"auto"``.
        threads: worker threads per concurrent call; ``None`` = all CPUs.
        cache_folder: Hugging Face hub cache to use for this load (sets
            ``HF_HUB_CACHE`` while loading).
        revision: hub revision (branch, tag or commit) when the id has none.
        truncate_dim: keep only the first `truncate_dim` dimensions of every
            embedding (Matryoshka), as sentence-transformers' argument.
        max_seq_length: longest input in tokens; ``None`` = the model's own.
        local_files_only: never download (as ``HF_HUB_OFFLINE=1``).

    Raises:
        FileNotFoundError: no such directory, hub model, revision or file.
        ValueError: bad arguments.
        RuntimeError: any other failure, with Ember's message.
    """

    def __init__(
        self,
        name_or_path: Optional[str] = "BAAI/bge-small-en-v1.5",
        device: Optional[str] = "cpu",
        dtype: str = "f32",
        threads: Optional[int] = None,
        cache_folder: Optional[Union[str, os.PathLike]] = None,
        revision: Optional[str] = None,
        *,
        truncate_dim: Optional[int] = None,
        max_seq_length: Optional[int] = None,
        local_files_only: bool = False,
        model_name_or_path: Optional[str] = None,
    ) -> None:
        if model_name_or_path is not None:
            name_or_path = model_name_or_path
        if name_or_path is None:
            raise ValueError("name_or_path must be a model directory or a hub id, not None")
        if isinstance(name_or_path, os.PathLike):
            name_or_path = os.fspath(name_or_path)
        if not isinstance(name_or_path, str):
            raise TypeError(f"name_or_path must be str, not {type(name_or_path).__name__}")
        if "\0" in name_or_path:
            raise ValueError("name_or_path contains a NUL character")
        if device is not None and not isinstance(device, str):
            raise TypeError(f"device must be str or None, not {type(device).__name__}")
        if device is not None and device.lower() in ("auto", ""):
            device = None
        if not isinstance(dtype, str) or dtype.lower() not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(set(_DTYPES))}, got {dtype!r}")
        n_threads = _check_int(threads, "threads", minimum=0) or 0
        if n_threads > 1024:
            raise ValueError("threads must be at most 1024")
        msl = _check_int(max_seq_length, "max_seq_length", minimum=1) or 0
        self._truncate_dim = _check_int(truncate_dim, "truncate_dim", minimum=1)
        if revision is not None and not isinstance(revision, str):
            raise TypeError("revision must be str or None")
        args = (name_or_path, device, _DTYPES[dtype.lower()], n_threads, msl, revision,
                not local_files_only)
        if cache_folder is not None:
            with _env_lock:
                old = os.environ.get("HF_HUB_CACHE")
                os.environ["HF_HUB_CACHE"] = os.fspath(cache_folder)
                try:
                    self._m = _ember.Model(*args)
                finally:
                    if old is None:
                        del os.environ["HF_HUB_CACHE"]
                    else:
                        os.environ["HF_HUB_CACHE"] = old
        else:
            self._m = _ember.Model(*args)
        self._dtype = dtype.lower()
        self._prompts: Dict[str, str] = self._m.prompts()
        self.default_prompt_name: Optional[str] = self._m.default_prompt_name()
        self.similarity_fn_name = "cosine"

    # ---- properties --------------------------------------------------------

    @property
    def max_seq_length(self) -> int:
        """Longest input in tokens (special tokens included); longer texts are cut."""
        return int(self._m.max_tokens)

    @property
    def prompts(self) -> Dict[str, str]:
        """Prompts of config_sentence_transformers.json, name -> text (a copy)."""
        return dict(self._prompts)

    @property
    def truncate_dim(self) -> Optional[int]:
        """Matryoshka dimension set at construction, or None."""
        return self._truncate_dim

    @property
    def info(self) -> Dict[str, Any]:
        """What Ember loaded: architecture, sizes, pooling, dtypes, kernels, ..."""
        return self._m.info()

    @property
    def device(self) -> str:
        """The driver the model runs on, e.g. ``"cpu"``."""
        return str(self._m.info()["driver"])

    def get_sentence_embedding_dimension(self) -> int:
        """Dimension of the embeddings `encode` returns (truncate_dim if set)."""
        dim = int(self._m.dim)
        return min(dim, self._truncate_dim) if self._truncate_dim else dim

    def get_max_seq_length(self) -> int:
        """Same as `max_seq_length`."""
        return self.max_seq_length

    def __repr__(self) -> str:
        i = self._m.info()
        return (f"ember.Model({i['source']!r}, architecture={i['architecture']!r}, "
                f"dim={i['dim']}, pooling={i['pooling']!r}, normalize={i['normalize']}, "
                f"dtype={self._dtype!r})")

    # ---- encoding ----------------------------------------------------------

    def _resolve_prompt(self, prompt_name: Optional[str], prompt: Optional[str]) -> Optional[str]:
        if prompt is not None:
            if not isinstance(prompt, str):
                raise TypeError(f"prompt must be str or None, not {type(prompt).__name__}")
            return prompt
        if prompt_name is None:
            prompt_name = self.default_prompt_name
            if prompt_name is None:
                return None
        if not isinstance(prompt_name, str):
            raise TypeError(f"prompt_name must be str or None, not {type(prompt_name).__name__}")
        if prompt_name not in self._prompts:
            raise ValueError(f"prompt_name {prompt_name!r} not found in the model's prompts "
                             f"{sorted(self._prompts)}")
        return self._prompts[prompt_name]

    @staticmethod
    def _prompt_bytes_ok(prompt: Optional[str]) -> Optional[str]:
        if prompt is not None and "\0" in prompt:
            raise ValueError("prompt contains a NUL character")
        if prompt is not None:
            try:
                prompt.encode("utf-8")
            except UnicodeEncodeError:
                prompt = prompt.encode("utf-8", "replace").decode("utf-8")
        return prompt

    def encode(
        self,
        sentences: Union[str, Sequence[str]],
        batch_size: int = 32,
        normalize_embeddings: Optional[bool] = None,
        prompt_name: Optional[str] = None,
        prompt: Optional[str] = None,
        truncate_dim: Optional[int] = None,
        convert_to_numpy: bool = True,
        show_progress_bar: Optional[bool] = None,
        precision: str = "float32",
        convert_to_tensor: bool = False,
        output_value: Optional[str] = "sentence_embedding",
        **kwargs: Any,
    ) -> Union[np.ndarray, List[np.ndarray]]:
        """Embeds one sentence or a list of sentences.

        Args:
            sentences: a str (-> 1-D array of `dim` floats) or a sequence of
                str (-> 2-D ``(n, dim)`` array in input order; an empty list
                gives ``(0, dim)``). Lone surrogates are replaced by U+FFFD.
            batch_size: sentences per library call (and per progress step).
            normalize_embeddings: True L2-normalizes the output. None or False
                leave it to the model: a model whose modules.json has a
                Normalize module is always normalized, as in sentence-transformers.
            prompt_name: name of one of `prompts`, prepended to every sentence;
                defaults to the model's default_prompt_name.
            prompt: prompt text to prepend; overrides prompt_name.
            truncate_dim: keep the first `truncate_dim` dimensions (Matryoshka),
                as sentence-transformers: the vectors are cut after the model's
                own normalization and renormalized only when
                normalize_embeddings is True.
            convert_to_numpy: True returns one array; False a list of 1-D rows.
            show_progress_bar: show a tqdm bar (if tqdm is installed).
            precision: ``"float32"``, or ``"binary"``/``"ubinary"`` (sign bits
                packed as in sentence-transformers' quantize_embeddings).
            convert_to_tensor: accepted for compatibility; returns numpy.
            output_value: only ``"sentence_embedding"`` (or None) is supported.

        Returns:
            numpy float32 array (int8/uint8 for binary precisions).

        Raises:
            TypeError: `sentences` is not a str or a sequence of str.
            ValueError: bad option values, unknown prompt name, unsupported precision.
            RuntimeError: Ember failed (message included).
        """
        if kwargs:
            raise TypeError(f"encode() got unexpected keyword arguments {sorted(kwargs)}")
        if output_value not in ("sentence_embedding", None):
            raise ValueError("output_value: only 'sentence_embedding' is supported")
        if not isinstance(precision, str) or precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {list(_PRECISIONS)}, got {precision!r} "
                             "(int8/uint8 need calibration and are not supported; use "
                             "sentence_transformers.quantization on float32 output)")
        bs = _check_int(batch_size, "batch_size", minimum=1, allow_none=False)
        tdim = _check_int(truncate_dim, "truncate_dim", minimum=1)
        if tdim is None:
            tdim = self._truncate_dim
        if normalize_embeddings is not None and not isinstance(normalize_embeddings,
                                                               (bool, np.bool_)):
            raise TypeError("normalize_embeddings must be bool or None")
        single = isinstance(sentences, str)
        if single:
            texts: Sequence[str] = [sentences]  # type: ignore[list-item]
        elif sentences is None:
            raise TypeError("sentences must be a str or a sequence of str, not None")
        elif isinstance(sentences, (bytes, bytearray, Mapping)):
            raise TypeError(f"sentences must be a str or a sequence of str, "
                            f"not {type(sentences).__name__}")
        elif isinstance(sentences, (list, tuple)):
            texts = sentences  # the extension snapshots it into a tuple
        else:
            try:
                texts = list(sentences)  # numpy arrays of str, generators, ...
            except TypeError:
                raise TypeError(f"sentences must be a str or a sequence of str, "
                                f"not {type(sentences).__name__}") from None
        text = self._prompt_bytes_ok(self._resolve_prompt(prompt_name, prompt))

        full = int(self._m.dim)
        if tdim is not None and tdim >= full:
            tdim = None
        norm_req = bool(normalize_embeddings)
        model_norm = bool(self._m.normalize)
        # sentence-transformers: model modules (Normalize included) -> cut -> optional L2
        if tdim is None:
            normalize, dims, cut_after = (1 if norm_req else -1), 0, None
        elif norm_req:
            normalize, dims, cut_after = 1, tdim, None
        elif model_norm:
            normalize, dims, cut_after = -1, 0, tdim  # normalized full vector, then cut
        else:
            normalize, dims, cut_after = 0, tdim, None

        n = len(texts) if not single else 1
        out_dim = dims or full
        out = np.empty((n, out_dim), dtype=np.float32)
        show = bool(show_progress_bar) and n > 0
        bar = _Progress(n, show)
        try:
            self._m.embed_texts(texts, out, normalize, dims, text, True, 0, bs, bar.callback)
        finally:
            bar.close()
        if cut_after is not None:
            out = np.ascontiguousarray(out[:, :cut_after])
        if precision != "float32":
            bits = np.packbits(out > 0, axis=-1)
            out = (bits.astype(np.int16) - 128).astype(np.int8) if precision == "binary" else bits
        if single:
            return out[0]
        if not convert_to_numpy and not convert_to_tensor:
            return list(out)
        return out

    def encode_query(self, sentences: Union[str, Sequence[str]], **kwargs: Any) -> Any:
        """`encode` with the model's "query" prompt when it has one."""
        if "prompt" not in kwargs and "prompt_name" not in kwargs and "query" in self._prompts:
            kwargs["prompt_name"] = "query"
        return self.encode(sentences, **kwargs)

    def encode_document(self, sentences: Union[str, Sequence[str]], **kwargs: Any) -> Any:
        """`encode` with the model's "document" (or "passage") prompt when it has one."""
        if "prompt" not in kwargs and "prompt_name" not in kwargs:
            for name in ("document", "passage"):
                if name in self._prompts:
                    kwargs["prompt_name"] = name
                    break
        return self.encode(sentences, **kwargs)

    def encode_tokens(
        self,
        input_ids: Sequence[Sequence[int]],
        normalize_embeddings: Optional[bool] = None,
        truncate_dim: Optional[int] = None,
    ) -> np.ndarray:
        """Embeds token-id sequences used exactly as given (special tokens included).

        Returns an ``(n, dim)`` float32 array. An id outside the vocabulary, an
        empty sequence or one longer than `max_seq_length` raises ValueError.
        """
        tdim = _check_int(truncate_dim, "truncate_dim", minimum=1)
        full = int(self._m.dim)
        dims = tdim if tdim is not None and tdim < full else 0
        normalize = 1 if normalize_embeddings else -1
        if isinstance(input_ids, np.ndarray):
            input_ids = input_ids.tolist()
        if isinstance(input_ids, (str, bytes)) or input_ids is None:
            raise TypeError("input_ids must be a sequence of sequences of int")
        n = len(input_ids)
        out = np.empty((n, dims or full), dtype=np.float32)
        self._m.embed_tokens(input_ids, out, normalize, dims)
        return out

    def tokenize(
        self,
        texts: Union[str, Sequence[str]],
        prompt: Optional[str] = None,
        truncate: bool = True,
    ) -> Dict[str, List[List[int]]]:
        """Tokenizes as `encode` does (lowercasing, prompt, special tokens, cut).

        Returns ``{"input_ids": [[...], ...], "attention_mask": [[1, ...], ...]}``
        with one unpadded list per text.
        """
        if isinstance(texts, str):
            texts = [texts]
        if texts is None:
            raise TypeError("texts must be a str or a sequence of str")
        prompt = self._prompt_bytes_ok(prompt)
        ids = self._m.tokenize(texts, prompt, bool(truncate))
        return {"input_ids": ids, "attention_mask": [[1] * len(r) for r in ids]}

    def id_to_token(self, token_id: int) -> Optional[str]:
        """Token string of a vocabulary id, or None."""
        return self._m.id_to_token(int(token_id))

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Cosine similarity matrix ``(n, m)``, as sentence-transformers' default."""
        return cos_sim(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Cosine similarity of row i of each input with row i of the other: ``(n,)``."""
        a = _as_2d(embeddings1, "embeddings1")
        b = _as_2d(embeddings2, "embeddings2")
        if a.shape != b.shape:
            raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
        na = np.linalg.norm(a, axis=1)
        nb = np.linalg.norm(b, axis=1)
        den = np.where(na * nb == 0, 1, na * nb)
        return (np.einsum("ij,ij->i", a, b) / den).astype(np.float32)


#: sentence-transformers' class name, for drop-in use: ``from ember import SentenceTransformer``.
SentenceTransformer = Model


class CrossEncoder:
    """A cross-encoder (reranker) run by libember, with sentence-transformers'
    ``CrossEncoder`` names and semantics for ``predict`` and ``rank``.

    Args:
        name_or_path: a model directory or hub id whose config.json names a
            ``*ForSequenceClassification`` head (BERT, XLM-R, CamemBERT, and
            the decoders Qwen3, Qwen2, Mistral, Llama: Qwen3-Reranker's
            ``*-seq-cls`` conversions).
        device, dtype, threads, cache_folder, revision, local_files_only:
            as :class:`Model`.
        max_length: longest pair in tokens; ``None`` = the model's own.

    Raises:
        ValueError: the model has no classification head, or bad arguments.
        FileNotFoundError, RuntimeError: as :class:`Model`.
    """

    def __init__(
        self,
        name_or_path: Optional[str] = None,
        device: Optional[str] = "cpu",
        dtype: str = "f32",
        threads: Optional[int] = None,
        cache_folder: Optional[Union[str, os.PathLike]] = None,
        revision: Optional[str] = None,
        *,
        max_length: Optional[int] = None,
        local_files_only: bool = False,
        model_name_or_path: Optional[str] = None,
    ) -> None:
        self._model = Model(name_or_path, device, dtype, threads, cache_folder, revision,
                            max_seq_length=max_length, local_files_only=local_files_only,
                            model_name_or_path=model_name_or_path)
        self._m = self._model._m
        self.num_labels: int = self._m.num_labels
        if self.num_labels <= 0:
            raise ValueError("not a cross-encoder: config.json architectures names no supported "
                             "*ForSequenceClassification head")

    @property
    def max_length(self) -> int:
        """Longest pair in tokens (pairs are cut longest-first to it)."""
        return self._m.max_tokens

    def __repr__(self) -> str:
        return f"CrossEncoder(num_labels={self.num_labels}, max_length={self.max_length})"

    def predict(
        self,
        sentences: Union[Sequence[str], Sequence[Sequence[str]]],
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> Any:
        """Scores (query, text) pairs: ``(n,)`` for one label, ``(n, num_labels)``
        otherwise; one pair in, one score (or row) out.

        As sentence-transformers: one label gets a sigmoid unless
        `activation_fn` is given, more labels give their logits;
        `activation_fn` is a callable applied to the raw logits (a numpy
        array), `apply_softmax` a softmax over the labels. Pairs sharing a
        query are scored together; the order of the input is kept.
        """
        _check_int(batch_size, "batch_size", minimum=1, allow_none=False)
        if convert_to_tensor:
            raise ValueError("convert_to_tensor is not supported: Ember returns numpy arrays")
        single = (isinstance(sentences, (list, tuple)) and len(sentences) == 2 and
                  all(isinstance(x, str) for x in sentences))
        pairs = [sentences] if single else list(sentences)
        for i, p in enumerate(pairs):
            if not (isinstance(p, (list, tuple)) and len(p) == 2 and
                    isinstance(p[0], str) and isinstance(p[1], str)):
                raise TypeError(f"sentences[{i}] must be a (query, text) pair of str")
        raw = activation_fn is not None or apply_softmax
        out = np.empty((len(pairs), self.num_labels), dtype=np.float32)
        by_query: Dict[str, List[int]] = {}
        for i, (q, _) in enumerate(pairs):
            by_query.setdefault(q, []).append(i)
        for q, idx in by_query.items():
            for s in range(0, len(idx), batch_size):
                part = idx[s:s + batch_size]
                buf = np.empty((len(part), self.num_labels), dtype=np.float32)
                self._m.rerank(q, [pairs[i][1] for i in part], buf, raw_scores=raw)
                out[part] = buf
        if apply_softmax and self.num_labels > 1:
            e = np.exp(out - out.max(axis=1, keepdims=True))
            out = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        if activation_fn is not None:
            out = np.asarray(activation_fn(out), dtype=np.float32)
        scores = out[:, 0] if self.num_labels == 1 else out
        if not convert_to_numpy:
            scores = list(scores)
        return scores[0] if single else scores

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: Optional[int] = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        apply_softmax: bool = False,
    ) -> List[Dict[str, Any]]:
        """The documents best first, as sentence-transformers:
        ``[{"corpus_id", "score", "text"?}]``, at most `top_k` of them."""
        if self.num_labels != 1:
            raise ValueError("rank needs a cross-encoder with one label")
        if not isinstance(query, str):
            raise TypeError("query must be str")
        docs = list(documents)
        scores = self.predict([(query, d) for d in docs], batch_size=batch_size,
                              activation_fn=activation_fn, apply_softmax=apply_softmax)
        order = sorted(range(len(docs)), key=lambda i: -float(scores[i]))
        k = _check_int(top_k, "top_k", minimum=1)
        rows = []
        for i in order[:k] if k else order:
            r: Dict[str, Any] = {"corpus_id": i, "score": float(scores[i])}
            if return_documents:
                r["text"] = docs[i]
            rows.append(r)
        return rows
