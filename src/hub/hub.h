/*
 * hub.h — internal interface of the Hugging Face hub support behind
 * ember_resolve_model(): where the shared cache lives, how a model id is
 * validated, how the cache layout of huggingface_hub is read and written, how
 * files are fetched with libcurl and verified.
 *
 * The point of following huggingface_hub exactly (its file_download.py,
 * constants.py, utils/_auth.py and utils/_validators.py were the reference)
 * is that one cache serves every tool: a model that Python downloaded is
 * reused by Ember, and one that Ember downloaded is reused by Python.
 *
 *   $HF_HUB_CACHE/models--{org}--{name}/
 *       refs/{revision}                  commit hash the revision pointed to
 *       blobs/{etag}                     file contents (git sha1 or LFS sha256)
 *       blobs/{etag}.incomplete          partial download, resumed with Range
 *       snapshots/{commit}/{path}        relative symlink to ../../blobs/{etag}
 *       .no_exist/{commit}/{path}        empty: the hub said 404 for this file
 *   $HF_HUB_CACHE/.locks/models--{org}--{name}/{etag}.lock
 *
 * Files in src/hub/: env.c (environment, ids, paths), cache.c (the layout above),
 * http.c (HEAD metadata and verified downloads), sha.c (SHA-1 and
 * SHA-256), hub.c (ember_resolve_model: which files a model needs).
 */
#ifndef EMBER_HUB_HUB_H
#define EMBER_HUB_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* ---- environment (env.c) ------------------------------------------ */

/* Everything resolution needs from the environment, read at each call (not
 * once per process) so that a long-running program or a test can change it. */
typedef struct ember_hub_env {
    char *hf_home;            /* HF_HOME, default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface */
    char *cache_dir;          /* HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub */
    char *endpoint;           /* HF_ENDPOINT without trailing '/', default https://huggingface.co */
    char *token;              /* HF_TOKEN, HUGGING_FACE_HUB_TOKEN or the token file; NULL if none */
    const char *token_source; /* "HF_TOKEN", ... or the token file path, for messages */
    bool offline;             /* HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is true */
    const char *offline_var;  /* which of the two said so */
    long etag_timeout_s;      /* HF_HUB_ETAG_TIMEOUT, default 10: connect and HEAD */
    long download_timeout_s;  /* HF_HUB_DOWNLOAD_TIMEOUT, default 10: connect and stall */
    char *user_agent;
} ember_hub_env;

/* Fills *env. EMBER_E_NOMEM, EMBER_E_INVALID_ARGUMENT (a malformed HF_ENDPOINT),
 * EMBER_E_AUTH (a token with characters that cannot go in a header). */
ember_status ember_hub_env_load(ember_hub_env *env);
void ember_hub_env_free(ember_hub_env *env);

/* huggingface_hub's truth test for environment flags: 1, ON, YES, TRUE in any case. */
bool ember_hub_env_true(const char *value);

/* ---- ids, revisions, repository paths (env.c) ---------------------- */

/* True for a full commit id: 40 lowercase hex digits. */
bool ember_hub_is_commit(const char *s);

/* Splits "org/name[@revision]" into a validated repo id and revision
 * (`default_revision`, else "main", when the spec has no '@'). Both outputs
 * are allocated. EMBER_E_INVALID_ARGUMENT with the reason, or EMBER_E_NOMEM. */
ember_status ember_hub_parse_spec(const char *spec, const char *default_revision,
                                  char **repo_id, char **revision);

/* Validators used by the parser, and for names that come from the network
 * or from files (shard names, module paths), before they become paths. */
ember_status ember_hub_check_repo_id(const char *id);
ember_status ember_hub_check_revision(const char *rev);
/* A file path inside a repository: relative, '/'-separated, no "." or ".."
 * component, no empty component, no control character. `what` names its
 * origin in the message. EMBER_E_FORMAT. */
ember_status ember_hub_check_repo_path(const char *path, const char *what);

/* ---- paths (env.c) -------------------------------------------------- */

