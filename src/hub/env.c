/*
 * env.c — the environment of hub resolution, read the way huggingface_hub
 * reads it (constants.py, utils/_auth.py), and validation of the names that
 * become paths in the cache (utils/_validators.py for repo ids).
 *
 * Reading the same variables with the same defaults is what makes the cache
 * shared: HF_HOME, HF_HUB_CACHE (and the legacy HUGGINGFACE_HUB_CACHE),
 * HF_HUB_OFFLINE, HF_TOKEN, HF_TOKEN_PATH, HF_ENDPOINT. Values get `~` and
 * `$VAR` expanded as Python's expanduser/expandvars do. An empty variable is
 * treated as unset (Python would take "" as a relative path; that is never
 * what the user meant).
 */
#define _GNU_SOURCE
#include "hub.h"

#include <curl/curl.h>
#include <errno.h>
#include <pwd.h>
#include <strings.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define EMBER_HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define EMBER_HUB_DEFAULT_TIMEOUT 10 /* DEFAULT_ETAG_TIMEOUT, DEFAULT_DOWNLOAD_TIMEOUT */
#define EMBER_HUB_MAX_TOKEN_FILE 4096

char *ember_hub_strf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        ember_error(EMBER_E_INTERNAL, "formatting failed");
        return NULL;
    }
    char *s = ember_malloc((size_t)n + 1, "string");
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A variable's value, NULL when unset or empty. */
static const char *env_get(const char *name) {
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

bool ember_hub_env_true(const char *value) {
    static const char *const yes[] = {"1", "ON", "YES", "TRUE"};
    if (!value)
        return false;
    for (size_t i = 0; i < EMBER_ARRAY_LEN(yes); i++)
        if (strcasecmp(value, yes[i]) == 0)
            return true;
    return false;
}

static char *home_dir(void) {
    const char *h = env_get("HOME");
    if (h)
        return ember_strdup(h);
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_dir)
        return ember_strdup(res->pw_dir);
    return ember_strdup("/");
}

/* os.path.expanduser for "~" and "~/..." ("~user" is left alone). */
static char *expand_user(const char *p) {
    if (p[0] != '~' || (p[1] != '\0' && p[1] != '/'))
        return ember_strdup(p);
    char *home = home_dir();
    if (!home)
        return NULL;
    size_t hl = strlen(home);
    while (hl > 1 && home[hl - 1] == '/')
        hl--;
    char *r = ember_hub_strf("%.*s%s", (int)hl, home, p + 1);
    free(home);
    return r;
}

/* os.path.expandvars: $NAME and ${NAME} replaced when set, kept otherwise. */
static char *expand_vars(const char *p) {
    ember_buf b = {0};
    if (ember_buf_reserve(&b, strlen(p)) != EMBER_OK)
        return NULL;
    for (size_t i = 0; p[i];) {
        if (p[i] == '$') {
            size_t start = i + 1, end;
            bool brace = p[start] == '{';
            if (brace)
                start++;
            end = start;
            while (p[end] == '_' || (p[end] >= '0' && p[end] <= '9') ||
                   (p[end] >= 'a' && p[end] <= 'z') || (p[end] >= 'A' && p[end] <= 'Z'))
                end++;
            bool ok = end > start && (!brace || p[end] == '}');
            if (ok) {
                char name[256];
                size_t n = EMBER_MIN(end - start, sizeof name - 1);
                memcpy(name, p + start, n);
                name[n] = '\0';
                const char *v = getenv(name);
                if (v) {
                    if (ember_buf_append(&b, v, strlen(v)) != EMBER_OK)
                        goto fail;
                    i = end + (brace ? 1 : 0);
                    continue;
                }
            }
        }
        if (ember_buf_append(&b, p + i, 1) != EMBER_OK)
            goto fail;
        i++;
    }
    return b.data;
fail:
    ember_buf_free(&b);
    return NULL;
}

static char *expand_path(const char *p) {
    char *u = expand_user(p);
    if (!u)
        return NULL;
    char *v = expand_vars(u);
    free(u);
    return v;
}

