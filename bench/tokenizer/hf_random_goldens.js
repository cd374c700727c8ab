// hf_random_goldens.js — differential testing against Hugging Face
// `tokenizers` (npm tokenizers@0.23.2): generates random texts mixing many
// scripts, marks, controls, format characters, whitespace kinds, emoji and
// special-token look-alikes, encodes them with HF for every tokenizer
// directory under FIXTURES that has a tokenizer.json, and writes records in
// the golden format to OUT/<name>.jsonl. test_tok_golden checks them:
//   NODE_PATH=/tmp/tokbench/node_modules node bench/tokenizer/hf_random_goldens.js \
//       tests/fixtures/tokenizer tests/fixtures/tokenizer/random 150 2024
//   build/tests/tokenizer/test_tok_golden tests/fixtures/tokenizer --goldens=random
const fs = require('fs');
const { Tokenizer } = require('tokenizers');
const fx = process.argv[2], out = process.argv[3], N = parseInt(process.argv[4] || '2000');
let seed = parseInt(process.argv[5] || '1');
function rnd() { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; }
function pick(a) { return a[Math.floor(rnd() * a.length)]; }
function range(a, b) { const r = []; for (let c = a; c <= b; c++) r.push(c); return r; }
const pools = [
  range(0x61, 0x7a), range(0x41, 0x5a), range(0x30, 0x39), range(0x21, 0x2f), [0x20, 0x20, 0x20, 0x20, 0x0a, 0x09, 0x0d],
  range(0xc0, 0xff), range(0x300, 0x36f), range(0x391, 0x3c9), [0x3a3, 0x3a3, 0x3c2], range(0x410, 0x44f),
  range(0x4e00, 0x4e40), range(0xac00, 0xac20), range(0x1100, 0x1112), range(0x1161, 0x1175), range(0x11a8, 0x11c2),
  range(0x3041, 0x3096), [0x3099, 0x309a], range(0x30a1, 0x30fa), range(0xff61, 0xff9f), range(0x600, 0x6ff),
  range(0x900, 0x97f), range(0xe00, 0xe5b), range(0x1f600, 0x1f64f), [0x200d, 0xfe0f, 0x1f3fb],
  range(0x0, 0x1f), range(0x7f, 0x9f), [0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xfeff, 0xad, 0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x61c, 0x6dd, 0x70f, 0x8e2, 0x180e, 0x110bd, 0x1bca0, 0x1d173, 0xe0001, 0xe0067, 0x890, 0x891, 0x110cd, 0x13430, 0x13438, 0x13439, 0x1343f],
  range(0xe000, 0xe010), [0x378, 0xfdd0, 0xfffe, 0x9ffd, 0x31350, 0x2ebf0, 0x1e030], [0xa0, 0x2000, 0x2005, 0x200a, 0x3000, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x85, 0x0b, 0x0c],
  range(0x2100, 0x214f), range(0x2190, 0x21ff), range(0xff01, 0xff5e), range(0xfb00, 0xfb06), [0x212b, 0x2126, 0x212a, 0xf900, 0xf9ff, 0x2f800, 0x2f00, 0x2e80, 0x3007, 0x20000, 0x2a6d6, 0x2b740, 0x30000, 0x31350],
  range(0x1e00, 0x1eff), range(0x1f00, 0x1fff), [0x130, 0x131, 0x1c5, 0x1e9e, 0xdf, 0x149, 0x1f0, 0x390],
  range(0x10a0, 0x10ff), range(0x1c90, 0x1cbf), range(0xa7c0, 0xa7ff), range(0x10570, 0x105bc), range(0x1e900, 0x1e94b),
  range(0xf00, 0xfff), range(0x1000, 0x109f), range(0x980, 0x9ff), range(0xb80, 0xbff), range(0x1780, 0x17ff),
];
const specials = ['[MASK]', '[CLS]', '[SEP]', '[UNK]', '[PAD]', '<|endoftext|>', '|||EMAIL_ADDRESS|||', '[unused3]', '   ', '\n\n', '  [MASK]', "'s", "'LL", '...', 'http://x.y/z?a=1'];
const texts = [];
for (let i = 0; i < N; i++) {
  let s = '';
  const len = Math.floor(rnd() * 40);
  const npools = 1 + Math.floor(rnd() * 3);
  const ps = []; for (let k = 0; k < npools; k++) ps.push(pick(pools));
  for (let j = 0; j < len; j++) {
    if (rnd() < 0.05) { s += pick(specials); continue; }
    if (rnd() < 0.15) { s += ' '; continue; }
    s += String.fromCodePoint(pick(pick(ps)));
  }
  texts.push(s);
}
(async () => {
  for (const name of fs.readdirSync(fx)) {
    if (!fs.existsSync(`${fx}/${name}/tokenizer.json`) || name === 'goldens') continue;
    const tok = Tokenizer.fromFile(`${fx}/${name}/tokenizer.json`);
    tok.disableTruncation(); tok.disablePadding();
    const lines = [];
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i];
      const e = await tok.encode(t, null, { addSpecialTokens: true });
      const e2 = await tok.encode(t, null, { addSpecialTokens: false });
      const cps = Array.from(t); const bo = [0]; for (const c of cps) bo.push(bo[bo.length - 1] + Buffer.byteLength(c));
      const offs = e.getOffsets();
      lines.push(JSON.stringify({ id: i, category: 'random', text: t, n_chars: cps.length, n_bytes: Buffer.byteLength(t),
        ids: e.getIds(), ids_no_special: e2.getIds(), tokens: e.getTokens(), offsets: offs,
        byte_offsets: offs.map(([a, b]) => [bo[a], bo[b]]), special_tokens_mask: e.getSpecialTokensMask(), truncation: [] }));
    }
    fs.writeFileSync(`${out}/${name}.jsonl`, lines.join('\n') + '\n');
  }
})();
