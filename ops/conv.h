/* conv.h - Conv's attributes and geometry, shared with the integer convolutions
 * (ConvInteger, QLinearConv in qlinear.c). */
#ifndef CRUN_OPS_CONV_H
#define CRUN_OPS_CONV_H

#include "ops/spatial.h"

typedef struct ConvParams {
    WindowAttrs w;
    int64_t group;
} ConvParams;

typedef struct ConvGeom {
    WindowGeom w;
    int64_t N, C, M, G, Cg, Mg; /* batch, in/out channels, groups, per-group channels */
} ConvGeom;

/* Reads the window attributes and group into p (already allocated in n->params). */
crun_status conv_params_parse(Node *n, ConvParams *p, Diag *d);

/* Fills g from X's and W's shapes; returns a message (in buf or static) on failure, NULL
 * when the shapes fit. */
const char *conv_geom(const ConvParams *p, const Tensor *x, const Tensor *w, ConvGeom *g, char *buf, size_t bufsz);
/* conv_geom for shapes the op's infer already accepted (kernels, prepare functions). */
void conv_geom_known(const void *params, const Tensor *x, const Tensor *w, ConvGeom *g);
/* A 1x1 window with stride 1 and no padding: the input planes are the GEMM operand. */
bool conv_is_pointwise(const ConvGeom *g);

/* Steps kernel row (c, kz, ky, kx) of an im2col matrix to the next one, like an
 * odometer with kx fastest. */
static inline void conv_next_tap(const WindowGeom *w, int64_t *c, int64_t *kz, int64_t *ky, int64_t *kx)
{
    if (++*kx < w->k[2])
        return;
    *kx = 0;
    if (++*ky < w->k[1])
        return;
    *ky = 0;
    if (++*kz < w->k[0])
        return;
    *kz = 0;
    ++*c;
}

#endif
