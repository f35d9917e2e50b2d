/* window.h - SIMD kernels that slide a small 2-D window over one channel plane: depthwise
 * convolution and max pooling. Written once (platforms/simd/window.inc) and built per ISA.
 *
 * The plane is first copied into scratch with its padding made explicit and, for stride
 * s > 1, split into s column phases (phase p holds columns p, p+s, p+2s, ...), so every
 * window tap reads a contiguous run of the copy: no bounds checks and no gathers in the
 * inner loop. Rows are padded to whole vectors, so no tap reads past the copy. */
#ifndef CRUN_PLATFORMS_WINDOW_H
#define CRUN_PLATFORMS_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "platforms/cpu.h"

typedef struct WindowPlane {
    const float *x;     /* input plane, H x W */
    float *y;           /* output plane, OH x OW */
    int64_t H, W, OH, OW;
    int kh, kw, sh, sw; /* window and strides (dilation 1) */
    int64_t pt, pl;     /* padding before rows and columns */
    const float *w;     /* depthwise: kh * kw taps */
    float bias;         /* depthwise: added to every output */
    float lo, hi;       /* outputs clamped to [lo, hi] (Relu, Relu6; -inf..inf for none) */
    float *scratch;     /* window_scratch_floats() floats */
} WindowPlane;

/* Scratch geometry (the same for every ISA): a phase holds the output width rounded up
 * to 16 lanes plus the taps that reach past it; a row holds sw phases. */
static inline int64_t window_phase_len(const WindowPlane *p) { return (p->OW + 15) / 16 * 16 + (p->kw - 1) / p->sw; }
static inline int64_t window_row_stride(const WindowPlane *p) { return p->sw * window_phase_len(p); }
static inline int64_t window_rows(const WindowPlane *p) { return (p->OH - 1) * p->sh + p->kh; }
/* The padded phases of every row. */
static inline size_t window_scratch_floats(const WindowPlane *p)
{
    return (size_t)(window_rows(p) * window_row_stride(p));
}

/* Depthwise convolution of four 8-bit channels at once (QLinearConv). The input is a quad
 * plane: each padded position holds the four channels' q - zq side by side (exact integers
 * as floats, 0 in the padding), each row split into sw phases of pw positions, as above;
 * a vector covers VF_N / 4 consecutive outputs of a row. The sums (exact: integers of at
 * most 9 bits, at most 49 products) are requantized as the packed 8-bit kernels' epilogue
 * does: clamp(round_half_even((float)(sum + bias[c]) * mult[c]), lo, hi) + zy, per
 * channel c, and stored as bytes into four OH x OW planes (NULL: a channel past the last). */
typedef struct WindowQuads {
    const float *x; /* rows of row floats; readable for VF_N floats past the last position */
    uint8_t *y[4];
    int64_t OH, OW, row, pw;
    int kh, kw, sh, sw, dh, dw;
    const float *w;      /* kh * kw taps, each the four channels' weights minus zero point */
    const int32_t *bias; /* [4] */
    const float *mult;   /* [4] */
    float lo, hi, zy;    /* the range relative to zy, and zy */
} WindowQuads;

/* Depthwise convolution of a block of up to VF_N channels at once, for small planes, where
 * a plane's rows fill few vectors: the block's planes are interleaved into scratch (each
 * padded position holds the n channels side by side, zeros around and past n), each
 * output position is then one vector of n channels, and the results are written back to
 * the n output planes. Dilations and any stride take no special layout here. */
typedef struct WindowBlock {
    const float *x;     /* n input planes of H x W, x_stride floats apart */
    float *y;           /* n output planes of OH x OW, y_stride floats apart */
    int64_t x_stride, y_stride;
    int n;              /* channels in the block, 1..VF_N */
    int64_t H, W, OH, OW;
    int kh, kw, sh, sw, dh, dw;
    int64_t pt, pl;     /* padding before rows and columns */
    const float *w;     /* n channels' kh * kw taps, one channel after another */
    const float *bias;  /* n values, or NULL */
    float lo, hi;       /* outputs clamped to [lo, hi] */
    float *scratch;     /* window_block_scratch_floats() floats */
} WindowBlock;

/* The most lanes any ISA's vector has: scratch is sized for it. */
#define WINDOW_BLOCK_LANES 16

/* Scratch: the padded interleaved input (rows x cols positions), the input rows
 * interleaved as they lie (rows x W), and the interleaved output, WINDOW_BLOCK_LANES
 * floats a position. */
static inline int64_t window_block_rows(const WindowBlock *b) { return (b->OH - 1) * b->sh + (b->kh - 1) * b->dh + 1; }
static inline int64_t window_block_cols(const WindowBlock *b) { return (b->OW - 1) * b->sw + (b->kw - 1) * b->dw + 1; }
static inline size_t window_block_scratch_floats(const WindowBlock *b)
{
    int64_t rows = window_block_rows(b);
    return (size_t)(rows * (window_block_cols(b) + b->W) + b->OH * b->OW) * WINDOW_BLOCK_LANES;
}

/* The plane kernels of one ISA. Each family has a table of its own, so that a selective
 * build links only the kernels its ops' variants name. */
typedef struct WindowUkernels {
    const char *isa_name;
    Isa isa;
    void (*dwconv)(const WindowPlane *p);  /* y = clamp(bias + sum w * x) */
    void (*maxpool)(const WindowPlane *p); /* y = max over the window's inside elements */
} WindowUkernels;

/* A block kernel (depthwise: y = clamp(bias + sum w * x); max pooling: y = max over the
 * window) over up to `lanes` (VF_N) channels. */
typedef struct WindowBlockUkernel {
    void (*run)(const WindowBlock *b);
    int lanes;
} WindowBlockUkernel;

typedef struct WindowQuadsUkernel {
    void (*run)(const WindowQuads *q);
} WindowQuadsUkernel;

/* Largest window the kernels take (per axis) and largest stride. */
#define WINDOW_MAX_K 7
#define WINDOW_MAX_S 4

#define WINDOW_TABLES(isa) \
    extern const WindowUkernels window_ukernels_##isa; \
    extern const WindowBlockUkernel window_dw_block_##isa, window_max_block_##isa; \
    extern const WindowQuadsUkernel window_q8_dw_##isa;
#ifdef CRUN_HAVE_AVX2
WINDOW_TABLES(avx2)
#endif
#ifdef CRUN_HAVE_AVX512
WINDOW_TABLES(avx512)
#endif
#ifdef CRUN_HAVE_NEON
WINDOW_TABLES(neon)
#endif
#undef WINDOW_TABLES

#endif
