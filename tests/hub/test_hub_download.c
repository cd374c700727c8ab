/*
 * test_hub_download.c — ember_resolve_model against the mock hub: first
 * download into an empty cache, reuse with the hub gone, other revisions,
 * errors (404, 401, gated), interrupted and resumed transfers, stalls,
 * checksum mismatches, offline mode, renamed repos, sharded and pickle-only
 * repositories, and what is (and is not) sent over the wire.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub_testutil.h"
#include "mock_hub.h"

#define C_MAIN "5c38ec7c405ec4b44b94cc5a9bb96e735b38267a"
#define C_V1 "8d9f0e1a2b3c4d5e6f708192a3b4c5d6e7f80912"
#define C_SHARD "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
#define C_PT "fedcba9876543210fedcba9876543210fedcba98"

#define FIX(x) EMBER_HUB_FIXTURES "/" x

static mock_repo g_repos[] = {
    {"org/tiny", {{"main", C_MAIN, FIX("tiny")}, {"v1", C_V1, FIX("tiny-v1")}}, MOCK_PUBLIC, NULL, 0},
    {"org/sharded", {{"main", C_SHARD, FIX("sharded")}}, MOCK_PUBLIC, NULL, 0},
    {"org/pytorch", {{"main", C_PT, FIX("pytorch")}}, MOCK_PUBLIC, NULL, 0},
    {"org/private", {{"main", C_MAIN, FIX("tiny")}}, MOCK_PRIVATE, NULL, 0},
    {"org/gated", {{"main", C_MAIN, FIX("tiny")}}, MOCK_GATED, NULL, 0},
    {"old-org/tiny", {{NULL, NULL, NULL}}, MOCK_PUBLIC, "org/tiny", 0},
    {"bert-tiny", {{"main", C_MAIN, FIX("tiny")}}, MOCK_PUBLIC, NULL, 0},
    {"org/old-name", {{NULL, NULL, NULL}}, MOCK_PUBLIC, "org/tiny", MOCK_REDIRECT_PATH_RELATIVE},
    {"old-org/private", {{NULL, NULL, NULL}}, MOCK_PUBLIC, "org/private",
     MOCK_REDIRECT_ABSOLUTE_PATH},
};
#define N_REPOS (sizeof g_repos / sizeof g_repos[0])

static mock_hub *start_hub(void) {
    mock_hub *h = mock_hub_start(g_repos, N_REPOS, "hf_good", "hf_weak");
    if (h)
        tu_isolate_env(mock_hub_url(h));
    return h;
}

/* Resolves with default parameters; *dir freed by the caller. */
static ember_status resolve(const char *spec, char **dir) {
    ember_model_params p = tu_params();
    return ember_resolve_model(spec, &p, dir);
}

static const char *snap(const char *repo, const char *commit, const char *file) {
    static char b[4][1024];
    static int i;
    char *s = b[i++ % 4];
    snprintf(s, sizeof b[0], "%s/snapshots/%s%s%s", tu_storage(repo), commit, file ? "/" : "",
             file ? file : "");
    return s;
}

static const char *blob(const char *repo, const char *etag, const char *suffix) {
    static char b[4][1024];
    static int i;
    char *s = b[i++ % 4];
    snprintf(s, sizeof b[0], "%s/blobs/%s%s", tu_storage(repo), etag, suffix ? suffix : "");
    return s;
}

static bool link_is(const char *path, const char *target) {
    char buf[1024];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return strcmp(buf, target) == 0;
}

typedef struct progress_log {
    int calls;
    int64_t last_done, last_total;
    bool monotonic;
    int finished_weights; /* calls for model.safetensors with done == total */
} progress_log;

