// hf_bench.js — the reference measurement for bench_tokenizer.c: Hugging Face
// `tokenizers` (Rust core, npm binding tokenizers@0.23.2) encoding the same
// golden corpus with the same loop, single thread, specials added, no
// truncation or padding. Install it outside the repository:
//   mkdir -p /tmp/tokbench && cd /tmp/tokbench && npm install tokenizers@0.23.2
//   NODE_PATH=/tmp/tokbench/node_modules node bench/tokenizer/hf_bench.js tests/fixtures/tokenizer 20
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

const fx = process.argv[2] || 'tests/fixtures/tokenizer';
const iters = parseInt(process.argv[3] || '20', 10);
const names = ['BAAI--bge-small-en-v1.5', 'sentence-transformers--all-MiniLM-L6-v2',
  'google-bert--bert-base-uncased', 'BAAI--bge-small-zh-v1.5', 'answerdotai--ModernBERT-base'];

async function main() {
  for (const name of names) {
    const recs = fs.readFileSync(`${fx}/goldens/${name}.jsonl`, 'utf8').split('\n')
      .filter((l) => l.length > 0).map((l) => JSON.parse(l));
    const tok = Tokenizer.fromFile(`${fx}/${name}/tokenizer.json`);
    tok.disableTruncation();
    tok.disablePadding();
    let bytes = 0, tokens = 0;
    for (const r of recs) {
      const enc = await tok.encode(r.text, null, { addSpecialTokens: true });
      const ids = enc.getIds();
      bytes += Buffer.byteLength(r.text, 'utf8');
      tokens += ids.length;
      if (ids.length !== r.ids.length || ids.some((v, i) => v !== r.ids[i]))
        console.error(`${name}: text ${r.id} differs from its golden ids`);
    }
    let best = Infinity;
    for (let rep = 0; rep < 3; rep++) {
      const t0 = process.hrtime.bigint();
      for (let it = 0; it < iters; it++)
        for (const r of recs) await tok.encode(r.text, null, { addSpecialTokens: true });
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      best = Math.min(best, dt);
    }
    console.log(JSON.stringify({ impl: 'hf-tokenizers-0.23.2 encode', tokenizer: name,
      texts: recs.length, bytes, tokens, iterations: iters, seconds: +best.toFixed(4),
      MB_per_s: +(bytes * iters / best / 1e6).toFixed(2),
      tokens_per_s: Math.round(tokens * iters / best) }));
    // encode() is asynchronous: each call pays a trip through the libuv
    // thread pool. encodeBatch() on the whole corpus pays it once per
    // iteration, which shows the Rust core itself (run with
    // RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false to keep one thread).
    const texts = recs.map((r) => r.text);
    best = Infinity;
    for (let rep = 0; rep < 3; rep++) {
      const t0 = process.hrtime.bigint();
      for (let it = 0; it < iters; it++) await tok.encodeBatch(texts, { addSpecialTokens: true });
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      best = Math.min(best, dt);
    }
    console.log(JSON.stringify({ impl: 'hf-tokenizers-0.23.2 encodeBatch', tokenizer: name,
      texts: recs.length, bytes, tokens, iterations: iters, seconds: +best.toFixed(4),
      MB_per_s: +(bytes * iters / best / 1e6).toFixed(2),
      tokens_per_s: Math.round(tokens * iters / best) }));
  }
}
main();
