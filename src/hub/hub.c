/*
 * hub.c — ember_resolve_model(): turns "org/name[@revision]" into the local
 * snapshot directory of a model in the Hugging Face cache, downloading the
 * files an embedding model needs when they are missing; a local directory is
 * returned as it is, made absolute.
 *
 * The decisions mirror huggingface_hub's hf_hub_download (file_download.py):
 *  - online, the revision is resolved by a HEAD on config.json (X-Repo-Commit)
 *    and recorded in refs/{revision}; every other file is then asked for at
 *    that commit, so the snapshot is consistent even if the branch moves;
 *  - a file already in snapshots/{commit} is not asked for again, and a 404
 *    is remembered in .no_exist/{commit} so optional files cost one request
 *    once per commit;
 *  - when the hub cannot be asked (HF_HUB_OFFLINE=1, no network, a 5xx, a
 *    401/403 for a model that is cached), the cached ref is used; a revision
 *    that is a full commit hash is used straight from snapshots/ when it is
 *    complete, without any request.
 * A snapshot is returned only when it is complete for Ember: config.json and
 * safetensors weights (every shard of a sharded index), each resolving to a
 * regular file inside the cache.
 */
#include "hub.h"

#include <dirent.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/util.h"
#include "io/json.h"

#define EMBER_HUB_MAX_JSON (64u << 20) /* an index or modules.json larger is not one */

/* Files fetched when the repository has them (a 404 is fine). */
static const char *const k_optional[] = {
    "tokenizer_config.json",     "special_tokens_map.json",           "modules.json",
    "sentence_bert_config.json", "config_sentence_transformers.json",
};

/* ---- reading the model files of a snapshot ------------------------------------ */

typedef struct name_list {
    char **names;
    size_t n;
} name_list;

static void name_list_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

/* The distinct shard files named by model.safetensors.index.json. */
static ember_status read_shards(const char *index_path, name_list *out) {
    memset(out, 0, sizeof *out);
    json_t *root;
    EMBER_TRY(ember_json_load_file(index_path, EMBER_HUB_MAX_JSON, &root));
    ember_status st = EMBER_OK;
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        st = ember_error(EMBER_E_FORMAT, "%s: 'weight_map' must be a non-empty object, found %s",
                         index_path, ember_json_type_name(map));
        goto done;
    }
    out->names = ember_calloc(json_object_size(map), sizeof *out->names, "shard names");
    if (!out->names) {
        st = EMBER_E_NOMEM;
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        if (!json_is_string(v)) {
            st = ember_error(EMBER_E_FORMAT, "%s: weight_map['%s'] must be a file name, found %s",
                             index_path, key, ember_json_type_name(v));
            goto done;
        }
        const char *name = json_string_value(v);
        if ((st = ember_hub_check_repo_path(name, "model.safetensors.index.json")) != EMBER_OK)
            goto done;
        bool seen = false;
        for (size_t i = 0; i < out->n && !seen; i++)
            seen = strcmp(out->names[i], name) == 0;
        if (seen)
            continue;
        if (!(out->names[out->n] = ember_strdup(name))) {
            st = EMBER_E_NOMEM;
            goto done;
        }
        out->n++;
    }
done:
    json_decref(root);
    if (st != EMBER_OK)
        name_list_free(out);
    return st;
}

/* The folder of the Pooling module named by modules.json, or NULL if none. */
static ember_status read_pooling_dir(const char *modules_path, char **out) {
    *out = NULL;
    json_t *root;
    EMBER_TRY(ember_json_load_file(modules_path, EMBER_HUB_MAX_JSON, &root));
    ember_status st = EMBER_OK;
    if (!json_is_array(root)) {
        st = ember_error(EMBER_E_FORMAT, "%s: expected a list of modules, found %s", modules_path,
                         ember_json_type_name(root));
        goto done;
    }
    size_t i;
    json_t *m;
    json_array_foreach(root, i, m) {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *path = json_string_value(json_object_get(m, "path"));
        if (!type || !strstr(type, "Pooling") || !path || !*path)
            continue;
        if ((st = ember_hub_check_repo_path(path, "modules.json")) != EMBER_OK)
            goto done;
        *out = ember_hub_strf("%s/config.json", path);
        if (!*out)
            st = EMBER_E_NOMEM;
        break;
    }
done:
    json_decref(root);
    return st;
}

