/*
 * test_tok_golden.c — every record of the five tokenizer golden files
 * (expected output of Hugging Face `tokenizers`): ids with and without
 * special tokens, token strings, code-point and byte offsets, special-token
 * mask and every truncation entry; then the invalid UTF-8 cases. On a
 * mismatch it prints the record id, the text and both sides, then moves on
 * to the next file.
 */
#include "tok_test.h"

typedef struct {
    ember_tokenizer *tok;
    ember_encoding *enc;
    const char *name;
    long records;
    int bad;
} golden_ctx;

static void print_ids(const char *label, const int32_t *ids, int64_t n, const json_t *exp) {
    fprintf(stderr, "  %s ember:", label);
    for (int64_t i = 0; i < n; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n  %s hf:   ", label);
    for (size_t i = 0; i < json_array_size(exp); i++)
        fprintf(stderr, " %lld", (long long)json_integer_value(json_array_get(exp, i)));
    fprintf(stderr, "\n");
}

static void report(golden_ctx *g, const json_t *rec, const char *what, int64_t at) {
    const json_t *t = json_object_get(rec, "text");
    fprintf(stderr, "%s: record id %lld (%s): %s differs at %lld\n  text: \"%.*s\"\n", g->name,
            (long long)json_integer_value(json_object_get(rec, "id")),
            json_string_value(json_object_get(rec, "category")), what, (long long)at,
            (int)(json_string_length(t) > 300 ? 300 : json_string_length(t)), json_string_value(t));
    g->bad = 1;
    tt_failures++;
}

static int ids_equal(const int32_t *ids, int64_t n, const json_t *exp, int64_t *at) {
    size_t m = json_array_size(exp);
    for (int64_t i = 0; i < n && (size_t)i < m; i++)
        if (ids[i] != json_integer_value(json_array_get(exp, (size_t)i))) {
            *at = i;
            return 0;
        }
    *at = n < (int64_t)m ? n : (int64_t)m;
    return (size_t)n == m;
}

static int tokenize(golden_ctx *g, const json_t *rec, int add_special, int max_len) {
    const json_t *t = json_object_get(rec, "text");
    ember_tokenize_options o = ember_tokenize_default_options();
    o.add_special_tokens = add_special;
    o.max_length = max_len;
    o.lowercase = 0; /* goldens are HF tokenizers alone, not sentence-transformers */
    ember_status st = ember_tokenize(g->tok, json_string_value(t), json_string_length(t), &o, g->enc);
    if (st != EMBER_OK) {
        report(g, rec, "ember_tokenize status", st);
        fprintf(stderr, "  %s\n", ember_last_error());
        return 0;
    }
    return 1;
}

static int check_record(json_t *rec, void *user) {
    golden_ctx *g = user;
    g->records++;
    ember_encoding *e = g->enc;
    const json_t *t = json_object_get(rec, "text");
    TT_CHECK((int64_t)json_string_length(t) == json_integer_value(json_object_get(rec, "n_bytes")),
             "record %lld: JSON text length", (long long)json_integer_value(json_object_get(rec, "id")));
    if (!tokenize(g, rec, 1, 0))
        return 1;
    int64_t n = ember_encoding_length(e), at;
    const int32_t *ids = ember_encoding_ids(e);
    const json_t *exp = json_object_get(rec, "ids");
    tt_checks++;
    if (!ids_equal(ids, n, exp, &at)) {
        report(g, rec, "ids", at);
        print_ids("ids", ids, n, exp);
        return 1;
    }
    const json_t *toks = json_object_get(rec, "tokens");
    const json_t *offs = json_object_get(rec, "offsets");
    const json_t *boffs = json_object_get(rec, "byte_offsets");
    const json_t *mask = json_object_get(rec, "special_tokens_mask");
    const int64_t *co = ember_encoding_char_offsets(e), *bo = ember_encoding_byte_offsets(e);
    const uint8_t *sm = ember_encoding_special_mask(e);
    for (int64_t i = 0; i < n; i++) {
        const json_t *tk = json_array_get(toks, (size_t)i);
        const char *mine = ember_encoding_token(e, i);
        tt_checks += 4;
        /* Token strings are NUL-terminated in the API: a Unigram unknown
         * token is the text itself and may hold U+0000, where it ends. */
        size_t tkl = json_string_length(tk);
        const char *nul = memchr(json_string_value(tk), 0, tkl);
        if (nul)
            tkl = (size_t)(nul - json_string_value(tk));
        if (strlen(mine) != tkl || memcmp(mine, json_string_value(tk), tkl) != 0) {
            report(g, rec, "tokens", i);
            fprintf(stderr, "  ember: \"%s\"  hf: \"%s\"\n", mine, json_string_value(tk));
            return 1;
        }
        const json_t *oc = json_array_get(offs, (size_t)i), *ob = json_array_get(boffs, (size_t)i);
        if (co[2 * i] != json_integer_value(json_array_get(oc, 0)) ||
            co[2 * i + 1] != json_integer_value(json_array_get(oc, 1))) {
            report(g, rec, "char offsets", i);
            fprintf(stderr, "  token \"%s\": ember [%lld,%lld] hf [%lld,%lld]\n", mine,
                    (long long)co[2 * i], (long long)co[2 * i + 1],
                    (long long)json_integer_value(json_array_get(oc, 0)),
                    (long long)json_integer_value(json_array_get(oc, 1)));
            return 1;
        }
        if (bo[2 * i] != json_integer_value(json_array_get(ob, 0)) ||
            bo[2 * i + 1] != json_integer_value(json_array_get(ob, 1))) {
            report(g, rec, "byte offsets", i);
            fprintf(stderr, "  token \"%s\": ember [%lld,%lld] hf [%lld,%lld]\n", mine,
                    (long long)bo[2 * i], (long long)bo[2 * i + 1],
                    (long long)json_integer_value(json_array_get(ob, 0)),
                    (long long)json_integer_value(json_array_get(ob, 1)));
            return 1;
        }
        if (sm[i] != json_integer_value(json_array_get(mask, (size_t)i))) {
            report(g, rec, "special_tokens_mask", i);
            return 1;
        }
    }
    TT_CHECK(ember_encoding_untruncated_length(e) == n && !(ember_encoding_flags(e) & 3u),
             "record %lld: untruncated length / flags",
             (long long)json_integer_value(json_object_get(rec, "id")));

    if (!tokenize(g, rec, 0, 0))
        return 1;
    exp = json_object_get(rec, "ids_no_special");
    tt_checks++;
    if (!ids_equal(ember_encoding_ids(e), ember_encoding_length(e), exp, &at)) {
        report(g, rec, "ids_no_special", at);
        print_ids("ids_no_special", ember_encoding_ids(e), ember_encoding_length(e), exp);
        return 1;
    }

    const json_t *tr = json_object_get(rec, "truncation");
    for (size_t k = 0; k < json_array_size(tr); k++) {
        const json_t *te = json_array_get(tr, k);
        int ml = (int)json_integer_value(json_object_get(te, "max_length"));
        if (strcmp(json_string_value(json_object_get(te, "direction")), "right") != 0) {
            report(g, rec, "unexpected truncation direction", (int64_t)k);
            return 1;
        }
        if (!tokenize(g, rec, 1, ml))
            return 1;
        exp = json_object_get(te, "ids");
        tt_checks++;
        if (!ids_equal(ember_encoding_ids(e), ember_encoding_length(e), exp, &at)) {
            char what[64];
            snprintf(what, sizeof what, "truncation max_length=%d ids", ml);
            report(g, rec, what, at);
            print_ids("trunc", ember_encoding_ids(e), ember_encoding_length(e), exp);
            return 1;
        }
        const json_t *tt = json_object_get(te, "tokens");
        for (int64_t i = 0; i < ember_encoding_length(e); i++) {
            tt_checks++;
            if (strcmp(ember_encoding_token(e, i), json_string_value(json_array_get(tt, (size_t)i)))) {
                report(g, rec, "truncation tokens", i);
                return 1;
            }
        }
        int truncated = n > ml;
        TT_CHECK(!!(ember_encoding_flags(e) & EMBER_ENCODING_TRUNCATED) == truncated &&
                     ember_encoding_untruncated_length(e) == n,
                 "record %lld: truncation flag/untruncated length at max_length %d",
                 (long long)json_integer_value(json_object_get(rec, "id")), ml);
    }
    return 0;
}

static const char *goldens_dir = "goldens";
static long min_records = 335;

static void run_file(const char *fixtures, const char *name) {
    char *dir = tt_path(fixtures, name, NULL);
    char *gold = tt_path(fixtures, goldens_dir, name);
    char *goldf = malloc(strlen(gold) + 8);
    sprintf(goldf, "%s.jsonl", gold);
    golden_ctx g = {0};
    g.name = name;
    g.tok = tt_load(dir);
    if (g.tok && ember_encoding_new(&g.enc) == EMBER_OK) {
        long n = tt_jsonl(goldf, check_record, &g);
        printf("%s: %ld records read, %ld checked%s\n", name, n, g.records,
               g.bad ? ", FAILED" : ", all equal");
        TT_CHECK(n >= min_records, "%s: expected at least %ld records, read %ld", name, min_records,
                 n);
    }
    ember_encoding_free(g.enc);
    ember_tokenizer_free(g.tok);
    free(dir);
    free(gold);
    free(goldf);
}

/* ---- invalid UTF-8 --------------------------------------------------------------- */

typedef struct {
    ember_tokenizer *toks[2];
    ember_encoding *a, *b;
    int n;
} inv_ctx;

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

static int check_invalid(json_t *rec, void *user) {
    inv_ctx *c = user;
    const char *id = json_string_value(json_object_get(rec, "id"));
    const char *hex = json_string_value(json_object_get(rec, "hex"));
    const json_t *rt = json_object_get(rec, "replaced_text");
    long nrep = (long)json_integer_value(json_object_get(rec, "n_replacements"));
    size_t hl = strlen(hex), n = hl / 2;
    char *raw = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        raw[i] = (char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    c->n++;
    for (int k = 0; k < 2; k++) {
        ember_tokenize_options o = ember_tokenize_default_options();
        o.lowercase = 0;
        ember_status st = ember_tokenize(c->toks[k], raw, n, &o, c->a);
        TT_CHECK(st == EMBER_OK, "%s: tokenize: %s", id, ember_last_error());
        TT_CHECK(ember_encoding_flags(c->a) & EMBER_ENCODING_INVALID_UTF8, "%s: flag not set", id);
        st = ember_tokenize(c->toks[k], json_string_value(rt), json_string_length(rt), &o, c->b);
        TT_CHECK(st == EMBER_OK, "%s: tokenize replaced: %s", id, ember_last_error());
        TT_CHECK(!(ember_encoding_flags(c->b) & EMBER_ENCODING_INVALID_UTF8),
                 "%s: flag set on valid text", id);
        int64_t la = ember_encoding_length(c->a), lb = ember_encoding_length(c->b);
        int same = la == lb;
        for (int64_t i = 0; same && i < la; i++)
            same = ember_encoding_ids(c->a)[i] == ember_encoding_ids(c->b)[i];
        TT_CHECK(same, "%s: ids differ from those of replaced_text (tokenizer %d)", id, k);
        /* offsets stay inside the raw input */
        const int64_t *bo = ember_encoding_byte_offsets(c->a);
        for (int64_t i = 0; i < la; i++)
            TT_CHECK(bo[2 * i] >= 0 && bo[2 * i] <= bo[2 * i + 1] && bo[2 * i + 1] <= (int64_t)n,
                     "%s: byte offsets [%lld,%lld] outside %zu bytes", id, (long long)bo[2 * i],
                     (long long)bo[2 * i + 1], n);
    }
    /* Rebuild the replacement text from the offsets of a byte-level BPE:
     * ModernBERT keeps U+FFFD as bytes, so every replaced subpart shows up as
     * a token span over the raw bytes. Here we decode by re-running the
     * replacement on the spans, which must give replaced_text exactly. */
    ember_tokenize_options o = ember_tokenize_default_options();
    o.add_special_tokens = 0;
    o.lowercase = 0;
    ember_tokenize(c->toks[1], raw, n, &o, c->a);
    size_t cap = n * 3 + 1, w = 0;
    char *dec = malloc(cap);
    long reps = 0;
    /* decode the token strings (GPT-2 byte alphabet) back to bytes */
    for (int64_t i = 0; i < ember_encoding_length(c->a); i++) {
        const unsigned char *s = (const unsigned char *)ember_encoding_token(c->a, i);
        while (*s) {
            unsigned cp;
            if (*s < 0x80) {
                cp = *s++;
            } else {
                cp = ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
                s += 2;
            }
            int b;
            if (cp >= 256) {
                /* inverse of bytes_to_unicode for the remapped bytes */
                static int inv[512];
                static int ready;
                if (!ready) {
                    int k = 0;
                    for (int x = 0; x < 256; x++) {
                        int keep = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174;
                        if (!keep)
                            inv[256 + k++] = x;
                    }
                    ready = 1;
                }
                b = inv[cp];
            } else {
                b = (int)cp;
            }
            if (w < cap)
                dec[w++] = (char)b;
        }
    }
    for (size_t i = 0; i + 2 < w; i++)
        if ((unsigned char)dec[i] == 0xEF && (unsigned char)dec[i + 1] == 0xBF &&
            (unsigned char)dec[i + 2] == 0xBD)
            reps++;
    long orig_reps = 0;
    for (size_t i = 0; i + 2 < n; i++)
        if ((unsigned char)raw[i] == 0xEF && (unsigned char)raw[i + 1] == 0xBF &&
            (unsigned char)raw[i + 2] == 0xBD)
            orig_reps++;
    TT_CHECK(w == json_string_length(rt) && memcmp(dec, json_string_value(rt), w) == 0,
             "%s: decoded replacement text differs from replaced_text (%zu vs %zu bytes)", id, w,
             json_string_length(rt));
    TT_CHECK(reps - orig_reps == nrep, "%s: %ld replacements, expected %ld", id, reps - orig_reps,
             nrep);
    free(dec);
    free(raw);
    return 0;
}

int main(int argc, char **argv) {
    const char *fx = argc > 1 ? argv[1] : "tests/fixtures/tokenizer";
    const char *names[] = {"BAAI--bge-small-en-v1.5", "sentence-transformers--all-MiniLM-L6-v2",
                           "google-bert--bert-base-uncased", "BAAI--bge-small-zh-v1.5",
                           "answerdotai--ModernBERT-base"};
    /* --goldens=DIR reads DIR/<name>.jsonl instead (the random differential
     * records); further arguments name other tokenizer directories under fx
     * with records of the same format (differential runs against HF) */
    int first = 2;
    if (argc > 2 && strncmp(argv[2], "--goldens=", 10) == 0) {
        goldens_dir = argv[2] + 10;
        min_records = 100;
        first = 3;
    }
    if (argc > first) {
        min_records = 1;
        for (int i = first; i < argc; i++)
            run_file(fx, argv[i]);
        return tt_finish("test_tok_golden");
    }
    if (first == 3) {
        for (int i = 0; i < 5; i++)
            run_file(fx, names[i]);
        return tt_finish("test_tok_golden");
    }
    for (int i = 0; i < 5; i++)
        run_file(fx, names[i]);

    inv_ctx c = {0};
    char *p1 = tt_path(fx, "BAAI--bge-small-en-v1.5", NULL);
    char *p2 = tt_path(fx, "answerdotai--ModernBERT-base", NULL);
    c.toks[0] = tt_load(p1);
    c.toks[1] = tt_load(p2);
    ember_encoding_new(&c.a);
    ember_encoding_new(&c.b);
    if (c.toks[0] && c.toks[1]) {
        char *inv = tt_path(fx, "goldens", "invalid-utf8.jsonl");
        tt_jsonl(inv, check_invalid, &c);
        TT_CHECK(c.n == 20, "expected 20 invalid UTF-8 cases, got %d", c.n);
        free(inv);
    }
    ember_encoding_free(c.a);
    ember_encoding_free(c.b);
    ember_tokenizer_free(c.toks[0]);
    ember_tokenizer_free(c.toks[1]);
    free(p1);
    free(p2);
    return tt_finish("test_tok_golden");
}
