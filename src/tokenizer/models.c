/*
 * models.c — the `model` section of tokenizer.json: WordPiece and BPE
 * (models/wordpiece/mod.rs, models/bpe/model.rs and models/bpe/word.rs in
 * huggingface/tokenizers); Unigram is in unigram.c.
 *
 * WordPiece is greedy longest-match-first with hash lookups of prefix+slice
 * (the key is hashed in two parts, never concatenated). BPE applies merges by
 * rank with a binary heap over a linked list of symbols, exactly like HF's
 * Word::merge_all, so ties and stale entries resolve the same way. Symbols and
 * heap live in the encoding: nothing is allocated per word.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"
#include "io/json.h"

struct tok_bpe_sym {
    int32_t id;
    int32_t prev, next;
    uint32_t len;
};

/* ---- parsing ---------------------------------------------------------------- */

static ember_status opt_str(const json_t *j, const char *key, const char *def, char **out,
                            const char *what) {
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) {
        *out = def ? ember_strdup(def) : NULL;
        return (def && !*out) ? EMBER_E_NOMEM : EMBER_OK;
    }
    if (!json_is_string(v))
        return ember_error(EMBER_E_FORMAT, "%s: model.%s must be a string, found %s", what, key,
                           ember_json_type_name(v));
    *out = ember_strndup(json_string_value(v), json_string_length(v));
    return *out ? EMBER_OK : EMBER_E_NOMEM;
}

static ember_status opt_bool(const json_t *j, const char *key, bool *out, const char *what) {
    ember_status st = ember_json_bool(j, key, what, out);
    if (st == EMBER_E_NOT_FOUND) {
        *out = false;
        return EMBER_OK;
    }
    return st;
}

static ember_status parse_vocab(const json_t *v, tok_model *m, const char *what) {
    if (!json_is_object(v))
        return ember_error(EMBER_E_FORMAT, "%s: model.vocab must be an object, found %s", what,
                           ember_json_type_name(v));
    if (json_object_size(v) == 0)
        return ember_error(EMBER_E_FORMAT, "%s: model.vocab is empty", what);
    m->vocab.max_id = -1;
    const char *key;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach((json_t *)v, key, klen, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= INT32_MAX)
            return ember_error(EMBER_E_FORMAT,
                               "%s: model.vocab['%.*s'] must be a non-negative integer id, found %s",
                               what, (int)(klen > 64 ? 64 : klen), key, ember_json_type_name(val));
        EMBER_TRY(ember_tok_vocab_put(&m->vocab, key, klen, (int32_t)json_integer_value(val)));
    }
    /* id -> string, as HF's vocab_r: a table indexed by id, so ids are capped
     * (real vocabularies stay under 300K; a hostile file must not make us
     * allocate gigabytes) */
    if (m->vocab.max_id >= EMBER_TOK_MAX_ID)
        return ember_error(EMBER_E_FORMAT, "%s: model.vocab has id %d; ids above %d are not supported",
                           what, m->vocab.max_id, EMBER_TOK_MAX_ID - 1);
    m->n_ids = m->vocab.max_id + 1;
    m->id2str = ember_calloc((size_t)m->n_ids, sizeof *m->id2str, "vocabulary");
    if (!m->id2str)
        return EMBER_E_NOMEM;
    for (uint32_t i = 0; i <= m->vocab.mask; i++) {
        const struct tok_vent *e = &m->vocab.tab[i];
        if (e->id >= 0)
            m->id2str[e->id] = m->vocab.strs + e->off;
    }
    return EMBER_OK;
}

static ember_status merge_put(tok_model *m, int32_t a, int32_t b, uint32_t rank, int32_t nid) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32);
    uint32_t j = h & m->merges_mask;
    while (m->merges[j].key != UINT64_MAX && m->merges[j].key != key)
        j = (j + 1) & m->merges_mask;
    /* a repeated pair keeps the last rank, as HF's HashMap collect() */
    m->merges[j] = (tok_merge_ent){key, rank, nid};
    return EMBER_OK;
}

