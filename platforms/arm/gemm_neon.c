/* gemm_neon.c - the GEMM microkernel (platforms/simd/gemm.inc) built for NEON: an 8x8 tile
 * of C in 16 of the 32 vector registers. */
#define VEC_ISA_NEON
#define GEMM_MR 8
#include "platforms/simd/gemm.inc"

const GemmUkernel gemm_ukernel_neon = {"gemm_f32_8x8_neon", ISA_NEON, GEMM_MR, GEMM_NR, gemm_ukernel__neon};
