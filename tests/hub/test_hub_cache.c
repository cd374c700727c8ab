/*
 * test_hub_cache.c — reading caches Ember did not write: one laid out by hand
 * exactly as huggingface_hub lays it out (refs/main, snapshots/<commit>/
 * symlinks to ../../blobs/<etag>), read with no network at all; and hostile
 * or broken ones: malformed refs, links out of the cache, link loops, shard
 * and module paths that climb out, specs that are not model ids. Also local
 * directories, which are returned as they are.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub_testutil.h"
#include "mock_hub.h"

#define COMMIT "2439f60ef33a0d46d85da5001d52aeda5b00ce9f"
#define FIX(x) EMBER_HUB_FIXTURES "/" x

static const char *const k_tiny_files[] = {
    "config.json",           "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "modules.json",    "1_Pooling/config.json",
    "sentence_bert_config.json"};
#define N_TINY (sizeof k_tiny_files / sizeof k_tiny_files[0])

/* Puts `fixture` into the cache as huggingface_hub would: the content in
 * blobs/<etag>, a relative link from snapshots/<commit>/<name>. With
 * `copy`, a plain file instead of a link (symlink-less filesystems). */
static bool put_file(const char *repo, const char *commit, const char *name, const char *fixture,
                     bool copy) {
    char etag[65];
    size_t n = strlen(name);
    bool lfs = n > 12 && strcmp(name + n - 12, ".safetensors") == 0;
    if (!(lfs ? tu_sha256_file(fixture, etag) : tu_git_sha1_file(fixture, etag)))
        return false;
    size_t len;
    char *data = tu_read(fixture, &len);
    char blob[1024], ptr[1024], target[1024] = "";
    snprintf(blob, sizeof blob, "%s/blobs/%s", tu_storage(repo), etag);
    snprintf(ptr, sizeof ptr, "%s/snapshots/%s/%s", tu_storage(repo), commit, name);
    bool ok = data && tu_write(blob, data, len);
    if (copy) {
        ok = ok && tu_write(ptr, data, len);
    } else {
        for (const char *c = name; *c; c++)
            if (*c == '/')
                strcat(target, "../");
        strcat(target, "../../blobs/");
        strcat(target, etag);
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", ptr);
        *strrchr(dir, '/') = '\0';
        ok = ok && tu_mkdirs(dir) && symlink(target, ptr) == 0;
    }
    free(data);
    return ok;
}

static bool put_ref(const char *repo, const char *rev, const char *content) {
    char p[1024];
    snprintf(p, sizeof p, "%s/refs/%s", tu_storage(repo), rev);
    return tu_write(p, content, strlen(content));
}

/* org/tiny at COMMIT, refs/main -> COMMIT, as `hf download` leaves it. */
static bool python_cache(const char *repo, bool copy) {
    for (size_t i = 0; i < N_TINY; i++) {
        char fixture[1024];
        snprintf(fixture, sizeof fixture, "%s/%s", FIX("tiny"), k_tiny_files[i]);
        if (!put_file(repo, COMMIT, k_tiny_files[i], fixture, copy))
            return false;
    }
    return put_ref(repo, "main", COMMIT);
}

static ember_status resolve(const char *spec, char **dir) {
    ember_model_params p = tu_params();
    *dir = NULL;
    return ember_resolve_model(spec, &p, dir);
}

static const char *snapshot(const char *repo) {
    static char b[1024];
    snprintf(b, sizeof b, "%s/snapshots/%s", tu_storage(repo), COMMIT);
    return b;
}

/* ---- a cache written by huggingface_hub ---------------------------------------- */