static void on_progress(const char *file, int64_t done, int64_t total, void *user) {
    progress_log *p = user;
    if (strcmp(file, "model.safetensors") != 0)
        return;
    if (p->calls && done < p->last_done)
        p->monotonic = false;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
    p->finished_weights += done == total;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_first_download(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    ember_model_params p = tu_params();
    progress_log pl = {.monotonic = true};
    p.progress = on_progress;
    p.progress_user = &pl;
    char *dir = NULL;
    ember_status st = ember_resolve_model("org/tiny", &p, &dir);
    CHECK(st == EMBER_OK, "status %d", st);
    CHECK(dir && strcmp(dir, snap("org/tiny", C_MAIN, NULL)) == 0, "dir %s", dir ? dir : "(null)");

    size_t len;
    char *ref = tu_read(tu_path("home/hub/models--org--tiny/refs/main"), &len);
    CHECK(ref && len == 40 && memcmp(ref, C_MAIN, 40) == 0, "refs/main = '%s'", ref ? ref : "");
    free(ref);

    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json", "special_tokens_map.json",
                                        "modules.json", "1_Pooling/config.json",
                                        "sentence_bert_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char fixture[1024];
        snprintf(fixture, sizeof fixture, "%s/%s", FIX("tiny"), files[i]);
        const char *got = snap("org/tiny", C_MAIN, files[i]);
        CHECK(tu_is_link(got), "%s is not a symlink", files[i]);
        CHECK(tu_same_file(got, fixture), "%s differs from the fixture", files[i]);
    }
    char sha[65], git[41], pool[41], target[256];
    tu_sha256_file(FIX("tiny/model.safetensors"), sha);
    tu_git_sha1_file(FIX("tiny/config.json"), git);
    tu_git_sha1_file(FIX("tiny/1_Pooling/config.json"), pool);
    snprintf(target, sizeof target, "../../blobs/%s", sha);
    CHECK(link_is(snap("org/tiny", C_MAIN, "model.safetensors"), target),
          "weights link is not %s", target);
    snprintf(target, sizeof target, "../../blobs/%s", git);
    CHECK(link_is(snap("org/tiny", C_MAIN, "config.json"), target), "config link is not %s",
          target);
    snprintf(target, sizeof target, "../../../blobs/%s", pool);
    CHECK(link_is(snap("org/tiny", C_MAIN, "1_Pooling/config.json"), target),
          "nested link is not %s", target);
    CHECK(tu_count_dir(tu_path("home/hub/models--org--tiny/blobs"), ".incomplete") == 0,
          "an .incomplete file was left");
    CHECK(tu_exists(tu_path("home/hub/models--org--tiny/.no_exist/" C_MAIN
                            "/config_sentence_transformers.json")),
          "the 404 of an optional file was not remembered");
    CHECK(!tu_exists(tu_path("home/hub/models--org--tiny/.no_exist/" C_MAIN "/vocab.txt")),
          "vocab.txt was asked for although tokenizer.json exists");
    char lock[1024];
    snprintf(lock, sizeof lock, "home/hub/.locks/models--org--tiny/%s.lock", sha);
    CHECK(tu_exists(tu_path(lock)), "no lock file where huggingface_hub puts it");

    mock_request rq;
    CHECK(mock_hub_last(h, "HEAD", "/org/tiny/resolve/main/config.json", &rq), "no HEAD");
    CHECK(strncmp(rq.user_agent, "ember/", 6) == 0, "user agent '%s'", rq.user_agent);
    CHECK(strcmp(rq.accept_encoding, "identity") == 0, "accept-encoding '%s'", rq.accept_encoding);
    CHECK(rq.auth[0] == '\0', "a token was sent without one configured: '%s'", rq.auth);
    CHECK(mock_hub_count(h, "GET", "/cdn/") == 1, "weights not fetched once from the CDN");
    CHECK(mock_hub_count(h, "GET", "/resolve/main/model.safetensors") == 0,
          "the GET did not go straight to the redirect target");
    CHECK(mock_hub_count(h, "HEAD", "/resolve/" C_MAIN "/tokenizer.json") == 1,
          "files after config.json are not asked at the resolved commit");
    CHECK(pl.calls >= 2 && pl.monotonic && pl.last_done == 1112 && pl.last_total == 1112 &&
              pl.finished_weights >= 1,
          "progress: %d calls, last %lld/%lld", pl.calls, (long long)pl.last_done,
          (long long)pl.last_total);
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_second_run_asks_once_then_reuses_without_network(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *a = NULL, *b = NULL, *c = NULL;
    CHECK(resolve("org/tiny", &a) == EMBER_OK, "first");
    mock_hub_clear_log(h);
    CHECK(resolve("org/tiny", &b) == EMBER_OK, "second");
    /* One HEAD on config.json to learn the commit; everything else is in the
     * snapshot or remembered in .no_exist. */
    CHECK(mock_hub_total(h) == 1, "%zu requests on a cached model", mock_hub_total(h));
    mock_hub_stop(h);
    CHECK(resolve("org/tiny", &c) == EMBER_OK, "with the hub gone");
    CHECK(a && c && strcmp(a, c) == 0, "different directory without network: %s", c ? c : "");
    CHECK(ember_last_error()[0] == '\0', "success leaves a message: %s", ember_last_error());
    ember_free(a);
    ember_free(b);
    ember_free(c);
}

static void test_other_revision(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    CHECK(resolve("org/tiny@v1", &dir) == EMBER_OK, "v1");
    CHECK(dir && strcmp(dir, snap("org/tiny", C_V1, NULL)) == 0, "dir %s", dir ? dir : "");
    size_t len;
    char *ref = tu_read(tu_path("home/hub/models--org--tiny/refs/v1"), &len);
    CHECK(ref && len == 40 && memcmp(ref, C_V1, 40) == 0, "refs/v1 = '%s'", ref ? ref : "");
    free(ref);
    CHECK(!tu_exists(tu_path("home/hub/models--org--tiny/refs/main")), "refs/main written");
    CHECK(tu_same_file(snap("org/tiny", C_V1, "config.json"), FIX("tiny-v1/config.json")),
          "v1 config differs");
    CHECK(tu_same_file(snap("org/tiny", C_V1, "vocab.txt"), FIX("tiny-v1/vocab.txt")),
          "vocab.txt not fetched when tokenizer.json is missing");
    CHECK(tu_exists(tu_path("home/hub/models--org--tiny/.no_exist/" C_V1 "/tokenizer.json")),
          "missing tokenizer.json not remembered");
    ember_free(dir);

    /* params->revision applies when the spec has none; the spec's wins. */
    ember_model_params p = tu_params();
    p.revision = "v1";
    dir = NULL;
    CHECK(ember_resolve_model("org/tiny", &p, &dir) == EMBER_OK, "params revision");
    CHECK(dir && strstr(dir, C_V1), "params->revision ignored: %s", dir ? dir : "");
    ember_free(dir);
    dir = NULL;
    CHECK(ember_resolve_model("org/tiny@main", &p, &dir) == EMBER_OK, "spec revision");
    CHECK(dir && strstr(dir, C_MAIN), "spec @main did not win: %s", dir ? dir : "");
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_commit_revision(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    CHECK(resolve("org/tiny@" C_V1, &dir) == EMBER_OK, "commit");
    CHECK(dir && strcmp(dir, snap("org/tiny", C_V1, NULL)) == 0, "dir %s", dir ? dir : "");
    CHECK(tu_count_dir(tu_path("home/hub/models--org--tiny/refs"), NULL) == 0,
          "a ref was written for a commit hash");
    ember_free(dir);
    mock_hub_clear_log(h);
    dir = NULL;
    CHECK(resolve("org/tiny@" C_V1, &dir) == EMBER_OK, "commit again");
    CHECK(mock_hub_total(h) == 0, "%zu requests for a cached commit", mock_hub_total(h));
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_branch_moves(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *a = NULL, *b = NULL;
    CHECK(resolve("org/tiny", &a) == EMBER_OK, "before");
    mock_rev saved = g_repos[0].revs[0];
    g_repos[0].revs[0].commit = C_V1;
    g_repos[0].revs[0].dir = FIX("tiny-v1");
    CHECK(resolve("org/tiny", &b) == EMBER_OK, "after the branch moved");
    g_repos[0].revs[0] = saved;
    CHECK(b && strstr(b, C_V1), "still the old commit: %s", b ? b : "");
    char *ref = tu_read(tu_path("home/hub/models--org--tiny/refs/main"), NULL);
    CHECK(ref && strcmp(ref, C_V1) == 0, "refs/main not updated: %s", ref ? ref : "");
    free(ref);
    CHECK(tu_exists(snap("org/tiny", C_MAIN, "config.json")), "old snapshot removed");
    ember_free(a);
    ember_free(b);
    mock_hub_stop(h);
}

static void test_not_found(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    ember_status st = resolve("org/missing", &dir);
    CHECK(st == EMBER_E_NOT_FOUND, "status %d", st);
    CHECK(dir == NULL, "dir set on error");
    CHECK(strstr(ember_last_error(), "org/missing"), "message does not name the model");
    CHECK(!tu_exists(tu_storage("org/missing")) ||
              tu_count_dir(tu_path("home/hub/models--org--missing/snapshots"), NULL) == 0,
          "something was cached for a missing model");
    st = resolve("org/tiny@nope", &dir);
    CHECK(st == EMBER_E_NOT_FOUND && strstr(ember_last_error(), "revision"),
          "unknown revision: status %d", st);
    mock_hub_stop(h);
}

static void test_auth(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    ember_status st = resolve("org/private", &dir);
    CHECK(st == EMBER_E_AUTH, "status %d without a token", st);
    CHECK(strstr(ember_last_error(), "HF_TOKEN") && strstr(ember_last_error(), "private"),
          "message does not say what to do");

    setenv("HF_TOKEN", "hf_wrong", 1);
    st = resolve("org/private", &dir);
    CHECK(st == EMBER_E_AUTH && strstr(ember_last_error(), "HF_TOKEN"),
          "bad token: status %d", st);

    setenv("HF_TOKEN", "  hf_good\n", 1); /* cleaned like _clean_token */
    st = resolve("org/private", &dir);
    CHECK(st == EMBER_OK, "status %d with HF_TOKEN", st);
    mock_request rq;
    CHECK(mock_hub_last(h, "HEAD", "/org/private/resolve/", &rq) &&
              strcmp(rq.auth, "Bearer hf_good") == 0,
          "Authorization '%s'", rq.auth);
    CHECK(mock_hub_last(h, "GET", "/cdn/", &rq) && strcmp(rq.auth, "Bearer hf_good") == 0,
          "same-origin CDN did not get the token: '%s'", rq.auth);
    ember_free(dir);
    dir = NULL;

    /* Cached and the hub says 401: huggingface_hub falls back to the cache. */
    unsetenv("HF_TOKEN");
    st = resolve("org/private", &dir);
    CHECK(st == EMBER_OK, "cached private model not reused after a 401: %d", st);
    ember_free(dir);
    dir = NULL;

    /* The token file, in another cache (HF_HUB_CACHE) so nothing is cached. */
    setenv("HF_HUB_CACHE", tu_path("other-cache"), 1);
    tu_write(tu_path("home/token"), "hf_good\n", 8);
    st = resolve("org/private", &dir);
    CHECK(st == EMBER_OK, "status %d with $HF_HOME/token", st);
    CHECK(dir && strncmp(dir, tu_path("other-cache/models--org--private"),
                         strlen(tu_path("other-cache/models--org--private"))) == 0,
          "HF_HUB_CACHE ignored: %s", dir ? dir : "");
    ember_free(dir);
    dir = NULL;

    setenv("HF_HUB_CACHE", tu_path("third-cache"), 1);
    setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1", 1);
    st = resolve("org/private", &dir);
    CHECK(st == EMBER_E_AUTH, "HF_HUB_DISABLE_IMPLICIT_TOKEN ignored: %d", st);
    mock_hub_stop(h);
}

static void test_gated(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    ember_status st = resolve("org/gated", &dir);
    CHECK(st == EMBER_E_AUTH && strstr(ember_last_error(), "gated") &&
              strstr(ember_last_error(), "accept"),
          "no token: status %d", st);
    setenv("HF_TOKEN", "hf_weak", 1);
    st = resolve("org/gated", &dir);
    CHECK(st == EMBER_E_AUTH && strstr(ember_last_error(), "gated"), "weak token: status %d", st);
    setenv("HF_TOKEN", "hf_good", 1);
    st = resolve("org/gated", &dir);
    CHECK(st == EMBER_OK, "good token: status %d", st);
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_cut_then_resume(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char sha[65];
    tu_sha256_file(FIX("tiny/model.safetensors"), sha);
    /* Every GET breaks after 100 bytes: the call gives up after its retries. */
    mock_hub_cut(h, "model.safetensors", 100, 1000);
    char *dir = NULL;
    ember_status st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_E_NETWORK, "status %d", st);
    CHECK(strstr(ember_last_error(), "resume"), "message does not mention resuming");
    size_t part = 0;
    char *data = tu_read(blob("org/tiny", sha, ".incomplete"), &part);
    CHECK(data && part == 300, "partial file: %zu bytes", part);
    free(data);
    CHECK(!tu_exists(blob("org/tiny", sha, NULL)), "a blob exists for a broken download");
    CHECK(!tu_exists(snap("org/tiny", C_MAIN, "model.safetensors")), "weights linked");
    mock_request rq;
    CHECK(mock_hub_last(h, "GET", "/cdn/", &rq) && strcmp(rq.range, "bytes=200-") == 0,
          "retries within the call did not resume: '%s'", rq.range);

    /* The connection comes back: the next run resumes from the partial file. */
    mock_hub_cut(h, "model.safetensors", 0, 0);
    mock_hub_clear_log(h);
    st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_OK, "resume: status %d", st);
    CHECK(mock_hub_count(h, "GET", "/cdn/") == 1 && mock_hub_last(h, "GET", "/cdn/", &rq) &&
              strcmp(rq.range, "bytes=300-") == 0,
          "no Range request: '%s'", rq.range);
    CHECK(tu_same_file(snap("org/tiny", C_MAIN, "model.safetensors"), FIX("tiny/model.safetensors")),
          "resumed file differs");
    CHECK(!tu_exists(blob("org/tiny", sha, ".incomplete")), ".incomplete left");
    ember_free(dir);

    /* One break in one call is absorbed by the retry. */
    setenv("HF_HUB_CACHE", tu_path("cache2"), 1);
    mock_hub_cut(h, "model.safetensors", 500, 1);
    mock_hub_clear_log(h);
    dir = NULL;
    st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_OK, "single break: status %d", st);
    CHECK(mock_hub_last(h, "GET", "/cdn/", &rq) && strcmp(rq.range, "bytes=500-") == 0,
          "single break not resumed: '%s'", rq.range);
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_server_ignores_range(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    mock_hub_cut(h, "model.safetensors", 400, 1);
    mock_hub_ignore_range(h, true);
    char *dir = NULL;
    CHECK(resolve("org/tiny", &dir) == EMBER_OK, "status");
    mock_request rq;
    CHECK(mock_hub_last(h, "GET", "/cdn/", &rq) && strcmp(rq.range, "bytes=400-") == 0 &&
              rq.status == 200,
          "expected a Range answered by 200, got '%s' -> %d", rq.range, rq.status);
    CHECK(tu_same_file(snap("org/tiny", C_MAIN, "model.safetensors"), FIX("tiny/model.safetensors")),
          "file corrupted when the server ignored Range");
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_stall_times_out(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1", 1);
    mock_hub_stall(h, "model.safetensors", 200, 8000, 1);
    double t0 = tu_now();
    char *dir = NULL;
    ember_status st = resolve("org/tiny", &dir);
    double dt = tu_now() - t0;
    CHECK(st == EMBER_OK, "status %d", st);
    CHECK(dt < 5.0, "a stalled transfer took %.1f s", dt);
    mock_request rq;
    CHECK(mock_hub_last(h, "GET", "/cdn/", &rq) && strcmp(rq.range, "bytes=200-") == 0,
          "stalled transfer not resumed: '%s'", rq.range);
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_silent_hub_times_out(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    CHECK(resolve("org/tiny", &dir) == EMBER_OK, "download");
    ember_free(dir);
    dir = NULL;
    setenv("HF_HUB_ETAG_TIMEOUT", "1", 1);
    mock_hub_delay_head(h, 8000);
    double t0 = tu_now();
    ember_status st = resolve("org/tiny", &dir);
    double dt = tu_now() - t0;
    CHECK(st == EMBER_OK && dir && strstr(dir, C_MAIN), "cached model after a timeout: %d", st);
    CHECK(dt < 3.0, "a silent hub held the call %.1f s", dt);
    ember_free(dir);
    dir = NULL;
    t0 = tu_now();
    st = resolve("org/sharded", &dir);
    dt = tu_now() - t0;
    CHECK(st == EMBER_E_NETWORK && strstr(ember_last_error(), "org/sharded"),
          "uncached model: %d", st);
    CHECK(dt < 3.0, "a silent hub held the call %.1f s", dt);
    mock_hub_delay_head(h, 0);
    mock_hub_stop(h);
}

static void test_checksum_mismatch(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char sha[65], git[41];
    tu_sha256_file(FIX("tiny/model.safetensors"), sha);
    tu_git_sha1_file(FIX("tiny/tokenizer.json"), git);
    char *dir = NULL;

    mock_hub_corrupt(h, "model.safetensors");
    ember_status st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_E_NETWORK && strstr(ember_last_error(), "checksum"), "lfs: status %d", st);
    CHECK(!tu_exists(blob("org/tiny", sha, NULL)), "corrupt blob kept");
    CHECK(!tu_exists(blob("org/tiny", sha, ".incomplete")), "corrupt partial kept");
    CHECK(!tu_exists(snap("org/tiny", C_MAIN, "model.safetensors")), "corrupt file linked");

    mock_hub_corrupt(h, "tokenizer.json");
    setenv("HF_HUB_CACHE", tu_path("cache2"), 1);
    st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_E_NETWORK && strstr(ember_last_error(), "checksum"), "git: status %d", st);
    char p[1024];
    snprintf(p, sizeof p, "cache2/models--org--tiny/blobs/%s", git);
    CHECK(!tu_exists(tu_path(p)), "corrupt git blob kept");
    CHECK(!tu_exists(tu_path("cache2/models--org--tiny/snapshots/" C_MAIN "/tokenizer.json")),
          "corrupt tokenizer linked");

    mock_hub_corrupt(h, NULL);
    st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_OK, "after the fault: status %d", st);
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_offline(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    setenv("HF_HUB_OFFLINE", "1", 1);
    ember_status st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_E_NOT_FOUND, "offline, nothing cached: status %d", st);
    CHECK(strstr(ember_last_error(), "HF_HUB_OFFLINE"), "message does not name HF_HUB_OFFLINE");
    CHECK(mock_hub_total(h) == 0, "offline mode made %zu requests", mock_hub_total(h));

    unsetenv("HF_HUB_OFFLINE");
    CHECK(resolve("org/tiny", &dir) == EMBER_OK, "download");
    ember_free(dir);
    dir = NULL;
    mock_hub_clear_log(h);
    static const char *const truthy[] = {"1", "ON", "yes", "True"};
    for (size_t i = 0; i < 4; i++) {
        setenv("HF_HUB_OFFLINE", truthy[i], 1);
        st = resolve("org/tiny", &dir);
        CHECK(st == EMBER_OK && dir && strstr(dir, C_MAIN), "HF_HUB_OFFLINE=%s: %d", truthy[i], st);
        ember_free(dir);
        dir = NULL;
    }
    unsetenv("HF_HUB_OFFLINE");
    setenv("TRANSFORMERS_OFFLINE", "1", 1);
    CHECK(resolve("org/tiny", &dir) == EMBER_OK, "TRANSFORMERS_OFFLINE");
    ember_free(dir);
    dir = NULL;
    CHECK(mock_hub_total(h) == 0, "offline mode made %zu requests", mock_hub_total(h));
    /* HF_HUB_OFFLINE set (even to 0) decides before TRANSFORMERS_OFFLINE. */
    setenv("HF_HUB_OFFLINE", "0", 1);
    CHECK(resolve("org/tiny", &dir) == EMBER_OK, "online");
    CHECK(mock_hub_total(h) == 1, "HF_HUB_OFFLINE=0 did not go online");
    ember_free(dir);
    dir = NULL;
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("TRANSFORMERS_OFFLINE");

    /* An offline revision that was never fetched. */
    setenv("HF_HUB_OFFLINE", "1", 1);
    st = resolve("org/tiny@v1", &dir);
    CHECK(st == EMBER_E_NOT_FOUND && strstr(ember_last_error(), "main ->"),
          "message does not list what is cached: %d", st);
    unsetenv("HF_HUB_OFFLINE");

    /* allow_download = 0 uses the cache only. */
    mock_hub_clear_log(h);
    ember_model_params p = tu_params();
    p.allow_download = 0;
    CHECK(ember_resolve_model("org/tiny", &p, &dir) == EMBER_OK, "allow_download=0 cached");
    ember_free(dir);
    dir = NULL;
    st = ember_resolve_model("org/sharded", &p, &dir);
    CHECK(st == EMBER_E_NOT_FOUND && strstr(ember_last_error(), "allow_download"),
          "allow_download=0 uncached: %d", st);
    CHECK(mock_hub_total(h) == 0, "allow_download=0 made %zu requests", mock_hub_total(h));
    mock_hub_stop(h);
}

static void test_no_network(void) {
    tu_isolate_env(tu_dead_url());
    char *dir = NULL;
    ember_status st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_E_NETWORK, "status %d", st);
    CHECK(strstr(ember_last_error(), "HF_HUB_OFFLINE") && strstr(ember_last_error(), "local"),
          "message gives no way forward");
}

