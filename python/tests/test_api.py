"""Every option of ember.Model, bad inputs, threads and memory, on small models."""
from __future__ import annotations

import gc
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import ember
from conftest import GOLDENS, cosine_rows

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar.",
    "Ember turns text into sentence embeddings.",
    "",
    "한국어는 한글로 씁니다.",
    "def f(x):\n    return x * 2",
    "word " * 700,  # longer than max_seq_length: truncated
]


@pytest.fixture(scope="module")
def mb() -> ember.Model:
    """Random-weight ModernBERT with the real ModernBERT tokenizer and prompts."""
    return ember.Model(str(GOLDENS / "e2e-modernbert"), threads=1)


# ---- shapes and basic semantics --------------------------------------------


def test_shapes(tiny: ember.Model) -> None:
    dim = tiny.get_sentence_embedding_dimension()
    assert dim == 32
    one = tiny.encode("hello")
    assert one.shape == (dim,) and one.dtype == np.float32
    many = tiny.encode(TEXTS)
    assert many.shape == (len(TEXTS), dim) and many.dtype == np.float32
    assert many.flags["C_CONTIGUOUS"]
    assert tiny.encode([]).shape == (0, dim)
    assert tiny.encode(()).shape == (0, dim)
    np.testing.assert_array_equal(tiny.encode(np.array(TEXTS[:3])), many[:3])
    np.testing.assert_array_equal(tiny.encode(t for t in TEXTS[:3]), many[:3])
    np.testing.assert_array_equal(tiny.encode(TEXTS[0]), many[0])
    # input order, any iterable sequence
    np.testing.assert_array_equal(tiny.encode(tuple(reversed(TEXTS))), many[::-1])


def test_batch_size_does_not_change_results(tiny: ember.Model) -> None:
    ref = tiny.encode(TEXTS, batch_size=32)
    for bs in (1, 2, 3, 100):
        got = tiny.encode(TEXTS, batch_size=bs)
        assert np.abs(got - ref).max() <= 1e-5


def test_normalize(tiny: ember.Model, mb: ember.Model) -> None:
    # both models have a Normalize module: None/False/True are all unit length
    for m in (tiny, mb):
        for flag in (None, False, True):
            e = m.encode(TEXTS[:3], normalize_embeddings=flag)
            np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert tiny._m.normalize is True


def test_truncate_dim_matches_sentence_transformers(tiny: ember.Model) -> None:
    full = tiny.encode(TEXTS[:3])
    cut = tiny.encode(TEXTS[:3], truncate_dim=8)
    assert cut.shape == (3, 8)
    # sentence-transformers: Normalize module first, then cut, not renormalized
    np.testing.assert_allclose(cut, full[:, :8], atol=1e-6)
    cutn = tiny.encode(TEXTS[:3], truncate_dim=8, normalize_embeddings=True)
    ref = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
    np.testing.assert_allclose(cutn, ref, atol=1e-5)
    assert tiny.encode("x", truncate_dim=1000).shape == (32,)
    m8 = ember.Model(str(GOLDENS / "e2e-bert"), truncate_dim=8)
    assert m8.get_sentence_embedding_dimension() == 8
    assert m8.encode(["a", "b"]).shape == (2, 8)


