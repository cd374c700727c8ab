/*
 * pretokenizers.c — the `pre_tokenizer` section of tokenizer.json:
 * BertPreTokenizer, ByteLevel, Whitespace, WhitespaceSplit, Split,
 * Punctuation, Digits, Metaspace and Sequence (pre_tokenizers/ (*.rs) in
 * huggingface/tokenizers).
 *
 * A pre-tokenizer turns the pending splits of one normalized buffer into
 * smaller splits. Splitting keeps the buffer; ByteLevel and Metaspace rewrite
 * characters and so write a new buffer. HF's generic split machinery
 * (NormalizedString::split with a delimiter behaviour) is reproduced by
 * `split_segments`; the two hot paths (BERT and the GPT-2 regex of ByteLevel)
 * are written out by hand.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"
#include "io/json.h"

ember_status ember_tok_pattern_parse(const json_t *j, tok_regex *r, const char *what);

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

static ember_status parse_behavior(const json_t *j, tok_behavior def, tok_behavior *out,
                                   const char *what) {
    const char *s;
    ember_status st = ember_json_str(j, "behavior", what, &s);
    if (st == EMBER_E_NOT_FOUND) {
        *out = def;
        return EMBER_OK;
    }
    EMBER_TRY(st);
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (tok_behavior)i;
            return EMBER_OK;
        }
    return ember_error(EMBER_E_FORMAT, "%s: unknown split behavior '%s'", what, s);
}

ember_status ember_tok_pre_parse(const json_t *j, tok_pre *p, const char *what) {
    memset(p, 0, sizeof *p);
    if (!json_is_object(j))
        return ember_error(EMBER_E_FORMAT, "%s: pre_tokenizer must be an object, found %s", what,
                           ember_json_type_name(j));
    const char *type;
    if (ember_json_str(j, "type", what, &type) != EMBER_OK)
        return ember_error(EMBER_E_FORMAT, "%s: pre_tokenizer has no 'type' string", what);
    if (!strcmp(type, "BertPreTokenizer")) {
        p->kind = TOK_P_BERT;
    } else if (!strcmp(type, "ByteLevel")) {
        p->kind = TOK_P_BYTELEVEL;
        EMBER_TRY(get_bool(j, "add_prefix_space", true, &p->add_prefix_space, what));
        EMBER_TRY(get_bool(j, "trim_offsets", true, &p->trim_offsets, what));
        EMBER_TRY(get_bool(j, "use_regex", true, &p->use_regex, what));
    } else if (!strcmp(type, "Whitespace")) {
        p->kind = TOK_P_WHITESPACE;
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p->kind = TOK_P_WHITESPACE_SPLIT;
    } else if (!strcmp(type, "Split")) {
        p->kind = TOK_P_SPLIT;
        EMBER_TRY(ember_tok_pattern_parse(json_object_get(j, "pattern"), &p->pat, what));
        if (!json_object_get(j, "behavior"))
            return ember_error(EMBER_E_FORMAT, "%s: Split needs a 'behavior'", what);
        EMBER_TRY(parse_behavior(j, TOK_BEH_ISOLATED, &p->behavior, what));
        EMBER_TRY(get_bool(j, "invert", false, &p->invert, what));
    } else if (!strcmp(type, "Punctuation")) {
        p->kind = TOK_P_PUNCT;
        EMBER_TRY(parse_behavior(j, TOK_BEH_ISOLATED, &p->behavior, what));
    } else if (!strcmp(type, "Digits")) {
        p->kind = TOK_P_DIGITS;
        EMBER_TRY(get_bool(j, "individual_digits", false, &p->individual_digits, what));
    } else if (!strcmp(type, "Metaspace")) {
        p->kind = TOK_P_METASPACE;
        const char *rep;
        if (ember_json_str(j, "replacement", what, &rep) != EMBER_OK)
            return ember_error(EMBER_E_FORMAT, "%s: Metaspace needs a 'replacement' string", what);
        size_t rl = strlen(rep);
        int l;
        if (rl == 0 || rl > 4)
            return ember_error(EMBER_E_FORMAT, "%s: Metaspace replacement must be one character",
                               what);
        p->replacement = ember_tok_utf8_dec((const uint8_t *)rep, rl, &l);
        if ((size_t)l != rl)
            return ember_error(EMBER_E_FORMAT, "%s: Metaspace replacement must be one character",
                               what);
        const char *scheme;
        ember_status st = ember_json_str(j, "prepend_scheme", what, &scheme);
        if (st == EMBER_OK) {
            if (!strcmp(scheme, "always"))
                p->prepend = TOK_PREPEND_ALWAYS;
            else if (!strcmp(scheme, "first"))
                p->prepend = TOK_PREPEND_FIRST;
            else if (!strcmp(scheme, "never"))
                p->prepend = TOK_PREPEND_NEVER;
            else
                return ember_error(EMBER_E_FORMAT, "%s: unknown prepend_scheme '%s'", what,
                                   scheme);
        } else if (st == EMBER_E_NOT_FOUND) {
            /* legacy files: add_prefix_space true means "always" */
            bool aps;
            EMBER_TRY(get_bool(j, "add_prefix_space", true, &aps, what));
            p->prepend = aps ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
        } else {
            return st;
        }
        EMBER_TRY(get_bool(j, "split", true, &p->split, what));
    } else if (!strcmp(type, "Sequence")) {
        p->kind = TOK_P_SEQ;
        const json_t *arr = json_object_get(j, "pretokenizers");
        if (!json_is_array(arr))
            return ember_error(EMBER_E_FORMAT, "%s: Sequence 'pretokenizers' must be an array",
                               what);
        size_t cnt = json_array_size(arr);
        if (cnt > 64)
            return ember_error(EMBER_E_FORMAT, "%s: Sequence too long", what);
        p->sub = ember_calloc(cnt ? cnt : 1, sizeof *p->sub, "pre-tokenizers");
        if (!p->sub)
            return EMBER_E_NOMEM;
        for (size_t i = 0; i < cnt; i++) {
            ember_status st = ember_tok_pre_parse(json_array_get(arr, i), &p->sub[i], what);
            p->n_sub = (int)i + 1;
            if (st != EMBER_OK)
                return st;
        }
    } else {
        return ember_error(EMBER_E_UNSUPPORTED, "%s: pre_tokenizer type '%s' is not supported",
                           what, type);
    }
    return EMBER_OK;
}

