/*
 * precompiled.c — the `Precompiled` normalizer: SentencePiece's
 * precompiled_charsmap as Hugging Face `tokenizers` applies it
 * (normalizers/precompiled.rs and the spm_precompiled crate).
 *
 * The charsmap (base64 in tokenizer.json) is a little-endian u32 byte size
 * of a darts-clone double array, that many bytes of 32-bit units, then a
 * blob of NUL-terminated UTF-8 replacement strings that the trie's values
 * index. HF does not run SentencePiece's own longest-match normalizer; it
 * walks extended grapheme clusters and, for a cluster shorter than 6 bytes,
 * looks the whole cluster up, taking the *first* (shortest) key that is a
 * prefix of it and replacing the *whole* cluster with that key's string;
 * otherwise (or when nothing matches) it looks up each character alone.
 * These quirks decide the output (e.g. "ﬁ" + U+0301 loses its accent), so
 * they are reproduced exactly, including how a deletion is recorded on the
 * previous transformation entry (offsets then follow HF's transform()).
 *
 * Every index read from the file is bounds-checked: where HF would panic on
 * a corrupt charsmap we treat the lookup as "no match" instead.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/util.h"
#include "internal.h"

/* ---- loading -------------------------------------------------------------- */

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard-alphabet base64 with optional '=' padding (HF encodes with
 * padding); anything else is an error, reported with its position. */
static ember_status b64_decode(const char *s, size_t n, uint8_t **out, size_t *out_n,
                               const char *what) {
    while (n > 0 && s[n - 1] == '=' && n % 4 != 1)
        n--;
    if (n % 4 == 1)
        return ember_error(EMBER_E_FORMAT,
                           "%s: Precompiled precompiled_charsmap is not valid base64 (length)",
                           what);
    uint8_t *b = malloc(n / 4 * 3 + 3);
    if (!b)
        return ember_error(EMBER_E_NOMEM, "out of memory decoding precompiled_charsmap");
    size_t w = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(b);
            return ember_error(EMBER_E_FORMAT,
                               "%s: Precompiled precompiled_charsmap is not valid base64 "
                               "(byte 0x%02X at position %zu)",
                               what, (unsigned)(unsigned char)s[i], i);
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b[w++] = (uint8_t)(acc >> bits);
        }
    }
    *out = b;
    *out_n = w;
    return EMBER_OK;
}

/* Strict UTF-8 (Rust String::from_utf8): no overlongs, surrogates or values
 * above U+10FFFF. Returns the offset of the first bad byte, or n. */
static size_t utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t l;
        uint32_t min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c < 0xE0) {
            l = 2, min = 0x80, cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c < 0xF0) {
            l = 3, min = 0x800, cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c < 0xF5) {
            l = 4, min = 0x10000, cp = c & 0x07u;
        } else {
            return i;
        }
        if (i + l > n)
            return i;
        for (size_t k = 1; k < l; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += l;
    }
    return n;
}

