/*
 * weights.c — the weight loader shared by every architecture (see arch.h):
 * checked loading, the record of what was loaded (so release is generic),
 * and small helpers every forward pass uses.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "io/mapping.h"
#include "models/arch.h"

/* Grows a pointer array by doubling. */
static int grow(void ***items, size_t *cap, size_t need) {
    if (need <= *cap)
        return 1;
    size_t cap2 = *cap ? *cap * 2 : 64;
    void **p = realloc(*items, cap2 * sizeof *p);
    if (!p)
        return 0;
    *items = p;
    *cap = cap2;
    return 1;
}

/* Records `w` before it is prepared, so a failed load releases whatever the
 * driver managed to fill in (weight_release ignores an empty weight). */
static ember_status record(ember_wloader *L, ember_weight *w) {
    ember_weight_set *s = L->set;
    if (!grow((void ***)&s->weights, &s->cap, s->n + 1))
        return ember_error(EMBER_E_NOMEM, "out of memory recording weight %zu", s->n);
    s->weights[s->n++] = w;
    return EMBER_OK;
}

void *ember_wloader_alloc(ember_wloader *L, size_t bytes) {
    ember_weight_set *s = L->set;
    if (!grow(&s->blocks, &s->cap_blocks, s->n_blocks + 1)) {
        ember_error(EMBER_E_NOMEM, "out of memory for the model's weight tables");
        return NULL;
    }
    void *p = ember_calloc(1, bytes ? bytes : 1, "weight table");
    if (p)
        s->blocks[s->n_blocks++] = p;
    return p;
}

void ember_weight_set_release(ember_weight_set *s, const ember_driver *drv) {
    /* weights first: they live inside the blocks */
    for (size_t i = 0; i < s->n; i++)
        ember_wrelease(drv, s->weights[i]);
    for (size_t i = 0; i < s->n_blocks; i++)
        free(s->blocks[i]);
    free(s->weights);
    free(s->blocks);
    memset(s, 0, sizeof *s);
}

/* Finds tensor prefix + name and checks it is F32/F16/BF16 of shape [d0]
 * (d1 < 0) or [d0, d1]; *out = NULL when optional and absent. */
static ember_status find_checked(ember_wloader *L, const char *name, int64_t d0, int64_t d1,
                                 bool optional, const ember_st_tensor **out) {
    *out = NULL;
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
    *out = t;
    return EMBER_OK;
}

ember_status ember_wload(ember_wloader *L, const char *name, ember_wkind kind, int64_t d0,
                         int64_t d1, bool optional, ember_weight *out) {
    memset(out, 0, sizeof *out);
    const ember_st_tensor *t;
    EMBER_TRY(find_checked(L, name, d0, d1, optional, &t));
    if (!t)
        return EMBER_OK;
    if (!L->have_file_dtype && kind == EMBER_W_MATRIX) {
        L->file_dtype = t->dtype;
        L->have_file_dtype = true;
    }
    EMBER_TRY(record(L, out));
    ember_status st = L->drv->ops->weight_prepare(L->drv->impl, t, kind, out);
    if (st != EMBER_OK)
        return st;
    L->n_params += (int64_t)t->n_elements;
    return EMBER_OK;
}

ember_status ember_wload_stacked(ember_wloader *L, const char *const *names, int n, int64_t d0,
                                 int64_t d1, ember_wkind kind, ember_weight *out) {
    memset(out, 0, sizeof *out);
    if (!L->stack_weights)
        return ember_error(EMBER_E_UNSUPPORTED, "stacked weights need a driver that copies them");
    const ember_st_tensor *t[8];
    if (n < 1 || n > 8)
        return ember_error(EMBER_E_INTERNAL, "ember_wload_stacked: %d tensors", n);
    for (int i = 0; i < n; i++) {
        EMBER_TRY(find_checked(L, names[i], d0, d1, false, &t[i]));
        if (t[i]->dtype != t[0]->dtype)
            return ember_error(EMBER_E_UNSUPPORTED, "'%s' and '%s' differ in dtype", names[0],
                               names[i]);
    }
    const size_t each = (size_t)t[0]->nbytes;
    uint8_t *buf = ember_malloc(each * (size_t)n, "stacked weight");
    if (!buf)
        return EMBER_E_NOMEM;
    /* the file's pages go once copied, as the drivers' own copies do:
     * mapped and touched, they would count in the resident set for the
     * model's lifetime */
    for (int i = 0; i < n; i++) {
        memcpy(buf + each * (size_t)i, t[i]->data, each);
        if (t[i]->map)
            ember_mapping_drop_pages(t[i]->map, t[i]->data, each);
    }
    ember_st_tensor st_t;
    memset(&st_t, 0, sizeof st_t);
    st_t.name = t[0]->name;
    st_t.dtype = t[0]->dtype;
    st_t.n_dims = d1 < 0 ? 1 : 2;
    st_t.shape[0] = d0 * n;
    st_t.shape[1] = d1 < 0 ? 0 : d1;
    st_t.n_elements = t[0]->n_elements * (uint64_t)n;
    st_t.nbytes = each * (size_t)n;
    st_t.data = buf;
    st_t.map = NULL; /* host memory: the (device) driver copies it */
    if (!L->have_file_dtype && kind == EMBER_W_MATRIX) {
        L->file_dtype = t[0]->dtype;
        L->have_file_dtype = true;
    }
    ember_status st = record(L, out);
    if (st == EMBER_OK)
        st = L->drv->ops->weight_prepare(L->drv->impl, &st_t, kind, out);
    free(buf);
    if (st == EMBER_OK)
        L->n_params += (int64_t)st_t.n_elements;
    return st;
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
    memset(out, 0, sizeof *out);
    EMBER_TRY(record(L, out));
    return L->drv->ops->weight_prepare(L->drv->impl, &t, EMBER_W_TABLE, out);
}