char *ember_hub_abspath(const char *path) {
    if (path[0] == '/')
        return ember_strdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd) {
        ember_error(EMBER_E_IO, "cannot read the working directory: %s", strerror(errno));
        return NULL;
    }
    const char *rest = path;
    while (rest[0] == '.' && rest[1] == '/')
        rest += 2;
    char *r = (rest[0] == '\0' || strcmp(rest, ".") == 0)
                  ? ember_strdup(cwd)
                  : ember_hub_strf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", rest);
    free(cwd);
    return r;
}

ember_status ember_hub_mkdirs(const char *path) {
    char *p = ember_strdup(path);
    if (!p)
        return EMBER_E_NOMEM;
    ember_status st = EMBER_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            st = ember_error(EMBER_E_IO, "cannot create directory %s: %s", p, strerror(errno));
            break;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    if (st == EMBER_OK && !ember_dir_exists(path))
        st = ember_error(EMBER_E_IO, "%s exists and is not a directory", path);
    free(p);
    return st;
}

/* utils/_auth.py _clean_token: drop CR and LF, strip spaces; "" means none. */
static char *clean_token(const char *raw) {
    size_t n = strlen(raw);
    char *t = ember_malloc(n + 1, "token");
    if (!t)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (raw[i] != '\r' && raw[i] != '\n')
            t[k++] = raw[i];
    t[k] = '\0';
    size_t a = 0;
    while (t[a] == ' ' || t[a] == '\t' || t[a] == '\f' || t[a] == '\v')
        a++;
    while (k > a && (t[k - 1] == ' ' || t[k - 1] == '\t' || t[k - 1] == '\f' || t[k - 1] == '\v'))
        k--;
    memmove(t, t + a, k - a);
    t[k - a] = '\0';
    if (!t[0]) {
        free(t);
        return ember_strdup("");
    }
    return t;
}

