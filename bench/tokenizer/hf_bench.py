#!/usr/bin/env python3
"""hf_bench.py — the reference measurement for bench_tokenizer.c: Hugging Face
`tokenizers` (Rust core, PyPI binding, 0.23.x) encoding the same golden
corpus with the same loop, single thread, specials added, no truncation or
padding, best of 3. It prints the same JSON fields as bench_tokenizer, one
object per line, twice per tokenizer: `encode` called per text in a loop
(the same loop as bench_tokenizer) and `encode_batch` on the whole corpus
once per iteration (kept to one thread). The Python binding calls the Rust
core synchronously, so `encode` pays only the Python call and the
conversion of the result; `encode_batch` saves most of that per-text cost.
Install it outside the repository:

    python3 -m venv /tmp/tokpy-venv && /tmp/tokpy-venv/bin/pip install tokenizers==0.23.2
    /tmp/tokpy-venv/bin/python bench/tokenizer/hf_bench.py tests/fixtures/tokenizer 20 [name substring]

RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false are set here (unless
already set) before tokenizers is imported.
"""
import json
import os
import sys
import time

os.environ.setdefault('RAYON_NUM_THREADS', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

NAMES = ['BAAI--bge-small-en-v1.5', 'sentence-transformers--all-MiniLM-L6-v2',
         'google-bert--bert-base-uncased', 'BAAI--bge-small-zh-v1.5',
         'answerdotai--ModernBERT-base', 'spm-xlmr-nmt', 'spm-bytefallback']


def report(impl, name, n, nbytes, ntokens, iters, best):
    print(f'{{"impl": "{impl}", "tokenizer": "{name}", "texts": {n}, "bytes": {nbytes}, '
          f'"tokens": {ntokens}, "iterations": {iters}, "seconds": {best:.4f}, '
          f'"MB_per_s": {nbytes * iters / best / 1e6:.2f}, "tokens_per_s": {ntokens * iters / best:.0f}}}',
          flush=True)


def main():
    fx = sys.argv[1] if len(sys.argv) > 1 else 'tests/fixtures/tokenizer'
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    only = sys.argv[3] if len(sys.argv) > 3 else None
    ver = tokenizers.__version__
    bad = 0
    for name in NAMES:
        if only and only not in name:
            continue
        gdir = 'goldens-spm' if name.startswith('spm-') else 'goldens'
        with open(f'{fx}/{gdir}/{name}.jsonl', encoding='utf-8') as f:
            recs = [json.loads(line) for line in f if line.strip()]
        tok = Tokenizer.from_file(f'{fx}/{name}/tokenizer.json')
        tok.no_truncation()
        tok.no_padding()
        texts = [r['text'] for r in recs]
        nbytes = ntokens = 0
        for r in recs:
            ids = tok.encode(r['text'], add_special_tokens=True).ids
            nbytes += len(r['text'].encode('utf-8'))
            ntokens += len(ids)
            if ids != r['ids']:
                print(f"{name}: text {r['id']} differs from its golden ids", file=sys.stderr)
                bad = 1
        best = float('inf')
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(iters):
                for t in texts:
                    tok.encode(t, add_special_tokens=True)
            best = min(best, time.perf_counter() - t0)
        report(f'hf-tokenizers-{ver} encode', name, len(recs), nbytes, ntokens, iters, best)
        best = float('inf')
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(iters):
                tok.encode_batch(texts, add_special_tokens=True)
            best = min(best, time.perf_counter() - t0)
        report(f'hf-tokenizers-{ver} encode_batch', name, len(recs), nbytes, ntokens, iters, best)
    return bad


if __name__ == '__main__':
    sys.exit(main())
