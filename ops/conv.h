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

#endif
