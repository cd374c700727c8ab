/*
 * test_cuda_emu.cu — CUDA kernel bodies written against an executor
 * (src/drivers/cuda/attention_mma.cuh: the mma.sync attention kernel;
 * rows_vec.cuh: LayerNorm, the linear epilogue and the GLU in 16-byte
 * vectors) run on the CPU, so
 * their indexing and fragment arithmetic are checked where there is no GPU
 * (CI).
 *
 * The emulator runs a thread block as 128 POSIX threads: __syncthreads is a
 * barrier of the block, a warp shuffle an exchange through shared slots
 * between two barriers of the warp, and mma.m16n8k16 gathers the warp's 32
 * fragments and computes each lane's four outputs from the fragment layouts
 * of the PTX ISA (independently written here, in element coordinates, from
 * the ones the kernel's loads assume). Blocks run one after another, so
 * the body's shared memory is one buffer. The outputs are compared with a
 * double-precision attention over the same bf16 inputs: packed sequences of
 * 1-130 tokens (one, two and three query and key tiles, partial ones; 300
 * in two window cases, whose key tiles start off the 64 grid), head sizes
 * 32, 64 and 128, grouped-query heads, causal and sliding-window masks, the
 * relative-position bias table, padded row strides. cp.async copies land
 * as late as the ISA allows (at the wait that completes their group), and
 * shared memory starts as NaNs.
 *
 * Host code compiled by nvcc (CUDA C, so cuda_bf16.h's conversions are the
 * ones the GPU code uses); needs no GPU and no CUDA runtime call.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECU_BODY_FN static inline
#include "drivers/cuda/attention_mma.cuh"
#include "drivers/cuda/rows_vec.cuh"

static int g_failures = 0, g_checks = 0;
#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        g_checks++;                                                                               \
        if (!(cond)) {                                                                            \
            g_failures++;                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
        }                                                                                         \
    } while (0)

/* ---- the emulated block ---- */

/* cp.async as the GPU may do it at its latest: a thread's copies stay
 * pending until a wait_group completes their group, so a body that reads a
 * tile before waiting for it reads stale shared memory (and fails). */
#define EMU_MAX_COPIES 96
struct emu_copy {
    void *dst;
    const void *src;
    int group; /* the number of commits before it was issued */
};
struct emu_copies {
    emu_copy q[EMU_MAX_COPIES];
    int n, commits;
};

struct emu_block {
    pthread_barrier_t block, warp[MMA_NWARP];
    float xf[MMA_NWARP][32];                 /* shuffle slots          */
    int xv[MMA_NWARP][32];                   /* vote slots             */
    uint32_t xa[MMA_NWARP][32][4], xb[MMA_NWARP][32][2];
    float xc[MMA_NWARP][32][4];               /* mma fragments          */
    const uint16_t *xp[MMA_NWARP][32];        /* ldmatrix row addresses */
    int bx, by;
    void (*body)(emu_block *b, int t);        /* one thread of the kernel */
    const void *args;
    int variant;                              /* the body's template choice */
    int32_t tiles;
    unsigned char *smem;
    emu_copies cp[MMA_NWARP * 32];
    int copy_faults; /* misaligned, overflowing or never-waited copies */
};

