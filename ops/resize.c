/* resize.c - resampling: Resize (opsets 10, 11, 13), Upsample (opsets 1, 7, 9) and
 * GridSample (opset 16).
 *
 * Resize is separable: every output coordinate along an axis maps to an input coordinate
 * (coordinate_transformation_mode) and from there to 1 (nearest), 2 (linear) or 4 (cubic)
 * input taps with weights. The kernel builds these tap tables per axis, then sums the
 * tensor product of the taps for each output element. Axes that resize nothing take one
 * tap of weight 1, so a 4-D bilinear resize of H and W costs 4 taps per element.
 *
 * The conformance data comes from ONNX's numpy reference, whose quirks decide details the
 * spec leaves open: with `scales`, align_corners / pytorch_half_pixel / tf_crop_and_resize
 * use the unrounded output length in_dim * scale; an input coordinate is clamped into
 * the axis (edge padding) before the taps are read. Opset < 11 (Resize-10, Upsample) maps
 * coordinates asymmetrically and rounds nearest as ONNX Runtime does for those opsets
 * (floor when upsampling, ceil when downsampling). */
#include <math.h>
#include <string.h>

#include "ops/tensor_common.h"
#include "runtime/threadpool.h"

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum { CT_HALF_PIXEL, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_HALF_PIXEL_FOR_NN,
       CT_TF_CROP_AND_RESIZE };
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };

typedef struct ResizeParams {
    int mode, coord, nearest;
    float cubic_a, extrapolation;
    bool exclude_outside;
    bool upsample; /* Upsample: output size from scales only */
    int n_scales;  /* scales from attributes (Upsample before opset 9), else 0 */
    float scales[CRUN_MAX_RANK];
} ResizeParams;

static int name_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static crun_status parse_mode(Node *n, ResizeParams *p, Diag *d)
{
    const char *s;
    crun_status st = attr_get_string(n, "mode", "nearest", &s, d);
    if (st != CRUN_OK)
        return st;
    /* "bilinear" is Upsample-1's name for linear. */
    static const char *const modes[] = {"nearest", "linear", "cubic", "bilinear"};
    int m = name_index(s, modes, 4);
    bool cubic_ok = !p->upsample && n->opset >= 11;
    if (m < 0 || (m == RS_CUBIC && !cubic_ok))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "unknown mode '%s'", s);
    p->mode = m == 3 ? RS_LINEAR : m;
    return CRUN_OK;
}

static crun_status parse_resize(Node *n, Diag *d)
{
    ResizeParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = parse_mode(n, p, d);
    p->coord = CT_ASYMMETRIC;
    p->nearest = NM_SIMPLE;
    if (st != CRUN_OK || n->opset < 11)
        return st;
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                         "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *s;
    int64_t excl = 0;
    if ((st = attr_get_string(n, "coordinate_transformation_mode", "half_pixel", &s, d)) != CRUN_OK)
        return st;
    if ((p->coord = name_index(s, coords, 6)) < 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "unknown coordinate_transformation_mode '%s'", s);
    if ((st = attr_get_string(n, "nearest_mode", "round_prefer_floor", &s, d)) != CRUN_OK)
        return st;
    if ((p->nearest = name_index(s, nearest, 4)) < 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "unknown nearest_mode '%s'", s);
    st = attr_get_float(n, "cubic_coeff_a", -0.75f, &p->cubic_a, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "extrapolation_value", 0.0f, &p->extrapolation, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "exclude_outside", 0, &excl, d);
    p->exclude_outside = excl != 0;
    return st;
}

static crun_status parse_upsample(Node *n, Diag *d)
{
    ResizeParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    p->upsample = true;
    crun_status st = parse_mode(n, p, d);
    p->coord = CT_ASYMMETRIC;
    p->nearest = NM_SIMPLE;
    if (st != CRUN_OK || n->opset >= 9)
        return st;
    if (n->opset < 7) {
        /* Upsample-1: 4-D NCHW with height_scale and width_scale. */
        if (!node_attr(n, "height_scale") || !node_attr(n, "width_scale"))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attributes 'height_scale' and 'width_scale' are required");
        p->n_scales = 4;
        p->scales[0] = p->scales[1] = 1.0f;
        st = attr_get_float(n, "height_scale", 1.0f, &p->scales[2], d);
        if (st == CRUN_OK)
            st = attr_get_float(n, "width_scale", 1.0f, &p->scales[3], d);
        return st;
    }
    if (!node_attr(n, "scales"))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'scales' is required");
    return attr_get_floats(n, "scales", p->scales, CRUN_MAX_RANK, &p->n_scales, d);
}

