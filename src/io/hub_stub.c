/*
 * hub_stub.c — placeholder until Hugging Face hub resolution lands: accepts
 * local directories only.
 */
#include <limits.h>
#include <stdlib.h>

#include "core/util.h"
#include "ember.h"

ember_status ember_resolve_model(const char *spec, const ember_model_params *params,
                                 char **out_dir) {
    (void)params;
    *out_dir = NULL;
    if (!spec || !ember_dir_exists(spec))
        return ember_error(EMBER_E_NOT_FOUND, "%s: not a model directory", spec ? spec : "(null)");
    char buf[PATH_MAX];
    *out_dir = ember_strdup(realpath(spec, buf) ? buf : spec);
    return *out_dir ? EMBER_OK : EMBER_E_NOMEM;
}