/* `path` made absolute against the working directory, symlinks untouched. */
char *ember_hub_abspath(const char *path);
/* mkdir -p. EMBER_E_IO naming the directory. */
ember_status ember_hub_mkdirs(const char *path);
/* Allocating sprintf (NULL and EMBER_E_NOMEM recorded on failure). */
char *ember_hub_strf(const char *fmt, ...) EMBER_PRINTF(1, 2);

/* ---- the cache layout (cache.c) ------------------------------------- */

/* $cache/models--org--name for "org/name". */
char *ember_hub_storage_dir(const char *cache_dir, const char *repo_id);

/* Reads refs/{revision}. EMBER_OK with a 40-hex `commit`, EMBER_E_NOT_FOUND
 * (absent; nothing recorded) or EMBER_E_FORMAT (not a commit hash). */
ember_status ember_hub_read_ref(const char *storage, const char *revision, char commit[41]);
/* Writes refs/{revision} atomically when it differs (as huggingface_hub, so a
 * read-only cache that is already right is not an error). */
ember_status ember_hub_write_ref(const char *storage, const char *revision, const char *commit);

/* The cached file snapshots/{commit}/{path}. EMBER_OK with *out (allocated,
 * may be NULL) when it is there and resolves to a regular file inside
 * `cache_dir`; EMBER_E_NOT_FOUND (absent or a dangling link; nothing
 * recorded); EMBER_E_FORMAT when it resolves outside the cache or to
 * something that is not a file. */
ember_status ember_hub_snapshot_file(const char *cache_dir, const char *storage,
                                     const char *commit, const char *path, char **out);

/* .no_exist/{commit}/{path}: the hub answered 404 for that file at that commit. */
bool ember_hub_no_exist(const char *storage, const char *commit, const char *path);
void ember_hub_mark_no_exist(const char *storage, const char *commit, const char *path);

/* Points snapshots/{commit}/{path} at blobs/{etag} with a relative symlink
 * (copies the blob where symlinks are not supported), atomically. */
ember_status ember_hub_link_blob(const char *storage, const char *commit, const char *path,
                                 const char *etag);

/* Takes the lock huggingface_hub takes for a blob
 * ($cache/.locks/models--org--name/{etag}.lock, flock), waiting for another
 * process that downloads the same blob. Returns the descriptor to pass to
 * ember_hub_unlock, or -1 with an error recorded. */
int ember_hub_lock(const char *cache_dir, const char *storage, const char *etag);
void ember_hub_unlock(int fd);

/* ---- hashes (sha.c) ------------------------------------------------- */

typedef struct ember_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
} ember_sha256;

typedef struct ember_sha1 {
    uint32_t h[5];
    uint64_t len;
    uint8_t buf[64];
} ember_sha1;

void ember_sha256_init(ember_sha256 *s);
void ember_sha256_update(ember_sha256 *s, const void *data, size_t n);
void ember_sha256_final(ember_sha256 *s, uint8_t out[32]);
void ember_sha1_init(ember_sha1 *s);
void ember_sha1_update(ember_sha1 *s, const void *data, size_t n);
void ember_sha1_final(ember_sha1 *s, uint8_t out[20]);
/* Lowercase hex of `n` bytes into `out` (2n+1 chars). */
void ember_hub_hex(const uint8_t *bytes, size_t n, char *out);

/* What a blob's ETag promises about its content: a 64-hex etag is the
 * SHA-256 of an LFS file, a 40-hex one the git blob id (SHA-1 of
 * "blob <size>\0" + content) of a regular file. */
typedef struct ember_hub_digest {
    int kind; /* 0: nothing to check, 1: sha256, 2: git blob sha1 */
    ember_sha256 sha256;
    ember_sha1 sha1;
} ember_hub_digest;

void ember_hub_digest_init(ember_hub_digest *d, const char *etag, int64_t size);
void ember_hub_digest_update(ember_hub_digest *d, const void *data, size_t n);
/* Finishes and compares with the etag. EMBER_OK, or EMBER_E_NETWORK naming
 * `file`, the expected and the actual digest. */
ember_status ember_hub_digest_check(ember_hub_digest *d, const char *etag, const char *file);

/* ---- model snapshots (hub.c) ----------------------------------------------- */

