/*
 * post.c — truncation and the `post_processor` section of tokenizer.json:
 * TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel and
 * Sequence (processors/ (*.rs) and the ByteLevel offset trimming of
 * pre_tokenizers/byte_level.rs in huggingface/tokenizers).
 *
 * As in Tokenizer::post_process, truncation runs first on the content tokens,
 * keeping room for the special tokens the processor will add
 * (max_length - added_tokens), then specials are added with offsets (0, 0)
 * and special mask 1. Bert and Roberta processing are single-sequence
 * templates "[CLS] $A [SEP]" here, since Ember encodes one sequence at a time.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"
#include "io/json.h"

static const char *pool(tok_post *p, const char *s, size_t n) {
    char **np = realloc(p->strpool, sizeof(char *) * (size_t)(p->n_strpool + 1));
    if (!np)
        return NULL;
    p->strpool = np;
    char *d = ember_strndup(s, n);
    if (!d)
        return NULL;
    p->strpool[p->n_strpool++] = d;
    return d;
}

static ember_status add_piece(tok_post *p, int is_seq, const int32_t *ids, const char **strs,
                              int n) {
    tok_tpl_piece *np = realloc(p->pieces, sizeof *np * (size_t)(p->n_pieces + 1));
    if (!np)
        return ember_error(EMBER_E_NOMEM, "out of memory for a template");
    p->pieces = np;
    tok_tpl_piece *pc = &p->pieces[p->n_pieces++];
    memset(pc, 0, sizeof *pc);
    pc->is_seq = is_seq;
    pc->type_id = p->cur_type;
    if (n > 0) {
        pc->ids = malloc(sizeof(int32_t) * (size_t)n);
        pc->strs = malloc(sizeof(char *) * (size_t)n);
        if (!pc->ids || !pc->strs)
            return ember_error(EMBER_E_NOMEM, "out of memory for a template");
        memcpy(pc->ids, ids, sizeof(int32_t) * (size_t)n);
        memcpy(pc->strs, strs, sizeof(char *) * (size_t)n);
        pc->n = n;
        p->n_added += n;
    }
    return EMBER_OK;
}

/* ["[SEP]", 102] of BertProcessing / RobertaProcessing */
static ember_status parse_pair(tok_post *p, const json_t *j, const char *key, const char *what) {
    const json_t *v = json_object_get(j, key);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1)) || json_integer_value(json_array_get(v, 1)) < 0 ||
        json_integer_value(json_array_get(v, 1)) >= INT32_MAX)
        return ember_error(EMBER_E_FORMAT, "%s: post_processor '%s' must be [\"token\", id]", what,
                           key);
    const json_t *s = json_array_get(v, 0);
    const char *str = pool(p, json_string_value(s), json_string_length(s));
    if (!str)
        return ember_error(EMBER_E_NOMEM, "out of memory");
    int32_t id = (int32_t)json_integer_value(json_array_get(v, 1));
    return add_piece(p, 0, &id, &str, 1);
}

static ember_status template_special(tok_post *p, const json_t *specials, const char *name,
                                     const char *what) {
    const json_t *sp = json_object_get(specials, name);
    if (!json_is_object(sp))
        return ember_error(EMBER_E_FORMAT,
                           "%s: TemplateProcessing uses special token '%s' missing from "
                           "'special_tokens'",
                           what, name);
    const json_t *ids = json_object_get(sp, "ids"), *toks = json_object_get(sp, "tokens");
    if (!json_is_array(ids) || !json_is_array(toks) || json_array_size(ids) != json_array_size(toks) ||
        json_array_size(ids) > 64)
        return ember_error(EMBER_E_FORMAT,
                           "%s: special token '%s' needs 'ids' and 'tokens' arrays of equal length",
                           what, name);
    int32_t idv[64];
    const char *sv[64];
    int n = (int)json_array_size(ids);
    for (int i = 0; i < n; i++) {
        const json_t *iv = json_array_get(ids, (size_t)i), *tv = json_array_get(toks, (size_t)i);
        if (!json_is_integer(iv) || json_integer_value(iv) < 0 || json_integer_value(iv) >= INT32_MAX ||
            !json_is_string(tv))
            return ember_error(EMBER_E_FORMAT, "%s: special token '%s' has a bad id or token", what,
                               name);
        idv[i] = (int32_t)json_integer_value(iv);
        sv[i] = pool(p, json_string_value(tv), json_string_length(tv));
        if (!sv[i])
            return ember_error(EMBER_E_NOMEM, "out of memory");
    }
    return add_piece(p, 0, idv, sv, n);
}