/* ---- completeness of a cached snapshot ------------------------------------------- */

/* EMBER_OK when snapshots/{commit} holds a usable model. Otherwise a short
 * reason in `why` ("no model.safetensors") and EMBER_E_NOT_FOUND, or
 * EMBER_E_FORMAT / EMBER_E_IO with the full message recorded. */
static ember_status snapshot_status(const char *cache, const char *storage, const char *commit,
                                    char *why, size_t cap) {
    why[0] = '\0';
    char *dir = ember_hub_strf("%s/snapshots/%s", storage, commit);
    if (!dir)
        return EMBER_E_NOMEM;
    bool exists = ember_dir_exists(dir);
    free(dir);
    if (!exists) {
        snprintf(why, cap, "no snapshot");
        return EMBER_E_NOT_FOUND;
    }
    ember_status st = ember_hub_snapshot_file(cache, storage, commit, "config.json", NULL);
    if (st == EMBER_E_NOT_FOUND)
        snprintf(why, cap, "no config.json");
    if (st != EMBER_OK)
        return st;

    char *index = NULL;
    st = ember_hub_snapshot_file(cache, storage, commit, "model.safetensors", NULL);
    if (st == EMBER_E_NOT_FOUND) {
        st = ember_hub_snapshot_file(cache, storage, commit, "model.safetensors.index.json", &index);
        if (st == EMBER_E_NOT_FOUND) {
            bool pt = ember_hub_snapshot_file(cache, storage, commit, "pytorch_model.bin", NULL) ==
                      EMBER_OK;
            ember_error_clear();
            snprintf(why, cap, pt ? "only pytorch_model.bin, no safetensors weights"
                                  : "no model.safetensors");
            return EMBER_E_NOT_FOUND;
        }
        if (st != EMBER_OK)
            return st;
        name_list shards;
        st = read_shards(index, &shards);
        free(index);
        if (st != EMBER_OK)
            return st;
        for (size_t i = 0; i < shards.n && st == EMBER_OK; i++) {
            st = ember_hub_snapshot_file(cache, storage, commit, shards.names[i], NULL);
            if (st == EMBER_E_NOT_FOUND)
                snprintf(why, cap, "no shard %s", shards.names[i]);
        }
        name_list_free(&shards);
        if (st != EMBER_OK)
            return st;
    } else if (st != EMBER_OK) {
        return st;
    }

    /* Optional files need not be there, but what is there must be sound. */
    static const char *const tok[] = {"tokenizer.json", "vocab.txt"};
    for (size_t i = 0; i < EMBER_ARRAY_LEN(tok) + EMBER_ARRAY_LEN(k_optional); i++) {
        const char *name = i < 2 ? tok[i] : k_optional[i - 2];
        st = ember_hub_snapshot_file(cache, storage, commit, name, NULL);
        if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
            return st;
    }
    char *modules = NULL;
    if (ember_hub_snapshot_file(cache, storage, commit, "modules.json", &modules) == EMBER_OK) {
        char *pool = NULL;
        st = read_pooling_dir(modules, &pool);
        free(modules);
        if (st == EMBER_OK && pool) {
            st = ember_hub_snapshot_file(cache, storage, commit, pool, NULL);
            if (st == EMBER_E_NOT_FOUND)
                st = EMBER_OK;
        }
        free(pool);
        if (st != EMBER_OK)
            return st;
    }
    ember_error_clear();
    return EMBER_OK;
}

