/*
 * cuda_driver.c — the CUDA driver: weights uploaded once to device memory,
 * activations in a device arena, every op queued on the context's stream.
 *
 * Precision: with compute dtype bf16 (or auto) matrices and embedding
 * tables are bf16 and activations bf16 (act_dtype BF16); with f32 both are
 * fp32 and the matrix products run on TF32 tensor cores (EMBER_CUDA_TF32=0:
 * full fp32). Vectors (biases, norm scales) and host-computed tables (RoPE)
 * stay fp32; arithmetic inside the kernels is fp32; pooled rows are fp32.
 *
 * Matrix products: cuBLASLt, fp32 accumulation, bias and activation fused
 * as epilogues where cuBLASLt has them (bias, ReLU, GELU-tanh: cuBLASLt's
 * GELU is the tanh approximation, so exact GELU runs as a separate kernel),
 * the residual added through beta = 1 with C = residual.
 *
 * Weights are read from the safetensors mapping through a small pinned
 * staging buffer (two halves, so the copy of one chunk overlaps the fill
 * of the next); F16/F32 checkpoints are converted on the device.
 *
 * The library never aborts: every CUDA / cuBLASLt failure becomes an
 * ember_status with cudaGetErrorString in the message.
 *
 * cuBLASLt is not linked: cuda_init loads it (dlopen, cublaslt_loader.c)
 * once it has found a usable device, and every cuBLASLt call goes through
 * the table ember_lt. The CUDA runtime is linked statically (it opens
 * libcuda itself: no driver reads as "no CUDA device").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "core/log.h"
#include "core/util.h"
#include "drivers/cuda/cublaslt_loader.h"
#include "drivers/cuda/cuda_kernels.h"
#include "drivers/cuda/lt_tune.h"
#include "drivers/driver.h"
#include "io/mapping.h"

#define STAGE_BYTES ((size_t)8 << 20)      /* per half of the pinned staging buffer */
#define WORKSPACE_BYTES ((size_t)32 << 20) /* cuBLASLt workspace per context        */
#define PLAN_CACHE 64                      /* cached cuBLASLt algorithm choices     */
#define TUNED_CACHE 32                     /* timed choices, by shape and row bucket */

typedef struct cuda_impl {
    int device;
    ember_dt act;        /* F32 or BF16                                   */
    ember_dt mat;        /* dtype of matrices and file tables             */
    int tf32;
    cudaStream_t load;   /* weight uploads                                */
    void *pinned[2];     /* staging, STAGE_BYTES each                     */
    void *stage_dev[2];  /* device copies of the raw chunks to convert    */
    cudaEvent_t stage_done[2];
    int stage_used[2];
    char desc[384];
} cuda_impl;

typedef struct plan {
    int64_t key[14];
    cublasLtMatmulAlgo_t algo;
    int used;
} plan;

/* A timed choice (EMBER_CUDA_LT_TUNE=1): the plan key with n replaced by
 * its bucket (the power of two >= n), so that a server's ever-changing
 * pass sizes time each shape once per bucket, not once per size. */
typedef struct tuned_algo {
    int64_t key[14];
    cublasLtMatmulAlgo_t algo;
    int used;
} tuned_algo;

typedef struct cuda_ctx {
    cuda_impl *impl;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace;
    void *arena;
    void *xconv;         /* x converted to the weights' dtype (Dense on fp32 rows) */
    size_t xconv_bytes;
    cudaEvent_t t0, t1;
    cudaEvent_t fence[2]; /* behind each slot's last download_async          */
    int timing;
    int no_f32_bias;     /* cuBLASLt refused fp32 biases with bf16 output */
    plan plans[PLAN_CACHE];
    int next_plan;
    tuned_algo tuned[TUNED_CACHE];
    int next_tuned;
    ember_lt_tuner tuner;
} cuda_ctx;

/* ---- errors ---- */

static ember_status cu_fail(const char *what, cudaError_t e) {
    if (e == cudaErrorMemoryAllocation)
        return ember_error(EMBER_E_NOMEM, "cuda: %s: out of device memory (%s)", what,
                           cudaGetErrorString(e));
    return ember_error(EMBER_E_INTERNAL, "cuda: %s: %s (%s)", what, cudaGetErrorString(e),
                       cudaGetErrorName(e));
}

#define CU_TRY(what, call)                                                                     \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess)                                                                 \
            return cu_fail(what, e_);                                                          \
    } while (0)

/* A launcher's status (an int holding a cudaError_t). */
#define KERNEL_TRY(op, call)                                                                   \
    do {                                                                                       \
        int e_ = (call);                                                                       \
        if (e_ != 0)                                                                           \
            return cu_fail(op, (cudaError_t)e_);                                              \
    } while (0)

static ember_status lt_fail(const char *what, cublasStatus_t s) {
    if (!ember_lt.cublasLtGetStatusString) /* not reached: cuda_init loads it first */
        return ember_error(EMBER_E_INTERNAL, "cuda: %s: cuBLASLt status %d", what, (int)s);
    if (s == CUBLAS_STATUS_ALLOC_FAILED)
        return ember_error(EMBER_E_NOMEM, "cuda: %s: cuBLASLt could not allocate (%s)", what,
                           ember_lt.cublasLtGetStatusString(s));
    return ember_error(s == CUBLAS_STATUS_NOT_SUPPORTED ? EMBER_E_UNSUPPORTED : EMBER_E_INTERNAL,
                       "cuda: %s: %s (%s)", what, ember_lt.cublasLtGetStatusString(s),
                       ember_lt.cublasLtGetStatusName(s));
}

#define LT_TRY(what, call)                                                                     \
    do {                                                                                       \
        cublasStatus_t s_ = (call);                                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                       \
            return lt_fail(what, s_);                                                          \
    } while (0)

/* Whether EMBER_CUDA_FUSED_GELU=1 (read once). */
static int fused_gelu_on(void) {
    static int on = -1;
    return ecu_env_switch("EMBER_CUDA_FUSED_GELU", 0, &on);
}

/* ---- probe and lifecycle ---- */

/* Whether a CUDA device can be used: "auto" skips this driver otherwise.
 * A device is usable with cuBLASLt only: found one, the probe loads it, so
 * that without the library "auto" runs on the cpu (naming "cuda" gets the
 * loader's message from cuda_init). No device: nothing is loaded. */
static int cuda_probe(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n <= 0)
        return 0;
    return ember_cublaslt_load() == EMBER_OK;
}

static void cuda_release(void *p) {
    cuda_impl *impl = p;
    if (!impl)
        return;
    cudaSetDevice(impl->device);
    for (int i = 0; i < 2; i++) {
        if (impl->stage_done[i])
            cudaEventDestroy(impl->stage_done[i]);
        cudaFreeHost(impl->pinned[i]);
        cudaFree(impl->stage_dev[i]);
    }
    if (impl->load)
        cudaStreamDestroy(impl->load);
    free(impl);
}