static void test_python_cache_without_network(void) {
    REQUIRE(python_cache("org/tiny", false), "cannot build the cache");
    char *dir;
    /* The hub cannot be reached: the cached ref is used. */
    tu_isolate_env(tu_dead_url());
    ember_status st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_OK && dir && strcmp(dir, snapshot("org/tiny")) == 0, "unreachable: %d %s",
          st, dir ? dir : "");
    ember_free(dir);
    /* Offline: not even a connection attempt. */
    setenv("HF_HUB_OFFLINE", "1", 1);
    st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_OK && dir && strcmp(dir, snapshot("org/tiny")) == 0, "offline: %d", st);
    ember_free(dir);
    st = resolve("org/tiny@" COMMIT, &dir);
    CHECK(st == EMBER_OK && dir && strcmp(dir, snapshot("org/tiny")) == 0, "commit: %d", st);
    ember_free(dir);
    /* The legacy variable for the cache location. */
    char cache[1024];
    snprintf(cache, sizeof cache, "%s", tu_path("home/hub"));
    unsetenv("HF_HOME");
    setenv("HUGGINGFACE_HUB_CACHE", cache, 1);
    st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_OK, "HUGGINGFACE_HUB_CACHE: %d", st);
    ember_free(dir);
    /* Nothing may have been written into a cache that was only read. */
    CHECK(!tu_exists(tu_path("home/hub/.locks")), "a read wrote locks");
    CHECK(!tu_exists(tu_path("home/hub/models--org--tiny/.no_exist")), "a read wrote .no_exist");
}

static void test_python_cache_is_reused_online(void) {
    REQUIRE(python_cache("org/tiny", false), "cannot build the cache");
    static const mock_repo repos[] = {
        {"org/tiny", {{"main", COMMIT, FIX("tiny")}}, MOCK_PUBLIC, NULL, 0}};
    mock_hub *h = mock_hub_start(repos, 1, NULL, NULL);
    REQUIRE(h, "mock hub did not start");
    tu_isolate_env(mock_hub_url(h));
    char *dir;
    ember_status st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_OK && dir && strcmp(dir, snapshot("org/tiny")) == 0, "%d", st);
    /* Only the metadata: a HEAD for config.json and one for the optional file
     * Python never fetched; no GET at all. */
    CHECK(mock_hub_count(h, "GET", NULL) == 0, "%zu downloads of cached files",
          mock_hub_count(h, "GET", NULL));
    CHECK(mock_hub_count(h, "HEAD", "config_sentence_transformers.json") == 1,
          "unknown optional file not asked");
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_cache_without_symlinks(void) {
    REQUIRE(python_cache("org/tiny", true), "cannot build the cache");
    setenv("HF_HUB_OFFLINE", "1", 1);
    char *dir;
    ember_status st = resolve("org/tiny", &dir);
    CHECK(st == EMBER_OK, "plain files in the snapshot: %d", st);
    ember_free(dir);
}

static void test_ref_with_newline(void) {
    REQUIRE(python_cache("org/tiny", false), "cannot build the cache");
    put_ref("org/tiny", "main", COMMIT "\n");
    setenv("HF_HUB_OFFLINE", "1", 1);
    char *dir;
    CHECK(resolve("org/tiny", &dir) == EMBER_OK, "a trailing newline in a ref");
    ember_free(dir);
}

static void test_incomplete_snapshots(void) {
    REQUIRE(put_file("org/a", COMMIT, "config.json", FIX("tiny/config.json"), false) &&
                put_ref("org/a", "main", COMMIT),
            "cannot build the cache");
    setenv("HF_HUB_OFFLINE", "1", 1);
    char *dir;
    ember_status st = resolve("org/a", &dir);
    CHECK(st == EMBER_E_NOT_FOUND && dir == NULL, "config only: %d", st);
    CHECK(strstr(ember_last_error(), "no model.safetensors") &&
              strstr(ember_last_error(), "incomplete"),
          "message does not say what is missing");

    put_file("org/b", COMMIT, "config.json", FIX("sharded/config.json"), false);
    put_file("org/b", COMMIT, "model.safetensors.index.json",
             FIX("sharded/model.safetensors.index.json"), false);
    put_file("org/b", COMMIT, "model-00001-of-00002.safetensors",
             FIX("sharded/model-00001-of-00002.safetensors"), false);
    put_ref("org/b", "main", COMMIT);
    st = resolve("org/b", &dir);
    CHECK(st == EMBER_E_NOT_FOUND && strstr(ember_last_error(), "model-00002-of-00002"),
          "missing shard: %d", st);
    put_file("org/b", COMMIT, "model-00002-of-00002.safetensors",
             FIX("sharded/model-00002-of-00002.safetensors"), false);
    st = resolve("org/b", &dir);
    CHECK(st == EMBER_OK, "all shards: %d", st);
    ember_free(dir);

    put_file("org/c", COMMIT, "config.json", FIX("pytorch/config.json"), false);
    put_file("org/c", COMMIT, "pytorch_model.bin", FIX("pytorch/pytorch_model.bin"), true);
    put_ref("org/c", "main", COMMIT);
    st = resolve("org/c", &dir);
    CHECK(st == EMBER_E_NOT_FOUND && strstr(ember_last_error(), "pytorch_model.bin"),
          "pickle only: %d", st);

    /* A blob pruned from under its link. */
    REQUIRE(python_cache("org/d", false), "cannot build the cache");
    char sha[65], blob[1024];
    tu_sha256_file(FIX("tiny/model.safetensors"), sha);
    snprintf(blob, sizeof blob, "%s/blobs/%s", tu_storage("org/d"), sha);
    unlink(blob);
    st = resolve("org/d", &dir);
    CHECK(st == EMBER_E_NOT_FOUND, "dangling weights link: %d", st);
}

