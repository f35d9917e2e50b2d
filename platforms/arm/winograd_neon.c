/* winograd_neon.c - the Winograd transforms (platforms/simd/winograd.inc) built for NEON. */
#define VEC_ISA_NEON
#include "platforms/simd/winograd.inc"

const WinoUkernels wino_ukernels_neon = {wino_input_plane__neon, wino_output_plane__neon};
