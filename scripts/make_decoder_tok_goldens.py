#!/usr/bin/env python3
"""make_decoder_tok_goldens.py — tokenizer fixtures shaped like Qwen3's and
Gemma 3's, and their goldens from Hugging Face `tokenizers`.

No registry package ships the real Qwen3-Embedding or EmbeddingGemma
tokenizer.json, so BPE models are trained here with the genuine `tokenizers`
trainer and given the real models' pipeline sections:

  qwen3-bpe:  NFC normalizer; Sequence[Split(Qwen2's regex, Isolated),
              ByteLevel(use_regex=false)]; byte-level BPE; ByteLevel decoder;
              TemplateProcessing "$A <|endoftext|>" (Qwen3-Embedding appends
              the end-of-text token it pools); <|endoftext|>, <|im_start|>,
              <|im_end|> added as special tokens.
  gemma3-bpe: Replace(" " -> "▁") normalizer; no pre-tokenizer; BPE with
              byte_fallback and fuse_unk over <0x00>..<0xFF>;
              TemplateProcessing "<bos> $A <eos>" (EmbeddingGemma adds both).
  gemma3-bpe-split: the same with Split(" ", MergedWithPrevious), the
              pre-tokenizer of newer Gemma tokenizer.json files.
  llama2-bpe: Sequence[Prepend("▁"), Replace(" " -> "▁")] normalizer; no
              pre-tokenizer; BPE with byte_fallback and fuse_unk; TemplateProcessing
              "<s> $A </s>" (Mistral's and Llama 2's layout; e5-mistral-7b-instruct
              appends </s>, the token it pools).

The many-script texts and the golden format are those of
scripts/make_spm_goldens.py (tests/tokenizer/test_tok_golden.c reads them);
every expected id, token and offset comes from `tokenizers`.

and, with the tokenizer_config.json that makes transformers (5.x) rebuild
the pipeline, encoded by the tokenizer `AutoTokenizer` builds (what
sentence-transformers runs), not by tokenizer.json as saved:

  llama2-bpe-hf:        llama2-bpe's tokenizer.json + tokenizer_class
                        LlamaTokenizerFast (legacy false): transformers drops
                        the normalizer and pre-tokenizes with Metaspace
                        (prepend_scheme "first", no split).
  llama2-bpe-hf-legacy: the same with legacy true (prepend_scheme "always").
  spm-xlmr-nmt-hf:      spm-xlmr-nmt's tokenizer.json (make_spm_goldens.py) +
                        tokenizer_class XLMRobertaTokenizer: transformers keeps
                        only the Precompiled normalizer and pre-tokenizes with
                        WhitespaceSplit + Metaspace.
  spm-xlmr-nmt-camembert-hf: the same file under CamembertTokenizer.

  /tmp/refvenv/bin/python scripts/make_decoder_tok_goldens.py [FIXTURES_DIR [NAME ...]]

(NAMEs: write only those fixtures and goldens.)
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_spm_goldens as spmg  # noqa: E402  (shared texts and golden writer)

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def train_text_file():
    d = tempfile.mkdtemp(prefix="dec-tok-")
    p = os.path.join(d, "train.txt")
    with open(p, "w", encoding="utf-8") as f:
        f.write(spmg.training_text(seed=11))
    return p


def qwen3(train):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tr = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([train], tr)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    eot = tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(
        single="$A:0 <|endoftext|>:0", pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
        special_tokens=[("<|endoftext|>", eot)])
    return tok


def byte_fallback_bpe(train, normalizer, pre_tokenizer, specials, unk):
    """A BPE trained on the "▁"-joined text, rebuilt with the <0xXX> byte
    pieces in its vocabulary (SentencePiece-converted tokenizers have them)
    and byte_fallback + fuse_unk, as Gemma's and Llama 2's are."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, trainers
    base = Tokenizer(models.BPE(unk_token=unk))
    base.normalizer = normalizer
    if pre_tokenizer is not None:
        base.pre_tokenizer = pre_tokenizer
    tr = trainers.BpeTrainer(vocab_size=2500, min_frequency=2, show_progress=False,
                             special_tokens=specials)
    base.train([train], tr)
    state = json.loads(base.to_str())
    vocab = state["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]]
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk, byte_fallback=True,
                               fuse_unk=True))
    tok.normalizer = normalizer
    if pre_tokenizer is not None:
        tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def llama2(train):
    from tokenizers import normalizers, processors
    norm = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok = byte_fallback_bpe(train, norm, None, ["<unk>", "<s>", "</s>"], "<unk>")
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0 </s>:0", pair="<s>:0 $A:0 </s>:0 <s>:1 $B:1 </s>:1",
        special_tokens=[("<s>", bos), ("</s>", eos)])
    return tok


