/*
 * internal.h — data structures shared by the files of the tokenizer module.
 *
 * The pipeline mirrors Hugging Face `tokenizers` (tokenizer/mod.rs):
 *   input bytes -> valid UTF-8 "work text" (U+FFFD replacement, optional
 *   Python str.lower) -> added tokens split (non-normalized) -> normalizer per
 *   piece -> added tokens split (normalized) -> pre-tokenizer -> model ->
 *   truncation -> post-processor -> offsets mapped back to the caller's bytes.
 *
 * Offsets are tracked like HF's NormalizedString: every byte of a normalized
 * buffer carries the span [s, e) of work-text bytes it came from (a whole
 * character's span for multi-byte characters). Unlike HF, spans are absolute
 * in the work text, and one buffer holds every piece, so nothing is allocated
 * per piece or per token: all scratch lives in the reusable ember_encoding.
 */
#ifndef EMBER_TOKENIZER_INTERNAL_H
#define EMBER_TOKENIZER_INTERNAL_H

/* Token ids are table indices (id -> string), so they are capped: real
 * vocabularies stay under 300K, and a hostile tokenizer.json must not make
 * the loader allocate gigabytes. Ids must be below this (2^24). */
#define EMBER_TOK_MAX_ID (1 << 24)

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "ember.h"

/* ---- growable arrays ------------------------------------------------------ */

/* Grows *p (elements of `elem` bytes, capacity *cap) to hold `need`. */
ember_status ember_tok_grow(void **p, size_t *cap, size_t need, size_t elem);
#define TOK_GROW(arr, cap, need) ember_tok_grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

/* ---- Unicode helpers (unicode.c) ----------------------------------------- */

/* Decodes one scalar of valid UTF-8 at s (n bytes left, n >= 1); *len gets its
 * length. The text given to these helpers is always valid UTF-8. */
