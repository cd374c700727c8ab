/*
 * test_tok_spm.c — the SentencePiece path beyond the goldens
 * (test_tok_spm_golden): malformed Unigram and Precompiled sections give a
 * status and a message naming the key (never a crash), a hand-built
 * charsmap behaves as the darts-clone format says, corrupt tries normalize
 * without reading out of bounds, invalid UTF-8 gives the ids of its
 * replacement text, and a directory holding only a SentencePiece .model
 * says how to produce tokenizer.json.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "tok_test.h"

static char tmpdir[64];

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(s, 1, n, f);
    fclose(f);
}

static char *b64(const uint8_t *p, size_t n) {
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(n / 3 * 4 + 8), *w = o;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *w++ = al[v >> 18];
        *w++ = al[(v >> 12) & 63];
        *w++ = i + 1 < n ? al[(v >> 6) & 63] : '=';
        *w++ = i + 2 < n ? al[v & 63] : '=';
    }
    *w = '\0';
    return o;
}

/* A tokenizer.json with a Precompiled normalizer over `cmap` (base64) and a
 * small Unigram model; `model` replaces the model when not NULL. */
static char *make_json(const char *cmap, const char *model) {
    const char *def = "{\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0.0], "
                      "[\"a\", -1.0], [\"b\", -1.0], [\"x\", -1.0], [\"ab\", -1.5], "
                      "[\"\\u2581\", -2.0]]}";
    size_t n = strlen(cmap ? cmap : "") + strlen(model ? model : def) + 512;
    char *s = malloc(n);
    if (cmap)
        snprintf(s, n,
                 "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": "
                 "\"Precompiled\", \"precompiled_charsmap\": \"%s\"}]}, \"pre_tokenizer\": "
                 "{\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": "
                 "\"never\", \"split\": true}, \"model\": %s}",
                 cmap, model ? model : def);
    else
        snprintf(s, n, "{\"model\": %s}", model ? model : def);
    return s;
}

static ember_tokenizer *load_str(const char *json, ember_status *st) {
    char *path = tt_path(tmpdir, "tokenizer.json", NULL);
    write_file(path, json, strlen(json));
    ember_tokenizer *t = NULL;
    *st = ember_tokenizer_load(path, &t);
    unlink(path);
    free(path);
    return t;
}

static void expect_fail(const char *label, const char *json, const char *needle) {
    ember_status st;
    ember_tokenizer *t = load_str(json, &st);
    const char *msg = ember_last_error();
    TT_CHECK(st == EMBER_E_FORMAT && t == NULL, "%s: status %d (%s), expected EMBER_E_FORMAT",
             label, st, msg);
    TT_CHECK(strstr(msg, needle) != NULL, "%s: message \"%s\" should mention \"%s\"", label, msg,
             needle);
    ember_tokenizer_free(t);
}

static void expect_fail_model(const char *label, const char *model, const char *needle) {
    char *j = make_json(NULL, model);
    expect_fail(label, j, needle);
    free(j);
}

static void expect_fail_cmap(const char *label, const uint8_t *raw, size_t n, const char *needle) {
    char *c = b64(raw, n);
    char *j = make_json(c, NULL);
    expect_fail(label, j, needle);
    free(j);
    free(c);
}