/* ---- output size and per-axis scales ---- */

/* The scales input (or attribute) and the sizes input by opset: Resize-10 and Upsample-9
 * have (X, scales), Resize-11+ (X, roi, scales, sizes). */
static const Tensor *resize_input(const Node *n, const Tensor *const *in, int n_in, int which)
{
    int idx = -1;
    bool v10 = n->opset < 11 || strcmp(n->op_type, "Upsample") == 0;
    if (which == 0)
        idx = v10 ? -1 : 1; /* roi */
    else if (which == 1)
        idx = v10 ? 1 : 2; /* scales */
    else
        idx = v10 ? -1 : 3; /* sizes */
    const Tensor *t = idx >= 0 && idx < n_in ? in[idx] : NULL;
    return t && tensor_numel(t) > 0 ? t : NULL; /* an empty tensor stands for an omitted input */
}

/* Scale and output size of every axis; *unknown when an input's value is needed. */
static crun_status resize_geometry(const Node *n, const ResizeParams *p, const Tensor *const *in, int n_in,
                                   double *scale, int64_t *out, bool *unknown, Diag *d)
{
    const Tensor *x = in[0];
    int r = x->rank;
    if (p->n_scales) {
        if (p->n_scales != r)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "scales has %d values for rank %d", p->n_scales, r);
        for (int i = 0; i < r; i++)
            scale[i] = p->scales[i];
    } else {
        const Tensor *sc = resize_input(n, in, n_in, 1), *sz = resize_input(n, in, n_in, 2);
        if ((sc == NULL) == (sz == NULL))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "exactly one of 'scales' and 'sizes' must be given");
        const Tensor *t = sc ? sc : sz;
        if (tensor_numel(t) != r || (sc && !dtype_is_float(sc->dtype)) || (sz && sz->dtype != CRUN_DTYPE_INT64))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'%s' must be a 1-D %s tensor with %d values",
                             sc ? "scales" : "sizes", sc ? "float" : "int64", r);
        if (!t->data) {
            *unknown = true;
            return CRUN_OK;
        }
        for (int i = 0; i < r; i++) {
            if (sz) {
                out[i] = tensor_get_int(sz, i);
                if (out[i] < 0 || out[i] > CRUN_MAX_NUMEL)
                    return node_fail(n, d, CRUN_ERR_RUNTIME, "size %lld of axis %d is out of range",
                                     (long long)out[i], i);
                scale[i] = x->dims[i] ? (double)out[i] / (double)x->dims[i] : 1.0;
            } else {
                scale[i] = (double)(float)tensor_get_double(sc, i);
            }
        }
        if (sz)
            return CRUN_OK;
    }
    for (int i = 0; i < r; i++) {
        double o = floor((double)x->dims[i] * scale[i]);
        if (!(scale[i] > 0) || !(o <= (double)CRUN_MAX_NUMEL))
            return node_fail(n, d, CRUN_ERR_RUNTIME, "scale %g of axis %d is out of range", scale[i], i);
        out[i] = (int64_t)o;
    }
    return CRUN_OK;
}

