/*
 * _ember.c: the CPython extension behind the `ember` Python package.
 *
 * A thin client of the public C API (include/ember.h) only. The Python layer
 * (ember/__init__.py) does argument handling and sentence-transformers
 * semantics; this module owns the model, a pool of execution contexts and
 * the calls that run without the GIL:
 *
 *   - Model(path, driver, dtype, threads, max_seq_length, revision,
 *     allow_download): ember_model_load (the GIL is released while loading).
 *   - Model.embed_texts(texts, out, ...) / Model.embed_tokens(ids, out, ...):
 *     fill `out`, a writable C-contiguous float32 buffer the caller allocated
 *     once (a numpy array), in place; the GIL is released during tokenization
 *     and the forward pass.
 *   - Model.tokenize(texts, prompt, truncate): token ids per text.
 *
 * Thread safety: an ember_model is immutable and shared; each call borrows
 * an ember_ctx from the model's pool (a mutex-protected free list), creating
 * one when every context is busy, so N Python threads run with N contexts
 * and never share one.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */
/* ------------------------------------------------------------------------ */

/* Raises the Python exception for a failed Ember call. Must run on the thread
 * that made the call, before any other Ember call (ember_last_error is per
 * thread). */
static PyObject *raise_status(ember_status st, const char *what)
{
    const char *msg = ember_last_error();
    PyObject *type = PyExc_RuntimeError;
    switch (st) {
    case EMBER_E_NOT_FOUND:
        type = PyExc_FileNotFoundError;
        break;
    case EMBER_E_INVALID_ARGUMENT:
    case EMBER_E_TOO_LONG:
        type = PyExc_ValueError;
        break;
    case EMBER_E_NOMEM:
        type = PyExc_MemoryError;
        break;
    case EMBER_E_NETWORK:
        type = PyExc_ConnectionError;
        break;
    case EMBER_E_AUTH:
        type = PyExc_PermissionError;
        break;
    default:
        break;
    }
    if (msg && msg[0])
        PyErr_Format(type, "%s: %s (%s)", what, msg, ember_status_str(st));
    else
        PyErr_Format(type, "%s: %s", what, ember_status_str(st));
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Context pool                                                               */
/* ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    ember_model *model;
    int32_t n_threads;
    pthread_mutex_t mu; /* guards free_ctx / n_free / cap */
    ember_ctx **free_ctx;
    int n_free;
    int cap;
    int n_ctx; /* contexts created and not freed */
    int mu_ok;
} ModelObject;

/* Borrows a context (called without the GIL). */
static ember_status pool_acquire(ModelObject *self, ember_ctx **out)
{
    *out = NULL;
    pthread_mutex_lock(&self->mu);
    if (self->n_free > 0) {
        *out = self->free_ctx[--self->n_free];
        pthread_mutex_unlock(&self->mu);
        return EMBER_OK;
    }
    pthread_mutex_unlock(&self->mu);
    /* the device's pass sizes (GPU: 512 sequences, 65,536 tokens) */
    ember_ctx_params cp = ember_model_ctx_params(self->model);
    cp.n_threads = self->n_threads;
    ember_status st = ember_ctx_init(self->model, &cp, out);
    if (st == EMBER_OK) {
        pthread_mutex_lock(&self->mu);
        self->n_ctx++;
        pthread_mutex_unlock(&self->mu);
    }
    return st;
}

/* Returns a context to the pool (called without the GIL). */
static void pool_release(ModelObject *self, ember_ctx *ctx)
{
    if (!ctx)
        return;
    pthread_mutex_lock(&self->mu);
    if (self->n_free == self->cap) {
        int ncap = self->cap ? self->cap * 2 : 4;
        ember_ctx **p = realloc(self->free_ctx, (size_t)ncap * sizeof *p);
        if (!p) {
            self->n_ctx--;
            pthread_mutex_unlock(&self->mu);
            ember_ctx_free(ctx);
            return;
        }
        self->free_ctx = p;
        self->cap = ncap;
    }
    self->free_ctx[self->n_free++] = ctx;
    pthread_mutex_unlock(&self->mu);
}

/* ------------------------------------------------------------------------ */
/* Model                                                                      */
/* ------------------------------------------------------------------------ */

