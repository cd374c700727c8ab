/*
 * normalizers.c — the `normalizer` section of tokenizer.json: BertNormalizer,
 * NFC/NFD/NFKC/NFKD, Lowercase, StripAccents, Replace, Prepend, Strip,
 * Precompiled (precompiled.c) and Sequence, each rewriting a normalized
 * string while keeping HF's alignments (see normalizers/ (*.rs) and
 * tokenizer/normalizer.rs in huggingface/tokenizers).
 *
 * Each step reads one tok_nstr and appends to another. Pure-ASCII input takes
 * a direct byte loop where the result is obviously the same (BERT cleaning and
 * lowercasing, Unicode normal forms), because that is most text.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/util.h"
#include "internal.h"
#include "io/json.h"

/* ---- parsing ---------------------------------------------------------------- */

static ember_status get_bool(const json_t *j, const char *key, bool def, bool *out,
                             const char *what) {
    ember_status st = ember_json_bool(j, key, what, out);
    if (st == EMBER_E_NOT_FOUND) {
        *out = def;
        return EMBER_OK;
    }
    return st;
}

/* Reads {"String": s} or {"Regex": r} into r. */
ember_status ember_tok_pattern_parse(const json_t *j, tok_regex *r, const char *what);
ember_status ember_tok_pattern_parse(const json_t *j, tok_regex *r, const char *what) {
    if (!json_is_object(j))
        return ember_error(EMBER_E_FORMAT, "%s: 'pattern' must be an object, found %s", what,
                           ember_json_type_name(j));
    const json_t *s = json_object_get(j, "String");
    const json_t *re = json_object_get(j, "Regex");
    if (s && json_is_string(s))
        return ember_tok_regex_compile(r, json_string_value(s), json_string_length(s), true, what);
    if (re && json_is_string(re))
        return ember_tok_regex_compile(r, json_string_value(re), json_string_length(re), false,
                                       what);
    return ember_error(EMBER_E_FORMAT, "%s: 'pattern' must be {\"String\": ...} or {\"Regex\": ...}",
                       what);
}

static ember_status dup_str(const json_t *j, const char *key, const char *what, char **out,
                            size_t *len) {
    const json_t *v = json_object_get(j, key);
    if (!v || !json_is_string(v))
        return ember_error(EMBER_E_FORMAT, "%s: '%s' must be a string, found %s", what, key,
                           ember_json_type_name(v));
    *len = json_string_length(v);
    *out = ember_strndup(json_string_value(v), *len);
    return *out ? EMBER_OK : EMBER_E_NOMEM;
}