static crun_status resize_infer(InferCtx *c)
{
    const ResizeParams *p = c->params;
    const Tensor *x = c->in[0];
    double scale[CRUN_MAX_RANK];
    int64_t dims[CRUN_MAX_RANK];
    NODE_CHECK(c, p->mode == RS_NEAREST || dtype_is_float(x->dtype) || dtype_is_int(x->dtype),
               "%s mode needs a numeric input, got %s", p->mode == RS_LINEAR ? "linear" : "cubic",
               dtype_name(x->dtype));
    NODE_CHECK(c, x->dtype != CRUN_DTYPE_COMPLEX64 && x->dtype != CRUN_DTYPE_COMPLEX128,
               "complex input is not supported");
    NODE_CHECK(c, x->rank >= 1, "input must have rank >= 1");
    NODE_CHECK(c, x->dtype != CRUN_DTYPE_STRING || p->coord != CT_TF_CROP_AND_RESIZE,
               "tf_crop_and_resize cannot extrapolate strings");
    const Tensor *roi = resize_input(c->node, c->in, c->n_in, 0);
    if (p->coord == CT_TF_CROP_AND_RESIZE && roi)
        NODE_CHECK(c, dtype_is_float(roi->dtype) && tensor_numel(roi) == 2 * x->rank,
                   "roi must hold %d floats (starts, then ends)", 2 * x->rank);
    crun_status st = resize_geometry(c->node, p, c->in, c->n_in, scale, dims, &c->needs_data, c->d);
    if (st == CRUN_OK && !c->needs_data)
        out_set(c->out[0], x->dtype, x->rank, dims);
    return st;
}

/* ---- tap tables ---- */

#define MAX_TAPS 4

typedef struct AxisTaps {
    int n;                  /* taps per output index: 1, 2 or 4 */
    int64_t *off;           /* [out * n] input offsets in elements (index * stride) */
    double *w;              /* [out * n] weights */
    unsigned char *outside; /* [out] tf_crop_and_resize: the coordinate left the input */
} AxisTaps;

static double source_coord(const ResizeParams *p, double x, double scale, int64_t in, double roi_lo, double roi_hi)
{
    /* The reference's output length is in * scale, unrounded. */
    double len = (double)in * scale;
    switch (p->coord) {
    case CT_HALF_PIXEL: return (x + 0.5) / scale - 0.5;
    case CT_PYTORCH_HALF_PIXEL: return len > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case CT_ALIGN_CORNERS: return len == 1 ? 0.0 : x * (double)(in - 1) / (len - 1);
    case CT_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / scale;
    case CT_TF_CROP_AND_RESIZE:
        if (len > 1)
            return roi_lo * (double)(in - 1) + x * (roi_hi - roi_lo) * (double)(in - 1) / (len - 1);
        return 0.5 * (roi_lo + roi_hi) * (double)(in - 1);
    default: return x / scale;
    }
}

static int64_t nearest_index(const ResizeParams *p, double xo, double scale)
{
    double f = floor(xo), frac = xo - f;
    if (frac == 0)
        return (int64_t)f;
    switch (p->nearest) {
    case NM_ROUND_PREFER_FLOOR: return (int64_t)(frac <= 0.5 ? f : f + 1);
    case NM_ROUND_PREFER_CEIL: return (int64_t)(frac < 0.5 ? f : f + 1);
    case NM_FLOOR: return (int64_t)f;
    case NM_CEIL: return (int64_t)f + 1;
    default: return (int64_t)(scale < 1 ? f + 1 : f); /* SIMPLE: ceil when downsampling, else floor */
    }
}