ember_status ember_hub_check_snapshot(const char *cache_dir, const char *storage,
                                      const char *commit) {
    char why[256];
    ember_status st = snapshot_status(cache_dir, storage, commit, why, sizeof why);
    if (st == EMBER_E_NOT_FOUND)
        return ember_error(st, "%s/snapshots/%s: %s", storage, commit, why);
    return st;
}

char *ember_hub_describe_cache(const char *cache_dir, const char *storage) {
    if (!ember_dir_exists(storage))
        return ember_strdup("nothing");
    ember_buf b = {0};
    char *refs = ember_path_join(storage, "refs");
    DIR *d = refs ? opendir(refs) : NULL;
    int n = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char commit[41];
            if (e->d_name[0] == '.')
                continue;
            ember_status st = ember_hub_read_ref(storage, e->d_name, commit);
            ember_error_clear();
            if (st == EMBER_E_NOT_FOUND)
                continue;
            ember_buf_printf(&b, "%s%s -> %s", n++ ? ", " : "refs: ", e->d_name,
                             st == EMBER_OK ? commit : "(malformed)");
        }
        closedir(d);
    }
    free(refs);
    char *snaps = ember_path_join(storage, "snapshots");
    d = snaps ? opendir(snaps) : NULL;
    int k = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!ember_hub_is_commit(e->d_name))
                continue;
            char why[256];
            ember_status st = snapshot_status(cache_dir, storage, e->d_name, why, sizeof why);
            ember_error_clear();
            ember_buf_printf(&b, "%s%s (%s%s)", k++ ? ", " : (n ? "; snapshots: " : "snapshots: "),
                             e->d_name,
                             st == EMBER_OK ? "complete"
                             : st == EMBER_E_NOT_FOUND ? "incomplete: "
                                                       : "unusable",
                             st == EMBER_E_NOT_FOUND ? why : "");
        }
        closedir(d);
    }
    free(snaps);
    if (!b.data)
        return ember_strdup("an empty folder");
    return b.data;
}

/* ---- resolution ------------------------------------------------------------------- */

typedef struct resolve_ctx {
    ember_hub_env env;
    const char *repo_id;
    const char *revision;
    char *storage;
    char commit[41];
    ember_hub_http *http;
    ember_progress_fn progress;
    void *progress_user;
} resolve_ctx;

static char *snapshot_dir(const resolve_ctx *c, const char *commit) {
    return ember_hub_strf("%s/snapshots/%s", c->storage, commit);
}

/* Uses the cache alone. `why` says why the hub is not asked (`offline`: by
 * choice) or what it answered, and `fail` is the status when the cache cannot
 * serve (NOT_FOUND offline, NETWORK when the network failed, AUTH when the
 * hub refused ...). On failure the message also tells what the cache holds
 * and what to do (`advice`, may be ""). */
static ember_status from_cache(resolve_ctx *c, const char *why, bool offline, ember_status fail,
                               const char *advice, char **out) {
    char commit[41];
    ember_status st;
    if (ember_hub_is_commit(c->revision)) {
        memcpy(commit, c->revision, 41);
        st = EMBER_OK;
    } else {
        st = ember_hub_read_ref(c->storage, c->revision, commit);
        if (st == EMBER_E_FORMAT)
            return st;
    }
    char reason[256] = "";
    if (st == EMBER_OK) {
        st = snapshot_status(c->env.cache_dir, c->storage, commit, reason, sizeof reason);
        if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
            return st;
    }
    if (st == EMBER_OK) {
        *out = snapshot_dir(c, commit);
        return *out ? EMBER_OK : EMBER_E_NOMEM;
    }
    char *desc = ember_hub_describe_cache(c->env.cache_dir, c->storage);
    if (!desc)
        return EMBER_E_NOMEM;
    const char *sp = *advice ? " " : "";
    bool nothing = strcmp(desc, "nothing") == 0;
    if (nothing && offline)
        st = ember_error(fail, "%s is not in the Hugging Face cache %s, and %s.%s%s", c->repo_id,
                         c->env.cache_dir, why, sp, advice);
    else if (nothing && fail == EMBER_E_NETWORK)
        st = ember_error(fail, "%s. %s is not in the Hugging Face cache %s.%s%s", why, c->repo_id,
                         c->env.cache_dir, sp, advice);
    else if (nothing)
        st = ember_error(fail, "%s", why);
    else if (offline)
        st = ember_error(fail,
                         "%s@%s has no complete copy in the Hugging Face cache, and %s (%s holds "
                         "%s).%s%s",
                         c->repo_id, c->revision, why, c->storage, desc, sp, advice);
    else
        st = ember_error(fail, "%s. The cache has no complete copy of %s@%s (%s holds %s).%s%s",
                         why, c->repo_id, c->revision, c->storage, desc, sp, advice);
    free(desc);
    return st;
}