static ember_status parse_template(tok_post *p, const json_t *j, const char *what) {
    const json_t *single = json_object_get(j, "single");
    const json_t *specials = json_object_get(j, "special_tokens");
    if (specials && !json_is_object(specials))
        return ember_error(EMBER_E_FORMAT, "%s: 'special_tokens' must be an object", what);
    if (json_is_string(single)) {
        /* "[CLS] $A [SEP]" (the form accepted by the Python constructor) */
        const char *s = json_string_value(single);
        while (*s) {
            while (*s == ' ')
                s++;
            if (!*s)
                break;
            const char *e = s;
            while (*e && *e != ' ')
                e++;
            char name[256];
            size_t l = (size_t)(e - s);
            if (l >= sizeof name)
                return ember_error(EMBER_E_FORMAT, "%s: template piece too long", what);
            memcpy(name, s, l);
            name[l] = '\0';
            char *colon = strrchr(name, ':');
            if (colon && colon != name)
                *colon = '\0';
            if (name[0] == '$') {
                if (strcmp(name, "$") && strcmp(name, "$A") && strcmp(name, "$0"))
                    return ember_error(EMBER_E_FORMAT,
                                       "%s: single template refers to sequence '%s'", what, name);
                EMBER_TRY(add_piece(p, 1, NULL, NULL, 0));
            } else {
                EMBER_TRY(template_special(p, specials, name, what));
            }
            s = e;
        }
        return EMBER_OK;
    }
    if (!json_is_array(single))
        return ember_error(EMBER_E_FORMAT, "%s: TemplateProcessing 'single' must be an array", what);
    for (size_t i = 0; i < json_array_size(single); i++) {
        const json_t *pc = json_array_get(single, i);
        const json_t *st = json_object_get(pc, "SpecialToken");
        const json_t *sq = json_object_get(pc, "Sequence");
        if (json_is_object(st)) {
            const char *id;
            if (ember_json_str(st, "id", what, &id) != EMBER_OK)
                return ember_error(EMBER_E_FORMAT, "%s: SpecialToken piece needs an 'id' string",
                                   what);
            EMBER_TRY(template_special(p, specials, id, what));
        } else if (json_is_object(sq)) {
            const char *id;
            if (ember_json_str(sq, "id", what, &id) != EMBER_OK || strcmp(id, "A"))
                return ember_error(EMBER_E_FORMAT,
                                   "%s: the single template must use Sequence 'A'", what);
            EMBER_TRY(add_piece(p, 1, NULL, NULL, 0));
        } else {
            return ember_error(EMBER_E_FORMAT,
                               "%s: template piece #%zu must be a SpecialToken or a Sequence", what,
                               i);
        }
    }
    return EMBER_OK;
}

/* Parses the "pair" template ($A, $B and type ids) into p->pair: the pieces
 * are built in p->pieces (so add_piece and template_special serve both) and
 * moved over. */