static float bf16_half(uint32_t reg, int high) {
    uint32_t bits = (high ? reg >> 16 : reg & 0xffffu) << 16;
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

/* The lane and register that hold element (row, k) of A (16 x 16) and
 * element (k, col) of B (16 x 8) in an mma.m16n8k16 .bf16, and element
 * (row, col) of C (16 x 8): from the PTX ISA's tables, groupID = lane / 4
 * picks A's row (mod 8) and B's column, the lane's position in its group
 * picks the pair of k. */
static void a_home(int row, int k, int *lane, int *reg) {
    *lane = (row % 8) * 4 + (k % 8) / 2;
    *reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
}
static void b_home(int k, int col, int *lane, int *reg) {
    *lane = col * 4 + (k % 8) / 2;
    *reg = k >= 8 ? 1 : 0;
}
static void c_coords(int lane, int i, int *row, int *col) {
    *row = lane / 4 + (i >= 2 ? 8 : 0);
    *col = (lane % 4) * 2 + (i & 1);
}

/* ldmatrix.m8n8.x4[.trans].b16 from the PTX ISA: lanes 8j .. 8j+7 give the
 * addresses of rows 0-7 of tile j (8 consecutive b16 each); register j of
 * lane l receives tile j's elements (row l/4, columns 2(l%4) and 2(l%4)+1),
 * with .trans those of the transposed tile: (rows 2(l%4) and 2(l%4)+1,
 * column l/4). The lower-numbered element goes to the low half. */
static void emu_ldsm(emu_block *b, int t, uint32_t r[4], const void *p, bool trans) {
    const int w = t >> 5, l = t & 31;
    b->xp[w][l] = (const uint16_t *)p;
    pthread_barrier_wait(&b->warp[w]);
    for (int j = 0; j < 4; j++) {
        uint16_t lo, hi;
        if (!trans) {
            const uint16_t *row = b->xp[w][8 * j + l / 4];
            lo = row[2 * (l % 4)];
            hi = row[2 * (l % 4) + 1];
        } else {
            lo = b->xp[w][8 * j + 2 * (l % 4)][l / 4];
            hi = b->xp[w][8 * j + 2 * (l % 4) + 1][l / 4];
        }
        r[j] = (uint32_t)lo | (uint32_t)hi << 16;
    }
    pthread_barrier_wait(&b->warp[w]); /* every lane has read the addresses */
}

struct mma_emu {
    emu_block *b;
    int t;
    int tid() const { return t; }
    int bx() const { return b->bx; }
    int by() const { return b->by; }
    void sync() const { pthread_barrier_wait(&b->block); }
    float shfl_xor(float v, int mask) const {
        const int w = t >> 5, l = t & 31;
        b->xf[w][l] = v;
        pthread_barrier_wait(&b->warp[w]);
        const float r = b->xf[w][l ^ mask];
        pthread_barrier_wait(&b->warp[w]);
        return r;
    }
    void cp16(void *dst, const void *src) const {
        emu_copies &c = b->cp[t];
        if (((uintptr_t)dst | (uintptr_t)src) % 16 != 0 || c.n == EMU_MAX_COPIES) {
            __atomic_add_fetch(&b->copy_faults, 1, __ATOMIC_RELAXED);
            return;
        }
        c.q[c.n++] = emu_copy{dst, src, c.commits};
    }
    void commit() const { b->cp[t].commits++; }
    /* completes the copies of every committed group but the N newest */
    template <int N>
    void wait() const {
        emu_copies &c = b->cp[t];
        int kept = 0;
        for (int i = 0; i < c.n; i++) {
            if (c.q[i].group < c.commits - N)
                memcpy(c.q[i].dst, c.q[i].src, 16);
            else
                c.q[kept++] = c.q[i];
        }
        c.n = kept;
    }
    bool all(bool p) const {
        const int w = t >> 5, l = t & 31;
        b->xv[w][l] = p;
        pthread_barrier_wait(&b->warp[w]);
        bool r = true;
        for (int i = 0; i < 32; i++)
            r = r && b->xv[w][i];
        pthread_barrier_wait(&b->warp[w]);
        return r;
    }
    void ldsm_x4(uint32_t r[4], const void *p) const { emu_ldsm(b, t, r, p, false); }
    void ldsm_x4_trans(uint32_t r[4], const void *p) const { emu_ldsm(b, t, r, p, true); }
    void mma(float d[4], const uint32_t a[4], const uint32_t bb[2]) const {
        const int w = t >> 5, l = t & 31;
        memcpy(b->xa[w][l], a, sizeof b->xa[w][l]);
        memcpy(b->xb[w][l], bb, sizeof b->xb[w][l]);
        memcpy(b->xc[w][l], d, sizeof b->xc[w][l]);
        pthread_barrier_wait(&b->warp[w]);
        float out[4];
        for (int i = 0; i < 4; i++) {
            int row, col;
            c_coords(l, i, &row, &col);
            double acc = b->xc[w][l][i];
            for (int k = 0; k < 16; k++) {
                int la, ra, lb, rb;
                a_home(row, k, &la, &ra);
                b_home(k, col, &lb, &rb);
                acc += (double)bf16_half(b->xa[w][la][ra], k & 1) *
                       (double)bf16_half(b->xb[w][lb][rb], k & 1);
            }
            out[i] = (float)acc;
        }
        pthread_barrier_wait(&b->warp[w]); /* every lane has read the slots */
        memcpy(d, out, sizeof out);
    }
};

struct emu_thread {
    emu_block *b;
    int t;
};

static void *emu_run(void *arg) {
    emu_thread *et = (emu_thread *)arg;
    emu_copies &c = et->b->cp[et->t];
    c.n = c.commits = 0;
    et->b->body(et->b, et->t);
    if (c.n != 0) /* copies no wait completed: data the body never used */
        __atomic_add_fetch(&et->b->copy_faults, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* Runs a grid of gx x gy blocks of MMA_NWARP warps, one block after
 * another, with `smem_bytes` of shared memory (filled with NaNs first:
 * stale shared memory must not matter). */
static int emu_launch(void (*body)(emu_block *, int), const void *args, int variant,
                      int32_t tiles, int gx, int gy, size_t smem_bytes) {
    static emu_block b;
    b.copy_faults = 0;
    b.smem = (unsigned char *)aligned_alloc(16, smem_bytes > 0 ? (smem_bytes + 15) / 16 * 16 : 16);
    b.body = body;
    b.args = args;
    b.variant = variant;
    b.tiles = tiles;
    pthread_barrier_init(&b.block, NULL, MMA_NWARP * 32);
    for (int w = 0; w < MMA_NWARP; w++)
        pthread_barrier_init(&b.warp[w], NULL, 32);
    pthread_t th[MMA_NWARP * 32];
    emu_thread targs[MMA_NWARP * 32];
    for (int by = 0; by < gy; by++)
        for (int bx = 0; bx < gx; bx++) {
            b.bx = bx;
            b.by = by;
            /* bf16 NaNs: a read of shared memory the block never wrote
             * poisons its output */
            memset(b.smem, 0xFF, smem_bytes);
            for (int t = 0; t < MMA_NWARP * 32; t++) {
                targs[t] = emu_thread{&b, t};
                if (pthread_create(&th[t], NULL, emu_run, &targs[t]) != 0) {
                    fprintf(stderr, "pthread_create failed\n");
                    exit(1);
                }
            }
            for (int t = 0; t < MMA_NWARP * 32; t++)
                pthread_join(th[t], NULL);
        }
    pthread_barrier_destroy(&b.block);
    for (int w = 0; w < MMA_NWARP; w++)
        pthread_barrier_destroy(&b.warp[w]);
    free(b.smem);
    return b.copy_faults;
}

static void attention_thread(emu_block *b, int t) {
    mma_emu x = {b, t};
    const ecu_attn &a = *(const ecu_attn *)b->args;
    switch (b->variant) { /* head_dim x 2 + ldmatrix */
    case 64: attention_mma_body<32, false>(a, b->tiles, b->smem, x); break;
    case 65: attention_mma_body<32, true>(a, b->tiles, b->smem, x); break;
    case 128: attention_mma_body<64, false>(a, b->tiles, b->smem, x); break;
    case 129: attention_mma_body<64, true>(a, b->tiles, b->smem, x); break;
    case 256: attention_mma_body<128, false>(a, b->tiles, b->smem, x); break;
    default: attention_mma_body<128, true>(a, b->tiles, b->smem, x); break;
    }
}

static void layer_norm_thread(emu_block *b, int t) {
    mma_emu x = {b, t};
    const lnv_args &p = *(const lnv_args *)b->args;
    switch (b->variant) {
    case 1: layer_norm_vec_body<1>(p, x); break;
    case 2: layer_norm_vec_body<2>(p, x); break;
    case 3: layer_norm_vec_body<3>(p, x); break;
    default: layer_norm_vec_body<4>(p, x); break;
    }
}

static void epilogue_thread(emu_block *b, int t) {
    mma_emu x = {b, t};
    epilogue_vec_body(*(const epv_args *)b->args, x);
}

static void glu_thread(emu_block *b, int t) {
    mma_emu x = {b, t};
    glu_vec_body(*(const gluv_args *)b->args, x);
}

static void rope_thread(emu_block *b, int t) {
    mma_emu x = {b, t};
    rope_vec_body(*(const ropev_args *)b->args, x);
}

/* ---- the reference ---- */

static float bf16_value(const __nv_bfloat16 *p) { return __bfloat162float(*p); }

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float uniform(void) { /* [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

struct attn_case {
    const char *name;
    int head_dim, causal, window, rel;
    int ldsm; /* K and V fragments through ldmatrix (the GPU's default) */
    int32_t long_len; /* a sixth, longer sequence (0: none) */
};

static void run_case(const attn_case *c) {
    const int32_t lens[] = {1, 17, 64, 65, 130, c->long_len};
    const int32_t n_seqs = c->long_len ? 6 : 5, n_heads = 4, n_kv = 2, D = c->head_dim;
    int32_t start[7] = {0};
    int32_t max_len = 0;
    for (int s = 0; s < n_seqs; s++) {
        start[s + 1] = start[s] + lens[s];
        max_len = lens[s] > max_len ? lens[s] : max_len;
    }
    const int32_t T = start[n_seqs];
    /* padded strides, as a fused QKV projection leaves them */
    const int64_t ldq = (int64_t)n_heads * D + 8, ldkv = (int64_t)n_kv * D + 16,
                  ldo = (int64_t)n_heads * D;
    __nv_bfloat16 *q = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * T * ldq);
    __nv_bfloat16 *k = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * T * ldkv);
    __nv_bfloat16 *v = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * T * ldkv);
    __nv_bfloat16 *out = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * T * ldo);
    for (int64_t i = 0; i < T * ldq; i++)
        q[i] = __float2bfloat16_rn(uniform());
    for (int64_t i = 0; i < T * ldkv; i++) {
        k[i] = __float2bfloat16_rn(uniform());
        v[i] = __float2bfloat16_rn(uniform());
    }
    for (int64_t i = 0; i < T * ldo; i++)
        out[i] = __float2bfloat16_rn(99.0f); /* every output is written */
    const int32_t rel_span = max_len;
    const int64_t rel_ld = 2 * rel_span - 1;
    float *rel = NULL;
    if (c->rel) {
        rel = (float *)malloc(sizeof(float) * n_heads * rel_ld);
        for (int64_t i = 0; i < n_heads * rel_ld; i++)
            rel[i] = 2.0f * uniform();
    }
    ecu_attn a;
    memset(&a, 0, sizeof a);
    a.q = q;
    a.k = k;
    a.v = v;
    a.out = out;
    a.ldq = ldq;
    a.ldkv = ldkv;
    a.ldo = ldo;
    a.start_dev = start;
    a.n_seqs = n_seqs;
    a.max_len = max_len;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv;
    a.head_dim = D;
    a.scale = 1.0f / sqrtf((float)D);
    a.window = c->window;
    a.causal = c->causal;
    a.rows = 0;
    a.bf16 = 1;
    a.rel = rel;
    a.rel_ld = rel_ld;
    a.rel_span = rel_span;
    const int32_t tiles = (a.max_len + MMA_TQ - 1) / MMA_TQ;
    const int faults = emu_launch(attention_thread, &a, 2 * D + (c->ldsm ? 1 : 0), tiles,
                                  n_seqs * tiles, n_heads,
                                  D == 32   ? mma_layout<32>::bytes
                                  : D == 64 ? mma_layout<64>::bytes
                                            : mma_layout<128>::bytes);
    CHECK(faults == 0, "%s: %d cp.async copies misaligned, overflowing or never waited for",
          c->name, faults);

    double worst = 0, biggest = 0;
    double *p = (double *)malloc(sizeof(double) * max_len);
    for (int s = 0; s < n_seqs; s++)
        for (int h = 0; h < n_heads; h++) {
            const int kvh = h / (n_heads / n_kv);
            for (int i = 0; i < lens[s]; i++) {
                const int64_t qi = start[s] + i;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < lens[s]; j++) {
                    bool ok = (!c->causal || j <= i) && (c->window <= 0 || abs(i - j) <= c->window);
                    double sc = -INFINITY;
                    if (ok) {
                        sc = 0;
                        for (int d = 0; d < D; d++)
                            sc += (double)bf16_value(q + qi * ldq + h * D + d) *
                                  bf16_value(k + (start[s] + j) * ldkv + kvh * D + d);
                        sc *= a.scale;
                        if (rel)
                            sc += rel[h * rel_ld + rel_span - 1 + j - i];
                    }
                    p[j] = sc;
                    mx = sc > mx ? sc : mx;
                }
                for (int j = 0; j < lens[s]; j++) {
                    p[j] = p[j] == -INFINITY ? 0 : exp(p[j] - mx);
                    sum += p[j];
                }
                for (int d = 0; d < D; d++) {
                    double o = 0;
                    for (int j = 0; j < lens[s]; j++)
                        o += p[j] * bf16_value(v + (start[s] + j) * ldkv + kvh * D + d);
                    o /= sum;
                    const double got = bf16_value(out + qi * ldo + h * D + d);
                    const double err = fabs(got - o);
                    biggest = fabs(o) > biggest ? fabs(o) : biggest;
                    if (err > worst)
                        worst = err;
                    /* P and O round to bf16 (2^-9 relative each); a NaN fails */
                    if (!(err <= 1e-2 + 1e-2 * fabs(o)) && g_failures < 20)
                        CHECK(false, "%s: seq %d (len %d) head %d row %d dim %d: got %.5f want %.5f",
                              c->name, s, lens[s], h, i, d, got, o);
                }
            }
        }
    CHECK(worst <= 1e-2 + 1e-2 * biggest, "%s: worst abs error %.4g", c->name, worst);
    CHECK(biggest > 0.05, "%s: outputs are all near zero (largest %.4g)", c->name, biggest);
    printf("%-28s D=%3d causal=%d window=%d rel=%d ldmatrix=%d: worst abs error %.2e (largest %.3f)\n",
           c->name, D, c->causal, c->window, c->rel, c->ldsm, worst, biggest);
    free(p);
    free(rel);
    free(q);
    free(k);
    free(v);
    free(out);
}