ember_status ember_tok_norm_parse(const json_t *j, tok_norm *n, const char *what) {
    memset(n, 0, sizeof *n);
    if (!json_is_object(j))
        return ember_error(EMBER_E_FORMAT, "%s: normalizer must be an object, found %s", what,
                           ember_json_type_name(j));
    const char *type = NULL;
    if (ember_json_str(j, "type", what, &type) != EMBER_OK)
        return ember_error(EMBER_E_FORMAT, "%s: normalizer has no 'type' string", what);
    if (!strcmp(type, "BertNormalizer")) {
        n->kind = TOK_N_BERT;
        EMBER_TRY(get_bool(j, "clean_text", true, &n->clean_text, what));
        EMBER_TRY(get_bool(j, "handle_chinese_chars", true, &n->chinese, what));
        EMBER_TRY(get_bool(j, "lowercase", true, &n->lowercase, what));
        /* strip_accents: null means "follow lowercase" (normalizers/bert.rs). */
        EMBER_TRY(get_bool(j, "strip_accents", n->lowercase, &n->strip_accents, what));
    } else if (!strcmp(type, "NFC")) {
        n->kind = TOK_N_NFC;
    } else if (!strcmp(type, "NFD")) {
        n->kind = TOK_N_NFD;
    } else if (!strcmp(type, "NFKC")) {
        n->kind = TOK_N_NFKC;
    } else if (!strcmp(type, "NFKD")) {
        n->kind = TOK_N_NFKD;
    } else if (!strcmp(type, "Lowercase")) {
        n->kind = TOK_N_LOWER;
    } else if (!strcmp(type, "StripAccents")) {
        n->kind = TOK_N_STRIP_ACCENTS;
    } else if (!strcmp(type, "Replace")) {
        n->kind = TOK_N_REPLACE;
        EMBER_TRY(ember_tok_pattern_parse(json_object_get(j, "pattern"), &n->pat, what));
        EMBER_TRY(dup_str(j, "content", what, &n->content, &n->content_len));
    } else if (!strcmp(type, "Prepend")) {
        n->kind = TOK_N_PREPEND;
        EMBER_TRY(dup_str(j, "prepend", what, &n->content, &n->content_len));
    } else if (!strcmp(type, "Strip")) {
        n->kind = TOK_N_STRIP;
        EMBER_TRY(get_bool(j, "strip_left", true, &n->left, what));
        EMBER_TRY(get_bool(j, "strip_right", true, &n->right, what));
    } else if (!strcmp(type, "Precompiled")) {
        n->kind = TOK_N_PRECOMPILED;
        EMBER_TRY(ember_tok_precompiled_parse(j, &n->cmap, what));
    } else if (!strcmp(type, "Sequence")) {
        n->kind = TOK_N_SEQ;
        const json_t *arr = json_object_get(j, "normalizers");
        if (!json_is_array(arr))
            return ember_error(EMBER_E_FORMAT, "%s: Sequence 'normalizers' must be an array", what);
        size_t cnt = json_array_size(arr);
        if (cnt > 64)
            return ember_error(EMBER_E_FORMAT, "%s: Sequence of %zu normalizers is too long", what,
                               cnt);
        n->sub = ember_calloc(cnt ? cnt : 1, sizeof *n->sub, "normalizers");
        if (!n->sub)
            return EMBER_E_NOMEM;
        for (size_t i = 0; i < cnt; i++) {
            ember_status st = ember_tok_norm_parse(json_array_get(arr, i), &n->sub[i], what);
            n->n_sub = (int)i + 1;
            if (st != EMBER_OK)
                return st;
        }
    } else {
        return ember_error(EMBER_E_UNSUPPORTED, "%s: normalizer type '%s' is not supported", what,
                           type);
    }
    return EMBER_OK;
}

void ember_tok_norm_free(tok_norm *n) {
    for (int i = 0; i < n->n_sub; i++)
        ember_tok_norm_free(&n->sub[i]);
    free(n->sub);
    free(n->content);
    ember_tok_regex_free(&n->pat);
    ember_tok_charsmap_free(&n->cmap);
    memset(n, 0, sizeof *n);
}

/* ---- steps ---------------------------------------------------------------- */

static bool all_ascii(const tok_nstr *in) {
    for (size_t i = 0; i < in->len; i++)
        if ((uint8_t)in->b[i] >= 0x80)
            return false;
    return true;
}

static inline uint32_t next_cp(const tok_nstr *in, size_t i, size_t *l) {
    int k;
    uint32_t c = ember_tok_utf8_dec((const uint8_t *)in->b + i, in->len - i, &k);
    *l = (size_t)k;
    return c;
}

static bool is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static ember_status step_clean(const tok_nstr *in, tok_nstr *out) {
    EMBER_TRY(ember_tok_nstr_reserve(out, in->len));
    for (size_t i = 0, l = 0; i < in->len; i += l) {
        uint32_t c = next_cp(in, i, &l);
        /* NUL, U+FFFD and the Cc/Cf/Co of HF's (old) Unicode tables, except
         * \t \n \r; unassigned code points are kept */
        if (ember_tok_is_deleted(c))
            continue;
        ember_tok_nstr_put(out, ember_tok_is_ws(c) ? ' ' : c, in->al[i]);
    }
    return EMBER_OK;
}

