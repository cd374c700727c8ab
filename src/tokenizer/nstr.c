/*
 * nstr.c — the building blocks under every stage: growable arrays, the
 * normalized string with per-byte alignments, HF's transform() that keeps
 * those alignments right when characters are replaced, inserted or removed,
 * and the open-addressing string -> id map used for vocabularies.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"

ember_status ember_tok_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return EMBER_OK;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 4 / elem)
            return ember_error(EMBER_E_NOMEM, "tokenizer buffer too large");
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q)
        return ember_error(EMBER_E_NOMEM, "out of memory growing a tokenizer buffer to %zu bytes",
                           c * elem);
    *p = q;
    *cap = c;
    return EMBER_OK;
}

ember_status ember_tok_nstr_reserve(tok_nstr *n, size_t extra) {
    size_t need = n->len + extra + 1;
    if (need <= n->cap)
        return EMBER_OK;
    size_t c1 = n->cap, c2 = n->cap;
    EMBER_TRY(TOK_GROW(n->b, c1, need));
    EMBER_TRY(TOK_GROW(n->al, c2, need));
    n->cap = c1 < c2 ? c1 : c2;
    return EMBER_OK;
}

void ember_tok_nstr_free(tok_nstr *n) {
    free(n->b);
    free(n->al);
    memset(n, 0, sizeof *n);
}

ember_status ember_tok_transform(const tok_nstr *in, size_t ns, size_t ne, uint32_t shift,
                                 const tok_change *chg, size_t n_chg, size_t initial_offset,
                                 tok_nstr *out) {
    /* Mirrors NormalizedString::transform_range: `idx` walks the replaced
     * characters; an inserted character copies the alignment of the byte
     * just before idx, i.e. of the previous original character. */
    EMBER_TRY(ember_tok_nstr_reserve(out, n_chg * 4));
    const uint8_t *b = (const uint8_t *)in->b;
    size_t idx = ns;
    for (size_t k = 0; k < initial_offset && idx < ne; k++)
        idx += (size_t)ember_tok_lead_len(b[idx]);
    for (size_t k = 0; k < n_chg; k++) {
        tok_span a;
        int32_t c = chg[k].change;
        if (c > 0) {
            a = idx > ns ? in->al[idx - 1] : (tok_span){shift, shift};
        } else {
            a = idx < ne ? in->al[idx] : (idx > ns ? in->al[idx - 1] : (tok_span){shift, shift});
            if (idx < ne)
                idx += (size_t)ember_tok_lead_len(b[idx]);
            for (int32_t r = 0; r < -c && idx < ne; r++)
                idx += (size_t)ember_tok_lead_len(b[idx]);
        }
        ember_tok_nstr_put(out, chg[k].cp, a);
    }
    return EMBER_OK;
}

/* ---- hashing and the vocabulary map -------------------------------------- */

uint32_t ember_tok_hash(const void *p, size_t n) {
    /* Eight bytes per step with a multiply-xorshift mix: vocabulary keys are
     * short and hashed for every lookup, so this is on the hot path. */
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    return (uint32_t)h ^ (uint32_t)(h >> 32);
}

static ember_status vocab_rehash(tok_vocab *v, uint32_t size) {
    struct tok_vent *t = calloc(size, sizeof *t);
    if (!t)
        return ember_error(EMBER_E_NOMEM, "out of memory for a vocabulary table");
    for (uint32_t i = 0; i < size; i++)
        t[i].id = -1;
    if (v->tab) {
        for (uint32_t i = 0; i <= v->mask; i++) {
            if (v->tab[i].id < 0)
                continue;
            uint32_t j = v->tab[i].hash & (size - 1);
            while (t[j].id >= 0)
                j = (j + 1) & (size - 1);
            t[j] = v->tab[i];
        }
        free(v->tab);
    }
    v->tab = t;
    v->mask = size - 1;
    return EMBER_OK;
}

ember_status ember_tok_vocab_put(tok_vocab *v, const char *key, size_t len, int32_t id) {
    if (len > UINT32_MAX / 2 || id < 0)
        return ember_error(EMBER_E_FORMAT, "vocabulary entry too long or negative id");
    if (!v->tab || (v->count + 1) * 2 > v->mask + 1)
        EMBER_TRY(vocab_rehash(v, v->tab ? (v->mask + 1) * 2 : 1024));
    uint32_t h = ember_tok_hash(key, len);
    uint32_t j = h & v->mask;
    while (v->tab[j].id >= 0) {
        struct tok_vent *e = &v->tab[j];
        if (e->hash == h && e->len == len && memcmp(v->strs + e->off, key, len) == 0) {
            e->id = id;
            if (id > v->max_id)
                v->max_id = id;
            return EMBER_OK;
        }
        j = (j + 1) & v->mask;
    }
    size_t need = v->strs_len + len + 1;
    if (need > UINT32_MAX)
        return ember_error(EMBER_E_FORMAT, "vocabulary too large");
    EMBER_TRY(TOK_GROW(v->strs, v->strs_cap, need));
    memcpy(v->strs + v->strs_len, key, len);
    v->strs[v->strs_len + len] = '\0';
    v->tab[j] = (struct tok_vent){h, (uint32_t)len, (uint32_t)v->strs_len, id};
    v->strs_len = need;
    v->count++;
    if (id > v->max_id)
        v->max_id = id;
    if (len > v->max_len)
        v->max_len = (uint32_t)len;
    return EMBER_OK;
}

int32_t ember_tok_vocab_get2(const tok_vocab *v, const char *a, size_t alen, const char *b,
                             size_t blen, const char **key) {
    if (!v->tab || alen + blen > v->max_len)
        return -1;
    size_t len = alen + blen;
    char stack[256];
    char *k = stack;
    if (alen > 0) {
        /* Keys longer than 256 bytes only exist in unusual vocabularies. */
        if (len > sizeof stack && !(k = malloc(len)))
            return -1;
        memcpy(k, a, alen);
        memcpy(k + alen, b, blen);
    } else {
        k = (char *)b;
    }
    uint32_t h = ember_tok_hash(k, len);
    uint32_t j = h & v->mask;
    int32_t id = -1;
    for (;;) {
        const struct tok_vent *e = &v->tab[j];
        if (e->id < 0)
            break;
        if (e->hash == h && e->len == len && memcmp(v->strs + e->off, k, len) == 0) {
            if (key)
                *key = v->strs + e->off;
            id = e->id;
            break;
        }
        j = (j + 1) & v->mask;
    }
    if (k != stack && k != b)
        free(k);
    return id;
}

void ember_tok_vocab_free(tok_vocab *v) {
    free(v->tab);
    free(v->strs);
    memset(v, 0, sizeof *v);
}