static void Model_dealloc(ModelObject *self)
{
    if (self->mu_ok) {
        for (int i = 0; i < self->n_free; i++)
            ember_ctx_free(self->free_ctx[i]);
        free(self->free_ctx);
        pthread_mutex_destroy(&self->mu);
    }
    ember_model_free(self->model);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Model_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    ModelObject *self = (ModelObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    if (pthread_mutex_init(&self->mu, NULL) != 0) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->mu_ok = 1;
    return (PyObject *)self;
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "driver", "dtype", "threads", "max_seq_length", "revision",
                             "allow_download", NULL};
    const char *path = NULL, *driver = NULL, *revision = NULL;
    int dtype = 0, threads = 0, max_seq = 0, allow_download = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|ziiizp", kwlist, &path, &driver, &dtype,
                                     &threads, &max_seq, &revision, &allow_download))
        return -1;
    if (self->model) {
        PyErr_SetString(PyExc_RuntimeError, "Model is already initialised");
        return -1;
    }
    if (dtype < EMBER_DTYPE_AUTO || dtype > EMBER_DTYPE_INT8) {
        PyErr_SetString(PyExc_ValueError, "dtype out of range");
        return -1;
    }
    if (threads < 0 || threads > 1024) {
        PyErr_SetString(PyExc_ValueError, "threads must be in [0, 1024] (0 = all CPUs)");
        return -1;
    }
    if (max_seq < 0) {
        PyErr_SetString(PyExc_ValueError, "max_seq_length must be positive");
        return -1;
    }
    ember_model_params mp = ember_model_default_params();
    mp.driver = driver;
    mp.dtype = (ember_dtype)dtype;
    mp.max_seq_length = max_seq;
    mp.revision = revision;
    mp.allow_download = allow_download;
    ember_model *m = NULL;
    ember_status st;
    Py_BEGIN_ALLOW_THREADS
    st = ember_model_load(path, &mp, &m);
    Py_END_ALLOW_THREADS
    if (st != EMBER_OK) {
        raise_status(st, "cannot load model");
        return -1;
    }
    self->model = m;
    self->n_threads = threads;
    return 0;
}

#define CHECK_MODEL(self)                                                            \
    do {                                                                             \
        if (!(self)->model) {                                                        \
            PyErr_SetString(PyExc_RuntimeError, "Model is not initialised");         \
            return NULL;                                                             \
        }                                                                            \
    } while (0)

static PyObject *Model_get_dim(ModelObject *self, void *closure)
{
    CHECK_MODEL(self);
    return PyLong_FromLong(ember_model_dim(self->model));
}

static PyObject *Model_get_max_tokens(ModelObject *self, void *closure)
{
    CHECK_MODEL(self);
    return PyLong_FromLong(ember_model_max_tokens(self->model));
}

static PyObject *Model_get_normalize(ModelObject *self, void *closure)
{
    CHECK_MODEL(self);
    return PyBool_FromLong(ember_model_normalize(self->model));
}

static PyObject *Model_get_n_contexts(ModelObject *self, void *closure)
{
    pthread_mutex_lock(&self->mu);
    int n = self->n_ctx;
    pthread_mutex_unlock(&self->mu);
    return PyLong_FromLong(n);
}