def test_prompts(mb: ember.Model) -> None:
    assert mb.prompts["query"].startswith("search_query:")
    assert mb.default_prompt_name is None
    q = mb.prompts["query"]
    a = mb.encode(["what is a fox?"], prompt_name="query")
    b = mb.encode(["what is a fox?"], prompt=q)
    c = mb.encode([q + "what is a fox?"])
    d = mb.encode(["what is a fox?"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, c, atol=1e-5)
    assert np.abs(a - d).max() > 1e-3
    np.testing.assert_allclose(mb.encode_query("what is a fox?"), a[0], atol=1e-6)
    with pytest.raises(ValueError, match="prompt_name"):
        mb.encode("x", prompt_name="nope")
    p = mb.prompts
    p["query"] = "changed"
    assert mb.prompts["query"] == q


def test_tokenize(tiny: ember.Model) -> None:
    t = tiny.tokenize(["Hello world", ""])
    assert t["input_ids"][0][0] == 101 and t["input_ids"][0][-1] == 102
    assert t["input_ids"][1] == [101, 102]
    assert t["attention_mask"] == [[1] * len(r) for r in t["input_ids"]]
    assert tiny.tokenize("Hello world")["input_ids"] == [t["input_ids"][0]]
    long = tiny.tokenize(["word " * 700])["input_ids"][0]
    assert len(long) == tiny.max_seq_length
    with pytest.raises(ValueError, match="702 tokens"):
        tiny.tokenize(["word " * 700], truncate=False)
    assert tiny.id_to_token(101) == "[CLS]"
    # encode_tokens on the tokenizer's ids gives encode's vectors
    np.testing.assert_allclose(tiny.encode_tokens(t["input_ids"]), tiny.encode(["Hello world", ""]),
                               atol=1e-6)


def test_properties(tiny: ember.Model) -> None:
    assert tiny.max_seq_length == 512
    assert tiny.get_max_seq_length() == 512
    assert tiny.info["architecture"] == "bert"
    assert tiny.device == "cpu"
    assert "ember.Model" in repr(tiny)
    assert ember.version() == ember.__version__
    assert isinstance(ember.cpu_features(), str)
    assert ember.SentenceTransformer is ember.Model
    m = ember.Model(str(GOLDENS / "e2e-bert"), max_seq_length=16)
    assert m.max_seq_length == 16
    m2 = ember.SentenceTransformer(model_name_or_path=str(GOLDENS / "e2e-bert"))
    np.testing.assert_array_equal(m2.encode("x"), tiny.encode("x"))


def test_similarity(tiny: ember.Model) -> None:
    e = tiny.encode(TEXTS[:3])
    s = tiny.similarity(e, e)
    assert s.shape == (3, 3) and s.dtype == np.float32
    np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-5)
    np.testing.assert_allclose(s, e @ e.T, atol=1e-5)
    assert tiny.similarity(e[0], e).shape == (1, 3)
    np.testing.assert_allclose(tiny.similarity_pairwise(e, e), 1.0, atol=1e-5)
    assert ember.cos_sim([1.0, 0.0], [[0.0, 2.0], [3.0, 0.0]]).tolist() == [[0.0, 1.0]]
    with pytest.raises(ValueError):
        tiny.similarity(e, e[:, :5])


def test_output_forms(tiny: ember.Model) -> None:
    e = tiny.encode(TEXTS[:3])
    rows = tiny.encode(TEXTS[:3], convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 3
    np.testing.assert_array_equal(np.stack(rows), e)
    ub = tiny.encode(TEXTS[:3], precision="ubinary")
    assert ub.dtype == np.uint8 and ub.shape == (3, 4)
    np.testing.assert_array_equal(ub, np.packbits(e > 0, axis=-1))
    b = tiny.encode(TEXTS[:3], precision="binary")
    assert b.dtype == np.int8
    np.testing.assert_array_equal(b.astype(np.int16) + 128, ub)
    for bad in ("int8", "uint8", "float16", None, 3):
        with pytest.raises(ValueError, match="precision"):
            tiny.encode("x", precision=bad)


def test_progress_bar_without_tqdm(tiny: ember.Model) -> None:
    e = tiny.encode(TEXTS, show_progress_bar=True, batch_size=2)
    assert e.shape == (len(TEXTS), 32)


def test_dtypes() -> None:
    d = str(GOLDENS / "e2e-bert")
    ref = ember.Model(d, dtype="f32").encode(TEXTS)
    for dt in ("bf16", "int8", "auto", "float32"):
        got = ember.Model(d, dtype=dt).encode(TEXTS)
        assert cosine_rows(got, ref).min() > 0.99, dt
    with pytest.raises(ValueError, match="dtype"):
        ember.Model(d, dtype="f64")


# ---- errors and bad inputs ---------------------------------------------------


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such"):
        ember.Model(str(tmp_path / "missing"))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RuntimeError):
        ember.Model(str(tmp_path))
    with pytest.raises(ValueError):
        ember.Model(None)
    with pytest.raises(TypeError):
        ember.Model(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ember.Model("a\0b")
    with pytest.raises(ValueError):
        ember.Model(str(GOLDENS / "e2e-bert"), threads=-1)
    with pytest.raises(ValueError):
        ember.Model(str(GOLDENS / "e2e-bert"), threads=2**70)
    with pytest.raises(TypeError):
        ember.Model(str(GOLDENS / "e2e-bert"), threads="2")  # type: ignore[arg-type]
    # offline and not cached: a clean error, no download, no crash
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        with pytest.raises((FileNotFoundError, RuntimeError, ConnectionError)):
            ember.Model("nobody-here/no-such-model", cache_folder=str(tmp_path / "hub"))
    finally:
        if old is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = old
    assert "HF_HUB_CACHE" not in os.environ or os.environ["HF_HUB_CACHE"] != str(tmp_path / "hub")


def test_hub_cache_folder(tmp_path: Path) -> None:
    """A hub id found in cache_folder (HF cache layout) loads offline."""
    src = GOLDENS / "e2e-bert"
    repo = tmp_path / "models--ember-test--tiny"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    for p in src.rglob("*"):
        if p.is_file():
            t = snap / p.relative_to(src)
            t.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, t)
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        m = ember.Model("ember-test/tiny", cache_folder=tmp_path)
    finally:
        if old is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = old
    np.testing.assert_array_equal(m.encode("x"), ember.Model(str(src)).encode("x"))


