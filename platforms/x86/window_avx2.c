/* window_avx2.c - the window kernels (platforms/simd/window.inc) built for AVX2. */
#define VEC_ISA_AVX2
#include "platforms/simd/window.inc"

const WindowUkernels window_ukernels_avx2 = {"avx2", ISA_AVX2, f32_dwconv_plane__avx2, f32_maxpool_plane__avx2};
const WindowBlockUkernel window_dw_block_avx2 = {f32_dwconv_block__avx2, VF_N};
const WindowBlockUkernel window_max_block_avx2 = {f32_maxpool_block__avx2, VF_N};
const WindowQuadsUkernel window_q8_dw_avx2 = {q8_dwconv_quads__avx2};
