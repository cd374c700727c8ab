/*
 * attention_mma.cu — the register-resident tensor-core attention kernel
 * (FlashAttention-2's layout, mma.sync): the GPU executor of the body in
 * attention_mma.cuh, and its launcher.
 *
 * Not the default yet: it passed its CPU emulation
 * (tests/test_cuda_emu.cu) but has not run on a GPU.
 * EMBER_CUDA_ATTENTION=mma selects it; scripts/gpu-check.sh runs the
 * conformance test and the goldens with it and times it against the WMMA
 * kernel (attention_tc.cu), so the next GPU run decides.
 */
#include "drivers/cuda/attention_mma.cuh"

/* The GPU as the body's executor. async = 0 (EMBER_CUDA_MMA_ASYNC=0)
 * turns the cp.async copies into plain 16-byte loads and stores, to tell
 * the two apart should the kernel fail on a GPU. */
struct mma_gpu {
    bool async;
    __device__ __forceinline__ int tid() const { return (int)threadIdx.x; }
    __device__ __forceinline__ int bx() const { return (int)blockIdx.x; }
    __device__ __forceinline__ int by() const { return (int)blockIdx.y; }
    __device__ __forceinline__ void sync() const { __syncthreads(); }
    __device__ __forceinline__ float shfl_xor(float v, int mask) const {
        return __shfl_xor_sync(0xffffffffu, v, mask);
    }
    /* four 8x8 bf16 tiles from shared memory, one row address per lane */
    __device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void *p) const {
        const unsigned a = (unsigned)__cvta_generic_to_shared(p);
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(a));
    }
    __device__ __forceinline__ void ldsm_x4_trans(uint32_t r[4], const void *p) const {
        const unsigned a = (unsigned)__cvta_generic_to_shared(p);
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(a));
    }
    /* 16 bytes global -> shared without a register (sm_80 and newer); .cg:
     * through L2 only, the tile is read once per block */
    __device__ __forceinline__ void cp16(void *dst, const void *src) const {
        if (async) {
            const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(src)
                         : "memory");
        } else {
            *(uint4 *)dst = *(const uint4 *)src;
        }
    }
    __device__ __forceinline__ void commit() const {
        if (async)
            asm volatile("cp.async.commit_group;\n" ::: "memory");
    }
    template <int N>
    __device__ __forceinline__ void wait() const {
        if (async)
            asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
    }
    __device__ __forceinline__ bool all(bool p) const { return __all_sync(0xffffffffu, p) != 0; }
    /* d += A B, mma.m16n8k16 bf16 -> fp32 (sm_80 and newer) */
    __device__ __forceinline__ void mma(float d[4], const uint32_t a[4], const uint32_t b[2]) const {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                     "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};

template <int D, bool LDSM>
__global__ void __launch_bounds__(MMA_NWARP * 32)
    k_attention_mma(ecu_attn a, int32_t tiles, bool async) {
    extern __shared__ __align__(16) unsigned char mma_smem[];
    mma_gpu x = {async};
    attention_mma_body<D, LDSM>(a, tiles, mma_smem, x);
}

/* Diagnostic switches, on unless set to 0 (to tell the parts apart should
 * the kernel fail on a GPU): EMBER_CUDA_MMA_ASYNC=0 stages the K/V tiles by
 * plain loads and stores, EMBER_CUDA_MMA_LDSM=0 reads fragments by plain
 * shared loads instead of ldmatrix. */

template <int D, bool LDSM>
static int launch_mma(cudaStream_t s, const ecu_attn *a) {
    static int cp_async = -1;
    const int32_t tiles = (a->max_len + MMA_TQ - 1) / MMA_TQ;
    const bool async = ecu_env_switch("EMBER_CUDA_MMA_ASYNC", 1, &cp_async) != 0;
    return ecu_launch_attention(k_attention_mma<D, LDSM>, (int64_t)a->n_seqs * tiles, a->n_heads,
                                MMA_NWARP * 32, mma_layout<D>::bytes, s, *a, tiles, async);
}

template <int D>
static int launch_mma_d(cudaStream_t s, const ecu_attn *a) {
    static int ldmatrix = -1;
    return ecu_env_switch("EMBER_CUDA_MMA_LDSM", 1, &ldmatrix) ? launch_mma<D, true>(s, a)
                                                               : launch_mma<D, false>(s, a);
}

static int aligned(const void *p, uintptr_t n) { return ((uintptr_t)p & (n - 1)) == 0; }

extern "C" int ecu_attention_mma(cudaStream_t s, const ecu_attn *a) {
    const int d = a->head_dim;
    if (!a->bf16 || a->rows != 0 || (d != 32 && d != 64 && d != 128) || a->ldq % 8 ||
        a->ldkv % 8 || a->ldo % 2 || !aligned(a->q, 16) || !aligned(a->k, 16) ||
        !aligned(a->v, 16) || !aligned(a->out, 4))
        return -1;
    switch (d) {
    case 32: return launch_mma_d<32>(s, a);
    case 64: return launch_mma_d<64>(s, a);
    default: return launch_mma_d<128>(s, a);
    }
}
