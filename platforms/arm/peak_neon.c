/* peak_neon.c - the FP32 FMA rate of one core with NEON: twelve independent chains of
 * 4-wide fused multiply-adds (enough to cover the FMA latency of the cores we target). */
#include <arm_neon.h>
#include <stdint.h>

float peak_loop_neon(int64_t iters);
float peak_loop_neon(int64_t iters)
{
    float32x4_t a[12], m = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = vdupq_n_f32((float)i);
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = vfmaq_f32(c, a[i], m);
    float32x4_t s = a[0];
    for (int i = 1; i < 12; i++)
        s = vaddq_f32(s, a[i]);
    return vaddvq_f32(s);
}
