#!/usr/bin/env python3
"""make_spm_goldens.py — SentencePiece Unigram fixtures and goldens.

Trains real SentencePiece Unigram models with the genuine trainer (default
`nmt_nfkc` normalization, so the Precompiled charsmap is real), converts them
to tokenizer.json with transformers' own XLMRobertaConverter, and encodes a
many-script corpus with Hugging Face `tokenizers` (the Rust core) to write
goldens in the format of tests/fixtures/tokenizer/goldens (checked by
tests/tokenizer/test_tok_golden.c). Nothing here is hand-written expected
output: the expected ids, tokens and offsets all come from `tokenizers`.

CI does not run this (it needs sentencepiece, transformers, tokenizers and
protobuf); it only runs the C tests against the checked-in files.

  python3 -m venv /tmp/spm-venv
  /tmp/spm-venv/bin/pip install tokenizers sentencepiece transformers protobuf
  /tmp/spm-venv/bin/python scripts/make_spm_goldens.py [FIXTURES_DIR]

Writes FIXTURES_DIR/spm-xlmr-nmt/tokenizer.json (4000 pieces, XLM-R layout:
Sequence[Precompiled, Strip, Replace], Metaspace, <s> $A </s>),
FIXTURES_DIR/spm-bytefallback/tokenizer.json (2000 pieces, byte_fallback,
Metaspace prepend_scheme "first" without split, RobertaProcessing) and
FIXTURES_DIR/goldens-spm/<name>.jsonl.

  /tmp/spm-venv/bin/python scripts/make_spm_goldens.py --bench FIXTURES_DIR [ITERS]
measures HF's single-threaded encode speed on the golden texts.
"""
import json
import os
import random
import sys
import tempfile
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAMES = ["spm-xlmr-nmt", "spm-bytefallback"]

SENTENCES = [
    "The quick brown fox jumps over the lazy dog. Hello world! It's 2024, isn't it?",
    "Ceci est une phrase en français, avec des accents : é è à ç ô û ï. Où est la gare ?",
    "Der schnelle braune Fuchs springt über den faulen Hund. Die Straße ist groß.",
    "El rápido zorro marrón salta sobre el perro perezoso. ¿Dónde está la biblioteca?",
    "Szybki brązowy lis przeskoczył nad leniwym psem. Zażółć gęślą jaźń.",
    "Tiếng Việt là ngôn ngữ chính thức của Việt Nam. Hà Nội là thủ đô.",
    "日本語のテキストです。東京は大きな都市です。私は毎日コーヒーを飲みます。",
    "中文文本，北京是中国的首都。我们喜欢学习新的语言和文化。",
    "한국어 문장입니다. 서울은 대한민국의 수도입니다. 감사합니다.",
    "ภาษาไทยเป็นภาษาที่สวยงาม กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "اللغة العربية جميلة جدا. القاهرة مدينة كبيرة، والرياض عاصمة السعودية.",
    "עברית היא שפה עתיקה. ירושלים היא עיר הבירה.",
    "हिन्दी एक सुंदर भाषा है। नई दिल्ली भारत की राजधानी है। धन्यवाद।",
    "বাংলা ভাষা খুব সুন্দর। ঢাকা বাংলাদেশের রাজধানী।",
    "தமிழ் ஒரு பழமையான மொழி. சென்னை தமிழ்நாட்டின் தலைநகரம்.",
    "Русский язык очень красивый. Москва — столица России. Ёжик в тумане.",
    "Українська мова: Київ — столиця України. Ґанок, їжак, єнот.",
    "Ελληνικά: η Αθήνα είναι η πρωτεύουσα της Ελλάδας. Καλημέρα σας!",
    "Հայերեն լեզու, Երևան։ ქართული ენა, თბილისი.",
    "emoji 😀 👍🏽 👨‍👩‍👧 ❤️ 🇯🇵 🏳️‍🌈 ok 🎉🎉",
    "Numbers: 1234567890, 3.14159, 1,000,000 and ½ ① ² ㎏ ﬁ ﬂ Ⅻ ™.",
    "ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ １２３ ｶﾀｶﾅ　全角スペース",
    "e-mail: someone@example.com, url: https://example.org/path?q=1&r=2",
    "Ünïcödé nörmälïzätïön: café vs cafe\u0301, Å vs A\u030a, ñ vs n\u0303.",
]


