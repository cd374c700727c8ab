#!/usr/bin/env python3
"""Makes embedding goldens for Ember with the genuine Hugging Face code.

For each case: a random-weight model of the named shapes is built with
`transformers` (AutoModel from a config), saved as a Hugging Face /
sentence-transformers directory (config.json, model.safetensors, modules.json,
1_Pooling/config.json, ...), and the sentence embeddings of a fixed list of
token-id sequences are computed by the model followed by sentence-transformers'
own Pooling and Normalize modules, in padded batches with an attention mask.
Nothing expected is written by hand.

Usage (needs torch, transformers, sentence-transformers; not run by CI):
    python3 scripts/make_goldens.py OUT_DIR [CASE ...]
    python3 scripts/make_goldens.py tests/fixtures/goldens qwen3-tiny-f32

The output layout is that of tests/fixtures/goldens/README.md.
"""
import json
import os
import random
import sys
import time

import numpy as np
import torch

CASES = {
    # Qwen3 (Qwen3-Embedding): GQA 4 -> 2, head_dim 32 != hidden / heads, causal,
    # last-token pooling, q/k norms, SwiGLU.
    "qwen3-tiny-f32": dict(
        arch="qwen3", dtype="F32", pooling="lasttoken", seed=31,
        config=dict(model_type="qwen3", hidden_size=64, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                    intermediate_size=96, vocab_size=1024, max_position_embeddings=2048,
                    rms_norm_eps=1e-6, rope_theta=1000000.0, hidden_act="silu",
                    attention_bias=False, tie_word_embeddings=True, use_sliding_window=False),
        lengths=[1, 2, 3, 7, 16, 33, 64, 100, 129, 257, 300, 5, 9, 17, 31, 48],
    ),
    "qwen3-tiny-bf16": dict(
        arch="qwen3", dtype="BF16", pooling="lasttoken", seed=32,
        config=dict(model_type="qwen3", hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=2, head_dim=16,
                    intermediate_size=80, vocab_size=1024, max_position_embeddings=1024,
                    rms_norm_eps=1e-6, rope_theta=10000.0, hidden_act="silu",
                    attention_bias=True, tie_word_embeddings=True, use_sliding_window=False),
        lengths=[1, 4, 8, 15, 40, 77, 130, 200, 2, 3],
    ),
    # Qwen2 (KaLM-Embedding, jina-code-embeddings): biases on q, k, v but not
    # o, no q/k norms, GQA; use_sliding_window with max_window_layers 1 puts a
    # causal window of 8 keys on layers 1 and 2 (inputs up to 300 tokens
    # cross it); mean pooling, as KaLM's.
    "qwen2-tiny-f32": dict(
        arch="qwen2", dtype="F32", pooling="mean", seed=33,
        config=dict(model_type="qwen2", hidden_size=64, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
                    vocab_size=1024, max_position_embeddings=2048, rms_norm_eps=1e-6,
                    rope_theta=1000000.0, hidden_act="silu", tie_word_embeddings=True,
                    use_sliding_window=True, sliding_window=8, max_window_layers=1),
        lengths=[1, 2, 3, 7, 8, 9, 16, 33, 64, 100, 129, 300, 5, 17],
    ),
    # Mistral (e5-mistral-7b-instruct, SFR-Embedding-Mistral): no biases, GQA
    # 8 -> 2, head_dim from hidden / heads, a causal window of 16 keys on
    # every layer; last-token pooling.
    "mistral-tiny-f32": dict(
        arch="mistral", dtype="F32", pooling="lasttoken", seed=34,
        config=dict(model_type="mistral", hidden_size=128, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=2, intermediate_size=160,
                    vocab_size=1024, max_position_embeddings=4096, rms_norm_eps=1e-5,
                    rope_theta=10000.0, hidden_act="silu", tie_word_embeddings=False,
                    sliding_window=16),
        lengths=[1, 2, 15, 16, 17, 18, 40, 64, 130, 257, 4, 31],
    ),
    # Llama: biases on q, k, v, o and the MLP (attention_bias, mlp_bias),
    # head_dim 24 with 4 heads on a hidden size of 64, no window.
    "llama-tiny-f32": dict(
        arch="llama", dtype="F32", pooling="lasttoken", seed=35,
        config=dict(model_type="llama", hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=4, head_dim=24,
                    intermediate_size=96, vocab_size=1024, max_position_embeddings=512,
                    rms_norm_eps=1e-6, rope_theta=500000.0, hidden_act="silu",
                    attention_bias=True, mlp_bias=True, tie_word_embeddings=False),
        lengths=[1, 3, 6, 20, 45, 100, 200, 2, 9],
    ),
    # XLM-RoBERTa (multilingual-e5, bge-m3): positions after padding_idx + 1,
    # one token type; one sequence holds the pad id inside (its position is
    # padding_idx and it does not advance the count, as HF derives positions
    # from input_ids != padding_idx).
    "xlmr-tiny-f32": dict(
        arch="xlm-roberta", dtype="F32", pooling="mean", seed=41,
        config=dict(model_type="xlm-roberta", hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=128, vocab_size=1024,
                    max_position_embeddings=130, type_vocab_size=1, pad_token_id=1,
                    layer_norm_eps=1e-5, hidden_act="gelu"),
        lengths=[1, 2, 5, 9, 17, 33, 64, 100, 128, 3, 7, 50],
        pad_inside=[7, 50],
    ),
    # DistilBERT (msmarco-distilbert, multi-qa-distilbert): its own names, no
    # token types.
    "distilbert-tiny-f32": dict(
        arch="distilbert", dtype="F32", pooling="mean", seed=51,
        config=dict(model_type="distilbert", dim=64, n_layers=2, n_heads=4, hidden_dim=128,
                    vocab_size=1024, max_position_embeddings=256, activation="gelu"),
        lengths=[1, 2, 6, 13, 40, 99, 200, 255, 4],
    ),
    # MPNet (all-mpnet-base-v2): relative-position buckets in every layer's
    # attention; sequences longer than 128 reach the logarithmic buckets.
    "mpnet-tiny-f32": dict(
        arch="mpnet", dtype="F32", pooling="mean", seed=71,
        config=dict(model_type="mpnet", hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=128, vocab_size=1024,
                    max_position_embeddings=514, pad_token_id=1, layer_norm_eps=1e-5,
                    relative_attention_num_buckets=32, hidden_act="gelu"),
        lengths=[1, 2, 8, 9, 17, 40, 129, 200, 300, 512, 6, 33],
        pad_inside=[33],
    ),
    # Gemma 3 as EmbeddingGemma: bidirectional, sliding (|i - j| < 8) and full
    # layers with their own RoPE bases, (1 + w) RMSNorms around both branches,
    # query_pre_attn_scalar != head_dim, GQA, gelu_tanh GLU, embeddings scaled
    # by sqrt(hidden), then mean pooling and a Dense pair as EmbeddingGemma's.
    "gemma3-tiny-f32": dict(
        arch="gemma3_text", dtype="F32", pooling="mean", seed=81,
        config=dict(model_type="gemma3_text", hidden_size=64, num_hidden_layers=4,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                    intermediate_size=96, vocab_size=1024, max_position_embeddings=512,
                    rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                    query_pre_attn_scalar=24, sliding_window=8, use_bidirectional_attention=True,
                    layer_types=["sliding_attention", "sliding_attention", "full_attention",
                                 "sliding_attention"],
                    rope_theta=1000000.0, rope_local_base_freq=10000.0,
                    attn_logit_softcapping=None, final_logit_softcapping=None,
                    tie_word_embeddings=True, pad_token_id=0),
        lengths=[1, 2, 7, 8, 9, 16, 17, 40, 100, 300, 5, 64],
        dense=[(128, False, "identity"), (64, False, "identity")],
    ),
    # BERT + Pooling + Dense(tanh, bias) + Dense(identity, no bias) + Normalize
    # (LaBSE's chain, and EmbeddingGemma's Dense pair).
    "bert-dense-f32": dict(
        arch="bert", dtype="F32", pooling="cls", seed=61,
        config=dict(model_type="bert", hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=128, vocab_size=1024,
                    max_position_embeddings=512, type_vocab_size=2, pad_token_id=0,
                    layer_norm_eps=1e-12, hidden_act="gelu"),
        lengths=[1, 3, 8, 21, 64, 130, 5],
        dense=[(48, True, "tanh"), (32, False, "identity")],
    ),
}


