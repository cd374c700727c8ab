#!/usr/bin/env python3
"""How far the reference itself moves in bf16, per golden case.

A driver with bf16 activations (the CUDA driver's default) rounds every
activation to 8 mantissa bits, as transformers does when a user loads a model
with torch_dtype=torch.bfloat16. Its distance to the fp32 goldens is then
bounded by what the genuine implementation reaches in bf16, not by a number
picked by hand: this script runs each case's model through transformers and
sentence-transformers' Pooling / Dense / Normalize in bf16 (weights and
activations, eager attention, one sequence at a time) and writes the minimum
cosine against the case's fp32 expected.jsonl into its meta.json as
"reference_bf16": {"min_cosine": ..., ...}.

tests/test_cuda_smoke.c and tests/test_golden.c (bf16 on a driver whose
activations are bf16) accept min(0.9999, that - 0.0005).

Usage: python scripts/make_bf16_bounds.py [CASE_DIR...]
       (default: every case of tests/fixtures/goldens but e2e-*, rerank-* and realshape-*,
       whose bounds scripts/make_realshape_goldens.py writes)
Needs torch, transformers, sentence-transformers (see scripts/make_goldens.py).
"""
import glob
import json
import os
import sys

import numpy as np
import torch
import transformers
from sentence_transformers.models import Dense, Normalize, Pooling


def bf16_min_cosine(case):
    meta_path = os.path.join(case, "meta.json")
    meta = json.load(open(meta_path))
    model = transformers.AutoModel.from_pretrained(case, attn_implementation="eager",
                                                   torch_dtype=torch.bfloat16).eval()
    dim = model.config.hidden_size
    pool = Pooling(dim, pooling_mode=meta["pooling"]).to(torch.bfloat16)
    denses = []
    for d in sorted(glob.glob(os.path.join(case, "*_Dense"))):
        denses.append(Dense.load(d).to(torch.bfloat16).eval())
    norm = Normalize()
    ids = [list(map(int, l.split())) for l in open(os.path.join(case, "ids.txt")) if l.strip()]
    expected = np.array([json.loads(l)["embedding"] for l in open(os.path.join(case, "expected.jsonl"))])
    worst = 1.0
    with torch.no_grad():
        for i, seq in enumerate(ids):
            t = torch.tensor([seq])
            mask = torch.ones_like(t)
            h = model(input_ids=t, attention_mask=mask).last_hidden_state
            f = pool({"token_embeddings": h, "attention_mask": mask})
            for d in denses:
                f = d(f)
            e = norm(f)["sentence_embedding"][0].float().numpy()
            c = float(e @ expected[i] / (np.linalg.norm(e) * np.linalg.norm(expected[i])))
            worst = min(worst, c)
    meta["reference_bf16"] = {
        "min_cosine": round(worst, 7),
        "how": "transformers with torch_dtype=bfloat16 (weights and activations), eager attention, "
               "sentence-transformers Pooling/Dense/Normalize in bf16, one sequence at a time, "
               "against this case's fp32 expected.jsonl",
        "generator": "scripts/make_bf16_bounds.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2)
    return worst


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "goldens")
    cases = sys.argv[1:] or sorted(
        d for d in glob.glob(os.path.join(root, "*"))
        if os.path.isdir(d) and not os.path.basename(d).startswith(("e2e-", "rerank-", "realshape-")))
    for c in cases:
        print(f"{os.path.basename(c)}: reference bf16 min cosine {bf16_min_cosine(c):.7f}")


if __name__ == "__main__":
    main()
