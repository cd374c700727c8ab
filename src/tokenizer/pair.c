/*
 * pair.c — sequence-pair encoding for cross-encoders (rerankers), as
 * huggingface/tokenizers does it: each text encoded alone without special
 * tokens, LongestFirst truncation (utils/truncation.rs), then the pair
 * template of the post-processor (processors/template.rs) with its type ids.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"
#include "tokenizer.h"

void ember_pair_buf_free(ember_pair_buf *b) {
    if (!b)
        return;
    free(b->ids);
    free(b->types);
    memset(b, 0, sizeof *b);
}

static ember_status reserve(ember_pair_buf *b, int64_t extra) {
    if (b->n + extra <= b->cap)
        return EMBER_OK;
    int64_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra)
        cap *= 2;
    int32_t *ids = realloc(b->ids, sizeof(int32_t) * (size_t)cap);
    if (ids)
        b->ids = ids;
    int32_t *ty = ids ? realloc(b->types, sizeof(int32_t) * (size_t)cap) : NULL;
    if (!ids || !ty)
        return ember_error(EMBER_E_NOMEM, "out of memory for a pair encoding");
    b->types = ty;
    b->cap = cap;
    return EMBER_OK;
}

/* The template processor that holds the pair template (top level or inside
 * a Sequence), or NULL. */
static const tok_post *pair_template(const tok_post *p) {
    if (p->kind == TOK_PP_TEMPLATE && p->has_pair)
        return p;
    if (p->kind == TOK_PP_SEQ)
        for (int i = 0; i < p->n_sub; i++) {
            const tok_post *q = pair_template(&p->sub[i]);
            if (q)
                return q;
        }
    return NULL;
}

ember_status ember_tok_encode_pair(const ember_tokenizer *t, const char *a, size_t alen,
                                   const char *b, size_t blen, int32_t max_length,
                                   ember_encoding *enc, ember_pair_buf *out,
                                   int64_t *n_untruncated) {
    const tok_post *tp = t->has_post ? pair_template(&t->post) : NULL;
    if (!tp)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "the tokenizer has no pair template (post_processor), which "
                           "sentence pairs need");
    ember_tokenize_options o = ember_tokenize_default_options();
    o.add_special_tokens = 0;
    EMBER_TRY(ember_tokenize(t, a ? a : "", alen, &o, enc));
    int64_t na = ember_encoding_length(enc);
    int32_t *ta = ember_malloc(sizeof(int32_t) * (size_t)(na ? na : 1), "pair");
    if (!ta)
        return EMBER_E_NOMEM;
    memcpy(ta, ember_encoding_ids(enc), sizeof(int32_t) * (size_t)na);
    ember_status st = ember_tokenize(t, b ? b : "", blen, &o, enc);
    if (st != EMBER_OK) {
        free(ta);
        return st;
    }
    int64_t nb = ember_encoding_length(enc);
    const int32_t *tb = ember_encoding_ids(enc);
    const int64_t added = tp->n_added_pair;
    if (n_untruncated)
        *n_untruncated = na + nb + added;
    int64_t ka = na, kb = nb;
    if (max_length > 0 && na + nb + added > max_length) {
        /* LongestFirst, with n1 the shorter input */
        int64_t target = max_length - added > 0 ? max_length - added : 0;
        int64_t n1 = na, n2 = nb;
        bool swap = n1 > n2;
        if (swap) {
            int64_t x = n1;
            n1 = n2;
            n2 = x;
        }
        if (n1 > target)
            n2 = n1;
        else
            n2 = n1 > target - n1 ? n1 : target - n1;
        if (n1 + n2 > target) {
            n1 = target / 2;
            n2 = n1 + target % 2;
        }
        if (swap) {
            int64_t x = n1;
            n1 = n2;
            n2 = x;
        }
        ka = na < n1 ? na : n1;
        kb = nb < n2 ? nb : n2;
    }
    st = reserve(out, ka + kb + added);
    if (st != EMBER_OK) {
        free(ta);
        return st;
    }
    for (int k = 0; k < tp->n_pair; k++) {
        const tok_tpl_piece *pc = &tp->pair[k];
        const int32_t *src = pc->is_seq == 1 ? ta : pc->is_seq == 2 ? tb : pc->ids;
        int64_t cnt = pc->is_seq == 1 ? ka : pc->is_seq == 2 ? kb : pc->n;
        memcpy(out->ids + out->n, src, sizeof(int32_t) * (size_t)cnt);
        for (int64_t i = 0; i < cnt; i++)
            out->types[out->n + i] = pc->type_id;
        out->n += cnt;
    }
    free(ta);
    return EMBER_OK;
}