/* ---- LayerNorm in 16-byte vectors ---- */

struct ln_case {
    int64_t rows;
    int cols, residual, beta, in_place;
};

static void run_ln_case(const ln_case *c) {
    const int64_t ld = c->cols + 16; /* padded rows */
    const size_t n = (size_t)(c->rows * ld);
    __nv_bfloat16 *x = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * n);
    __nv_bfloat16 *res = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * n);
    __nv_bfloat16 *out = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * n);
    float *gamma = (float *)aligned_alloc(16, sizeof(float) * (size_t)c->cols);
    float *beta = (float *)aligned_alloc(16, sizeof(float) * (size_t)c->cols);
    float *want = (float *)malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        /* an offset of 3 makes the mean matter */
        x[i] = __float2bfloat16_rn(3.0f + 2.0f * uniform());
        res[i] = __float2bfloat16_rn(uniform());
        out[i] = __float2bfloat16_rn(99.0f);
    }
    for (int i = 0; i < c->cols; i++) {
        gamma[i] = 1.0f + 0.5f * uniform();
        beta[i] = 0.5f * uniform();
    }
    const float eps = 1e-12f;
    for (int64_t r = 0; r < c->rows; r++) {
        double mean = 0, var = 0;
        for (int k = 0; k < c->cols; k++)
            mean += (double)bf16_value(x + r * ld + k) + (c->residual ? bf16_value(res + r * ld + k) : 0.0);
        mean /= c->cols;
        for (int k = 0; k < c->cols; k++) {
            double d = (double)bf16_value(x + r * ld + k) +
                       (c->residual ? bf16_value(res + r * ld + k) : 0.0) - mean;
            var += d * d;
        }
        var /= c->cols;
        for (int k = 0; k < c->cols; k++) {
            double d = (double)bf16_value(x + r * ld + k) +
                       (c->residual ? bf16_value(res + r * ld + k) : 0.0) - mean;
            want[r * ld + k] = (float)(d / sqrt(var + eps) * gamma[k] + (c->beta ? beta[k] : 0.0));
        }
    }
    __nv_bfloat16 *dst = c->in_place ? x : out;
    lnv_args p = {x, ld, c->residual ? res : NULL, ld, gamma, c->beta ? beta : NULL, eps, dst, ld,
                  c->rows, c->cols};
    const int nc = (c->cols + 255) / 256;
    emu_launch(layer_norm_thread, &p, nc, 0, (int)((c->rows + 3) / 4), 1, 0);
    double worst = 0;
    int bad = 0;
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t k = 0; k < ld; k++) {
            const double got = bf16_value(dst + r * ld + k);
            if (k >= c->cols) { /* the row's padding is never written */
                if (!c->in_place && got != 99.0 && bad++ < 5)
                    CHECK(false, "layer norm %lldx%d: padding column %lld of row %lld written",
                          (long long)c->rows, c->cols, (long long)k, (long long)r);
                continue;
            }
            const double err = fabs(got - want[r * ld + k]);
            worst = err > worst ? err : worst;
            if (err > 1e-2 + 8e-3 * fabs(want[r * ld + k]) && bad++ < 5)
                CHECK(false, "layer norm %lldx%d: row %lld col %lld: got %.5f want %.5f",
                      (long long)c->rows, c->cols, (long long)r, (long long)k, got,
                      want[r * ld + k]);
        }
    CHECK(bad == 0, "layer norm %lldx%d residual %d beta %d in place %d: %d bad values",
          (long long)c->rows, c->cols, c->residual, c->beta, c->in_place, bad);
    printf("layer norm %3lld x %4d residual=%d beta=%d in_place=%d: worst abs error %.2e\n",
           (long long)c->rows, c->cols, c->residual, c->beta, c->in_place, worst);
    free(x);
    free(res);
    free(out);
    free(gamma);
    free(beta);
    free(want);
}

