/*
 * registry.c — the architectures Ember runs, found by config.json's
 * model_type. Adding an architecture is its file plus one line in k_builtin
 * (docs/architecture.md); tests add their own at run time with
 * ember_arch_register.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "models/arch.h"

extern const ember_arch ember_arch_bert;
extern const ember_arch ember_arch_modernbert;
extern const ember_arch ember_arch_qwen3;
extern const ember_arch ember_arch_qwen2;
extern const ember_arch ember_arch_mistral;
extern const ember_arch ember_arch_llama;
extern const ember_arch ember_arch_gemma3;

static const ember_arch *const k_builtin[] = {
    &ember_arch_bert,
    &ember_arch_modernbert,
    &ember_arch_qwen3,
    &ember_arch_qwen2,
    &ember_arch_mistral,
    &ember_arch_llama,
    &ember_arch_gemma3,
};

#define MAX_EXTRA 16
static const ember_arch *g_extra[MAX_EXTRA];
static int g_n_extra;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_supported[512];

static const ember_arch *arch_at(int i) {
    const int nb = (int)(sizeof k_builtin / sizeof k_builtin[0]);
    return i < nb ? k_builtin[i] : (i - nb < g_n_extra ? g_extra[i - nb] : NULL);
}

static const ember_arch *find_locked(const char *model_type) {
    for (int i = 0;; i++) {
        const ember_arch *a = arch_at(i);
        if (!a)
            return NULL;
        for (const char *const *t = a->model_types; t && *t; t++)
            if (strcmp(*t, model_type) == 0)
                return a;
    }
}

const ember_arch *ember_arch_find(const char *model_type) {
    pthread_mutex_lock(&g_lock);
    const ember_arch *a = model_type ? find_locked(model_type) : NULL;
    pthread_mutex_unlock(&g_lock);
    return a;
}

ember_status ember_arch_register(const ember_arch *arch) {
    if (!arch || !arch->name || !arch->model_types || !arch->parse_config || !arch->load ||
        !arch->arena_bytes || !arch->forward)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "ember_arch_register: an architecture needs a name, model_types and "
                           "the parse_config, load, arena_bytes and forward functions");
    ember_status st = EMBER_OK;
    pthread_mutex_lock(&g_lock);
    for (const char *const *t = arch->model_types; *t && st == EMBER_OK; t++)
        if (find_locked(*t))
            st = ember_error(EMBER_E_INVALID_ARGUMENT,
                             "ember_arch_register: model_type \"%s\" is already registered", *t);
    if (st == EMBER_OK && g_n_extra == MAX_EXTRA)
        st = ember_error(EMBER_E_INVALID_ARGUMENT, "ember_arch_register: the table is full (%d)",
                         MAX_EXTRA);
    if (st == EMBER_OK)
        g_extra[g_n_extra++] = arch;
    pthread_mutex_unlock(&g_lock);
    return st;
}

const char *ember_arch_supported(void) {
    pthread_mutex_lock(&g_lock);
    size_t used = 0;
    g_supported[0] = '\0';
    for (int i = 0; arch_at(i); i++)
        for (const char *const *t = arch_at(i)->model_types; *t; t++) {
            int n = snprintf(g_supported + used, sizeof g_supported - used, "%s%s",
                             used ? ", " : "", *t);
            if (n > 0 && (size_t)n < sizeof g_supported - used)
                used += (size_t)n;
        }
    pthread_mutex_unlock(&g_lock);
    return g_supported;
}