static ember_status step_chinese(const tok_nstr *in, tok_nstr *out) {
    EMBER_TRY(ember_tok_nstr_reserve(out, in->len * 3));
    for (size_t i = 0, l = 0; i < in->len; i += l) {
        uint32_t c = next_cp(in, i, &l);
        if (is_chinese(c)) {
            /* HF emits (' ', 0), (c, 1), (' ', 1): both spaces and the
             * character take the character's span */
            ember_tok_nstr_put(out, ' ', in->al[i]);
            ember_tok_nstr_put(out, c, in->al[i]);
            ember_tok_nstr_put(out, ' ', in->al[i]);
        } else {
            ember_tok_nstr_put(out, c, in->al[i]);
        }
    }
    return EMBER_OK;
}

static ember_status step_filter_mn(const tok_nstr *in, bool any_mark, tok_nstr *out) {
    EMBER_TRY(ember_tok_nstr_reserve(out, in->len));
    for (size_t i = 0, l = 0; i < in->len; i += l) {
        uint32_t c = next_cp(in, i, &l);
        if (!(any_mark ? ember_tok_is_mark(c) : ember_tok_is_mn(c)))
            ember_tok_nstr_put(out, c, in->al[i]);
    }
    return EMBER_OK;
}

static ember_status step_lower(const tok_nstr *in, tok_nstr *out) {
    EMBER_TRY(ember_tok_nstr_reserve(out, in->len * 2));
    for (size_t i = 0, l = 0; i < in->len; i += l) {
        uint32_t c = next_cp(in, i, &l);
        uint32_t lo[2];
        int k = ember_tok_rust_lower(c, lo);
        for (int q = 0; q < k; q++)
            ember_tok_nstr_put(out, lo[q], in->al[i]);
    }
    return EMBER_OK;
}

static ember_status step_strip(const tok_nstr *in, bool left, bool right, tok_nstr *out) {
    size_t s = 0, e = in->len;
    if (left) {
        while (s < e) {
            int l;
            uint32_t c = ember_tok_utf8_dec((const uint8_t *)in->b + s, e - s, &l);
            if (!ember_tok_is_ws(c))
                break;
            s += (size_t)l;
        }
    }
    if (right) {
        while (e > s) {
            size_t p = e - 1;
            while (p > s && ((uint8_t)in->b[p] & 0xC0) == 0x80)
                p--;
            int l;
            uint32_t c = ember_tok_utf8_dec((const uint8_t *)in->b + p, e - p, &l);
            if (!ember_tok_is_ws(c))
                break;
            e = p;
        }
    }
    EMBER_TRY(ember_tok_nstr_reserve(out, e - s));
    memcpy(out->b + out->len, in->b + s, e - s);
    memcpy(out->al + out->len, in->al + s, (e - s) * sizeof(tok_span));
    out->len += e - s;
    return EMBER_OK;
}

static ember_status step_prepend(const tok_nstr *in, const char *p, size_t plen, tok_nstr *out) {
    if (in->len == 0)
        return EMBER_OK;
    /* NormalizedString::prepend: the new characters share the alignment of
     * the first character. */
    EMBER_TRY(ember_tok_nstr_reserve(out, plen + in->len));
    memcpy(out->b + out->len, p, plen);
    for (size_t i = 0; i < plen; i++)
        out->al[out->len + i] = in->al[0];
    out->len += plen;
    memcpy(out->b + out->len, in->b, in->len);
    memcpy(out->al + out->len, in->al, in->len * sizeof(tok_span));
    out->len += in->len;
    return EMBER_OK;
}