static void malformed_unigram(void) {
    expect_fail_model("vocab not array", "{\"type\": \"Unigram\", \"vocab\": {\"a\": 0}}",
                      "model.vocab must be an array");
    expect_fail_model("vocab empty", "{\"type\": \"Unigram\", \"vocab\": []}", "empty");
    expect_fail_model("entry not pair",
                      "{\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0], [\"b\"]]}",
                      "model.vocab[1] must be a pair");
    expect_fail_model("piece not string", "{\"type\": \"Unigram\", \"vocab\": [[1, 0.0]]}",
                      "model.vocab[0] must be a pair");
    expect_fail_model("score not number",
                      "{\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0], [\"b\", \"-1\"]]}",
                      "vocab[1] ('b'): score must be a number");
    expect_fail_model("score null", "{\"type\": \"Unigram\", \"vocab\": [[\"a\", null]]}",
                      "score must be a number");
    expect_fail_model(
        "unk_id out of range",
        "{\"type\": \"Unigram\", \"unk_id\": 2, \"vocab\": [[\"a\", 0.0], [\"b\", 0.0]]}",
        "unk_id");
    expect_fail_model("unk_id negative",
                      "{\"type\": \"Unigram\", \"unk_id\": -1, \"vocab\": [[\"a\", 0.0]]}",
                      "unk_id");
    expect_fail_model("unk_id string",
                      "{\"type\": \"Unigram\", \"unk_id\": \"0\", \"vocab\": [[\"a\", 0.0]]}",
                      "unk_id");
    expect_fail_model("byte_fallback not bool",
                      "{\"type\": \"Unigram\", \"byte_fallback\": 1, \"vocab\": [[\"a\", 0.0]]}",
                      "byte_fallback");
    /* no unk_id: loading works, an uncovered character is an error status */
    char *j =
        make_json(NULL, "{\"type\": \"Unigram\", \"unk_id\": null, \"vocab\": [[\"a\", 0.0]]}");
    ember_status st;
    ember_tokenizer *t = load_str(j, &st);
    TT_CHECK(st == EMBER_OK, "no unk_id loads: %s", ember_last_error());
    if (t) {
        ember_encoding *e = NULL;
        ember_encoding_new(&e);
        ember_tokenize_options o = ember_tokenize_default_options();
        TT_CHECK(ember_tokenize(t, "aa", 2, &o, e) == EMBER_OK && ember_encoding_length(e) == 2,
                 "covered text encodes");
        st = ember_tokenize(t, "ab", 2, &o, e);
        TT_CHECK(st != EMBER_OK && strstr(ember_last_error(), "unk_id"),
                 "uncovered text without unk_id: status %d (%s)", st, ember_last_error());
        ember_encoding_free(e);
        ember_tokenizer_free(t);
    }
    free(j);
}

/* Units of a darts-clone array mapping the one key "a" to blob[idx]: the
 * root's offset 1 puts 'a' at unit 1 ^ 0x61; that unit has the label, the
 * leaf flag and offset 1, so its value sits at the next unit. */
static size_t tiny_charsmap(uint8_t *out, const char *blob, size_t blob_len, uint32_t idx) {
    uint32_t units[98] = {0};
    units[0] = 1u << 10;
    units[0x60] = 0x61u | 1u << 8 | 1u << 10;
    units[0x61] = 0x80000000u | idx;
    uint32_t size = sizeof units;
    memcpy(out, &size, 4); /* little-endian hosts (x86, ARM) */
    memcpy(out + 4, units, sizeof units);
    memcpy(out + 4 + sizeof units, blob, blob_len);
    return 4 + sizeof units + blob_len;
}

static void encode_ids(ember_tokenizer *t, const char *text, const char *want, const char *label) {
    ember_encoding *e = NULL;
    ember_encoding_new(&e);
    ember_tokenize_options o = ember_tokenize_default_options();
    ember_status st = ember_tokenize(t, text, strlen(text), &o, e);
    char got[256] = "";
    for (int64_t i = 0; st == EMBER_OK && i < ember_encoding_length(e); i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "",
                 ember_encoding_token(e, i));
    TT_CHECK(st == EMBER_OK && strcmp(got, want) == 0, "%s: \"%s\" gives [%s], expected [%s] (%s)",
             label, text, got, want, st == EMBER_OK ? "" : ember_last_error());
    ember_encoding_free(e);
}