def set_random_weights(model, rng_seed, std=0.1):
    g = torch.Generator().manual_seed(rng_seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and p.dim() == 1:
                p.copy_(1.0 + 0.05 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def st_files(out, dim, pooling, max_seq_length, n_dense=0):
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    for i in range(n_dense):
        modules.append({"idx": 2 + i, "name": str(2 + i), "path": f"{2 + i}_Dense",
                        "type": "sentence_transformers.models.Dense"})
    k = 2 + n_dense
    modules.append({"idx": k, "name": str(k), "path": f"{k}_Normalize",
                    "type": "sentence_transformers.models.Normalize"})
    with open(os.path.join(out, "modules.json"), "w") as f:
        json.dump(modules, f, indent=2)
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    modes = ["cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens", "lasttoken"]
    want = {"cls": "cls_token", "mean": "mean_tokens", "lasttoken": "lasttoken"}[pooling]
    pc = {"word_embedding_dimension": dim}
    for m in modes:
        pc["pooling_mode_" + m] = m == want
    pc["include_prompt"] = True
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump(pc, f, indent=2)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": max_seq_length, "do_lower_case": False}, f, indent=2)
    with open(os.path.join(out, "config_sentence_transformers.json"), "w") as f:
        json.dump({"prompts": {"query": "Instruct: Given a query, retrieve passages\nQuery:", "document": ""},
                   "default_prompt_name": None, "similarity_fn_name": "cosine"}, f, indent=2)


def make_case(root, name, spec):
    import transformers
    import sentence_transformers
    from sentence_transformers.models import Normalize, Pooling

    t0 = time.time()
    out = os.path.join(root, name)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(spec["seed"])
    cfg = transformers.AutoConfig.for_model(**spec["config"])
    cfg._attn_implementation = "eager"
    model = transformers.AutoModel.from_config(cfg, attn_implementation="eager")
    set_random_weights(model, spec["seed"])
    dtype = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}[spec["dtype"]]
    # the reference computes in fp32 on the stored values: round the
    # parameters only (casting the whole model would also round buffers such
    # as RoPE's inv_freq, which transformers keeps in fp32 when it loads a
    # reduced-precision checkpoint)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(torch.float32))
    import copy
    copy.deepcopy(model).to(dtype).save_pretrained(out, safe_serialization=True)
    model = model.eval()
    dim = cfg.hidden_size
    dense_specs = spec.get("dense", [])
    st_files(out, dim, spec["pooling"], max(spec["lengths"]), len(dense_specs))
    pool = Pooling(dim, pooling_mode=spec["pooling"])
    norm = Normalize()
    denses = []
    if dense_specs:
        from sentence_transformers.models import Dense
        acts = {"tanh": torch.nn.Tanh(), "identity": torch.nn.Identity()}
        d_in = dim
        for i, (d_out, bias, act) in enumerate(dense_specs):
            torch.manual_seed(spec["seed"] + 100 + i)
            d = Dense(d_in, d_out, bias=bias, activation_function=acts[act])
            with torch.no_grad():
                d.linear.weight.copy_(0.2 * torch.randn(d.linear.weight.shape))
            os.makedirs(os.path.join(out, f"{2 + i}_Dense"), exist_ok=True)
            d.save(os.path.join(out, f"{2 + i}_Dense"))
            denses.append(d.eval())
            d_in = d_out

    rnd = random.Random(spec["seed"])
    V = cfg.vocab_size
    seqs = [[rnd.randrange(0, V) for _ in range(n)] for n in spec["lengths"]]
    pad = getattr(cfg, "pad_token_id", None)
    for n in spec.get("pad_inside", []):
        s_ = seqs[spec["lengths"].index(n)]
        s_[len(s_) // 2] = pad  # a pad id in the middle of a real sequence
    with open(os.path.join(out, "ids.txt"), "w") as f:
        for s in seqs:
            f.write(" ".join(map(str, s)) + "\n")
    # padded batches of mixed lengths (right padding with the mask)
    order = list(range(len(seqs)))
    rnd.shuffle(order)
    batches = [order[i:i + 4] for i in range(0, len(order), 4)]
    emb = [None] * len(seqs)
    worst = 0.0
    with torch.no_grad():
        def run(idx):
            L = max(len(seqs[i]) for i in idx)
            ids = torch.full((len(idx), L), pad if pad is not None else 0, dtype=torch.long)
            mask = torch.zeros((len(idx), L), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
                mask[r, :len(seqs[i])] = 1
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
            feats = pool({"token_embeddings": h, "attention_mask": mask})
            for d in denses:
                feats = d(feats)
            return norm(feats)["sentence_embedding"]
        for b in batches:
            e = run(b)
            for r, i in enumerate(b):
                emb[i] = e[r]
        for i in range(len(seqs)):
            alone = run([i])[0]
            worst = max(worst, float((alone - emb[i]).abs().max()))
    with open(os.path.join(out, "expected.jsonl"), "w") as f:
        for i, s in enumerate(seqs):
            bi = next(k for k, b in enumerate(batches) if i in b)
            f.write(json.dumps({"index": i, "batch": bi, "input_ids": s,
                                "embedding": [float(x) for x in emb[i]]}, separators=(",", ":")) + "\n")
    meta = {
        "generator": "scripts/make_goldens.py", "arch": spec["arch"], "seed": spec["seed"],
        "dtype": spec["dtype"], "std": 0.1, "pooling": spec["pooling"], "normalize": "l2",
        "n_sequences": len(seqs), "n_batches": len(batches),
        "padding": "right, attention_mask 1 for real tokens",
        "max_abs_diff_batched_vs_single": worst,
        "reference": {"transformers": transformers.__version__,
                      "sentence_transformers": sentence_transformers.__version__,
                      "torch": torch.__version__, "numpy": np.__version__,
                      "attn_implementation": "eager", "compute": "fp32 on the stored weights"},
        "seconds": round(time.time() - t0, 2),
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(f"{name}: {len(seqs)} sequences, batched-vs-single {worst:.3g}, {meta['seconds']} s")


def main():
    root = sys.argv[1]
    names = sys.argv[2:] or sorted(CASES)
    torch.set_num_threads(1)
    for n in names:
        make_case(root, n, CASES[n])


if __name__ == "__main__":
    main()
