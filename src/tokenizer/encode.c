/*
 * encode.c — ember_tokenize() and the ember_encoding object: the pipeline of
 * Tokenizer::encode (tokenizer/mod.rs in huggingface/tokenizers) over the
 * stages of the other files, plus what HF leaves to its callers: invalid
 * UTF-8 replacement, Python lowercasing, and mapping offsets back to the
 * caller's bytes and code points.
 *
 * All memory is owned by the encoding and reused across calls, so steady-state
 * tokenization allocates nothing.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"

ember_status ember_encoding_new(ember_encoding **out) {
    ember_error_clear();
    if (!out)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_encoding_new: out is NULL");
    *out = ember_calloc(1, sizeof **out, "encoding");
    return *out ? EMBER_OK : EMBER_E_NOMEM;
}

void ember_encoding_free(ember_encoding *e) {
    if (!e)
        return;
    free(e->ids);
    free(e->boff);
    free(e->coff);
    free(e->special);
    free(e->tok);
    free(e->cids);
    free(e->cspan);
    free(e->cstr);
    free(e->carena);
    free(e->arena);
    free(e->work);
    free(e->wmap);
    free(e->work2);
    free(e->wmap2);
    free(e->cidx);
    for (int i = 0; i < 3; i++)
        ember_tok_nstr_free(&e->nb[i]);
    ember_tok_nstr_free(&e->piece);
    ember_tok_nstr_free(&e->ntmp[0]);
    ember_tok_nstr_free(&e->ntmp[1]);
    free(e->seg);
    free(e->sp[0]);
    free(e->sp[1]);
    free(e->chg);
    free(e->cps);
    free(e->flagbuf);
    free(e->syms);
    free(e->heap);
    free(e->key);
    free(e->bc_tab);
    free(e->bc_arena);
    free(e->uni);
    free(e->uni_path);
    if (e->md)
        pcre2_match_data_free((pcre2_match_data *)e->md);
    free(e);
}

ember_tokenize_options ember_tokenize_default_options(void) {
    ember_tokenize_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.add_special_tokens = 1;
    o.max_length = 0;
    o.truncation_side = EMBER_TRUNCATE_RIGHT;
    o.lowercase = -1;
    return o;
}

ember_status ember_tok_arena_add(ember_encoding *enc, const char *s, size_t n, uint32_t *off) {
    if (enc->arena_len + n + 1 > UINT32_MAX)
        return ember_error(EMBER_E_NOMEM, "token string arena overflow");
    EMBER_TRY(TOK_GROW(enc->arena, enc->arena_cap, enc->arena_len + n + 1));
    memcpy(enc->arena + enc->arena_len, s, n);
    enc->arena[enc->arena_len + n] = '\0';
    *off = (uint32_t)enc->arena_len;
    enc->arena_len += n + 1;
    return EMBER_OK;
}

/* ---- invalid UTF-8 ------------------------------------------------------------ */

/* Length of the valid sequence at s[i], or -(maximal ill-formed subpart). */
static int utf8_check(const uint8_t *s, size_t n, size_t i) {
    uint8_t b = s[i];
    if (b < 0x80)
        return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else
        return -1;
    size_t k = 1;
    for (int q = 0; q < need; q++, k++) {
        if (i + k >= n)
            return -(int)k;
        uint8_t c = s[i + k];
        if (c < lo || c > hi)
            return -(int)k;
        lo = 0x80;
        hi = 0xBF;
    }
    return (int)k;
}

/* Fills enc->cidx (caller byte -> code point index, an ill-formed subpart
 * counting as one) when the text is not ASCII, and replaces ill-formed
 * subparts by U+FFFD into enc->work with a map when needed. */