static ember_status cuda_init(const ember_driver_config *cfg, void **out) {
    *out = NULL;
    int n = 0, rt = 0, drv = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    /* no libcuda at all reads as an "insufficient" driver of version 0 */
    if (drv == 0)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "no CUDA device: no NVIDIA driver is installed (cudaGetDeviceCount: %s)",
                           cudaGetErrorString(e));
    if (e == cudaErrorInsufficientDriver || (e == cudaSuccess && drv < rt))
        return ember_error(EMBER_E_UNSUPPORTED,
                           "cuda: the NVIDIA driver is too old: this build needs CUDA %d.%d, the "
                           "driver supports %d.%d (%s)",
                           rt / 1000, rt % 1000 / 10, drv / 1000, drv % 1000 / 10,
                           cudaGetErrorString(e));
    if (e != cudaSuccess || n == 0)
        return ember_error(EMBER_E_UNSUPPORTED, "no CUDA device: %s",
                           e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found 0");
    if (cfg->device < 0 || cfg->device >= n)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "cuda: no device %d (this machine has %d: "
                           "cuda:0 .. cuda:%d)", cfg->device, n, n - 1);
    struct cudaDeviceProp prop;
    CU_TRY("cudaGetDeviceProperties", cudaGetDeviceProperties(&prop, cfg->device));
    if (prop.major < 8)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "cuda: device %d (%s) has compute capability %d.%d; the CUDA driver "
                           "needs 8.0 or newer (Ampere: bf16 tensor cores)",
                           cfg->device, prop.name, prop.major, prop.minor);
    ember_dt mat;
    switch (cfg->compute_dtype) {
    case 0: /* EMBER_DTYPE_AUTO */
    case 2: /* EMBER_DTYPE_BF16 */ mat = EMBER_DT_BF16; break;
    case 1: /* EMBER_DTYPE_F32 */ mat = EMBER_DT_F32; break;
    default:
        return ember_error(EMBER_E_UNSUPPORTED,
                           "cuda: compute dtype %d is not supported (bf16 or f32; int8 runs on "
                           "the cpu driver)", cfg->compute_dtype);
    }
    /* a usable GPU: only now is cuBLASLt loaded (cublaslt_loader.c) */
    ember_status lst = ember_cublaslt_load();
    if (lst != EMBER_OK)
        return lst;
    CU_TRY("cudaSetDevice", cudaSetDevice(cfg->device));
    cuda_impl *impl = ember_calloc(1, sizeof *impl, "cuda driver");
    if (!impl)
        return EMBER_E_NOMEM;
    impl->device = cfg->device;
    impl->mat = mat;
    impl->act = mat;
    const char *tf = getenv("EMBER_CUDA_TF32");
    impl->tf32 = !(tf && tf[0] == '0');
    snprintf(impl->desc, sizeof impl->desc,
             "cuda:%d %.96s (sm_%d%d, %.1f GiB), activations %s, matmul: cuBLASLt %s%s%s, "
             "attention: %s%s, graphs for passes <= %lld tokens", cfg->device,
             prop.name, prop.major, prop.minor, (double)prop.totalGlobalMem / (1 << 30),
             mat == EMBER_DT_BF16 ? "bf16" : "fp32",
             mat == EMBER_DT_BF16 ? "bf16" : impl->tf32 ? "tf32" : "fp32",
             ember_lt_tune_enabled() ? " (candidates timed)" : "",
             mat == EMBER_DT_BF16 && fused_gelu_on() ? ", exact GELU as its tanh epilogue" : "",
             mat == EMBER_DT_BF16 ? ecu_attention_kernels() : "SIMT fp32",
             mat == EMBER_DT_BF16 && ecu_vec_rows_enabled() ? ", rows in 16-byte vectors" : "",
             (long long)ember_graph_max_tokens());
    e = cudaStreamCreateWithFlags(&impl->load, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        cuda_release(impl);
        return cu_fail("cudaStreamCreate", e);
    }
    *out = impl;
    return EMBER_OK;
}

static const char *cuda_kernels(void *impl) { return ((cuda_impl *)impl)->desc; }

/* Dense tensor-core bf16 FLOP per multiprocessor per clock, by compute
 * capability (the vendors' datasheet peaks divided by SMs x boost clock:
 * A100 312 TF, L40S 362 TF, H100 SXM 989 TF, B200 2.25 PF). TF32 runs at
 * half the bf16 rate; plain fp32 FMA at 128 (sm_80: 64) lanes x 2. */
static double cuda_peak_gflops(void *p) {
    const cuda_impl *impl = p;
    int major = 0, minor = 0, sms = 0, khz = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, impl->device) ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, impl->device) ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, impl->device) ||
        cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, impl->device))
        return 0;
    double bf16 = major >= 10 ? 8192 : major == 9 ? 4096 : major == 8 && minor == 0 ? 2048 : 1024;
    double per_clock = impl->mat == EMBER_DT_BF16 ? bf16
                       : impl->tf32              ? bf16 / 2
                                                 : (major == 8 && minor == 0 ? 128 : 256);
    return per_clock * sms * (double)khz * 1e-6; /* kHz x FLOP/clock -> GFLOP/s */
}

static int cuda_supports(void *p, ember_op_kind op, ember_dt dtype) {
    const cuda_impl *impl = p;
    return op >= 0 && op < EMBER_OP_COUNT && dtype == impl->act;
}

static ember_dt cuda_act_dtype(void *p) { return ((cuda_impl *)p)->act; }

static void cuda_ctx_free(void *p) {
    cuda_ctx *c = p;
    if (!c)
        return;
    cudaSetDevice(c->impl->device);
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    if (c->lt)
        ember_lt.cublasLtDestroy(c->lt);
    if (c->t0)
        cudaEventDestroy(c->t0);
    if (c->t1)
        cudaEventDestroy(c->t1);
    for (int i = 0; i < 2; i++)
        if (c->fence[i])
            cudaEventDestroy(c->fence[i]);
    ember_lt_tuner_free(&c->tuner);
    cudaFree(c->workspace);
    cudaFree(c->arena);
    cudaFree(c->xconv);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    free(c);
}

