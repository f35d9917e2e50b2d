/* act_neon.c - the activations (platforms/simd/act.inc) built for NEON. */
#define VEC_ISA_NEON
#include "platforms/simd/act.inc"

ActVecFn act_vec_neon(void);
ActVecFn act_vec_neon(void) { return act_f32__neon; }