static ember_status auth_error(resolve_ctx *c, const ember_hub_meta *m) {
    const char *ep = c->env.endpoint;
    if (strcmp(m->error_code, "GatedRepo") == 0)
        return ember_error(EMBER_E_AUTH,
                           "%s is a gated model (HTTP %ld): accept its conditions at %s/%s while "
                           "logged in, then set HF_TOKEN to an access token of that account%s",
                           c->repo_id, m->status, ep, c->repo_id,
                           c->env.token ? " (the token that was sent has no access yet)" : "");
    if (c->env.token)
        return ember_error(EMBER_E_AUTH,
                           "the hub refused access to %s with the token from %s (HTTP %ld%s%s): "
                           "check that the token is valid and may read this model; if the model "
                           "is gated, accept its conditions at %s/%s",
                           c->repo_id, c->env.token_source, m->status,
                           m->error_message[0] ? ": " : "", m->error_message, ep, c->repo_id);
    return ember_error(EMBER_E_AUTH,
                       "the hub refused access to %s (HTTP %ld, no token sent): the model does "
                       "not exist, or it is private or gated. Check the name; for a private or "
                       "gated model set HF_TOKEN to an access token (%s/settings/tokens), and for "
                       "a gated one accept its conditions at %s/%s",
                       c->repo_id, m->status, ep, ep, c->repo_id);
}

/* The error for a HEAD that did not find `path` when it had to. */
static ember_status head_error(resolve_ctx *c, const ember_hub_meta *m, const char *path) {
    switch (m->answer) {
    case EMBER_HUB_FOUND: return EMBER_OK;
    case EMBER_HUB_ENTRY_NOT_FOUND:
        return ember_error(EMBER_E_NOT_FOUND, "%s@%s has no file '%s' (HTTP %ld)", c->repo_id,
                           c->revision, path, m->status);
    case EMBER_HUB_REVISION_NOT_FOUND:
        return ember_error(EMBER_E_NOT_FOUND, "%s has no revision '%s' (branch, tag or commit)",
                           c->repo_id, c->revision);
    case EMBER_HUB_REPO_NOT_FOUND:
        return ember_error(EMBER_E_NOT_FOUND, "no model '%s' on %s (HTTP 404%s%s)", c->repo_id,
                           c->env.endpoint, m->error_message[0] ? ": " : "", m->error_message);
    case EMBER_HUB_AUTH: return auth_error(c, m);
    case EMBER_HUB_SERVER:
        return ember_error(EMBER_E_NETWORK, "%s: %s answered HTTP %ld for %s%s%s", c->repo_id,
                           c->env.endpoint, m->status, path, m->error_message[0] ? ": " : "",
                           m->error_message);
    case EMBER_HUB_BAD_METADATA:
        return ember_error(EMBER_E_NETWORK, "%s: %s for %s from %s", c->repo_id, m->error_message,
                           path, c->env.endpoint);
    case EMBER_HUB_UNREACHABLE:
        return ember_error(EMBER_E_NETWORK, "cannot reach %s to fetch %s of %s: %s",
                           c->env.endpoint, path, c->repo_id, m->error_message);
    }
    return ember_error(EMBER_E_INTERNAL, "unknown hub answer");
}

