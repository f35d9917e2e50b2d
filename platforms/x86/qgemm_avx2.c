/* qgemm_avx2.c - the 8-bit GEMM microkernel for AVX2: a 4 x 16 tile. AVX2 has no exact
 * u8 x s8 dot product (VPMADDUBSW saturates its pair sums), so each quad is split into
 * its even and odd bytes widened to 16 bits and multiplied with VPMADDWD, exact. */
#include <immintrin.h>

#include "ops/qgemm.h"

#define MR 4
#define NR 16

static inline void store8(__m256i v, const QGemmEpi *e, int i, const int32_t *col_sum, void *c, int n)
{
    int32_t lanes[8];
    v = _mm256_add_epi32(v, _mm256_set1_epi32(e->row_add[i]));
    if (e->row_zw) {
        int32_t cs8[8] = {0};
        __builtin_memcpy(cs8, col_sum, (size_t)(n < 8 ? n : 8) * 4);
        v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_set1_epi32(e->row_zw[i]), _mm256_loadu_si256((const __m256i *)cs8)));
    }
    if (e->out == QOUT_I32) {
        if (n >= 8) {
            _mm256_storeu_si256((__m256i *)c, v);
            return;
        }
        _mm256_storeu_si256((__m256i *)lanes, v);
        __builtin_memcpy(c, lanes, (size_t)n * 4);
        return;
    }
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(e->mult[i]));
    f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps((float)(e->lo - e->zy))), _mm256_set1_ps((float)(e->hi - e->zy)));
    f = _mm256_round_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i q = _mm256_add_epi32(_mm256_cvttps_epi32(f), _mm256_set1_epi32(e->zy));
    /* 8 int32 in [lo, hi] to 8 bytes: pack to 16 bits (exact), then to 8 with the
     * signedness of the output (exact too). */
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    __m128i bytes = e->out == QOUT_U8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
    if (n >= 8)
        _mm_storel_epi64((__m128i *)c, bytes);
    else {
        _mm_storel_epi64((__m128i *)lanes, bytes);
        __builtin_memcpy(c, lanes, (size_t)n);
    }
}

/* The sums of one tile into t (row i at t + i * NR), in named accumulators: gcc keeps an
 * accumulator array in memory across iterations. */
static inline void accumulate(int64_t kq, const int8_t *a, const uint8_t *b, int32_t *t)
{
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const __m256i lo_bytes = _mm256_set1_epi16(0x00FF);
    for (int64_t q = 0; q < kq; q++, a += MR * 4, b += NR * 4) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)b), b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
        /* 16-bit lanes: even holds bytes k0, k2 of each quad, odd holds k1, k3 */
        __m256i be0 = _mm256_and_si256(b0, lo_bytes), bo0 = _mm256_srli_epi16(b0, 8);
        __m256i be1 = _mm256_and_si256(b1, lo_bytes), bo1 = _mm256_srli_epi16(b1, 8);
#define ROW(i)                                                                                                         \
    {                                                                                                                  \
        int32_t w;                                                                                                     \
        __builtin_memcpy(&w, a + 4 * (i), 4);                                                                          \
        __m256i wv = _mm256_set1_epi32(w);                                                                             \
        __m256i we = _mm256_srai_epi16(_mm256_slli_epi16(wv, 8), 8), wo = _mm256_srai_epi16(wv, 8);                    \
        c##i##0 = _mm256_add_epi32(c##i##0, _mm256_add_epi32(_mm256_madd_epi16(be0, we), _mm256_madd_epi16(bo0, wo))); \
        c##i##1 = _mm256_add_epi32(c##i##1, _mm256_add_epi32(_mm256_madd_epi16(be1, we), _mm256_madd_epi16(bo1, wo))); \
    }
        ROW(0) ROW(1) ROW(2) ROW(3)
#undef ROW
    }
    __m256i *o = (__m256i *)t;
    o[0] = c00, o[1] = c01, o[2] = c10, o[3] = c11, o[4] = c20, o[5] = c21, o[6] = c30, o[7] = c31;
}

static void qgemm_ukernel_4x16__avx2(int64_t kq, const int8_t *a, const uint8_t *b, const QGemmEpi *e, void *c,
                                     int64_t rs, int64_t cs, int m, int n)
{
    _Alignas(32) int32_t t[MR * NR];
    accumulate(kq, a, b, t);
    if (cs != 1) { /* a transposed store (MatMul): the portable path */
        qgemm_store_tile(t, NR, e, c, rs, cs, m, n);
        return;
    }
    size_t esz = e->out == QOUT_I32 ? 4 : 1;
    for (int i = 0; i < m; i++) {
        char *row = (char *)c + (size_t)(i * rs) * esz;
        const __m256i *ti = (const __m256i *)(t + i * NR);
        store8(ti[0], e, i, e->col_sum, row, n < 8 ? n : 8);
        if (n > 8)
            store8(ti[1], e, i, e->col_sum ? e->col_sum + 8 : NULL, row + 8 * esz, n - 8);
    }
}

const QGemmUkernel qgemm_ukernel_avx2 = {"qgemm_4x16_avx2", ISA_AVX2, MR, NR, false, qgemm_ukernel_4x16__avx2};