@pytest.mark.parametrize("bad", [None, 5, 3.5, b"bytes", {"a": 1}, [1], ["ok", None], ["ok", b"x"],
                                 [["nested"]], object()])
def test_bad_sentences(tiny: ember.Model, bad: object) -> None:
    with pytest.raises(TypeError):
        tiny.encode(bad)  # type: ignore[arg-type]


def test_bad_options(tiny: ember.Model) -> None:
    for kw in ({"batch_size": 0}, {"batch_size": -3}, {"batch_size": 2**63}, {"truncate_dim": 0},
               {"truncate_dim": -1}, {"truncate_dim": 2**64}, {"output_value": "token_embeddings"}):
        with pytest.raises(ValueError):
            tiny.encode("x", **kw)
    for kw in ({"batch_size": None}, {"batch_size": "8"}, {"batch_size": 2.0},
               {"normalize_embeddings": "yes"}, {"prompt": 5}, {"prompt_name": 5},
               {"no_such_option": 1}):
        with pytest.raises((TypeError, ValueError)):
            tiny.encode("x", **kw)
    with pytest.raises(ValueError):
        tiny.encode("x", prompt="a\0b")


def test_surrogates_and_odd_text(tiny: ember.Model) -> None:
    # lone surrogates cannot be UTF-8: they become U+FFFD, as invalid UTF-8 does
    a = tiny.encode(["x\ud800y", "\udcff", "\x00nul\x00", "\U0010ffff", "a" * 100000])
    assert a.shape == (5, 32) and np.isfinite(a).all()
    np.testing.assert_allclose(a[0], tiny.encode("x\ufffdy"), atol=1e-6)
    tiny.tokenize(["\ud800"])
    tiny.encode("x", prompt="\udc80 ")


def test_bad_token_ids(tiny: ember.Model) -> None:
    with pytest.raises(ValueError):
        tiny.encode_tokens([[101, 10**6, 102]])  # outside the vocabulary
    with pytest.raises(ValueError):
        tiny.encode_tokens([[101, 2**40, 102]])
    with pytest.raises(ValueError):
        tiny.encode_tokens([[101, -1, 102]])
    with pytest.raises(ValueError):
        tiny.encode_tokens([[]])
    with pytest.raises(ValueError):
        tiny.encode_tokens([[101] * 600])  # longer than max_seq_length
    with pytest.raises(TypeError):
        tiny.encode_tokens([["a"]])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        tiny.encode_tokens([101, 102])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        tiny.encode_tokens(None)  # type: ignore[arg-type]
    assert tiny.encode_tokens([]).shape == (0, 32)
    assert tiny.encode_tokens(np.array([[101, 102]])).shape == (1, 32)