ember_status ember_wread_f32(ember_wloader *L, const char *name, int64_t d0, int64_t d1,
                             float **out) {
    *out = NULL;
    char full[512];
    snprintf(full, sizeof full, "%s%s", L->prefix, name);
    const ember_st_tensor *t = ember_tensor_store_find(L->store, full);
    if (!t)
        return ember_error(EMBER_E_MODEL, "model.safetensors: required tensor '%s' [%lld, %lld] is missing",
                           full, (long long)d0, (long long)d1);
    if (t->n_dims != 2 || t->shape[0] != d0 || t->shape[1] != d1 ||
        (t->dtype != EMBER_DT_F32 && t->dtype != EMBER_DT_F16 && t->dtype != EMBER_DT_BF16))
        return ember_error(EMBER_E_MODEL, "%s: tensor '%s': expected F32, F16 or BF16 [%lld, %lld]",
                           t->map->path, full, (long long)d0, (long long)d1);
    float *v = ember_malloc(sizeof(float) * (size_t)(d0 * d1), full);
    if (!v)
        return EMBER_E_NOMEM;
    for (int64_t i = 0; i < d0 * d1; i++) {
        uint16_t h;
        if (t->dtype == EMBER_DT_F32) {
            memcpy(&v[i], t->data + 4 * i, 4);
        } else {
            memcpy(&h, t->data + 2 * i, 2);
            v[i] = t->dtype == EMBER_DT_F16 ? ember_f16_to_f32(h) : ember_bf16_to_f32(h);
        }
    }
    L->n_params += d0 * d1;
    *out = v;
    return EMBER_OK;
}

ember_status ember_wload_rope_table(ember_wloader *L, int32_t head_dim, int64_t rows, float theta,
                                    const char *name, ember_weight *out) {
    const int32_t d = head_dim, half = d / 2;
    float *table = ember_malloc(sizeof(float) * (size_t)rows * (size_t)d, "rope table");
    float *inv = ember_malloc(sizeof(float) * (size_t)(half > 0 ? half : 1), "rope table");
    if (!table || !inv) {
        free(table);
        free(inv);
        return EMBER_E_NOMEM;
    }
    for (int32_t i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)d;
        inv[i] = 1.0f / powf(theta, e);
    }
    for (int64_t p = 0; p < rows; p++) {
        for (int32_t i = 0; i < half; i++) {
            float angle = (float)p * inv[i];
            table[p * d + i] = (float)cos((double)angle);
            table[p * d + half + i] = (float)sin((double)angle);
        }
    }
    ember_status st = ember_wload_host(L, table, rows, d, name, out);
    free(table);
    free(inv);
    return st;
}

ember_status ember_fwd_alloc(const ember_fwd *f, int64_t rows, int64_t cols, ember_view *out) {
    void *p = ember_arena_alloc(f->arena, ember_dt_size(f->act) * (size_t)rows * (size_t)cols);
    if (!p)
        return ember_error(EMBER_E_INTERNAL, "arena exhausted allocating a %lldx%lld activation",
                           (long long)rows, (long long)cols);
    *out = ember_view_of(p, f->act, rows, cols, cols);
    return EMBER_OK;
}

void ember_wrelease(const ember_driver *drv, ember_weight *w) {
    if (w && (w->data || w->owned || w->packed || w->map))
        drv->ops->weight_release(drv->impl, w);
}