uint32_t ember_tok_utf8_dec(const uint8_t *s, size_t n, int *len);
/* Encodes cp into out (4 bytes room); returns its length. */
int ember_tok_utf8_enc(uint32_t cp, char *out);
static inline int ember_tok_utf8_len(uint32_t cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}
/* Length of the UTF-8 sequence whose lead byte is b (valid text only). */
static inline int ember_tok_lead_len(uint8_t b) {
    return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

int ember_tok_category(uint32_t cp); /* utf8proc_category_t */
int ember_tok_ccc(uint32_t cp);      /* canonical combining class */
bool ember_tok_is_ws(uint32_t cp);   /* Rust char::is_whitespace (White_Space) */
bool ember_tok_is_alpha(uint32_t cp); /* \p{L} */
bool ember_tok_is_num(uint32_t cp);   /* \p{N} of the GPT-2 regex */
bool ember_tok_is_numeric(uint32_t cp); /* Rust char::is_numeric (Digits) */
bool ember_tok_is_deleted(uint32_t cp); /* deleted by BERT clean_text */
bool ember_tok_is_punct(uint32_t cp); /* ASCII punctuation or \p{P} (BERT) */
bool ember_tok_is_word(uint32_t cp);  /* regex \w */
bool ember_tok_is_mn(uint32_t cp);    /* Mn, as BertNormalizer strips them */
bool ember_tok_is_mark(uint32_t cp);  /* combining mark, as StripAccents */
/* Rust char::to_lowercase: writes 1 or 2 code points, returns the count. */
int ember_tok_rust_lower(uint32_t cp, uint32_t out[2]);
/* Compose two code points canonically; 0 when they do not compose. */
uint32_t ember_tok_compose(uint32_t a, uint32_t b);
/* Canonical (or compatibility when compat) full decomposition of cp into out
 * (room for 32); returns the count, or -1 on failure. */
int ember_tok_decompose(uint32_t cp, bool compat, uint32_t *out);

/* ---- normalized strings (nstr.c) ----------------------------------------- */

typedef struct tok_span {
    uint32_t s, e; /* work-text byte span */
} tok_span;

typedef struct tok_nstr {
    char *b;      /* bytes (valid UTF-8) */
    tok_span *al; /* alignment of each byte */
    size_t len, cap;
} tok_nstr;

ember_status ember_tok_nstr_reserve(tok_nstr *n, size_t extra);
void ember_tok_nstr_free(tok_nstr *n);
/* Appends code point cp with alignment `a` for each of its bytes. Room for 4
 * bytes must have been reserved. */
static inline void ember_tok_nstr_put(tok_nstr *n, uint32_t cp, tok_span a) {
    int l = ember_tok_utf8_enc(cp, n->b + n->len);
    for (int i = 0; i < l; i++)
        n->al[n->len + i] = a;
    n->len += (size_t)l;
}

/* One character of a transformation, as HF's transform(): change 0 replaces
 * the current char, 1 inserts a new char, -k replaces it and removes the k
 * following ones. */
typedef struct tok_change {
    uint32_t cp;
    int32_t change;
} tok_change;

/* ---- pieces of text between pipeline stages ------------------------------- */

/* A split is either pending (a range of the current normalized buffer, still
 * to be pre-tokenized and tokenized) or an added token already resolved. */
typedef struct tok_split {
    uint32_t ns, ne;  /* normalized range (pending) */
    uint32_t shift;   /* HF original_shift: work-text start of this split */
    int32_t id;       /* -1: pending; else added token id */
    uint32_t os, oe;  /* work-text span (added token) */
    uint32_t str_off; /* token string in the encoding arena (added token) */
    uint32_t str_len;
} tok_split;

/* ---- the encoding: output arrays plus all scratch -------------------------- */

typedef struct tok_bpe_sym tok_bpe_sym;
typedef struct tok_bpe_merge tok_bpe_merge;

struct ember_encoding {
    /* final output (length n) */
    int64_t n, cap;
    int32_t *ids;
    int64_t *boff; /* 2n, caller's byte offsets */
    int64_t *coff; /* 2n, caller's code-point offsets */
    uint8_t *special;
    const char **tok; /* token strings (vocab-owned or arena) */
    uint32_t flags;
    int64_t untruncated;

    /* content tokens before post-processing (work-text spans) */
    int64_t cn, ccap;
    int32_t *cids;
    tok_span *cspan;
    const char **cstr;   /* vocab-owned string, or NULL: see carena */
    uint32_t *carena;    /* arena offset when cstr is NULL */

    /* string arena for token strings taken from the text */
    char *arena;
    size_t arena_len, arena_cap;

    /* work text and its map back to the caller's bytes */
    char *work;
    size_t work_cap;
    tok_span *wmap; /* per work byte: caller byte span (NULL map = identity) */
    size_t wmap_cap;
    char *work2;
    size_t work2_cap;
    tok_span *wmap2;
    size_t wmap2_cap;
    int64_t *cidx; /* caller byte -> code point index */
    size_t cidx_cap;

    /* normalized buffers and splits */
    tok_nstr nb[3];
    tok_nstr piece; /* one piece before normalization */
    tok_nstr ntmp[2]; /* normalizer stages */
    struct tok_seg { uint32_t s, e; int m; } *seg; /* pattern matches */
    size_t seg_cap;
    tok_split *sp[2];
    size_t sp_n[2], sp_cap[2];
    tok_change *chg;
    size_t chg_cap;
    uint32_t *cps;
    size_t cps_cap;
    uint8_t *flagbuf;
    size_t flagbuf_cap;

    /* BPE scratch */
    tok_bpe_sym *syms;
    size_t syms_cap;
    tok_bpe_merge *heap;
    size_t heap_cap;

    /* BPE word cache (HF keeps one too): word -> (id, byte length) list,
     * valid for the model `bc_owner` only, cleared when its arena fills */
    struct tok_bc_ent {
        uint32_t hash, off;
        uint16_t wlen, ntok;
    } *bc_tab;
    uint8_t *bc_arena;
    size_t bc_len;
    uint32_t bc_count;
    uint64_t bc_owner; /* serial of the model the cache belongs to */

    /* word-piece / bpe key building */
    char *key;
    size_t key_cap;

    /* regex match data (pcre2_match_data *) per tokenizer regex use */
    void *md;

    /* Unigram Viterbi lattice (one node per byte position) and the
     * backtracked path (unigram.c) */
    struct tok_uni_node *uni;
    size_t uni_cap;
    struct tok_seg *uni_path;
    size_t uni_path_cap;
};

/* ---- string -> id map (vocab.c) ------------------------------------------ */

typedef struct tok_vocab {
    /* entries of the open-addressing table */
    struct tok_vent {
        uint32_t hash, len, off;
        int32_t id;
    } *tab;
    uint32_t mask; /* table size - 1 */
    uint32_t count;
    char *strs; /* every key, NUL-terminated, back to back */
    size_t strs_len, strs_cap;
    int32_t max_id;
    uint32_t max_len; /* longest key in bytes */
} tok_vocab;

uint32_t ember_tok_hash(const void *p, size_t n);
/* Inserts (overwrites) key -> id. */
ember_status ember_tok_vocab_put(tok_vocab *v, const char *key, size_t len, int32_t id);
/* Looks up the concatenation a+b (b may be empty); -1 when absent. *key,
 * when not NULL, receives the stored key (stable once loading is done). */
int32_t ember_tok_vocab_get2(const tok_vocab *v, const char *a, size_t alen, const char *b,
                             size_t blen, const char **key);
static inline int32_t ember_tok_vocab_get(const tok_vocab *v, const char *k, size_t n) {
    return ember_tok_vocab_get2(v, k, n, "", 0, NULL);
}
void ember_tok_vocab_free(tok_vocab *v);

/* ---- components ----------------------------------------------------------- */

typedef enum {
    TOK_PAT_STRING,
    TOK_PAT_REGEX,
} tok_pattern_kind;

typedef struct tok_regex {
    void *code; /* pcre2_code * */
    char *literal;
    size_t literal_len;
    tok_pattern_kind kind;
} tok_regex;

typedef enum {
    TOK_N_BERT,
    TOK_N_NFC,
    TOK_N_NFD,
    TOK_N_NFKC,
    TOK_N_NFKD,
    TOK_N_LOWER,
    TOK_N_STRIP_ACCENTS,
    TOK_N_REPLACE,
    TOK_N_PREPEND,
    TOK_N_STRIP,
    TOK_N_PRECOMPILED,
    TOK_N_SEQ
} tok_norm_kind;

/* SentencePiece precompiled_charsmap (precompiled.c): a darts-clone double
 * array over UTF-8 keys whose values index a blob of NUL-terminated
 * replacement strings. */
typedef struct tok_charsmap {
    uint32_t *units;
    size_t n_units;
    char *blob;
    size_t blob_len;
} tok_charsmap;

typedef struct tok_norm {
    tok_norm_kind kind;
    bool clean_text, chinese, strip_accents, lowercase; /* Bert */
    bool left, right;                                   /* Strip */
    tok_regex pat;                                      /* Replace */
    char *content;                                      /* Replace, Prepend */
    size_t content_len;
    struct tok_norm *sub; /* Sequence */
    int n_sub;
    tok_charsmap cmap; /* Precompiled */
} tok_norm;

typedef enum {
    TOK_BEH_REMOVED,
    TOK_BEH_ISOLATED,
    TOK_BEH_PREV,
    TOK_BEH_NEXT,
    TOK_BEH_CONTIGUOUS
} tok_behavior;

typedef enum {
    TOK_P_BERT,
    TOK_P_BYTELEVEL,
    TOK_P_WHITESPACE,
    TOK_P_WHITESPACE_SPLIT,
    TOK_P_SPLIT,
    TOK_P_PUNCT,
    TOK_P_DIGITS,
    TOK_P_METASPACE,
    TOK_P_SEQ
} tok_pre_kind;

typedef enum { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER } tok_prepend;

typedef struct tok_pre {
    tok_pre_kind kind;
    bool add_prefix_space, use_regex, trim_offsets; /* ByteLevel */
    tok_regex pat;                                  /* Split */
    tok_behavior behavior;                          /* Split, Punctuation */
    bool invert;                                    /* Split */
    bool individual_digits;                         /* Digits */
    uint32_t replacement;                           /* Metaspace */
    tok_prepend prepend;                            /* Metaspace */
    bool split;                                     /* Metaspace */
    struct tok_pre *sub;
    int n_sub;
} tok_pre;

typedef enum { TOK_M_WORDPIECE, TOK_M_BPE, TOK_M_UNIGRAM } tok_model_kind;

/* Unigram pieces (unigram.c): a byte trie whose edges live in one hash
 * table keyed by (parent node << 8 | byte), plus each piece's score. */
typedef struct tok_unigram {
    double *score;     /* per id */
    double min_score;
    struct tok_uni_edge {
        uint32_t key;   /* (node << 8) | byte */
        uint32_t child; /* 0: empty slot (the root is never a child) */
    } *edges;
    uint32_t edge_mask;
    uint32_t root[256]; /* the root's children, direct (0: none) */
    int32_t byte_id[256]; /* id of the piece "<0xXX>" (byte_fallback), -1 none */
    uint32_t n_edges;
    int32_t *node_id;   /* piece id ending at each node, -1 none */
    uint32_t n_nodes, nodes_cap;
} tok_unigram;

struct tok_bpe_merge {
    uint32_t rank;
    int32_t new_id;
    uint32_t pos; /* heap entries only */
};

typedef struct tok_merge_ent {
    uint64_t key; /* (a << 32) | b, or UINT64_MAX when empty */
    uint32_t rank;
    int32_t new_id;
} tok_merge_ent;

typedef struct tok_model {
    tok_model_kind kind;
    tok_vocab vocab;
    int32_t unk_id; /* -1: none */
    char *unk;
    char *prefix; /* continuing_subword_prefix ("" when none) */
    size_t prefix_len;
    char *suffix; /* end_of_word_suffix ("" when none) */
    size_t suffix_len;
    int32_t max_chars; /* WordPiece max_input_chars_per_word */
    bool fuse_unk, byte_fallback, ignore_merges;
    tok_merge_ent *merges;
    uint32_t merges_mask;
    const char **id2str; /* model id -> vocab string (HF vocab_r) */
    uint64_t serial;      /* unique per load: keys encodings' word caches */
    int32_t char_id[0x180]; /* BPE without prefix/suffix: id of each one-char
                               key below U+0180 (covers the GPT-2 byte
                               alphabet), -1 when absent */
    int32_t n_ids;
    tok_unigram uni;
} tok_model;

typedef struct tok_added {
    char *content;
    size_t len;
    int32_t id;
    bool special, single_word, lstrip, rstrip, normalized;
    char *ncontent; /* content after the normalizer (normalized tokens) */
    size_t nlen;
} tok_added;

/* Matching set: a byte trie over token contents, leftmost-longest. */
typedef struct tok_trie {
    void *nodes; /* see added.c */
    int n, cap;
    bool first_byte[256];
} tok_trie;

typedef enum { TOK_PP_NONE, TOK_PP_TEMPLATE, TOK_PP_BYTELEVEL, TOK_PP_SEQ } tok_post_kind;

typedef struct tok_tpl_piece {
    int is_seq;       /* 1: the sequence A, 2: the sequence B (pair template) */
    int32_t type_id;  /* token type id of the piece's tokens (pair template) */
    int32_t *ids;     /* special token ids */
    const char **strs;/* their strings (owned by strpool) */
    int n;
} tok_tpl_piece;

typedef struct tok_post {
    tok_post_kind kind;
    /* Template (BertProcessing and RobertaProcessing are turned into one) */
    tok_tpl_piece *pieces;
    int n_pieces;
    int n_added; /* special tokens added for a single sequence */
    /* pair template ($A and $B), when the file has one */
    tok_tpl_piece *pair;
    int n_pair;
    int n_added_pair;
    bool has_pair;
    int32_t cur_type; /* while parsing: type id of the next piece */
    /* ByteLevel offsets trimming (ByteLevel post-processor, Roberta) */
    bool trim_offsets, add_prefix_space;
    struct tok_post *sub;
    int n_sub;
    char **strpool;
    int n_strpool;
} tok_post;

struct ember_tokenizer {
    bool has_norm, has_pre, has_post;
    tok_norm norm;
    tok_pre pre;
    tok_model model;
    tok_post post;
    tok_added *added;
    int n_added;
    tok_trie trie_raw;  /* non-normalized added tokens */
    tok_trie trie_norm; /* normalized added tokens, on normalized text */
    const char **id2tok;
    int32_t vocab_size;
    int32_t max_length;
    bool do_lower_case;
    bool bytelevel_gpt2; /* ByteLevel pre-tokenizer with the GPT-2 regex fast path */
};

/* ---- stage entry points ---------------------------------------------------- */

/* classes.c: rewrites a parsed tokenizer.json as transformers' tokenizer
 * class rebuilds it, where it does (tokenizer_config.json and config.json
 * in dir decide); EMBER_OK and no change otherwise. */
ember_status ember_tok_apply_class(json_t *root, const char *dir);

/* normalizers.c */
ember_status ember_tok_norm_parse(const json_t *j, tok_norm *out, const char *what);
void ember_tok_norm_free(tok_norm *n);
/* Normalizes in (a whole HF NormalizedString whose original starts at
 * `shift`) into out (appended). Uses enc scratch. */
ember_status ember_tok_normalize(const tok_norm *n, ember_encoding *enc, const tok_nstr *in,
                                 uint32_t shift, tok_nstr *out);

/* generic HF transform(): in[ns, ne) rewritten by chg into out (appended). */
ember_status ember_tok_transform(const tok_nstr *in, size_t ns, size_t ne, uint32_t shift,
                                 const tok_change *chg, size_t n_chg, size_t initial_offset,
                                 tok_nstr *out);

/* regex.c */
ember_status ember_tok_regex_compile(tok_regex *r, const char *pat, size_t len, bool literal,
                                     const char *what);
void ember_tok_regex_free(tok_regex *r);
/* Finds the next match in s[from, n): EMBER_OK with *ms and *me, or
 * EMBER_E_NOT_FOUND. */
ember_status ember_tok_regex_next(const tok_regex *r, ember_encoding *enc, const char *s, size_t n,
                                  size_t from, size_t *ms, size_t *me);

/* precompiled.c: the Precompiled normalizer */
ember_status ember_tok_precompiled_parse(const json_t *j, tok_charsmap *m, const char *what);
/* Decodes a raw precompiled_charsmap (after base64); used by parse and tests. */
ember_status ember_tok_charsmap_load(const uint8_t *raw, size_t n, tok_charsmap *m,
                                     const char *what);
void ember_tok_charsmap_free(tok_charsmap *m);
ember_status ember_tok_precompiled_run(const tok_charsmap *m, ember_encoding *enc,
                                       const tok_nstr *in, uint32_t shift, tok_nstr *out);

/* pretokenizers.c */
ember_status ember_tok_pre_parse(const json_t *j, tok_pre *out, const char *what);
void ember_tok_pre_free(tok_pre *p);
/* Pre-tokenizes the pending splits of enc->sp[*cur] (in buffer enc->nb[*buf]). */
ember_status ember_tok_pretokenize(const ember_tokenizer *t, const tok_pre *p, ember_encoding *enc,
                                   int *cur, int *buf);
/* Length of the GPT-2 regex match at s[i] (n bytes of text). */
size_t ember_tok_gpt2_match(const char *s, size_t n, size_t i);

/* models.c */
ember_status ember_tok_model_parse(const json_t *j, tok_model *m, const char *what);
void ember_tok_model_free(tok_model *m);
/* Tokenizes text[ns, ne) of buffer nb (a split with HF original shift) and
 * appends content tokens to enc. */
ember_status ember_tok_model_run(const tok_model *m, ember_encoding *enc, const tok_nstr *nb,
                                 uint32_t ns, uint32_t ne, uint32_t shift);
/* unigram.c */
ember_status ember_tok_unigram_parse(const json_t *j, tok_model *m, const char *what);
void ember_tok_unigram_free(tok_unigram *u);
ember_status ember_tok_unigram_run(const tok_model *m, ember_encoding *enc, const tok_nstr *nb,
                                   uint32_t ns, uint32_t ne, uint32_t shift);
/* Appends one content token. */
ember_status ember_tok_push(ember_encoding *enc, int32_t id, tok_span sp, const char *str,
                            uint32_t arena_off);

/* added.c */
ember_status ember_tok_added_build(ember_tokenizer *t);
/* Splits s[0, n) (at position `base` of its buffer; `al` its alignments, or
 * NULL for raw work text) by the trie, appending splits to enc->sp[o]; see
 * HF AddedVocabulary::find_matches. */
ember_status ember_tok_added_split(const ember_tokenizer *t, const tok_trie *trie, const char *s,
                                   const tok_span *al, size_t n, uint32_t base, ember_encoding *enc,
                                   int o);
void ember_tok_trie_free(tok_trie *t);

/* post.c */
ember_status ember_tok_post_parse(const json_t *j, ember_tokenizer *t, tok_post *p,
                                  const char *what);
void ember_tok_post_free(tok_post *p);
int ember_tok_post_added(const tok_post *p);
/* Truncates the content tokens and writes the final encoding; w is the
 * work text the content spans refer to. */
ember_status ember_tok_post_run(const ember_tokenizer *t, ember_encoding *enc, const char *w,
                                bool add_special, int32_t max_length,
                                ember_truncation_side side);

/* load.c helpers. ember_tok_load_json_buf parses tokenizer.json content
 * from memory (no side files): used by the fuzz target. */
ember_status ember_tok_load_json_buf(const char *data, size_t len, const char *what,
                                     ember_tokenizer **out);
ember_status ember_tok_load_vocab_txt(const char *dir, ember_tokenizer *t);
ember_status ember_tok_finish(ember_tokenizer *t);

/* pylower.c: Python str.lower() of src[0,n) into enc->work2 with map */
ember_status ember_tok_py_lower(ember_encoding *enc, const char *src, size_t n,
                                const tok_span *map, char **out, size_t *out_n,
                                tok_span **out_map);

/* encode.c: strings of the encoding arena */
ember_status ember_tok_arena_add(ember_encoding *enc, const char *s, size_t n, uint32_t *off);

#endif