static ember_status step_replace(const tok_norm *n, ember_encoding *enc, const tok_nstr *in,
                                 uint32_t shift, tok_nstr *out) {
    size_t pos = 0, from = 0;
    while (from <= in->len) {
        size_t ms, me;
        ember_status st = ember_tok_regex_next(&n->pat, enc, in->b, in->len, from, &ms, &me);
        if (st == EMBER_E_NOT_FOUND)
            break;
        EMBER_TRY(st);
        EMBER_TRY(ember_tok_nstr_reserve(out, (ms - pos) + n->content_len));
        memcpy(out->b + out->len, in->b + pos, ms - pos);
        memcpy(out->al + out->len, in->al + pos, (ms - pos) * sizeof(tok_span));
        out->len += ms - pos;
        /* Replacement characters are "inserted" after the removed match:
         * they take the alignment of its last byte (transform_range). */
        tok_span a = me > 0 ? in->al[me - 1] : (tok_span){shift, shift};
        memcpy(out->b + out->len, n->content, n->content_len);
        for (size_t k = 0; k < n->content_len; k++)
            out->al[out->len + k] = a;
        out->len += n->content_len;
        pos = me;
        if (me == ms) {
            if (me >= in->len)
                break;
            from = me + (size_t)ember_tok_lead_len((uint8_t)in->b[me]);
        } else {
            from = me;
        }
    }
    EMBER_TRY(ember_tok_nstr_reserve(out, in->len - pos));
    memcpy(out->b + out->len, in->b + pos, in->len - pos);
    memcpy(out->al + out->len, in->al + pos, (in->len - pos) * sizeof(tok_span));
    out->len += in->len - pos;
    return EMBER_OK;
}

/* Canonical ordering of the non-starters in chg[from, to): a stable sort by
 * combining class, as unicode-normalization's Decompositions::sort_pending. */
static void sort_pending(tok_change *chg, size_t from, size_t to) {
    for (size_t i = from + 1; i < to; i++) {
        tok_change x = chg[i];
        int cx = ember_tok_ccc(x.cp);
        size_t j = i;
        while (j > from && ember_tok_ccc(chg[j - 1].cp) > cx) {
            chg[j] = chg[j - 1];
            j--;
        }
        chg[j] = x;
    }
}

static ember_status decompose_changes(ember_encoding *enc, const tok_nstr *in, bool compat,
                                      size_t *n_out) {
    size_t n = 0, ready = 0;
    EMBER_TRY(TOK_GROW(enc->chg, enc->chg_cap, in->len * 4 + 32));
    for (size_t i = 0, l = 0; i < in->len; i += l) {
        uint32_t c = next_cp(in, i, &l);
        uint32_t d[32];
        int k = ember_tok_decompose(c, compat, d);
        if (n + (size_t)k > enc->chg_cap)
            EMBER_TRY(TOK_GROW(enc->chg, enc->chg_cap, n + (size_t)k + 32));
        for (int q = 0; q < k; q++) {
            if (ember_tok_ccc(d[q]) == 0) {
                sort_pending(enc->chg, ready, n);
                ready = n;
            }
            enc->chg[n++] = (tok_change){d[q], q == 0 ? 0 : 1};
        }
    }
    sort_pending(enc->chg, ready, n);
    *n_out = n;
    return EMBER_OK;
}

/* Canonical composition of chg[0, n) in place (unicode-normalization's
 * Recompositions). A composed character's change absorbs the removed one:
 * change(k) + change(ch) - 1, so the count of consumed originals adds up. */