static PyObject *str_or_none(const char *s)
{
    if (!s)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

static int dict_set(PyObject *d, const char *key, PyObject *v)
{
    if (!v)
        return -1;
    int rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

static PyObject *Model_info(ModelObject *self, PyObject *unused)
{
    CHECK_MODEL(self);
    ember_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    ember_status st = ember_model_get_info(self->model, &info);
    if (st != EMBER_OK)
        return raise_status(st, "model info");
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (dict_set(d, "architecture", str_or_none(info.architecture)) ||
        dict_set(d, "source", str_or_none(info.source)) ||
        dict_set(d, "directory", str_or_none(info.directory)) ||
        dict_set(d, "dim", PyLong_FromLong(info.dim)) ||
        dict_set(d, "hidden_size", PyLong_FromLong(info.hidden_size)) ||
        dict_set(d, "n_layers", PyLong_FromLong(info.n_layers)) ||
        dict_set(d, "n_heads", PyLong_FromLong(info.n_heads)) ||
        dict_set(d, "intermediate_size", PyLong_FromLong(info.intermediate_size)) ||
        dict_set(d, "vocab_size", PyLong_FromLong(info.vocab_size)) ||
        dict_set(d, "max_position_embeddings", PyLong_FromLong(info.max_position_embeddings)) ||
        dict_set(d, "max_tokens", PyLong_FromLong(info.max_tokens)) ||
        dict_set(d, "pooling", str_or_none(ember_pooling_name(info.pooling))) ||
        dict_set(d, "normalize", PyBool_FromLong(info.normalize)) ||
        dict_set(d, "pooling_from_files", PyBool_FromLong(info.pooling_from_files)) ||
        dict_set(d, "file_dtype", str_or_none(info.file_dtype)) ||
        dict_set(d, "compute_dtype", str_or_none(info.compute_dtype)) ||
        dict_set(d, "driver", str_or_none(info.driver)) ||
        dict_set(d, "cpu_features", str_or_none(info.cpu_features)) ||
        dict_set(d, "kernels", str_or_none(info.kernels)) ||
        dict_set(d, "n_parameters", PyLong_FromLongLong(info.n_parameters)) ||
        dict_set(d, "has_tokenizer", PyBool_FromLong(info.has_tokenizer)) ||
        dict_set(d, "lowercase_input", PyBool_FromLong(info.lowercase_input))) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *Model_prompts(ModelObject *self, PyObject *unused)
{
    CHECK_MODEL(self);
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    for (int32_t i = 0;; i++) {
        const char *name = ember_model_prompt_name(self->model, i);
        const char *text = ember_model_prompt_text(self->model, i);
        if (!name || !text)
            break;
        PyObject *v = str_or_none(text);
        if (!v || PyDict_SetItemString(d, name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *Model_default_prompt_name(ModelObject *self, PyObject *unused)
{
    CHECK_MODEL(self);
    return str_or_none(ember_model_default_prompt_name(self->model));
}

/* ---- texts --------------------------------------------------------------- */

/* UTF-8 views of a tuple of str, kept alive by the tuple (and, for strings
 * with lone surrogates, by `holders`, which owns their "surrogatepass" bytes:
 * invalid UTF-8 that Ember replaces with U+FFFD). */
typedef struct {
    PyObject *tuple;
    PyObject *holders;
    const char **texts;
    size_t *lens;
    Py_ssize_t n;
} TextBatch;

static void textbatch_free(TextBatch *tb)
{
    Py_XDECREF(tb->tuple);
    Py_XDECREF(tb->holders);
    free(tb->texts);
    free(tb->lens);
    memset(tb, 0, sizeof *tb);
}

static int textbatch_init(TextBatch *tb, PyObject *seq)
{
    memset(tb, 0, sizeof *tb);
    if (PyUnicode_Check(seq) || PyBytes_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, "expected a list of str");
        return -1;
    }
    tb->tuple = PySequence_Tuple(seq); /* our own snapshot: immune to mutation */
    if (!tb->tuple) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "expected a list of str, not %.100s",
                         Py_TYPE(seq)->tp_name);
        }
        return -1;
    }
    tb->n = PyTuple_GET_SIZE(tb->tuple);
    size_t n = tb->n > 0 ? (size_t)tb->n : 1;
    tb->texts = malloc(n * sizeof *tb->texts);
    tb->lens = malloc(n * sizeof *tb->lens);
    if (!tb->texts || !tb->lens) {
        textbatch_free(tb);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < tb->n; i++) {
        PyObject *s = PyTuple_GET_ITEM(tb->tuple, i);
        if (!PyUnicode_Check(s)) {
            PyErr_Format(PyExc_TypeError, "sentences[%zd] must be str, not %.100s", i,
                         Py_TYPE(s)->tp_name);
            textbatch_free(tb);
            return -1;
        }
        Py_ssize_t len = 0;
        const char *u = PyUnicode_AsUTF8AndSize(s, &len);
        if (!u) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
                textbatch_free(tb);
                return -1;
            }
            PyErr_Clear();
            PyObject *b = PyUnicode_AsEncodedString(s, "utf-8", "surrogatepass");
            if (!b) {
                textbatch_free(tb);
                return -1;
            }
            if (!tb->holders && !(tb->holders = PyList_New(0))) {
                Py_DECREF(b);
                textbatch_free(tb);
                return -1;
            }
            int rc = PyList_Append(tb->holders, b);
            Py_DECREF(b);
            if (rc < 0) {
                textbatch_free(tb);
                return -1;
            }
            u = PyBytes_AS_STRING(b);
            len = PyBytes_GET_SIZE(b);
        }
        tb->texts[i] = u;
        tb->lens[i] = (size_t)len;
    }
    return 0;
}

/* The output buffer: writable, C-contiguous, float32, at least n*dim floats. */
static int get_out(PyObject *out, Py_buffer *view, int64_t need)
{
    if (PyObject_GetBuffer(out, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != 4 || !view->format || strcmp(view->format, "f") != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "out must be a float32 buffer");
        return -1;
    }
    if (view->len / 4 < need) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "out is too small");
        return -1;
    }
    return 0;
}