/* ---- the linear epilogue and the GLU in 16-byte vectors ---- */

/* The activations in double, from their definitions (ember_act). */
static double act_ref(int act, double x) {
    switch (act) {
    case ECU_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case ECU_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case ECU_ACT_RELU: return x > 0 ? x : 0;
    case ECU_ACT_SILU: return x / (1.0 + exp(-x));
    case ECU_ACT_TANH: return tanh(x);
    default: return x;
    }
}

/* Compares rows x width bf16 values of `got` (row stride ld) with `want`
 * and checks that the padding up to ld still holds 99. */
static void compare_rows(const char *what, const __nv_bfloat16 *got, const double *want,
                         int64_t rows, int width, int64_t ld) {
    double worst = 0;
    int bad = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < ld; k++) {
            const double g = bf16_value(got + r * ld + k);
            if (k >= width) {
                if (g != 99.0 && bad++ < 5)
                    CHECK(false, "%s: padding column %lld of row %lld written", what, (long long)k,
                          (long long)r);
                continue;
            }
            const double w = want[r * width + k], err = fabs(g - w);
            worst = err > worst ? err : worst;
            if (!(err <= 1e-3 + 8e-3 * fabs(w)) && bad++ < 5) /* a NaN fails */
                CHECK(false, "%s: row %lld col %lld: got %.5f want %.5f", what, (long long)r,
                      (long long)k, g, w);
        }
    CHECK(bad == 0, "%s: %d bad values", what, bad);
    printf("%-44s worst abs error %.2e\n", what, worst);
}

