/* spatial.c - window attributes and geometry shared by Conv and pooling (see spatial.h). */
#include "ops/spatial.h"

#include <stdio.h>
#include <string.h>

static int auto_pad_parse(const char *s)
{
    if (!s[0] || strcmp(s, "NOTSET") == 0)
        return PAD_NOTSET;
    if (strcmp(s, "SAME_UPPER") == 0)
        return PAD_SAME_UPPER;
    if (strcmp(s, "SAME_LOWER") == 0)
        return PAD_SAME_LOWER;
    if (strcmp(s, "VALID") == 0)
        return PAD_VALID;
    return -1;
}

/* Values are also bounded above so that window arithmetic on int64 can never overflow. */
static crun_status check_min(const Node *n, const char *name, const int64_t *v, int count, int64_t min, Diag *d)
{
    for (int i = 0; i < count; i++)
        if (v[i] < min || v[i] > SPATIAL_ATTR_MAX)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "%s must be in [%lld, %lld] (got %lld)", name,
                             (long long)min, (long long)SPATIAL_ATTR_MAX, (long long)v[i]);
    return CRUN_OK;
}

crun_status window_attrs_parse(Node *n, WindowAttrs *w, Diag *d)
{
    const char *ap = "NOTSET";
    crun_status st = attr_get_string(n, "auto_pad", "NOTSET", &ap, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "kernel_shape", w->kernel, 3, &w->n_kernel, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "strides", w->strides, 3, &w->n_strides, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "dilations", w->dilations, 3, &w->n_dilations, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "pads", w->pads, 6, &w->n_pads, d);
    if (st != CRUN_OK)
        return st;
    if ((w->auto_pad = auto_pad_parse(ap)) < 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "auto_pad '%s' is not valid", ap);
    if ((st = check_min(n, "kernel_shape", w->kernel, w->n_kernel, 1, d)) != CRUN_OK ||
        (st = check_min(n, "strides", w->strides, w->n_strides, 1, d)) != CRUN_OK ||
        (st = check_min(n, "dilations", w->dilations, w->n_dilations, 1, d)) != CRUN_OK)
        return st;
    return check_min(n, "pads", w->pads, w->n_pads, 0, d);
}

int64_t spatial_out(int64_t in, int64_t k, int64_t s, int64_t d, int auto_pad, int64_t pads_b, int64_t pads_e,
                    bool ceil_mode, int64_t *pb, int64_t *pe)
{
    int64_t ek = (k - 1) * d + 1;
    if (auto_pad == PAD_SAME_UPPER || auto_pad == PAD_SAME_LOWER) {
        int64_t out = (in + s - 1) / s;
        int64_t total = CRUN_MAX((int64_t)0, (out - 1) * s + ek - in);
        *pb = auto_pad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
        *pe = total - *pb;
        return out;
    }
    *pb = auto_pad == PAD_VALID ? 0 : pads_b;
    *pe = auto_pad == PAD_VALID ? 0 : pads_e;
    int64_t span = in + *pb + *pe - ek;
    if (span < 0)
        return 0;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + *pb)
        out--;
    return out;
}

const char *window_geom(const WindowAttrs *w, int nsp, const int64_t *in, const int64_t *k, bool ceil_mode,
                        WindowGeom *g, char *buf, size_t size)
{
    memset(g, 0, sizeof *g);
    if (nsp < 1 || nsp > 3)
        return "input must have 1 to 3 spatial dims";
    if ((w->n_kernel && w->n_kernel != nsp) || (w->n_strides && w->n_strides != nsp) ||
        (w->n_dilations && w->n_dilations != nsp) || (w->n_pads && w->n_pads != 2 * nsp))
        return "kernel_shape, strides, dilations or pads do not match the spatial rank";
    g->nsp = nsp;
    g->in_vol = g->out_vol = g->k_vol = 1;
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - nsp); /* the model's axis, < 0 for a padding axis */
        g->in[i] = j < 0 ? 1 : in[j];
        g->k[i] = j < 0 ? 1 : k[j];
        if (g->in[i] > CRUN_MAX_NUMEL || g->k[i] > SPATIAL_ATTR_MAX)
            return "a spatial or kernel dim is too large";
        if (g->in[i] < 1 || g->k[i] < 1) /* the volume checks below divide by the product so far */
            return "a spatial or kernel dim is zero";
        if (j >= 0 && w->n_kernel && w->kernel[j] != g->k[i])
            return "kernel_shape differs from the weight's dims";
        g->s[i] = j < 0 || !w->n_strides ? 1 : w->strides[j];
        g->d[i] = j < 0 || !w->n_dilations ? 1 : w->dilations[j];
        g->out[i] = j < 0 ? 1
                          : spatial_out(g->in[i], g->k[i], g->s[i], g->d[i], w->auto_pad, w->n_pads ? w->pads[j] : 0,
                                        w->n_pads ? w->pads[j + nsp] : 0, ceil_mode, &g->pb[i], &g->pe[i]);
        if (g->out[i] < 1) {
            snprintf(buf, size, "window %lld (dilation %lld) does not fit the padded input %lld", (long long)g->k[i],
                     (long long)g->d[i], (long long)(g->in[i] + g->pb[i] + g->pe[i]));
            return buf;
        }
        if (g->in[i] > CRUN_MAX_NUMEL / g->in_vol || g->out[i] > CRUN_MAX_NUMEL / g->out_vol ||
            g->k[i] > CRUN_MAX_NUMEL / g->k_vol)
            return "the spatial dims are too large";
        g->in_vol *= g->in[i];
        g->out_vol *= g->out[i];
        g->k_vol *= g->k[i];
    }
    return NULL;
}