static size_t recompose(tok_change *chg, size_t n, tok_change *tmp) {
    size_t out = 0, nb = 0;
    bool have_k = false, have_last = false;
    tok_change k = {0, 0};
    int last_ccc = 0;
    for (size_t i = 0; i < n; i++) {
        tok_change ch = chg[i];
        int cc = ember_tok_ccc(ch.cp);
        if (!have_k) {
            if (cc != 0) {
                chg[out++] = ch;
                continue;
            }
            k = ch;
            have_k = true;
            continue;
        }
        if (!have_last) {
            uint32_t r = ember_tok_compose(k.cp, ch.cp);
            if (r) {
                k = (tok_change){r, k.change + ch.change - 1};
                continue;
            }
            if (cc == 0) {
                chg[out++] = k;
                k = ch;
                continue;
            }
            tmp[nb++] = ch;
            last_ccc = cc;
            have_last = true;
            continue;
        }
        if (last_ccc >= cc) {
            if (cc == 0) {
                chg[out++] = k;
                for (size_t q = 0; q < nb; q++)
                    chg[out++] = tmp[q];
                nb = 0;
                k = ch;
                have_last = false;
                continue;
            }
            tmp[nb++] = ch;
            last_ccc = cc;
            continue;
        }
        uint32_t r = ember_tok_compose(k.cp, ch.cp);
        if (r) {
            k = (tok_change){r, k.change + ch.change - 1};
            continue;
        }
        tmp[nb++] = ch;
        last_ccc = cc;
    }
    if (have_k)
        chg[out++] = k;
    for (size_t q = 0; q < nb; q++)
        chg[out++] = tmp[q];
    return out;
}

static ember_status step_unicode(ember_encoding *enc, const tok_nstr *in, uint32_t shift,
                                 bool compose, bool compat, tok_nstr *out) {
    if (all_ascii(in)) {
        EMBER_TRY(ember_tok_nstr_reserve(out, in->len));
        memcpy(out->b + out->len, in->b, in->len);
        memcpy(out->al + out->len, in->al, in->len * sizeof(tok_span));
        out->len += in->len;
        return EMBER_OK;
    }
    size_t n;
    EMBER_TRY(decompose_changes(enc, in, compat, &n));
    if (compose) {
        /* the pending non-starters buffer of recompose() lives in cps */
        EMBER_TRY(TOK_GROW(enc->cps, enc->cps_cap, 2 * n + 2));
        n = recompose(enc->chg, n, (tok_change *)(void *)enc->cps);
    }
    return ember_tok_transform(in, 0, in->len, shift, enc->chg, n, 0, out);
}

static ember_status step_bert_ascii(const tok_norm *n, const tok_nstr *in, tok_nstr *out) {
    EMBER_TRY(ember_tok_nstr_reserve(out, in->len));
    for (size_t i = 0; i < in->len; i++) {
        uint8_t c = (uint8_t)in->b[i];
        if (n->clean_text) {
            if (c == '\t' || c == '\n' || c == '\r')
                c = ' ';
            else if (c < 0x20 || c == 0x7F)
                continue;
        }
        if (n->lowercase && c >= 'A' && c <= 'Z')
            c += 32;
        out->b[out->len] = (char)c;
        out->al[out->len++] = in->al[i];
    }
    return EMBER_OK;
}

/* Runs one step into `out`; `enc->ntmp` are free for Sequence and BERT. */
static ember_status run_step(const tok_norm *n, ember_encoding *enc, const tok_nstr *in,
                             uint32_t shift, tok_nstr *out, int depth);

static ember_status run_chain(ember_encoding *enc, const tok_nstr *in, uint32_t shift,
                              tok_nstr *out, int n_steps,
                              ember_status (*step)(int i, const void *ctx, ember_encoding *enc,
                                                   const tok_nstr *in, uint32_t shift,
                                                   tok_nstr *out),
                              const void *ctx, tok_nstr *tmp) {
    /* Ping-pong through two temporaries; the last step appends to out. */
    const tok_nstr *cur = in;
    int w = 0;
    for (int i = 0; i < n_steps; i++) {
        tok_nstr *dst = (i == n_steps - 1) ? out : &tmp[w];
        if (dst != out)
            dst->len = 0;
        EMBER_TRY(step(i, ctx, enc, cur, shift, dst));
        cur = dst;
        w ^= 1;
    }
    if (n_steps == 0) {
        EMBER_TRY(ember_tok_nstr_reserve(out, in->len));
        memcpy(out->b + out->len, in->b, in->len);
        memcpy(out->al + out->len, in->al, in->len * sizeof(tok_span));
        out->len += in->len;
    }
    return EMBER_OK;
}

