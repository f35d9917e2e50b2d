/* gemm_avx2.c - the GEMM microkernel (platforms/simd/gemm.inc) built for AVX2: a 6x16
 * tile of C in 12 vector accumulators. */
#define VEC_ISA_AVX2
#define GEMM_MR 6
#include "platforms/simd/gemm.inc"

const GemmUkernel gemm_ukernel_avx2 = {"gemm_f32_6x16_avx2", ISA_AVX2, GEMM_MR, GEMM_NR, gemm_ukernel__avx2};
