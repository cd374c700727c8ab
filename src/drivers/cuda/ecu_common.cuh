/*
 * ecu_common.cuh — device helpers shared by the CUDA driver's kernels:
 * element loads/stores that compute in fp32 whatever the storage type, the
 * activations (the formulas of the CPU reference, ember_ref_act), and
 * warp/block reductions.
 */
#ifndef EMBER_DRIVERS_CUDA_COMMON_CUH
#define EMBER_DRIVERS_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

/* Values of ember_act (drivers/driver.h), repeated here so that the .cu
 * files need no C header beyond cuda_kernels.h. */
enum { ECU_ACT_NONE, ECU_ACT_GELU, ECU_ACT_GELU_TANH, ECU_ACT_RELU, ECU_ACT_SILU, ECU_ACT_TANH };

static __device__ __forceinline__ float ecu_ld(const float *p) { return *p; }
static __device__ __forceinline__ float ecu_ld(const __nv_bfloat16 *p) {
    return __bfloat162float(*p);
}
static __device__ __forceinline__ void ecu_st(float *p, float v) { *p = v; }
static __device__ __forceinline__ void ecu_st(__nv_bfloat16 *p, float v) {
    *p = __float2bfloat16_rn(v);
}
/* A table element whose type is known at run time only. */
static __device__ __forceinline__ float ecu_ldw(const void *p, int bf16, int64_t i) {
    return bf16 ? __bfloat162float(((const __nv_bfloat16 *)p)[i]) : ((const float *)p)[i];
}

/* Two bf16 (round to nearest even) in one 32-bit register, lo in the low
 * half: an mma fragment register, or a quarter of a 16-byte vector. Host
 * and device (the CPU emulation of tests/test_cuda_emu.cu calls it). */
static __host__ __device__ __forceinline__ uint32_t ecu_pack_bf16x2(float lo, float hi) {
    const __nv_bfloat16 l = __float2bfloat16_rn(lo), h = __float2bfloat16_rn(hi);
    uint16_t lb, hb;
    memcpy(&lb, &l, 2);
    memcpy(&hb, &h, 2);
    return (uint32_t)lb | (uint32_t)hb << 16;
}

/* host and device: the CPU emulation of tests/test_cuda_emu.cu calls it too */
static __host__ __device__ __forceinline__ float ecu_act(int act, float x) {
    switch (act) {
    case ECU_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case ECU_ACT_GELU_TANH: {
        float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(inner));
    }
    case ECU_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case ECU_ACT_SILU: return x / (1.0f + expf(-x));
    case ECU_ACT_TANH: return tanhf(x);
    default: return x;
    }
}

static __device__ __forceinline__ float ecu_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ float ecu_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread
 * gets the result. `red` is 32 floats of shared memory. */
static __device__ __forceinline__ float ecu_block_sum(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = ecu_warp_sum(v);
    __syncthreads(); /* red may still be read by a previous reduction */
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : 0.0f;
    return ecu_warp_sum(v);
}

/* The keys [*lo, *hi) that some query of [q0, q1) in a sequence of len
 * tokens can see: j <= i when causal, |i - j| <= window when window > 0.
 * An attention block visits only the key tiles of that range. Host and
 * device (the CPU emulation runs the mma kernel's body). */
static __host__ __device__ __forceinline__ void ecu_key_range(int causal, int32_t window, int32_t q0,
                                                              int32_t q1, int32_t len, int32_t *lo,
                                                              int32_t *hi) {
    *lo = 0;
    *hi = causal ? q1 : len;
    if (window > 0) {
        *lo = q0 - window > 0 ? q0 - window : 0;
        *hi = q1 + window < *hi ? q1 + window : *hi;
    }
}

/* Launches an attention kernel over (x_blocks, heads) blocks of `threads`
 * with `smem` bytes of dynamic shared memory, opting in above the 48 KiB
 * default: cudaErrorInvalidValue when the grid exceeds CUDA's limits, else
 * the attribute's or the launch's status. */
template <typename Kernel, typename... Args>
static int ecu_launch_attention(Kernel kernel, int64_t x_blocks, int32_t heads, int threads,
                                size_t smem, cudaStream_t s, Args... args) {
    if (x_blocks > 0x7fffffff || heads > 65535)
        return (int)cudaErrorInvalidValue;
    if (smem > 48 * 1024) {
        const cudaError_t e =
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess)
            return (int)e;
    }
    kernel<<<dim3((unsigned)x_blocks, (unsigned)heads), threads, smem, s>>>(args...);
    return (int)cudaGetLastError();
}

/* Grid sizes for grid-stride loops: enough blocks to fill the device, never
 * more than the work. */
static inline unsigned ecu_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b > 65535 * 8)
        b = 65535 * 8;
    return (unsigned)(b > 0 ? b : 1);
}

#endif
