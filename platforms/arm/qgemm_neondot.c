/* qgemm_neondot.c - the 8-bit GEMM microkernel for ARMv8.2 dot product (SDOT): an 8 x 8
 * tile in 16 int32x4 accumulators. SDOT multiplies signed bytes, so the activations are
 * packed as s8 (b_signed: their top bit flipped, the zero point moved by 128). Built with
 * +dotprod on this file only; chosen when cpuinfo reports the dot product. */
#include <arm_neon.h>

#include "ops/qgemm.h"

#define MR 8
#define NR 8

/* Finishes 4 lanes of row i into t (int32 or bytes as the output wants). */
static inline int32x4_t finish4(int32x4_t v, const QGemmEpi *e, int i, const int32_t *col_sum)
{
    v = vaddq_s32(v, vdupq_n_s32(e->row_add[i]));
    if (e->row_zw)
        v = vmlsq_s32(v, vdupq_n_s32(e->row_zw[i]), vld1q_s32(col_sum));
    return v;
}

static inline int16x4_t requant4(int32x4_t v, const QGemmEpi *e, int i)
{
    float32x4_t f = vmulq_f32(vcvtq_f32_s32(v), vdupq_n_f32(e->mult[i]));
    f = vminq_f32(vmaxq_f32(f, vdupq_n_f32((float)(e->lo - e->zy))), vdupq_n_f32((float)(e->hi - e->zy)));
    int32x4_t q = vaddq_s32(vcvtnq_s32_f32(f), vdupq_n_s32(e->zy)); /* round to nearest, ties to even */
    return vmovn_s32(q); /* q is in [lo, hi]: exact in 16 bits */
}

static void qgemm_ukernel_8x8__neondot(int64_t kq, const int8_t *a, const uint8_t *b, const QGemmEpi *e, void *c,
                                       int64_t rs, int64_t cs, int m, int n)
{
    int32x4_t acc[MR][2];
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = vdupq_n_s32(0);
    for (int64_t q = 0; q < kq; q++, a += MR * 4, b += NR * 4) {
        int8x16_t b0 = vld1q_s8((const int8_t *)b), b1 = vld1q_s8((const int8_t *)b + 16);
        int8x16_t a0 = vld1q_s8(a), a1 = vld1q_s8(a + 16);
        acc[0][0] = vdotq_laneq_s32(acc[0][0], b0, a0, 0);
        acc[0][1] = vdotq_laneq_s32(acc[0][1], b1, a0, 0);
        acc[1][0] = vdotq_laneq_s32(acc[1][0], b0, a0, 1);
        acc[1][1] = vdotq_laneq_s32(acc[1][1], b1, a0, 1);
        acc[2][0] = vdotq_laneq_s32(acc[2][0], b0, a0, 2);
        acc[2][1] = vdotq_laneq_s32(acc[2][1], b1, a0, 2);
        acc[3][0] = vdotq_laneq_s32(acc[3][0], b0, a0, 3);
        acc[3][1] = vdotq_laneq_s32(acc[3][1], b1, a0, 3);
        acc[4][0] = vdotq_laneq_s32(acc[4][0], b0, a1, 0);
        acc[4][1] = vdotq_laneq_s32(acc[4][1], b1, a1, 0);
        acc[5][0] = vdotq_laneq_s32(acc[5][0], b0, a1, 1);
        acc[5][1] = vdotq_laneq_s32(acc[5][1], b1, a1, 1);
        acc[6][0] = vdotq_laneq_s32(acc[6][0], b0, a1, 2);
        acc[6][1] = vdotq_laneq_s32(acc[6][1], b1, a1, 2);
        acc[7][0] = vdotq_laneq_s32(acc[7][0], b0, a1, 3);
        acc[7][1] = vdotq_laneq_s32(acc[7][1], b1, a1, 3);
    }
    if (cs != 1 || n < NR) { /* a transposed store (MatMul) or a partial tile: the portable path */
        int32_t t[MR * NR];
        for (int i = 0; i < MR; i++) {
            vst1q_s32(t + i * NR, acc[i][0]);
            vst1q_s32(t + i * NR + 4, acc[i][1]);
        }
        qgemm_store_tile(t, NR, e, c, rs, cs, m, n);
        return;
    }
    for (int i = 0; i < m; i++) {
        int32x4_t v0 = finish4(acc[i][0], e, i, e->col_sum), v1 = finish4(acc[i][1], e, i, e->col_sum ? e->col_sum + 4 : NULL);
        if (e->out == QOUT_I32) {
            int32_t *row = (int32_t *)c + i * rs;
            vst1q_s32(row, v0);
            vst1q_s32(row + 4, v1);
            continue;
        }
        int16x8_t w = vcombine_s16(requant4(v0, e, i), requant4(v1, e, i));
        if (e->out == QOUT_U8)
            vst1_u8((uint8_t *)c + i * rs, vqmovun_s16(w));
        else
            vst1_s8((int8_t *)c + i * rs, vqmovn_s16(w));
    }
}

const QGemmUkernel qgemm_ukernel_neondot = {"qgemm_8x8_neondot", ISA_NEONDOT, MR, NR, true,
                                            qgemm_ukernel_8x8__neondot};
