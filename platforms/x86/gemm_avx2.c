/* gemm_avx2.c - the AVX2+FMA single-precision GEMM microkernel: a 6x16 tile of C held in
 * twelve ymm accumulators; each k step broadcasts six A values against two B vectors.
 * Built with -mavx2 -mfma; chosen at run time only when the CPU has them. */
#include <immintrin.h>
#include <string.h>

#include "ops/gemm.h"

#define MR 6
#define NR 16

/* Writes acc (MR x NR, row-major) to the m x n corner of c, adding when asked. */
static void store_partial(const float *acc, float *c, int64_t ldc, int m, int n, bool accumulate)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i * NR + j] : acc[i * NR + j];
}

#define DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
#define STEP(i) \
    do { \
        __m256 a_ = _mm256_broadcast_ss(a + i); \
        c##i##0 = _mm256_fmadd_ps(a_, b0, c##i##0); \
        c##i##1 = _mm256_fmadd_ps(a_, b1, c##i##1); \
    } while (0)
#define STORE(i) \
    do { \
        float *r_ = c + (i) * ldc; \
        if (accumulate) { \
            c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(r_)); \
            c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(r_ + 8)); \
        } \
        _mm256_storeu_ps(r_, c##i##0); \
        _mm256_storeu_ps(r_ + 8, c##i##1); \
    } while (0)
#define SPILL(i) \
    do { \
        _mm256_storeu_ps(tmp + (i) * NR, c##i##0); \
        _mm256_storeu_ps(tmp + (i) * NR + 8, c##i##1); \
    } while (0)

static void ukernel_6x16(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                         bool accumulate)
{
    DECL(0) DECL(1) DECL(2) DECL(3) DECL(4) DECL(5)
    for (int64_t k = 0; k < kc; k++, a += MR, b += NR) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
        STEP(4);
        STEP(5);
    }
    if (m == MR && n == NR) {
        STORE(0);
        STORE(1);
        STORE(2);
        STORE(3);
        STORE(4);
        STORE(5);
        return;
    }
    float tmp[MR * NR];
    SPILL(0);
    SPILL(1);
    SPILL(2);
    SPILL(3);
    SPILL(4);
    SPILL(5);
    store_partial(tmp, c, ldc, m, n, accumulate);
}

const GemmUkernel gemm_ukernel_avx2 = {"gemm_f32_6x16_avx2", ISA_AVX2, MR, NR, ukernel_6x16};
