/*
 * test_tok_api.c — the loading paths and options around the pipeline:
 * vocab.txt-only BERT directories (checked against tokenizer.json on the
 * whole golden corpus), sentence-transformers do_lower_case with Python
 * str.lower() semantics, left truncation, the query functions, and malformed
 * tokenizer files that must fail with a precise status and message.
 */
#include <pthread.h>
#include <unistd.h>

#include "tok_test.h"

static char tmpdir[64];

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0)
        fwrite(buf, 1, n, b);
    if (a)
        fclose(a);
    if (b)
        fclose(b);
}

static void write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

/* ---- vocab.txt only --------------------------------------------------------------- */

typedef struct {
    ember_tokenizer *a, *b;
    ember_encoding *ea, *eb;
    long n, same;
} cmp_ctx;

static int cmp_record(json_t *rec, void *user) {
    cmp_ctx *c = user;
    const json_t *t = json_object_get(rec, "text");
    ember_tokenize_options o = ember_tokenize_default_options();
    o.lowercase = 0;
    ember_tokenize(c->a, json_string_value(t), json_string_length(t), &o, c->ea);
    ember_tokenize(c->b, json_string_value(t), json_string_length(t), &o, c->eb);
    int64_t n = ember_encoding_length(c->ea);
    int eq = n == ember_encoding_length(c->eb);
    for (int64_t i = 0; eq && i < n; i++)
        eq = ember_encoding_ids(c->ea)[i] == ember_encoding_ids(c->eb)[i] &&
             ember_encoding_char_offsets(c->ea)[2 * i] == ember_encoding_char_offsets(c->eb)[2 * i] &&
             ember_encoding_char_offsets(c->ea)[2 * i + 1] ==
                 ember_encoding_char_offsets(c->eb)[2 * i + 1] &&
             !strcmp(ember_encoding_token(c->ea, i), ember_encoding_token(c->eb, i));
    TT_CHECK(eq, "vocab.txt vs tokenizer.json differ on record %lld",
             (long long)json_integer_value(json_object_get(rec, "id")));
    c->n++;
    c->same += eq;
    return 0;
}

static void vocab_txt(const char *fx) {
    char *src = tt_path(fx, "google-bert--bert-base-uncased", "vocab.txt");
    char *cfg = tt_path(fx, "google-bert--bert-base-uncased", "tokenizer_config.json");
    char *dst = tt_path(tmpdir, "vocab.txt", NULL);
    char *dcfg = tt_path(tmpdir, "tokenizer_config.json", NULL);
    copy_file(src, dst);
    copy_file(cfg, dcfg);
    cmp_ctx c = {0};
    char *full = tt_path(fx, "google-bert--bert-base-uncased", NULL);
    c.a = tt_load(tmpdir);
    c.b = tt_load(full);
    ember_encoding_new(&c.ea);
    ember_encoding_new(&c.eb);
    if (c.a && c.b) {
        TT_CHECK(ember_tokenizer_vocab_size(c.a) == 30522, "vocab size %d",
                 ember_tokenizer_vocab_size(c.a));
        TT_CHECK(ember_tokenizer_max_length(c.a) == 512, "model_max_length %d",
                 ember_tokenizer_max_length(c.a));
        char *gold = tt_path(fx, "goldens", "google-bert--bert-base-uncased.jsonl");
        tt_jsonl(gold, cmp_record, &c);
        printf("vocab.txt path: %ld/%ld records identical to tokenizer.json\n", c.same, c.n);
        TT_CHECK(c.n >= 335, "read %ld records", c.n);
        free(gold);
    }
    ember_encoding_free(c.ea);
    ember_encoding_free(c.eb);
    ember_tokenizer_free(c.a);
    ember_tokenizer_free(c.b);
    /* a cased config turns lowercasing and accent stripping off */
    write_file(dcfg, "{\"do_lower_case\": false}");
    ember_tokenizer *t = tt_load(tmpdir);
    ember_encoding *e;
    ember_encoding_new(&e);
    if (t) {
        ember_tokenize(t, "Hello", 5, NULL, e);
        TT_CHECK(ember_encoding_length(e) == 3 && ember_encoding_ids(e)[1] == 100,
                 "cased vocab.txt tokenizer should not lowercase 'Hello' (uncased vocab -> [UNK])");
    }
    ember_encoding_free(e);
    ember_tokenizer_free(t);
    unlink(dst);
    unlink(dcfg);
    free(src);
    free(cfg);
    free(dst);
    free(dcfg);
    free(full);
}

