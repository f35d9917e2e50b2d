/* softmax_avx2.c - the Softmax row kernel (platforms/simd/softmax.inc) built for AVX2. */
#include <stdbool.h>

#define VEC_ISA_AVX2
#include "platforms/simd/softmax.inc"
#include "platforms/softmax.h"

const SoftmaxRowFn softmax_row_avx2 = softmax_row_f32__avx2;
const LayerNormRowFn layernorm_row_avx2 = layernorm_row_f32__avx2;