/* Makes snapshots/{commit}/{path} present: already there, remembered as
 * absent (.no_exist), or asked for and downloaded. `pre` is a HEAD already
 * made for it. *found says whether the repository has the file. */
static ember_status fetch_file(resolve_ctx *c, const char *path, const ember_hub_meta *pre,
                               bool *found) {
    *found = false;
    ember_status st = ember_hub_snapshot_file(c->env.cache_dir, c->storage, c->commit, path, NULL);
    if (st == EMBER_OK) {
        *found = true;
        return EMBER_OK;
    }
    if (st != EMBER_E_NOT_FOUND)
        return st;
    if (!pre && ember_hub_no_exist(c->storage, c->commit, path))
        return EMBER_OK;
    ember_hub_meta own;
    const ember_hub_meta *m = pre;
    if (!m) {
        EMBER_TRY(ember_hub_head(c->http, c->repo_id, c->commit, path, &own));
        m = &own;
    }
    if (m->answer == EMBER_HUB_ENTRY_NOT_FOUND) {
        /* _get_metadata_or_catch_error caches the 404 under the commit the
         * hub reports with it. */
        if (m->commit[0])
            ember_hub_mark_no_exist(c->storage, m->commit, path);
        st = EMBER_OK;
    } else if (m->answer != EMBER_HUB_FOUND) {
        st = head_error(c, m, path);
    } else if (strcmp(m->commit, c->commit) != 0) {
        st = ember_error(EMBER_E_NETWORK,
                         "%s: asked for %s at commit %s, the hub answered for commit %s", c->repo_id,
                         path, c->commit, m->commit);
    } else {
        ember_log(EMBER_LOG_INFO, "downloading %s/%s (%lld bytes)", c->repo_id, path,
                  (long long)m->size);
        st = ember_hub_fetch(c->http, c->env.cache_dir, c->storage, c->commit, path, m,
                             c->progress, c->progress_user);
        *found = st == EMBER_OK;
        if (st != EMBER_OK)
            ember_error_prefix(st, "%s", c->repo_id);
    }
    if (m == &own)
        ember_hub_meta_free(&own);
    return st;
}

static ember_status fetch_required(resolve_ctx *c, const char *path, const char *why) {
    bool found;
    EMBER_TRY(fetch_file(c, path, NULL, &found));
    if (!found)
        return ember_error(EMBER_E_NOT_FOUND, "%s@%s (commit %s) has no file '%s' %s", c->repo_id,
                           c->revision, c->commit, path, why);
    return EMBER_OK;
}

static ember_status local_path(resolve_ctx *c, const char *path, char **out) {
    return ember_hub_snapshot_file(c->env.cache_dir, c->storage, c->commit, path, out);
}

/* Everything after config.json: tokenizer, sentence-transformers files,
 * pooling config, then the weights (last, so that a problem with a small
 * file shows before a large download). */