/* ---- do_lower_case -------------------------------------------------------------------- */

static int has_id(const ember_encoding *e, int32_t id) {
    for (int64_t i = 0; i < ember_encoding_length(e); i++)
        if (ember_encoding_ids(e)[i] == id)
            return 1;
    return 0;
}

static int same_ids(const ember_encoding *a, const ember_encoding *b) {
    if (ember_encoding_length(a) != ember_encoding_length(b))
        return 0;
    for (int64_t i = 0; i < ember_encoding_length(a); i++)
        if (ember_encoding_ids(a)[i] != ember_encoding_ids(b)[i])
            return 0;
    return 1;
}

static void lowercase(const char *fx) {
    /* bge-small-en's sentence_bert_config.json says do_lower_case: true */
    char *dir = tt_path(fx, "BAAI--bge-small-en-v1.5", NULL);
    ember_tokenizer *t = tt_load(dir);
    free(dir);
    if (!t)
        return;
    TT_CHECK(ember_tokenizer_max_length(t) == 512, "max_length %d", ember_tokenizer_max_length(t));
    ember_encoding *a, *b;
    ember_encoding_new(&a);
    ember_encoding_new(&b);
    ember_tokenize_options o = ember_tokenize_default_options();

    /* [MASK] written in the text becomes the word "mask" under str.lower() */
    const char *m = "\xc4\xb0 [MASK] x";
    ember_tokenize(t, m, strlen(m), NULL, a); /* default: follows do_lower_case */
    TT_CHECK(!has_id(a, 103), "default options: [MASK] should have been lowercased");
    int64_t mi = -1;
    for (int64_t i = 0; i < ember_encoding_length(a); i++)
        if (!strcmp(ember_encoding_token(a, i), "mask"))
            mi = i;
    TT_CHECK(mi >= 0, "no 'mask' token");
    if (mi >= 0) {
        /* offsets point into the caller's text: İ is 2 bytes, '[' at 3 */
        TT_CHECK(ember_encoding_byte_offsets(a)[2 * mi] == 4 &&
                     ember_encoding_byte_offsets(a)[2 * mi + 1] == 8,
                 "'mask' byte offsets [%lld,%lld], expected [4,8]",
                 (long long)ember_encoding_byte_offsets(a)[2 * mi],
                 (long long)ember_encoding_byte_offsets(a)[2 * mi + 1]);
        TT_CHECK(ember_encoding_char_offsets(a)[2 * mi] == 3 &&
                     ember_encoding_char_offsets(a)[2 * mi + 1] == 7,
                 "'mask' char offsets");
    }
    /* İ -> i + U+0307 (3 bytes) still maps to the 2 bytes of İ */
    TT_CHECK(ember_encoding_byte_offsets(a)[2] == 0 && ember_encoding_byte_offsets(a)[3] == 2,
             "İ byte offsets [%lld,%lld]", (long long)ember_encoding_byte_offsets(a)[2],
             (long long)ember_encoding_byte_offsets(a)[3]);
    o.lowercase = 0;
    ember_tokenize(t, m, strlen(m), &o, b);
    TT_CHECK(has_id(b, 103), "lowercase=0 should keep [MASK] special");

    /* Final sigma: Python gives ς at the end of a word, HF's per-char
     * lowercase gives σ. Compare with the text lowered by hand. */
    const char *up = "\xce\x9f\xce\x94\xce\x9f\xce\xa3";   /* ΟΔΟΣ */
    const char *py = "\xce\xbf\xce\xb4\xce\xbf\xcf\x82";   /* οδος with final ς */
    const char *rs = "\xce\xbf\xce\xb4\xce\xbf\xcf\x83";   /* οδοσ */
    o.lowercase = 1;
    ember_tokenize(t, up, strlen(up), &o, a);
    o.lowercase = 0;
    ember_tokenize(t, py, strlen(py), &o, b);
    TT_CHECK(same_ids(a, b), "Python lower of ΟΔΟΣ should equal tokenizing οδος (final sigma)");
    ember_tokenize(t, rs, strlen(rs), &o, b);
    TT_CHECK(!same_ids(a, b), "final sigma must differ from σ");
    ember_tokenize(t, up, strlen(up), &o, b);
    ember_tokenize(t, rs, strlen(rs), &o, a);
    TT_CHECK(same_ids(a, b), "without str.lower(), HF lowercases Σ to σ");
    /* Σ alone (no cased letter before it) stays σ */
    o.lowercase = 1;
    ember_tokenize(t, "\xce\xa3", 2, &o, a);
    o.lowercase = 0;
    ember_tokenize(t, "\xcf\x83", 2, &o, b);
    TT_CHECK(same_ids(a, b), "lone Σ lowers to σ");

    /* MiniLM says do_lower_case: false: [MASK] stays special by default */
    ember_tokenizer_free(t);
    dir = tt_path(fx, "sentence-transformers--all-MiniLM-L6-v2", NULL);
    t = tt_load(dir);
    free(dir);
    if (t) {
        TT_CHECK(ember_tokenizer_max_length(t) == 256, "MiniLM max_seq_length %d",
                 ember_tokenizer_max_length(t));
        ember_tokenize(t, "[MASK]", 6, NULL, a);
        TT_CHECK(has_id(a, 103), "MiniLM default keeps [MASK]");
        TT_CHECK(!strcmp(ember_tokenizer_id_to_token(t, 103), "[MASK]"), "id_to_token(103)");
        TT_CHECK(ember_tokenizer_id_to_token(t, 30522) == NULL && ember_tokenizer_id_to_token(t, -1) == NULL,
                 "id_to_token out of range");
    }
    ember_tokenizer_free(t);
    ember_encoding_free(a);
    ember_encoding_free(b);
}