void ember_tok_pre_free(tok_pre *p) {
    for (int i = 0; i < p->n_sub; i++)
        ember_tok_pre_free(&p->sub[i]);
    free(p->sub);
    ember_tok_regex_free(&p->pat);
    memset(p, 0, sizeof *p);
}

/* ---- GPT-2 regex ------------------------------------------------------------
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Alternatives are tried in order at each position (first match wins, as in
 * a backtracking regex), so contractions beat the punctuation run. */

enum { C_L, C_N, C_WS, C_O };

static inline int cls_at(const uint8_t *s, size_t n, size_t i, int *len) {
    uint8_t b = s[i];
    if (b < 0x80) {
        *len = 1;
        if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z')
            return C_L;
        if (b >= '0' && b <= '9')
            return C_N;
        if (b == ' ' || (b >= 9 && b <= 13))
            return C_WS;
        return C_O;
    }
    uint32_t cp = ember_tok_utf8_dec(s + i, n - i, len);
    if (ember_tok_is_ws(cp))
        return C_WS;
    if (ember_tok_is_alpha(cp))
        return C_L;
    if (ember_tok_is_num(cp))
        return C_N;
    return C_O;
}

size_t ember_tok_gpt2_match(const char *str, size_t n, size_t i) {
    const uint8_t *s = (const uint8_t *)str;
    if (s[i] == '\'' && i + 1 < n) {
        uint8_t d = s[i + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd')
            return 2;
        if (i + 2 < n) {
            uint8_t e = s[i + 2];
            if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l'))
                return 3;
        }
    }
    int l;
    size_t j = i;
    int c = cls_at(s, n, i, &l);
    if (s[i] == ' ' && i + 1 < n) {
        int l2;
        int c2 = cls_at(s, n, i + 1, &l2);
        if (c2 != C_WS) {
            c = c2;
            l = l2;
            j = i + 1;
        }
    }
    if (c != C_WS) {
        size_t k = j + (size_t)l;
        while (k < n) {
            int l3;
            if (cls_at(s, n, k, &l3) != c)
                break;
            k += (size_t)l3;
        }
        return k - i;
    }
    /* whitespace run starting at i */
    size_t k = i + (size_t)l, last = i;
    while (k < n) {
        int l3;
        if (cls_at(s, n, k, &l3) != C_WS)
            break;
        last = k;
        k += (size_t)l3;
    }
    if (k == n || last == i)
        return k - i; /* to the end, or a single whitespace char (\s+) */
    return last - i;  /* \s+(?!\S): leave the last one to the next word */
}

/* ---- generic splitting ------------------------------------------------------ */

typedef struct tok_seg seg_t;

static ember_status seg_push(ember_encoding *enc, size_t *n, uint32_t s, uint32_t e, int m) {
    if (*n + 1 > enc->seg_cap)
        EMBER_TRY(TOK_GROW(enc->seg, enc->seg_cap, *n + 1));
    enc->seg[(*n)++] = (seg_t){s, e, m};
    return EMBER_OK;
}

typedef bool (*char_pred)(uint32_t cp);

/* HF `impl Pattern for Fn(char) -> bool`: every matching char is its own match. */
static ember_status segs_pred(ember_encoding *enc, const tok_nstr *nb, uint32_t ns, uint32_t ne,
                              char_pred pred, size_t *n) {
    uint32_t last = ns;
    for (uint32_t i = ns; i < ne;) {
        int l;
        uint32_t cp = ember_tok_utf8_dec((const uint8_t *)nb->b + i, ne - i, &l);
        if (pred(cp)) {
            if (last < i)
                EMBER_TRY(seg_push(enc, n, last, i, 0));
            EMBER_TRY(seg_push(enc, n, i, i + (uint32_t)l, 1));
            last = i + (uint32_t)l;
        }
        i += (uint32_t)l;
    }
    if (last < ne)
        EMBER_TRY(seg_push(enc, n, last, ne, 0));
    return EMBER_OK;
}

/* HF `impl Pattern for &SysRegex`: matches and the gaps between them. */
static ember_status segs_regex(ember_encoding *enc, const tok_regex *re, const tok_nstr *nb,
                               uint32_t ns, uint32_t ne, size_t *n) {
    size_t prev = 0, from = 0, len = ne - ns;
    const char *s = nb->b + ns;
    while (from <= len) {
        size_t ms, me;
        ember_status st = ember_tok_regex_next(re, enc, s, len, from, &ms, &me);
        if (st == EMBER_E_NOT_FOUND)
            break;
        EMBER_TRY(st);
        if (prev != ms)
            EMBER_TRY(seg_push(enc, n, ns + (uint32_t)prev, ns + (uint32_t)ms, 0));
        EMBER_TRY(seg_push(enc, n, ns + (uint32_t)ms, ns + (uint32_t)me, 1));
        prev = me;
        if (me == ms) {
            if (me >= len)
                break;
            from = me + (size_t)ember_tok_lead_len((uint8_t)s[me]);
        } else {
            from = me;
        }
    }
    if (prev != len)
        EMBER_TRY(seg_push(enc, n, ns + (uint32_t)prev, ne, 0));
    return EMBER_OK;
}

static ember_status out_split(ember_encoding *enc, int o, const tok_nstr *nb, uint32_t s,
                              uint32_t e) {
    if (s >= e)
        return EMBER_OK; /* PreTokenizedString::split drops empty splits */
    size_t k = enc->sp_n[o];
    if (k + 1 > enc->sp_cap[o])
        EMBER_TRY(TOK_GROW(enc->sp[o], enc->sp_cap[o], k + 1));
    enc->sp[o][k] = (tok_split){.ns = s, .ne = e, .shift = nb->al[s].s, .id = -1};
    enc->sp_n[o] = k + 1;
    return EMBER_OK;
}

/* NormalizedString::split: applies a delimiter behaviour to segments. */
static ember_status apply_behavior(ember_encoding *enc, int o, const tok_nstr *nb, size_t nseg,
                                   tok_behavior beh, bool invert) {
    seg_t *g = enc->seg;
    if (invert)
        for (size_t i = 0; i < nseg; i++)
            g[i].m = !g[i].m;
    switch (beh) {
    case TOK_BEH_ISOLATED:
        for (size_t i = 0; i < nseg; i++)
            EMBER_TRY(out_split(enc, o, nb, g[i].s, g[i].e));
        return EMBER_OK;
    case TOK_BEH_REMOVED:
        for (size_t i = 0; i < nseg; i++)
            if (!g[i].m)
                EMBER_TRY(out_split(enc, o, nb, g[i].s, g[i].e));
        return EMBER_OK;
    case TOK_BEH_CONTIGUOUS:
    case TOK_BEH_PREV: {
        /* Fold segments in place, then emit. */
        size_t w = 0;
        int prev = 0;
        for (size_t i = 0; i < nseg; i++) {
            bool merge = beh == TOK_BEH_CONTIGUOUS ? (g[i].m == prev) : (g[i].m && !prev);
            if (merge && w > 0)
                g[w - 1].e = g[i].e;
            else
                g[w++] = g[i];
            prev = g[i].m;
        }
        for (size_t i = 0; i < w; i++)
            EMBER_TRY(out_split(enc, o, nb, g[i].s, g[i].e));
        return EMBER_OK;
    }
    case TOK_BEH_NEXT: {
        /* Folded from the end: a match joins the segment after it. */
        size_t w = nseg; /* g[w..nseg) holds the folded result, in order */
        int prev = 0;
        for (size_t i = nseg; i-- > 0;) {
            if (g[i].m && !prev && w < nseg)
                g[w].s = g[i].s;
            else
                g[--w] = g[i];
            prev = g[i].m;
        }
        for (size_t i = w; i < nseg; i++)
            EMBER_TRY(out_split(enc, o, nb, g[i].s, g[i].e));
        return EMBER_OK;
    }
    }
    return EMBER_OK;
}

/* ---- specific pre-tokenizers ------------------------------------------------- */

static ember_status bert_split(ember_encoding *enc, int o, const tok_nstr *nb, uint32_t ns,
                               uint32_t ne) {
    /* split(is_whitespace, Removed) then split(is_bert_punc, Isolated) */
    uint32_t w = ns;
    const uint8_t *b = (const uint8_t *)nb->b;
    for (uint32_t i = ns; i < ne;) {
        uint8_t c = b[i];
        if (c < 0x80) {
            if (c == ' ' || (c >= 9 && c <= 13)) {
                EMBER_TRY(out_split(enc, o, nb, w, i));
                w = ++i;
            } else if (ember_tok_is_punct(c)) {
                EMBER_TRY(out_split(enc, o, nb, w, i));
                EMBER_TRY(out_split(enc, o, nb, i, i + 1));
                w = ++i;
            } else {
                i++;
            }
            continue;
        }
        int l;
        uint32_t cp = ember_tok_utf8_dec(b + i, ne - i, &l);
        if (ember_tok_is_ws(cp)) {
            EMBER_TRY(out_split(enc, o, nb, w, i));
            w = i + (uint32_t)l;
        } else if (ember_tok_is_punct(cp)) {
            EMBER_TRY(out_split(enc, o, nb, w, i));
            EMBER_TRY(out_split(enc, o, nb, i, i + (uint32_t)l));
            w = i + (uint32_t)l;
        }
        i += (uint32_t)l;
    }
    return out_split(enc, o, nb, w, ne);
}

/* Whitespace: keep the matches of \w+|[^\w\s]+ (Invert + Removed). */
static ember_status whitespace_split(ember_encoding *enc, int o, const tok_nstr *nb, uint32_t ns,
                                     uint32_t ne) {
    const uint8_t *b = (const uint8_t *)nb->b;
    uint32_t i = ns;
    while (i < ne) {
        int l;
        uint32_t cp = ember_tok_utf8_dec(b + i, ne - i, &l);
        int kind = ember_tok_is_word(cp) ? 1 : ember_tok_is_ws(cp) ? 0 : 2;
        uint32_t j = i + (uint32_t)l;
        if (kind == 0) {
            i = j;
            continue;
        }
        while (j < ne) {
            uint32_t c2 = ember_tok_utf8_dec(b + j, ne - j, &l);
            int k2 = ember_tok_is_word(c2) ? 1 : ember_tok_is_ws(c2) ? 0 : 2;
            if (k2 != kind)
                break;
            j += (uint32_t)l;
        }
        EMBER_TRY(out_split(enc, o, nb, i, j));
        i = j;
    }
    return EMBER_OK;
}

static ember_status gpt2_split(ember_encoding *enc, int o, const tok_nstr *nb, uint32_t ns,
                               uint32_t ne) {
    uint32_t i = ns;
    while (i < ne) {
        size_t m = ember_tok_gpt2_match(nb->b + ns, ne - ns, i - ns);
        EMBER_TRY(out_split(enc, o, nb, i, i + (uint32_t)m));
        i += (uint32_t)m;
    }
    return EMBER_OK;
}

static bool pred_ws(uint32_t c) { return ember_tok_is_ws(c); }
static bool pred_punct(uint32_t c) { return ember_tok_is_punct(c); }
static bool pred_num(uint32_t c) { return ember_tok_is_numeric(c); }

/* GPT-2 bytes_to_unicode(): printable bytes map to themselves, the 68
 * others to 256 + n in byte order (0-32 -> n = b, 127-160 -> n = 33 + b - 127,
 * 173 -> n = 67). */
static inline uint32_t byte_char(uint8_t b) {
    if (b <= 32)
        return 256u + b;
    if (b >= 127 && b <= 160)
        return 162u + b;
    if (b == 173)
        return 323u;
    return b;
}

uint32_t ember_tok_byte_char(uint8_t b);
uint32_t ember_tok_byte_char(uint8_t b) { return byte_char(b); }

/* Rewrites each pending split of sp[o] from buffer `in` into buffer `out`
 * mapping every byte to its GPT-2 character. */
static ember_status bytelevel_map(ember_encoding *enc, int o, const tok_nstr *in, tok_nstr *out) {
    out->len = 0;
    for (size_t k = 0; k < enc->sp_n[o]; k++) {
        tok_split *s = &enc->sp[o][k];
        if (s->id >= 0)
            continue;
        EMBER_TRY(ember_tok_nstr_reserve(out, (size_t)(s->ne - s->ns) * 2));
        uint32_t start = (uint32_t)out->len;
        for (uint32_t i = s->ns; i < s->ne; i++)
            ember_tok_nstr_put(out, byte_char((uint8_t)in->b[i]), in->al[i]);
        s->ns = start;
        s->ne = (uint32_t)out->len;
    }
    return EMBER_OK;
}

/* Metaspace on one split: replace ' ' by the replacement, maybe prepend it,
 * written to `out`; returns the new range. */
static ember_status metaspace_rewrite(const tok_pre *p, const tok_nstr *in, const tok_split *s,
                                      tok_nstr *out, uint32_t *rs, uint32_t *re) {
    char rep[4];
    int rl = ember_tok_utf8_enc(p->replacement, rep);
    EMBER_TRY(ember_tok_nstr_reserve(out, (size_t)(s->ne - s->ns) * 4 + 4));
    *rs = (uint32_t)out->len;
    for (uint32_t i = s->ns; i < s->ne; i++) {
        if (in->b[i] == ' ') {
            for (int q = 0; q < rl; q++) {
                out->b[out->len] = rep[q];
                out->al[out->len++] = in->al[i];
            }
        } else {
            out->b[out->len] = in->b[i];
            out->al[out->len++] = in->al[i];
        }
    }
    size_t len = out->len - *rs;
    bool starts = len >= (size_t)rl && memcmp(out->b + *rs, rep, (size_t)rl) == 0;
    bool prepend = len > 0 && !starts &&
                   (p->prepend == TOK_PREPEND_ALWAYS ||
                    (p->prepend == TOK_PREPEND_FIRST && s->shift == 0));
    if (prepend) {
        memmove(out->b + *rs + rl, out->b + *rs, len);
        memmove(out->al + *rs + rl, out->al + *rs, len * sizeof(tok_span));
        for (int q = 0; q < rl; q++) {
            out->b[*rs + (uint32_t)q] = rep[q];
            out->al[*rs + (uint32_t)q] = out->al[*rs + (uint32_t)rl];
        }
        out->len += (size_t)rl;
    }
    *re = (uint32_t)out->len;
    return EMBER_OK;
}

static ember_status run_one(const ember_tokenizer *t, const tok_pre *p, ember_encoding *enc,
                            int *cur, int *buf) {
    int i_sp = *cur, o_sp = 1 - *cur;
    tok_nstr *nb = &enc->nb[*buf];
    enc->sp_n[o_sp] = 0;

    if (p->kind == TOK_P_SEQ) {
        for (int k = 0; k < p->n_sub; k++)
            EMBER_TRY(ember_tok_pretokenize(t, &p->sub[k], enc, cur, buf));
        return EMBER_OK;
    }

    /* Metaspace and a prefix space rewrite characters first, into a new buffer. */
    if (p->kind == TOK_P_METASPACE || (p->kind == TOK_P_BYTELEVEL && p->add_prefix_space)) {
        int nbuf = (*buf + 1) % 3;
        tok_nstr *out = &enc->nb[nbuf];
        out->len = 0;
        for (size_t k = 0; k < enc->sp_n[i_sp]; k++) {
            tok_split *s = &enc->sp[i_sp][k];
            if (s->id >= 0)
                continue;
            uint32_t rs, re;
            if (p->kind == TOK_P_METASPACE) {
                EMBER_TRY(metaspace_rewrite(p, nb, s, out, &rs, &re));
            } else {
                EMBER_TRY(ember_tok_nstr_reserve(out, (size_t)(s->ne - s->ns) + 1));
                rs = (uint32_t)out->len;
                if (s->ne > s->ns && nb->b[s->ns] != ' ') {
                    out->b[out->len] = ' ';
                    out->al[out->len++] = nb->al[s->ns];
                }
                memcpy(out->b + out->len, nb->b + s->ns, s->ne - s->ns);
                memcpy(out->al + out->len, nb->al + s->ns, (s->ne - s->ns) * sizeof(tok_span));
                out->len += s->ne - s->ns;
                re = (uint32_t)out->len;
            }
            s->ns = rs;
            s->ne = re;
        }
        *buf = nbuf;
        nb = out;
    }

    for (size_t k = 0; k < enc->sp_n[i_sp]; k++) {
        tok_split s = enc->sp[i_sp][k];
        if (s.id >= 0) {
            size_t q = enc->sp_n[o_sp];
            if (q + 1 > enc->sp_cap[o_sp])
                EMBER_TRY(TOK_GROW(enc->sp[o_sp], enc->sp_cap[o_sp], q + 1));
            enc->sp[o_sp][q] = s;
            enc->sp_n[o_sp] = q + 1;
            continue;
        }
        size_t nseg = 0;
        switch (p->kind) {
        case TOK_P_BERT: EMBER_TRY(bert_split(enc, o_sp, nb, s.ns, s.ne)); break;
        case TOK_P_WHITESPACE: EMBER_TRY(whitespace_split(enc, o_sp, nb, s.ns, s.ne)); break;
        case TOK_P_BYTELEVEL:
            if (p->use_regex)
                EMBER_TRY(gpt2_split(enc, o_sp, nb, s.ns, s.ne));
            else
                EMBER_TRY(out_split(enc, o_sp, nb, s.ns, s.ne));
            break;
        case TOK_P_WHITESPACE_SPLIT:
            EMBER_TRY(segs_pred(enc, nb, s.ns, s.ne, pred_ws, &nseg));
            EMBER_TRY(apply_behavior(enc, o_sp, nb, nseg, TOK_BEH_REMOVED, false));
            break;
        case TOK_P_PUNCT:
            EMBER_TRY(segs_pred(enc, nb, s.ns, s.ne, pred_punct, &nseg));
            EMBER_TRY(apply_behavior(enc, o_sp, nb, nseg, p->behavior, false));
            break;
        case TOK_P_DIGITS:
            EMBER_TRY(segs_pred(enc, nb, s.ns, s.ne, pred_num, &nseg));
            EMBER_TRY(apply_behavior(enc, o_sp, nb, nseg,
                                     p->individual_digits ? TOK_BEH_ISOLATED : TOK_BEH_CONTIGUOUS,
                                     false));
            break;
        case TOK_P_SPLIT:
            EMBER_TRY(segs_regex(enc, &p->pat, nb, s.ns, s.ne, &nseg));
            EMBER_TRY(apply_behavior(enc, o_sp, nb, nseg, p->behavior, p->invert));
            break;
        case TOK_P_METASPACE:
            if (p->split) {
                /* split(replacement, MergedWithNext), written out */
                uint32_t last = s.ns;
                for (uint32_t i = s.ns; i < s.ne;) {
                    int l;
                    uint32_t cp = ember_tok_utf8_dec((const uint8_t *)nb->b + i, s.ne - i, &l);
                    if (cp == p->replacement) {
                        /* MergedWithNext: the replacement starts a new split */
                        EMBER_TRY(out_split(enc, o_sp, nb, last, i));
                        last = i;
                    }
                    i += (uint32_t)l;
                }
                EMBER_TRY(out_split(enc, o_sp, nb, last, s.ne));
            } else {
                EMBER_TRY(out_split(enc, o_sp, nb, s.ns, s.ne));
            }
            break;
        case TOK_P_SEQ: break;
        }
    }
    *cur = o_sp;

    if (p->kind == TOK_P_BYTELEVEL) {
        int nbuf = (*buf + 1) % 3;
        EMBER_TRY(bytelevel_map(enc, *cur, &enc->nb[*buf], &enc->nb[nbuf]));
        *buf = nbuf;
    }
    return EMBER_OK;
}

ember_status ember_tok_pretokenize(const ember_tokenizer *t, const tok_pre *p, ember_encoding *enc,
                                   int *cur, int *buf) {
    return run_one(t, p, enc, cur, buf);
}
