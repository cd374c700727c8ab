/*
 * unigram.c — the `Unigram` model of tokenizer.json (SentencePiece unigram
 * language model), as Hugging Face `tokenizers` runs it
 * (models/unigram/model.rs: encode_optimized and Model::tokenize).
 *
 * Viterbi over byte positions: from each character start, every piece that
 * prefixes the rest of the word extends the best path (score = sum of piece
 * log-probabilities, strictly greater replaces, so the first candidate wins
 * ties, in order of increasing length); when no piece is exactly the next
 * character, an unknown node of score min_score - 10 covers it. Backtracking
 * fuses consecutive unknown nodes (HF always builds Unigram with fuse_unk),
 * and each resulting string is looked up again: found -> its id; else the
 * <0xXX> byte pieces when byte_fallback has all of them; else unk_id, with
 * the text itself as the token string (as HF does).
 *
 * Pieces live in a byte trie whose edges are one open-addressing table keyed
 * by (node << 8 | byte), with the root's 256 children direct: one probe per
 * byte, no per-node child lists. The lattice lives in the encoding.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"
#include "io/json.h"

/* HF's K_UNK_PENALTY: an unknown character scores min_score - 10 */
#define UNK_PENALTY 10.0
/* node ids must fit in 24 bits of an edge key */
#define MAX_NODES ((1u << 24) - 1)

struct tok_uni_node {
    double score;  /* best path score ending here */
    int32_t start; /* start of the last piece of that path, -1: unreached */
    int32_t id;
};

/* ---- trie ------------------------------------------------------------------- */

static inline uint32_t edge_slot(uint32_t key, uint32_t mask) {
    uint32_t h = key * 0x9E3779B1u;
    return (h ^ (h >> 15)) & mask;
}

static inline uint32_t edge_get(const tok_unigram *u, uint32_t node, uint8_t b) {
    if (node == 0)
        return u->root[b];
    uint32_t key = node << 8 | b;
    for (uint32_t j = edge_slot(key, u->edge_mask);; j = (j + 1) & u->edge_mask) {
        const struct tok_uni_edge *e = &u->edges[j];
        if (e->child == 0)
            return 0;
        if (e->key == key)
            return e->child;
    }
}

static ember_status edges_rehash(tok_unigram *u, uint32_t size) {
    struct tok_uni_edge *t = calloc(size, sizeof *t);
    if (!t)
        return ember_error(EMBER_E_NOMEM, "out of memory for the Unigram trie");
    if (u->edges) {
        for (uint32_t i = 0; i <= u->edge_mask; i++) {
            if (!u->edges[i].child)
                continue;
            uint32_t j = edge_slot(u->edges[i].key, size - 1);
            while (t[j].child)
                j = (j + 1) & (size - 1);
            t[j] = u->edges[i];
        }
        free(u->edges);
    }
    u->edges = t;
    u->edge_mask = size - 1;
    return EMBER_OK;
}

static ember_status new_node(tok_unigram *u, uint32_t *out, const char *what) {
    if (u->n_nodes >= MAX_NODES)
        return ember_error(EMBER_E_FORMAT, "%s: Unigram vocab is too large (over %u trie nodes)",
                           what, MAX_NODES);
    size_t cap = u->nodes_cap;
    EMBER_TRY(TOK_GROW(u->node_id, cap, (size_t)u->n_nodes + 1));
    u->nodes_cap = (uint32_t)cap;
    u->node_id[u->n_nodes] = -1;
    *out = u->n_nodes++;
    return EMBER_OK;
}

static ember_status trie_add(tok_unigram *u, const uint8_t *s, size_t n, int32_t id,
                             const char *what) {
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = edge_get(u, node, s[i]);
        if (!c) {
            EMBER_TRY(new_node(u, &c, what));
            if (node == 0) {
                u->root[s[i]] = c;
            } else {
                if ((u->n_edges + 1) * 2 > u->edge_mask + 1)
                    EMBER_TRY(edges_rehash(u, (u->edge_mask + 1) * 2));
                uint32_t key = node << 8 | s[i];
                uint32_t j = edge_slot(key, u->edge_mask);
                while (u->edges[j].child)
                    j = (j + 1) & u->edge_mask;
                u->edges[j] = (struct tok_uni_edge){key, c};
                u->n_edges++;
            }
        }
        node = c;
    }
    /* a repeated piece maps to its last id, as HF's token_to_ids */
    u->node_id[node] = id;
    return EMBER_OK;
}

/* ---- parsing ------------------------------------------------------------------ */