static void cubic_weights(double t, double a, double *w)
{
    double s = 1 - t;
    w[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    w[2] = ((a + 2) * s - (a + 3)) * s * s + 1;
    w[3] = ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a;
}

static int64_t clamp_index(int64_t i, int64_t n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

/* Fills the taps of output index o along an axis of `in` elements and input stride. */
static void axis_taps(const ResizeParams *p, AxisTaps *a, int64_t o, double scale, int64_t in, int64_t stride,
                      double roi_lo, double roi_hi)
{
    double xo = source_coord(p, (double)o, scale, in, roi_lo, roi_hi);
    int64_t *off = a->off + o * a->n;
    double *w = a->w + o * a->n;
    a->outside[o] = p->coord == CT_TF_CROP_AND_RESIZE && (xo < 0 || xo > (double)(in - 1));
    /* Taps are clamped into the axis anyway; clamping the coordinate first keeps the
     * integer conversions below defined for any roi or scale. */
    xo = CRUN_MAX(-4.0, CRUN_MIN(xo, (double)in + 4.0));
    if (a->n == 1) {
        off[0] = clamp_index(p->mode == RS_NEAREST ? nearest_index(p, xo, scale) : o, in) * stride;
        w[0] = 1;
        return;
    }
    double f = floor(xo), t = xo - f;
    int64_t base = (int64_t)f;
    if (a->n == 2) {
        w[0] = 1 - t;
        w[1] = t;
    } else {
        cubic_weights(t, p->cubic_a, w);
        base -= 1;
    }
    double sum = 0;
    for (int k = 0; k < a->n; k++) {
        int64_t i = base + k;
        if (p->exclude_outside && (i < 0 || i >= in))
            w[k] = 0;
        sum += w[k];
        off[k] = clamp_index(i, in) * stride;
    }
    if (p->exclude_outside && sum != 0)
        for (int k = 0; k < a->n; k++)
            w[k] /= sum;
}

/* True when an axis maps every output index onto the same input index with weight 1. */
static bool axis_is_identity(const ResizeParams *p, double scale, int64_t in, int64_t out, double roi_lo,
                             double roi_hi)
{
    if (in != out)
        return false;
    for (int64_t o = 0; o < out; o++) {
        double xo = source_coord(p, (double)o, scale, in, roi_lo, roi_hi);
        if (xo != (double)o)
            return false;
    }
    return true;
}

static int mode_taps(int mode) { return mode == RS_CUBIC ? 4 : mode == RS_LINEAR ? 2 : 1; }

/* Tap combinations of the axes before the last, per thread: the product of their tap
 * counts (an upper bound before knowing which axes resize nothing). */
static int64_t outer_combos(const ResizeParams *p, const Tensor *y)
{
    int64_t n = 1;
    for (int a = 0; a + 1 < y->rank; a++)
        n *= mode_taps(p->mode);
    return n;
}

static crun_status resize_prepare(PrepCtx *c)
{
    const ResizeParams *p = c->params;
    const Tensor *y = c->out[0];
    size_t bytes = 0;
    for (int a = 0; a < y->rank; a++)
        bytes += (size_t)y->dims[a] * (mode_taps(p->mode) * (sizeof(int64_t) + sizeof(double)) + 1) + 64;
    bytes += (size_t)c->n_threads * (size_t)outer_combos(p, y) * (sizeof(int64_t) + sizeof(double));
    c->ws_bytes = bytes;
    return CRUN_OK;
}

/* ---- the kernel ---- */

typedef struct ResizeJob {
    const ResizeParams *p;
    const Tensor *x;
    Tensor *y;
    int rank;
    AxisTaps ax[CRUN_MAX_RANK];
    int64_t *combo_off; /* per thread: combo_cap offsets, then combo_cap weights */
    int64_t combo_cap;
    int64_t rows, rows_per_task;
    bool extrapolate;
    crun_status status; /* strings only (one thread) */
} ResizeJob;

/* The taps of one output row's outer axes (all but the last) as (offset, weight) pairs:
 * axes with one tap add to every offset, the others multiply the pairs. Returns the
 * number of pairs; *outside when an outer axis extrapolates. */
static int64_t row_combos(const ResizeJob *j, const int64_t *idx, int64_t *off, double *w, bool *outside)
{
    int64_t n = 1;
    off[0] = 0;
    w[0] = 1;
    *outside = false;
    for (int a = 0; a + 1 < j->rank; a++) {
        const AxisTaps *t = &j->ax[a];
        const int64_t *to = t->off + idx[a] * t->n;
        const double *tw = t->w + idx[a] * t->n;
        *outside |= t->outside[idx[a]] != 0;
        if (t->n == 1) {
            for (int64_t c = 0; c < n; c++)
                off[c] += to[0];
            continue;
        }
        /* Expand in place from the end, so pair c moves to c * t->n + k. */
        for (int64_t c = n - 1; c >= 0; c--)
            for (int k = t->n - 1; k >= 0; k--) {
                off[c * t->n + k] = off[c] + to[k];
                w[c * t->n + k] = w[c] * tw[k];
            }
        n *= t->n;
    }
    return n;
}

/* Integers round to nearest and saturate. */
static void store_value(Tensor *y, int64_t i, double v)
{
    if (!dtype_is_int(y->dtype)) {
        tensor_set_double(y, i, v);
        return;
    }
    v = round(v);
    size_t bits = dtype_size(y->dtype) * 8;
    double hi = dtype_is_signed(y->dtype) ? ldexp(1.0, (int)bits - 1) - 1 : ldexp(1.0, (int)bits) - 1;
    double lo = dtype_is_signed(y->dtype) ? -hi - 1 : 0;
    tensor_set_double(y, i, v < lo ? lo : v > hi ? hi : v);
}

/* Sum over the row's outer pairs and the last axis' taps of element i. */
#define TAP_SUM(LOAD) \
    do { \
        acc = 0; \
        for (int64_t c = 0; c < n_combo; c++) { \
            double part = 0; \
            for (int k = 0; k < last->n; k++) { \
                int64_t off = coff[c] + lo[k]; \
                part += lw[k] * (LOAD); \
            } \
            acc += cw[c] * part; \
        } \
    } while (0)

/* A float32 nearest-neighbour row: a gather along the last axis, or, when the row above
 * read the same input row (upsampling), a copy of the row above. */
static void nearest_row_f32(float *y, const float *src, const int64_t *off, int64_t n, bool repeat)
{
    if (repeat) {
        memcpy(y, y - n, (size_t)n * sizeof *y);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = src[off[i]];
}

/* Any other row: taps summed in double, or elements copied (any type). */
static void resize_row(ResizeJob *j, int64_t row, const int64_t *coff, const double *cw, int64_t n_combo,
                       bool row_outside, bool copy)
{
    const AxisTaps *last = &j->ax[j->rank - 1];
    int64_t inner = j->y->dims[j->rank - 1];
    size_t es = dtype_size(j->x->dtype);
    bool f32 = j->x->dtype == CRUN_DTYPE_FLOAT, strings = j->x->dtype == CRUN_DTYPE_STRING;
    const float *xf = j->x->data;
    float *yf = j->y->data;
    for (int64_t i = 0, e = row * inner; i < inner; i++, e++) {
        const int64_t *lo = last->off + i * last->n;
        const double *lw = last->w + i * last->n;
        double acc;
        if (j->extrapolate && (row_outside || last->outside[i])) {
            store_value(j->y, e, j->p->extrapolation);
        } else if (copy) {
            char *dst = (char *)j->y->data + (size_t)e * es;
            const char *src = (const char *)j->x->data + (size_t)(coff[0] + lo[0]) * es;
            if (strings)
                j->status = elems_copy(dst, src, 1, j->x->dtype);
            else
                elem_move(dst, src, es);
        } else if (f32) {
            TAP_SUM(xf[off]);
            yf[e] = (float)acc;
        } else {
            TAP_SUM(tensor_get_double(j->x, off));
            store_value(j->y, e, acc);
        }
    }
}

/* One task: rows [r0, r1) of the output seen as [rows, last dim]. */
static void resize_task(void *ctx, int64_t task, int thread)
{
    ResizeJob *j = ctx;
    int r = j->rank;
    const AxisTaps *last = &j->ax[r - 1];
    int64_t inner = j->y->dims[r - 1], r0 = task * j->rows_per_task, r1 = CRUN_MIN(j->rows, r0 + j->rows_per_task);
    int64_t *coff = j->combo_off + (size_t)thread * (size_t)j->combo_cap * 2;
    double *cw = (double *)(coff + j->combo_cap);
    int64_t idx[CRUN_MAX_RANK] = {0}, rem = r0;
    for (int a = r - 2; a >= 0; a--) {
        idx[a] = rem % j->y->dims[a];
        rem /= j->y->dims[a];
    }
    bool f32 = j->x->dtype == CRUN_DTYPE_FLOAT;
    const float *xf = j->x->data;
    float *yf = j->y->data;
    int64_t prev_src = -1; /* the input row the previous output row copied (float32 nearest) */
    for (int64_t row = r0; row < r1 && j->status == CRUN_OK; row++) {
        bool row_outside;
        int64_t n_combo = row_combos(j, idx, coff, cw, &row_outside);
        bool copy = n_combo == 1 && last->n == 1 && j->p->mode == RS_NEAREST;
        if (copy && f32 && !j->extrapolate) {
            nearest_row_f32(yf + row * inner, xf + coff[0], last->off, inner, coff[0] == prev_src);
            prev_src = coff[0];
        } else {
            resize_row(j, row, coff, cw, n_combo, row_outside, copy);
            prev_src = -1;
        }
        for (int a = r - 2; a >= 0; a--) {
            if (++idx[a] < j->y->dims[a])
                break;
            idx[a] = 0;
        }
    }
}

static crun_status resize_run(KernelCtx *k)
{
    const ResizeParams *p = k->params;
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    double scale[CRUN_MAX_RANK];
    int64_t dims[CRUN_MAX_RANK], xs[CRUN_MAX_RANK];
    bool unknown = false;
    crun_status st = resize_geometry(k->node, p, k->in, k->n_in, scale, dims, &unknown, k->d);
    if (st != CRUN_OK || tensor_numel(y) == 0)
        return st;
    if (tensor_numel(x) == 0)
        return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "cannot resize an empty input to a non-empty output");
    shape_strides(x->dims, x->rank, xs);
    const Tensor *roi = resize_input(k->node, k->in, k->n_in, 0);
    ResizeJob j = {.p = p, .x = x, .y = y, .rank = x->rank, .status = CRUN_OK,
                   .extrapolate = p->coord == CT_TF_CROP_AND_RESIZE, .combo_cap = outer_combos(p, y)};
    char *ws = k->ws;
    for (int a = 0; a < x->rank; a++) {
        double lo = 0, hi = 1;
        if (roi && p->coord == CT_TF_CROP_AND_RESIZE) {
            lo = tensor_get_double(roi, a);
            hi = tensor_get_double(roi, a + x->rank);
        }
        AxisTaps *t = &j.ax[a];
        int64_t out = y->dims[a];
        bool identity = axis_is_identity(p, scale[a], x->dims[a], out, lo, hi);
        t->n = identity ? 1 : mode_taps(p->mode);
        t->off = (int64_t *)ws;
        t->w = (double *)(ws + (size_t)out * (size_t)t->n * sizeof(int64_t));
        t->outside = (unsigned char *)(t->w + out * t->n);
        ws = (char *)t->outside + align_up((size_t)out, 8);
        for (int64_t o = 0; o < out; o++) {
            if (identity) {
                t->off[o] = o * xs[a];
                t->w[o] = 1;
                t->outside[o] = 0;
            } else {
                axis_taps(p, t, o, scale[a], x->dims[a], xs[a], lo, hi);
            }
        }
    }
    j.combo_off = (int64_t *)ws;
    int64_t inner = y->dims[y->rank - 1];
    j.rows = tensor_numel(y) / inner;
    j.rows_per_task = CRUN_MAX((int64_t)1, 4096 / (inner * mode_taps(p->mode)));
    bool strings = x->dtype == CRUN_DTYPE_STRING;
    if (strings)
        j.rows_per_task = j.rows;
    pool_for(strings ? NULL : k->pool, (j.rows + j.rows_per_task - 1) / j.rows_per_task, resize_task, &j);
    return j.status == CRUN_OK ? CRUN_OK : node_fail(k->node, k->d, j.status, "out of memory");
}

static int64_t resize_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    const ResizeParams *p = n->params;
    int64_t taps = p->mode == RS_NEAREST ? 0 : p->mode == RS_LINEAR ? 4 : 16; /* 2-D, the common case */
    return tensor_numel(out[0]) * taps * 2;
}

static const KernelVariant resize_kernels[] = {{"resize", ISA_SCALAR, NULL, resize_prepare, resize_run, NULL}, {0}};
const OpDesc op_Resize = {"", "Resize", 1, 4, 1, 1, 0, parse_resize, resize_infer, resize_flops, resize_kernels};
const OpDesc op_Upsample = {"", "Upsample", 1, 2, 1, 1, 0, parse_upsample, resize_infer, resize_flops,
                            resize_kernels};

/* ==== GridSample (opset 16): X [N, C, H, W] sampled at grid [N, Ho, Wo, 2], whose (x, y)
 * pairs are normalized to [-1, 1]. Follows PyTorch's grid_sample, which the spec and the
 * conformance data come from: bilinear and nearest apply the padding mode to the sampling
 * point, bicubic to each of its 16 taps; taps outside the input read 0. ==== */

enum { GS_BILINEAR, GS_NEAREST, GS_BICUBIC };
enum { GP_ZEROS, GP_BORDER, GP_REFLECTION };

typedef struct GridParams {
    int mode, padding;
    bool align_corners;
} GridParams;

static crun_status parse_gridsample(Node *n, Diag *d)
{
    GridParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    static const char *const modes[] = {"bilinear", "nearest", "bicubic"};
    static const char *const pads[] = {"zeros", "border", "reflection"};
    const char *s;
    int64_t align = 0;
    crun_status st = attr_get_string(n, "mode", "bilinear", &s, d);
    if (st == CRUN_OK && (p->mode = name_index(s, modes, 3)) < 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "unknown mode '%s'", s);
    if (st == CRUN_OK)
        st = attr_get_string(n, "padding_mode", "zeros", &s, d);
    if (st == CRUN_OK && (p->padding = name_index(s, pads, 3)) < 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "unknown padding_mode '%s'", s);
    if (st == CRUN_OK)
        st = attr_get_int(n, "align_corners", 0, &align, d);
    p->align_corners = st == CRUN_OK && align != 0;
    return st;
}

static crun_status gridsample_infer(InferCtx *c)
{
    const Tensor *x = c->in[0], *g = c->in[1];
    NODE_CHECK(c, x->rank == 4, "X must be 4-D (NCHW), got rank %d", x->rank);
    NODE_CHECK(c, g->rank == 4 && g->dims[3] == 2 && g->dims[0] == x->dims[0], "grid must be [N, H_out, W_out, 2]");
    NODE_CHECK(c, dtype_is_float(x->dtype) && dtype_is_float(g->dtype), "X and grid must be float tensors");
    int64_t dims[4] = {x->dims[0], x->dims[1], g->dims[1], g->dims[2]};
    out_set(c->out[0], x->dtype, 4, dims);
    return CRUN_OK;
}

/* Mirrors v into [twice_lo / 2, twice_hi / 2] (PyTorch's reflect_coordinates). */
static double reflect_coord(double v, double twice_lo, double twice_hi)
{
    if (twice_lo == twice_hi)
        return 0;
    double lo = twice_lo / 2, span = (twice_hi - twice_lo) / 2;
    v = fabs(v - lo);
    double extra = fmod(v, span), flips = floor(v / span);
    return fmod(flips, 2) == 0 ? extra + lo : span - extra + lo;
}

static double pad_coord(const GridParams *p, double v, int64_t size)
{
    double hi = (double)(size - 1);
    if (p->padding == GP_REFLECTION)
        v = p->align_corners ? reflect_coord(v, 0, 2 * hi) : reflect_coord(v, -1, 2 * (double)size - 1);
    if (p->padding != GP_ZEROS)
        v = v < 0 ? 0 : v > hi ? hi : v;
    return v;
}

typedef struct GridTaps {
    int n;
    int64_t off[16]; /* y * W + x, or -1 for a tap outside the input (reads 0) */
    double w[16];
} GridTaps;

/* Adds tap (x, y) (integral values, possibly outside) with weight w. */
static void grid_tap(GridTaps *t, double x, double y, int64_t wd, int64_t ht, double w)
{
    bool in = x >= 0 && x <= (double)(wd - 1) && y >= 0 && y <= (double)(ht - 1);
    t->off[t->n] = in ? (int64_t)y * wd + (int64_t)x : -1;
    t->w[t->n++] = w;
}

static void grid_taps(const GridParams *p, double gx, double gy, int64_t wd, int64_t ht, GridTaps *t)
{
    t->n = 0;
    double ix = p->align_corners ? (gx + 1) / 2 * (double)(wd - 1) : ((gx + 1) * (double)wd - 1) / 2;
    double iy = p->align_corners ? (gy + 1) / 2 * (double)(ht - 1) : ((gy + 1) * (double)ht - 1) / 2;
    if (p->mode == GS_BICUBIC) {
        double x0 = floor(ix), y0 = floor(iy), wx[4], wy[4];
        cubic_weights(ix - x0, -0.75, wx);
        cubic_weights(iy - y0, -0.75, wy);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                /* Truncation after padding, as PyTorch converts the padded tap. */
                double px = pad_coord(p, x0 - 1 + j, wd), py = pad_coord(p, y0 - 1 + i, ht);
                grid_tap(t, px >= 0 ? floor(px) : px, py >= 0 ? floor(py) : py, wd, ht, wx[j] * wy[i]);
            }
        return;
    }
    ix = pad_coord(p, ix, wd);
    iy = pad_coord(p, iy, ht);
    if (p->mode == GS_NEAREST) {
        grid_tap(t, nearbyint(ix), nearbyint(iy), wd, ht, 1); /* half to even, as PyTorch */
        return;
    }
    double x0 = floor(ix), y0 = floor(iy), tx = ix - x0, ty = iy - y0;
    grid_tap(t, x0, y0, wd, ht, (1 - tx) * (1 - ty));
    grid_tap(t, x0 + 1, y0, wd, ht, tx * (1 - ty));
    grid_tap(t, x0, y0 + 1, wd, ht, (1 - tx) * ty);
    grid_tap(t, x0 + 1, y0 + 1, wd, ht, tx * ty);
}