struct ep_case {
    int64_t rows;
    int cols, bias, act, residual;
};

static void run_epilogue_case(const ep_case *c) {
    const int64_t ld = c->cols + 8;
    const size_t n = (size_t)(c->rows * ld);
    __nv_bfloat16 *y = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * n);
    __nv_bfloat16 *res = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * n);
    float *bias = (float *)aligned_alloc(16, sizeof(float) * (size_t)c->cols);
    double *want = (double *)malloc(sizeof(double) * (size_t)(c->rows * c->cols));
    for (int k = 0; k < c->cols; k++)
        bias[k] = uniform();
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t k = 0; k < ld; k++) {
            const bool pad = k >= c->cols;
            y[r * ld + k] = __float2bfloat16_rn(pad ? 99.0f : 3.0f * uniform());
            res[r * ld + k] = __float2bfloat16_rn(uniform());
            if (!pad) {
                double v = bf16_value(y + r * ld + k) + (c->bias ? bias[k] : 0.0);
                v = act_ref(c->act, v);
                want[r * c->cols + k] = v + (c->residual ? bf16_value(res + r * ld + k) : 0.0);
            }
        }
    epv_args p = {y, ld, c->bias ? bias : NULL, c->act, c->residual ? res : NULL, ld, c->rows, c->cols};
    const int64_t vecs = c->rows * (c->cols / 8);
    emu_launch(epilogue_thread, &p, 0, 0, (int)((vecs + 127) / 128), 1, 0);
    char what[96];
    snprintf(what, sizeof what, "epilogue %lld x %d bias=%d act=%d residual=%d", (long long)c->rows,
             c->cols, c->bias, c->act, c->residual);
    compare_rows(what, y, want, c->rows, c->cols, ld);
    free(y);
    free(res);
    free(bias);
    free(want);
}

