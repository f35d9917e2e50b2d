/* softmax.h - the vector Softmax / LogSoftmax row kernels (platforms/simd/softmax.inc). */
#ifndef CRUN_PLATFORMS_SOFTMAX_H
#define CRUN_PLATFORMS_SOFTMAX_H

#include <stdbool.h>
#include <stdint.h>

/* y[0..n) = softmax of x[0..n) (log_form: log-softmax); y may be x. */
typedef void (*SoftmaxRowFn)(const float *x, float *y, int64_t n, bool log_form);

#ifdef CRUN_HAVE_AVX2
extern const SoftmaxRowFn softmax_row_avx2;
#endif
#ifdef CRUN_HAVE_AVX512
extern const SoftmaxRowFn softmax_row_avx512;
#endif
#ifdef CRUN_HAVE_NEON
extern const SoftmaxRowFn softmax_row_neon;
#endif

#endif
