/* winograd_avx2.c - the Winograd transforms (platforms/simd/winograd.inc) built for AVX2. */
#define VEC_ISA_AVX2
#include "platforms/simd/winograd.inc"

const WinoUkernels wino_ukernels_avx2 = {wino_input_plane__avx2, wino_output_plane__avx2};