static void run_glu_case(int64_t rows, int inter, int act) {
    const int64_t ld_in = 2 * inter + 8, ld_out = inter + 8;
    __nv_bfloat16 *in = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * (size_t)(rows * ld_in));
    __nv_bfloat16 *out = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * (size_t)(rows * ld_out));
    double *want = (double *)malloc(sizeof(double) * (size_t)(rows * inter));
    for (int64_t i = 0; i < rows * ld_in; i++)
        in[i] = __float2bfloat16_rn(3.0f * uniform());
    for (int64_t i = 0; i < rows * ld_out; i++)
        out[i] = __float2bfloat16_rn(99.0f);
    for (int64_t r = 0; r < rows; r++)
        for (int k = 0; k < inter; k++)
            want[r * inter + k] = act_ref(act, bf16_value(in + r * ld_in + k)) *
                                  bf16_value(in + r * ld_in + inter + k);
    gluv_args p = {in, ld_in, out, ld_out, rows, inter, act};
    const int64_t vecs = rows * (inter / 8);
    emu_launch(glu_thread, &p, 0, 0, (int)((vecs + 127) / 128), 1, 0);
    char what[96];
    snprintf(what, sizeof what, "glu %lld x %d act=%d", (long long)rows, inter, act);
    compare_rows(what, out, want, rows, inter, ld_out);
    free(in);
    free(out);
    free(want);
}

