/* softmax_neon.c - the Softmax row kernel (platforms/simd/softmax.inc) built for NEON. */
#include <stdbool.h>

#define VEC_ISA_NEON
#include "platforms/simd/softmax.inc"
#include "platforms/softmax.h"

const SoftmaxRowFn softmax_row_neon = softmax_row_f32__neon;
const LayerNormRowFn layernorm_row_neon = layernorm_row_f32__neon;