ember_status ember_tok_unigram_parse(const json_t *j, tok_model *m, const char *what) {
    tok_unigram *u = &m->uni;
    const json_t *v = json_object_get(j, "vocab");
    if (!json_is_array(v))
        return ember_error(EMBER_E_FORMAT,
                           "%s: Unigram model.vocab must be an array of [piece, score], found %s",
                           what, ember_json_type_name(v));
    size_t n = json_array_size(v);
    if (n == 0)
        return ember_error(EMBER_E_FORMAT, "%s: Unigram model.vocab is empty", what);
    if (n > EMBER_TOK_MAX_ID)
        return ember_error(EMBER_E_FORMAT, "%s: Unigram model.vocab has %zu pieces; at most %d "
                           "are supported", what, n, EMBER_TOK_MAX_ID);
    const json_t *uk = json_object_get(j, "unk_id");
    m->unk_id = -1;
    if (uk && !json_is_null(uk)) {
        if (!json_is_integer(uk) || json_integer_value(uk) < 0 ||
            json_integer_value(uk) >= (json_int_t)n)
            return ember_error(EMBER_E_FORMAT,
                               "%s: Unigram model.unk_id must be null or an index into the %zu "
                               "pieces of model.vocab",
                               what, n);
        m->unk_id = (int32_t)json_integer_value(uk);
    }
    ember_status st = ember_json_bool(j, "byte_fallback", what, &m->byte_fallback);
    if (st == EMBER_E_NOT_FOUND)
        m->byte_fallback = false;
    else if (st != EMBER_OK)
        return st;

    u->score = ember_malloc(n * sizeof *u->score, "Unigram scores");
    if (!u->score)
        return EMBER_E_NOMEM;
    uint32_t root;
    EMBER_TRY(new_node(u, &root, what));
    EMBER_TRY(edges_rehash(u, 1024));
    u->min_score = INFINITY; /* as HF's f64::INFINITY */
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        const json_t *p = json_array_get(e, 0), *sc = json_array_get(e, 1);
        if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_string(p))
            return ember_error(EMBER_E_FORMAT,
                               "%s: Unigram model.vocab[%zu] must be a pair [piece, score]", what,
                               i);
        if (!json_is_number(sc))
            return ember_error(EMBER_E_FORMAT,
                               "%s: Unigram model.vocab[%zu] ('%.*s'): score must be a number, "
                               "found %s",
                               what, i,
                               (int)(json_string_length(p) > 64 ? 64 : json_string_length(p)),
                               json_string_value(p), ember_json_type_name(sc));
        u->score[i] = json_number_value(sc);
        if (u->score[i] < u->min_score)
            u->min_score = u->score[i];
        EMBER_TRY(ember_tok_vocab_put(&m->vocab, json_string_value(p), json_string_length(p),
                                      (int32_t)i));
        EMBER_TRY(trie_add(u, (const uint8_t *)json_string_value(p), json_string_length(p),
                           (int32_t)i, what));
    }
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", (unsigned)b);
        u->byte_id[b] = ember_tok_vocab_get(&m->vocab, hex, 6);
    }
    /* id -> piece (HF id_to_token reads vocab[id], repeated pieces included);
     * the keys are stable only now that every insertion is done */
    m->n_ids = (int32_t)n;
    m->id2str = ember_calloc(n, sizeof *m->id2str, "vocabulary");
    if (!m->id2str)
        return EMBER_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(json_array_get(v, i), 0);
        ember_tok_vocab_get2(&m->vocab, json_string_value(p), json_string_length(p), "", 0,
                             &m->id2str[i]);
    }
    return EMBER_OK;
}

void ember_tok_unigram_free(tok_unigram *u) {
    free(u->score);
    free(u->edges);
    free(u->node_id);
    memset(u, 0, sizeof *u);
}

/* ---- encoding -------------------------------------------------------------------- */

/* NormalizedString::convert_offsets of a token [ts, te) of the split. */
static inline tok_span span_of(const tok_nstr *nb, uint32_t ns, uint32_t ts, uint32_t te,
                               uint32_t shift) {
    if (ts == te)
        return (tok_span){shift + (ts - ns), shift + (te - ns)};
    return (tok_span){nb->al[ts].s, nb->al[te - 1].e};
}