typedef struct GridJob {
    const GridParams *p;
    const Tensor *x, *grid;
    Tensor *y;
} GridJob;

/* One task per (n, output row). */
static void gridsample_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    const GridJob *j = ctx;
    const Tensor *x = j->x;
    int64_t c = x->dims[1], ht = x->dims[2], wd = x->dims[3], ho = j->y->dims[2], wo = j->y->dims[3];
    int64_t n = task / ho, row = task % ho, plane = ht * wd;
    bool f32 = x->dtype == CRUN_DTYPE_FLOAT;
    for (int64_t col = 0; col < wo; col++) {
        int64_t gi = ((n * ho + row) * wo + col) * 2;
        GridTaps t;
        grid_taps(j->p, tensor_get_double(j->grid, gi), tensor_get_double(j->grid, gi + 1), wd, ht, &t);
        for (int64_t ch = 0; ch < c; ch++) {
            int64_t base = (n * c + ch) * plane;
            double acc = 0;
            for (int k = 0; k < t.n; k++)
                if (t.off[k] >= 0)
                    acc += t.w[k] * (f32 ? ((const float *)x->data)[base + t.off[k]]
                                         : tensor_get_double(x, base + t.off[k]));
            int64_t yi = ((n * c + ch) * ho + row) * wo + col;
            if (f32)
                ((float *)j->y->data)[yi] = (float)acc;
            else
                tensor_set_double(j->y, yi, acc);
        }
    }
}

static crun_status gridsample_run(KernelCtx *k)
{
    GridJob j = {.p = k->params, .x = k->in[0], .grid = k->in[1], .y = k->out[0]};
    if (tensor_numel(j.y) == 0)
        return CRUN_OK;
    if (tensor_numel(j.x) == 0)
        return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "cannot sample an empty input");
    pool_for(k->pool, j.y->dims[0] * j.y->dims[2], gridsample_task, &j);
    return CRUN_OK;
}

static const KernelVariant gridsample_kernels[] = {{"gridsample", ISA_SCALAR, NULL, NULL, gridsample_run, NULL},
                                                   {0}};
const OpDesc op_GridSample = {"", "GridSample", 2, 2, 1, 1, 0, parse_gridsample, gridsample_infer, NULL,
                              gridsample_kernels};
