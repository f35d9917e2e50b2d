/* peak.c - measuring the machine's FP32 FMA peak (one core), to judge kernels against. */
#include "platforms/peak.h"

#include <math.h>
#include <stdint.h>
#include <time.h>

#ifdef CRUN_HAVE_NEON
float peak_loop_neon(int64_t iters);
#endif
#ifdef CRUN_HAVE_AVX2
float peak_loop_avx2(int64_t iters);
#endif
#ifdef CRUN_HAVE_AVX512
float peak_loop_avx512(int64_t iters);
#endif

/* Portable: twelve scalar chains (compilers may vectorise them; it is only a fallback). */
static float peak_loop_scalar(int64_t iters)
{
    float a[12];
    for (int i = 0; i < 12; i++)
        a[i] = (float)i;
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = fmaf(a[i], 0.999999f, 1e-7f);
    float s = 0;
    for (int i = 0; i < 12; i++)
        s += a[i];
    return s;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

volatile float peak_sink; /* keeps the loops from being optimised away */

double fma_peak_gflops(Isa *isa_out)
{
    Isa isa = isa_base(isa_best());
    int width = 1;
    float (*loop)(int64_t) = peak_loop_scalar;
#ifdef CRUN_HAVE_AVX512
    if (isa == ISA_AVX512)
        loop = peak_loop_avx512, width = 16;
#endif
#ifdef CRUN_HAVE_AVX2
    if (isa == ISA_AVX2)
        loop = peak_loop_avx2, width = 8;
#endif
#ifdef CRUN_HAVE_NEON
    if (isa == ISA_NEON)
        loop = peak_loop_neon, width = 4;
#endif
    if (width == 1)
        isa = ISA_SCALAR;
    /* Best of a few ~20 ms runs: the machine may be busy. */
    int64_t iters = 1 << 16;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        peak_sink = loop(iters);
        double dt = now() - t0;
        if (dt < 0.02 && r == 0) {
            iters = (int64_t)((double)iters * 0.02 / (dt > 1e-6 ? dt : 1e-6)) + 1;
            r--;
            continue;
        }
        double gflops = 2.0 * 12 * width * (double)iters / dt * 1e-9;
        best = gflops > best ? gflops : best;
    }
    if (isa_out)
        *isa_out = isa;
    return best;
}
