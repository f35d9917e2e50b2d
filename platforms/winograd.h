/* winograd.h - SIMD transforms of Winograd F(4x4, 3x3) convolution, one plane at a time
 * (platforms/simd/winograd.inc, built per ISA; ops/conv_winograd.c drives them). */
#ifndef CRUN_PLATFORMS_WINOGRAD_H
#define CRUN_PLATFORMS_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

#include "platforms/cpu.h"

typedef struct WinoPlane {
    const float *x;   /* input: one channel plane, H x W */
    float *y;         /* output: one channel plane, OH x OW */
    int64_t H, W, OH, OW, pt, pl;
    int64_t ty0, th;  /* the tile rows done: th from ty0 */
    int64_t tw;       /* tile columns */
    float *v;         /* transformed values of this channel: element xi of tile t (counted from
                         the first of row ty0) at v[xi * xi_stride + t] */
    int64_t xi_stride;
    float bias;       /* output: added to every value */
    float *scratch;   /* wino_scratch_floats() floats */
} WinoPlane;

/* Columns per phase in the input scratch: the tile count rounded up to whole 16-lane
 * vectors, plus the one extra column that taps 4 and 5 reach. */
static inline int64_t wino_phase_len(int64_t tw) { return (tw + 15) / 16 * 16 + 1; }
/* The six rows' phases, one padded row, and the output's 16 x 16 lanes. */
static inline size_t wino_scratch_floats(int64_t tw) { return (size_t)(7 * 4 * wino_phase_len(tw) + 16 * 16); }

typedef struct WinoUkernels {
    void (*input_plane)(const WinoPlane *w);  /* x -> v (B^T d B of every tile) */
    void (*output_plane)(const WinoPlane *w); /* v -> y (A^T m A + bias, cropped) */
} WinoUkernels;

#ifdef CRUN_HAVE_AVX2
extern const WinoUkernels wino_ukernels_avx2;
#endif
#ifdef CRUN_HAVE_AVX512
extern const WinoUkernels wino_ukernels_avx512;
#endif
#ifdef CRUN_HAVE_NEON
extern const WinoUkernels wino_ukernels_neon;
#endif

#endif
