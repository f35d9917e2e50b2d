/* softmax.h - vector row kernels (platforms/simd/softmax.inc): Softmax / LogSoftmax and
 * LayerNorm of contiguous rows. */
#ifndef CRUN_PLATFORMS_SOFTMAX_H
#define CRUN_PLATFORMS_SOFTMAX_H

#include <stdbool.h>
#include <stdint.h>

/* y[0..n) = softmax of x[0..n) (log_form: log-softmax); y may be x. */
typedef void (*SoftmaxRowFn)(const float *x, float *y, int64_t n, bool log_form);

/* y[0..n) = LayerNorm of x[0..n) with one scale (and bias, or NULL) per element. */
typedef void (*LayerNormRowFn)(const float *x, float *y, int64_t n, const float *scale, const float *bias, float eps);

#ifdef CRUN_HAVE_AVX2
extern const SoftmaxRowFn softmax_row_avx2;
extern const LayerNormRowFn layernorm_row_avx2;
#endif
#ifdef CRUN_HAVE_AVX512
extern const SoftmaxRowFn softmax_row_avx512;
extern const LayerNormRowFn layernorm_row_avx512;
#endif
#ifdef CRUN_HAVE_NEON
extern const SoftmaxRowFn softmax_row_neon;
extern const LayerNormRowFn layernorm_row_neon;
#endif

#endif
