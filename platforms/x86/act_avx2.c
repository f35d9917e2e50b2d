/* act_avx2.c - the activations (platforms/simd/act.inc) built for AVX2. */
#define VEC_ISA_AVX2
#include "platforms/simd/act.inc"

ActVecFn act_vec_avx2(void);
ActVecFn act_vec_avx2(void) { return act_f32__avx2; }