/* ---- hostile and broken caches --------------------------------------------------- */

static void test_malformed_refs(void) {
    REQUIRE(python_cache("org/tiny", false), "cannot build the cache");
    setenv("HF_HUB_OFFLINE", "1", 1);
    const char *bad[] = {"not-a-commit", "", "2439F60EF33A0D46D85DA5001D52AEDA5B00CE9F",
                         COMMIT COMMIT, "../../../../etc/passwd", COMMIT "\nextra"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_ref("org/tiny", "main", bad[i]);
        char *dir;
        ember_status st = resolve("org/tiny", &dir);
        CHECK(st == EMBER_E_FORMAT && dir == NULL, "ref '%s': %d", bad[i], st);
        CHECK(strstr(ember_last_error(), "refs/main") && strstr(ember_last_error(), "commit"),
              "ref '%s': unclear message", bad[i]);
    }
    /* The hub can fix a bad ref when it is reachable: it says which commit. */
    static const mock_repo repos[] = {
        {"org/tiny", {{"main", COMMIT, FIX("tiny")}}, MOCK_PUBLIC, NULL, 0}};
    mock_hub *h = mock_hub_start(repos, 1, NULL, NULL);
    REQUIRE(h, "mock hub did not start");
    tu_isolate_env(mock_hub_url(h));
    char *dir;
    CHECK(resolve("org/tiny", &dir) == EMBER_OK, "online with a bad ref");
    char *ref = tu_read(tu_path("home/hub/models--org--tiny/refs/main"), NULL);
    CHECK(ref && strcmp(ref, COMMIT) == 0, "ref not repaired: %s", ref ? ref : "");
    free(ref);
    ember_free(dir);
    mock_hub_stop(h);
}

