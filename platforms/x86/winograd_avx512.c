/* winograd_avx512.c - the Winograd transforms (platforms/simd/winograd.inc) built for AVX512. */
#define VEC_ISA_AVX512
#include "platforms/simd/winograd.inc"

const WinoUkernels wino_ukernels_avx512 = {wino_input_plane__avx512, wino_output_plane__avx512};
