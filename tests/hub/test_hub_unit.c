/*
 * test_hub_unit.c — the pieces of hub resolution that need no server: SHA-256
 * and SHA-1 against FIPS 180 and git vectors, the blob digest check, model id
 * and revision validation, the quoting of file URLs, and the environment read as huggingface_hub reads
 * it (HF_HOME, HF_HUB_CACHE, tokens, offline flags, endpoint, timeouts).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub_testutil.h"
#include "hub/hub.h"

static void sha256_hex_of(const void *data, size_t n, char hex[65]) {
    ember_sha256 s;
    uint8_t d[32];
    ember_sha256_init(&s);
    ember_sha256_update(&s, data, n);
    ember_sha256_final(&s, d);
    ember_hub_hex(d, 32, hex);
}

static void sha1_hex_of(const void *data, size_t n, char hex[41]) {
    ember_sha1 s;
    uint8_t d[20];
    ember_sha1_init(&s);
    ember_sha1_update(&s, data, n);
    ember_sha1_final(&s, d);
    ember_hub_hex(d, 20, hex);
}

static void test_sha_vectors(void) {
    static const char *const in[] = {
        "", "abc", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"};
    static const char *const want256[] = {
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"};
    static const char *const want1[] = {"da39a3ee5e6b4b0d3255bfef95601890afd80709",
                                        "a9993e364706816aba3e25717850c26c9cd0d89d",
                                        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"};
    char hex[65];
    for (int i = 0; i < 3; i++) {
        sha256_hex_of(in[i], strlen(in[i]), hex);
        CHECK(strcmp(hex, want256[i]) == 0, "sha256('%s') = %s", in[i], hex);
        sha1_hex_of(in[i], strlen(in[i]), hex);
        CHECK(strcmp(hex, want1[i]) == 0, "sha1('%s') = %s", in[i], hex);
    }
    /* A million 'a' fed in uneven pieces exercises the block buffering. */
    char *a = malloc(1000000);
    REQUIRE(a, "out of memory");
    memset(a, 'a', 1000000);
    ember_sha256 s;
    uint8_t d[32];
    ember_sha256_init(&s);
    static const size_t pieces[] = {1, 63, 64, 65, 127, 1000, 4096};
    size_t off = 0;
    for (int i = 0; off < 1000000; i++) {
        size_t n = pieces[i % 7];
        if (n > 1000000 - off)
            n = 1000000 - off;
        ember_sha256_update(&s, a + off, n);
        off += n;
    }
    ember_sha256_final(&s, d);
    ember_hub_hex(d, 32, hex);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
          "sha256(1M a) = %s", hex);
    sha1_hex_of(a, 1000000, hex);
    CHECK(strcmp(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0, "sha1(1M a) = %s", hex);
    free(a);
}

static void test_digest_check(void) {
    /* `git hash-object` of "hello\n" */
    ember_hub_digest d;
    ember_hub_digest_init(&d, "ce013625030ba8dba906f756967f9e9ca394464a", 6);
    CHECK(d.kind == 2, "a 40-hex etag is a git blob id");
    ember_hub_digest_update(&d, "hel", 3);
    ember_hub_digest_update(&d, "lo\n", 3);
    CHECK(ember_hub_digest_check(&d, "ce013625030ba8dba906f756967f9e9ca394464a", "f") == EMBER_OK,
          "git blob id of hello");

    const char *abc = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
    ember_hub_digest_init(&d, abc, 3);
    CHECK(d.kind == 1, "a 64-hex etag is a sha256");
    ember_hub_digest_update(&d, "abc", 3);
    CHECK(ember_hub_digest_check(&d, abc, "f") == EMBER_OK, "uppercase etag");

    ember_hub_digest_init(&d, abc, 3);
    ember_hub_digest_update(&d, "abd", 3);
    ember_status st = ember_hub_digest_check(&d, abc, "model.safetensors");
    CHECK(st == EMBER_E_NETWORK && strstr(ember_last_error(), "model.safetensors") &&
              strstr(ember_last_error(), "checksum"),
          "mismatch: %d", st);

    ember_hub_digest_init(&d, "not-a-digest", 3);
    CHECK(d.kind == 0, "an opaque etag promises nothing");
}