static void test_renamed_repo(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    ember_status st = resolve("old-org/tiny", &dir);
    CHECK(st == EMBER_OK, "status %d", st);
    CHECK(dir && strcmp(dir, snap("old-org/tiny", C_MAIN, NULL)) == 0, "dir %s", dir ? dir : "");
    mock_request rq;
    CHECK(mock_hub_last(h, "HEAD", "/old-org/tiny/resolve/main/config.json", &rq) &&
              rq.status == 307,
          "no redirect seen");
    CHECK(mock_hub_count(h, "HEAD", "/org/tiny/resolve/main/config.json") >= 1,
          "relative redirect not followed");
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_sharded(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    ember_status st = resolve("org/sharded", &dir);
    CHECK(st == EMBER_OK, "status %d", st);
    CHECK(tu_same_file(snap("org/sharded", C_SHARD, "model-00001-of-00002.safetensors"),
                       FIX("sharded/model-00001-of-00002.safetensors")) &&
              tu_same_file(snap("org/sharded", C_SHARD, "model-00002-of-00002.safetensors"),
                           FIX("sharded/model-00002-of-00002.safetensors")),
          "shards missing");
    CHECK(tu_exists(tu_path("home/hub/models--org--sharded/.no_exist/" C_SHARD
                            "/model.safetensors")),
          "absent model.safetensors not remembered");
    CHECK(mock_hub_count(h, "GET", "model-00002-of-00002") == 1, "a shard fetched twice");
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_pytorch_only(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    ember_status st = resolve("org/pytorch", &dir);
    CHECK(st == EMBER_E_NOT_FOUND, "status %d", st);
    CHECK(strstr(ember_last_error(), "pytorch_model.bin") && strstr(ember_last_error(), "safetensors"),
          "message does not say safetensors is needed");
    CHECK(mock_hub_count(h, "GET", "pytorch_model.bin") == 0, "pickle weights downloaded");
    CHECK(dir == NULL, "dir set on error");
    mock_hub_stop(h);
}

static void test_name_without_org(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    ember_status st = resolve("bert-tiny", &dir);
    CHECK(st == EMBER_OK, "status %d", st);
    CHECK(dir && strcmp(dir, snap("bert-tiny", C_MAIN, NULL)) == 0, "dir %s", dir ? dir : "");
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_cdn_on_other_host_gets_no_token(void) {
    mock_hub *h = start_hub();
    mock_hub *cdn = mock_hub_start(g_repos, N_REPOS, NULL, NULL);
    REQUIRE(h && cdn, "mock hubs did not start");
    mock_hub_set_cdn(h, mock_hub_url(cdn));
    setenv("HF_TOKEN", "hf_good", 1);
    char *dir = NULL;
    ember_status st = resolve("org/private", &dir);
    CHECK(st == EMBER_OK, "status %d", st);
    mock_request rq;
    CHECK(mock_hub_last(cdn, "GET", "/cdn/", &rq), "the CDN was not used");
    CHECK(rq.auth[0] == '\0', "the token leaked to another host: '%s'", rq.auth);
    CHECK(mock_hub_count(h, "GET", "/cdn/") == 0, "weights came from the hub itself");
    ember_free(dir);
    mock_hub_stop(cdn);
    mock_hub_stop(h);
}

/* "../../../tiny/resolve/main/config.json" from /org/old-name/resolve/main/:
 * resolved against the request's directory, not appended to the origin
 * (which made /tiny/resolve/..., a repo that does not exist). */
static void test_path_relative_redirect(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    ember_status st = resolve("org/old-name", &dir);
    CHECK(st == EMBER_OK, "status %d", st);
    mock_request rq;
    CHECK(mock_hub_last(h, "HEAD", "/org/old-name/resolve/main/config.json", &rq) &&
              rq.status == 307,
          "no redirect seen");
    CHECK(mock_hub_count(h, "HEAD", "/org/tiny/resolve/main/config.json") >= 1,
          "path-relative redirect not resolved against the request path");
    CHECK(mock_hub_count(h, "HEAD", "/tiny/resolve/") == mock_hub_count(h, "HEAD", "/org/tiny/"),
          "a request went to /tiny/... (Location appended to the origin)");
    ember_free(dir);
    mock_hub_stop(h);
}

/* An absolute-path Location ("/org/private/resolve/...") stays on the
 * endpoint's origin, so the token goes with the redirected HEAD. */
static void test_absolute_path_redirect_keeps_token(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    setenv("HF_TOKEN", "hf_good", 1);
    char *dir = NULL;
    ember_status st = resolve("old-org/private", &dir);
    CHECK(st == EMBER_OK, "status %d", st);
    mock_request rq;
    CHECK(mock_hub_last(h, "HEAD", "/org/private/resolve/main/config.json", &rq) &&
              strcmp(rq.auth, "Bearer hf_good") == 0 && rq.status == 200,
          "redirected HEAD without the token: '%s' %d", rq.auth, rq.status);
    ember_free(dir);
    mock_hub_stop(h);
}

/* A scheme-relative Location ("//127.0.0.1:PORT/cdn/...") names another
 * host: it is where the GET goes, without the token. It was taken for a
 * relative one and appended to the hub's origin. */
static void test_scheme_relative_cdn_is_another_origin(void) {
    mock_hub *h = start_hub();
    mock_hub *cdn = mock_hub_start(g_repos, N_REPOS, NULL, NULL);
    REQUIRE(h && cdn, "mock hubs did not start");
    mock_hub_set_cdn(h, mock_hub_url(cdn) + strlen("http:"));
    setenv("HF_TOKEN", "hf_good", 1);
    char *dir = NULL;
    ember_status st = resolve("org/private", &dir);
    CHECK(st == EMBER_OK, "status %d", st);
    mock_request rq;
    CHECK(mock_hub_last(cdn, "GET", "/cdn/", &rq), "the CDN was not used");
    CHECK(rq.auth[0] == '\0', "the token went to another host: '%s'", rq.auth);
    CHECK(mock_hub_count(h, NULL, "/cdn/") == 0 && mock_hub_count(h, NULL, "//") == 0,
          "the scheme-relative Location was joined to the hub's origin");
    CHECK(tu_same_file(snap("org/private", C_MAIN, "model.safetensors"),
                       FIX("tiny/model.safetensors")),
          "weights missing");
    ember_free(dir);
    mock_hub_stop(cdn);
    mock_hub_stop(h);
}

static bool copy_file(const char *from, const char *to) {
    size_t len;
    char *data = tu_read(from, &len);
    bool ok = data && tu_write(to, data, len);
    free(data);
    return ok;
}

/* A revision and shard names with '#', '%', '?', spaces and UTF-8: quoted on
 * the wire as huggingface_hub quotes them, stored under their real names. */
#define ODD_REV "feat#1%\xc3\xa9"
#define ODD_SHARD1 "model #1 ?%\xc3\xa9.safetensors"
#define ODD_SHARD2 "sub dir/#2?\xc3\xa9.safetensors"
static void test_quoted_names(void) {
    const char *repo_dir = tu_path("odd");
    REQUIRE(copy_file(FIX("sharded/config.json"), tu_path("odd/config.json")) &&
                copy_file(FIX("sharded/model-00001-of-00002.safetensors"),
                          tu_path("odd/" ODD_SHARD1)) &&
                copy_file(FIX("sharded/model-00002-of-00002.safetensors"),
                          tu_path("odd/" ODD_SHARD2)),
            "cannot lay out the repo");
    static const char index[] =
        "{\"metadata\": {\"total_size\": 272}, \"weight_map\": {"
        "\"a.weight\": \"" ODD_SHARD1 "\", \"b.weight\": \"" ODD_SHARD2 "\", "
        "\"c.weight\": \"" ODD_SHARD2 "\"}}";
    REQUIRE(tu_write(tu_path("odd/model.safetensors.index.json"), index, sizeof index - 1),
            "cannot write the index");
    mock_repo repos[] = {{"org/odd", {{ODD_REV, C_SHARD, repo_dir}}, MOCK_PUBLIC, NULL, 0}};
    mock_hub *h = mock_hub_start(repos, 1, NULL, NULL);
    REQUIRE(h, "mock hub did not start");
    tu_isolate_env(mock_hub_url(h));
    char *dir = NULL;
    ember_status st = resolve("org/odd@" ODD_REV, &dir);
    CHECK(st == EMBER_OK, "status %d", st);
    CHECK(mock_hub_count(h, "HEAD", "/org/odd/resolve/feat%231%25%C3%A9/config.json") == 1,
          "revision not quoted as one segment");
    CHECK(mock_hub_count(h, "HEAD", "/resolve/" C_SHARD "/model%20%231%20%3F%25%C3%A9.safetensors") ==
              1,
          "file name not quoted");
    CHECK(mock_hub_count(h, "GET", "/sub%20dir/%232%3F%C3%A9.safetensors") == 1,
          "CDN location of a quoted name not used as sent");
    CHECK(tu_same_file(snap("org/odd", C_SHARD, ODD_SHARD1),
                       FIX("sharded/model-00001-of-00002.safetensors")) &&
              tu_same_file(snap("org/odd", C_SHARD, ODD_SHARD2),
                           FIX("sharded/model-00002-of-00002.safetensors")),
          "shards not stored under their names");
    size_t len;
    char *ref = tu_read(tu_path("home/hub/models--org--odd/refs/" ODD_REV), &len);
    CHECK(ref && len == 40 && memcmp(ref, C_SHARD, 40) == 0, "refs/%s = '%s'", ODD_REV,
          ref ? ref : "");
    free(ref);
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_lost_blob_is_fetched_again(void) {
    mock_hub *h = start_hub();
    REQUIRE(h, "mock hub did not start");
    char *dir = NULL;
    CHECK(resolve("org/tiny", &dir) == EMBER_OK, "first");
    ember_free(dir);
    dir = NULL;
    char git[41];
    tu_git_sha1_file(FIX("tiny/config.json"), git);
    unlink(blob("org/tiny", git, NULL)); /* as `hf cache` pruning might */
    CHECK(resolve("org/tiny", &dir) == EMBER_OK, "second");
    CHECK(tu_same_file(snap("org/tiny", C_MAIN, "config.json"), FIX("tiny/config.json")),
          "lost blob not restored");
    ember_free(dir);
    mock_hub_stop(h);
}

int main(void) {
    RUN(test_first_download);
    RUN(test_second_run_asks_once_then_reuses_without_network);
    RUN(test_other_revision);
    RUN(test_commit_revision);
    RUN(test_branch_moves);
    RUN(test_not_found);
    RUN(test_auth);
    RUN(test_gated);
    RUN(test_cut_then_resume);
    RUN(test_server_ignores_range);
    RUN(test_stall_times_out);
    RUN(test_silent_hub_times_out);
    RUN(test_checksum_mismatch);
    RUN(test_offline);
    RUN(test_no_network);
    RUN(test_renamed_repo);
    RUN(test_sharded);
    RUN(test_pytorch_only);
    RUN(test_name_without_org);
    RUN(test_cdn_on_other_host_gets_no_token);
    RUN(test_lost_blob_is_fetched_again);
    RUN(test_path_relative_redirect);
    RUN(test_absolute_path_redirect_keeps_token);
    RUN(test_scheme_relative_cdn_is_another_origin);
    RUN(test_quoted_names);
    return tu_finish();
}