static int fill_opts(ember_embed_options *o, int normalize, int dims, const char *prompt,
                     int truncate, int side)
{
    *o = ember_embed_default_options();
    if (normalize < -1 || normalize > 1 || dims < 0 || side < 0 || side > 1) {
        PyErr_SetString(PyExc_ValueError, "embedding options out of range");
        return -1;
    }
    o->normalize = normalize;
    o->dimensions = dims;
    o->prompt = prompt && prompt[0] ? prompt : NULL;
    o->truncate = truncate ? 1 : 0;
    o->truncation_side = side ? EMBER_TRUNCATE_LEFT : EMBER_TRUNCATE_RIGHT;
    return 0;
}

static PyObject *stats_tuple(const ember_embed_stats *s)
{
    return Py_BuildValue("(LLLL)", (long long)s->n_tokens, (long long)s->n_truncated,
                         (long long)s->n_invalid_utf8, (long long)s->n_forward_passes);
}

/* embed_texts(texts, out, normalize=-1, dimensions=0, prompt=None, truncate=True,
 *             truncation_side=0, batch_size=0, progress=None) -> stats tuple */
static PyObject *Model_embed_texts(ModelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"texts", "out", "normalize", "dimensions", "prompt", "truncate",
                             "truncation_side", "batch_size", "progress", NULL};
    PyObject *seq, *out, *progress = Py_None;
    int normalize = -1, dims = 0, truncate = 1, side = 0;
    Py_ssize_t batch = 0;
    const char *prompt = NULL;
    CHECK_MODEL(self);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|iizpinO", kwlist, &seq, &out, &normalize,
                                     &dims, &prompt, &truncate, &side, &batch, &progress))
        return NULL;
    ember_embed_options o;
    if (fill_opts(&o, normalize, dims, prompt, truncate, side) < 0)
        return NULL;
    if (batch < 0) {
        PyErr_SetString(PyExc_ValueError, "batch_size must be positive");
        return NULL;
    }
    if (progress != Py_None && !PyCallable_Check(progress)) {
        PyErr_SetString(PyExc_TypeError, "progress must be callable or None");
        return NULL;
    }
    int64_t dim = dims > 0 ? dims : ember_model_dim(self->model);
    TextBatch tb;
    if (textbatch_init(&tb, seq) < 0)
        return NULL;
    Py_buffer view;
    if (get_out(out, &view, (int64_t)tb.n * dim) < 0) {
        textbatch_free(&tb);
        return NULL;
    }
    float *dst = view.buf;
    int64_t cap = view.len / 4;
    int64_t n = tb.n, step = batch > 0 ? (int64_t)batch : (n > 0 ? n : 1);
    ember_embed_stats total = {0, 0, 0, 0};
    ember_status st = EMBER_OK;
    ember_ctx *ctx = NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pool_acquire(self, &ctx);
    Py_END_ALLOW_THREADS
    if (st != EMBER_OK) {
        raise_status(st, "cannot create an execution context");
        goto fail;
    }
    for (int64_t i = 0; i < n; i += step) {
        int64_t m = n - i < step ? n - i : step;
        ember_embed_stats s = {0, 0, 0, 0};
        Py_BEGIN_ALLOW_THREADS
        st = ember_embed_texts(ctx, tb.texts + i, tb.lens + i, m, &o, dst + i * dim,
                               cap - i * dim, &s);
        Py_END_ALLOW_THREADS
        if (st != EMBER_OK) {
            raise_status(st, "encode failed");
            goto fail;
        }
        total.n_tokens += s.n_tokens;
        total.n_truncated += s.n_truncated;
        total.n_invalid_utf8 += s.n_invalid_utf8;
        total.n_forward_passes += s.n_forward_passes;
        if (progress != Py_None) {
            PyObject *r = PyObject_CallFunction(progress, "L", (long long)m);
            if (!r)
                goto fail;
            Py_DECREF(r);
        }
    }
    Py_BEGIN_ALLOW_THREADS
    pool_release(self, ctx);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    textbatch_free(&tb);
    return stats_tuple(&total);