static void test_specs(void) {
    struct {
        const char *spec, *def, *id, *rev;
    } ok[] = {
        {"org/name", NULL, "org/name", "main"},
        {"bert-base-uncased", NULL, "bert-base-uncased", "main"},
        {"nomic-ai/modernbert-embed-base", "dev", "nomic-ai/modernbert-embed-base", "dev"},
        {"BAAI/bge-small-en-v1.5@v1.0", "dev", "BAAI/bge-small-en-v1.5", "v1.0"},
        {"org/name@refs/pr/1", NULL, "org/name", "refs/pr/1"},
        {"a_b.c-d/e_f.g@5c38ec7c405ec4b44b94cc5a9bb96e735b38267a", NULL, "a_b.c-d/e_f.g",
         "5c38ec7c405ec4b44b94cc5a9bb96e735b38267a"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *id = NULL, *rev = NULL;
        ember_status st = ember_hub_parse_spec(ok[i].spec, ok[i].def, &id, &rev);
        CHECK(st == EMBER_OK && id && rev && strcmp(id, ok[i].id) == 0 &&
                  strcmp(rev, ok[i].rev) == 0,
              "'%s' -> %d '%s' '%s'", ok[i].spec, st, id ? id : "", rev ? rev : "");
        free(id);
        free(rev);
    }
    char long_name[120];
    memset(long_name, 'x', 97);
    long_name[97] = '\0';
    const char *bad[] = {"org/name/extra", "../../etc", "..", "org/..", "org/a..b", "org--x/name",
                         "org/name.git", "-org/name", "org/name-", "org/.name", "org/na me",
                         "org/name@", "org/name@../../x", "org/name@a..b", "org/name@/abs",
                         "org/name@a//b", "org/name@a b", "org/name@x:y", "/name", "org/",
                         "org/name\n", long_name, "org/\xc3\xa9t\xc3\xa9", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *id = NULL, *rev = NULL;
        ember_status st = ember_hub_parse_spec(bad[i], NULL, &id, &rev);
        CHECK(st == EMBER_E_INVALID_ARGUMENT && !id && !rev && ember_last_error()[0],
              "'%s' accepted (%d)", bad[i], st);
        free(id);
        free(rev);
    }
    ember_hub_parse_spec("org/name/extra", NULL, &(char *){NULL}, &(char *){NULL});
    CHECK(strstr(ember_last_error(), "more than one '/'"), "unclear message");
    char ok96[120] = "org/";
    memset(ok96 + 4, 'y', 96);
    ok96[100] = '\0';
    CHECK(ember_hub_check_repo_id(ok96) == EMBER_OK, "a 96-character name is allowed");

    const char *paths_ok[] = {"config.json", "1_Pooling/config.json", "a/b/c.safetensors"};
    const char *paths_bad[] = {"", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/",
                               "a\\b", "a\nb"};
    for (size_t i = 0; i < 3; i++)
        CHECK(ember_hub_check_repo_path(paths_ok[i], "t") == EMBER_OK, "'%s' refused", paths_ok[i]);
    for (size_t i = 0; i < sizeof paths_bad / sizeof paths_bad[0]; i++)
        CHECK(ember_hub_check_repo_path(paths_bad[i], "t") == EMBER_E_FORMAT, "'%s' accepted",
              paths_bad[i]);
    CHECK(ember_hub_is_commit("5c38ec7c405ec4b44b94cc5a9bb96e735b38267a"), "commit");
    CHECK(!ember_hub_is_commit("5C38EC7C405EC4B44B94CC5A9BB96E735B38267A"), "uppercase commit");
    CHECK(!ember_hub_is_commit("5c38ec7"), "short commit");
}

static void test_env_paths(void) {
    ember_hub_env e;
    setenv("HF_HOME", "/srv/hf", 1);
    REQUIRE(ember_hub_env_load(&e) == EMBER_OK, "load");
    CHECK(strcmp(e.hf_home, "/srv/hf") == 0 && strcmp(e.cache_dir, "/srv/hf/hub") == 0,
          "HF_HOME: %s %s", e.hf_home, e.cache_dir);
    CHECK(strcmp(e.endpoint, "https://huggingface.co") == 0, "default endpoint %s", e.endpoint);
    CHECK(!e.offline && !e.token, "defaults");
    CHECK(e.etag_timeout_s == 10 && e.download_timeout_s == 10, "default timeouts");
    CHECK(strncmp(e.user_agent, "ember/" EMBER_VERSION_STRING "; libcurl/", 20) == 0, "ua '%s'",
          e.user_agent);
    ember_hub_env_free(&e);

    setenv("HUGGINGFACE_HUB_CACHE", "/legacy/cache/", 1);
    ember_hub_env_load(&e);
    CHECK(strcmp(e.cache_dir, "/legacy/cache") == 0, "legacy cache var: %s", e.cache_dir);
    ember_hub_env_free(&e);
    setenv("HF_HUB_CACHE", "/new/cache", 1);
    ember_hub_env_load(&e);
    CHECK(strcmp(e.cache_dir, "/new/cache") == 0, "HF_HUB_CACHE wins: %s", e.cache_dir);
    ember_hub_env_free(&e);
    unsetenv("HF_HUB_CACHE");
    unsetenv("HUGGINGFACE_HUB_CACHE");

    unsetenv("HF_HOME");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    ember_hub_env_load(&e);
    CHECK(strcmp(e.cache_dir, "/xdg/huggingface/hub") == 0, "XDG: %s", e.cache_dir);
    ember_hub_env_free(&e);
    unsetenv("XDG_CACHE_HOME");

    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", "/home/someone", 1);
    ember_hub_env_load(&e);
    CHECK(strcmp(e.cache_dir, "/home/someone/.cache/huggingface/hub") == 0, "~: %s", e.cache_dir);
    ember_hub_env_free(&e);
    setenv("HF_HOME", "~/hf", 1);
    setenv("EMBER_TEST_VAR", "sub", 1);
    setenv("HF_HUB_CACHE", "$HOME/${EMBER_TEST_VAR}/$UNSET_EMBER_VAR", 1);
    ember_hub_env_load(&e);
    CHECK(strcmp(e.hf_home, "/home/someone/hf") == 0, "expanduser: %s", e.hf_home);
    CHECK(strcmp(e.cache_dir, "/home/someone/sub/$UNSET_EMBER_VAR") == 0, "expandvars: %s",
          e.cache_dir);
    ember_hub_env_free(&e);
    if (home)
        setenv("HOME", home, 1);
    free(home);
    unsetenv("HF_HUB_CACHE");

    REQUIRE(chdir(tu_dir) == 0, "chdir");
    setenv("HF_HOME", "rel/hf", 1);
    ember_hub_env_load(&e);
    CHECK(strcmp(e.hf_home, tu_path("rel/hf")) == 0, "relative HF_HOME: %s", e.hf_home);
    ember_hub_env_free(&e);

    setenv("HF_ENDPOINT", "http://127.0.0.1:1234///", 1);
    ember_hub_env_load(&e);
    CHECK(strcmp(e.endpoint, "http://127.0.0.1:1234") == 0, "endpoint %s", e.endpoint);
    ember_hub_env_free(&e);
    setenv("HF_ENDPOINT", "ftp://mirror", 1);
    CHECK(ember_hub_env_load(&e) == EMBER_E_INVALID_ARGUMENT, "ftp endpoint accepted");
    unsetenv("HF_ENDPOINT");

    setenv("HF_HUB_ETAG_TIMEOUT", "3", 1);
    setenv("HF_HUB_DOWNLOAD_TIMEOUT", "soon", 1);
    setenv("HF_HUB_USER_AGENT_ORIGIN", "tests", 1);
    ember_hub_env_load(&e);
    CHECK(e.etag_timeout_s == 3 && e.download_timeout_s == 10, "timeouts %ld %ld",
          e.etag_timeout_s, e.download_timeout_s);
    CHECK(strstr(e.user_agent, "; origin/tests") != NULL, "ua origin '%s'", e.user_agent);
    ember_hub_env_free(&e);
}

static void test_env_tokens_and_flags(void) {
    ember_hub_env e;
    tu_write(tu_path("home/token"), "  hf_file\r\n", 11);
    ember_hub_env_load(&e);
    CHECK(e.token && strcmp(e.token, "hf_file") == 0, "token file: %s", e.token ? e.token : "");
    ember_hub_env_free(&e);
    tu_write(tu_path("elsewhere"), "hf_path", 7);
    setenv("HF_TOKEN_PATH", tu_path("elsewhere"), 1);
    ember_hub_env_load(&e);
    CHECK(e.token && strcmp(e.token, "hf_path") == 0, "HF_TOKEN_PATH");
    ember_hub_env_free(&e);
    setenv("HUGGING_FACE_HUB_TOKEN", "hf_legacy", 1);
    ember_hub_env_load(&e);
    CHECK(e.token && strcmp(e.token, "hf_legacy") == 0, "legacy variable before the file");
    ember_hub_env_free(&e);
    setenv("HF_TOKEN", "", 1);
    ember_hub_env_load(&e);
    CHECK(e.token && strcmp(e.token, "hf_legacy") == 0, "an empty HF_TOKEN is no token");
    ember_hub_env_free(&e);
    setenv("HF_TOKEN", "\nhf_env \n", 1);
    ember_hub_env_load(&e);
    CHECK(e.token && strcmp(e.token, "hf_env") == 0 && strcmp(e.token_source, "HF_TOKEN") == 0,
          "HF_TOKEN first: %s", e.token ? e.token : "");
    ember_hub_env_free(&e);
    setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "true", 1);
    ember_hub_env_load(&e);
    CHECK(!e.token, "HF_HUB_DISABLE_IMPLICIT_TOKEN");
    ember_hub_env_free(&e);
    unsetenv("HF_HUB_DISABLE_IMPLICIT_TOKEN");
    setenv("HF_TOKEN", "hf_a b", 1);
    CHECK(ember_hub_env_load(&e) == EMBER_E_AUTH, "a token with a space would break the header");

    CHECK(ember_hub_env_true("1") && ember_hub_env_true("on") && ember_hub_env_true("Yes") &&
              ember_hub_env_true("TRUE"),
          "truthy values");
    CHECK(!ember_hub_env_true("0") && !ember_hub_env_true("false") && !ember_hub_env_true("") &&
              !ember_hub_env_true(NULL) && !ember_hub_env_true("2"),
          "falsy values");
}