def test_low_level_buffer_checks(tiny: ember.Model) -> None:
    m = tiny._m
    with pytest.raises(ValueError, match="too small"):
        m.embed_texts(["a", "b"], np.empty((1, 32), np.float32))
    with pytest.raises(TypeError):
        m.embed_texts(["a"], np.empty((1, 32), np.float64))
    with pytest.raises((TypeError, BufferError)):
        m.embed_texts(["a"], b"\0" * 128)  # read-only
    with pytest.raises((TypeError, ValueError, BufferError)):
        m.embed_texts(["a"], np.empty((32, 2), np.float32)[:, 0])  # not contiguous
    with pytest.raises(ValueError):
        m.embed_texts(["a"], np.empty((1, 32), np.float32), 7)


def test_list_mutated_while_encoding(tiny: ember.Model) -> None:
    """The extension snapshots the list: another thread mutating it is harmless."""
    texts = [f"sentence number {i}" for i in range(2000)]
    stop = threading.Event()

    def mutate() -> None:
        while not stop.is_set():
            texts.append("new")
            texts.pop()

    t = threading.Thread(target=mutate)
    t.start()
    try:
        for _ in range(3):
            e = tiny.encode(texts)
            assert e.shape[1] == 32 and np.isfinite(e).all()
    finally:
        stop.set()
        t.join()


# ---- threads ---------------------------------------------------------------------


def test_threads_share_one_model(tiny: ember.Model) -> None:
    texts = [f"{w} is a word number {i}" for i, w in enumerate(TEXTS[:5] * 40)]
    ref = tiny.encode(texts)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for _ in range(5):
                out = tiny.encode(texts, batch_size=1 + k % 7)
                assert np.abs(out - ref).max() <= 1e-5
            results[k] = out
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    for k in range(8):
        np.testing.assert_allclose(results[k], ref, atol=1e-5)
    assert 1 <= tiny._m.n_contexts <= 9


def test_gil_released(tiny: ember.Model) -> None:
    """A pure-Python thread keeps running while the extension works.

    The counter thread's rate while the main thread sits in one long C call
    must be a good fraction of its rate while the main thread sleeps; were
    the GIL held, it could run for at most one switch interval (5 ms).
    """
    import time

    texts = ["word " * 500] * 96
    out = np.empty((len(texts), 32), np.float32)
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        t0, k0 = time.perf_counter(), ticks
        time.sleep(0.3)
        idle_rate = (ticks - k0) / (time.perf_counter() - t0)
        # long C calls back to back for at least 0.3 s (one call is under
        # 0.1 s on a fast machine)
        t0, k0, calls = time.perf_counter(), ticks, 0
        while time.perf_counter() - t0 < 0.3:
            tiny._m.embed_texts(texts, out)
            calls += 1
        dt, busy = time.perf_counter() - t0, ticks - k0
    finally:
        done.set()
        t.join()
    assert calls >= 1 and dt >= 0.3
    assert busy / dt >= 0.2 * idle_rate, (busy, dt, calls, idle_rate)


# ---- memory ----------------------------------------------------------------------


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def test_memory_flat_over_10000_calls(tiny: ember.Model) -> None:
    texts = ["hello world", "x\ud800", "a longer sentence with several words in it"]
    for _ in range(500):  # warm up arenas and allocator pools
        tiny.encode(texts)
    gc.collect()
    before = rss_kb()
    for i in range(10000):
        if i % 4 == 0:
            tiny.encode(texts, truncate_dim=8)
        elif i % 4 == 1:
            tiny.tokenize(texts)
        elif i % 4 == 2:
            try:
                tiny.encode([1])  # type: ignore[list-item]
            except TypeError:
                pass
        else:
            tiny.encode_tokens([[101, 2000, 102]])
    gc.collect()
    grown = rss_kb() - before
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB over 10,000 calls"
