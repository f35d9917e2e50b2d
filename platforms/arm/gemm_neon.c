/* gemm_neon.c - the GEMM microkernels (platforms/simd/gemm.inc) built for NEON: 8x8 (16
 * of the 32 vector registers), 4x8 for few rows and 1x8 for matrix-vector products. */
#define VEC_ISA_NEON
#define GEMM_MR 8
#define GEMM_UKERNEL gemm_ukernel_8x8__neon
#include "platforms/simd/gemm.inc"
#undef GEMM_MR
#undef GEMM_UKERNEL
#define GEMM_MR 4
#define GEMM_UKERNEL gemm_ukernel_4x8__neon
#include "platforms/simd/gemm.inc"

#undef GEMM_MR
#undef GEMM_UKERNEL
#define GEMM_MR 1
#define GEMM_UKERNEL gemm_ukernel_1x8__neon
#include "platforms/simd/gemm.inc"
const GemmUkernel gemm_ukernel_neon = {"gemm_f32_8x8_neon", ISA_NEON, 8, GEMM_NR, gemm_ukernel_8x8__neon, NULL};
const GemmUkernel gemm_ukernel_neon_4 = {"gemm_f32_4x8_neon", ISA_NEON, 4, GEMM_NR, gemm_ukernel_4x8__neon, NULL};
const GemmUkernel gemm_ukernel_neon_1 = {"gemm_f32_1x8_neon", ISA_NEON, 1, GEMM_NR, gemm_ukernel_1x8__neon, NULL};