/* Equal URLs, the hex digits of %XX escapes compared without case
 * (RFC 3986 2.1: libcurl writes "%c3", urllib.parse.quote "%C3"). */
static bool same_url(const char *a, const char *b) {
    for (int hex = 0;; a++, b++) {
        if (hex > 0 ? tolower((unsigned char)*a) != tolower((unsigned char)*b) : *a != *b)
            return false;
        if (!*a)
            return true;
        hex = *a == '%' ? 2 : hex > 0 ? hex - 1 : 0;
    }
}

/* hf_hub_url()'s quoting: the revision is one segment ('/' quoted), each
 * path segment is quoted but '/' between them is kept; an endpoint path
 * prefix (a mirror) is kept, its query dropped. */
static void test_resolve_url_quoting(void) {
    struct {
        const char *endpoint, *rev, *path, *want;
    } cases[] = {
        {"https://huggingface.co", "main", "config.json",
         "https://huggingface.co/org/m/resolve/main/config.json"},
        {"https://huggingface.co", "refs/pr/1", "1_Pooling/config.json",
         "https://huggingface.co/org/m/resolve/refs%2Fpr%2F1/1_Pooling/config.json"},
        {"http://127.0.0.1:1/mirror", "feat#1%\xc3\xa9", "dir with space/a#b?c%d \xc3\xa9.json",
         "http://127.0.0.1:1/mirror/org/m/resolve/feat%231%25%C3%A9/"
         "dir%20with%20space/a%23b%3Fc%25d%20%C3%A9.json"},
        {"https://hf.example/base/?x=1#frag", "v1", "a+b=c&d.txt",
         "https://hf.example/base/org/m/resolve/v1/a%2Bb%3Dc%26d.txt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *url = NULL;
        ember_status st =
            ember_hub_resolve_url(cases[i].endpoint, "org/m", cases[i].rev, cases[i].path, &url);
        CHECK(st == EMBER_OK && url && same_url(url, cases[i].want), "%zu: %d '%s'\n want '%s'",
              i, st, url ? url : "", cases[i].want);
        free(url);
    }
    char *url = NULL;
    CHECK(ember_hub_resolve_url("not a url", "org/m", "main", "config.json", &url) ==
                  EMBER_E_INVALID_ARGUMENT &&
              !url && strstr(ember_last_error(), "HF_ENDPOINT"),
          "a malformed endpoint");
}

int main(void) {
    RUN(test_sha_vectors);
    RUN(test_resolve_url_quoting);
    RUN(test_digest_check);
    RUN(test_specs);
    RUN(test_env_paths);
    RUN(test_env_tokens_and_flags);
    return tu_finish();
}
