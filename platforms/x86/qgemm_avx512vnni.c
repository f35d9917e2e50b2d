/* qgemm_avx512vnni.c - the 8-bit GEMM microkernel for AVX-512 VNNI: an 8 x 32 tile in 16
 * zmm accumulators, one VPDPBUSD (u8 activations x s8 weights, 64 products summed into 16
 * int32 lanes without saturation) per row and 16 columns per quad of k. */
#include <immintrin.h>

#include "ops/qgemm.h"

#define MR 8
#define NR 32

/* Finishes one row of 16 lanes: zero-point terms, then int32 or requantized 8-bit store
 * of the first n lanes. */
static inline void store16(__m512i v, const QGemmEpi *e, int i, const int32_t *col_sum, void *c, int n)
{
    __mmask16 mask = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
    v = _mm512_add_epi32(v, _mm512_set1_epi32(e->row_add[i]));
    if (e->row_zw)
        v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(e->row_zw[i]), _mm512_maskz_loadu_epi32(mask, col_sum)));
    if (e->out == QOUT_I32) {
        _mm512_mask_storeu_epi32(c, mask, v);
        return;
    }
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(e->mult[i]));
    f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps((float)(e->lo - e->zy))), _mm512_set1_ps((float)(e->hi - e->zy)));
    __m512i q = _mm512_add_epi32(_mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                 _mm512_set1_epi32(e->zy));
    _mm512_mask_cvtepi32_storeu_epi8(c, mask, q); /* q is in [lo, hi]: its low byte is the value */
}

/* The sums of one tile into t (row i at t + i * NR). The accumulators are named variables,
 * not an array: with an array gcc copies every one of them between registers on each
 * iteration, which halved the kernel's speed. */
static inline void accumulate(int64_t kq, const int8_t *a, const uint8_t *b, int32_t *t)
{
#define ZERO(i) __m512i c##i##0 = _mm512_setzero_si512(), c##i##1 = _mm512_setzero_si512();
    ZERO(0) ZERO(1) ZERO(2) ZERO(3) ZERO(4) ZERO(5) ZERO(6) ZERO(7)
    for (int64_t q = 0; q < kq; q++, a += MR * 4, b += NR * 4) {
        __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64);
#define ROW(i)                                                                                                         \
    {                                                                                                                  \
        int32_t w;                                                                                                     \
        __builtin_memcpy(&w, a + 4 * (i), 4);                                                                          \
        __m512i wv = _mm512_set1_epi32(w);                                                                             \
        c##i##0 = _mm512_dpbusd_epi32(c##i##0, b0, wv);                                                                \
        c##i##1 = _mm512_dpbusd_epi32(c##i##1, b1, wv);                                                                \
    }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
    }
#define SAVE(i)                                                                                                        \
    _mm512_store_si512(t + (i) * NR, c##i##0);                                                                         \
    _mm512_store_si512(t + (i) * NR + 16, c##i##1);
    SAVE(0) SAVE(1) SAVE(2) SAVE(3) SAVE(4) SAVE(5) SAVE(6) SAVE(7)
#undef ZERO
#undef ROW
#undef SAVE
}

static void qgemm_ukernel_8x32__avx512vnni(int64_t kq, const int8_t *a, const uint8_t *b, const QGemmEpi *e, void *c,
                                           int64_t rs, int64_t cs, int m, int n)
{
    _Alignas(64) int32_t t[MR * NR];
    accumulate(kq, a, b, t);
    if (cs != 1) { /* a transposed store (MatMul): the portable path */
        qgemm_store_tile(t, NR, e, c, rs, cs, m, n);
        return;
    }
    size_t esz = e->out == QOUT_I32 ? 4 : 1;
    for (int i = 0; i < m; i++) {
        char *row = (char *)c + (size_t)(i * rs) * esz;
        store16(_mm512_load_si512(t + i * NR), e, i, e->col_sum, row, n);
        if (n > 16)
            store16(_mm512_load_si512(t + i * NR + 16), e, i, e->col_sum ? e->col_sum + 16 : NULL, row + 16 * esz,
                    n - 16);
    }
}

const QGemmUkernel qgemm_ukernel_avx512vnni = {"qgemm_8x32_avx512vnni", ISA_AVX512VNNI, MR, NR, false,
                                               qgemm_ukernel_8x32__avx512vnni};