/* RoPE in place on q (nq heads) and k (nk heads, or none), padded rows,
 * positions out of order, the table in fp32 or bf16 */
static void run_rope_case(int64_t rows, int d, int nq, int nk, int table_bf16) {
    const int half = d / 2, n_pos = 40;
    const int64_t ldq = (int64_t)nq * d + 8, ldk = (int64_t)nk * d + 16;
    __nv_bfloat16 *q = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * (size_t)(rows * ldq));
    __nv_bfloat16 *k = nk ? (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * (size_t)(rows * ldk))
                          : NULL;
    float *tf = (float *)aligned_alloc(16, sizeof(float) * (size_t)(n_pos * d));
    __nv_bfloat16 *tb = (__nv_bfloat16 *)aligned_alloc(16, sizeof(__nv_bfloat16) * (size_t)(n_pos * d));
    int32_t *pos = (int32_t *)malloc(sizeof(int32_t) * (size_t)rows);
    double *wq = (double *)malloc(sizeof(double) * (size_t)(rows * nq * d));
    double *wk = (double *)malloc(sizeof(double) * (size_t)(rows * (nk ? nk : 1) * d));
    for (int p = 0; p < n_pos; p++)
        for (int j = 0; j < half; j++) {
            const double ang = p * pow(10000.0, -2.0 * j / d);
            tf[p * d + j] = (float)cos(ang);
            tf[p * d + half + j] = (float)sin(ang);
            tb[p * d + j] = __float2bfloat16_rn(tf[p * d + j]);
            tb[p * d + half + j] = __float2bfloat16_rn(tf[p * d + half + j]);
        }
    for (int64_t r = 0; r < rows; r++)
        pos[r] = (int32_t)((r * 7 + 3) % n_pos);
    /* fills x (width heads x d, stride ld, pads 99) and its rotation */
    auto fill = [&](__nv_bfloat16 *x, int64_t ld, int heads, double *want) {
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t c = 0; c < ld; c++)
                x[r * ld + c] = __float2bfloat16_rn(c < heads * d ? 2.0f * uniform() : 99.0f);
            for (int h = 0; h < heads; h++)
                for (int j = 0; j < half; j++) {
                    const int64_t t = (int64_t)pos[r] * d;
                    const double cs = table_bf16 ? bf16_value(tb + t + j) : tf[t + j];
                    const double sn = table_bf16 ? bf16_value(tb + t + half + j) : tf[t + half + j];
                    const double a = bf16_value(x + r * ld + h * d + j),
                                 b = bf16_value(x + r * ld + h * d + half + j);
                    want[(r * heads + h) * d + j] = a * cs - b * sn;
                    want[(r * heads + h) * d + half + j] = b * cs + a * sn;
                }
        }
    };
    fill(q, ldq, nq, wq);
    if (k)
        fill(k, ldk, nk, wk);
    ropev_args p = {q, ldq, nq, k, ldk, nk, rows, d, pos, table_bf16 ? (const void *)tb : tf,
                    table_bf16};
    const int64_t vecs = rows * (nq + nk) * (half / 8);
    emu_launch(rope_thread, &p, 0, 0, (int)((vecs + 127) / 128), 1, 0);
    char what[96];
    snprintf(what, sizeof what, "rope %lld rows d=%d q heads %d k heads %d %s table: q",
             (long long)rows, d, nq, nk, table_bf16 ? "bf16" : "f32");
    compare_rows(what, q, wq, rows, nq * d, ldq);
    if (k) {
        what[strlen(what) - 1] = 'k';
        compare_rows(what, k, wk, rows, nk * d, ldk);
    }
    free(q);
    free(k);
    free(tf);
    free(tb);
    free(pos);
    free(wq);
    free(wk);
}