static inline const tok_merge_ent *merge_get(const tok_model *m, int32_t a, int32_t b) {
    if (!m->merges)
        return NULL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32);
    uint32_t j = h & m->merges_mask;
    for (;;) {
        const tok_merge_ent *e = &m->merges[j];
        if (e->key == key)
            return e;
        if (e->key == UINT64_MAX)
            return NULL;
        j = (j + 1) & m->merges_mask;
    }
}

static ember_status parse_merges(const json_t *arr, tok_model *m, const char *what) {
    if (!json_is_array(arr))
        return ember_error(EMBER_E_FORMAT, "%s: model.merges must be an array, found %s", what,
                           ember_json_type_name(arr));
    size_t n = json_array_size(arr);
    uint32_t size = 16;
    while (size < n * 2 + 2)
        size *= 2;
    m->merges = ember_malloc(size * sizeof *m->merges, "merges");
    if (!m->merges)
        return EMBER_E_NOMEM;
    for (uint32_t i = 0; i < size; i++)
        m->merges[i].key = UINT64_MAX;
    m->merges_mask = size - 1;
    char *buf = NULL;
    size_t cap = 0;
    ember_status st = EMBER_OK;
    for (size_t i = 0; i < n && st == EMBER_OK; i++) {
        const json_t *e = json_array_get(arr, i);
        const char *a, *b;
        size_t al, bl;
        if (json_is_string(e)) {
            /* legacy "a b": exactly one space (convert_merges_to_hashmap) */
            const char *s = json_string_value(e);
            size_t sl = json_string_length(e);
            const char *sp = memchr(s, ' ', sl);
            if (!sp || memchr(sp + 1, ' ', sl - (size_t)(sp + 1 - s))) {
                st = ember_error(EMBER_E_FORMAT, "%s: merge #%zu '%.*s' is not of the form 'a b'",
                                 what, i, (int)(sl > 64 ? 64 : sl), s);
                break;
            }
            a = s;
            al = (size_t)(sp - s);
            b = sp + 1;
            bl = sl - al - 1;
        } else if (json_is_array(e) && json_array_size(e) == 2 &&
                   json_is_string(json_array_get(e, 0)) && json_is_string(json_array_get(e, 1))) {
            a = json_string_value(json_array_get(e, 0));
            al = json_string_length(json_array_get(e, 0));
            b = json_string_value(json_array_get(e, 1));
            bl = json_string_length(json_array_get(e, 1));
        } else {
            st = ember_error(EMBER_E_FORMAT,
                             "%s: merge #%zu must be a string 'a b' or a pair [\"a\", \"b\"]", what,
                             i);
            break;
        }
        int32_t ia = ember_tok_vocab_get(&m->vocab, a, al);
        int32_t ib = ember_tok_vocab_get(&m->vocab, b, bl);
        if (ia < 0 || ib < 0) {
            const char *bad = ia < 0 ? a : b;
            size_t badl = ia < 0 ? al : bl;
            st = ember_error(EMBER_E_FORMAT, "%s: merge #%zu refers to token '%.*s' not in the vocab",
                             what, i, (int)(badl > 64 ? 64 : badl), bad);
            break;
        }
        size_t pl = m->prefix_len;
        if (bl < pl) {
            st = ember_error(EMBER_E_FORMAT,
                             "%s: merge #%zu: '%.*s' is shorter than the continuing_subword_prefix",
                             what, i, (int)bl, b);
            break;
        }
        if ((st = TOK_GROW(buf, cap, al + bl + 1)) != EMBER_OK)
            break;
        memcpy(buf, a, al);
        memcpy(buf + al, b + pl, bl - pl);
        int32_t nid = ember_tok_vocab_get(&m->vocab, buf, al + bl - pl);
        if (nid < 0) {
            st = ember_error(EMBER_E_FORMAT, "%s: merge #%zu produces '%.*s', which is not in the vocab",
                             what, i, (int)((al + bl - pl) > 64 ? 64 : (al + bl - pl)), buf);
            break;
        }
        st = merge_put(m, ia, ib, (uint32_t)i, nid);
    }
    free(buf);
    return st;
}