static ember_status fetch_model_files(resolve_ctx *c) {
    bool found;
    EMBER_TRY(fetch_file(c, "tokenizer.json", NULL, &found));
    if (!found)
        EMBER_TRY(fetch_file(c, "vocab.txt", NULL, &found));
    for (size_t i = 0; i < EMBER_ARRAY_LEN(k_optional); i++)
        EMBER_TRY(fetch_file(c, k_optional[i], NULL, &found));

    char *modules = NULL;
    ember_status st = local_path(c, "modules.json", &modules);
    if (st == EMBER_OK) {
        char *pool = NULL;
        st = read_pooling_dir(modules, &pool);
        free(modules);
        if (st == EMBER_OK && pool)
            st = fetch_file(c, pool, NULL, &found);
        free(pool);
        EMBER_TRY(st);
    } else if (st != EMBER_E_NOT_FOUND) {
        return st;
    }

    EMBER_TRY(fetch_file(c, "model.safetensors", NULL, &found));
    if (found)
        return EMBER_OK;
    EMBER_TRY(fetch_file(c, "model.safetensors.index.json", NULL, &found));
    if (found) {
        char *index = NULL;
        EMBER_TRY(local_path(c, "model.safetensors.index.json", &index));
        name_list shards;
        st = read_shards(index, &shards);
        free(index);
        EMBER_TRY(st);
        for (size_t i = 0; i < shards.n && st == EMBER_OK; i++)
            st = fetch_required(c, shards.names[i], "named by model.safetensors.index.json");
        name_list_free(&shards);
        return st;
    }
    /* No safetensors: say so precisely when the repository has pickles. */
    ember_hub_meta m;
    EMBER_TRY(ember_hub_head(c->http, c->repo_id, c->commit, "pytorch_model.bin", &m));
    bool pickle = m.answer == EMBER_HUB_FOUND;
    ember_hub_meta_free(&m);
    if (pickle)
        return ember_error(EMBER_E_NOT_FOUND,
                           "%s@%s has only PyTorch pickle weights (pytorch_model.bin); Ember reads "
                           "safetensors only. Use a revision or a copy of the model with "
                           "model.safetensors (for example the 'refs/pr/N' of a conversion pull "
                           "request, or convert it locally and pass the directory)",
                           c->repo_id, c->revision);
    return ember_error(EMBER_E_NOT_FOUND,
                       "%s@%s has no model.safetensors nor model.safetensors.index.json",
                       c->repo_id, c->revision);
}

static const char k_offline_advice[] =
    "Unset it to download the model, or pass a local model directory";

static ember_status resolve_online(resolve_ctx *c, char **out) {
    EMBER_TRY(ember_hub_http_new(&c->env, &c->http));
    ember_hub_meta meta;
    EMBER_TRY(ember_hub_head(c->http, c->repo_id, c->revision, "config.json", &meta));
    ember_status st = EMBER_OK;
    switch (meta.answer) {
    case EMBER_HUB_FOUND: break;
    case EMBER_HUB_ENTRY_NOT_FOUND:
    case EMBER_HUB_REVISION_NOT_FOUND:
        /* The hub answered for this revision: a cached copy would be stale. */
        st = meta.answer == EMBER_HUB_ENTRY_NOT_FOUND
                 ? ember_error(EMBER_E_NOT_FOUND,
                               "%s@%s has no config.json: it is not a transformers model "
                               "repository Ember can load",
                               c->repo_id, c->revision)
                 : head_error(c, &meta, "config.json");
        break;
    default: {
        /* No usable answer: like huggingface_hub, fall back to the cached ref. */
        ember_status fail = head_error(c, &meta, "config.json");
        char why[1024];
        snprintf(why, sizeof why, "%s", ember_last_error());
        const char *advice =
            fail == EMBER_E_NETWORK
                ? "Check the connection (and HTTPS_PROXY); a model downloaded once runs without "
                  "the network, and HF_HUB_OFFLINE=1 skips the hub entirely. Or pass a local "
                  "model directory"
                : "";
        st = from_cache(c, why, false, fail, advice, out);
        if (st == EMBER_OK)
            ember_log(EMBER_LOG_WARN, "%s; using the cached copy %s", why, *out);
        ember_hub_meta_free(&meta);
        return st;
    }
    }
    if (st != EMBER_OK) {
        ember_hub_meta_free(&meta);
        return st;
    }
    memcpy(c->commit, meta.commit, 41);
    st = ember_hub_write_ref(c->storage, c->revision, c->commit);
    bool found;
    if (st == EMBER_OK)
        st = fetch_file(c, "config.json", &meta, &found);
    ember_hub_meta_free(&meta);
    if (st == EMBER_OK)
        st = fetch_model_files(c);
    if (st == EMBER_OK)
        st = ember_hub_check_snapshot(c->env.cache_dir, c->storage, c->commit);
    if (st == EMBER_OK) {
        *out = snapshot_dir(c, c->commit);
        if (!*out)
            st = EMBER_E_NOMEM;
    }
    return st;
}

