/* gemm_avx512.c - the GEMM microkernels (platforms/simd/gemm.inc) built for AVX-512:
 * 14x32 (28 zmm accumulators) for tall problems, 8x32 and 4x32 for few rows, where
 * 14-row strips would mostly multiply padding, and 1x32 for matrix-vector products. */
#define VEC_ISA_AVX512
#define GEMM_MR 14
#define GEMM_UKERNEL gemm_ukernel_14x32__avx512
#include "platforms/simd/gemm.inc"
#undef GEMM_MR
#undef GEMM_UKERNEL
#define GEMM_MR 8
#define GEMM_UKERNEL gemm_ukernel_8x32__avx512
#include "platforms/simd/gemm.inc"
#undef GEMM_MR
#undef GEMM_UKERNEL
#define GEMM_MR 4
#define GEMM_UKERNEL gemm_ukernel_4x32__avx512
#include "platforms/simd/gemm.inc"

#undef GEMM_MR
#undef GEMM_UKERNEL
#define GEMM_MR 1
#define GEMM_UKERNEL gemm_ukernel_1x32__avx512
#include "platforms/simd/gemm.inc"
const GemmUkernel gemm_ukernel_avx512 = {"gemm_f32_14x32_avx512", ISA_AVX512, 14, GEMM_NR, gemm_ukernel_14x32__avx512, NULL};
const GemmUkernel gemm_ukernel_avx512_8 = {"gemm_f32_8x32_avx512", ISA_AVX512, 8, GEMM_NR, gemm_ukernel_8x32__avx512, NULL};
const GemmUkernel gemm_ukernel_avx512_4 = {"gemm_f32_4x32_avx512", ISA_AVX512, 4, GEMM_NR, gemm_ukernel_4x32__avx512, NULL};
const GemmUkernel gemm_ukernel_avx512_1 = {"gemm_f32_1x32_avx512", ISA_AVX512, 1, GEMM_NR, gemm_ukernel_1x32__avx512, NULL};