fail:
    if (ctx) {
        Py_BEGIN_ALLOW_THREADS
        pool_release(self, ctx);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    textbatch_free(&tb);
    return NULL;
}

/* ---- token ids ----------------------------------------------------------- */

/* Flattens a sequence of sequences of int into CSR form. */
static int ids_to_csr(PyObject *seqs, int32_t **out_ids, int64_t **out_offsets, int64_t *out_n)
{
    *out_ids = NULL;
    *out_offsets = NULL;
    if (PyUnicode_Check(seqs) || PyBytes_Check(seqs)) {
        PyErr_SetString(PyExc_TypeError, "expected a list of lists of token ids");
        return -1;
    }
    PyObject *outer = PySequence_Fast(seqs, "expected a list of lists of token ids");
    if (!outer)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(outer);
    int64_t *offsets = malloc(((size_t)n + 1) * sizeof *offsets);
    size_t cap = 256, len = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!offsets || !ids) {
        PyErr_NoMemory();
        goto fail;
    }
    offsets[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PySequence_Fast_GET_ITEM(outer, i);
        if (PyUnicode_Check(row) || PyBytes_Check(row)) {
            PyErr_Format(PyExc_TypeError, "ids[%zd] must be a sequence of int", i);
            goto fail;
        }
        PyObject *inner = PySequence_Fast(row, "each item must be a sequence of int");
        if (!inner)
            goto fail;
        Py_ssize_t m = PySequence_Fast_GET_SIZE(inner);
        if (len + (size_t)m > cap) {
            while (len + (size_t)m > cap)
                cap *= 2;
            int32_t *p = realloc(ids, cap * sizeof *ids);
            if (!p) {
                Py_DECREF(inner);
                PyErr_NoMemory();
                goto fail;
            }
            ids = p;
        }
        for (Py_ssize_t j = 0; j < m; j++) {
            PyObject *v = PySequence_Fast_GET_ITEM(inner, j);
            PyObject *idx = PyNumber_Index(v);
            if (!idx) {
                Py_DECREF(inner);
                goto fail;
            }
            int overflow = 0;
            long long x = PyLong_AsLongLongAndOverflow(idx, &overflow);
            Py_DECREF(idx);
            if (overflow || x < 0 || x > INT32_MAX) {
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_ValueError, "ids[%zd][%zd] is not a valid token id", i, j);
                Py_DECREF(inner);
                goto fail;
            }
            ids[len++] = (int32_t)x;
        }
        Py_DECREF(inner);
        offsets[i + 1] = (int64_t)len;
    }
    Py_DECREF(outer);
    *out_ids = ids;
    *out_offsets = offsets;
    *out_n = n;
    return 0;
fail:
    Py_DECREF(outer);
    free(offsets);
    free(ids);
    return -1;
}

