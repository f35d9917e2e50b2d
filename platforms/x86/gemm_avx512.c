/* gemm_avx512.c - the AVX-512 single-precision GEMM microkernel: a 14x32 tile of C held in
 * 28 zmm accumulators; each k step broadcasts fourteen A values against two B vectors.
 * Built with -mavx512f (and friends); chosen at run time only when the CPU has them. */
#include <immintrin.h>
#include <string.h>

#include "ops/gemm.h"

#define MR 14
#define NR 32

static void store_partial(const float *acc, float *c, int64_t ldc, int m, int n, bool accumulate)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i * NR + j] : acc[i * NR + j];
}

#define DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define STEP(i) \
    do { \
        __m512 a_ = _mm512_set1_ps(a[i]); \
        c##i##0 = _mm512_fmadd_ps(a_, b0, c##i##0); \
        c##i##1 = _mm512_fmadd_ps(a_, b1, c##i##1); \
    } while (0)
#define STORE(i) \
    do { \
        float *r_ = c + (i) * ldc; \
        if (accumulate) { \
            c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(r_)); \
            c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(r_ + 16)); \
        } \
        _mm512_storeu_ps(r_, c##i##0); \
        _mm512_storeu_ps(r_ + 16, c##i##1); \
    } while (0)
#define SPILL(i) \
    do { \
        _mm512_storeu_ps(tmp + (i) * NR, c##i##0); \
        _mm512_storeu_ps(tmp + (i) * NR + 16, c##i##1); \
    } while (0)
#define ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define STEP_(i) STEP(i);
#define STORE_(i) STORE(i);
#define SPILL_(i) SPILL(i);

static void ukernel_14x32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                          bool accumulate)
{
    ALL(DECL)
    for (int64_t k = 0; k < kc; k++, a += MR, b += NR) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        ALL(STEP_)
    }
    if (m == MR && n == NR) {
        ALL(STORE_)
        return;
    }
    float tmp[MR * NR];
    ALL(SPILL_)
    store_partial(tmp, c, ldc, m, n, accumulate);
}

const GemmUkernel gemm_ukernel_avx512 = {"gemm_f32_14x32_avx512", ISA_AVX512, MR, NR, ukernel_14x32};