static ember_status load_token(ember_hub_env *env) {
    if (ember_hub_env_true(getenv("HF_HUB_DISABLE_IMPLICIT_TOKEN")))
        return EMBER_OK;
    static const char *const vars[] = {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"};
    for (size_t i = 0; i < EMBER_ARRAY_LEN(vars) && !env->token; i++) {
        const char *v = env_get(vars[i]);
        if (!v)
            continue;
        char *t = clean_token(v);
        if (!t)
            return EMBER_E_NOMEM;
        if (t[0]) {
            env->token = t;
            env->token_source = vars[i];
        } else {
            free(t);
        }
    }
    if (!env->token) {
        const char *tp = env_get("HF_TOKEN_PATH");
        char *path = tp ? expand_path(tp) : ember_path_join(env->hf_home, "token");
        if (!path)
            return EMBER_E_NOMEM;
        char *raw = NULL;
        size_t len = 0;
        if (ember_read_file(path, EMBER_HUB_MAX_TOKEN_FILE, &raw, &len) == EMBER_OK) {
            char *t = clean_token(raw);
            free(raw);
            if (!t) {
                free(path);
                return EMBER_E_NOMEM;
            }
            if (t[0]) {
                env->token = t;
                env->token_source = "the token file";
            } else {
                free(t);
            }
        }
        ember_error_clear(); /* a missing token file is the normal case */
        free(path);
    }
    if (env->token) {
        for (const char *c = env->token; *c; c++)
            if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
                return ember_error(EMBER_E_AUTH,
                                   "the Hugging Face token from %s contains a space or a "
                                   "non-printable character and cannot be sent; check it",
                                   env->token_source);
    }
    return EMBER_OK;
}

static long env_timeout(const char *name) {
    const char *v = env_get(name);
    if (!v)
        return EMBER_HUB_DEFAULT_TIMEOUT;
    char *end;
    errno = 0;
    long t = strtol(v, &end, 10);
    if (errno || *end || t <= 0 || t > 86400) {
        ember_log(EMBER_LOG_WARN, "%s=%s is not a positive number of seconds; using %d", name, v,
                  EMBER_HUB_DEFAULT_TIMEOUT);
        return EMBER_HUB_DEFAULT_TIMEOUT;
    }
    return t;
}

void ember_hub_env_free(ember_hub_env *env) {
    free(env->hf_home);
    free(env->cache_dir);
    free(env->endpoint);
    free(env->token);
    free(env->user_agent);
    memset(env, 0, sizeof *env);
}

ember_status ember_hub_env_load(ember_hub_env *env) {
    memset(env, 0, sizeof *env);
    ember_status st = EMBER_E_NOMEM;

    const char *home = env_get("HF_HOME");
    char *raw_home = NULL;
    if (home) {
        raw_home = ember_strdup(home);
    } else {
        const char *xdg = env_get("XDG_CACHE_HOME");
        raw_home = xdg ? ember_path_join(xdg, "huggingface") : ember_strdup("~/.cache/huggingface");
    }
    if (!raw_home)
        goto fail;
    char *expanded = expand_path(raw_home);
    free(raw_home);
    if (!expanded)
        goto fail;
    env->hf_home = ember_hub_abspath(expanded);
    free(expanded);
    if (!env->hf_home)
        goto fail;

    const char *cache = env_get("HF_HUB_CACHE");
    if (!cache)
        cache = env_get("HUGGINGFACE_HUB_CACHE");
    char *c = cache ? expand_path(cache) : ember_path_join(env->hf_home, "hub");
    if (!c)
        goto fail;
    env->cache_dir = ember_hub_abspath(c);
    free(c);
    if (!env->cache_dir)
        goto fail;
    size_t cl = strlen(env->cache_dir);
    while (cl > 1 && env->cache_dir[cl - 1] == '/')
        env->cache_dir[--cl] = '\0';

    /* constants.py: HF_HUB_OFFLINE = _is_true(HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE):
     * the first one set decides, even when it says "0". */
    const char *off = getenv("HF_HUB_OFFLINE");
    env->offline_var = "HF_HUB_OFFLINE";
    if (!off || !*off) {
        off = getenv("TRANSFORMERS_OFFLINE");
        env->offline_var = "TRANSFORMERS_OFFLINE";
    }
    env->offline = ember_hub_env_true(off);

    const char *ep = env_get("HF_ENDPOINT");
    env->endpoint = ember_strdup(ep ? ep : EMBER_HUB_DEFAULT_ENDPOINT);
    if (!env->endpoint)
        goto fail;
    size_t el = strlen(env->endpoint);
    while (el > 0 && env->endpoint[el - 1] == '/')
        env->endpoint[--el] = '\0';
    if (strncasecmp(env->endpoint, "http://", 7) != 0 &&
        strncasecmp(env->endpoint, "https://", 8) != 0) {
        st = ember_error(EMBER_E_INVALID_ARGUMENT,
                         "HF_ENDPOINT='%s' is not an http:// or https:// URL", env->endpoint);
        goto fail;
    }

    env->etag_timeout_s = env_timeout("HF_HUB_ETAG_TIMEOUT");
    env->download_timeout_s = env_timeout("HF_HUB_DOWNLOAD_TIMEOUT");

    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    const char *origin = env_get("HF_HUB_USER_AGENT_ORIGIN");
    env->user_agent = ember_hub_strf("ember/%s; libcurl/%s%s%s", EMBER_VERSION_STRING,
                                     cv && cv->version ? cv->version : "unknown",
                                     origin ? "; origin/" : "", origin ? origin : "");
    if (!env->user_agent)
        goto fail;

    if ((st = load_token(env)) != EMBER_OK)
        goto fail;
    return EMBER_OK;
fail:
    ember_hub_env_free(env);
    return st;
}

/* ---- names ------------------------------------------------------------- */

bool ember_hub_is_commit(const char *s) {
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == 40;
}

static bool is_word(char c) {
    return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* One part of REPO_ID_REGEX: [\w\-.]+ between word boundaries. */
static const char *check_id_part(const char *p, size_t n, size_t max) {
    if (n == 0)
        return "an empty name";
    if (n > max)
        return "a name longer than 96 characters";
    for (size_t i = 0; i < n; i++)
        if (!is_word(p[i]) && p[i] != '-' && p[i] != '.')
            return "characters other than letters, digits, '-', '_' and '.'";
    if (!is_word(p[0]) || !is_word(p[n - 1]))
        return "a name that starts or ends with '-' or '.'";
    return NULL;
}

ember_status ember_hub_check_repo_id(const char *id) {
    const char *why = NULL;
    const char *slash = strchr(id, '/');
    if (slash && strchr(slash + 1, '/'))
        why = "it has more than one '/' (use 'name' or 'org/name')";
    else if (strstr(id, "--") || strstr(id, ".."))
        why = "it contains '--' or '..'";
    else if (strlen(id) >= 4 && strcmp(id + strlen(id) - 4, ".git") == 0)
        why = "it ends with '.git'";
    else if (slash && (why = check_id_part(id, (size_t)(slash - id), SIZE_MAX)) != NULL)
        ;
    else
        why = check_id_part(slash ? slash + 1 : id, strlen(slash ? slash + 1 : id), 96);
    if (why)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "'%s' is not a local directory, nor a Hugging Face model id: %s", id,
                           why);
    return EMBER_OK;
}

/* A path made of '/'-separated components, none empty, "." or "..", no
 * backslash or control character: safe to append to a directory. */
static const char *path_problem(const char *p, size_t max) {
    size_t n = strlen(p);
    if (n == 0)
        return "it is empty";
    if (n > max)
        return "it is too long";
    if (p[0] == '/')
        return "it is absolute";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
            return "it contains a control character or a backslash";
    for (const char *c = p;;) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == 0)
            return "it has an empty component";
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return "it has a '.' or '..' component";
        if (!e)
            break;
        c = e + 1;
    }
    return NULL;
}

