/* act_avx512.c - the activations (platforms/simd/act.inc) built for AVX512. */
#define VEC_ISA_AVX512
#include "platforms/simd/act.inc"

ActVecFn act_vec_avx512(void);
ActVecFn act_vec_avx512(void) { return act_f32__avx512; }