static ember_status parse_pair_template(tok_post *p, const json_t *j, const char *what) {
    const json_t *pair = json_object_get(j, "pair");
    if (!pair || json_is_null(pair))
        return EMBER_OK;
    const json_t *specials = json_object_get(j, "special_tokens");
    tok_tpl_piece *save = p->pieces;
    int save_n = p->n_pieces, save_added = p->n_added;
    p->pieces = NULL;
    p->n_pieces = 0;
    p->n_added = 0;
    ember_status st = EMBER_OK;
    if (json_is_string(pair)) { /* "[CLS] $A [SEP] $B:1 [SEP]:1" */
        const char *s = json_string_value(pair);
        while (*s && st == EMBER_OK) {
            while (*s == ' ')
                s++;
            if (!*s)
                break;
            const char *e = s;
            while (*e && *e != ' ')
                e++;
            char name[256];
            size_t l = (size_t)(e - s);
            if (l >= sizeof name) {
                st = ember_error(EMBER_E_FORMAT, "%s: template piece too long", what);
                break;
            }
            memcpy(name, s, l);
            name[l] = '\0';
            p->cur_type = 0;
            char *colon = strrchr(name, ':');
            if (colon && colon != name) {
                *colon = '\0';
                p->cur_type = (int32_t)strtol(colon + 1, NULL, 10);
            }
            if (name[0] == '$') {
                int which = (!strcmp(name, "$") || !strcmp(name, "$A") || !strcmp(name, "$0")) ? 1
                            : (!strcmp(name, "$B") || !strcmp(name, "$1"))                   ? 2
                                                                                             : 0;
                if (!which) {
                    st = ember_error(EMBER_E_FORMAT, "%s: pair template refers to sequence '%s'",
                                     what, name);
                    break;
                }
                st = add_piece(p, which, NULL, NULL, 0);
            } else {
                st = template_special(p, specials, name, what);
            }
            s = e;
        }
    } else if (json_is_array(pair)) {
        for (size_t i = 0; i < json_array_size(pair) && st == EMBER_OK; i++) {
            const json_t *pc = json_array_get(pair, i);
            const json_t *sp = json_object_get(pc, "SpecialToken");
            const json_t *sq = json_object_get(pc, "Sequence");
            const json_t *obj = json_is_object(sp) ? sp : sq;
            const char *id = NULL;
            if (!json_is_object(obj) || ember_json_str(obj, "id", what, &id) != EMBER_OK) {
                st = ember_error(EMBER_E_FORMAT,
                                 "%s: pair template piece #%zu must be a SpecialToken or a "
                                 "Sequence with an 'id'",
                                 what, i);
                break;
            }
            const json_t *ty = json_object_get(obj, "type_id");
            p->cur_type = json_is_integer(ty) && json_integer_value(ty) >= 0 &&
                                  json_integer_value(ty) < 1024
                              ? (int32_t)json_integer_value(ty)
                              : 0;
            if (obj == sp)
                st = template_special(p, specials, id, what);
            else if (!strcmp(id, "A") || !strcmp(id, "B"))
                st = add_piece(p, id[0] == 'A' ? 1 : 2, NULL, NULL, 0);
            else
                st = ember_error(EMBER_E_FORMAT, "%s: pair template uses Sequence '%s'", what, id);
        }
    } else {
        st = ember_error(EMBER_E_FORMAT, "%s: TemplateProcessing 'pair' must be an array", what);
    }
    p->pair = p->pieces;
    p->n_pair = p->n_pieces;
    p->n_added_pair = p->n_added;
    p->has_pair = st == EMBER_OK;
    p->pieces = save;
    p->n_pieces = save_n;
    p->n_added = save_added;
    p->cur_type = 0;
    return st;
}

/* BertProcessing / RobertaProcessing pairs: [CLS] A [SEP] B:1 [SEP]:1, and
 * <s> A </s> </s> B </s> with type ids 0 (roberta.rs). */