/* ---- truncation ------------------------------------------------------------------------- */

static void truncation(const char *fx) {
    const char *names[] = {"BAAI--bge-small-zh-v1.5", "answerdotai--ModernBERT-base"};
    const char *text =
        "The quick brown fox jumps over the lazy dog, then runs far away into the dark forest "
        "where nobody can find it anymore.";
    for (int k = 0; k < 2; k++) {
        char *dir = tt_path(fx, names[k], NULL);
        ember_tokenizer *t = tt_load(dir);
        free(dir);
        if (!t)
            continue;
        ember_encoding *full, *cut;
        ember_encoding_new(&full);
        ember_encoding_new(&cut);
        ember_tokenize_options o = ember_tokenize_default_options();
        o.lowercase = 0;
        ember_tokenize(t, text, strlen(text), &o, full);
        int64_t n = ember_encoding_length(full);
        TT_CHECK(n > 20, "%s: %lld tokens", names[k], (long long)n);
        o.max_length = 16;
        o.truncation_side = EMBER_TRUNCATE_LEFT;
        ember_tokenize(t, text, strlen(text), &o, cut);
        /* specials kept, the last 14 content tokens kept (HF TruncationDirection::Left) */
        int ok = ember_encoding_length(cut) == 16 &&
                 ember_encoding_ids(cut)[0] == ember_encoding_ids(full)[0] &&
                 ember_encoding_ids(cut)[15] == ember_encoding_ids(full)[n - 1];
        for (int i = 1; ok && i < 15; i++)
            ok = ember_encoding_ids(cut)[i] == ember_encoding_ids(full)[n - 16 + i] &&
                 ember_encoding_byte_offsets(cut)[2 * i] == ember_encoding_byte_offsets(full)[2 * (n - 16 + i)];
        TT_CHECK(ok, "%s: left truncation keeps [CLS] + last 14 + [SEP]", names[k]);
        TT_CHECK((ember_encoding_flags(cut) & EMBER_ENCODING_TRUNCATED) &&
                     ember_encoding_untruncated_length(cut) == n,
                 "%s: truncated flag and untruncated length", names[k]);
        /* without specials the whole budget is content */
        o.add_special_tokens = 0;
        ember_tokenize(t, text, strlen(text), &o, cut);
        ok = ember_encoding_length(cut) == 16;
        for (int i = 0; ok && i < 16; i++)
            ok = ember_encoding_ids(cut)[i] == ember_encoding_ids(full)[n - 17 + i];
        TT_CHECK(ok, "%s: left truncation without specials", names[k]);
        /* a budget smaller than the specials keeps only the specials */
        o.add_special_tokens = 1;
        o.max_length = 1;
        o.truncation_side = EMBER_TRUNCATE_RIGHT;
        ember_tokenize(t, text, strlen(text), &o, cut);
        TT_CHECK(ember_encoding_length(cut) == 2 && ember_encoding_special_mask(cut)[0] &&
                     ember_encoding_special_mask(cut)[1],
                 "%s: max_length 1 keeps only the 2 specials", names[k]);
        ember_encoding_free(full);
        ember_encoding_free(cut);
        ember_tokenizer_free(t);
    }
}

/* ---- malformed files ---------------------------------------------------------------------- */

