#!/usr/bin/env python3
"""hf_random_goldens.py — differential testing against Hugging Face
`tokenizers` (PyPI tokenizers, 0.23.x): generates random texts mixing many
scripts, marks, controls, format characters, whitespace kinds, emoji and
special-token look-alikes, encodes them with HF for every tokenizer
directory under FIXTURES that has a tokenizer.json, and writes records in
the golden format to OUT/<name>.jsonl. test_tok_golden checks them:

    python3 -m venv /tmp/tokpy-venv && /tmp/tokpy-venv/bin/pip install tokenizers==0.23.2
    /tmp/tokpy-venv/bin/python bench/tokenizer/hf_random_goldens.py \\
        tests/fixtures/tokenizer tests/fixtures/tokenizer/random 150 2024 \\
        --only BAAI--bge-small-en-v1.5,BAAI--bge-small-zh-v1.5,answerdotai--ModernBERT-base,google-bert--bert-base-uncased,sentence-transformers--all-MiniLM-L6-v2
    build/tests/tokenizer/test_tok_golden tests/fixtures/tokenizer --goldens=random

(--only keeps to the five tokenizers the checked-in set covers; without it
every directory with a tokenizer.json is encoded.)

This is a port of the former Node script of the same name (npm binding
tokenizers@0.23.2), which made the checked-in goldens; it reproduces them
byte for byte. The random generator is the JS one exactly: JS numbers are
IEEE doubles, so `seed * 1103515245` is rounded to 53 bits once it passes
2**53 (seeds above 2**23 or so), `+ 12345` is rounded again, and `& 0x7fffffff`
then takes the low 31 bits of that (already rounded) integer. Python floats
are the same IEEE doubles, so doing the arithmetic in float and only then
converting to int gives the same sequence, precision loss included.
"""
import json
import os
import sys

from tokenizers import Tokenizer


def main():
    argv = sys.argv[1:]
    only = None
    if '--only' in argv:
        k = argv.index('--only')
        only = set(argv[k + 1].split(','))
        del argv[k:k + 2]
    fx, out = argv[0], argv[1]
    n = int(argv[2]) if len(argv) > 2 else 2000
    seed = int(argv[3]) if len(argv) > 3 else 1

    def rnd():
        nonlocal seed
        # float arithmetic on purpose: reproduces the JS double rounding
        seed = int(float(seed) * 1103515245.0 + 12345.0) & 0x7fffffff
        return seed / 0x7fffffff

    def pick(a):
        return a[int(rnd() * len(a))]

    def rng(a, b):
        return list(range(a, b + 1))

    pools = [
        rng(0x61, 0x7a), rng(0x41, 0x5a), rng(0x30, 0x39), rng(0x21, 0x2f), [0x20, 0x20, 0x20, 0x20, 0x0a, 0x09, 0x0d],
        rng(0xc0, 0xff), rng(0x300, 0x36f), rng(0x391, 0x3c9), [0x3a3, 0x3a3, 0x3c2], rng(0x410, 0x44f),
        rng(0x4e00, 0x4e40), rng(0xac00, 0xac20), rng(0x1100, 0x1112), rng(0x1161, 0x1175), rng(0x11a8, 0x11c2),
        rng(0x3041, 0x3096), [0x3099, 0x309a], rng(0x30a1, 0x30fa), rng(0xff61, 0xff9f), rng(0x600, 0x6ff),
        rng(0x900, 0x97f), rng(0xe00, 0xe5b), rng(0x1f600, 0x1f64f), [0x200d, 0xfe0f, 0x1f3fb],
        rng(0x0, 0x1f), rng(0x7f, 0x9f), [0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xfeff, 0xad, 0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x61c, 0x6dd, 0x70f, 0x8e2, 0x180e, 0x110bd, 0x1bca0, 0x1d173, 0xe0001, 0xe0067, 0x890, 0x891, 0x110cd, 0x13430, 0x13438, 0x13439, 0x1343f],
        rng(0xe000, 0xe010), [0x378, 0xfdd0, 0xfffe, 0x9ffd, 0x31350, 0x2ebf0, 0x1e030], [0xa0, 0x2000, 0x2005, 0x200a, 0x3000, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x85, 0x0b, 0x0c],
        rng(0x2100, 0x214f), rng(0x2190, 0x21ff), rng(0xff01, 0xff5e), rng(0xfb00, 0xfb06), [0x212b, 0x2126, 0x212a, 0xf900, 0xf9ff, 0x2f800, 0x2f00, 0x2e80, 0x3007, 0x20000, 0x2a6d6, 0x2b740, 0x30000, 0x31350],
        rng(0x1e00, 0x1eff), rng(0x1f00, 0x1fff), [0x130, 0x131, 0x1c5, 0x1e9e, 0xdf, 0x149, 0x1f0, 0x390],
        rng(0x10a0, 0x10ff), rng(0x1c90, 0x1cbf), rng(0xa7c0, 0xa7ff), rng(0x10570, 0x105bc), rng(0x1e900, 0x1e94b),
        rng(0xf00, 0xfff), rng(0x1000, 0x109f), rng(0x980, 0x9ff), rng(0xb80, 0xbff), rng(0x1780, 0x17ff),
    ]
    specials = ['[MASK]', '[CLS]', '[SEP]', '[UNK]', '[PAD]', '<|endoftext|>', '|||EMAIL_ADDRESS|||', '[unused3]',
                '   ', '\n\n', '  [MASK]', "'s", "'LL", '...', 'http://x.y/z?a=1']
    texts = []
    for _ in range(n):
        s = []
        length = int(rnd() * 40)
        npools = 1 + int(rnd() * 3)
        ps = [pick(pools) for _ in range(npools)]
        for _ in range(length):
            if rnd() < 0.05:
                s.append(pick(specials))
                continue
            if rnd() < 0.15:
                s.append(' ')
                continue
            s.append(chr(pick(pick(ps))))
        texts.append(''.join(s))

    # the JS took fs.readdirSync's order (sorted); each name has its own file
    for name in sorted(os.listdir(fx)):
        if not os.path.exists(f'{fx}/{name}/tokenizer.json') or name == 'goldens':
            continue
        if only is not None and name not in only:
            continue
        tok = Tokenizer.from_file(f'{fx}/{name}/tokenizer.json')
        tok.no_truncation()
        tok.no_padding()
        lines = []
        for i, t in enumerate(texts):
            e = tok.encode(t, add_special_tokens=True)
            e2 = tok.encode(t, add_special_tokens=False)
            bo = [0]
            for c in t:  # a Python str indexes code points, as HF's offsets do
                bo.append(bo[-1] + len(c.encode('utf-8')))
            offs = [list(o) for o in e.offsets]
            rec = {'id': i, 'category': 'random', 'text': t, 'n_chars': len(t), 'n_bytes': len(t.encode('utf-8')),
                   'ids': e.ids, 'ids_no_special': e2.ids, 'tokens': e.tokens, 'offsets': offs,
                   'byte_offsets': [[bo[a], bo[b]] for a, b in offs],
                   'special_tokens_mask': e.special_tokens_mask, 'truncation': []}
            # JSON.stringify's form: no spaces, non-ASCII as is, only " \ and
            # C0 controls escaped (\n \t ... or \u00xx, lowercase hex)
            lines.append(json.dumps(rec, ensure_ascii=False, separators=(',', ':')))
        with open(f'{out}/{name}.jsonl', 'w', encoding='utf-8', newline='\n') as f:
            f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
