/* softmax_avx512.c - the Softmax row kernel (platforms/simd/softmax.inc) built for AVX512. */
#include <stdbool.h>

#define VEC_ISA_AVX512
#include "platforms/simd/softmax.inc"
#include "platforms/softmax.h"

const SoftmaxRowFn softmax_row_avx512 = softmax_row_f32__avx512;
const LayerNormRowFn layernorm_row_avx512 = layernorm_row_f32__avx512;