static void expect_fail(const char *label, const char *json, ember_status want, const char *needle) {
    char *path = tt_path(tmpdir, "tokenizer.json", NULL);
    write_file(path, json);
    ember_tokenizer *t = NULL;
    ember_status st = ember_tokenizer_load(path, &t);
    const char *msg = ember_last_error();
    TT_CHECK(st == want && t == NULL, "%s: status %d (%s), expected %d", label, st, msg, want);
    TT_CHECK(strstr(msg, needle) != NULL, "%s: message \"%s\" should mention \"%s\"", label, msg,
             needle);
    ember_tokenizer_free(t);
    unlink(path);
    free(path);
}

static void malformed(void) {
    expect_fail("invalid JSON", "{\"model\": {", EMBER_E_FORMAT, "invalid JSON");
    expect_fail("not an object", "[1,2]", EMBER_E_FORMAT, "top level");
    expect_fail("no model", "{\"normalizer\": null}", EMBER_E_FORMAT, "no 'model'");
    expect_fail("missing vocab", "{\"model\": {\"type\": \"WordPiece\"}}", EMBER_E_FORMAT, "vocab");
    expect_fail("vocab wrong type", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": \"x\"}}",
                EMBER_E_FORMAT, "model.vocab must be an object");
    expect_fail("vocab id wrong type",
                "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": \"0\"}}}",
                EMBER_E_FORMAT, "[UNK]");
    expect_fail("unk missing", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}",
                EMBER_E_FORMAT, "unk_token");
    expect_fail("unknown model", "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}}}",
                EMBER_E_UNSUPPORTED, "WordLevel");
    expect_fail("unknown normalizer",
                "{\"normalizer\": {\"type\": \"Nmt\"}, \"model\": {\"type\": \"BPE\", "
                "\"vocab\": {\"a\": 0}, \"merges\": []}}",
                EMBER_E_UNSUPPORTED, "Nmt");
    expect_fail("unknown pre_tokenizer",
                "{\"pre_tokenizer\": {\"type\": \"UnicodeScripts\"}, \"model\": {\"type\": \"BPE\", "
                "\"vocab\": {\"a\": 0}, \"merges\": []}}",
                EMBER_E_UNSUPPORTED, "UnicodeScripts");
    expect_fail("unknown post_processor",
                "{\"post_processor\": {\"type\": \"Magic\"}, \"model\": {\"type\": \"BPE\", "
                "\"vocab\": {\"a\": 0}, \"merges\": []}}",
                EMBER_E_UNSUPPORTED, "Magic");
    expect_fail("merge unknown token",
                "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
                "\"merges\": [\"a b\", \"a zz\"]}}",
                EMBER_E_FORMAT, "'zz' not in the vocab");
    expect_fail("merge result unknown",
                "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [[\"a\", "
                "\"b\"]]}}",
                EMBER_E_FORMAT, "'ab'");
    expect_fail("merge bad form",
                "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}",
                EMBER_E_FORMAT, "merge #0");
    expect_fail("BPE dropout", "{\"model\": {\"type\": \"BPE\", \"dropout\": 0.1, \"vocab\": {\"a\": 0}, "
                "\"merges\": []}}", EMBER_E_UNSUPPORTED, "dropout");
    expect_fail("bad regex",
                "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, "
                "\"behavior\": \"Isolated\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
                "\"merges\": []}}",
                EMBER_E_FORMAT, "invalid regex");
    expect_fail("bad behavior",
                "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \"x\"}, "
                "\"behavior\": \"Sideways\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
                "\"merges\": []}}",
                EMBER_E_FORMAT, "Sideways");
    expect_fail("added token bad", "{\"added_tokens\": [{\"id\": \"x\"}], \"model\": {\"type\": "
                "\"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", EMBER_E_FORMAT, "added_tokens[0]");
    expect_fail("template missing special",
                "{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
                "{\"id\": \"[CLS]\", \"type_id\": 0}}], \"special_tokens\": {}}, \"model\": {\"type\": "
                "\"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                EMBER_E_FORMAT, "[CLS]");
    expect_fail("bool wrong type",
                "{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": \"yes\"}, \"model\": "
                "{\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                EMBER_E_FORMAT, "lowercase");

    ember_tokenizer *t = NULL;
    TT_CHECK(ember_tokenizer_load("/nonexistent/ember/tok", &t) == EMBER_E_NOT_FOUND && !t,
             "missing path");
    TT_CHECK(ember_tokenizer_load(tmpdir, &t) == EMBER_E_NOT_FOUND && !t,
             "directory without tokenizer files");
    TT_CHECK(ember_tokenizer_load(NULL, &t) == EMBER_E_INVALID_ARGUMENT, "NULL path");
    /* bad arguments to ember_tokenize */
    ember_encoding *e;
    ember_encoding_new(&e);
    TT_CHECK(ember_tokenize(NULL, "a", 1, NULL, e) == EMBER_E_INVALID_ARGUMENT, "NULL tokenizer");
    ember_encoding_free(e);
    ember_encoding_free(NULL);
    ember_tokenizer_free(NULL);
}

/* ---- encodings reused across tokenizers ------------------------------------------------------ */

/* An encoding caches BPE words per model; a tokenizer loaded after another
 * was freed (often at the same address) must not see the old entries. */
static void reuse_encoding(void) {
    char *path = tt_path(tmpdir, "tokenizer.json", NULL);
    ember_encoding *e;
    ember_encoding_new(&e);
    const char *merged = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
                         "\"merges\": [\"a b\"]}}";
    const char *plain = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
                        "\"merges\": []}}";
    for (int round = 0; round < 2; round++) {
        write_file(path, round == 0 ? merged : plain);
        ember_tokenizer *t = tt_load(path);
        if (!t)
            break;
        ember_tokenize(t, "ab", 2, NULL, e);
        TT_CHECK(ember_encoding_length(e) == (round == 0 ? 1 : 2),
                 "round %d: %lld tokens for 'ab'", round, (long long)ember_encoding_length(e));
        ember_tokenizer_free(t);
    }
    ember_encoding_free(e);
    unlink(path);
    free(path);
}

/* ---- threads ---------------------------------------------------------------------------- */

/* One tokenizer shared by threads, one encoding each (the documented
 * contract): every thread must get the single-threaded results. */
typedef struct {
    ember_tokenizer *t;
    const char **texts;
    int n;
    int64_t *expect; /* total id sum and length per text */
    int ok;
} thr_ctx;

static void *thr_main(void *arg) {
    thr_ctx *c = arg;
    ember_encoding *e;
    ember_encoding_new(&e);
    c->ok = 1;
    for (int rep = 0; rep < 200; rep++)
        for (int i = 0; i < c->n; i++) {
            ember_tokenize(c->t, c->texts[i], strlen(c->texts[i]), NULL, e);
            int64_t sum = 0;
            for (int64_t k = 0; k < ember_encoding_length(e); k++)
                sum += ember_encoding_ids(e)[k] * (k + 1);
            if (sum != c->expect[2 * i] || ember_encoding_length(e) != c->expect[2 * i + 1])
                c->ok = 0;
        }
    ember_encoding_free(e);
    return NULL;
}

static void threads(const char *fx) {
    static const char *texts[] = {
        "Hello world, this is a test of the tokenizer.",
        "caf\xc3\xa9 na\xc3\xafve \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 [MASK] done",
        "  spaces   and\ttabs\nnewlines  ",
        "x\xff\xfeinvalid",
    };
    const char *names[] = {"BAAI--bge-small-en-v1.5", "answerdotai--ModernBERT-base"};
    for (int k = 0; k < 2; k++) {
        char *dir = tt_path(fx, names[k], NULL);
        ember_tokenizer *t = tt_load(dir);
        free(dir);
        if (!t)
            continue;
        int64_t expect[8];
        ember_encoding *e;
        ember_encoding_new(&e);
        for (int i = 0; i < 4; i++) {
            ember_tokenize(t, texts[i], strlen(texts[i]), NULL, e);
            expect[2 * i] = 0;
            for (int64_t q = 0; q < ember_encoding_length(e); q++)
                expect[2 * i] += ember_encoding_ids(e)[q] * (q + 1);
            expect[2 * i + 1] = ember_encoding_length(e);
        }
        ember_encoding_free(e);
        thr_ctx c[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            c[i] = (thr_ctx){t, texts, 4, expect, 0};
            pthread_create(&th[i], NULL, thr_main, &c[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            TT_CHECK(c[i].ok, "%s: thread %d got different results", names[k], i);
        }
        ember_tokenizer_free(t);
    }
}

int main(int argc, char **argv) {
    const char *fx = argc > 1 ? argv[1] : "tests/fixtures/tokenizer";
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember_tok_api_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    vocab_txt(fx);
    lowercase(fx);
    truncation(fx);
    malformed();
    threads(fx);
    reuse_encoding();
    rmdir(tmpdir);
    return tt_finish("test_tok_api");
}