/* One token of the fused path: the string s[ts, te) (absolute in nb). */
static ember_status emit(const tok_model *m, ember_encoding *enc, const tok_nstr *nb, uint32_t ns,
                         uint32_t ts, uint32_t te, int32_t id, bool lookup, uint32_t shift) {
    tok_span sp = span_of(nb, ns, ts, te, shift);
    const char *s = nb->b + ts;
    size_t len = te - ts;
    if (!lookup)
        return ember_tok_push(enc, id, sp, m->id2str[id], 0);
    const char *key;
    int32_t found = ember_tok_vocab_get2(&m->vocab, s, len, "", 0, &key);
    if (found >= 0)
        return ember_tok_push(enc, found, sp, key, 0);
    if (m->byte_fallback) {
        const tok_unigram *u = &m->uni;
        bool all = true;
        for (size_t i = 0; all && i < len; i++)
            all = u->byte_id[(uint8_t)s[i]] >= 0;
        if (all) {
            /* every byte token spans the whole unknown string */
            for (size_t i = 0; i < len; i++) {
                int32_t bid = u->byte_id[(uint8_t)s[i]];
                EMBER_TRY(ember_tok_push(enc, bid, sp, m->id2str[bid], 0));
            }
            return EMBER_OK;
        }
    }
    /* the unknown token's string is the text it covers */
    uint32_t off;
    EMBER_TRY(ember_tok_arena_add(enc, s, len, &off));
    return ember_tok_push(enc, m->unk_id, sp, NULL, off);
}

ember_status ember_tok_unigram_run(const tok_model *m, ember_encoding *enc, const tok_nstr *nb,
                                   uint32_t ns, uint32_t ne, uint32_t shift) {
    const tok_unigram *u = &m->uni;
    size_t size = ne - ns;
    if (size == 0)
        return EMBER_OK;
    EMBER_TRY(TOK_GROW(enc->uni, enc->uni_cap, size + 1));
    struct tok_uni_node *lat = enc->uni;
    for (size_t k = 0; k <= size; k++)
        lat[k] = (struct tok_uni_node){0.0, -1, 0};
    const uint8_t *s = (const uint8_t *)nb->b + ns;
    const double unk_score = u->min_score - UNK_PENALTY;
    for (size_t p = 0; p < size;) {
        const double base = lat[p].score;
        size_t mblen = (size_t)ember_tok_lead_len(s[p]);
        if (mblen > size - p)
            mblen = size - p;
        bool single = false;
        uint32_t node = 0;
        for (size_t k = p; k < size; k++) {
            node = edge_get(u, node, s[k]);
            if (!node)
                break;
            int32_t id = u->node_id[node];
            if (id < 0)
                continue;
            struct tok_uni_node *t = &lat[k + 1];
            double cand = u->score[id] + base;
            if (t->start < 0 || cand > t->score)
                *t = (struct tok_uni_node){cand, (int32_t)p, id};
            if (k + 1 - p == mblen)
                single = true;
        }
        if (!single) {
            if (m->unk_id < 0)
                return ember_error(EMBER_E_FORMAT,
                                   "Unigram model: no piece covers a character and the model has "
                                   "no unk_id (Hugging Face fails with MissingUnkId)");
            struct tok_uni_node *t = &lat[p + mblen];
            double cand = unk_score + base;
            if (t->start < 0 || cand > t->score)
                *t = (struct tok_uni_node){cand, (int32_t)p, m->unk_id};
        }
        p += mblen;
    }
    /* backtrack into uni_path (reversed), then emit in text order */
    size_t np = 0;
    for (size_t e = size; e > 0;) {
        const struct tok_uni_node *t = &lat[e];
        if (t->start < 0 || (size_t)t->start >= e)
            return ember_error(EMBER_E_INTERNAL, "Unigram lattice has a gap at byte %zu", e);
        EMBER_TRY(TOK_GROW(enc->uni_path, enc->uni_path_cap, np + 1));
        enc->uni_path[np++] = (struct tok_seg){(uint32_t)t->start, (uint32_t)e, t->id};
        e = (size_t)t->start;
    }
    for (size_t k = np; k > 0;) {
        const struct tok_seg *g = &enc->uni_path[--k];
        if (m->unk_id >= 0 && g->m == m->unk_id) {
            /* a run of unknown nodes becomes one string */
            uint32_t ts = g->s, te = g->e;
            while (k > 0 && enc->uni_path[k - 1].m == m->unk_id)
                te = enc->uni_path[--k].e;
            EMBER_TRY(emit(m, enc, nb, ns, ns + ts, ns + te, -1, true, shift));
        } else {
            EMBER_TRY(emit(m, enc, nb, ns, ns + g->s, ns + g->e, g->m, false, shift));
        }
    }
    return EMBER_OK;
}