/* embed_tokens(ids, out, normalize=-1, dimensions=0) -> stats tuple */
static PyObject *Model_embed_tokens(ModelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ids", "out", "normalize", "dimensions", NULL};
    PyObject *seqs, *out;
    int normalize = -1, dims = 0;
    CHECK_MODEL(self);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|ii", kwlist, &seqs, &out, &normalize, &dims))
        return NULL;
    ember_embed_options o;
    if (fill_opts(&o, normalize, dims, NULL, 1, 0) < 0)
        return NULL;
    int64_t dim = dims > 0 ? dims : ember_model_dim(self->model);
    int32_t *ids;
    int64_t *offsets, n = 0;
    if (ids_to_csr(seqs, &ids, &offsets, &n) < 0)
        return NULL;
    Py_buffer view;
    if (get_out(out, &view, n * dim) < 0) {
        free(ids);
        free(offsets);
        return NULL;
    }
    ember_embed_stats s = {0, 0, 0, 0};
    ember_ctx *ctx = NULL;
    ember_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pool_acquire(self, &ctx);
    if (st == EMBER_OK && n > 0)
        st = ember_embed_tokens(ctx, ids, offsets, n, &o, view.buf, view.len / 4, &s);
    Py_END_ALLOW_THREADS
    /* read the error before pool_release could touch Ember again */
    PyObject *ret = st == EMBER_OK ? stats_tuple(&s) : raise_status(st, "encode failed");
    Py_BEGIN_ALLOW_THREADS
    pool_release(self, ctx);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    free(ids);
    free(offsets);
    return ret;
}

/* tokenize(texts, prompt=None, truncate=True, truncation_side=0) -> list[list[int]] */
static PyObject *Model_tokenize(ModelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"texts", "prompt", "truncate", "truncation_side", NULL};
    PyObject *seq;
    const char *prompt = NULL;
    int truncate = 1, side = 0;
    CHECK_MODEL(self);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|zpi", kwlist, &seq, &prompt, &truncate, &side))
        return NULL;
    ember_embed_options o;
    if (fill_opts(&o, -1, 0, prompt, truncate, side) < 0)
        return NULL;
    TextBatch tb;
    if (textbatch_init(&tb, seq) < 0)
        return NULL;
    int32_t *ids = NULL;
    int64_t *offsets = NULL;
    ember_status st = EMBER_OK;
    if (tb.n > 0) {
        Py_BEGIN_ALLOW_THREADS
        st = ember_model_tokenize_texts(self->model, tb.texts, tb.lens, tb.n, &o, &ids, &offsets,
                                        NULL);
        Py_END_ALLOW_THREADS
    }
    if (st != EMBER_OK) {
        textbatch_free(&tb);
        return raise_status(st, "tokenize failed");
    }
    PyObject *res = PyList_New(tb.n);
    for (Py_ssize_t i = 0; res && i < tb.n; i++) {
        int64_t a = offsets[i], b = offsets[i + 1];
        PyObject *row = PyList_New((Py_ssize_t)(b - a));
        if (!row) {
            Py_CLEAR(res);
            break;
        }
        for (int64_t k = a; k < b; k++) {
            PyObject *v = PyLong_FromLong(ids[k]);
            if (!v) {
                Py_DECREF(row);
                Py_CLEAR(res);
                break;
            }
            PyList_SET_ITEM(row, (Py_ssize_t)(k - a), v);
        }
        if (res)
            PyList_SET_ITEM(res, i, row);
    }
    ember_free(ids);
    ember_free(offsets);
    textbatch_free(&tb);
    return res;
}

/* id_to_token(id) -> str | None */
/* rerank(query, texts, out, raw_scores=False, truncate=True) -> stats tuple:
 * out (len(texts) x num_labels float32) gets ember_rerank's scores. */
static PyObject *Model_rerank(ModelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"query", "texts", "out", "raw_scores", "truncate", NULL};
    PyObject *seq, *out;
    const char *query;
    Py_ssize_t query_len;
    int raw = 0, truncate = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s#OO|pp", kwlist, &query, &query_len, &seq, &out,
                                     &raw, &truncate))
        return NULL;
    const int32_t labels = ember_model_num_labels(self->model);
    if (labels <= 0) {
        PyErr_SetString(PyExc_ValueError,
                        "the model is not a cross-encoder (config.json names no *ForSequenceClassification head)");
        return NULL;
    }
    TextBatch tb;
    if (textbatch_init(&tb, seq) < 0)
        return NULL;
    Py_buffer view;
    if (get_out(out, &view, (int64_t)tb.n * labels) < 0) {
        textbatch_free(&tb);
        return NULL;
    }
    ember_rerank_options o = ember_rerank_default_options();
    o.raw_scores = raw;
    o.truncate = truncate;
    ember_embed_stats stats;
    memset(&stats, 0, sizeof stats);
    ember_ctx *ctx = NULL;
    ember_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pool_acquire(self, &ctx);
    if (st == EMBER_OK)
        st = ember_rerank(ctx, query, (size_t)query_len, tb.texts, tb.lens, (int64_t)tb.n, &o,
                          (float *)view.buf, view.len / 4, &stats);
    pool_release(self, ctx);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    textbatch_free(&tb);
    if (st != EMBER_OK)
        return raise_status(st, "rerank");
    return stats_tuple(&stats);
}