int main(void) {
    const attn_case cases[] = {
        {"bidirectional", 32, 0, 0, 0, 1},  {"bidirectional", 64, 0, 0, 0, 1},
        {"bidirectional", 128, 0, 0, 0, 1}, {"causal", 64, 1, 0, 0, 1},
        {"sliding window 7", 64, 0, 7, 0, 1}, {"window 70 + causal", 128, 1, 70, 0, 1},
        {"sliding window 70", 64, 0, 70, 0, 1}, /* unmasked interior tiles of a window */
        /* key tiles off the 64 grid (k_lo = q0 - 92): a warp's unmasked
         * test is exact to the row, not just to the tile */
        {"window 92 + causal, 300 tokens", 64, 1, 92, 0, 1, 300},
        {"sliding window 92, 300 tokens", 32, 0, 92, 0, 1, 300},
        {"relative bias (MPNet)", 64, 0, 0, 1, 1},
        /* EMBER_CUDA_MMA_LDSM=0: plain shared loads */
        {"plain loads", 32, 0, 0, 0, 0},     {"plain loads, window + causal", 128, 1, 70, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
    /* rows not a multiple of the block's 4; widths of 1-4 chunks a lane,
     * whole and partial (296 = 37 chunks) */
    const ln_case ln_cases[] = {
        {9, 384, 1, 1, 0}, {9, 768, 0, 0, 0}, {6, 1024, 1, 1, 1}, {5, 296, 1, 0, 0}, {3, 8, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof ln_cases / sizeof ln_cases[0]; i++)
        run_ln_case(&ln_cases[i]);
    /* BERT's exact-GELU intermediate, a residual output, the tanh form; the
     * vector count not a multiple of the block's 128 */
    const ep_case ep_cases[] = {
        {7, 1536, 1, ECU_ACT_GELU, 0}, {5, 384, 1, ECU_ACT_NONE, 1}, {3, 24, 0, ECU_ACT_GELU_TANH, 1},
        {2, 40, 1, ECU_ACT_SILU, 1},
    };
    for (size_t i = 0; i < sizeof ep_cases / sizeof ep_cases[0]; i++)
        run_epilogue_case(&ep_cases[i]);
    run_glu_case(5, 1152, ECU_ACT_GELU); /* ModernBERT-base's GeGLU */
    run_glu_case(3, 24, ECU_ACT_SILU);   /* SwiGLU */
    run_rope_case(9, 64, 12, 12, 0);  /* ModernBERT-base: q and k of the fused qkv */
    run_rope_case(5, 128, 4, 2, 1);   /* Qwen3's GQA, a bf16 table */
    run_rope_case(7, 32, 3, 0, 0);    /* q alone, the smallest head */
    printf("%d of %d checks failed\n", g_failures, g_checks);
    return g_failures ? 1 : 0;
}