static void charsmaps(void) {
    uint8_t raw[600];
    /* "a" -> "b" */
    size_t n = tiny_charsmap(raw, "b\0", 2, 0);
    char *c = b64(raw, n), *j = make_json(c, NULL);
    ember_status st;
    ember_tokenizer *t = load_str(j, &st);
    TT_CHECK(st == EMBER_OK, "tiny charsmap loads: %s", ember_last_error());
    if (t) {
        encode_ids(t, "xa", "x b", "a -> b");
        /* the unknown 'q' is its own text; 'a' + U+0301 is one grapheme
         * whose first key 'a' replaces it whole (HF's quirk) */
        encode_ids(t, "qa\xcc\x81x", "q b x", "grapheme replaced whole");
        ember_tokenizer_free(t);
    }
    free(c);
    free(j);
    /* "a" -> "" (deleted) */
    n = tiny_charsmap(raw, "b\0", 2, 1);
    c = b64(raw, n), j = make_json(c, NULL);
    t = load_str(j, &st);
    if (t) {
        encode_ids(t, "xab", "x b", "a deleted");
        encode_ids(t, "a", "", "only a deleted");
        ember_tokenizer_free(t);
    }
    free(c);
    free(j);
    /* values and offsets pointing anywhere: load, normalize, no crash */
    uint32_t seed = 12345;
    for (int round = 0; round < 50; round++) {
        uint32_t units[64];
        for (int i = 0; i < 64; i++) {
            seed = seed * 1103515245u + 12345u;
            units[i] = seed ^ (seed >> 7);
        }
        units[0] = (uint32_t)(round & 63) << 10;
        uint32_t size = sizeof units;
        memcpy(raw, &size, 4);
        memcpy(raw + 4, units, sizeof units);
        memcpy(raw + 4 + sizeof units, "xy\0\xc3\xa9\0", 6);
        c = b64(raw, 4 + sizeof units + 6), j = make_json(c, NULL);
        t = load_str(j, &st);
        TT_CHECK(st == EMBER_OK, "random trie %d loads: %s", round, ember_last_error());
        if (t) {
            ember_encoding *e = NULL;
            ember_encoding_new(&e);
            ember_tokenize_options o = ember_tokenize_default_options();
            const char *txt = "a\x01 b\xc3\xa9 \xe4\xb8\xad\xf0\x9f\x98\x80 ab\xcc\x81x\x7f";
            TT_CHECK(ember_tokenize(t, txt, strlen(txt), &o, e) == EMBER_OK, "random trie %d: %s",
                     round, ember_last_error());
            ember_encoding_free(e);
            ember_tokenizer_free(t);
        }
        free(c);
        free(j);
    }

    /* malformed charsmaps */
    expect_fail_cmap("charsmap empty", raw, 0, "shorter than its 4-byte trie size");
    expect_fail_cmap("charsmap 3 bytes", raw, 3, "shorter than its 4-byte trie size");
    n = tiny_charsmap(raw, "b\0", 2, 0);
    expect_fail_cmap("charsmap truncated", raw, 200, "truncated");
    uint32_t zero = 0;
    memcpy(raw, &zero, 4);
    expect_fail_cmap("charsmap empty trie", raw, 8, "empty trie");
    n = tiny_charsmap(raw, "b\xff\0", 3, 0);
    expect_fail_cmap("blob not UTF-8", raw, n, "not valid UTF-8");
    char *jb = make_json("AAAA!AAA", NULL);
    expect_fail("bad base64 char", jb, "not valid base64");
    free(jb);
    jb = make_json("AAAAA", NULL);
    expect_fail("bad base64 length", jb, "not valid base64");
    free(jb);
    expect_fail("charsmap not string",
                "{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": 5}, "
                "\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}",
                "precompiled_charsmap");
    expect_fail("charsmap missing",
                "{\"normalizer\": {\"type\": \"Precompiled\"}, "
                "\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}",
                "precompiled_charsmap");
}

/* The real charsmap of the fixture, cut short at several lengths. */
static void truncated_real(const char *fx) {
    char *path = tt_path(fx, "spm-xlmr-nmt", "tokenizer.json");
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    TT_CHECK(root != NULL, "cannot read %s", path);
    if (!root) {
        free(path);
        return;
    }
    json_t *pc = json_object_get(json_array_get(json_object_get(json_object_get(root, "normalizer"),
                                                                "normalizers"),
                                                0),
                                 "precompiled_charsmap");
    const char *full = json_string_value(pc);
    size_t fl = full ? strlen(full) : 0;
    size_t cuts[] = {4, 8, 100, fl / 2 / 4 * 4, fl * 2 / 3}; /* all inside the trie */
    for (size_t k = 0; full && k < sizeof cuts / sizeof *cuts; k++) {
        char *cut = malloc(cuts[k] + 1);
        memcpy(cut, full, cuts[k]);
        cut[cuts[k]] = '\0';
        char *j = make_json(cut, NULL);
        char label[64];
        snprintf(label, sizeof label, "real charsmap cut to %zu base64 chars", cuts[k]);
        expect_fail(label, j, "precompiled_charsmap");
        free(j);
        free(cut);
    }
    json_decref(root);
    free(path);
}