def gemma3(train, split):
    from tokenizers import normalizers, pre_tokenizers, processors
    split_pre = pre_tokenizers.Split(" ", behavior="merged_with_previous") if split else None
    tok = byte_fallback_bpe(train, normalizers.Replace(" ", "▁"), split_pre,
                            ["<pad>", "<eos>", "<bos>", "<unk>"], "<unk>")
    bos, eos = tok.token_to_id("<bos>"), tok.token_to_id("<eos>")
    tok.post_processor = processors.TemplateProcessing(
        single="<bos>:0 $A:0 <eos>:0", pair="<bos>:0 $A:0 <eos>:0 $B:1 <eos>:1",
        special_tokens=[("<bos>", bos), ("<eos>", eos)])
    return tok


# fixture -> (the fixture whose tokenizer.json it takes, its tokenizer_config.json)
CLASS_CONFIGS = {
    "llama2-bpe-hf": ("llama2-bpe", {"tokenizer_class": "LlamaTokenizerFast", "legacy": False,
                                     "add_bos_token": True, "add_eos_token": True,
                                     "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
    "llama2-bpe-hf-legacy": ("llama2-bpe", {"tokenizer_class": "LlamaTokenizer", "legacy": True,
                                            "add_bos_token": True, "add_eos_token": False,
                                            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
    "spm-xlmr-nmt-hf": ("spm-xlmr-nmt", {"tokenizer_class": "XLMRobertaTokenizer", "bos_token": "<s>",
                                         "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                                         "unk_token": "<unk>", "pad_token": "<pad>",
                                         "mask_token": "<mask>"}),
    "spm-xlmr-nmt-camembert-hf": ("spm-xlmr-nmt", {"tokenizer_class": "CamembertTokenizer", "bos_token": "<s>",
                                                   "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                                                   "unk_token": "<unk>", "pad_token": "<pad>",
                                                   "mask_token": "<mask>"}),
}


def transformers_built(fx, name, texts):
    """Writes FX/NAME (the source fixture's tokenizer.json and the class's
    tokenizer_config.json) and returns the backend tokenizer AutoTokenizer
    builds from them, checked to give AutoTokenizer's own ids."""
    import shutil
    from transformers import AutoTokenizer
    src, cfg = CLASS_CONFIGS[name]
    d = os.path.join(fx, name)
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(fx, src, "tokenizer.json"), os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    at = AutoTokenizer.from_pretrained(d)
    backend = at.backend_tokenizer
    for _, t in texts:
        assert at(t)["input_ids"] == backend.encode(t).ids, (name, t)
    return backend


def main():
    fx = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests",
                                                              "fixtures", "tokenizer")
    train = train_text_file()
    makers = {"qwen3-bpe": lambda: qwen3(train), "gemma3-bpe": lambda: gemma3(train, False),
              "gemma3-bpe-split": lambda: gemma3(train, True), "llama2-bpe": lambda: llama2(train)}
    only = sys.argv[2:] or list(makers) + list(CLASS_CONFIGS)
    texts = [("curated", t) for t in spmg.curated()] + [("random", t) for t in spmg.random_texts(300, 2025)]
    paths = {}
    for name in only:
        if name in CLASS_CONFIGS:
            continue  # after the fixtures they copy
        tok = makers[name]()
        d = os.path.join(fx, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
        paths[name] = os.path.join(d, "tokenizer.json")
    for name in only:
        if name in CLASS_CONFIGS:
            paths[name] = transformers_built(fx, name, texts)
    spmg.write_goldens(fx, paths, texts, goldens_dir="goldens-decoder")


if __name__ == "__main__":
    main()