def training_text(seed=7):
    """Sentences plus synthetic words per script, so the trainer sees many
    pieces of every script (deterministic)."""
    rnd = random.Random(seed)
    scripts = [
        (0x61, 0x7A), (0x430, 0x44F), (0x3B1, 0x3C9), (0x4E00, 0x4EFF), (0x3041, 0x3096),
        (0x30A1, 0x30FA), (0xAC00, 0xAD00), (0xE01, 0xE2E), (0x627, 0x64A), (0x915, 0x939),
        (0x5D0, 0x5EA), (0x995, 0x9B9), (0xB95, 0xBB9), (0xE0, 0xFF),
    ]
    lines = []
    for i in range(6000):
        if i % 3 == 0:
            lines.append(rnd.choice(SENTENCES))
            continue
        a, b = rnd.choice(scripts)
        sylls = ["".join(chr(rnd.randint(a, b)) for _ in range(rnd.randint(1, 3))) for _ in range(40)]
        words = ["".join(rnd.choice(sylls[:12]) for _ in range(rnd.randint(1, 4))) for _ in range(rnd.randint(3, 12))]
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"


def build_models(fx):
    import sentencepiece as spm
    import transformers.convert_slow_tokenizer as conv
    from tokenizers import AddedToken, pre_tokenizers, processors

    class Shim:
        """The part of a slow XLMRobertaTokenizer the converter reads."""

        def __init__(self, path):
            self.vocab_file = path
            self.sp = spm.SentencePieceProcessor(model_file=path)
            self.legacy = True

        def convert_tokens_to_ids(self, t):
            fixed = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
            return fixed[t] if t in fixed else self.sp.piece_to_id(t) + 1

    class ByteFallbackConverter(conv.XLMRobertaConverter):
        handle_byte_fallback = True

    tmp = tempfile.mkdtemp(prefix="spm-train-")
    train = os.path.join(tmp, "train.txt")
    with open(train, "w", encoding="utf-8") as f:
        f.write(training_text())
    out = {}
    for name, vs, bf in [(NAMES[0], 4000, False), (NAMES[1], 2000, True)]:
        prefix = os.path.join(tmp, name)
        spm.SentencePieceTrainer.train(input=train, model_prefix=prefix, vocab_size=vs,
                                       model_type="unigram", byte_fallback=bf,
                                       hard_vocab_limit=False, num_threads=1, minloglevel=2)
        cls = ByteFallbackConverter if bf else conv.XLMRobertaConverter
        tok = cls(Shim(prefix + ".model")).converted()
        # real XLM-R tokenizer.json files list these as special added tokens
        n = tok.get_vocab_size()
        # (with <mask> lstrip, as in xlm-roberta-base's tokenizer.json)
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False, lstrip=t == "<mask>")
                                for t in ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]])
        assert tok.token_to_id("<mask>") == n - 1, "converter layout changed"
        if bf:
            # the other Metaspace and post-processor settings real models use
            tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
            tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        d = os.path.join(fx, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
        out[name] = os.path.join(d, "tokenizer.json")
    return out


def curated():
    t = list(SENTENCES)
    t += [
        "", " ", "   ", "a", "ab  cd   ef", "  leading", "trailing  ", "\t\ttabs\tand\nnewlines\r\n",
        "multiple     spaces      inside", "\u3000ideographic\u3000space", "nbsp\u00a0here\u2009thin\u202fnarrow",
        "ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ ＡＢＣ", "① ② ⑩ ⑳ ⓐ ⒜ ㊤", "㍻ ㍿ ㎞ ㏄ № ℡ ℃ ℉ Å Ω K", "x² y³ H₂O ½ ¼ ¾",
        "ﬁ\u0301 a\u0301 e\u0301\u0302 o\u0308\u0304 n\u0303", "\u0301 lone mark at start", "Å\u0328 ḱ\u0323",
        "Ǆemal ǅ ǆ ĳ Ŀ ŉ ſ ẞ ß", "İstanbul ı I i", "ΣΊΣΥΦΟΣ σίσυφος ς",
        "control\x00nul\x01\x02\x1f\x7f\x85\x9f chars", "zero\u200bwidth\u200cnon\u200djoiner\u2060wj\ufeffbom",
        "soft\u00adhyphen bidi\u200e\u200f\u202a\u202e\u2066\u2069", "private \ue000\uf8ff and \U000f0000",
        "noncharacters \ufdd0 \ufffe \U0010fffe", "replacement \ufffd char",
        "👨‍👩‍👧‍👦 👩🏽‍💻 🧑‍🤝‍🧑 🏴󠁧󠁢󠁳󠁣󠁴󠁿 🇺🇳🇫🇷 #️⃣ 1️⃣ ☺︎ ☺️",
        "a\u200db \u200d\u200d x\u0300\u200d", "🙂" * 20, "ｱｲｳｴｵ ﾊﾟﾋﾟ ﾞ ﾟ ｰ",
        "ｈｅｌｌｏ　ｗｏｒｌｄ！？", "中文，标点。“引号”《书名》", "日本語：「かぎ括弧」…‥",
        "한글 자모 ᄀᄁᄂ ᅡᅢ ᆨᆩ 가각", "กรุงเทพฯ ๑๒๓ ๆ ฯลฯ", "مرحبا بالعالم ١٢٣ ۴۵۶ ﷺ ﻻ",
        "क्षत्रिय ज्ञान श्री ॐ ०१२", "আমি বাংলায় গান গাই", "ŚŻŹĆŃ ąęółż", "Zürich Köln Düsseldorf",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "<s> inside </s> text <unk> <pad> <mask>", "<s><s></s>",
        "▁ already ▁▁ metaspace▁chars", "ends with space ", "ⅰⅱⅲ Ⅳ ⅻ", "℀ ℁ ℅ ℆ ℻",
        "Supercalifragilisticexpialidocious", "a" * 600, "ab" * 300, "日本" * 200,
        "ภาษาไทย" * 60, "😀" * 120, "x" + "\u0301" * 50, "word " * 150,
        "Ｈｅｌｌｏ, Wörld! 你好，世界！ مرحبا 🌍",
    ]
    return t


def random_texts(n, seed):
    rnd = random.Random(seed)

    def rng(a, b):
        return list(range(a, b + 1))
    pools = [
        rng(0x61, 0x7A), rng(0x41, 0x5A), rng(0x30, 0x39), rng(0x21, 0x2F), [0x20] * 4 + [0x0A, 0x09, 0x0D],
        rng(0xC0, 0xFF), rng(0x300, 0x36F), rng(0x391, 0x3C9), rng(0x410, 0x44F), rng(0x4E00, 0x4E40),
        rng(0xAC00, 0xAC20), rng(0x1100, 0x1112), rng(0x3041, 0x3096), rng(0x30A1, 0x30FA),
        rng(0xFF61, 0xFF9F), rng(0x600, 0x6FF), rng(0x900, 0x97F), rng(0xE00, 0xE5B), rng(0x1F600, 0x1F64F),
        [0x200D, 0xFE0F, 0x1F3FB], rng(0x0, 0x1F), rng(0x7F, 0x9F),
        [0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF, 0xAD, 0x600, 0x61C, 0x180E, 0xE0001],
        rng(0xE000, 0xE010), [0xA0, 0x2000, 0x2005, 0x3000, 0x1680, 0x2028, 0x2029, 0x202F, 0x85, 0x0B, 0x0C],
        rng(0x2100, 0x214F), rng(0x2460, 0x24FF), rng(0xFF01, 0xFF5E), rng(0xFB00, 0xFB06), rng(0x3300, 0x33FF),
        rng(0x1E00, 0x1EFF), rng(0x1F00, 0x1FFF), [0x130, 0x131, 0x1C5, 0x1E9E, 0xDF, 0x149, 0x1F0, 0x390],
        rng(0x2580, 0x259F), [0x2581] * 3, rng(0xF900, 0xF920), rng(0x2F00, 0x2F20), rng(0xFE30, 0xFE6B),
    ]
    specials = ["<s>", "</s>", "<unk>", "<mask>", "<pad>", "   ", "\n\n", "  <mask>", "ﬁ", "①", "...", "▁"]
    out = []
    for _ in range(n):
        s = []
        ps = [rnd.choice(pools) for _ in range(rnd.randint(1, 3))]
        for _ in range(rnd.randrange(40)):
            r = rnd.random()
            if r < 0.05:
                s.append(rnd.choice(specials))
            elif r < 0.2:
                s.append(" ")
            else:
                s.append(chr(rnd.choice(rnd.choice(ps))))
        out.append("".join(s))
    return out


def byte_offsets(text, offs):
    bo = [0]
    for c in text:
        bo.append(bo[-1] + len(c.encode("utf-8")))
    return [[bo[a], bo[b]] for a, b in offs]


def write_goldens(fx, paths, texts, goldens_dir="goldens-spm"):
    from tokenizers import Tokenizer
    gd = os.path.join(fx, goldens_dir)
    os.makedirs(gd, exist_ok=True)
    for name, path in paths.items():
        # a tokenizer.json path, or a tokenizers.Tokenizer (one transformers built)
        tok = Tokenizer.from_file(path) if isinstance(path, str) else path
        tok.no_truncation()
        tok.no_padding()
        lines = []
        for i, (cat, t) in enumerate(texts):
            e = tok.encode(t, add_special_tokens=True)
            e2 = tok.encode(t, add_special_tokens=False)
            trunc = []
            if i % 4 == 0:
                for ml in (3, 7):
                    tok.enable_truncation(max_length=ml)
                    et = tok.encode(t, add_special_tokens=True)
                    tok.no_truncation()
                    trunc.append({"max_length": ml, "direction": "right", "ids": et.ids, "tokens": et.tokens})
            rec = {"id": i, "category": cat, "text": t, "n_chars": len(t), "n_bytes": len(t.encode("utf-8")),
                   "ids": e.ids, "ids_no_special": e2.ids, "tokens": e.tokens, "offsets": [list(o) for o in e.offsets],
                   "byte_offsets": byte_offsets(t, e.offsets), "special_tokens_mask": e.special_tokens_mask,
                   "truncation": trunc}
            lines.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
        with open(os.path.join(gd, name + ".jsonl"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        print(f"{name}: {len(lines)} records")


def bench(fx, iters):
    from tokenizers import Tokenizer
    for name in NAMES:
        with open(os.path.join(fx, "goldens-spm", name + ".jsonl"), encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f if line.strip()]
        tok = Tokenizer.from_file(os.path.join(fx, name, "tokenizer.json"))
        nbytes = sum(len(t.encode("utf-8")) for t in texts)
        ntok = sum(len(tok.encode(t).ids) for t in texts)
        for mode in ("encode", "encode_batch"):
            best = 1e9
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(iters):
                    if mode == "encode":
                        for t in texts:
                            tok.encode(t)
                    else:
                        tok.encode_batch(texts)
                best = min(best, time.perf_counter() - t0)
            print(f"HF {mode:12s} {name}: {len(texts)} texts, {nbytes} bytes, {ntok} tokens x {iters}: "
                  f"{nbytes * iters / best / 1e6:.2f} MB/s, {ntok * iters / best / 1e6:.3f} M tokens/s")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--bench":
        bench(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 20)
        return
    fx = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tokenizer")
    paths = build_models(fx)
    texts = [("curated", t) for t in curated()] + [("random", t) for t in random_texts(300, 2024)]
    write_goldens(fx, paths, texts)


if __name__ == "__main__":
    main()
