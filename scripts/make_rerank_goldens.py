#!/usr/bin/env python3
"""Makes cross-encoder (reranker) goldens for Ember with the genuine code.

For each case a random-weight BertForSequenceClassification or
XLMRobertaForSequenceClassification of the named shapes is built with
`transformers`, next to a real tokenizer.json from tests/fixtures whose
vocabulary is shrunk to the tokens the test texts use (plus the first ids):
removing unused pieces changes neither WordPiece's longest match nor
Unigram's best path, so the segmentation is the full tokenizer's. Scores are
computed by sentence-transformers' CrossEncoder (raw logits, activation
Identity, and its default activation), and the pair encodings by the
tokenizer (tokenizer(query, text, truncation=True, max_length)). Nothing
expected is written by hand.

Usage (needs torch, transformers, sentence-transformers; not run by CI):
    python3 scripts/make_rerank_goldens.py OUT_DIR [CASE ...]
    python3 scripts/make_rerank_goldens.py tests/fixtures/goldens rerank-bert rerank-xlmr
Cases ending in -full have the real depth (MiniLM-L6: 6 layers of 384;
XLM-R base: 12 layers of 768) and are too large to check in: they back the
fidelity numbers of docs/server.md and the speed comparison.

Layout: OUT_DIR/CASE/{config.json, model.safetensors, tokenizer.json,
tokenizer_config.json, pairs.jsonl (query, text, input_ids, token_type_ids,
raw, score), meta.json}.
"""
import json
import os
import random
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")

BERT_TOK = os.path.join(FIX, "goldens", "e2e-bert", "tokenizer.json")
XLMR_TOK = os.path.join(FIX, "tokenizer", "spm-xlmr-nmt", "tokenizer.json")
QWEN3_TOK = os.path.join(FIX, "tokenizer", "qwen3-bpe", "tokenizer.json")

CASES = {
    # cross-encoder/ms-marco-MiniLM-L6-v2 per-layer shapes (hidden 384, 12
    # heads, intermediate 1536, 1 label), 1 layer stored in fp16 to stay small
    "rerank-bert": dict(kind="bert", tok=BERT_TOK, seed=51, layers=1, hidden=384, heads=12,
                        inter=1536, labels=1, dtype=torch.float16),
    "rerank-bert-full": dict(kind="bert", tok=BERT_TOK, seed=52, layers=6, hidden=384, heads=12,
                             inter=1536, labels=1, dtype=torch.float32),
    # XLM-R base per-layer shapes are large: a narrow model with the XLM-R
    # head, positions and pair template, 1 label
    "rerank-xlmr": dict(kind="xlmr", tok=XLMR_TOK, seed=53, layers=2, hidden=128, heads=4,
                        inter=512, labels=1, dtype=torch.float32),
    # Qwen3ForSequenceClassification (Qwen3-Reranker's *-seq-cls checkpoints:
    # a `score` product on the last token that is not pad_token_id), with the
    # qwen3-bpe fixture tokenizer, whose pair template ends each text with
    # <|endoftext|>, the pad id: the head reads the token before it. 1 label.
    "rerank-qwen3": dict(kind="qwen3", tok=QWEN3_TOK, seed=55, layers=2, hidden=64, heads=4,
                         inter=96, labels=1, dtype=torch.float32),
    "rerank-xlmr-full": dict(kind="xlmr", tok=XLMR_TOK, seed=54, layers=12, hidden=768, heads=12,
                             inter=3072, labels=1, dtype=torch.float32),
}

QUERIES = [
    "what is the capital of france?",
    "How do rerankers score passages?",
    "Quelle est la meilleure saison pour visiter Kyoto ?",
]

WORDS = ("the of paris france capital city river seine tower museum art history people "
         "language model passage score relevance query document search engine cross encoder "
         "attention layer token vector kyoto temple autumn spring cherry blossom visit "
         "season weather travel guide japan 日本 東京 café naïve résumé").split()


