/* gemm_neonfp16.c - half-precision GEMM microkernels (ARMv8.2 FP16 vector arithmetic) for
 * models whose weights are float16: packed A and B hold halves (ops/gemm.h), each k block
 * is multiplied and summed in float16 (8 lanes a vector, twice float32's rate), and the
 * tile is widened to float32 for the epilogue and for adding across k blocks. Tiles are
 * MR x 16: 8x16 (16 accumulators, A broadcast by lane), 4x16 and 1x16. */
#define VEC_ISA_NEON
#include "platforms/simd/vec.h"
#include "platforms/simd/gemm_tile.inc"

#define HALF_NR 16

/* The tile held as halves (row i in h0[i], h1[i]), widened and stored as gemm.inc stores
 * an edge tile: what C held, bias and clamp per vector, lanes past n left alone, then the
 * fused activation over the stored rows. */
static void finish_tile(const float16x8_t *h0, const float16x8_t *h1, int mr, float *c, int64_t ldc, int m, int n,
                        bool accumulate, const GemmEpi *e)
{
    float tmp[8 * HALF_NR];
    for (int i = 0; i < mr; i++) {
        float *t = tmp + i * HALF_NR;
        vst1q_f32(t, vcvt_f32_f16(vget_low_f16(h0[i])));
        vst1q_f32(t + 4, vcvt_high_f32_f16(h0[i]));
        vst1q_f32(t + 8, vcvt_f32_f16(vget_low_f16(h1[i])));
        vst1q_f32(t + 12, vcvt_high_f32_f16(h1[i]));
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j += VF_N) {
            int w = n - j < VF_N ? n - j : VF_N;
            float *r = c + i * ldc + j;
            vf v = tile_out(vf_load(tmp + i * HALF_NR + j), r, accumulate, e, i, j, w);
            if (w == VF_N)
                vf_store(r, v);
            else
                vf_storen(r, v, w);
        }
    if (e && e->act)
        tile_act(e->act, c, ldc, m, n);
}

#define LANE_FMA8(L) \
    acc0[L] = vfmaq_laneq_f16(acc0[L], b0, av, L); \
    acc1[L] = vfmaq_laneq_f16(acc1[L], b1, av, L);
#define LANE_FMA4(L) \
    acc0[L] = vfmaq_lane_f16(acc0[L], b0, av, L); \
    acc1[L] = vfmaq_lane_f16(acc1[L], b1, av, L);

static void ukernel_8x16(int64_t kc, const float *a_, const float *b_, float *c, int64_t ldc, int m, int n,
                         bool accumulate, const GemmEpi *e)
{
    const float16_t *a = (const float16_t *)(const void *)a_, *b = (const float16_t *)(const void *)b_;
    float16x8_t acc0[8], acc1[8];
    for (int i = 0; i < 8; i++)
        acc0[i] = acc1[i] = vdupq_n_f16(0);
    for (int64_t k = 0; k < kc; k++, a += 8, b += HALF_NR) {
        float16x8_t av = vld1q_f16(a), b0 = vld1q_f16(b), b1 = vld1q_f16(b + 8);
        LANE_FMA8(0) LANE_FMA8(1) LANE_FMA8(2) LANE_FMA8(3) LANE_FMA8(4) LANE_FMA8(5) LANE_FMA8(6) LANE_FMA8(7)
    }
    finish_tile(acc0, acc1, 8, c, ldc, m, n, accumulate, e);
}

static void ukernel_4x16(int64_t kc, const float *a_, const float *b_, float *c, int64_t ldc, int m, int n,
                         bool accumulate, const GemmEpi *e)
{
    const float16_t *a = (const float16_t *)(const void *)a_, *b = (const float16_t *)(const void *)b_;
    float16x8_t acc0[4], acc1[4];
    for (int i = 0; i < 4; i++)
        acc0[i] = acc1[i] = vdupq_n_f16(0);
    for (int64_t k = 0; k < kc; k++, a += 4, b += HALF_NR) {
        float16x4_t av = vld1_f16(a);
        float16x8_t b0 = vld1q_f16(b), b1 = vld1q_f16(b + 8);
        LANE_FMA4(0) LANE_FMA4(1) LANE_FMA4(2) LANE_FMA4(3)
    }
    finish_tile(acc0, acc1, 4, c, ldc, m, n, accumulate, e);
}

static void ukernel_1x16(int64_t kc, const float *a_, const float *b_, float *c, int64_t ldc, int m, int n,
                         bool accumulate, const GemmEpi *e)
{
    const float16_t *a = (const float16_t *)(const void *)a_, *b = (const float16_t *)(const void *)b_;
    float16x8_t acc0[1] = {vdupq_n_f16(0)}, acc1[1] = {vdupq_n_f16(0)};
    for (int64_t k = 0; k < kc; k++, b += HALF_NR) {
        float16x8_t av = vld1q_dup_f16(a + k);
        acc0[0] = vfmaq_f16(acc0[0], av, vld1q_f16(b));
        acc1[0] = vfmaq_f16(acc1[0], av, vld1q_f16(b + 8));
    }
    finish_tile(acc0, acc1, 1, c, ldc, m, n, accumulate, e);
}

/* Round to nearest even, as quant/fp16.h's f32_to_fp16 (the conversion instructions use
 * the FPCR mode, which is round-to-nearest-even unless a program changed it). */
static void narrow_f16(const float *src, void *dst, size_t n)
{
    float16_t *d = dst;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        vst1q_f16(d + i, vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(src + i)), vld1q_f32(src + i + 4)));
    for (; i < n; i++)
        d[i] = (float16_t)src[i];
}

const GemmUkernel gemm_ukernel_neonfp16 = {"gemm_f16_8x16_neonfp16", ISA_NEONFP16, 8, HALF_NR, ukernel_8x16, narrow_f16};
const GemmUkernel gemm_ukernel_neonfp16_4 = {"gemm_f16_4x16_neonfp16", ISA_NEONFP16, 4, HALF_NR, ukernel_4x16,
                                             narrow_f16};
const GemmUkernel gemm_ukernel_neonfp16_1 = {"gemm_f16_1x16_neonfp16", ISA_NEONFP16, 1, HALF_NR, ukernel_1x16,
                                             narrow_f16};
