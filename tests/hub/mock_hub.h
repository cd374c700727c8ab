/*
 * mock_hub.h — a Hugging Face hub on loopback for the hub tests, built on
 * libmicrohttpd. It serves fixture directories under the real endpoint paths
 * and headers, so Ember's client is tested against what huggingface.co says
 * without touching the internet:
 *
 * Paths arrive quoted (the log keeps them as sent, %XX escapes uppercased)
 * and are decoded here.
 *
 *   HEAD/GET /{repo}/resolve/{revision}/{path}
 *     regular file: 200, ETag "<git blob sha1>", X-Repo-Commit, Content-Length
 *     LFS file (*.safetensors, *.bin): 302 to {cdn}/cdn/{sha256}/{commit}/{path}, with
 *       X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit
 *     unknown repo 404 RepoNotFound; unknown revision 404 RevisionNotFound;
 *     unknown file 404 EntryNotFound with X-Repo-Commit; private repo without
 *     the token 401 RepoNotFound; gated repo 401 (no token) or 403 (token
 *     without access) GatedRepo; renamed repo 307 to its new path.
 *   Where the CDN lives is settable, also as a scheme-relative "//host:port".
 *   GET /cdn/{sha256}/{commit}/{path}   the LFS content, with Range support
 *     (the URL names the content, so a second instance can act as the CDN).
 *
 * Faults can be injected per file name: cut the connection after N bytes,
 * stall, corrupt one byte, ignore Range. Every request is logged.
 */
#ifndef EMBER_TESTS_MOCK_HUB_H
#define EMBER_TESTS_MOCK_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { MOCK_PUBLIC = 0, MOCK_PRIVATE = 1, MOCK_GATED = 2 };

/* The Location a renamed repo answers with: "/{new}/resolve/..." or the
 * path-relative "../../{new}/resolve/..." (relative to the request's path). */
enum { MOCK_REDIRECT_ABSOLUTE_PATH = 0, MOCK_REDIRECT_PATH_RELATIVE = 1 };

typedef struct mock_rev {
    const char *name;   /* branch or tag, e.g. "main"                         */
    const char *commit; /* 40 hex                                             */
    const char *dir;    /* directory whose files the revision holds           */
} mock_rev;

typedef struct mock_repo {
    const char *id;         /* "org/name" or "name"                           */
    mock_rev revs[4];       /* ends at the first with name == NULL            */
    int access;             /* MOCK_PUBLIC, MOCK_PRIVATE, MOCK_GATED          */
    const char *renamed_to; /* if set: every request redirects to this id     */
    int redirect;           /* MOCK_REDIRECT_*: how the Location is written   */
} mock_repo;

typedef struct mock_request {
    char method[8];
    char url[512];
    char range[64];
    char auth[160];
    char user_agent[160];
    char accept_encoding[64];
    int status;
} mock_request;

typedef struct mock_hub mock_hub;

/* Starts a hub on 127.0.0.1 (a free port) serving `repos` (kept by
 * reference). `token` opens private and gated repos, `weak_token` is a valid
 * token without access to gated ones. NULL on failure. */
mock_hub *mock_hub_start(const mock_repo *repos, size_t n_repos, const char *token,
                         const char *weak_token);
void mock_hub_stop(mock_hub *h);
/* "http://127.0.0.1:PORT", owned by the hub. */
const char *mock_hub_url(const mock_hub *h);
/* Where LFS redirects point (default: this hub's own URL). Copied. */
void mock_hub_set_cdn(mock_hub *h, const char *base_url);

/* Faults, matched by the file's name in the repo (e.g. "model.safetensors"):
 * the next `times` GETs of it are cut after `after` body bytes, or stall
 * `stall_ms` after `after` bytes and then break. */
void mock_hub_cut(mock_hub *h, const char *file, int64_t after, int times);
void mock_hub_stall(mock_hub *h, const char *file, int64_t after, int stall_ms, int times);
/* Serves `file` with one byte flipped (metadata unchanged); NULL to stop. */
void mock_hub_corrupt(mock_hub *h, const char *file);
/* Answer Range requests with 200 and the whole file. */
void mock_hub_ignore_range(mock_hub *h, bool on);
/* Wait `ms` before answering each HEAD (a hub that does not answer). */
void mock_hub_delay_head(mock_hub *h, int ms);

/* Requests whose method equals `method` (NULL: any) and whose URL contains
 * `url_part` (NULL: any). */
size_t mock_hub_count(mock_hub *h, const char *method, const char *url_part);
/* The last such request into *out; false if none. */
bool mock_hub_last(mock_hub *h, const char *method, const char *url_part, mock_request *out);
size_t mock_hub_total(mock_hub *h);
void mock_hub_clear_log(mock_hub *h);

#endif
