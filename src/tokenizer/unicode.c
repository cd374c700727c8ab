/*
 * unicode.c — character classes and mappings the tokenizer needs, with the
 * exact definitions Hugging Face `tokenizers` uses (Rust `char` methods,
 * `unicode_categories`, regex classes). Those come from different Unicode
 * versions inside HF, so the sets that decide tokens are pinned by the
 * generated tables of unicode_tables.c; utf8proc supplies normalization
 * (decomposition, composition, combining classes) and general categories.
 * ASCII is answered inline so the common case does no lookup.
 */
#include <string.h>
#include <utf8proc.h>

#include "internal.h"
#include "unicode_tables.h"

static bool in_ranges(const tok_range *r, unsigned n, uint32_t cp) {
    unsigned lo = 0, hi = n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

bool ember_tok_is_deleted(uint32_t cp) {
    return in_ranges(ember_tok_tab_deleted, ember_tok_tab_deleted_n, cp);
}

uint32_t ember_tok_utf8_dec(const uint8_t *s, size_t n, int *len) {
    uint8_t b = s[0];
    if (b < 0x80 || n < 2) {
        *len = 1;
        return b;
    }
    if (b < 0xE0) {
        *len = 2;
        return ((uint32_t)(b & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (b < 0xF0 || n < 4) {
        *len = n < 3 ? (int)n : 3;
        if (n < 3)
            return 0xFFFD;
        return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

int ember_tok_utf8_enc(uint32_t cp, char *out) {
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

int ember_tok_category(uint32_t cp) { return (int)utf8proc_category((utf8proc_int32_t)cp); }

int ember_tok_ccc(uint32_t cp) {
    if (cp < 0x300)
        return 0;
    return utf8proc_get_property((utf8proc_int32_t)cp)->combining_class;
}

bool ember_tok_is_ws(uint32_t cp) {
    if (cp < 0x80)
        return cp == ' ' || (cp >= 9 && cp <= 13);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

bool ember_tok_is_alpha(uint32_t cp) {
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(ember_tok_tab_alpha, ember_tok_tab_alpha_n, cp);
}

bool ember_tok_is_num(uint32_t cp) {
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return in_ranges(ember_tok_tab_num, ember_tok_tab_num_n, cp);
}

bool ember_tok_is_numeric(uint32_t cp) {
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return in_ranges(ember_tok_tab_numeric, ember_tok_tab_numeric_n, cp);
}

bool ember_tok_is_punct(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
               (cp >= 123 && cp <= 126);
    return in_ranges(ember_tok_tab_punct, ember_tok_tab_punct_n, cp);
}

bool ember_tok_is_word(uint32_t cp) {
    if (cp < 0x80)
        return ember_tok_is_alpha(cp) || (cp >= '0' && cp <= '9') || cp == '_';
    return in_ranges(ember_tok_tab_word, ember_tok_tab_word_n, cp);
}

bool ember_tok_is_mark(uint32_t cp) {
    return cp >= 0x300 && in_ranges(ember_tok_tab_mark, ember_tok_tab_mark_n, cp);
}

bool ember_tok_is_mn(uint32_t cp) {
    return cp >= 0x300 && in_ranges(ember_tok_tab_mn, ember_tok_tab_mn_n, cp);
}

int ember_tok_rust_lower(uint32_t cp, uint32_t out[2]) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    /* HF's table (Rust's, with İ -> i + U+0307 the only two-char case) */
    unsigned lo = 0, hi = ember_tok_tab_lower_n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const tok_lower *e = &ember_tok_tab_lower[mid];
        if (cp < e->cp) {
            hi = mid;
        } else if (cp > e->cp) {
            lo = mid + 1;
        } else {
            out[0] = e->lo0;
            if (e->lo1) {
                out[1] = e->lo1;
                return 2;
            }
            return 1;
        }
    }
    out[0] = cp;
    return 1;
}

uint32_t ember_tok_compose(uint32_t a, uint32_t b) {
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)a, (utf8proc_int32_t)b};
    utf8proc_ssize_t r = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE);
    if (r != 1 || in_ranges(ember_tok_tab_nodecomp, ember_tok_tab_nodecomp_n, (uint32_t)buf[0]))
        return 0;
    return (uint32_t)buf[0];
}

int ember_tok_decompose(uint32_t cp, bool compat, uint32_t *out) {
    if (cp >= 0x80 && in_ranges(ember_tok_tab_nodecomp, ember_tok_tab_nodecomp_n, cp)) {
        out[0] = cp;
        return 1;
    }
    int boundclass = UTF8PROC_BOUNDCLASS_START;
    utf8proc_ssize_t r = utf8proc_decompose_char(
        (utf8proc_int32_t)cp, (utf8proc_int32_t *)out, 32,
        (utf8proc_option_t)(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0)), &boundclass);
    if (r < 1 || r > 32) {
        out[0] = cp;
        return 1;
    }
    return (int)r;
}
