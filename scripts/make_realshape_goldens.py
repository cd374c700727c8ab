#!/usr/bin/env python3
"""Real-shape goldens: Qwen3-Embedding-0.6B and EmbeddingGemma-300m shapes.

A model of a real model's shapes weighs 0.4-1.2 GB, too much for
tests/fixtures. So the model is not stored: bench/make_model writes it
deterministically (same bytes on every run and machine), this script loads
what make_model wrote with the genuine Hugging Face code and stores only the
token ids, the expected vectors and the SHA-256 of make_model's files in
tests/fixtures/goldens/realshape-<case>/. The CTest (tests/realshape.cmake)
runs make_model into the build tree, checks the hashes, and compares Ember
with test_golden --model.

Reference: SentenceTransformer(dir) as a user loads it (transformers
AutoModel with eager attention in fp32 on the stored weights, then the
directory's own Pooling, Dense and Normalize modules), called on token ids
with an attention mask, in right-padded batches of mixed lengths; every
sequence is also run alone (the batched-vs-single difference goes into
meta.json). A second run in bf16 (weights and activations, as
torch_dtype=bfloat16 gives; one sequence at a time) gives
"reference_bf16"."min_cosine", the bound test_golden's bf16 mode derives
from (scripts/make_bf16_bounds.py does the same for the small cases), and the
bf16 vectors themselves ("embedding_bf16" in expected.jsonl).

Usage (not run by CI; a few minutes for the 2-layer cases, ~10 for all):
    /tmp/refvenv/bin/python scripts/make_realshape_goldens.py [--make-model build/bench/make_model]
        [--out tests/fixtures/goldens] [--keep DIR] [CASE ...]
CASE: q2, g2, q (28 layers), g (24 layers), g2-bf16weights; default all.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TOK = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

# lengths: a few tokens to a few hundred, mixed; EmbeddingGemma's up to
# 1030, past several 256-token half-windows of its sliding layers (keys with
# |i - j| <= 256), and around the window's edge (257, 258, 513).
CASES = {
    "q2": dict(preset="Q2", dtype="BF16", tokenizer="qwen3-bpe", seed=141,
               lengths=[1, 5, 17, 33, 64, 128, 257, 300, 2, 90]),
    "q": dict(preset="Q", dtype="BF16", tokenizer="qwen3-bpe", seed=142,
              lengths=[1, 3, 17, 64, 128, 300, 45, 200]),
    "g2": dict(preset="G2", dtype="F32", tokenizer="gemma3-bpe", seed=151,
               lengths=[2, 9, 40, 200, 257, 258, 300, 513, 700, 1030]),
    "g": dict(preset="G", dtype="F32", tokenizer="gemma3-bpe", seed=152,
              lengths=[2, 9, 40, 257, 258, 513, 1030]),
    # EmbeddingGemma on BF16 weights (the real one ships F32): the BF16
    # table gathered with the sqrt(hidden) scale, bf16 matrices
    "g2-bf16weights": dict(preset="G2", dtype="BF16", tokenizer="gemma3-bpe", seed=153,
                           lengths=[3, 20, 100, 257, 400, 700]),
}
# the files whose bytes decide the vectors (the tokenizer copy does not)
HASHED = ["model.safetensors", "config.json", "modules.json", "1_Pooling/config.json",
          "sentence_bert_config.json", "2_Dense/config.json", "2_Dense/model.safetensors",
          "3_Dense/config.json", "3_Dense/model.safetensors"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_seqs(spec, vocab, family):
    """Random ids framed as the real tokenizers frame them: Qwen3-Embedding
    appends <|endoftext|> (151643, the token last-token pooling reads);
    Gemma 3 starts with <bos> (2) and ends with <eos> (1). One sequence holds
    the last row of the table."""
    rnd = random.Random(spec["seed"])
    seqs = []
    for n in spec["lengths"]:
        s = [rnd.randrange(3, vocab) for _ in range(n)]
        if family == "qwen3":
            s[-1] = 151643
        elif n >= 2:
            s[0], s[-1] = 2, 1
        seqs.append(s)
    long = max(range(len(seqs)), key=lambda i: len(seqs[i]))
    seqs[long][len(seqs[long]) // 2] = vocab - 1
    return seqs


def run_st(st, seqs, idx, pad):
    L = max(len(seqs[i]) for i in idx)
    ids = torch.full((len(idx), L), pad, dtype=torch.long)
    mask = torch.zeros((len(idx), L), dtype=torch.long)
    for r, i in enumerate(idx):
        ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
        mask[r, :len(seqs[i])] = 1
    with torch.inference_mode():
        return st({"input_ids": ids, "attention_mask": mask})["sentence_embedding"].float()


def make_case(name, spec, args):
    import sentence_transformers
    import transformers
    from sentence_transformers import SentenceTransformer

    t0 = time.time()
    work = args.keep or tempfile.mkdtemp(prefix=f"realshape-{name}-")
    model_dir = os.path.join(work, name)
    shutil.rmtree(model_dir, ignore_errors=True)
    cmd = [args.make_model, spec["preset"], model_dir, os.path.join(TOK, spec["tokenizer"]),
           "--dtype", spec["dtype"]]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    files = {f: sha256(os.path.join(model_dir, f)) for f in HASHED
             if os.path.exists(os.path.join(model_dir, f))}
    # byte-identical across runs: a second run must give the same weights
    again = os.path.join(work, name + "-again")
    shutil.rmtree(again, ignore_errors=True)
    subprocess.run([args.make_model, spec["preset"], again, "--dtype", spec["dtype"]], check=True,
                   stdout=subprocess.DEVNULL)
    for f, h in files.items():
        assert sha256(os.path.join(again, f)) == h, f"make_model is not deterministic: {f}"
    shutil.rmtree(again)

    st = SentenceTransformer(model_dir, device="cpu",
                             model_kwargs={"attn_implementation": "eager", "dtype": torch.float32}).eval()
    cfg = st[0].auto_model.config
    assert cfg._attn_implementation == "eager", cfg._attn_implementation
    family = cfg.model_type
    pad = getattr(cfg, "pad_token_id", None) or 0
    seqs = make_seqs(spec, cfg.vocab_size, "qwen3" if family == "qwen3" else "gemma3")
    rnd = random.Random(spec["seed"] + 1)
    order = list(range(len(seqs)))
    rnd.shuffle(order)
    batches = [order[i:i + 4] for i in range(0, len(order), 4)]
    emb = [None] * len(seqs)
    for b in batches:
        e = run_st(st, seqs, b, pad)
        for r, i in enumerate(b):
            emb[i] = e[r]
    worst_single = 0.0
    for i in range(len(seqs)):
        worst_single = max(worst_single, float((run_st(st, seqs, [i], pad)[0] - emb[i]).abs().max()))
    t_fp32 = time.time() - t0
    del st

    # bf16 run, one sequence at a time (no padding in it)
    st16 = SentenceTransformer(model_dir, device="cpu",
                               model_kwargs={"attn_implementation": "eager", "dtype": torch.bfloat16}).eval()
    st16.to(torch.bfloat16)  # the Dense modules too, as a bf16 deployment runs them
    emb16 = [run_st(st16, seqs, [i], pad)[0] for i in range(len(seqs))]
    cos16 = [float(torch.nn.functional.cosine_similarity(a, b, dim=0)) for a, b in zip(emb, emb16)]
    del st16

    out = os.path.join(args.out, f"realshape-{name}")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "ids.txt"), "w") as f:
        for s in seqs:
            f.write(" ".join(map(str, s)) + "\n")
    with open(os.path.join(out, "expected.jsonl"), "w") as f:
        for i, s in enumerate(seqs):
            bi = next(k for k, b in enumerate(batches) if i in b)
            f.write(json.dumps({"index": i, "batch": bi, "length": len(s),
                                "embedding": [float(x) for x in emb[i]],
                                "embedding_bf16": [float(x) for x in emb16[i]]},
                               separators=(",", ":")) + "\n")
    meta = {
        "generator": "scripts/make_realshape_goldens.py",
        "model": {
            "make_model": f"make_model {spec['preset']} DIR --dtype {spec['dtype']}",
            "preset": spec["preset"], "dtype": spec["dtype"],
            "shapes_of": "Qwen/Qwen3-Embedding-0.6B" if family == "qwen3" else "google/embeddinggemma-300m",
            "layers": cfg.num_hidden_layers,
            "sha256": files,
            "deterministic": "make_model was run twice: byte-identical files; the CTest checks these hashes "
                             "before comparing, so the stored vectors stay valid",
        },
        "arch": family, "n_sequences": len(seqs), "n_tokens": sum(map(len, seqs)),
        "lengths": [len(s) for s in seqs], "n_batches": len(batches),
        "padding": "right, attention_mask 1 for real tokens",
        "max_abs_diff_batched_vs_single": worst_single,
        "reference": {"transformers": transformers.__version__,
                      "sentence_transformers": sentence_transformers.__version__,
                      "torch": torch.__version__, "numpy": np.__version__,
                      "how": "SentenceTransformer(dir) on token ids: AutoModel, eager attention, "
                             "fp32 compute on the stored weights; the directory's Pooling, Dense, Normalize",
                      "threads": torch.get_num_threads()},
        "reference_bf16": {
            "min_cosine": round(min(cos16), 7),
            "cosines": [round(c, 7) for c in cos16],
            "how": "SentenceTransformer(dir, dtype=bfloat16), every module in bf16 (weights and activations), "
                   "eager attention, one sequence at a time, against this case's fp32 embedding; the vectors "
                   "are expected.jsonl's embedding_bf16",
            "generator": "scripts/make_realshape_goldens.py",
        },
        "seconds": {"fp32": round(t_fp32, 1), "total": round(time.time() - t0, 1)},
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    if not args.keep:
        shutil.rmtree(work)
    print(f"realshape-{name}: {len(seqs)} sequences, {meta['n_tokens']} tokens, batched-vs-single "
          f"{worst_single:.3g}, bf16 reference min cosine {min(cos16):.7f}, {meta['seconds']['total']} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-model", default=os.path.join(ROOT, "build", "bench", "make_model"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "goldens"))
    ap.add_argument("--keep", help="write the models into this directory and keep them")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    for c in args.cases or list(CASES):
        make_case(c, CASES[c], args)


if __name__ == "__main__":
    sys.exit(main())
