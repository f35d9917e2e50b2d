/* window_neon.c - the window kernels (platforms/simd/window.inc) built for NEON. */
#define VEC_ISA_NEON
#include "platforms/simd/window.inc"

const WindowUkernels window_ukernels_neon = {"neon", ISA_NEON, f32_dwconv_plane__neon, f32_maxpool_plane__neon};
const WindowBlockUkernel window_dw_block_neon = {f32_dwconv_block__neon, VF_N};
const WindowBlockUkernel window_max_block_neon = {f32_maxpool_block__neon, VF_N};
const WindowQuadsUkernel window_q8_dw_neon = {q8_dwconv_quads__neon};
