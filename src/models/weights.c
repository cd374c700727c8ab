/*
 * weights.c — the weight loader shared by every architecture (see arch.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "models/arch.h"

ember_status ember_wload(ember_wloader *L, const char *name, ember_wkind kind, int64_t d0,
                         int64_t d1, bool optional, ember_weight *out) {
    memset(out, 0, sizeof *out);
    char full[512];
    snprintf(full, sizeof full, "%s%s", L->prefix, name);
    const ember_st_tensor *t = ember_tensor_store_find(L->store, full);
    int want_dims = d1 < 0 ? 1 : 2;
    int64_t want_shape[2] = {d0, d1};
    char want[96], found[96];
    ember_st_describe(EMBER_DT_F32, want_dims, want_shape, want, sizeof want);
    if (!t) {
        if (optional)
            return EMBER_OK;
        return ember_error(EMBER_E_MODEL, "model.safetensors: required tensor '%s' (%s) is missing",
                           full, want);
    }
    if (t->dtype != EMBER_DT_F32 && t->dtype != EMBER_DT_F16 && t->dtype != EMBER_DT_BF16)
        return ember_error(EMBER_E_MODEL,
                           "%s: tensor '%s': expected F32, F16 or BF16%s, found %s",
                           t->map->path, full, want + 3,
                           ember_st_describe(t->dtype, t->n_dims, t->shape, found, sizeof found));
    bool ok = t->n_dims == want_dims && t->shape[0] == d0 && (want_dims == 1 || t->shape[1] == d1);
    if (!ok) {
        char want_dt[96];
        ember_st_describe(t->dtype, want_dims, want_shape, want_dt, sizeof want_dt);
        return ember_error(EMBER_E_MODEL, "%s: tensor '%s': expected %s, found %s", t->map->path,
                           full, want_dt,
                           ember_st_describe(t->dtype, t->n_dims, t->shape, found, sizeof found));
    }
    if (!L->have_file_dtype && kind == EMBER_W_MATRIX) {
        L->file_dtype = t->dtype;
        L->have_file_dtype = true;
    }
    ember_status st = L->drv->ops->weight_prepare(L->drv->impl, t, kind, out);
    if (st != EMBER_OK)
        return st;
    L->n_params += (int64_t)t->n_elements;
    return EMBER_OK;
}

ember_status ember_wloadf(ember_wloader *L, ember_wkind kind, int64_t d0, int64_t d1,
                          bool optional, ember_weight *out, const char *fmt, ...) {
    char name[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return ember_wload(L, name, kind, d0, d1, optional, out);
}

ember_status ember_wload_host(ember_wloader *L, const float *data, int64_t rows, int64_t cols,
                              const char *name, ember_weight *out) {
    ember_st_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = EMBER_DT_F32;
    t.n_dims = 2;
    t.shape[0] = rows;
    t.shape[1] = cols;
    t.n_elements = (uint64_t)(rows * cols);
    t.nbytes = t.n_elements * sizeof(float);
    t.data = (const uint8_t *)data;
    t.map = NULL; /* host memory: the driver copies it */
    return L->drv->ops->weight_prepare(L->drv->impl, &t, EMBER_W_TABLE, out);
}

void ember_wrelease(const ember_driver *drv, ember_weight *w) {
    if (w && (w->data || w->owned || w->packed || w->map))
        drv->ops->weight_release(drv->impl, w);
}

const ember_arch *ember_arch_for(ember_arch_id id) {
    switch (id) {
    case EMBER_ARCH_BERT: return &ember_arch_bert;
    case EMBER_ARCH_MODERNBERT: return &ember_arch_modernbert;
    }
    return NULL;
}