/* Invalid UTF-8 gives the ids of its U+FFFD replacement (HF sees the text
 * Python decoded with errors="replace"). */
typedef struct {
    ember_tokenizer *t;
    ember_encoding *a, *b;
    int n;
} inv_ctx;

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

static int check_invalid(json_t *rec, void *user) {
    inv_ctx *c = user;
    const char *hex = json_string_value(json_object_get(rec, "hex"));
    const json_t *rt = json_object_get(rec, "replaced_text");
    size_t n = strlen(hex) / 2;
    char *raw = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        raw[i] = (char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    ember_tokenize_options o = ember_tokenize_default_options();
    ember_status s1 = ember_tokenize(c->t, raw, n, &o, c->a);
    ember_status s2 = ember_tokenize(c->t, json_string_value(rt), json_string_length(rt), &o, c->b);
    int same = s1 == EMBER_OK && s2 == EMBER_OK &&
               ember_encoding_length(c->a) == ember_encoding_length(c->b);
    for (int64_t i = 0; same && i < ember_encoding_length(c->a); i++)
        same = ember_encoding_ids(c->a)[i] == ember_encoding_ids(c->b)[i];
    TT_CHECK(same, "%s: ids of the raw bytes differ from those of replaced_text",
             json_string_value(json_object_get(rec, "id")));
    const int64_t *bo = ember_encoding_byte_offsets(c->a);
    for (int64_t i = 0; s1 == EMBER_OK && i < ember_encoding_length(c->a); i++)
        TT_CHECK(bo[2 * i] <= bo[2 * i + 1] && bo[2 * i + 1] <= (int64_t)n, "offsets in range");
    c->n++;
    free(raw);
    return 0;
}

static void invalid_utf8(const char *fx) {
    const char *names[] = {"spm-xlmr-nmt", "spm-bytefallback"};
    for (int k = 0; k < 2; k++) {
        char *dir = tt_path(fx, names[k], NULL);
        inv_ctx c = {tt_load(dir), NULL, NULL, 0};
        ember_encoding_new(&c.a);
        ember_encoding_new(&c.b);
        if (c.t) {
            char *inv = tt_path(fx, "goldens", "invalid-utf8.jsonl");
            tt_jsonl(inv, check_invalid, &c);
            TT_CHECK(c.n == 20, "%s: %d invalid UTF-8 cases", names[k], c.n);
            free(inv);
        }
        ember_encoding_free(c.a);
        ember_encoding_free(c.b);
        ember_tokenizer_free(c.t);
        free(dir);
    }
}

static void spm_model_only(void) {
    char *dir = tt_path(tmpdir, "xlmr", NULL);
    mkdir(dir, 0700);
    char *model = tt_path(dir, "sentencepiece.bpe.model", NULL);
    write_file(model, "\x0a\x00", 2);
    ember_tokenizer *t = NULL;
    ember_status st = ember_tokenizer_load(dir, &t);
    const char *msg = ember_last_error();
    TT_CHECK(st == EMBER_E_NOT_FOUND && !t, "sentencepiece-only dir: status %d", st);
    TT_CHECK(strstr(msg, "sentencepiece.bpe.model") && strstr(msg, "tokenizer.json") &&
                 strstr(msg, "save_pretrained"),
             "sentencepiece-only dir: message \"%s\"", msg);
    unlink(model);
    rmdir(dir);
    free(model);
    free(dir);
}

int main(int argc, char **argv) {
    const char *fx = argc > 1 ? argv[1] : "tests/fixtures/tokenizer";
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember_tok_spm_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    malformed_unigram();
    charsmaps();
    truncated_real(fx);
    invalid_utf8(fx);
    spm_model_only();
    rmdir(tmpdir);
    return tt_finish("test_tok_spm");
}