static void test_links_out_of_the_cache(void) {
    setenv("HF_HUB_OFFLINE", "1", 1);
    tu_write(tu_path("outside/secret.json"), "{}", 2);
    char secret[1024];
    snprintf(secret, sizeof secret, "%s", tu_path("outside/secret.json"));
    const char *targets[] = {secret, "/etc/passwd",
                             "../../../../../../../../../../etc/passwd",
                             "../../../../../outside/secret.json"};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char repo[32];
        snprintf(repo, sizeof repo, "org/evil%zu", i);
        REQUIRE(python_cache(repo, false), "cannot build the cache");
        char ptr[1024];
        snprintf(ptr, sizeof ptr, "%s/snapshots/%s/config.json", tu_storage(repo), COMMIT);
        unlink(ptr);
        REQUIRE(symlink(targets[i], ptr) == 0, "symlink");
        char *dir;
        ember_status st = resolve(repo, &dir);
        CHECK(st == EMBER_E_FORMAT && dir == NULL, "link to %s: %d", targets[i], st);
        CHECK(strstr(ember_last_error(), "outside"), "link to %s: unclear message", targets[i]);
    }
    /* An optional file pointing out is refused too: the loader would read it. */
    REQUIRE(python_cache("org/evil-tok", false), "cannot build the cache");
    char ptr[1024];
    snprintf(ptr, sizeof ptr, "%s/snapshots/%s/vocab.txt", tu_storage("org/evil-tok"), COMMIT);
    REQUIRE(symlink("/etc/passwd", ptr) == 0, "symlink");
    char *dir;
    CHECK(resolve("org/evil-tok", &dir) == EMBER_E_FORMAT, "optional file out of the cache");

    REQUIRE(python_cache("org/loop", false), "cannot build the cache");
    snprintf(ptr, sizeof ptr, "%s/snapshots/%s/model.safetensors", tu_storage("org/loop"), COMMIT);
    unlink(ptr);
    REQUIRE(symlink("model.safetensors", ptr) == 0, "symlink");
    ember_status st = resolve("org/loop", &dir);
    CHECK(st == EMBER_E_FORMAT && strstr(ember_last_error(), "loop"), "link loop: %d", st);

    /* A directory where a file should be. */
    REQUIRE(python_cache("org/dir", false), "cannot build the cache");
    snprintf(ptr, sizeof ptr, "%s/snapshots/%s/model.safetensors", tu_storage("org/dir"), COMMIT);
    unlink(ptr);
    tu_mkdirs(ptr);
    CHECK(resolve("org/dir", &dir) == EMBER_E_FORMAT, "a directory as weights");
}

static void test_hostile_index_and_modules(void) {
    setenv("HF_HUB_OFFLINE", "1", 1);
    const char *index = "{\"weight_map\": {\"a\": \"../../../../../../etc/passwd\"}}";
    tu_write(tu_path("evil/model.safetensors.index.json"), index, strlen(index));
    put_file("org/idx", COMMIT, "config.json", FIX("tiny/config.json"), false);
    put_file("org/idx", COMMIT, "model.safetensors.index.json",
             tu_path("evil/model.safetensors.index.json"), false);
    put_ref("org/idx", "main", COMMIT);
    char *dir;
    ember_status st = resolve("org/idx", &dir);
    CHECK(st == EMBER_E_FORMAT && strstr(ember_last_error(), "model.safetensors.index.json"),
          "shard path out of the repo: %d", st);

    const char *modules = "[{\"idx\": 1, \"name\": \"1\", \"path\": \"../../../../x\", "
                          "\"type\": \"sentence_transformers.models.Pooling\"}]";
    tu_write(tu_path("evil/modules.json"), modules, strlen(modules));
    REQUIRE(python_cache("org/mod", false), "cannot build the cache");
    char ptr[1024];
    snprintf(ptr, sizeof ptr, "%s/snapshots/%s/modules.json", tu_storage("org/mod"), COMMIT);
    unlink(ptr);
    put_file("org/mod", COMMIT, "modules.json", tu_path("evil/modules.json"), false);
    st = resolve("org/mod", &dir);
    CHECK(st == EMBER_E_FORMAT && strstr(ember_last_error(), "modules.json"),
          "module path out of the repo: %d", st);

    /* Online, the same index must not turn into a request or a path. */
    unsetenv("HF_HUB_OFFLINE");
    tu_write(tu_path("evil-repo/config.json"), "{}", 2);
    tu_write(tu_path("evil-repo/model.safetensors.index.json"), index, strlen(index));
    char repo_dir[1024];
    snprintf(repo_dir, sizeof repo_dir, "%s", tu_path("evil-repo"));
    mock_repo repos[] = {{"org/evil", {{"main", COMMIT, repo_dir}}, MOCK_PUBLIC, NULL, 0}};
    mock_hub *h = mock_hub_start(repos, 1, NULL, NULL);
    REQUIRE(h, "mock hub did not start");
    tu_isolate_env(mock_hub_url(h));
    st = resolve("org/evil", &dir);
    CHECK(st == EMBER_E_FORMAT, "online hostile index: %d", st);
    CHECK(mock_hub_count(h, NULL, "passwd") == 0 && mock_hub_count(h, NULL, "..") == 0,
          "a climbing path reached the network");
    mock_hub_stop(h);
}

