/*
 * added.c — added tokens (the `added_tokens` of tokenizer.json), extracted
 * from the text before the model runs (tokenizer/added_vocabulary.rs in
 * huggingface/tokenizers).
 *
 * Tokens with `normalized: false` are matched in the raw text, the others in
 * each normalized piece against their own normalized content. HF uses an
 * Aho-Corasick automaton in LeftmostLongest mode; a byte trie walked from
 * every candidate position gives the same matches (the earliest start, then
 * the longest token there, then resume after it) and the added-token sets
 * are small. single_word, lstrip and rstrip are then applied per match with
 * the same rules (\w, \s) and the same quirks (a skipped match still
 * consumes its text for the scan).
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"

/* Sparse trie node: children in a sibling list. */
typedef struct tnode {
    int32_t child, sibling, tok;
    uint8_t byte;
} tnode;

ember_status ember_tok_trie_add(tok_trie *t, const char *s, size_t n, int32_t tok);
ember_status ember_tok_trie_add(tok_trie *t, const char *s, size_t n, int32_t tok) {
    if (n == 0)
        return EMBER_OK;
    tnode *nodes = (tnode *)t->nodes;
    if (t->n == 0) {
        size_t cap = (size_t)t->cap;
        EMBER_TRY(TOK_GROW(nodes, cap, 1));
        t->nodes = nodes;
        t->cap = (int)cap;
        nodes[0] = (tnode){-1, -1, -1, 0};
        t->n = 1;
    }
    int32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t c = nodes[cur].child;
        while (c >= 0 && nodes[c].byte != b)
            c = nodes[c].sibling;
        if (c < 0) {
            size_t cap = (size_t)t->cap;
            EMBER_TRY(TOK_GROW(nodes, cap, (size_t)t->n + 1));
            t->nodes = nodes;
            t->cap = (int)cap;
            c = t->n++;
            nodes[c] = (tnode){-1, nodes[cur].child, -1, b};
            nodes[cur].child = c;
        }
        cur = c;
    }
    /* a later duplicate of the same content does not replace the first */
    if (nodes[cur].tok < 0)
        nodes[cur].tok = tok;
    t->first_byte[(uint8_t)s[0]] = true;
    return EMBER_OK;
}

void ember_tok_trie_free(tok_trie *t) {
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

/* Longest token starting at s[i]: returns its index and length, or -1. */
static int32_t trie_longest(const tok_trie *t, const char *s, size_t n, size_t i, size_t *len) {
    const tnode *nodes = (const tnode *)(const void *)t->nodes;
    int32_t cur = 0, best = -1;
    for (size_t k = i; k < n; k++) {
        uint8_t b = (uint8_t)s[k];
        int32_t c = nodes[cur].child;
        while (c >= 0 && nodes[c].byte != b)
            c = nodes[c].sibling;
        if (c < 0)
            break;
        cur = c;
        if (nodes[cur].tok >= 0) {
            best = nodes[cur].tok;
            *len = k + 1 - i;
        }
    }
    return best;
}

static uint32_t last_cp(const char *s, size_t end, size_t *start) {
    size_t p = end - 1;
    while (p > 0 && ((uint8_t)s[p] & 0xC0) == 0x80)
        p--;
    int l;
    *start = p;
    return ember_tok_utf8_dec((const uint8_t *)s + p, end - p, &l);
}

static ember_status emit(ember_encoding *enc, int o, tok_split sp) {
    size_t k = enc->sp_n[o];
    if (k + 1 > enc->sp_cap[o])
        EMBER_TRY(TOK_GROW(enc->sp[o], enc->sp_cap[o], k + 1));
    enc->sp[o][k] = sp;
    enc->sp_n[o] = k + 1;
    return EMBER_OK;
}

ember_status ember_tok_added_split(const ember_tokenizer *t, const tok_trie *trie, const char *s,
                                   const tok_span *al, size_t n, uint32_t base, ember_encoding *enc,
                                   int o) {
    size_t start_offset = 0;
#define PENDING(a, b)                                                                           \
    do {                                                                                        \
        if ((a) < (b))                                                                          \
            EMBER_TRY(emit(enc, o,                                                              \
                           (tok_split){.ns = base + (uint32_t)(a), .ne = base + (uint32_t)(b),  \
                                       .shift = al ? al[(a)].s : base + (uint32_t)(a),          \
                                       .id = -1}));                                             \
    } while (0)
    if (trie->n > 0) {
        size_t i = 0;
        while (i < n) {
            if (!trie->first_byte[(uint8_t)s[i]]) {
                i++;
                continue;
            }
            size_t len = 0;
            int32_t ti = trie_longest(trie, s, n, i, &len);
            if (ti < 0) {
                i++;
                continue;
            }
            const tok_added *a = &t->added[ti];
            size_t start = i, stop = i + len;
            i = stop; /* the scan resumes after the raw match in every case */
            if (a->single_word) {
                bool start_space = true, stop_space = true;
                if (start > 0) {
                    size_t p;
                    start_space = !ember_tok_is_word(last_cp(s, start, &p));
                }
                if (stop < n) {
                    int l;
                    stop_space = !ember_tok_is_word(
                        ember_tok_utf8_dec((const uint8_t *)s + stop, n - stop, &l));
                }
                if (!start_space || !stop_space)
                    continue;
            }
            if (a->lstrip) {
                size_t ns = start;
                while (ns > 0) {
                    size_t p;
                    if (!ember_tok_is_ws(last_cp(s, ns, &p)))
                        break;
                    ns = p;
                }
                start = ns > start_offset ? ns : start_offset;
            }
            if (a->rstrip) {
                while (stop < n) {
                    int l;
                    uint32_t cp = ember_tok_utf8_dec((const uint8_t *)s + stop, n - stop, &l);
                    if (!ember_tok_is_ws(cp))
                        break;
                    stop += (size_t)l;
                }
            }
            PENDING(start_offset, start);
            uint32_t off;
            EMBER_TRY(ember_tok_arena_add(enc, s + start, stop - start, &off));
            tok_span sp = al ? (tok_span){al[start].s, al[stop - 1].e}
                             : (tok_span){base + (uint32_t)start, base + (uint32_t)stop};
            EMBER_TRY(emit(enc, o,
                           (tok_split){.id = a->id, .os = sp.s, .oe = sp.e, .str_off = off,
                                       .str_len = (uint32_t)(stop - start)}));
            start_offset = stop;
        }
    }
    PENDING(start_offset, n);
#undef PENDING
    return EMBER_OK;
}

ember_status ember_tok_added_build(ember_tokenizer *t) {
    /* HF orders special tokens before the others; with leftmost-longest the
     * order only matters between identical contents, where the first wins. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < t->n_added; i++) {
            tok_added *a = &t->added[i];
            if (a->special != (pass == 0))
                continue;
            if (a->normalized)
                EMBER_TRY(ember_tok_trie_add(&t->trie_norm, a->ncontent, a->nlen, i));
            else
                EMBER_TRY(ember_tok_trie_add(&t->trie_raw, a->content, a->len, i));
        }
    return EMBER_OK;
}