ember_status ember_tok_model_parse(const json_t *j, tok_model *m, const char *what) {
    memset(m, 0, sizeof *m);
    m->unk_id = -1;
    if (!json_is_object(j))
        return ember_error(EMBER_E_FORMAT, "%s: 'model' must be an object, found %s", what,
                           ember_json_type_name(j));
    const char *type = NULL;
    ember_status st = ember_json_str(j, "type", what, &type);
    if (st == EMBER_E_FORMAT)
        return st;
    if (!type) {
        /* bert-base-uncased's file has no "type": infer it from the fields,
         * as serde's untagged fallback does. */
        const json_t *v = json_object_get(j, "vocab");
        if (json_object_get(j, "merges"))
            type = "BPE";
        else if (json_is_array(v))
            type = "Unigram";
        else if (json_object_get(j, "max_input_chars_per_word") ||
                 json_object_get(j, "continuing_subword_prefix"))
            type = "WordPiece";
        else if (v)
            type = "WordLevel";
        else
            return ember_error(EMBER_E_FORMAT, "%s: model has no 'type' and no 'vocab'", what);
    }
    const json_t *vocab = json_object_get(j, "vocab");
    if (!vocab)
        return ember_error(EMBER_E_FORMAT, "%s: model has no 'vocab'", what);
    if (!strcmp(type, "WordPiece")) {
        m->kind = TOK_M_WORDPIECE;
        EMBER_TRY(parse_vocab(vocab, m, what));
        EMBER_TRY(opt_str(j, "unk_token", "[UNK]", &m->unk, what));
        EMBER_TRY(opt_str(j, "continuing_subword_prefix", "##", &m->prefix, what));
        m->prefix_len = strlen(m->prefix);
        int64_t mc = 100;
        st = ember_json_int(j, "max_input_chars_per_word", what, &mc);
        if (st == EMBER_E_FORMAT)
            return st;
        if (mc < 0 || mc > INT32_MAX)
            return ember_error(EMBER_E_FORMAT, "%s: max_input_chars_per_word out of range", what);
        m->max_chars = (int32_t)mc;
        m->unk_id = ember_tok_vocab_get(&m->vocab, m->unk, strlen(m->unk));
        if (m->unk_id < 0)
            return ember_error(EMBER_E_FORMAT, "%s: WordPiece unk_token '%s' is not in the vocab",
                               what, m->unk);
    } else if (!strcmp(type, "BPE")) {
        /* a freed model's address can be reused, its serial cannot */
        static uint64_t serials;
        m->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
        m->kind = TOK_M_BPE;
        const json_t *d = json_object_get(j, "dropout");
        if (d && !json_is_null(d)) {
            if (!json_is_number(d))
                return ember_error(EMBER_E_FORMAT, "%s: model.dropout must be a number", what);
            if (json_number_value(d) > 0.0)
                return ember_error(EMBER_E_UNSUPPORTED,
                                   "%s: BPE dropout (random tokenization) is not supported", what);
        }
        EMBER_TRY(parse_vocab(vocab, m, what));
        EMBER_TRY(opt_str(j, "unk_token", NULL, &m->unk, what));
        EMBER_TRY(opt_str(j, "continuing_subword_prefix", "", &m->prefix, what));
        EMBER_TRY(opt_str(j, "end_of_word_suffix", "", &m->suffix, what));
        m->prefix_len = strlen(m->prefix);
        m->suffix_len = strlen(m->suffix);
        EMBER_TRY(opt_bool(j, "fuse_unk", &m->fuse_unk, what));
        EMBER_TRY(opt_bool(j, "byte_fallback", &m->byte_fallback, what));
        EMBER_TRY(opt_bool(j, "ignore_merges", &m->ignore_merges, what));
        if (m->unk) {
            m->unk_id = ember_tok_vocab_get(&m->vocab, m->unk, strlen(m->unk));
            if (m->unk_id < 0)
                return ember_error(EMBER_E_FORMAT, "%s: BPE unk_token '%s' is not in the vocab",
                                   what, m->unk);
        }
        for (uint32_t c = 0; c < 0x180; c++) {
            char kb[4];
            int l = ember_tok_utf8_enc(c, kb);
            m->char_id[c] = ember_tok_vocab_get(&m->vocab, kb, (size_t)l);
        }
        const json_t *merges = json_object_get(j, "merges");
        if (!merges)
            return ember_error(EMBER_E_FORMAT, "%s: BPE model has no 'merges'", what);
        EMBER_TRY(parse_merges(merges, m, what));
    } else if (!strcmp(type, "Unigram")) {
        m->kind = TOK_M_UNIGRAM;
        EMBER_TRY(ember_tok_unigram_parse(j, m, what));
    } else {
        return ember_error(EMBER_E_UNSUPPORTED, "%s: model type '%s' is not supported", what,
                           type);
    }
    return EMBER_OK;
}

