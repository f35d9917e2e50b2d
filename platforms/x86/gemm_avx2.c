/* gemm_avx2.c - the GEMM microkernels (platforms/simd/gemm.inc) built for AVX2: 6x16
 * (12 ymm accumulators), 4x16 for few rows and 1x16 for matrix-vector products. */
#define VEC_ISA_AVX2
#define GEMM_MR 6
#define GEMM_UKERNEL gemm_ukernel_6x16__avx2
#include "platforms/simd/gemm.inc"
#undef GEMM_MR
#undef GEMM_UKERNEL
#define GEMM_MR 4
#define GEMM_UKERNEL gemm_ukernel_4x16__avx2
#include "platforms/simd/gemm.inc"

#undef GEMM_MR
#undef GEMM_UKERNEL
#define GEMM_MR 1
#define GEMM_UKERNEL gemm_ukernel_1x16__avx2
#include "platforms/simd/gemm.inc"
const GemmUkernel gemm_ukernel_avx2 = {"gemm_f32_6x16_avx2", ISA_AVX2, 6, GEMM_NR, gemm_ukernel_6x16__avx2, NULL};
const GemmUkernel gemm_ukernel_avx2_4 = {"gemm_f32_4x16_avx2", ISA_AVX2, 4, GEMM_NR, gemm_ukernel_4x16__avx2, NULL};
const GemmUkernel gemm_ukernel_avx2_1 = {"gemm_f32_1x16_avx2", ISA_AVX2, 1, GEMM_NR, gemm_ukernel_1x16__avx2, NULL};