ember_status ember_hub_check_revision(const char *rev) {
    const char *why = path_problem(rev, 255);
    if (!why) {
        for (const char *c = rev; *c && !why; c++)
            if (*c == ' ' || strchr("~^:?*[", *c))
                why = "it contains a character git does not allow in a ref name";
        if (!why && strstr(rev, ".."))
            why = "it contains '..'";
    }
    if (why)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "revision '%s' is not valid: %s", rev, why);
    return EMBER_OK;
}

ember_status ember_hub_check_repo_path(const char *path, const char *what) {
    const char *why = path_problem(path, 1024);
    if (why)
        return ember_error(EMBER_E_FORMAT, "%s names the file '%s', which Ember refuses: %s", what,
                           path, why);
    return EMBER_OK;
}

ember_status ember_hub_parse_spec(const char *spec, const char *default_revision, char **repo_id,
                                  char **revision) {
    *repo_id = *revision = NULL;
    const char *at = strchr(spec, '@');
    size_t idlen = at ? (size_t)(at - spec) : strlen(spec);
    char *id = ember_strndup(spec, idlen);
    if (!id)
        return EMBER_E_NOMEM;
    ember_status st = ember_hub_check_repo_id(id);
    if (st != EMBER_OK) {
        /* Name the whole spec, not just the part before '@'. */
        if (at)
            ember_error_prefix(st, "'%s'", spec);
        free(id);
        return st;
    }
    const char *rev = at ? at + 1 : (default_revision && *default_revision ? default_revision
                                                                          : "main");
    if (at && !*rev) {
        free(id);
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "'%s': nothing after '@' (write org/name@revision)", spec);
    }
    if ((st = ember_hub_check_revision(rev)) != EMBER_OK) {
        free(id);
        return st;
    }
    char *r = ember_strdup(rev);
    if (!r) {
        free(id);
        return EMBER_E_NOMEM;
    }
    *repo_id = id;
    *revision = r;
    return EMBER_OK;
}
