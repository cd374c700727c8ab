/*
 * pylower.c — Python's str.lower(), applied before tokenizing when
 * sentence-transformers' do_lower_case asks for it (its Transformer module
 * calls text.lower() on the input).
 *
 * Unlike HF's per-code-point Rust lowercase, Python uses the full mappings
 * (İ -> i + U+0307) and the Final_Sigma rule: Σ becomes ς after a cased
 * letter (skipping case-ignorable characters) when no cased letter follows.
 * Every output byte keeps the caller's byte span of its source character, so
 * offsets still point into the caller's text.
 */
#include <string.h>
#include <utf8proc.h>

#include "internal.h"

static bool is_cased(uint32_t c) {
    if (c < 0x80)
        return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    int cat = ember_tok_category(c);
    if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT)
        return true;
    /* Other_Lowercase / Other_Uppercase letters have case mappings or are
     * modifier letters such as ª º; approximate with the mappings. */
    return utf8proc_tolower((utf8proc_int32_t)c) != (utf8proc_int32_t)c ||
           utf8proc_toupper((utf8proc_int32_t)c) != (utf8proc_int32_t)c;
}

static bool is_case_ignorable(uint32_t c) {
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0x5E: case 0x60: case 0xA8: case 0xAD: case 0xAF:
    case 0xB4: case 0xB7: case 0xB8: case 0x387: case 0x55F: case 0x5F4: case 0x2018:
    case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07:
    case 0xFF0E: case 0xFF1A:
        return true;
    default:
        break;
    }
    if (c < 0x80)
        return false;
    int cat = ember_tok_category(c);
    return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME ||
           cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_LM ||
           cat == UTF8PROC_CATEGORY_SK;
}

static uint32_t dec_at(const char *s, size_t n, size_t i, int *l) {
    return ember_tok_utf8_dec((const uint8_t *)s + i, n - i, l);
}

static bool final_sigma(const char *s, size_t n, size_t i, size_t after) {
    /* scan back over case-ignorable characters */
    size_t j = i;
    bool found = false;
    uint32_t c = 0;
    while (j > 0) {
        size_t p = j - 1;
        while (p > 0 && ((uint8_t)s[p] & 0xC0) == 0x80)
            p--;
        int l;
        c = dec_at(s, n, p, &l);
        j = p;
        if (!is_case_ignorable(c)) {
            found = true;
            break;
        }
    }
    if (!found || !is_cased(c))
        return false;
    for (size_t k = after; k < n;) {
        int l;
        c = dec_at(s, n, k, &l);
        if (!is_case_ignorable(c))
            return !is_cased(c);
        k += (size_t)l;
    }
    return true;
}

ember_status ember_tok_py_lower(ember_encoding *enc, const char *src, size_t n,
                                const tok_span *map, char **out, size_t *out_n,
                                tok_span **out_map) {
    /* İ grows from 2 to 3 bytes; no other lowercase mapping grows more than
     * 3/2 in bytes (ASCII never grows). */
    size_t cap = n * 2 + 8;
    EMBER_TRY(TOK_GROW(enc->work2, enc->work2_cap, cap));
    EMBER_TRY(TOK_GROW(enc->wmap2, enc->wmap2_cap, cap));
    char *o = enc->work2;
    tok_span *m = enc->wmap2;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        int l;
        uint32_t c = dec_at(src, n, i, &l);
        tok_span sp = map ? (tok_span){map[i].s, map[i + (size_t)l - 1].e}
                          : (tok_span){(uint32_t)i, (uint32_t)(i + (size_t)l)};
        uint32_t lo[2];
        int k = 1;
        if (c < 0x80) {
            lo[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        } else if (c == 0x3A3) {
            lo[0] = final_sigma(src, n, i, i + (size_t)l) ? 0x3C2 : 0x3C3;
        } else {
            k = ember_tok_rust_lower(c, lo);
        }
        for (int q = 0; q < k; q++) {
            if (w + 4 > cap) {
                cap = cap * 2;
                EMBER_TRY(TOK_GROW(enc->work2, enc->work2_cap, cap));
                EMBER_TRY(TOK_GROW(enc->wmap2, enc->wmap2_cap, cap));
                o = enc->work2;
                m = enc->wmap2;
            }
            int bl = ember_tok_utf8_enc(lo[q], o + w);
            for (int b = 0; b < bl; b++)
                m[w + (size_t)b] = sp;
            w += (size_t)bl;
        }
        i += (size_t)l;
    }
    *out = o;
    *out_n = w;
    *out_map = m;
    return EMBER_OK;
}