/* Checks that snapshots/{commit} has what Ember needs: config.json and
 * safetensors weights (all shards), and that every file present resolves
 * inside the cache. EMBER_OK,
 * EMBER_E_NOT_FOUND with a message naming what is missing, EMBER_E_FORMAT. */
ember_status ember_hub_check_snapshot(const char *cache_dir, const char *storage,
                                      const char *commit);

/* A one-line summary of what the cache holds for a repository ("refs: main ->
 * 0123abc; snapshots: 0123abc (complete)"), or "nothing". Allocated. */
char *ember_hub_describe_cache(const char *cache_dir, const char *storage);

/* ---- HTTP (http.c) --------------------------------------------------- */

/* How the hub answered a HEAD on /{repo}/resolve/{revision}/{path}. */
typedef enum ember_hub_answer {
    EMBER_HUB_FOUND = 0,          /* metadata complete: commit, etag, size, url */
    EMBER_HUB_ENTRY_NOT_FOUND,    /* 404 EntryNotFound (or a plain 404)        */
    EMBER_HUB_REVISION_NOT_FOUND, /* 404 RevisionNotFound                       */
    EMBER_HUB_REPO_NOT_FOUND,     /* 404 RepoNotFound                           */
    EMBER_HUB_AUTH,               /* 401 or 403 (private, gated, bad token)     */
    EMBER_HUB_SERVER,             /* 5xx, 429, other unexpected statuses        */
    EMBER_HUB_BAD_METADATA,       /* 2xx/3xx without X-Repo-Commit, ETag or size:
                                     not the hub (proxy, captive portal)        */
    EMBER_HUB_UNREACHABLE         /* no HTTP answer: DNS, connect, timeout, TLS */
} ember_hub_answer;

typedef struct ember_hub_meta {
    ember_hub_answer answer;
    long status;            /* last HTTP status, 0 when unreachable            */
    char commit[41];        /* X-Repo-Commit (also on 404 EntryNotFound)       */
    char etag[130];         /* X-Linked-Etag or ETag, quotes and W/ removed    */
    int64_t size;           /* X-Linked-Size or Content-Length, -1 unknown     */
    char *url;              /* where to GET the content (CDN after an LFS redirect) */
    char error_code[64];    /* X-Error-Code, e.g. "GatedRepo"                  */
    char error_message[256];/* X-Error-Message, or curl's error text           */
} ember_hub_meta;

void ember_hub_meta_free(ember_hub_meta *m);

typedef struct ember_hub_http ember_hub_http;

ember_status ember_hub_http_new(const ember_hub_env *env, ember_hub_http **out);
void ember_hub_http_free(ember_hub_http *h);

/* {endpoint}/{repo}/resolve/{revision}/{path} with the revision quoted as
 * one segment and each segment of the path quoted as urllib.parse.quote
 * does (libcurl's URL API; *out allocated). EMBER_E_NOMEM, or
 * EMBER_E_INVALID_ARGUMENT for an endpoint that is not a URL. */
ember_status ember_hub_resolve_url(const char *endpoint, const char *repo_id,
                                   const char *revision, const char *path, char **out);

/* HEAD of one file, following relative redirects only (a Location without a
 * host: renamed repos) and stopping at one that names a host, even the same
 * one or as "//host/..." (the CDN), as huggingface_hub does; libcurl
 * resolves the Location against the request URL. Returns EMBER_OK whenever
 * meta->answer was filled (even for 404 or unreachable); errors are only
 * EMBER_E_NOMEM (and EMBER_E_INVALID_ARGUMENT for an unusable endpoint). */
ember_status ember_hub_head(ember_hub_http *h, const char *repo_id, const char *revision,
                            const char *path, ember_hub_meta *meta);

/* Downloads the blob described by `meta` into storage/blobs/{etag} (through
 * {etag}.incomplete, resumed with Range, size- and digest-checked, renamed
 * into place) and links snapshots/{commit}/{path} to it. `path` names the
 * file for progress and messages. */
typedef void (*ember_hub_progress_fn)(const char *file, int64_t done, int64_t total, void *user);
ember_status ember_hub_fetch(ember_hub_http *h, const char *cache_dir, const char *storage,
                             const char *commit, const char *path, const ember_hub_meta *meta,
                             ember_hub_progress_fn progress, void *progress_user);

#endif