void ember_tok_model_free(tok_model *m) {
    ember_tok_vocab_free(&m->vocab);
    free(m->unk);
    free(m->prefix);
    free(m->suffix);
    free(m->merges);
    free(m->id2str);
    ember_tok_unigram_free(&m->uni);
    memset(m, 0, sizeof *m);
}

/* ---- running ------------------------------------------------------------------ */

ember_status ember_tok_push(ember_encoding *enc, int32_t id, tok_span sp, const char *str,
                            uint32_t arena_off) {
    if (enc->cn + 1 > enc->ccap) {
        size_t c1 = (size_t)enc->ccap, c2 = c1, c3 = c1, c4 = c1, need = (size_t)enc->cn + 1;
        EMBER_TRY(TOK_GROW(enc->cids, c1, need));
        EMBER_TRY(TOK_GROW(enc->cspan, c2, need));
        EMBER_TRY(TOK_GROW(enc->cstr, c3, need));
        EMBER_TRY(TOK_GROW(enc->carena, c4, need));
        enc->ccap = (int64_t)EMBER_MIN(EMBER_MIN(c1, c2), EMBER_MIN(c3, c4));
    }
    enc->cids[enc->cn] = id;
    enc->cspan[enc->cn] = sp;
    enc->cstr[enc->cn] = str;
    enc->carena[enc->cn] = arena_off;
    enc->cn++;
    return EMBER_OK;
}

/* NormalizedString::convert_offsets of a token [ts, te) of a split. */
static inline tok_span span_of(const tok_nstr *nb, uint32_t ns, uint32_t ts, uint32_t te,
                               uint32_t shift) {
    if (ts == te)
        return (tok_span){shift + (ts - ns), shift + (te - ns)};
    return (tok_span){nb->al[ts].s, nb->al[te - 1].e};
}

static ember_status wordpiece(const tok_model *m, ember_encoding *enc, const tok_nstr *nb,
                              uint32_t ns, uint32_t ne, uint32_t shift) {
    const uint8_t *b = (const uint8_t *)nb->b;
    size_t nchars = 0;
    for (uint32_t i = ns; i < ne; i++)
        nchars += (b[i] & 0xC0) != 0x80;
    int64_t mark = enc->cn;
    if (nchars <= (size_t)m->max_chars) {
        uint32_t start = ns;
        size_t maxlen = m->vocab.max_len;
        while (start < ne) {
            size_t pl = start > ns ? m->prefix_len : 0;
            if (maxlen < pl)
                break;
            uint32_t end = ne;
            if ((size_t)(end - start) > maxlen - pl) {
                end = start + (uint32_t)(maxlen - pl);
                while (end > start && (b[end] & 0xC0) == 0x80)
                    end--;
            }
            int32_t id = -1;
            const char *key = NULL;
            while (end > start) {
                id = ember_tok_vocab_get2(&m->vocab, m->prefix, pl, nb->b + start, end - start,
                                          &key);
                if (id >= 0)
                    break;
                end--;
                while (end > start && (b[end] & 0xC0) == 0x80)
                    end--;
            }
            if (id < 0)
                break;
            EMBER_TRY(ember_tok_push(enc, id, span_of(nb, ns, start, end, shift), key, 0));
            start = end;
        }
        if (start >= ne)
            return EMBER_OK;
    }
    /* the whole word is one [UNK] */
    enc->cn = mark;
    return ember_tok_push(enc, m->unk_id, span_of(nb, ns, ns, ne, shift), m->unk, 0);
}