static ember_status fixed_pair(tok_post *p, bool roberta) {
    /* pieces are [cls] $A [sep] */
    tok_tpl_piece *save = p->pieces;
    int save_n = p->n_pieces, save_added = p->n_added;
    p->pieces = NULL;
    p->n_pieces = 0;
    p->n_added = 0;
    ember_status st = add_piece(p, 0, save[0].ids, save[0].strs, save[0].n);
    if (st == EMBER_OK)
        st = add_piece(p, 1, NULL, NULL, 0);
    if (st == EMBER_OK)
        st = add_piece(p, 0, save[2].ids, save[2].strs, save[2].n);
    if (st == EMBER_OK && roberta)
        st = add_piece(p, 0, save[2].ids, save[2].strs, save[2].n);
    p->cur_type = roberta ? 0 : 1;
    if (st == EMBER_OK)
        st = add_piece(p, 2, NULL, NULL, 0);
    if (st == EMBER_OK)
        st = add_piece(p, 0, save[2].ids, save[2].strs, save[2].n);
    p->pair = p->pieces;
    p->n_pair = p->n_pieces;
    p->n_added_pair = p->n_added;
    p->has_pair = st == EMBER_OK;
    p->pieces = save;
    p->n_pieces = save_n;
    p->n_added = save_added;
    p->cur_type = 0;
    return st;
}

static ember_status get_bool(const json_t *j, const char *key, bool def, bool *out,
                             const char *what) {
    ember_status st = ember_json_bool(j, key, what, out);
    if (st == EMBER_E_NOT_FOUND) {
        *out = def;
        return EMBER_OK;
    }
    return st;
}

ember_status ember_tok_post_parse(const json_t *j, ember_tokenizer *t, tok_post *p,
                                  const char *what) {
    memset(p, 0, sizeof *p);
    if (!json_is_object(j))
        return ember_error(EMBER_E_FORMAT, "%s: post_processor must be an object, found %s", what,
                           ember_json_type_name(j));
    const char *type;
    if (ember_json_str(j, "type", what, &type) != EMBER_OK)
        return ember_error(EMBER_E_FORMAT, "%s: post_processor has no 'type' string", what);
    if (!strcmp(type, "TemplateProcessing")) {
        p->kind = TOK_PP_TEMPLATE;
        EMBER_TRY(parse_template(p, j, what));
        return parse_pair_template(p, j, what);
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        p->kind = TOK_PP_TEMPLATE;
        if (type[0] == 'R') {
            EMBER_TRY(get_bool(j, "trim_offsets", true, &p->trim_offsets, what));
            EMBER_TRY(get_bool(j, "add_prefix_space", true, &p->add_prefix_space, what));
        }
        EMBER_TRY(parse_pair(p, j, "cls", what));
        EMBER_TRY(add_piece(p, 1, NULL, NULL, 0));
        EMBER_TRY(parse_pair(p, j, "sep", what));
        return fixed_pair(p, type[0] == 'R');
    }
    if (!strcmp(type, "ByteLevel")) {
        p->kind = TOK_PP_BYTELEVEL;
        EMBER_TRY(get_bool(j, "trim_offsets", true, &p->trim_offsets, what));
        return get_bool(j, "add_prefix_space", true, &p->add_prefix_space, what);
    }
    if (!strcmp(type, "Sequence")) {
        p->kind = TOK_PP_SEQ;
        const json_t *arr = json_object_get(j, "processors");
        if (!json_is_array(arr) || json_array_size(arr) > 64)
            return ember_error(EMBER_E_FORMAT, "%s: Sequence 'processors' must be an array", what);
        size_t n = json_array_size(arr);
        p->sub = ember_calloc(n ? n : 1, sizeof *p->sub, "post-processors");
        if (!p->sub)
            return EMBER_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
            ember_status st = ember_tok_post_parse(json_array_get(arr, i), t, &p->sub[i], what);
            p->n_sub = (int)i + 1;
            if (st != EMBER_OK)
                return st;
            p->n_added += p->sub[i].n_added;
        }
        return EMBER_OK;
    }
    return ember_error(EMBER_E_UNSUPPORTED, "%s: post_processor type '%s' is not supported", what,
                       type);
}