def passages(rng):
    out = [
        "Paris is the capital and most populous city of France.",
        "The Seine flows through Paris.",
        "Berlin is the capital of Germany.",
        "",
        "Rerankers read the query and the passage together and output one relevance score.",
        "Kyoto est magnifique en automne, quand les érables rougissent.",
        "ÉCOLE  Naïve café, RÉSUMÉ!! 123-456",
    ]
    for n in (40, 120, 300, 700):  # the last ones exceed 512 tokens: longest-first truncation
        out.append(" ".join(rng.choice(WORDS) for _ in range(n)))
    return out


def shrink(tok_path, texts, keep_first):
    """tokenizer.json restricted to the ids `texts` use, the specials and the
    first `keep_first` ids, renumbered in their original order."""
    from tokenizers import Tokenizer
    full = Tokenizer.from_file(tok_path)
    used = set(range(keep_first))
    for t in texts:
        used.update(full.encode(t, add_special_tokens=True).ids)
    j = json.load(open(tok_path))
    for a in j.get("added_tokens", []):
        used.add(a["id"])
    for sp in (j.get("post_processor") or {}).get("special_tokens", {}).values():
        used.update(sp["ids"])
    m = j["model"]
    if m["type"] == "WordPiece":
        inv = sorted((i, t) for t, i in m["vocab"].items() if i in used)
        remap = {old: new for new, (old, _) in enumerate(inv)}
        m["vocab"] = {t: remap[i] for i, t in inv}
    elif m["type"] == "Unigram":
        keep = [i for i in range(len(m["vocab"])) if i in used]
        remap = {old: new for new, old in enumerate(keep)}
        m["vocab"] = [m["vocab"][i] for i in keep]
        if m.get("unk_id") is not None:
            m["unk_id"] = remap[m["unk_id"]]
    else:
        raise SystemExit(f"unsupported model {m['type']}")
    for a in j.get("added_tokens", []):
        a["id"] = remap[a["id"]]
    pp = j.get("post_processor") or {}
    for sp in pp.get("special_tokens", {}).values():
        sp["ids"] = [remap[i] for i in sp["ids"]]
    for k in ("cls", "sep"):
        if k in pp:
            pp[k][1] = remap[pp[k][1]]
    return j, len(remap), remap


