#!/usr/bin/env python3
"""make_e2e_decoder_golden.py — text in, vectors out for a Mistral-shaped
embedding model, by genuine sentence-transformers.

Writes tests/fixtures/goldens/e2e-mistral: a random-weight MistralModel
(transformers; GQA, a causal sliding window of 16 keys) whose vocabulary is
the `llama2-bpe-hf` tokenizer's (a Llama 2 / Mistral layout tokenizer.json
with tokenizer_class LlamaTokenizerFast, which transformers rebuilds: see
docs/tokenizer.md), with sentence-transformers files for last-token pooling
and normalization (e5-mistral-7b-instruct's chain) and max_seq_length 40 so
long texts are truncated (the template's </s> stays last: the token pooled).
The 120 texts are e2e-bert's. `SentenceTransformer(dir).encode` makes the
expected embeddings in batches of 16; its own `tokenize` gives the
expected ids. Nothing expected is written by hand. tests/test_e2e.c reads
the case.

  /tmp/refvenv/bin/python scripts/make_e2e_decoder_golden.py
(needs torch, transformers, sentence-transformers; not run by CI)
"""
import json
import os
import shutil
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SEED = 91
MAX_SEQ = 40


def main():
    import sentence_transformers
    import transformers
    from sentence_transformers import SentenceTransformer

    out = os.path.join(ROOT, "tests", "fixtures", "goldens", "e2e-mistral")
    tok_dir = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "llama2-bpe-hf")
    texts = [json.loads(line)["text"]
             for line in open(os.path.join(ROOT, "tests", "fixtures", "goldens", "e2e-bert", "texts.jsonl"),
                              encoding="utf-8") if line.strip()]
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    shutil.copy(os.path.join(tok_dir, "tokenizer.json"), out)
    with open(os.path.join(tok_dir, "tokenizer_config.json")) as f:
        tcfg = json.load(f)
    tcfg["pad_token"] = "</s>"  # as e5-mistral's: sentence-transformers pads its batches
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2)
    tok = transformers.AutoTokenizer.from_pretrained(out)

    torch.manual_seed(SEED)
    cfg = transformers.MistralConfig(
        vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=96, max_position_embeddings=4096, rms_norm_eps=1e-5,
        rope_theta=10000.0, sliding_window=16, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False)
    model = transformers.MistralModel(cfg)
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g) + (1.0 if p.dim() == 1 else 0.0))
    model.save_pretrained(out, safe_serialization=True)

    os.makedirs(os.path.join(out, "1_Pooling"))
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 64, "pooling_mode_lasttoken": True}, f, indent=2)
    with open(os.path.join(out, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize"}], f, indent=2)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": MAX_SEQ, "do_lower_case": False}, f)

    st = SentenceTransformer(out, device="cpu")
    st[0].auto_model.eval()
    emb = st.encode(texts, batch_size=16, convert_to_numpy=True, normalize_embeddings=False)
    alone = st.encode(texts[:24], batch_size=1, convert_to_numpy=True)
    worst = float(abs(alone - emb[:24]).max())
    with open(os.path.join(out, "texts.jsonl"), "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"index": i, "text": t}, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "expected.jsonl"), "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            ids = st.tokenize([t])["input_ids"][0].tolist()
            full = len(tok(t)["input_ids"])
            f.write(json.dumps({"index": i, "batch": i // 16, "text": t, "truncated": full > MAX_SEQ,
                                "input_ids": ids, "embedding": [float(x) for x in emb[i]]},
                               ensure_ascii=False, separators=(",", ":")) + "\n")
    meta = {"generator": "scripts/make_e2e_decoder_golden.py", "arch": "mistral", "seed": SEED,
            "dtype": "F32", "pooling": "lasttoken", "normalize": "l2", "max_seq_length": MAX_SEQ,
            "n_texts": len(texts), "batch_size": 16, "tokenizer": "llama2-bpe-hf (LlamaTokenizerFast)",
            "max_abs_diff_batched_vs_single": worst,
            "reference": {"transformers": transformers.__version__,
                          "sentence_transformers": sentence_transformers.__version__,
                          "torch": torch.__version__, "compute": "fp32, SentenceTransformer.encode"}}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    n_trunc = sum(len(tok(t)["input_ids"]) > MAX_SEQ for t in texts)
    print(f"e2e-mistral: {len(texts)} texts, {n_trunc} truncated, batched-vs-single {worst:.3g}")


if __name__ == "__main__":
    sys.exit(main())