static ember_status prepare_text(ember_encoding *enc, const char *text, size_t len,
                                 const char **w, size_t *wn, const tok_span **map, bool *ascii) {
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    while (i < len && s[i] < 0x80)
        i++;
    *w = text;
    *wn = len;
    *map = NULL;
    *ascii = i == len;
    if (*ascii)
        return EMBER_OK;
    EMBER_TRY(TOK_GROW(enc->cidx, enc->cidx_cap, len + 1));
    int64_t *cidx = enc->cidx;
    for (size_t k = 0; k < i; k++)
        cidx[k] = (int64_t)k;
    int64_t ci = (int64_t)i;
    bool bad = false;
    for (size_t k = i; k < len;) {
        int l = utf8_check(s, len, k);
        size_t L = (size_t)(l < 0 ? -l : l);
        bad |= l < 0;
        for (size_t q = 0; q < L; q++)
            cidx[k + q] = ci;
        ci++;
        k += L;
    }
    cidx[len] = ci;
    if (!bad)
        return EMBER_OK;
    enc->flags |= EMBER_ENCODING_INVALID_UTF8;
    size_t cap = len * 3 + 4;
    EMBER_TRY(TOK_GROW(enc->work, enc->work_cap, cap));
    EMBER_TRY(TOK_GROW(enc->wmap, enc->wmap_cap, cap));
    size_t o = 0;
    for (size_t k = 0; k < len;) {
        int l = utf8_check(s, len, k);
        if (l > 0) {
            for (int q = 0; q < l; q++) {
                enc->work[o] = (char)s[k + (size_t)q];
                enc->wmap[o++] = (tok_span){(uint32_t)k, (uint32_t)(k + (size_t)l)};
            }
            k += (size_t)l;
        } else {
            o += (size_t)ember_tok_utf8_enc(0xFFFD, enc->work + o);
            for (int q = 0; q < 3; q++)
                enc->wmap[o - 3 + (size_t)q] = (tok_span){(uint32_t)k, (uint32_t)(k + (size_t)-l)};
            k += (size_t)-l;
        }
    }
    *w = enc->work;
    *wn = o;
    *map = enc->wmap;
    return EMBER_OK;
}

/* ---- the pipeline ----------------------------------------------------------------- */

static ember_status load_piece(ember_encoding *enc, const char *w, uint32_t ns, uint32_t ne) {
    tok_nstr *p = &enc->piece;
    p->len = 0;
    EMBER_TRY(ember_tok_nstr_reserve(p, ne - ns));
    memcpy(p->b, w + ns, ne - ns);
    const uint8_t *b = (const uint8_t *)w;
    for (uint32_t i = ns; i < ne;) {
        uint32_t l = b[i] < 0x80 ? 1 : (uint32_t)ember_tok_lead_len(b[i]);
        if (i + l > ne)
            l = ne - i;
        for (uint32_t q = 0; q < l; q++)
            p->al[i - ns + q] = (tok_span){i, i + l};
        i += l;
    }
    p->len = ne - ns;
    return EMBER_OK;
}

static ember_status run(const ember_tokenizer *t, ember_encoding *enc, const char *w, size_t wn) {
    if (wn > UINT32_MAX / 8)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "text of %zu bytes is too long to tokenize",
                           wn);
    /* 1. added tokens matched in the raw text */
    enc->sp_n[0] = enc->sp_n[1] = 0;
    EMBER_TRY(ember_tok_added_split(t, &t->trie_raw, w, NULL, wn, 0, enc, 0));
    /* 2. normalize each remaining piece, then match normalized added tokens */
    tok_nstr *nb = &enc->nb[0];
    nb->len = 0;
    for (size_t k = 0; k < enc->sp_n[0]; k++) {
        tok_split s = enc->sp[0][k];
        if (s.id >= 0) {
            size_t q = enc->sp_n[1];
            if (q + 1 > enc->sp_cap[1])
                EMBER_TRY(TOK_GROW(enc->sp[1], enc->sp_cap[1], q + 1));
            enc->sp[1][q] = s;
            enc->sp_n[1] = q + 1;
            continue;
        }
        EMBER_TRY(load_piece(enc, w, s.ns, s.ne));
        size_t start = nb->len;
        if (t->has_norm) {
            EMBER_TRY(ember_tok_normalize(&t->norm, enc, &enc->piece, s.shift, nb));
        } else {
            EMBER_TRY(ember_tok_nstr_reserve(nb, enc->piece.len));
            memcpy(nb->b + nb->len, enc->piece.b, enc->piece.len);
            memcpy(nb->al + nb->len, enc->piece.al, enc->piece.len * sizeof(tok_span));
            nb->len += enc->piece.len;
        }
        if (nb->len > UINT32_MAX / 8)
            return ember_error(EMBER_E_INVALID_ARGUMENT, "normalized text too long");
        if (nb->len > start) /* an empty piece yields nothing (and nb->b may be NULL) */
            EMBER_TRY(ember_tok_added_split(t, &t->trie_norm, nb->b + start, nb->al + start,
                                            nb->len - start, (uint32_t)start, enc, 1));
    }
    /* 3. pre-tokenize */
    int cur = 1, buf = 0;
    if (t->has_pre)
        EMBER_TRY(ember_tok_pretokenize(t, &t->pre, enc, &cur, &buf));
    /* 4. model */
    enc->cn = 0;
    for (size_t k = 0; k < enc->sp_n[cur]; k++) {
        const tok_split *s = &enc->sp[cur][k];
        if (s->id >= 0)
            EMBER_TRY(ember_tok_push(enc, s->id, (tok_span){s->os, s->oe}, NULL, s->str_off));
        else
            EMBER_TRY(ember_tok_model_run(&t->model, enc, &enc->nb[buf], s->ns, s->ne, s->shift));
    }
    return EMBER_OK;
}

