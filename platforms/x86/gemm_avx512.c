/* gemm_avx512.c - the GEMM microkernel (platforms/simd/gemm.inc) built for AVX512: a 14x32
 * tile of C in 28 vector accumulators. */
#define VEC_ISA_AVX512
#define GEMM_MR 14
#include "platforms/simd/gemm.inc"

const GemmUkernel gemm_ukernel_avx512 = {"gemm_f32_14x32_avx512", ISA_AVX512, GEMM_MR, GEMM_NR, gemm_ukernel__avx512};