ember_status ember_tok_charsmap_load(const uint8_t *raw, size_t n, tok_charsmap *m,
                                     const char *what) {
    memset(m, 0, sizeof *m);
    if (n < 4)
        return ember_error(EMBER_E_FORMAT,
                           "%s: Precompiled precompiled_charsmap is %zu bytes, shorter than its "
                           "4-byte trie size",
                           what, n);
    uint32_t trie_size = (uint32_t)raw[0] | (uint32_t)raw[1] << 8 | (uint32_t)raw[2] << 16 |
                         (uint32_t)raw[3] << 24;
    if (trie_size > n - 4)
        return ember_error(EMBER_E_FORMAT,
                           "%s: Precompiled precompiled_charsmap is truncated: its trie is %u "
                           "bytes but only %zu follow",
                           what, trie_size, n - 4);
    /* spm_precompiled reads trie_size / 4 units and starts the blob right
     * after trie_size bytes */
    m->n_units = trie_size / 4;
    if (m->n_units == 0)
        return ember_error(EMBER_E_FORMAT, "%s: Precompiled precompiled_charsmap has an empty trie",
                           what);
    m->units = ember_malloc(m->n_units * sizeof *m->units, "precompiled_charsmap");
    if (!m->units)
        return EMBER_E_NOMEM;
    for (size_t i = 0; i < m->n_units; i++) {
        const uint8_t *p = raw + 4 + 4 * i;
        m->units[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                      (uint32_t)p[3] << 24;
    }
    const uint8_t *blob = raw + 4 + trie_size;
    m->blob_len = n - 4 - trie_size;
    size_t bad = utf8_valid_prefix(blob, m->blob_len);
    if (bad != m->blob_len) {
        ember_tok_charsmap_free(m);
        return ember_error(EMBER_E_FORMAT,
                           "%s: Precompiled precompiled_charsmap: the normalized strings are not "
                           "valid UTF-8 (byte %zu of %zu)",
                           what, bad, n - 4 - (size_t)trie_size);
    }
    m->blob = ember_malloc(m->blob_len + 1, "precompiled_charsmap");
    if (!m->blob) {
        ember_tok_charsmap_free(m);
        return EMBER_E_NOMEM;
    }
    memcpy(m->blob, blob, m->blob_len);
    m->blob[m->blob_len] = '\0';
    return EMBER_OK;
}

ember_status ember_tok_precompiled_parse(const json_t *j, tok_charsmap *m, const char *what) {
    const json_t *v = json_object_get(j, "precompiled_charsmap");
    if (!json_is_string(v))
        return ember_error(EMBER_E_FORMAT,
                           "%s: Precompiled 'precompiled_charsmap' must be a base64 string", what);
    uint8_t *raw = NULL;
    size_t n = 0;
    EMBER_TRY(b64_decode(json_string_value(v), json_string_length(v), &raw, &n, what));
    ember_status st = ember_tok_charsmap_load(raw, n, m, what);
    free(raw);
    return st;
}

void ember_tok_charsmap_free(tok_charsmap *m) {
    free(m->units);
    free(m->blob);
    memset(m, 0, sizeof *m);
}

/* ---- lookup ----------------------------------------------------------------- */

/* darts-clone unit fields */
static inline uint32_t u_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static inline uint32_t u_label(uint32_t u) { return u & ((1u << 31) | 0xFFu); }
static inline bool u_has_leaf(uint32_t u) { return (u >> 8) & 1u; }

/* The replacement of the shortest key that prefixes key[0, n) (spm_precompiled
 * transform: results[0] of common_prefix_search, which stops at a NUL byte);
 * false when none. */
static bool cmap_lookup(const tok_charsmap *m, const uint8_t *key, size_t n, const char **out,
                        size_t *out_len) {
    size_t pos = u_offset(m->units[0]);
    for (size_t i = 0; i < n && key[i]; i++) {
        pos ^= key[i];
        if (pos >= m->n_units)
            return false;
        uint32_t u = m->units[pos];
        if (u_label(u) != key[i])
            return false;
        pos ^= u_offset(u);
        if (u_has_leaf(u)) {
            if (pos >= m->n_units)
                return false;
            size_t idx = m->units[pos] & 0x7FFFFFFFu;
            if (idx > m->blob_len || (idx < m->blob_len && ((uint8_t)m->blob[idx] & 0xC0) == 0x80))
                return false; /* HF would panic slicing the blob here */
            *out = m->blob + idx;
            *out_len = strlen(m->blob + idx); /* the blob is NUL-terminated */
            return true;
        }
    }
    return false;
}

/* ---- normalizing -------------------------------------------------------------- */

/* precompiled.rs replace(): the new characters with change 0; extra ones
 * are marked inserted (1) from the end; a shrink is added to the last entry
 * of the whole list, which is the previous character's when the replacement
 * is empty (and lost when the list is empty, as in HF). */
static ember_status replace(ember_encoding *enc, size_t *n, size_t old_count, const char *s,
                            size_t sl) {
    size_t new_count = 0;
    EMBER_TRY(TOK_GROW(enc->chg, enc->chg_cap, *n + sl + 1));
    for (size_t i = 0; i < sl;) {
        int l;
        uint32_t c = ember_tok_utf8_dec((const uint8_t *)s + i, sl - i, &l);
        enc->chg[(*n)++] = (tok_change){c, 0};
        new_count++;
        i += (size_t)l;
    }
    if (new_count > old_count) {
        for (size_t k = 0; k < new_count - old_count; k++)
            enc->chg[*n - 1 - k].change = 1;
    } else if (new_count < old_count && *n > 0) {
        enc->chg[*n - 1].change -= (int32_t)(old_count - new_count);
    }
    return EMBER_OK;
}

ember_status ember_tok_precompiled_run(const tok_charsmap *m, ember_encoding *enc,
                                       const tok_nstr *in, uint32_t shift, tok_nstr *out) {
    const uint8_t *b = (const uint8_t *)in->b;
    size_t n = 0;
    bool modified = false;
    EMBER_TRY(TOK_GROW(enc->chg, enc->chg_cap, in->len + 1));
    utf8proc_int32_t state = 0;
    size_t i = 0;
    while (i < in->len) {
        /* one extended grapheme cluster [gs, ge) of gc characters */
        size_t gs = i, gc = 0;
        int l;
        uint32_t prev = ember_tok_utf8_dec(b + i, in->len - i, &l);
        i += (size_t)l;
        gc++;
        while (i < in->len) {
            uint32_t c = ember_tok_utf8_dec(b + i, in->len - i, &l);
            if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev, (utf8proc_int32_t)c,
                                                 &state))
                break;
            prev = c;
            i += (size_t)l;
            gc++;
        }
        size_t ge = i;
        const char *rs;
        size_t rl;
        if (ge - gs < 6 && cmap_lookup(m, b + gs, ge - gs, &rs, &rl)) {
            modified = true;
            EMBER_TRY(replace(enc, &n, gc, rs, rl));
            continue;
        }
        for (size_t k = gs; k < ge; k += (size_t)l) {
            uint32_t c = ember_tok_utf8_dec(b + k, ge - k, &l);
            /* a one-character cluster shorter than 6 bytes was looked up above */
            if (!(gc == 1 && ge - gs < 6) && cmap_lookup(m, b + k, (size_t)l, &rs, &rl)) {
                modified = true;
                EMBER_TRY(replace(enc, &n, 1, rs, rl));
            } else {
                EMBER_TRY(TOK_GROW(enc->chg, enc->chg_cap, n + 1));
                enc->chg[n++] = (tok_change){c, 0};
            }
        }
    }
    if (!modified) {
        EMBER_TRY(ember_tok_nstr_reserve(out, in->len));
        memcpy(out->b + out->len, in->b, in->len);
        memcpy(out->al + out->len, in->al, in->len * sizeof(tok_span));
        out->len += in->len;
        return EMBER_OK;
    }
    return ember_tok_transform(in, 0, in->len, shift, enc->chg, n, 0, out);
}
