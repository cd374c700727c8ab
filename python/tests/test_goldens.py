"""The random-weight goldens of tests/fixtures/goldens, through the Python API.

Every case feeds its token ids (ids.txt) through Model.encode_tokens; the e2e
cases also feed their texts through Model.encode. Limits as tests/test_golden.c:
cosine >= 0.99999 and max abs difference <= 1e-4 against genuine transformers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ember
from conftest import GOLDENS, cosine_rows

# cases with their model files (realshape-* hold only the expected vectors:
# CTest generates those models with bench/make_model and checks them in C)
CASES = sorted(p.name for p in GOLDENS.iterdir()
               if (p / "ids.txt").is_file() and (p / "config.json").is_file())


def load_expected(d: Path) -> tuple[list[list[int]], np.ndarray, list[dict]]:
    ids = [[int(t) for t in ln.split()] for ln in (d / "ids.txt").read_text().splitlines()
           if ln.strip()]
    rows = [json.loads(ln) for ln in (d / "expected.jsonl").read_text().splitlines() if ln]
    rows.sort(key=lambda r: r["index"])
    return ids, np.array([r["embedding"] for r in rows], dtype=np.float32), rows


def test_cases_found() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES)
def test_golden_ids(case: str) -> None:
    d = GOLDENS / case
    ids, expected, _ = load_expected(d)
    model = ember.Model(str(d), threads=2)
    got = model.encode_tokens(ids)
    assert got.shape == expected.shape and got.dtype == np.float32
    cos = cosine_rows(got, expected)
    assert cos.min() >= 0.99999, f"{case}: worst cosine {cos.min()} at {cos.argmin()}"
    assert np.abs(got - expected).max() <= 1e-4


@pytest.mark.parametrize("case", [c for c in CASES if (GOLDENS / c / "texts.jsonl").is_file()])
def test_golden_texts(case: str) -> None:
    d = GOLDENS / case
    ids, expected, rows = load_expected(d)
    texts = [json.loads(ln)["text"] for ln in (d / "texts.jsonl").read_text().splitlines() if ln]
    model = ember.Model(str(d), threads=2)
    tok = model.tokenize(texts)["input_ids"]
    for i, r in enumerate(rows):
        assert tok[i] == r["input_ids"], f"{case}: token ids of text {i} differ"
    for bs in (1, 7, 32):
        got = model.encode(texts, batch_size=bs)
        cos = cosine_rows(got, expected)
        assert cos.min() >= 0.99999, f"{case} bs={bs}: worst cosine {cos.min()}"
        assert np.abs(got - expected).max() <= 1e-4