static ember_status ctx_setup(cuda_ctx *c, const ember_ctx_limits *lim) {
    CU_TRY("cudaSetDevice", cudaSetDevice(c->impl->device));
    CU_TRY("cudaStreamCreate", cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    LT_TRY("cublasLtCreate", ember_lt.cublasLtCreate(&c->lt));
    CU_TRY("cudaEventCreate", cudaEventCreate(&c->t0));
    CU_TRY("cudaEventCreate", cudaEventCreate(&c->t1));
    for (int i = 0; i < 2; i++)
        CU_TRY("cudaEventCreate", cudaEventCreateWithFlags(&c->fence[i], cudaEventDisableTiming));
    CU_TRY("cuBLASLt workspace (32 MiB)", cudaMalloc(&c->workspace, WORKSPACE_BYTES));
    char what[96];
    snprintf(what, sizeof what, "activation arena (%.1f MiB)",
             (double)lim->scratch_bytes / (1 << 20));
    /* EMBER_CUDA_ARENA_LIMIT_MB=N: an arena above N MiB fails as a full GPU
     * would, so a GPU check can watch the backend halve its passes */
    const char *cap = getenv("EMBER_CUDA_ARENA_LIMIT_MB");
    if (cap && *cap && (double)lim->scratch_bytes > atof(cap) * (1 << 20))
        return cu_fail(what, cudaErrorMemoryAllocation);
    CU_TRY(what, cudaMalloc(&c->arena, (size_t)lim->scratch_bytes));
    return EMBER_OK;
}

static ember_status cuda_ctx_init(void *impl, int n_threads, const ember_ctx_limits *lim,
                                  void **out, void **arena_base) {
    (void)n_threads; /* one stream per context; host threads are not used */
    if (lim->head_dim > ECU_ATTN_MAX_HEAD_DIM)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "cuda: head_dim %d is not supported (the attention kernel takes at "
                           "most %d)", lim->head_dim, ECU_ATTN_MAX_HEAD_DIM);
    cuda_ctx *c = ember_calloc(1, sizeof *c, "cuda context");
    if (!c)
        return EMBER_E_NOMEM;
    c->impl = impl;
    ember_status st = ctx_setup(c, lim);
    if (st != EMBER_OK) {
        cuda_ctx_free(c);
        return st;
    }
    *out = c;
    *arena_base = c->arena;
    return EMBER_OK;
}

static ember_status cuda_synchronize(void *p) {
    cuda_ctx *c = p;
    CU_TRY("synchronize", cudaStreamSynchronize(c->stream));
    return EMBER_OK;
}

/* Kernel time of one op: events around it on the stream. */
static void cuda_timer_start(void *p) {
    cuda_ctx *c = p;
    c->timing = cudaEventRecord(c->t0, c->stream) == cudaSuccess;
}

static double cuda_timer_stop(void *p) {
    cuda_ctx *c = p;
    float ms = 0.0f;
    if (!c->timing || cudaEventRecord(c->t1, c->stream) != cudaSuccess ||
        cudaEventSynchronize(c->t1) != cudaSuccess ||
        cudaEventElapsedTime(&ms, c->t0, c->t1) != cudaSuccess)
        return 0.0;
    return (double)ms * 1e-3;
}

/* ---- graphs ---- */

static ember_status cuda_graph_begin(void *p) {
    cuda_ctx *c = p;
    CU_TRY("cudaSetDevice", cudaSetDevice(c->impl->device));
    /* relaxed: cuBLASLt's heuristic query and cudaFuncSetAttribute are host
     * calls that may run while the stream records */
    CU_TRY("graph capture", cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeRelaxed));
    return EMBER_OK;
}

static ember_status cuda_graph_end(void *p, int keep, void **out) {
    cuda_ctx *c = p;
    *out = NULL;
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    if (e != cudaSuccess || !keep) {
        if (g)
            cudaGraphDestroy(g);
        (void)cudaGetLastError(); /* an invalidated capture is no sticky error */
        return keep ? cu_fail("graph capture", e) : EMBER_OK;
    }
    cudaGraphExec_t x = NULL;
    e = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return cu_fail("graph instantiate", e);
    }
    *out = x;
    return EMBER_OK;
}

static ember_status cuda_graph_launch(void *p, void *graph) {
    cuda_ctx *c = p;
    CU_TRY("cudaSetDevice", cudaSetDevice(c->impl->device));
    CU_TRY("graph launch", cudaGraphLaunch((cudaGraphExec_t)graph, c->stream));
    return EMBER_OK;
}

static void cuda_graph_free(void *p, void *graph) {
    cuda_ctx *c = p;
    if (!graph)
        return;
    cudaSetDevice(c->impl->device);
    cudaGraphExecDestroy((cudaGraphExec_t)graph);
}

/* From pageable host memory the copy has left `src` when this returns
 * (CUDA stages it), so the caller may reuse its buffer at once; from
 * page-locked memory (cuda_host_alloc) it is a DMA queued on the stream,
 * and the caller leaves `src` alone until a later fence or synchronize. */
