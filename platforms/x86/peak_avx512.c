/* peak_avx512.c - the FP32 FMA rate of one core with AVX-512: twelve independent chains of
 * 16-wide fused multiply-adds, enough to cover FMA latency on current cores. */
#include <immintrin.h>
#include <stdint.h>

float peak_loop_avx512(int64_t iters);
float peak_loop_avx512(int64_t iters)
{
    __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm512_fmadd_ps(a[i], m, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}