static inline bool heap_less(const tok_bpe_merge *a, const tok_bpe_merge *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(tok_bpe_merge *h, size_t *n, tok_bpe_merge x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&x, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static tok_bpe_merge heap_pop(tok_bpe_merge *h, size_t *n) {
    tok_bpe_merge top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n)
            break;
        if (l + 1 < *n && heap_less(&h[l + 1], &h[l]))
            l++;
        if (!heap_less(&h[l], &x))
            break;
        h[i] = h[l];
        i = l;
    }
    h[i] = x;
    return top;
}

/* ---- BPE word cache ------------------------------------------------------------ */

enum { BC_SLOTS = 8192, BC_MAX_WORD = 64, BC_ARENA = 1 << 20 };

static void bc_reset(ember_encoding *enc, const tok_model *m) {
    if (enc->bc_tab)
        memset(enc->bc_tab, 0, BC_SLOTS * sizeof *enc->bc_tab);
    enc->bc_len = 0;
    enc->bc_count = 0;
    enc->bc_owner = m->serial;
}

/* Returns the slot holding w, or the empty slot where it would go. */
static struct tok_bc_ent *bc_find(ember_encoding *enc, const char *w, size_t wl, uint32_t h) {
    uint32_t j = h & (BC_SLOTS - 1);
    for (;;) {
        struct tok_bc_ent *e = &enc->bc_tab[j];
        if (e->wlen == 0)
            return e;
        if (e->hash == h && e->wlen == wl && memcmp(enc->bc_arena + e->off, w, wl) == 0)
            return e;
        j = (j + 1) & (BC_SLOTS - 1);
    }
}

static ember_status bpe_merge(const tok_model *m, ember_encoding *enc, const tok_nstr *nb,
                              uint32_t ns, uint32_t ne, uint32_t shift);

static ember_status bpe(const tok_model *m, ember_encoding *enc, const tok_nstr *nb, uint32_t ns,
                        uint32_t ne, uint32_t shift) {
    const char *w = nb->b + ns;
    size_t wl = ne - ns;
    if (wl == 0 || wl > BC_MAX_WORD || (m->ignore_merges && ember_tok_vocab_get(&m->vocab, w, wl) >= 0))
        return bpe_merge(m, enc, nb, ns, ne, shift);
    if (!enc->bc_tab) {
        enc->bc_tab = calloc(BC_SLOTS, sizeof *enc->bc_tab);
        enc->bc_arena = malloc(BC_ARENA);
        if (!enc->bc_tab || !enc->bc_arena) {
            free(enc->bc_tab);
            free(enc->bc_arena);
            enc->bc_tab = NULL;
            enc->bc_arena = NULL;
            return bpe_merge(m, enc, nb, ns, ne, shift);
        }
        enc->bc_owner = m->serial;
    }
    if (enc->bc_owner != m->serial)
        bc_reset(enc, m);
    uint32_t h = ember_tok_hash(w, wl);
    struct tok_bc_ent *e = bc_find(enc, w, wl, h);
    if (e->wlen) {
        const uint8_t *p = enc->bc_arena + e->off + e->wlen;
        uint32_t off = ns;
        for (uint16_t i = 0; i < e->ntok; i++) {
            int32_t id;
            uint32_t len;
            memcpy(&id, p + 8 * i, 4);
            memcpy(&len, p + 8 * i + 4, 4);
            const char *str = id < m->n_ids ? m->id2str[id] : NULL;
            uint32_t te = off + len > ne ? ne : off + len;
            EMBER_TRY(ember_tok_push(enc, id, span_of(nb, ns, off, te, shift), str, 0));
            off = te;
        }
        return EMBER_OK;
    }
    int64_t first = enc->cn;
    EMBER_TRY(bpe_merge(m, enc, nb, ns, ne, shift));
    int64_t nt = enc->cn - first;
    size_t need = wl + (size_t)nt * 8;
    if (nt > 0xFFFF || enc->bc_count >= BC_SLOTS / 2 || enc->bc_len + need > BC_ARENA) {
        if (nt > 0xFFFF || need > BC_ARENA)
            return EMBER_OK;
        bc_reset(enc, m);
        e = bc_find(enc, w, wl, h);
    }
    uint8_t *p = enc->bc_arena + enc->bc_len;
    memcpy(p, w, wl);
    /* byte lengths of the tokens: the surviving symbols of bpe_merge, in order */
    const tok_bpe_sym *sy = enc->syms;
    int64_t i = 0;
    for (int32_t k = 0; nt > 0 && k >= 0 && i < nt; k = sy[k].next) {
        if (sy[k].len == 0)
            continue;
        int32_t id = enc->cids[first + i];
        memcpy(p + wl + 8 * i, &id, 4);
        memcpy(p + wl + 8 * i + 4, &sy[k].len, 4);
        i++;
    }
    *e = (struct tok_bc_ent){h, (uint32_t)enc->bc_len, (uint16_t)wl, (uint16_t)nt};
    enc->bc_len += need;
    enc->bc_count++;
    return EMBER_OK;
}

