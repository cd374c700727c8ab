/*
 * test_header.c — include/ember.h compiles on its own as C (and, through
 * test_header_cpp.cpp, as C++), and its basic contracts hold without a model:
 * defaults carry their size, NULL-safe frees, status strings.
 */
#include "ember.h"

#include <stdio.h>
#include <string.h>

int ember_header_cpp_check(void);

int main(void) {
    int bad = 0;
    ember_model_params mp = ember_model_default_params();
    ember_ctx_params cp = ember_ctx_default_params();
    ember_embed_options eo = ember_embed_default_options();
    bad |= mp.struct_size != sizeof mp;
    bad |= cp.struct_size != sizeof cp || cp.max_batch != 32;
    bad |= eo.struct_size != sizeof eo || eo.normalize != -1 || eo.truncate != 1;
    ember_model_free(NULL);
    ember_ctx_free(NULL);
    ember_tokenizer_free(NULL);
    ember_encoding_free(NULL);
    ember_free(NULL);
    bad |= strcmp(ember_status_str(EMBER_OK), "ok") != 0;
    bad |= strcmp(ember_status_str(EMBER_E_TOO_LONG), "input too long") != 0;
    bad |= strcmp(ember_version(), EMBER_VERSION_STRING) != 0;
    bad |= strcmp(ember_pooling_name(EMBER_POOLING_MEAN), "mean") != 0;
    bad |= ember_cpu_features() == NULL;
    bad |= ember_header_cpp_check() != 0;
    printf("test_header: %s\n", bad ? "FAILED" : "ok");
    return bad;
}
