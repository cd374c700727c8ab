"""ember.CrossEncoder against sentence-transformers' CrossEncoder scores
stored in the reranker goldens (tests/fixtures/goldens/rerank-*, made by
scripts/make_rerank_goldens.py with the genuine CrossEncoder.predict)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import ember

from conftest import GOLDENS

CASES = ["rerank-bert", "rerank-xlmr", "rerank-qwen3"]


def load_pairs(case):
    rows = [json.loads(line) for line in open(GOLDENS / case / "pairs.jsonl", encoding="utf-8")]
    pairs = [(r["query"], r["text"]) for r in rows]
    raw = np.array([r["raw"][0] for r in rows], dtype=np.float64)
    score = np.array([r["score"][0] for r in rows], dtype=np.float64)
    return pairs, raw, score


@pytest.mark.parametrize("case", CASES)
def test_predict_matches_cross_encoder(case):
    ce = ember.CrossEncoder(str(GOLDENS / case))
    assert ce.num_labels == 1
    pairs, raw, score = load_pairs(case)
    got = ce.predict(pairs, batch_size=5)
    assert got.shape == (len(pairs),) and got.dtype == np.float32
    assert np.max(np.abs(got - score)) < 1e-4
    got_raw = ce.predict(pairs, activation_fn=lambda x: x)
    assert np.max(np.abs(got_raw - raw)) < 1e-4
    # the default is sentence-transformers' sigmoid of the logit
    assert np.max(np.abs(1 / (1 + np.exp(-got_raw.astype(np.float64))) - got)) < 1e-6
    # one pair in, one score out
    one = ce.predict(pairs[3])
    assert abs(float(one) - score[3]) < 1e-4


@pytest.mark.parametrize("case", CASES)
def test_rank_orders_by_reference(case):
    ce = ember.CrossEncoder(str(GOLDENS / case))
    pairs, _, score = load_pairs(case)
    query = pairs[0][0]
    idx = [i for i, (q, _) in enumerate(pairs) if q == query]
    docs = [pairs[i][1] for i in idx]
    ranked = ce.rank(query, docs, top_k=3, return_documents=True)
    want = sorted(range(len(idx)), key=lambda j: -score[idx[j]])[:3]
    assert [r["corpus_id"] for r in ranked] == want
    assert all(r["text"] == docs[r["corpus_id"]] for r in ranked)
    assert abs(ranked[0]["score"] - score[idx[want[0]]]) < 1e-4


def test_not_a_cross_encoder():
    with pytest.raises(ValueError, match="not a cross-encoder"):
        ember.CrossEncoder(str(GOLDENS / "bert-tiny-f32"))


def test_bad_pairs():
    ce = ember.CrossEncoder(str(GOLDENS / "rerank-bert"))
    with pytest.raises(TypeError, match="pair"):
        ce.predict([("query", 3)])
    with pytest.raises(ValueError):
        ce.predict([("q", "t")], batch_size=0)