void ember_tok_post_free(tok_post *p) {
    for (int i = 0; i < p->n_sub; i++)
        ember_tok_post_free(&p->sub[i]);
    free(p->sub);
    for (int i = 0; i < p->n_pieces; i++) {
        free(p->pieces[i].ids);
        free(p->pieces[i].strs);
    }
    free(p->pieces);
    for (int i = 0; i < p->n_pair; i++) {
        free(p->pair[i].ids);
        free(p->pair[i].strs);
    }
    free(p->pair);
    for (int i = 0; i < p->n_strpool; i++)
        free(p->strpool[i]);
    free(p->strpool);
    memset(p, 0, sizeof *p);
}

int ember_tok_post_added(const tok_post *p) { return p->n_added; }

/* ---- running ------------------------------------------------------------------ */

static const char *content_str(const ember_encoding *enc, int64_t i) {
    return enc->cstr[i] ? enc->cstr[i] : enc->arena + enc->carena[i];
}

/* byte_level.rs process_offsets. HF's bindings trim code-point offsets, so
 * the counts of leading/trailing 'Ġ' or whitespace characters move the span
 * by that many characters of the work text. */
static void trim_offsets(ember_encoding *enc, const char *w, int64_t from, int64_t to,
                         bool add_prefix_space) {
    for (int64_t i = from; i < to; i++) {
        const char *s = content_str(enc, i);
        size_t n = strlen(s);
        uint32_t lead = 0, trail = 0;
        size_t p = 0;
        while (p < n) {
            int l;
            uint32_t cp = ember_tok_utf8_dec((const uint8_t *)s + p, n - p, &l);
            if (cp != 0x120 && !ember_tok_is_ws(cp))
                break;
            lead++;
            p += (size_t)l;
        }
        size_t q = n;
        while (q > 0) {
            size_t b = q - 1;
            while (b > 0 && ((uint8_t)s[b] & 0xC0) == 0x80)
                b--;
            int l;
            uint32_t cp = ember_tok_utf8_dec((const uint8_t *)s + b, q - b, &l);
            if (cp != 0x120 && !ember_tok_is_ws(cp))
                break;
            trail++;
            q = b;
        }
        tok_span *sp = &enc->cspan[i];
        if (lead > 0) {
            bool is_first = i == from || sp->s == 0;
            if (!(is_first && add_prefix_space && lead == 1)) {
                uint32_t s2 = sp->s;
                for (uint32_t k = 0; k < lead && s2 < sp->e; k++)
                    s2 += (uint32_t)ember_tok_lead_len((uint8_t)w[s2]);
                sp->s = s2 < sp->e ? s2 : sp->e;
            }
        }
        if (trail > 0) {
            /* only when at least `trail` characters precede the end */
            uint32_t e2 = sp->e, k = 0;
            while (k < trail && e2 > 0) {
                e2--;
                while (e2 > 0 && ((uint8_t)w[e2] & 0xC0) == 0x80)
                    e2--;
                k++;
            }
            if (k == trail) {
                /* the end moves back at most to the start */
                uint32_t e3 = sp->e;
                for (uint32_t m = 0; m < trail && e3 > sp->s; m++) {
                    e3--;
                    while (e3 > sp->s && ((uint8_t)w[e3] & 0xC0) == 0x80)
                        e3--;
                }
                sp->e = e3;
            }
        }
    }
}

static void apply_trims(const tok_post *p, ember_encoding *enc, const char *w, int64_t cs,
                        int64_t ce) {
    if (p->kind == TOK_PP_SEQ) {
        for (int i = 0; i < p->n_sub; i++)
            apply_trims(&p->sub[i], enc, w, cs, ce);
        return;
    }
    if (p->trim_offsets)
        trim_offsets(enc, w, cs, ce, p->add_prefix_space);
}

