#!/usr/bin/env python3
"""hf_unicode_tables.py — generates src/tokenizer/unicode_tables.c: the
character sets exactly as Hugging Face `tokenizers` (PyPI tokenizers 0.23.x)
classifies them, probed code point by code point through its own
normalizers and pre-tokenizers. HF takes these from the `unicode_categories`
crate (an old Unicode version) and Rust's std (a recent one), so no single
Unicode version of utf8proc reproduces them; the tables make Ember agree
with HF independently of the installed utf8proc.

    python3 -m venv /tmp/tokpy-venv
    /tmp/tokpy-venv/bin/pip install tokenizers==0.23.2 'unicodedata2>=17,<18'
    /tmp/tokpy-venv/bin/python bench/tokenizer/hf_unicode_tables.py > src/tokenizer/unicode_tables.c

Port of the former Node script of the same name (npm binding tokenizers@0.23.2
under Node with ICU 78, Unicode 17), which made the checked-in tables; this
port reproduces them byte for byte (with tokenizers 0.23.2 and 0.23.3). The
`nodecomp` set compares HF's NFD/NFKD with a current Unicode normalization:
the JS used ICU's String.prototype.normalize (Unicode 17); this port uses
the `unicodedata2` package pinned to Unicode 17 so that it produces the same
set (the standard library's unicodedata follows the Python release's Unicode
version, 14.0 in Python 3.11, and would miss the characters added since).
Takes a few minutes: about 1.1M code points, a dozen probes each.
"""
import sys

from tokenizers import normalizers, pre_tokenizers

try:
    import unicodedata2 as unicodedata
except ImportError:
    # the standard library's unicodedata (Unicode 14 in Python 3.11) gives 9
    # nodecomp ranges instead of the 21 checked in: refuse rather than differ
    raise SystemExit("hf_unicode_tables.py: needs unicodedata2 (pip install 'unicodedata2>=17,<18')")
if unicodedata.unidata_version != '17.0.0':
    print(f'hf_unicode_tables.py: warning: unicodedata2 is Unicode {unicodedata.unidata_version}; '
          'the checked-in tables were made against Unicode 17.0.0 (nodecomp may differ)', file=sys.stderr)


def main():
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    punct = pre_tokenizers.Punctuation()
    strip = normalizers.StripAccents()
    bert_strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = normalizers.Lowercase()
    gpt2 = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    digits = pre_tokenizers.Digits(individual_digits=True)
    ws = pre_tokenizers.Whitespace()
    nfd, nfkd = normalizers.NFD(), normalizers.NFKD()

    # alpha/num: the \p{L} and \p{N} classes of the GPT-2 regex (Oniguruma);
    # numeric: Rust char::is_numeric (Digits); word: regex \w (Whitespace).
    # mn: nonspacing marks BertNormalizer strips (unicode_categories, after NFD);
    # mark: combining marks the StripAccents normalizer removes (it uses
    # unicode-normalization's is_combining_mark, a different table).
    # nodecomp: characters with a decomposition in current Unicode (here
    # unicodedata2, Unicode 17) that HF's unicode-normalization-alignments does
    # not know: HF leaves them (and compositions into them) alone. (The name is
    # from the JS version, which used Node's ICU for current Unicode.)
    sets = {k: [] for k in ('deleted', 'punct', 'mn', 'mark', 'alpha', 'num', 'numeric', 'word', 'nodecomp')}
    lowers = []
    for cp in range(0x110000):
        if 0xd800 <= cp <= 0xdfff:
            continue
        s = chr(cp)
        if clean.normalize_str('a' + s + 'b') == 'ab':
            sets['deleted'].append(cp)
        if len(punct.pre_tokenize_str('a' + s + 'b')) == 3:
            sets['punct'].append(cp)
        if bert_strip.normalize_str('a' + s) == 'a':
            sets['mn'].append(cp)
        if strip.normalize_str('a' + s) == 'a':
            sets['mark'].append(cp)
        if cp >= 0x80 and ((nfkd.normalize_str(s) == s and unicodedata.normalize('NFKD', s) != s) or
                           (nfd.normalize_str(s) == s and unicodedata.normalize('NFD', s) != s)):
            sets['nodecomp'].append(cp)
        if cp >= 0x80:
            if len(gpt2.pre_tokenize_str('a' + s)) == 1:
                sets['alpha'].append(cp)
            elif len(gpt2.pre_tokenize_str('1' + s)) == 1:
                sets['num'].append(cp)
            if len(digits.pre_tokenize_str('a' + s + 'b')) == 3:
                sets['numeric'].append(cp)
            w = ws.pre_tokenize_str('a' + s)
            if len(w) == 1 and w[0][0] == 'a' + s:
                sets['word'].append(cp)
            lo = lower.normalize_str(s)
            if lo != s:
                lowers.append((cp, [ord(c) for c in lo]))

    def ranges(lst):
        r = []
        for cp in lst:
            if r and r[-1][1] == cp - 1:
                r[-1][1] = cp
            else:
                r.append([cp, cp])
        return r

    def hx(n):
        return '0x%X' % n

    out = [
        '/*',
        ' * unicode_tables.c — GENERATED by bench/tokenizer/hf_unicode_tables.py; do not edit.',
        ' *',
        ' * Character sets exactly as Hugging Face `tokenizers` 0.23 classifies them,',
        ' * probed through its own normalizers and pre-tokenizers: characters that',
        ' * BertNormalizer clean_text deletes (NUL, U+FFFD, Cc/Cf/Co of the old Unicode',
        ' * of the unicode_categories crate), BERT punctuation, nonspacing marks removed',
        ' * by BertNormalizer, combining marks removed by StripAccents, and the',
        ' * lowercase mapping of Rust char::to_lowercase for',
        ' * non-ASCII code points; and for non-ASCII code points the \\p{L} and \\p{N}',
        ' * classes of the GPT-2 regex (Oniguruma), Rust char::is_numeric, and the',
        ' * regex \\w of the Whitespace pre-tokenizer.',
        ' */',
        '#include "unicode_tables.h"',
        '',
    ]
    for name, lst in sets.items():
        r = ranges(lst)
        out.append(f'const tok_range ember_tok_tab_{name}[] = {{')
        for i in range(0, len(r), 4):
            out.append('    ' + ', '.join(f'{{{hx(a)}, {hx(b)}}}' for a, b in r[i:i + 4]) + ',')
        out.append('};')
        out.append(f'const unsigned ember_tok_tab_{name}_n = {len(r)};')
        out.append('')
    out.append('const tok_lower ember_tok_tab_lower[] = {')
    for i in range(0, len(lowers), 4):
        out.append('    ' + ', '.join(f'{{{hx(c)}, {hx(lo[0])}, {hx(lo[1]) if len(lo) > 1 else "0"}}}'
                                      for c, lo in lowers[i:i + 4]) + ',')
    out.append('};')
    out.append(f'const unsigned ember_tok_tab_lower_n = {len(lowers)};')
    if any(len(lo) > 2 for _, lo in lowers):
        raise SystemExit('lowercase longer than 2 code points')
    sys.stdout.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    main()