static void test_bad_specs(void) {
    /* Run from a directory where "../../etc" does not exist. */
    tu_mkdirs(tu_path("a/b/c/d"));
    REQUIRE(chdir(tu_path("a/b/c/d")) == 0, "chdir");
    setenv("HF_HUB_OFFLINE", "1", 1);
    const char *bad[] = {"../../etc", "org/name/extra", "org/name@../../x", "org/..",
                         "../../../../../../../../../../../no-such-dir", "org--a/b",
                         "/definitely/not/here", "org/name@"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *dir = (char *)"sentinel";
        ember_model_params p = tu_params();
        ember_status st = ember_resolve_model(bad[i], &p, &dir);
        CHECK((st == EMBER_E_INVALID_ARGUMENT || st == EMBER_E_NOT_FOUND) && dir == NULL,
              "'%s': %d", bad[i], st);
        CHECK(strstr(ember_last_error(), bad[i][0] == '/' ? "no such directory" : "not"),
              "'%s': unclear message '%s'", bad[i], ember_last_error());
    }
    ember_model_params p = tu_params();
    char *dir = NULL;
    CHECK(ember_resolve_model("org/name/extra", &p, &dir) == EMBER_E_INVALID_ARGUMENT &&
              strstr(ember_last_error(), "more than one '/'"),
          "org/name/extra: %s", ember_last_error());
    CHECK(ember_resolve_model("org/name@../../x", &p, &dir) == EMBER_E_INVALID_ARGUMENT &&
              strstr(ember_last_error(), "revision"),
          "bad revision: %s", ember_last_error());
    CHECK(!tu_exists(tu_path("home/hub")), "an invalid spec touched the cache");
    CHECK(ember_resolve_model(NULL, &p, &dir) == EMBER_E_INVALID_ARGUMENT, "NULL spec");
    CHECK(ember_resolve_model("org/name", &p, NULL) == EMBER_E_INVALID_ARGUMENT, "NULL out");
}

static void test_local_directory(void) {
    tu_mkdirs(tu_path("models/mine"));
    tu_write(tu_path("models/mine/config.json"), "{}", 2);
    REQUIRE(chdir(tu_path("models")) == 0, "chdir");
    setenv("HF_ENDPOINT", tu_dead_url(), 1);
    char *dir = NULL;
    ember_status st = ember_resolve_model("mine", NULL, &dir);
    CHECK(st == EMBER_OK && dir && strcmp(dir, tu_path("models/mine")) == 0,
          "relative dir: %d %s", st, dir ? dir : "");
    ember_free(dir);
    st = ember_resolve_model("./mine", NULL, &dir);
    CHECK(st == EMBER_OK && dir && strcmp(dir, tu_path("models/mine")) == 0, "./dir: %s",
          dir ? dir : "");
    ember_free(dir);
    st = ember_resolve_model(tu_path("models/mine"), NULL, &dir);
    CHECK(st == EMBER_OK && dir && strcmp(dir, tu_path("models/mine")) == 0, "absolute dir");
    ember_free(dir);
    st = ember_resolve_model("mine/config.json", NULL, &dir);
    CHECK(st == EMBER_E_INVALID_ARGUMENT && dir == NULL && strstr(ember_last_error(), "directory"),
          "a file as model: %d", st);
    /* A parameter struct from an older caller (only the first fields). */
    ember_model_params p = tu_params();
    p.struct_size = 8;
    st = ember_resolve_model("mine", &p, &dir);
    CHECK(st == EMBER_OK, "short params struct: %d", st);
    ember_free(dir);
}

int main(void) {
    RUN(test_python_cache_without_network);
    RUN(test_python_cache_is_reused_online);
    RUN(test_cache_without_symlinks);
    RUN(test_ref_with_newline);
    RUN(test_incomplete_snapshots);
    RUN(test_malformed_refs);
    RUN(test_links_out_of_the_cache);
    RUN(test_hostile_index_and_modules);
    RUN(test_bad_specs);
    RUN(test_local_directory);
    return tu_finish();
}