static PyObject *Model_get_num_labels(ModelObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong((long)ember_model_num_labels(self->model));
}

static PyObject *Model_id_to_token(ModelObject *self, PyObject *arg)
{
    CHECK_MODEL(self);
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred())
        return NULL;
    const ember_tokenizer *tok = ember_model_tokenizer(self->model);
    if (!tok || id < 0 || id > INT32_MAX)
        Py_RETURN_NONE;
    return str_or_none(ember_tokenizer_id_to_token(tok, (int32_t)id));
}

static PyMethodDef Model_methods[] = {
    {"info", (PyCFunction)Model_info, METH_NOARGS, "Description of the model (dict)."},
    {"prompts", (PyCFunction)Model_prompts, METH_NOARGS, "Prompts of the model (dict)."},
    {"default_prompt_name", (PyCFunction)Model_default_prompt_name, METH_NOARGS,
     "default_prompt_name of config_sentence_transformers.json, or None."},
    {"embed_texts", (PyCFunction)(void (*)(void))Model_embed_texts, METH_VARARGS | METH_KEYWORDS,
     "Embeds texts into a preallocated float32 buffer."},
    {"embed_tokens", (PyCFunction)(void (*)(void))Model_embed_tokens,
     METH_VARARGS | METH_KEYWORDS, "Embeds token-id sequences into a preallocated buffer."},
    {"tokenize", (PyCFunction)(void (*)(void))Model_tokenize, METH_VARARGS | METH_KEYWORDS,
     "Token ids of each text, as the embedding calls see them."},
    {"id_to_token", (PyCFunction)Model_id_to_token, METH_O, "Token string of an id, or None."},
    {"rerank", (PyCFunction)(void (*)(void))Model_rerank, METH_VARARGS | METH_KEYWORDS,
     "Cross-encoder scores of texts against a query into out."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Model_getset[] = {
    {"dim", (getter)Model_get_dim, NULL, "embedding dimension", NULL},
    {"max_tokens", (getter)Model_get_max_tokens, NULL, "longest input in tokens", NULL},
    {"normalize", (getter)Model_get_normalize, NULL, "whether the model L2-normalizes", NULL},
    {"n_contexts", (getter)Model_get_n_contexts, NULL, "execution contexts created", NULL},
    {"num_labels", (getter)Model_get_num_labels, NULL, "outputs of a cross-encoder's head (0: none)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ember._ember.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A loaded Ember model (low level; use ember.Model).",
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
    .tp_init = (initproc)Model_init,
    .tp_new = Model_new,
};

/* ------------------------------------------------------------------------ */
/* Module                                                                     */
/* ------------------------------------------------------------------------ */

static PyObject *mod_version(PyObject *m, PyObject *unused)
{
    return PyUnicode_FromString(ember_version());
}

static PyObject *mod_cpu_features(PyObject *m, PyObject *unused)
{
    return PyUnicode_FromString(ember_cpu_features());
}

static PyMethodDef module_methods[] = {
    {"version", mod_version, METH_NOARGS, "Version of the C library."},
    {"cpu_features", mod_cpu_features, METH_NOARGS, "CPU features Ember detected and uses."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_ember",
                                        "CPython binding of libember (include/ember.h).", -1,
                                        module_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ember(void);
PyMODINIT_FUNC PyInit__ember(void)
{
    if (PyType_Ready(&ModelType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(m, "Model", (PyObject *)&ModelType) < 0) {
        Py_DECREF(&ModelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