/* A spec that can only be a filesystem path, never a model id. */
static bool looks_like_path(const char *spec) {
    size_t n = strlen(spec);
    return spec[0] == '/' || spec[0] == '.' || spec[0] == '~' || spec[n - 1] == '/' ||
           strstr(spec, "//") != NULL;
}

#define HAS_PARAM(p, field)                                                                      \
    ((p) && (p)->struct_size >= offsetof(ember_model_params, field) + sizeof((p)->field))

ember_status ember_resolve_model(const char *spec, const ember_model_params *params,
                                 char **out_dir) {
    ember_error_clear();
    if (!out_dir)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_resolve_model: out_dir is NULL");
    *out_dir = NULL;
    if (!spec || !*spec)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "ember_resolve_model: empty model (give a directory or org/name)");

    struct stat sb;
    if (stat(spec, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return ember_error(EMBER_E_INVALID_ARGUMENT,
                               "%s is a file: give the directory that holds config.json and the "
                               "weights",
                               spec);
        *out_dir = ember_hub_abspath(spec);
        return *out_dir ? EMBER_OK : EMBER_E_NOMEM;
    }
    if (looks_like_path(spec))
        return ember_error(EMBER_E_NOT_FOUND,
                           "no such directory: '%s' (and it is not a Hugging Face model id)", spec);

    int32_t allow_download = HAS_PARAM(params, allow_download) ? params->allow_download : 1;
    const char *rev = HAS_PARAM(params, revision) ? params->revision : NULL;
    resolve_ctx c = {0};
    if (HAS_PARAM(params, progress_user)) {
        c.progress = params->progress;
        c.progress_user = params->progress_user;
    }
    char *repo_id = NULL, *revision = NULL;
    EMBER_TRY(ember_hub_parse_spec(spec, rev, &repo_id, &revision));
    c.repo_id = repo_id;
    c.revision = revision;
    ember_status st = ember_hub_env_load(&c.env);
    if (st == EMBER_OK) {
        c.storage = ember_hub_storage_dir(c.env.cache_dir, repo_id);
        if (!c.storage)
            st = EMBER_E_NOMEM;
    }
    char why[128];
    if (st != EMBER_OK) {
        /* fall through to cleanup */
    } else if (ember_hub_is_commit(revision) &&
               snapshot_status(c.env.cache_dir, c.storage, revision, why, sizeof why) == EMBER_OK) {
        /* hf_hub_download's shortcut: a commit that is on disk needs no request. */
        *out_dir = snapshot_dir(&c, revision);
        st = *out_dir ? EMBER_OK : EMBER_E_NOMEM;
    } else if (c.env.offline) {
        snprintf(why, sizeof why, "%s=%s forbids network access", c.env.offline_var,
                 getenv(c.env.offline_var));
        st = from_cache(&c, why, true, EMBER_E_NOT_FOUND, k_offline_advice, out_dir);
    } else if (!allow_download) {
        st = from_cache(&c, "downloads are disabled (allow_download = 0)", true,
                        EMBER_E_NOT_FOUND, "Allow downloads, or pass a local model directory",
                        out_dir);
    } else {
        st = resolve_online(&c, out_dir);
    }
    if (st != EMBER_OK) {
        free(*out_dir);
        *out_dir = NULL;
    } else {
        ember_error_clear(); /* intermediate misses (a 404, a fallback) are not errors */
    }
    ember_hub_http_free(c.http);
    free(c.storage);
    ember_hub_env_free(&c.env);
    free(repo_id);
    free(revision);
    return st;
}
