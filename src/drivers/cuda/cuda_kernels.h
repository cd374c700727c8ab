/*
 * cuda_kernels.h — the launchers of the CUDA driver's kernels (kernels.cu,
 * attention.cu), callable from C.
 *
 * Every launcher queues its kernel on `s` and returns the launch status
 * (cudaGetLastError as int: 0 = cudaSuccess); nothing waits. Activations are
 * fp32 (`bf16` = 0) or bf16 (`bf16` = 1) with a row stride `ld` in elements;
 * weight vectors (norm scales, biases) are fp32; tables (embeddings, RoPE
 * cos|sin) are fp32 or bf16 as `table_bf16` says. Nothing here allocates.
 */
#ifndef EMBER_DRIVERS_CUDA_KERNELS_H
#define EMBER_DRIVERS_CUDA_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Source element types of ecu_convert (the stored safetensors types). */
enum { ECU_SRC_F32 = 0, ECU_SRC_F16 = 1, ECU_SRC_BF16 = 2 };

/* dst[i] = src[i] for i < n, src of type src_dt, dst fp32 or bf16 (weights
 * converted on the device at load). */
int ecu_convert(cudaStream_t s, const void *src, int src_dt, void *dst, int dst_bf16, int64_t n);
/* (rows, cols) strided copy with a type change: fp32 <-> bf16. */
int ecu_cast2d(cudaStream_t s, const void *src, int64_t ld_src, int src_bf16, void *dst,
               int64_t ld_dst, int dst_bf16, int64_t rows, int64_t cols);
/* y = act(y + bias) + r in place, (rows, cols) of one type; bias (fp32)
 * and r may be NULL: the parts of a linear's epilogue cuBLASLt did not do. */
int ecu_epilogue(cudaStream_t s, void *y, int64_t ldy, const float *bias, int act, const void *r,
                 int64_t ldr, int64_t rows, int64_t cols, int bf16);
/* out[r, :] (+)= table[idx[r], :], r < rows. */
int ecu_gather(cudaStream_t s, const void *table, int table_bf16, int64_t cols,
               const int32_t *idx, void *out, int64_t ld, int64_t rows, int accumulate, float scale,
               int bf16);
/* out[s, :] = in[start[s] (first) or start[s+1] - 1 (last), :]. */
int ecu_select_rows(cudaStream_t s, const void *in, int64_t ld_in, void *out, int64_t ld_out,
                    int64_t cols, int32_t n_seqs, const int32_t *start_dev, int last, int bf16);
/* out = LayerNorm(x + res) * gamma + beta (res, beta may be NULL). */
int ecu_layer_norm(cudaStream_t s, const void *x, int64_t ldx, const void *res, int64_t ldr,
                   const float *gamma, const float *beta, float eps, void *out, int64_t ldo,
                   int64_t rows, int64_t cols, int bf16);
/* out = [res +] x / rms(x over groups of `group` columns) * (w + offset); res may be NULL. */
int ecu_rms_norm(cudaStream_t s, const void *x, int64_t ldx, const float *w, float eps,
                 float offset, int64_t group, const void *res, int64_t ldr, void *out, int64_t ldo,
                 int64_t rows, int64_t cols, int bf16);
/* out[r, i] = act(in[r, i]) * in[r, inter + i]. */
int ecu_glu(cudaStream_t s, const void *in, int64_t ld_in, void *out, int64_t ld_out,
            int64_t rows, int64_t inter, int act, int bf16);
/* Rotate-half RoPE in place of nq heads of q and nk heads of k (k may be
 * NULL) at positions[r]; table row p = cos | sin (head_dim values). */
int ecu_rope(cudaStream_t s, void *q, int64_t ldq, int64_t nq, void *k, int64_t ldk, int64_t nk,
             int64_t rows, int32_t head_dim, const int32_t *positions, const void *table,
             int table_bf16, int bf16);
/* out[s, :] (fp32) = pooling `mode` (ember_pooling) of the rows of sequence s. */
int ecu_pool(cudaStream_t s, const void *hidden, int64_t ld, int64_t cols, int32_t n_seqs,
             const int32_t *start_dev, int32_t mode, float *out, int64_t ld_out, int bf16);

/* Variable-length attention (attention.cu). `rows`: 0 all queries, 1 the
 * first of each sequence, 2 the last (then q and out have one row per
 * sequence). head_dim <= ECU_ATTN_MAX_HEAD_DIM. */
#define ECU_ATTN_MAX_HEAD_DIM 256
typedef struct ecu_attn {
    const void *q, *k, *v;
    void *out;
    int64_t ldq, ldkv, ldo;
    const int32_t *start_dev;
    int32_t n_seqs, max_len;
    int32_t n_heads, n_kv_heads, head_dim;
    float scale;
    int32_t window, causal, rows;
    int bf16;
    /* relative-position bias (MPNet): score(i, j) += rel[h * rel_ld + j - i
     * + rel_span - 1], fp32; NULL: none */
    const float *rel;
    int64_t rel_ld;
    int32_t rel_span;
} ecu_attn;
int ecu_attention(cudaStream_t s, const ecu_attn *a);
/* The tensor-core kernel (attention_tc.cu): -1 when the case is not its own
 * (fp32 activations, first/last rows, head_dim other than 32/64/128,
 * misaligned operands), else the launch status. */
int ecu_attention_tc(cudaStream_t s, const ecu_attn *a);
/* The register-resident tensor-core kernel (attention_mma.cu), same cases
 * and answer as ecu_attention_tc; chosen by EMBER_CUDA_ATTENTION=mma. */
int ecu_attention_mma(cudaStream_t s, const ecu_attn *a);
/* The attention kernels this process uses, for `ember info`. */
const char *ecu_attention_kernels(void);
/* Whether EMBER_CUDA_VEC_ROWS=1 (row kernels in 16-byte vectors), for `ember info`. */
int ecu_vec_rows_enabled(void);
/* A switch of the environment, read once into *cache (-1 before; safe from
 * any thread): unset or empty gives dflt; otherwise a switch that defaults
 * on is off only for "0", one that defaults off is on only for "1". */
int ecu_env_switch(const char *name, int dflt, int *cache);

#ifdef __cplusplus
}
#endif

#endif