static ember_status cuda_upload(void *p, void *dst, const void *src, size_t bytes) {
    cuda_ctx *c = p;
    if (!bytes)
        return EMBER_OK;
    CU_TRY("upload", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
    return EMBER_OK;
}

static ember_status cuda_download(void *p, void *dst, const void *src, size_t bytes) {
    cuda_ctx *c = p;
    if (bytes)
        CU_TRY("download", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    /* also reports an error of any kernel queued before */
    CU_TRY("download", cudaStreamSynchronize(c->stream));
    return EMBER_OK;
}

/* Overlapped passes: the backend's staging is page-locked, so a copy from
 * or to it is a DMA queued on the stream and the host goes on (from
 * pageable memory the runtime stages the copy and may wait for the
 * stream). Portable: any device may copy from it. */
static void *cuda_host_alloc(void *p, size_t bytes) {
    (void)p;
    void *h = NULL;
    if (cudaHostAlloc(&h, bytes ? bytes : 1, cudaHostAllocPortable) != cudaSuccess) {
        (void)cudaGetLastError(); /* out of page-locked memory is no sticky error */
        return NULL;
    }
    memset(h, 0, bytes);
    return h;
}

static void cuda_host_free(void *p, void *h) {
    (void)p;
    if (h)
        cudaFreeHost(h);
}

static ember_status cuda_download_async(void *p, void *dst, const void *src, size_t bytes,
                                        int slot) {
    cuda_ctx *c = p;
    if (slot < 0 || slot > 1)
        return ember_error(EMBER_E_INTERNAL, "cuda: fence slot %d (0 or 1)", slot);
    if (bytes)
        CU_TRY("download", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CU_TRY("download fence", cudaEventRecord(c->fence[slot], c->stream));
    return EMBER_OK;
}

/* Also reports an error of any kernel queued before the fence. */
static ember_status cuda_fence_wait(void *p, int slot) {
    cuda_ctx *c = p;
    if (slot < 0 || slot > 1)
        return ember_error(EMBER_E_INTERNAL, "cuda: fence slot %d (0 or 1)", slot);
    CU_TRY("download", cudaEventSynchronize(c->fence[slot]));
    return EMBER_OK;
}

/* ---- weights ---- */

static ember_status stage_init(cuda_impl *impl) {
    for (int i = 0; i < 2; i++) {
        if (impl->pinned[i])
            continue;
        CU_TRY("pinned staging buffer (2 x 8 MiB)", cudaMallocHost(&impl->pinned[i], STAGE_BYTES));
        CU_TRY("device staging buffer (2 x 8 MiB)", cudaMalloc(&impl->stage_dev[i], STAGE_BYTES));
        CU_TRY("cudaEventCreate",
               cudaEventCreateWithFlags(&impl->stage_done[i], cudaEventDisableTiming));
    }
    return EMBER_OK;
}

/* dst (n elements of dst_dt in device memory) = src (n of src_dt in host
 * memory), chunk by chunk through the two staging halves. */
static ember_status stream_tensor(cuda_impl *impl, const ember_st_tensor *t, void *dst,
                                  ember_dt dst_dt) {
    EMBER_TRY(stage_init(impl));
    const size_t es = ember_dt_size(t->dtype), ds = ember_dt_size(dst_dt);
    const size_t per = STAGE_BYTES / es, n = (size_t)t->n_elements;
    const int src_dt = t->dtype == EMBER_DT_F32 ? ECU_SRC_F32
                       : t->dtype == EMBER_DT_F16 ? ECU_SRC_F16 : ECU_SRC_BF16;
    const uint8_t *src = t->data;
    for (size_t off = 0, i = 0; off < n; off += per, i++) {
        const int b = (int)(i & 1);
        const size_t cnt = n - off < per ? n - off : per;
        if (impl->stage_used[b])
            CU_TRY("weight upload", cudaEventSynchronize(impl->stage_done[b]));
        memcpy(impl->pinned[b], src + off * es, cnt * es);
        if (t->dtype == dst_dt) {
            CU_TRY("weight upload", cudaMemcpyAsync((uint8_t *)dst + off * ds, impl->pinned[b],
                                                    cnt * es, cudaMemcpyHostToDevice, impl->load));
        } else {
            CU_TRY("weight upload", cudaMemcpyAsync(impl->stage_dev[b], impl->pinned[b], cnt * es,
                                                    cudaMemcpyHostToDevice, impl->load));
            KERNEL_TRY("weight conversion",
                       ecu_convert(impl->load, impl->stage_dev[b], src_dt,
                                   (uint8_t *)dst + off * ds, dst_dt == EMBER_DT_BF16,
                                   (int64_t)cnt));
        }
        CU_TRY("weight upload", cudaEventRecord(impl->stage_done[b], impl->load));
        impl->stage_used[b] = 1;
    }
    CU_TRY("weight upload", cudaStreamSynchronize(impl->load));
    impl->stage_used[0] = impl->stage_used[1] = 0;
    return EMBER_OK;
}

static ember_status cuda_weight_prepare(void *p, const ember_st_tensor *t, ember_wkind kind,
                                        ember_weight *w) {
    cuda_impl *impl = p;
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->name = t->name;
    w->rows = t->n_dims >= 2 ? t->shape[0] : 1;
    w->cols = t->n_dims >= 2 ? t->shape[1] : (t->n_dims == 1 ? t->shape[0] : 1);
    if (t->dtype != EMBER_DT_F32 && t->dtype != EMBER_DT_F16 && t->dtype != EMBER_DT_BF16)
        return ember_error(EMBER_E_UNSUPPORTED, "tensor '%s': dtype %s is not supported", t->name,
                           ember_dt_name(t->dtype));
    /* vectors and tables the architecture computed on the host (RoPE
     * cos|sin) stay fp32: they are small, and their precision shows */
    if (kind == EMBER_W_VECTOR || (kind == EMBER_W_TABLE && !t->map))
        w->dtype = EMBER_DT_F32;
    else
        w->dtype = impl->mat;
    CU_TRY("cudaSetDevice", cudaSetDevice(impl->device));
    const size_t bytes = (size_t)t->n_elements * ember_dt_size(w->dtype);
    void *dst = NULL;
    if (bytes) {
        char what[320];
        snprintf(what, sizeof what, "weight '%s' (%.1f MiB)", t->name, (double)bytes / (1 << 20));
        CU_TRY(what, cudaMalloc(&dst, bytes));
        ember_status st = stream_tensor(impl, t, dst, w->dtype);
        if (st != EMBER_OK) {
            cudaFree(dst);
            return st;
        }
    }
    w->data = dst;
    w->owned = dst;
    /* a vector of a bf16 model also gets a bf16 copy: cuBLASLt's bias
     * epilogue on bf16 output takes bf16 biases (fp32 ones are refused) */
    if (kind == EMBER_W_VECTOR && impl->mat == EMBER_DT_BF16 && bytes) {
        void *half = NULL;
        CU_TRY("weight (bf16 copy)", cudaMalloc(&half, (size_t)t->n_elements * 2));
        int e = ecu_cast2d(impl->load, dst, 0, 0, half, 0, 1, 1, (int64_t)t->n_elements);
        if (e == 0)
            e = (int)cudaStreamSynchronize(impl->load);
        if (e != 0) {
            cudaFree(half);
            cudaFree(dst);
            memset(w, 0, sizeof *w);
            return cu_fail("weight (bf16 copy)", (cudaError_t)e);
        }
        w->packed = half;
    }
    if (t->map) /* read once: the page cache may drop it */
        ember_mapping_drop_pages(t->map, t->data, (size_t)t->nbytes);
    return EMBER_OK;
}

static void cuda_weight_release(void *p, ember_weight *w) {
    if (!w)
        return;
    if (w->owned || w->packed) {
        cudaSetDevice(((cuda_impl *)p)->device);
        cudaFree(w->owned);
        cudaFree(w->packed);
    }
    memset(w, 0, sizeof *w);
}

/* ---- operand checks ---- */

static int view_ok(ember_view v, ember_dt dt, int64_t rows, int64_t cols) {
    return v.data && v.dtype == dt && v.rows == rows && v.cols == cols && v.ld >= cols;
}

#define CHECK_VIEW(op, name, v, DT, R, C)                                                      \
    do {                                                                                       \
        const ember_view v_ = (v);                                                             \
        const int64_t r_ = (R), c_ = (C);                                                      \
        if (!view_ok(v_, (DT), r_, c_))                                                        \
            return ember_error(EMBER_E_INTERNAL,                                               \
                               "cuda %s: operand %s is %s %lldx%lld (ld %lld), expected %s "   \
                               "%lldx%lld",                                                    \
                               op, name, v_.data ? ember_dt_name(v_.dtype) : "absent",         \
                               (long long)v_.rows, (long long)v_.cols, (long long)v_.ld,       \
                               ember_dt_name(DT), (long long)r_, (long long)c_);               \
    } while (0)

#define ACT(c) ((c)->impl->act)
#define IS_BF16(c) (ACT(c) == EMBER_DT_BF16)

/* Ops are queued from whichever thread owns the context now. */
#define ENTER(c) CU_TRY("cudaSetDevice", cudaSetDevice((c)->impl->device))

/* ---- ops ---- */

static ember_status cuda_gather(void *p, const ember_weight *table, const int32_t *idx,
                               ember_view out, int accumulate) {
    cuda_ctx *c = p;
    CHECK_VIEW("gather", "out", out, ACT(c), out.rows, table->cols);
    ENTER(c);
    KERNEL_TRY("gather", ecu_gather(c->stream, table->data, table->dtype == EMBER_DT_BF16,
                                    table->cols, idx, out.data, out.ld, out.rows, accumulate,
                                    table->gather_scale != 0.0f ? table->gather_scale : 1.0f,
                                    IS_BF16(c)));
    return EMBER_OK;
}

static ember_status cuda_select_rows(void *p, ember_view in, const ember_seqs *seqs,
                                     ember_rows which, ember_view out) {
    cuda_ctx *c = p;
    CHECK_VIEW("select_rows", "in", in, in.dtype, seqs->n_tokens, in.cols);
    CHECK_VIEW("select_rows", "out", out, in.dtype, seqs->n_seqs, in.cols);
    if (in.dtype != EMBER_DT_F32 && in.dtype != EMBER_DT_BF16)
        return ember_error(EMBER_E_INTERNAL, "cuda select_rows: %s activations",
                           ember_dt_name(in.dtype));
    if (which != EMBER_ROWS_FIRST && which != EMBER_ROWS_LAST)
        return ember_error(EMBER_E_INTERNAL, "select_rows: which = %d", (int)which);
    ENTER(c);
    KERNEL_TRY("select_rows", ecu_select_rows(c->stream, in.data, in.ld, out.data, out.ld, in.cols,
                                              seqs->n_seqs, seqs->start_dev,
                                              which == EMBER_ROWS_LAST,
                                              in.dtype == EMBER_DT_BF16));
    return EMBER_OK;
}

static ember_status cuda_layer_norm(void *p, ember_view x, ember_view residual,
                                    const ember_weight *gamma, const ember_weight *beta, float eps,
                                    ember_view out) {
    cuda_ctx *c = p;
    CHECK_VIEW("layer_norm", "x", x, ACT(c), x.rows, x.cols);
    CHECK_VIEW("layer_norm", "out", out, ACT(c), x.rows, x.cols);
    if (residual.data)
        CHECK_VIEW("layer_norm", "residual", residual, ACT(c), x.rows, x.cols);
    if (gamma->rows * gamma->cols != x.cols || (beta && beta->rows * beta->cols != x.cols))
        return ember_error(EMBER_E_INTERNAL, "cuda layer_norm: '%s' does not have %lld elements",
                           gamma->name, (long long)x.cols);
    ENTER(c);
    KERNEL_TRY("layer_norm",
               ecu_layer_norm(c->stream, x.data, x.ld, residual.data, residual.ld, gamma->data,
                              beta ? beta->data : NULL, eps, out.data, out.ld, x.rows, x.cols,
                              IS_BF16(c)));
    return EMBER_OK;
}

static ember_status cuda_rms_norm(void *p, const ember_rms_args *a) {
    cuda_ctx *c = p;
    CHECK_VIEW("rms_norm", "x", a->x, ACT(c), a->x.rows, a->x.cols);
    CHECK_VIEW("rms_norm", "out", a->out, ACT(c), a->x.rows, a->x.cols);
    if (a->group <= 0 || a->x.cols % a->group != 0 || a->w->rows * a->w->cols != a->group)
        return ember_error(EMBER_E_INTERNAL, "rms_norm: group %lld does not fit %lld columns",
                           (long long)a->group, (long long)a->x.cols);
    if (a->residual.data)
        CHECK_VIEW("rms_norm", "residual", a->residual, ACT(c), a->x.rows, a->x.cols);
    ENTER(c);
    KERNEL_TRY("rms_norm", ecu_rms_norm(c->stream, a->x.data, a->x.ld, a->w->data, a->eps,
                                        a->offset, a->group, a->residual.data, a->residual.ld,
                                        a->out.data, a->out.ld, a->x.rows, a->x.cols, IS_BF16(c)));
    return EMBER_OK;
}

static ember_status cuda_glu(void *p, ember_view in, ember_act act, ember_view out) {
    cuda_ctx *c = p;
    CHECK_VIEW("glu", "in", in, ACT(c), out.rows, 2 * out.cols);
    CHECK_VIEW("glu", "out", out, ACT(c), in.rows, out.cols);
    if (act <= EMBER_ACT_NONE || act >= EMBER_ACT_COUNT)
        return ember_error(EMBER_E_INTERNAL, "glu: activation %d", (int)act);
    ENTER(c);
    KERNEL_TRY("glu", ecu_glu(c->stream, in.data, in.ld, out.data, out.ld, in.rows, out.cols,
                              (int)act, IS_BF16(c)));
    return EMBER_OK;
}

static ember_status cuda_rope(void *p, const ember_rope_args *a) {
    cuda_ctx *c = p;
    const int32_t d = a->head_dim;
    if (d <= 0 || d % 2 || a->table->cols != d || a->q.cols % d || (a->k.data && a->k.cols % d))
        return ember_error(EMBER_E_INTERNAL, "rope: head_dim %d does not fit the operands", d);
    CHECK_VIEW("rope", "q", a->q, ACT(c), a->q.rows, a->q.cols);
    if (a->k.data)
        CHECK_VIEW("rope", "k", a->k, ACT(c), a->q.rows, a->k.cols);
    ENTER(c);
    KERNEL_TRY("rope", ecu_rope(c->stream, a->q.data, a->q.ld, a->q.cols / d, a->k.data, a->k.ld,
                                a->k.data ? a->k.cols / d : 0, a->q.rows, d, a->positions,
                                a->table->data, a->table->dtype == EMBER_DT_BF16, IS_BF16(c)));
    return EMBER_OK;
}

static ember_status cuda_attention(void *p, const ember_attn_args *a) {
    cuda_ctx *c = p;
    const ember_seqs *sq = a->seqs;
    if (a->n_heads <= 0 || a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads)
        return ember_error(EMBER_E_INTERNAL, "attention: %d heads over %d key/value heads",
                           a->n_heads, a->n_kv_heads);
    if (a->head_dim <= 0 || a->head_dim > ECU_ATTN_MAX_HEAD_DIM)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "cuda attention: head_dim %d is not supported (at most %d)",
                           a->head_dim, ECU_ATTN_MAX_HEAD_DIM);
    if (!sq->start_dev)
        return ember_error(EMBER_E_INTERNAL, "cuda attention: no device copy of the starts");
    const int64_t q_rows = a->rows == EMBER_ROWS_ALL ? sq->n_tokens : sq->n_seqs;
    const int64_t hq = (int64_t)a->n_heads * a->head_dim, hkv = (int64_t)a->n_kv_heads * a->head_dim;
    CHECK_VIEW("attention", "q", a->q, ACT(c), q_rows, hq);
    CHECK_VIEW("attention", "k", a->k, ACT(c), sq->n_tokens, hkv);
    CHECK_VIEW("attention", "v", a->v, ACT(c), sq->n_tokens, hkv);
    CHECK_VIEW("attention", "out", a->out, ACT(c), q_rows, hq);
    if (a->rel_bias && (a->rel_span < sq->max_len || a->rel_bias->rows != a->n_heads ||
                        a->rel_bias->cols != 2 * (int64_t)a->rel_span - 1 ||
                        a->rel_bias->dtype != EMBER_DT_F32))
        return ember_error(EMBER_E_INTERNAL,
                           "cuda attention: relative bias %s %lldx%lld does not fit %d heads and "
                           "span %d (sequences up to %d)",
                           ember_dt_name(a->rel_bias->dtype), (long long)a->rel_bias->rows,
                           (long long)a->rel_bias->cols, a->n_heads, a->rel_span, sq->max_len);
    if (a->k.ld != a->v.ld)
        return ember_error(EMBER_E_INTERNAL, "attention: k and v must share a row stride");
    /* the kernel reads lengths on the device; max_len sizes the grid */
    int32_t max_len = 0;
    for (int32_t s = 0; s < sq->n_seqs; s++)
        if (sq->start[s + 1] - sq->start[s] > max_len)
            max_len = sq->start[s + 1] - sq->start[s];
    ecu_attn k = {.q = a->q.data, .k = a->k.data, .v = a->v.data, .out = a->out.data,
                  .ldq = a->q.ld, .ldkv = a->k.ld, .ldo = a->out.ld, .start_dev = sq->start_dev,
                  .n_seqs = sq->n_seqs, .max_len = max_len, .n_heads = a->n_heads,
                  .n_kv_heads = a->n_kv_heads, .head_dim = a->head_dim, .scale = a->scale,
                  .window = a->window, .causal = a->causal,
                  .rows = a->rows == EMBER_ROWS_ALL ? 0 : a->rows == EMBER_ROWS_FIRST ? 1 : 2,
                  .bf16 = IS_BF16(c),
                  .rel = a->rel_bias ? (const float *)a->rel_bias->data : NULL,
                  .rel_ld = a->rel_bias ? a->rel_bias->cols : 0,
                  .rel_span = a->rel_span};
    ENTER(c);
    KERNEL_TRY("attention", ecu_attention(c->stream, &k));
    return EMBER_OK;
}

static ember_status cuda_pool(void *p, ember_view hidden, const ember_seqs *seqs, int32_t mode,
                              ember_view out) {
    cuda_ctx *c = p;
    CHECK_VIEW("pool", "hidden", hidden, hidden.dtype, seqs->n_tokens, hidden.cols);
    CHECK_VIEW("pool", "out", out, EMBER_DT_F32, seqs->n_seqs, hidden.cols);
    if (hidden.dtype != EMBER_DT_F32 && hidden.dtype != EMBER_DT_BF16)
        return ember_error(EMBER_E_INTERNAL, "cuda pool: %s activations",
                           ember_dt_name(hidden.dtype));
    if (mode < 0 || mode > 5)
        return ember_error(EMBER_E_INTERNAL, "pool: mode %d", mode);
    ENTER(c);
    KERNEL_TRY("pool", ecu_pool(c->stream, hidden.data, hidden.ld, hidden.cols, seqs->n_seqs,
                                seqs->start_dev, mode, out.data, out.ld,
                                hidden.dtype == EMBER_DT_BF16));
    return EMBER_OK;
}

/* ---- linear: cuBLASLt ----
 * Row-major y (rows, out) = x (rows, in) W^T with W [out, in] row-major is,
 * in cuBLASLt's column-major terms, y^T (out x rows, ld_y) = op(A) B with
 * A = W stored as an (in x out, ld in) matrix used transposed and
 * B = x^T (in x rows, ld_x): m = out, n = rows, k = in. The bias is a
 * per-row (of y^T) vector, which is what cuBLASLt's BIAS epilogue adds. */

static cudaDataType_t cuda_type(ember_dt dt) { return dt == EMBER_DT_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

/* Largest power of two (<= 256) dividing the address: cuBLASLt chooses
 * kernels by the alignment it is promised. */
static uint32_t align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 1 && (a % al) != 0)
        al >>= 1;
    return al;
}

typedef struct lt_descs {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, cl, dl;
    cublasLtMatmulPreference_t pref;
} lt_descs;

static void lt_descs_free(lt_descs *d) {
    if (d->pref)
        ember_lt.cublasLtMatmulPreferenceDestroy(d->pref);
    if (d->dl)
        ember_lt.cublasLtMatrixLayoutDestroy(d->dl);
    if (d->cl)
        ember_lt.cublasLtMatrixLayoutDestroy(d->cl);
    if (d->b)
        ember_lt.cublasLtMatrixLayoutDestroy(d->b);
    if (d->a)
        ember_lt.cublasLtMatrixLayoutDestroy(d->a);
    if (d->op)
        ember_lt.cublasLtMatmulDescDestroy(d->op);
}

static ember_status lt_matmul(cuda_ctx *c, lt_descs *d, const ember_linear_args *a, const void *x,
                              int64_t ldx, ember_dt xdt, cublasLtEpilogue_t epi, const void *cptr,
                              int64_t ldc, float beta, const void *bias, cudaDataType_t bias_type) {
    const int64_t m = a->w->rows, n = a->x.rows, k = a->w->cols;
    const ember_dt ydt = a->y.dtype;
    const cublasComputeType_t ct = xdt == EMBER_DT_F32 && c->impl->tf32
                                       ? CUBLAS_COMPUTE_32F_FAST_TF32
                                       : CUBLAS_COMPUTE_32F;
    LT_TRY("linear: cublasLtMatmulDescCreate",
           ember_lt.cublasLtMatmulDescCreate(&d->op, ct, CUDA_R_32F));
    const cublasOperation_t tr = CUBLAS_OP_T, nt = CUBLAS_OP_N;
    LT_TRY("linear: transa", ember_lt.cublasLtMatmulDescSetAttribute(
                                 d->op, CUBLASLT_MATMUL_DESC_TRANSA, &tr, sizeof tr));
    LT_TRY("linear: transb", ember_lt.cublasLtMatmulDescSetAttribute(
                                 d->op, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof nt));
    LT_TRY("linear: epilogue", ember_lt.cublasLtMatmulDescSetAttribute(
                                   d->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (bias) {
        LT_TRY("linear: bias", ember_lt.cublasLtMatmulDescSetAttribute(
                                   d->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        LT_TRY("linear: bias type", ember_lt.cublasLtMatmulDescSetAttribute(
                                        d->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                        sizeof bias_type));
    }
    const cudaDataType_t at = cuda_type(a->w->dtype), yt = cuda_type(ydt);
    LT_TRY("linear: layout",
           ember_lt.cublasLtMatrixLayoutCreate(&d->a, at, (uint64_t)k, (uint64_t)m, k));
    LT_TRY("linear: layout",
           ember_lt.cublasLtMatrixLayoutCreate(&d->b, at, (uint64_t)k, (uint64_t)n, ldx));
    LT_TRY("linear: layout",
           ember_lt.cublasLtMatrixLayoutCreate(&d->cl, yt, (uint64_t)m, (uint64_t)n, ldc));
    LT_TRY("linear: layout",
           ember_lt.cublasLtMatrixLayoutCreate(&d->dl, yt, (uint64_t)m, (uint64_t)n, a->y.ld));
    const void *ptrs[4] = {a->w->data, x, cptr, a->y.data};
    const uint32_t al[4] = {align_of(ptrs[0]), align_of(ptrs[1]), align_of(ptrs[2]),
                            align_of(ptrs[3])};

    /* the algorithm for this shape, from the cache or the heuristic */
    const int64_t key[14] = {m, n, k, ldx, ldc, a->y.ld, (int64_t)at, (int64_t)yt, (int64_t)epi,
                             (int64_t)ct, al[0] | (int64_t)al[1] << 16, al[2] | (int64_t)al[3] << 16,
                             beta != 0.0f, bias ? (int64_t)bias_type + 1 : 0};
    plan *pl = NULL;
    for (int i = 0; i < PLAN_CACHE && !pl; i++)
        if (c->plans[i].used && memcmp(c->plans[i].key, key, sizeof key) == 0)
            pl = &c->plans[i];
    if (!pl) {
        LT_TRY("linear: preference", ember_lt.cublasLtMatmulPreferenceCreate(&d->pref));
        const uint64_t ws = WORKSPACE_BYTES;
        LT_TRY("linear: preference",
               ember_lt.cublasLtMatmulPreferenceSetAttribute(
                   d->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        const cublasLtMatmulPreferenceAttributes_t pa[4] = {
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
        for (int i = 0; i < 4; i++)
            LT_TRY("linear: preference", ember_lt.cublasLtMatmulPreferenceSetAttribute(
                                             d->pref, pa[i], &al[i], sizeof al[i]));
        /* EMBER_CUDA_LT_TUNE=1 on a large product, outside graph capture
         * (no synchronization there): time the candidates, or reuse the
         * bucket's timed choice when cuBLASLt accepts it for this size */
        enum cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
        const int tune = ember_lt_tune_enabled() && m * n * k >= EMBER_LT_TUNE_MIN_MACS &&
                         cudaStreamIsCapturing(c->stream, &cap) == cudaSuccess &&
                         cap == cudaStreamCaptureStatusNone;
        int64_t tkey[14];
        memcpy(tkey, key, sizeof key);
        int64_t bucket = 1;
        while (bucket < n)
            bucket <<= 1;
        tkey[1] = bucket;
        tuned_algo *reuse = NULL;
        for (int i = 0; tune && i < TUNED_CACHE && !reuse; i++)
            if (c->tuned[i].used && memcmp(c->tuned[i].key, tkey, sizeof tkey) == 0)
                reuse = &c->tuned[i];
        cublasLtMatmulHeuristicResult_t h[EMBER_LT_TUNE_CANDIDATES], chk;
        int found = 0, pick = 0;
        memset(h, 0, sizeof h);
        if (reuse && ember_lt.cublasLtMatmulAlgoCheck(c->lt, d->op, d->a, d->b, d->cl, d->dl,
                                                      &reuse->algo, &chk) == CUBLAS_STATUS_SUCCESS &&
            chk.workspaceSize <= WORKSPACE_BYTES) {
            h[0].algo = reuse->algo;
            found = 1;
        } else {
            LT_TRY("linear: no cuBLASLt algorithm",
                   ember_lt.cublasLtMatmulAlgoGetHeuristic(
                       c->lt, d->op, d->a, d->b, d->cl, d->dl, d->pref,
                       tune ? EMBER_LT_TUNE_CANDIDATES : 1, h, &found));
            if (tune && found > 1) {
                const ember_lt_call call = {
                    .lt = c->lt, .op = d->op, .a = d->a, .b_type = at, .cd_type = yt,
                    .m = (uint64_t)m, .n = (uint64_t)n, .k = (uint64_t)k, .ldb = ldx,
                    .ldc = ldc, .ldd = a->y.ld, .d_elem = ember_dt_size(ydt), .A = ptrs[0],
                    .B = ptrs[1], .C = ptrs[2], .beta = beta, .workspace = c->workspace,
                    .workspace_bytes = WORKSPACE_BYTES, .stream = c->stream};
                float us0 = 0.0f, us = 0.0f;
                pick = ember_lt_tune_pick(&c->tuner, &call, h, found, &us0, &us);
                ember_log(EMBER_LOG_DEBUG,
                          "cuda linear '%s' %lldx%lldx%lld: cuBLASLt's first choice %.1f us, "
                          "candidate %d of %d %.1f us (timed on %lld rows)",
                          a->w->name ? a->w->name : "?", (long long)m, (long long)n,
                          (long long)k, us0, pick, found, us,
                          (long long)(n < EMBER_LT_TUNE_ROWS ? n : EMBER_LT_TUNE_ROWS));
                /* the bucket's entry (its algorithm refused this size) or a new one */
                tuned_algo *ta = reuse;
                if (!ta) {
                    ta = &c->tuned[c->next_tuned];
                    c->next_tuned = (c->next_tuned + 1) % TUNED_CACHE;
                }
                memcpy(ta->key, tkey, sizeof tkey);
                ta->algo = h[pick].algo;
                ta->used = 1;
            }
        }
        if (found < 1)
            return ember_error(EMBER_E_UNSUPPORTED,
                               "cuda linear '%s': cuBLASLt has no algorithm for %lldx%lldx%lld "
                               "(%s weights, %s output)",
                               a->w->name ? a->w->name : "?", (long long)m, (long long)n,
                               (long long)k, ember_dt_name(a->w->dtype), ember_dt_name(ydt));
        pl = &c->plans[c->next_plan];
        c->next_plan = (c->next_plan + 1) % PLAN_CACHE;
        memcpy(pl->key, key, sizeof key);
        pl->algo = h[pick].algo;
        pl->used = 1;
    }
    const float alpha = 1.0f;
    LT_TRY("linear: cublasLtMatmul",
           ember_lt.cublasLtMatmul(c->lt, d->op, &alpha, ptrs[0], d->a, ptrs[1], d->b, &beta,
                                   ptrs[2], d->cl, a->y.data, d->dl, &pl->algo, c->workspace,
                                   WORKSPACE_BYTES, c->stream));
    return EMBER_OK;
}

static ember_status cuda_linear(void *p, const ember_linear_args *a) {
    cuda_ctx *c = p;
    const int64_t rows = a->x.rows, out_cols = a->w->rows, in_cols = a->w->cols;
    const ember_dt ydt = a->y.dtype, wdt = a->w->dtype;
    /* y: the activation dtype, or fp32 (Dense modules on pooled rows) */
    if (ydt != ACT(c) && ydt != EMBER_DT_F32)
        return ember_error(EMBER_E_INTERNAL, "cuda linear: y is %s", ember_dt_name(ydt));
    if (a->x.dtype != ACT(c) && a->x.dtype != EMBER_DT_F32)
        return ember_error(EMBER_E_INTERNAL, "cuda linear: x is %s", ember_dt_name(a->x.dtype));
    CHECK_VIEW("linear", "x", a->x, a->x.dtype, rows, in_cols);
    CHECK_VIEW("linear", "y", a->y, ydt, rows, out_cols);
    if (a->residual.data) {
        CHECK_VIEW("linear", "residual", a->residual, ydt, rows, out_cols);
        if (a->residual.data == a->y.data && a->act != EMBER_ACT_NONE)
            return ember_error(EMBER_E_INTERNAL,
                               "linear: residual may alias y only without activation");
        if (a->residual.data == a->y.data && a->residual.ld != a->y.ld)
            return ember_error(EMBER_E_INTERNAL, "linear: residual aliases y with another stride");
    }
    if (a->bias && (a->bias->rows * a->bias->cols != out_cols || a->bias->dtype != EMBER_DT_F32))
        return ember_error(EMBER_E_INTERNAL,
                           "cuda linear: bias '%s' is %s %lldx%lld, expected an F32 vector of %lld",
                           a->bias->name ? a->bias->name : "?", ember_dt_name(a->bias->dtype),
                           (long long)a->bias->rows, (long long)a->bias->cols,
                           (long long)out_cols);
    if (wdt == EMBER_DT_F32 && ydt != EMBER_DT_F32)
        return ember_error(EMBER_E_INTERNAL, "cuda linear: fp32 weights with %s output",
                           ember_dt_name(ydt));
    if (rows == 0)
        return EMBER_OK;
    ENTER(c);
    /* cuBLASLt wants A and B of one type: x follows the weights */
    const void *x = a->x.data;
    int64_t ldx = a->x.ld;
    if (a->x.dtype != wdt) {
        const size_t need = (size_t)rows * (size_t)in_cols * ember_dt_size(wdt);
        if (need > c->xconv_bytes) {
            CU_TRY("linear", cudaStreamSynchronize(c->stream));
            cudaFree(c->xconv);
            c->xconv = NULL;
            c->xconv_bytes = 0;
            CU_TRY("linear: conversion buffer", cudaMalloc(&c->xconv, need));
            c->xconv_bytes = need;
        }
        KERNEL_TRY("linear: convert x",
                   ecu_cast2d(c->stream, a->x.data, a->x.ld, a->x.dtype == EMBER_DT_BF16, c->xconv,
                              in_cols, wdt == EMBER_DT_BF16, rows, in_cols));
        x = c->xconv;
        ldx = in_cols;
    }
    /* the epilogue: bias, and the activations cuBLASLt computes as ours
     * (ReLU; its GELU is the tanh form); the residual through C with
     * beta = 1 when no activation follows the product */
    const int bias = a->bias != NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        /* fp32 biases on bf16 output: if this cuBLASLt refuses the mixed
         * bias type, add the bias in our epilogue kernel from then on */
        const int lt_bias = bias && !(ydt == EMBER_DT_BF16 && c->no_f32_bias);
        cublasLtEpilogue_t epi = lt_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        int act_in_lt = 0;
        /* EMBER_CUDA_FUSED_GELU=1: exact GELU on bf16 outputs through
         * cuBLASLt's GELU epilogue (the tanh form, at most 4.7e-4 from the
         * exact one; on all-MiniLM-L6-v2's real weights in bf16 the cosines
         * to sentence-transformers did not move, see docs/cuda.md), saving
         * the epilogue kernel's pass over the FFN's intermediate */
        const ember_act act =
            a->act == EMBER_ACT_GELU && ydt == EMBER_DT_BF16 && fused_gelu_on() ? EMBER_ACT_GELU_TANH
                                                                                 : a->act;
        if (act == EMBER_ACT_RELU && (lt_bias || !bias)) {
            epi = lt_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
            act_in_lt = 1;
        } else if (act == EMBER_ACT_GELU_TANH && (lt_bias || !bias)) {
            epi = lt_bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
            act_in_lt = 1;
        }
        const int res_in_c = a->residual.data && a->act == EMBER_ACT_NONE;
        lt_descs d;
        memset(&d, 0, sizeof d);
        ember_linear_args la = *a;
        if (!lt_bias)
            la.bias = NULL;
        /* bf16 output: the bias's bf16 copy (made at load), which every
         * cuBLASLt takes; fp32 output: the fp32 vector */
        const int bf16_bias = lt_bias && ydt == EMBER_DT_BF16 && a->bias->packed;
        ember_status st = lt_matmul(
            c, &d, &la, x, ldx, wdt, epi, res_in_c ? a->residual.data : a->y.data,
            res_in_c ? a->residual.ld : a->y.ld, res_in_c ? 1.0f : 0.0f,
            lt_bias ? (bf16_bias ? a->bias->packed : a->bias->data) : NULL,
            bf16_bias ? CUDA_R_16BF : CUDA_R_32F);
        lt_descs_free(&d);
        /* cuBLASLt 13 answers INVALID_VALUE (not NOT_SUPPORTED) to an fp32
         * bias with bf16 output: any refusal of that plan falls back */
        if (st != EMBER_OK && lt_bias && !bf16_bias && ydt == EMBER_DT_BF16 && !c->no_f32_bias) {
            c->no_f32_bias = 1;
            continue;
        }
        EMBER_TRY(st);
        KERNEL_TRY("linear: epilogue",
                   ecu_epilogue(c->stream, a->y.data, a->y.ld,
                                bias && !lt_bias ? (const float *)a->bias->data : NULL,
                                act_in_lt ? EMBER_ACT_NONE : (int)a->act,
                                res_in_c ? NULL : a->residual.data, a->residual.ld, rows,
                                out_cols, ydt == EMBER_DT_BF16));
        return EMBER_OK;
    }
    return ember_error(EMBER_E_INTERNAL, "cuda linear: no epilogue plan");
}

const ember_driver_ops ember_cuda_driver_ops = {
    .name = "cuda",
    .is_device = 1,
    .probe = cuda_probe,
    .init = cuda_init,
    .release = cuda_release,
    .kernels = cuda_kernels,
    .peak_gflops = cuda_peak_gflops,
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
    .graph_launch = cuda_graph_launch,
    .graph_free = cuda_graph_free,
    .supports = cuda_supports,
    .act_dtype = cuda_act_dtype,
    .ctx_init = cuda_ctx_init,
    .ctx_free = cuda_ctx_free,
    .synchronize = cuda_synchronize,
    .timer_start = cuda_timer_start,
    .timer_stop = cuda_timer_stop,
    .upload = cuda_upload,
    .download = cuda_download,
    .host_alloc = cuda_host_alloc,
    .host_free = cuda_host_free,
    .download_async = cuda_download_async,
    .fence_wait = cuda_fence_wait,
    .weight_prepare = cuda_weight_prepare,
    .weight_release = cuda_weight_release,
    .gather = cuda_gather,
    .select_rows = cuda_select_rows,
    .layer_norm = cuda_layer_norm,
    .rms_norm = cuda_rms_norm,
    .linear = cuda_linear,
    .glu = cuda_glu,
    .rope = cuda_rope,
    .attention = cuda_attention,
    .pool = cuda_pool,
};