def set_random_weights(model, seed, std=0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ("LayerNorm" in name or "norm" in name) and name.endswith("weight"):
                p.copy_(1 + 0.05 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def make_case(root, name, spec):
    from sentence_transformers import CrossEncoder
    from transformers import (BertConfig, BertForSequenceClassification,
                              PreTrainedTokenizerFast, XLMRobertaConfig,
                              XLMRobertaForSequenceClassification)
    rng = random.Random(spec["seed"])
    out = os.path.join(root, name)
    os.makedirs(out, exist_ok=True)
    ps = passages(rng)
    if spec["kind"] == "qwen3":  # a 3,000-piece BPE: kept whole
        tok_json = json.load(open(spec["tok"]))
        vocab = len(tok_json["model"]["vocab"]) + len(tok_json.get("added_tokens", []))
        remap = None
    else:
        tok_json, vocab, remap = shrink(spec["tok"], QUERIES + ps, 1000 if spec["kind"] == "bert" else 300)
    tok_file = os.path.join(out, "tokenizer.json")
    with open(tok_file, "w") as f:
        json.dump(tok_json, f, ensure_ascii=False)
    if spec["kind"] == "bert":
        specials = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                        mask_token="[MASK]")
        cfg = BertConfig(vocab_size=vocab, hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
                         num_attention_heads=spec["heads"], intermediate_size=spec["inter"],
                         max_position_embeddings=512, num_labels=spec["labels"],
                         pad_token_id=remap[0])
        cfg.architectures = ["BertForSequenceClassification"]
        model = BertForSequenceClassification(cfg)
        max_len = 512
        # what BertTokenizer(Fast) returns and CrossEncoder feeds the model
        specials["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    elif spec["kind"] == "qwen3":
        from transformers import Qwen3Config, Qwen3ForSequenceClassification
        eot = next(a["id"] for a in tok_json["added_tokens"] if a["content"] == "<|endoftext|>")
        specials = dict(eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                        model_input_names=["input_ids", "attention_mask"])
        cfg = Qwen3Config(vocab_size=vocab, hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
                          num_attention_heads=spec["heads"], num_key_value_heads=2, head_dim=32,
                          intermediate_size=spec["inter"], max_position_embeddings=512,
                          rms_norm_eps=1e-6, rope_theta=1000000.0, num_labels=spec["labels"],
                          pad_token_id=eot, tie_word_embeddings=False)
        cfg.architectures = ["Qwen3ForSequenceClassification"]
        model = Qwen3ForSequenceClassification(cfg)
        max_len = 512
    else:
        specials = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", sep_token="</s>",
                        pad_token="<pad>", cls_token="<s>", mask_token="<mask>")
        cfg = XLMRobertaConfig(vocab_size=vocab, hidden_size=spec["hidden"],
                               num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
                               intermediate_size=spec["inter"], max_position_embeddings=514,
                               type_vocab_size=1, pad_token_id=remap[1], bos_token_id=remap[0],
                               eos_token_id=remap[2], layer_norm_eps=1e-5, num_labels=spec["labels"])
        cfg.architectures = ["XLMRobertaForSequenceClassification"]
        model = XLMRobertaForSequenceClassification(cfg)
        max_len = 512
    set_random_weights(model, spec["seed"])
    model = model.to(spec["dtype"]).to(torch.float32)  # the stored precision, computed in fp32
    model.to(spec["dtype"]).save_pretrained(out, safe_serialization=True)
    tok = PreTrainedTokenizerFast(tokenizer_file=tok_file, model_max_length=max_len, **specials)
    tok.save_pretrained(out)
    ce = CrossEncoder(out, device="cpu", max_length=max_len, model_kwargs={"torch_dtype": torch.float32})
    pairs = [(q, p) for q in QUERIES for p in ps]
    pairs.append((" ".join(rng.choice(WORDS) for _ in range(400)), ps[-1]))  # both long
    raw = ce.predict(pairs, batch_size=8, activation_fn=torch.nn.Identity())
    score = ce.predict(pairs, batch_size=8)
    with open(os.path.join(out, "pairs.jsonl"), "w") as f:
        for (q, p), r, s in zip(pairs, raw, score):
            # a batch call as CrossEncoder makes (a single call treats an
            # empty second text as no pair)
            enc = {k: v[0] for k, v in tok([q], [p], truncation=True, max_length=max_len,
                                           return_token_type_ids=True).items()}
            f.write(json.dumps({"query": q, "text": p, "input_ids": enc["input_ids"],
                                "token_type_ids": enc.get("token_type_ids"),
                                "raw": [float(x) for x in np.atleast_1d(r)],
                                "score": [float(x) for x in np.atleast_1d(s)]},
                               ensure_ascii=False) + "\n")
    meta = dict(generator="scripts/make_rerank_goldens.py", case=name, kind=spec["kind"],
                layers=spec["layers"], hidden=spec["hidden"], heads=spec["heads"],
                intermediate=spec["inter"], num_labels=spec["labels"], vocab=vocab,
                stored_dtype=str(spec["dtype"]), max_length=max_len, n_pairs=len(pairs),
                reference="sentence_transformers.CrossEncoder.predict, batch_size 8, fp32 CPU",
                versions=dict(torch=torch.__version__,
                              transformers=__import__("transformers").__version__,
                              sentence_transformers=__import__("sentence_transformers").__version__))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(name, "vocab", vocab, "pairs", len(pairs))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    torch.manual_seed(0)
    names = sys.argv[2:] or [n for n in CASES if not n.endswith("-full")]
    for n in names:
        make_case(sys.argv[1], n, CASES[n])


if __name__ == "__main__":
    main()
