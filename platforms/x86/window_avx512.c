/* window_avx512.c - the window kernels (platforms/simd/window.inc) built for AVX512. */
#define VEC_ISA_AVX512
#include "platforms/simd/window.inc"

const WindowUkernels window_ukernels_avx512 = {"avx512", ISA_AVX512, f32_dwconv_plane__avx512, f32_maxpool_plane__avx512};
const WindowBlockUkernel window_dw_block_avx512 = {f32_dwconv_block__avx512, VF_N};
const WindowBlockUkernel window_max_block_avx512 = {f32_maxpool_block__avx512, VF_N};
const WindowQuadsUkernel window_q8_dw_avx512 = {q8_dwconv_quads__avx512};