ember_status ember_tokenize(const ember_tokenizer *tok, const char *text, size_t len,
                            const ember_tokenize_options *opts, ember_encoding *enc) {
    ember_error_clear();
    if (!tok || !enc || (!text && len > 0))
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_tokenize: NULL argument");
    ember_tokenize_options o = ember_tokenize_default_options();
    if (opts) {
        if (opts->struct_size < sizeof(uint32_t) || opts->struct_size > sizeof o)
            return ember_error(EMBER_E_INVALID_ARGUMENT,
                               "ember_tokenize: options struct_size %u is not valid",
                               (unsigned)opts->struct_size);
        memcpy(&o, opts, opts->struct_size);
    }
    if (o.max_length < 0)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_tokenize: max_length %d is negative",
                           (int)o.max_length);
    if (o.truncation_side != EMBER_TRUNCATE_RIGHT && o.truncation_side != EMBER_TRUNCATE_LEFT)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_tokenize: bad truncation_side");
    if (len > UINT32_MAX / 8)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "text of %zu bytes is too long to tokenize",
                           len);
    enc->n = enc->cn = 0;
    enc->flags = 0;
    enc->untruncated = 0;
    enc->arena_len = 0;
    if (!text)
        text = "";

    const char *w;
    size_t wn;
    const tok_span *map;
    bool ascii;
    ember_status st = prepare_text(enc, text, len, &w, &wn, &map, &ascii);
    bool lower = o.lowercase == 1 || (o.lowercase < 0 && tok->do_lower_case);
    if (st == EMBER_OK && lower) {
        char *lw;
        size_t lwn;
        tok_span *lmap;
        st = ember_tok_py_lower(enc, w, wn, map, &lw, &lwn, &lmap);
        if (st == EMBER_OK) {
            w = lw;
            wn = lwn;
            map = lmap;
        }
    }
    if (st == EMBER_OK)
        st = run(tok, enc, w, wn);
    if (st == EMBER_OK)
        st = ember_tok_post_run(tok, enc, w, o.add_special_tokens != 0, o.max_length,
                                o.truncation_side);
    if (st != EMBER_OK) {
        enc->n = 0;
        return st;
    }
    /* work-text spans -> caller bytes and code points */
    for (int64_t i = 0; i < enc->n; i++) {
        int64_t s = enc->boff[2 * i], e = enc->boff[2 * i + 1];
        if (s < 0) {
            enc->boff[2 * i] = enc->boff[2 * i + 1] = 0;
            enc->coff[2 * i] = enc->coff[2 * i + 1] = 0;
            continue;
        }
        if (map) {
            int64_t os = (size_t)s < wn ? map[s].s : (int64_t)len;
            int64_t oe = e > s ? map[e - 1].e : os;
            s = os;
            e = oe;
        }
        enc->boff[2 * i] = s;
        enc->boff[2 * i + 1] = e;
        if (ascii) {
            enc->coff[2 * i] = s;
            enc->coff[2 * i + 1] = e;
        } else {
            enc->coff[2 * i] = enc->cidx[s];
            enc->coff[2 * i + 1] = enc->cidx[e];
        }
    }
    return EMBER_OK;
}

/* ---- accessors --------------------------------------------------------------------- */

int64_t ember_encoding_length(const ember_encoding *enc) { return enc ? enc->n : 0; }
const int32_t *ember_encoding_ids(const ember_encoding *enc) { return enc ? enc->ids : NULL; }
const int64_t *ember_encoding_byte_offsets(const ember_encoding *enc) {
    return enc ? enc->boff : NULL;
}
const int64_t *ember_encoding_char_offsets(const ember_encoding *enc) {
    return enc ? enc->coff : NULL;
}
const uint8_t *ember_encoding_special_mask(const ember_encoding *enc) {
    return enc ? enc->special : NULL;
}
const char *ember_encoding_token(const ember_encoding *enc, int64_t i) {
    if (!enc || i < 0 || i >= enc->n)
        return NULL;
    return enc->tok[i] ? enc->tok[i] : "";
}
uint32_t ember_encoding_flags(const ember_encoding *enc) { return enc ? enc->flags : 0; }
int64_t ember_encoding_untruncated_length(const ember_encoding *enc) {
    return enc ? enc->untruncated : 0;
}