static ember_status bpe_merge(const tok_model *m, ember_encoding *enc, const tok_nstr *nb,
                              uint32_t ns, uint32_t ne, uint32_t shift) {
    if (ne == ns)
        return EMBER_OK;
    const char *w = nb->b + ns;
    size_t wl = ne - ns;
    if (m->ignore_merges) {
        const char *key;
        int32_t id = ember_tok_vocab_get2(&m->vocab, w, wl, "", 0, &key);
        if (id >= 0)
            return ember_tok_push(enc, id, span_of(nb, ns, ns, ne, shift), key, 0);
    }
    EMBER_TRY(TOK_GROW(enc->syms, enc->syms_cap, wl * 4 + 4));
    tok_bpe_sym *sy = enc->syms;
    size_t n = 0;
    int32_t unk_len = -1; /* pending unk length, -1 none */
    for (size_t i = 0; i < wl;) {
        size_t cl = (size_t)ember_tok_lead_len((uint8_t)w[i]);
        if (i + cl > wl)
            cl = wl - i;
        bool first = i == 0, last = i + cl == wl;
        /* key = [prefix] char [suffix], looked up without concatenating when
         * only one side is present */
        int32_t id;
        char kb[64];
        const char *key = w + i;
        size_t kl = cl;
        if ((!first && m->prefix_len) || (last && m->suffix_len)) {
            size_t need = (first ? 0 : m->prefix_len) + cl + (last ? m->suffix_len : 0);
            char *k = kb;
            if (need > sizeof kb) {
                EMBER_TRY(TOK_GROW(enc->key, enc->key_cap, need));
                k = enc->key;
            }
            size_t p = 0;
            if (!first) {
                memcpy(k, m->prefix, m->prefix_len);
                p = m->prefix_len;
            }
            memcpy(k + p, w + i, cl);
            p += cl;
            if (last) {
                memcpy(k + p, m->suffix, m->suffix_len);
                p += m->suffix_len;
            }
            key = k;
            kl = p;
        }
        if (key == w + i && cl <= 2 && (uint8_t)w[i] < 0xC6) {
            /* one char below U+0180, no prefix or suffix around it */
            int dl;
            uint32_t cp = ember_tok_utf8_dec((const uint8_t *)w + i, cl, &dl);
            id = (size_t)dl == cl ? m->char_id[cp] : ember_tok_vocab_get(&m->vocab, key, kl);
        } else {
            id = ember_tok_vocab_get(&m->vocab, key, kl);
        }
        if (id >= 0) {
            if (unk_len >= 0) {
                sy[n] = (tok_bpe_sym){m->unk_id, (int32_t)n - 1, (int32_t)n + 1, (uint32_t)unk_len};
                n++;
                unk_len = -1;
            }
            sy[n] = (tok_bpe_sym){id, (int32_t)n - 1, (int32_t)n + 1, (uint32_t)cl};
            n++;
        } else {
            bool done = false;
            if (m->byte_fallback) {
                int32_t ids[128];
                size_t q = 0;
                bool all = kl <= 128;
                for (; all && q < kl; q++) {
                    char hex[8];
                    snprintf(hex, sizeof hex, "<0x%02X>", (unsigned)(uint8_t)key[q]);
                    ids[q] = ember_tok_vocab_get(&m->vocab, hex, 6);
                    if (ids[q] < 0)
                        all = false;
                }
                if (all) {
                    EMBER_TRY(TOK_GROW(enc->syms, enc->syms_cap, n + kl + wl * 4 + 4));
                    sy = enc->syms;
                    /* HF adds the byte tokens without flushing a pending unk */
                    for (q = 0; q < kl; q++) {
                        sy[n] = (tok_bpe_sym){ids[q], (int32_t)n - 1, (int32_t)n + 1, 1};
                        n++;
                    }
                    done = true;
                }
            }
            if (!done && m->unk_id >= 0) {
                if (unk_len >= 0 && m->fuse_unk) {
                    unk_len += (int32_t)cl;
                } else {
                    if (unk_len >= 0) {
                        sy[n] = (tok_bpe_sym){m->unk_id, (int32_t)n - 1, (int32_t)n + 1,
                                              (uint32_t)unk_len};
                        n++;
                    }
                    unk_len = (int32_t)cl;
                }
            }
        }
        i += cl;
    }
    if (unk_len >= 0) {
        sy[n] = (tok_bpe_sym){m->unk_id, (int32_t)n - 1, (int32_t)n + 1, (uint32_t)unk_len};
        n++;
    }
    if (n == 0)
        return EMBER_OK;
    sy[n - 1].next = -1;

    /* Word::merge_all */
    EMBER_TRY(TOK_GROW(enc->heap, enc->heap_cap, n * 2 + 2));
    tok_bpe_merge *h = enc->heap;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const tok_merge_ent *e = merge_get(m, sy[i].id, sy[i + 1].id);
        if (e)
            heap_push(h, &hn, (tok_bpe_merge){e->rank, e->new_id, (uint32_t)i});
    }
    while (hn > 0) {
        tok_bpe_merge top = heap_pop(h, &hn);
        tok_bpe_sym *cur = &sy[top.pos];
        if (cur->len == 0 || cur->next < 0)
            continue;
        tok_bpe_sym *right = &sy[cur->next];
        const tok_merge_ent *e = merge_get(m, cur->id, right->id);
        if (!e || e->new_id != top.new_id)
            continue;
        cur->id = top.new_id;
        cur->len += right->len;
        right->len = 0;
        cur->next = right->next;
        if (cur->next >= 0)
            sy[cur->next].prev = (int32_t)top.pos;
        if (hn + 2 > enc->heap_cap) {
            EMBER_TRY(TOK_GROW(enc->heap, enc->heap_cap, hn + 2));
            h = enc->heap;
        }
        if (cur->prev >= 0) {
            const tok_merge_ent *pe = merge_get(m, sy[cur->prev].id, cur->id);
            if (pe)
                heap_push(h, &hn, (tok_bpe_merge){pe->rank, pe->new_id, (uint32_t)cur->prev});
        }
        if (cur->next >= 0) {
            const tok_merge_ent *ne2 = merge_get(m, cur->id, sy[cur->next].id);
            if (ne2)
                heap_push(h, &hn, (tok_bpe_merge){ne2->rank, ne2->new_id, top.pos});
        }
    }
    uint32_t off = ns;
    for (int32_t i = 0; i >= 0 && (size_t)i < n; i = sy[i].next) {
        if (sy[i].len == 0)
            continue;
        uint32_t te = off + sy[i].len;
        if (te > ne)
            te = ne;
        const char *str = sy[i].id < m->n_ids ? m->id2str[sy[i].id] : NULL;
        EMBER_TRY(ember_tok_push(enc, sy[i].id, span_of(nb, ns, off, te, shift), str, 0));
        off = te;
    }
    return EMBER_OK;
}

ember_status ember_tok_model_run(const tok_model *m, ember_encoding *enc, const tok_nstr *nb,
                                 uint32_t ns, uint32_t ne, uint32_t shift) {
    if (m->kind == TOK_M_WORDPIECE)
        return wordpiece(m, enc, nb, ns, ne, shift);
    if (m->kind == TOK_M_UNIGRAM)
        return ember_tok_unigram_run(m, enc, nb, ns, ne, shift);
    return bpe(m, enc, nb, ns, ne, shift);
}