static ember_status out_grow(ember_encoding *enc, int64_t need) {
    if (need <= enc->cap)
        return EMBER_OK;
    size_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = (size_t)enc->cap;
    EMBER_TRY(TOK_GROW(enc->ids, c[0], (size_t)need));
    EMBER_TRY(TOK_GROW(enc->boff, c[1], (size_t)need * 2));
    EMBER_TRY(TOK_GROW(enc->coff, c[2], (size_t)need * 2));
    EMBER_TRY(TOK_GROW(enc->special, c[3], (size_t)need));
    EMBER_TRY(TOK_GROW(enc->tok, c[4], (size_t)need));
    c[1] /= 2;
    c[2] /= 2;
    size_t m = c[0];
    for (int i = 1; i < 5; i++)
        m = c[i] < m ? c[i] : m;
    enc->cap = (int64_t)m;
    return EMBER_OK;
}

/* Appends specials and content following the processor's template(s).
 * boff temporarily holds work-text spans; encode.c maps them afterwards. */
static ember_status emit_template(const tok_post *p, ember_encoding *enc, int64_t cs, int64_t ce,
                                  bool *content_done) {
    if (p->kind == TOK_PP_SEQ) {
        for (int i = 0; i < p->n_sub; i++)
            EMBER_TRY(emit_template(&p->sub[i], enc, cs, ce, content_done));
        return EMBER_OK;
    }
    if (p->kind != TOK_PP_TEMPLATE)
        return EMBER_OK;
    /* A second template in a Sequence wraps the first one's output; Ember
     * only emits the outermost content once, which is what such files mean. */
    for (int k = 0; k < p->n_pieces; k++) {
        const tok_tpl_piece *pc = &p->pieces[k];
        if (pc->is_seq) {
            if (*content_done)
                continue;
            EMBER_TRY(out_grow(enc, enc->n + (ce - cs)));
            for (int64_t i = cs; i < ce; i++) {
                int64_t o = enc->n++;
                enc->ids[o] = enc->cids[i];
                enc->boff[2 * o] = enc->cspan[i].s;
                enc->boff[2 * o + 1] = enc->cspan[i].e;
                enc->special[o] = 0;
                enc->tok[o] = content_str(enc, i);
            }
            *content_done = true;
            continue;
        }
        EMBER_TRY(out_grow(enc, enc->n + pc->n));
        for (int q = 0; q < pc->n; q++) {
            int64_t o = enc->n++;
            enc->ids[o] = pc->ids[q];
            enc->boff[2 * o] = -1; /* marks an added special: (0, 0) */
            enc->boff[2 * o + 1] = -1;
            enc->special[o] = 1;
            enc->tok[o] = pc->strs[q];
        }
    }
    return EMBER_OK;
}

ember_status ember_tok_post_run(const ember_tokenizer *t, ember_encoding *enc, const char *w,
                                bool add_special, int32_t max_length,
                                ember_truncation_side side) {
    int n_added = (add_special && t->has_post) ? t->post.n_added : 0;
    enc->untruncated = enc->cn + n_added;
    int64_t cs = 0, ce = enc->cn;
    if (max_length > 0) {
        int64_t keep = (int64_t)max_length - n_added;
        if (keep < 0)
            keep = 0;
        if (enc->cn > keep) {
            if (side == EMBER_TRUNCATE_LEFT)
                cs = enc->cn - keep;
            else
                ce = keep;
            enc->flags |= EMBER_ENCODING_TRUNCATED;
        }
    }
    if (t->has_post)
        apply_trims(&t->post, enc, w, cs, ce);
    enc->n = 0;
    bool content_done = false;
    if (add_special && t->has_post)
        EMBER_TRY(emit_template(&t->post, enc, cs, ce, &content_done));
    if (!content_done) {
        EMBER_TRY(out_grow(enc, enc->n + (ce - cs)));
        for (int64_t i = cs; i < ce; i++) {
            int64_t o = enc->n++;
            enc->ids[o] = enc->cids[i];
            enc->boff[2 * o] = enc->cspan[i].s;
            enc->boff[2 * o + 1] = enc->cspan[i].e;
            enc->special[o] = 0;
            enc->tok[o] = content_str(enc, i);
        }
    }
    return EMBER_OK;
}