static ember_status bert_step(int i, const void *ctx, ember_encoding *enc, const tok_nstr *in,
                              uint32_t shift, tok_nstr *out) {
    const int *steps = ctx;
    switch (steps[i]) {
    case 0: return step_clean(in, out);
    case 1: return step_chinese(in, out);
    case 2: return step_unicode(enc, in, shift, false, false, out);
    case 3: return step_filter_mn(in, false, out);
    default: return step_lower(in, out);
    }
}

struct seq_ctx {
    const tok_norm *n;
    int depth;
};

static ember_status seq_step(int i, const void *ctx, ember_encoding *enc, const tok_nstr *in,
                             uint32_t shift, tok_nstr *out) {
    const struct seq_ctx *sc = ctx;
    return run_step(&sc->n->sub[i], enc, in, shift, out, sc->depth + 1);
}

static ember_status run_step(const tok_norm *n, ember_encoding *enc, const tok_nstr *in,
                             uint32_t shift, tok_nstr *out, int depth) {
    switch (n->kind) {
    case TOK_N_BERT: {
        if (all_ascii(in))
            return step_bert_ascii(n, in, out);
        int steps[5], k = 0;
        if (n->clean_text)
            steps[k++] = 0;
        if (n->chinese)
            steps[k++] = 1;
        if (n->strip_accents) {
            steps[k++] = 2;
            steps[k++] = 3;
        }
        if (n->lowercase)
            steps[k++] = 4;
        /* BERT steps run on their own temporaries so a BertNormalizer inside
         * a Sequence does not clobber the Sequence's buffers. */
        tok_nstr *tmp = &enc->ntmp[0];
        if (depth > 0) {
            tok_nstr local[2] = {{0}, {0}};
            ember_status st = run_chain(enc, in, shift, out, k, bert_step, steps, local);
            ember_tok_nstr_free(&local[0]);
            ember_tok_nstr_free(&local[1]);
            return st;
        }
        return run_chain(enc, in, shift, out, k, bert_step, steps, tmp);
    }
    case TOK_N_NFC: return step_unicode(enc, in, shift, true, false, out);
    case TOK_N_NFD: return step_unicode(enc, in, shift, false, false, out);
    case TOK_N_NFKC: return step_unicode(enc, in, shift, true, true, out);
    case TOK_N_NFKD: return step_unicode(enc, in, shift, false, true, out);
    case TOK_N_LOWER: return step_lower(in, out);
    /* StripAccents removes every combining mark (normalizers/strip.rs) */
    case TOK_N_STRIP_ACCENTS: return step_filter_mn(in, true, out);
    case TOK_N_REPLACE: return step_replace(n, enc, in, shift, out);
    case TOK_N_PREPEND: return step_prepend(in, n->content, n->content_len, out);
    case TOK_N_STRIP: return step_strip(in, n->left, n->right, out);
    case TOK_N_PRECOMPILED: return ember_tok_precompiled_run(&n->cmap, enc, in, shift, out);
    case TOK_N_SEQ: {
        struct seq_ctx sc = {n, depth};
        if (depth > 0) {
            tok_nstr local[2] = {{0}, {0}};
            ember_status st = run_chain(enc, in, shift, out, n->n_sub, seq_step, &sc, local);
            ember_tok_nstr_free(&local[0]);
            ember_tok_nstr_free(&local[1]);
            return st;
        }
        return run_chain(enc, in, shift, out, n->n_sub, seq_step, &sc, enc->ntmp);
    }
    }
    return ember_error(EMBER_E_INTERNAL, "unknown normalizer");
}

ember_status ember_tok_normalize(const tok_norm *n, ember_encoding *enc, const tok_nstr *in,
                                 uint32_t shift, tok_nstr *out) {
    return run_step(n, enc, in, shift, out, 0);
}