bool window_plane_init(const WindowGeom *g, WindowPlane *wp)
{
    *wp = (WindowPlane){.H = g->in[1], .W = g->in[2], .OH = g->out[1], .OW = g->out[2], .kh = (int)g->k[1],
                        .kw = (int)g->k[2], .sh = (int)g->s[1], .sw = (int)g->s[2], .pt = g->pb[1], .pl = g->pb[2]};
    return g->k[1] <= WINDOW_MAX_K && g->k[2] <= WINDOW_MAX_K && g->s[1] <= WINDOW_MAX_S && g->s[2] <= WINDOW_MAX_S &&
           g->d[1] == 1 && g->d[2] == 1;
}

size_t window_plane_scratch_bytes(const WindowGeom *g)
{
    WindowPlane wp;
    window_plane_init(g, &wp);
    return align_up(window_scratch_floats(&wp) * sizeof(float), CRUN_ALIGN);
}

/* ---- channel blocks (WindowBlock) ---- */

/* Planes whose output rows fill few vectors lose most to the plane kernel's per-row work
 * (padding, partial vectors, stride phases); with channels across the lanes every vector
 * is whole. Measured on MobileNetV2's, EfficientNet-B0's and PaddleOCR det's depthwise
 * layers (AVX2): the block kernel is faster up to 32 outputs a row, and at any width with
 * a stride (32x160x160 from 320: 2.7 -> 1.9-2.3 ms); wide rows at stride 1 stay per plane
 * (16x320x320: 2.2 against 2.9 ms). */
#define WINDOW_BLOCK_MAX_OW 32
#define WINDOW_BLOCK_BAND_FLOATS ((size_t)1 << 16)

WindowBlock window_block_init(const WindowGeom *g)
{
    return (WindowBlock){.H = g->in[1], .W = g->in[2], .OH = g->out[1], .OW = g->out[2], .x_stride = g->in_vol,
                         .y_stride = g->out_vol, .kh = (int)g->k[1], .kw = (int)g->k[2], .sh = (int)g->s[1],
                         .sw = (int)g->s[2], .dh = (int)g->d[1], .dw = (int)g->d[2], .pt = g->pb[1], .pl = g->pb[2]};
}

bool window_block_suits(const WindowGeom *g)
{
    if (g->k[1] > WINDOW_MAX_K || g->k[2] > WINDOW_MAX_K || !(g->out[2] <= WINDOW_BLOCK_MAX_OW || g->s[2] > 1))
        return false;
    /* A one-row band's scratch, in double (dilations and strides of a hostile model reach
     * 2^31): rows of absurd width stay with the plane kernel. */
    double rows = (double)(g->k[1] - 1) * (double)g->d[1] + 1;
    double cols = (double)(g->out[2] - 1) * (double)g->s[2] + (double)(g->k[2] - 1) * (double)g->d[2] + 1;
    return (rows * (cols + (double)g->in[2]) + (double)g->out[2]) * WINDOW_BLOCK_LANES <= (double)(1 << 20);
}

int64_t window_block_band(const WindowBlock *full)
{
    WindowBlock b = *full;
    int64_t lo = 1, hi = full->OH; /* the most rows within the budget, by bisection */
    while (lo < hi) {
        b.OH = (lo + hi + 1) / 2;
        if (window_block_scratch_floats(&b) <= WINDOW_BLOCK_BAND_FLOATS)
            lo = b.OH;
        else
            hi = b.OH - 1;
    }
    return lo;
}

/* The input rows output rows [oy0, oy0 + rows) read, with the padding above them made
 * explicit. */
WindowBlock window_block_band_of(const WindowBlock *full, int64_t oy0, int64_t rows)
{
    WindowBlock b = *full;
    int64_t iy0 = oy0 * full->sh - full->pt; /* first input row read (may be padding) */
    int64_t iy1 = (oy0 + rows - 1) * full->sh - full->pt + (full->kh - 1) * full->dh + 1;
    int64_t r0 = CRUN_MAX(iy0, (int64_t)0), r1 = CRUN_MIN(iy1, full->H);
    b.x = full->x ? full->x + CRUN_MIN(r0, full->H) * full->W : NULL;
    b.H = CRUN_MAX(r1 - r0, (int64_t)0);
    b.pt = r0 - iy0;
    b.y = full->y ? full->y + oy0 * full->OW : NULL;
    b.OH = rows;
    return b;
}

size_t window_block_scratch_bytes(const WindowGeom *g)
{
    WindowBlock b = window_block_init(g);
    b.OH = window_block_band(&b);
    return align_up(window_block_scratch_floats(&b) * sizeof(float), CRUN_ALIGN);
}
