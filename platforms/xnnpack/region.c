/* region.c - the XNNPACK backend (see region.h).
 *
 * Forming regions runs twice over each node: a dry pass (no subgraph) says whether the
 * node translates, then the build defines it; both go through the same translate_*
 * functions, so what is checked is exactly what is built. */
#include "platforms/xnnpack/region.h"

#include <stdlib.h>
#include <string.h>

#ifndef CRUN_HAVE_XNNPACK

bool xnn_backend_available(void) { return false; }

crun_status xnn_form_regions(Plan *p, const XnnChoice *xc, Diag *d)
{
    (void)p, (void)xc;
    return diag_fail(d, CRUN_ERR_UNSUPPORTED, "this build of crun has no XNNPACK backend (configure with "
                                              "libxnnpack-dev installed, or -DCRUN_XNNPACK=ON)");
}

bool xnn_choose_nodes(const Plan *single, const double *native_ms, uint8_t *allow)
{
    (void)single, (void)native_ms, (void)allow;
    return false;
}

#else

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <xnnpack.h>

#include "ops/conv.h"
#include "ops/spatial.h"
#include "ops/tensor_common.h"
#include "runtime/threadpool.h"

bool xnn_backend_available(void) { return true; }

/* One external value of a region: the crun tensor and XNNPACK's copy of it. */
typedef struct RegionIo {
    int value;
    bool nhwc;        /* a 4-D tensor: transposed at the boundary */
    int64_t n, c, hw; /* its NCHW extents when nhwc */
    size_t elems;
    float *stage;     /* XNNPACK reads or writes here (bound once at plan time) */
} RegionIo;

/* XNNPACK's worker threads, shared by the regions of one plan. */
typedef struct SharedPool {
    pthreadpool_t pool;
    int refs;
} SharedPool;

typedef struct Region {
    xnn_runtime_t rt;
    SharedPool *pool;
    int n_in, n_out;
    RegionIo *io;    /* n_in inputs then n_out outputs */
    void **owned;    /* re-laid-out weights and constants: XNNPACK keeps pointers to them */
    int n_owned, cap_owned;
    char note[48];
} Region;

/* What translating one node needs: the plan, the subgraph being built (NULL in the dry
 * pass), and the crun value -> XNNPACK value id map. */
typedef struct Build {
    const Plan *p;
    xnn_subgraph_t sg;
    uint32_t *vid;
    Region *r;
    bool failed;     /* an XNNPACK call or an allocation failed */
} Build;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool init_ok;

static void init_xnnpack(void) { init_ok = xnn_initialize(NULL) == xnn_status_success; }

/* ---- values ---- */

static const Tensor *val(const Build *b, int v) { return &b->p->vals[v].t; }
static bool is_const(const Build *b, int v) { return b->p->vals[v].store == STORE_CONST; }

static bool is_f32(const Build *b, int v)
{
    const Tensor *t = val(b, v);
    return t->dtype == CRUN_DTYPE_FLOAT && t->kind == VALUE_TENSOR && !t->none && t->rank <= XNN_MAX_TENSOR_DIMS;
}

/* Dims as XNNPACK sees them: 4-D tensors NHWC, others as they are. */
static size_t xnn_dims(const Tensor *t, size_t *dims)
{
    for (int i = 0; i < t->rank; i++)
        dims[i] = (size_t)t->dims[i];
    if (t->rank == 4) {
        dims[1] = (size_t)t->dims[2], dims[2] = (size_t)t->dims[3], dims[3] = (size_t)t->dims[1];
    }
    return (size_t)t->rank;
}

/* Whether a tensor's bytes are in the same order in NCHW and NHWC (one channel, or one
 * pixel, or not 4-D at all). */
static bool same_order_4d(const Tensor *t) { return t->rank != 4 || t->dims[1] == 1 || t->dims[2] * t->dims[3] == 1; }

static void *own(Build *b, size_t bytes)
{
    Region *r = b->r;
    if (r->n_owned == r->cap_owned) {
        int cap = r->cap_owned ? 2 * r->cap_owned : 16;
        void **o = realloc(r->owned, (size_t)cap * sizeof *o);
        if (!o)
            return NULL;
        r->owned = o;
        r->cap_owned = cap;
    }
    void *m = calloc(1, bytes + XNN_EXTRA_BYTES);
    if (m)
        r->owned[r->n_owned++] = m;
    return m;
}

static uint32_t define(Build *b, size_t rank, const size_t *dims, const void *data, uint32_t ext, uint32_t flags)
{
    uint32_t id = XNN_INVALID_VALUE_ID;
    if (xnn_define_tensor_value(b->sg, xnn_datatype_fp32, rank, dims, data, ext, flags, &id) != xnn_status_success)
        b->failed = true;
    return id;
}

/* NCHW -> NHWC (or back, nchw set) over n images of c planes of hw values. */
static void relayout(const float *src, float *dst, int64_t n, int64_t c, int64_t hw, bool nchw)
{
    for (int64_t i = 0; i < n; i++, src += c * hw, dst += c * hw)
        transpose_f32(src, dst, nchw ? hw : c, nchw ? c : hw);
}

/* The XNNPACK id of a value read by a node: a constant becomes a static value (4-D ones
 * re-laid out NHWC; shapes of lower rank under a 4-D output are right-aligned to 4-D,
 * as broadcasting reads them). Non-constant values were defined by their producer or as
 * region inputs. */
static uint32_t operand(Build *b, int v, bool under_4d)
{
    if (!is_const(b, v))
        return b->vid[v];
    if (b->vid[v] != XNN_INVALID_VALUE_ID)
        return b->vid[v];
    const Tensor *t = val(b, v);
    Tensor t4 = *t;
    if (under_4d && t->rank < 4) {
        t4.rank = 4;
        for (int i = 0; i < 4; i++)
            t4.dims[i] = i < 4 - t->rank ? 1 : t->dims[i - (4 - t->rank)];
    }
    size_t dims[XNN_MAX_TENSOR_DIMS];
    size_t rank = xnn_dims(&t4, dims);
    const float *data = t->data;
    if (!same_order_4d(&t4)) {
        float *m = own(b, tensor_bytes(t));
        if (!m) {
            b->failed = true;
            return XNN_INVALID_VALUE_ID;
        }
        relayout(data, m, t4.dims[0], t4.dims[1], t4.dims[2] * t4.dims[3], false);
        data = m;
    }
    return b->vid[v] = define(b, rank, dims, data, XNN_INVALID_VALUE_ID, 0);
}

/* A node's output: an internal value, or the region output defined for it already. */
static uint32_t result(Build *b, int v)
{
    if (b->vid[v] != XNN_INVALID_VALUE_ID)
        return b->vid[v];
    size_t dims[XNN_MAX_TENSOR_DIMS];
    size_t rank = xnn_dims(val(b, v), dims);
    return b->vid[v] = define(b, rank, dims, NULL, XNN_INVALID_VALUE_ID, 0);
}

/* A value shaped like v for a step between two XNNPACK nodes of one crun node. */
static uint32_t temp_like(Build *b, int v)
{
    size_t dims[XNN_MAX_TENSOR_DIMS];
    size_t rank = xnn_dims(val(b, v), dims);
    return define(b, rank, dims, NULL, XNN_INVALID_VALUE_ID, 0);
}

static bool ok(Build *b, enum xnn_status s)
{
    if (s != xnn_status_success)
        b->failed = true;
    return s == xnn_status_success;
}

/* ---- activations ---- */

/* The clamp bounds an activation becomes in XNNPACK's fused output range, or false when
 * it needs nodes of its own (after_act). */
static bool act_range(const Activation *a, float *lo, float *hi)
{
    *lo = -INFINITY, *hi = INFINITY;
    if (a->kind == ACT_NONE)
        return true;
    if (a->kind == ACT_RELU) {
        *lo = 0.0f;
        return true;
    }
    if (a->kind == ACT_CLIP) {
        *lo = a->alpha, *hi = a->beta;
        return true;
    }
    return false;
}

static bool act_supported(const Activation *a)
{
    float lo, hi;
    return act_range(a, &lo, &hi) || a->kind == ACT_SIGMOID || a->kind == ACT_HARDSWISH || a->kind == ACT_SILU ||
           a->kind == ACT_LEAKYRELU || a->kind == ACT_HARDSIGMOID;
}

/* Where a node with activation a writes its raw result: out itself when all of a is a
 * clamp (the node's output range), else a temporary the activation nodes read. */
static uint32_t pre_act(Build *b, const Activation *a, int out)
{
    float lo, hi;
    return act_range(a, &lo, &hi) && !a->affine ? result(b, out) : temp_like(b, out);
}

/* A static one-element tensor holding v (broadcast by the binary nodes). */
static uint32_t scalar(Build *b, float v)
{
    float *m = own(b, sizeof v);
    if (!m) {
        b->failed = true;
        return XNN_INVALID_VALUE_ID;
    }
    *m = v;
    size_t one[1] = {1};
    return define(b, 1, one, m, XNN_INVALID_VALUE_ID, 0);
}

/* y = x * mul + add, clamped to [lo, hi]. */
static bool scale_shift(Build *b, uint32_t x, float mul, float add, float lo, float hi, uint32_t y, int out)
{
    uint32_t t = temp_like(b, out), m = scalar(b, mul), c = scalar(b, add);
    return !b->failed && ok(b, xnn_define_multiply2(b->sg, -INFINITY, INFINITY, x, m, t, 0)) &&
           ok(b, xnn_define_add2(b->sg, lo, hi, t, c, y, 0));
}

/* The activation nodes after the node's raw result x (pre_act), then the affine scale and
 * shift when a has one. */
static bool after_act(Build *b, const Activation *a, uint32_t x, int out)
{
    float lo, hi;
    if (act_range(a, &lo, &hi) && !a->affine)
        return true;
    uint32_t y = act_range(a, &lo, &hi) ? x : a->affine ? temp_like(b, out) : result(b, out);
    bool done = true;
    switch (act_range(a, &lo, &hi) ? ACT_NONE : a->kind) {
    case ACT_NONE:
        break;
    case ACT_SIGMOID:
        done = ok(b, xnn_define_sigmoid(b->sg, x, y, 0));
        break;
    case ACT_HARDSWISH:
        done = ok(b, xnn_define_hardswish(b->sg, x, y, 0));
        break;
    case ACT_LEAKYRELU:
        done = ok(b, xnn_define_leaky_relu(b->sg, a->alpha, x, y, 0));
        break;
    case ACT_HARDSIGMOID:
        done = scale_shift(b, x, a->alpha, a->beta, 0.0f, 1.0f, y, out);
        break;
    case ACT_SILU: {
        uint32_t s = temp_like(b, out);
        done = ok(b, xnn_define_sigmoid(b->sg, x, s, 0)) &&
               ok(b, xnn_define_multiply2(b->sg, -INFINITY, INFINITY, x, s, y, 0));
        break;
    }
    default:
        b->failed = true;
        return false;
    }
    return done && (!a->affine || scale_shift(b, y, a->mul, a->add, -INFINITY, INFINITY, result(b, out), out));
}

/* ---- nodes ---- */

static bool op_is(const Node *n, const char *name) { return n->op->domain[0] == 0 && !strcmp(n->op->name, name); }

static bool translate_conv(Build *b, const Node *n)
{
    const Tensor *x = val(b, n->in[0]), *w = val(b, n->in[1]);
    if (x->rank != 4 || !is_const(b, n->in[1]) || !act_supported(&n->act))
        return false;
    if (n->n_in > 2 && n->in[2] >= 0 && (!is_const(b, n->in[2]) || !is_f32(b, n->in[2])))
        return false;
    ConvGeom g;
    conv_geom_known(n->params, x, w, &g);
    if (g.w.nsp != 2 || g.N < 1)
        return false;
    bool depthwise = g.G == g.C && g.Cg == 1 && g.G > 1;
    if (!b->sg)
        return true;
    const int64_t KH = g.w.k[1], KW = g.w.k[2], M = g.M, Cg = g.Cg;
    float *f = own(b, (size_t)(M * KH * KW * Cg) * sizeof(float));
    float *bias = own(b, (size_t)M * sizeof(float));
    if (!f || !bias)
        return !(b->failed = true);
    const float *W = w->data;
    /* crun's weights are [M][Cg][KH][KW]; XNNPACK wants [M][KH][KW][Cg], or for a
     * depthwise convolution [1][KH][KW][M] (output channel fastest). */
    for (int64_t o = 0; o < M; o++)
        for (int64_t ci = 0; ci < Cg; ci++)
            for (int64_t t = 0; t < KH * KW; t++) {
                float v = W[(o * Cg + ci) * KH * KW + t];
                if (depthwise)
                    f[t * M + o] = v;
                else
                    f[(o * KH * KW + t) * Cg + ci] = v;
            }
    if (n->n_in > 2 && n->in[2] >= 0)
        memcpy(bias, val(b, n->in[2])->data, (size_t)M * sizeof(float));
    size_t fd[4] = {depthwise ? 1 : (size_t)M, (size_t)KH, (size_t)KW, depthwise ? (size_t)M : (size_t)Cg};
    size_t bd[1] = {(size_t)M};
    uint32_t fid = define(b, 4, fd, f, XNN_INVALID_VALUE_ID, 0), bid = define(b, 1, bd, bias, XNN_INVALID_VALUE_ID, 0);
    float lo, hi;
    act_range(&n->act, &lo, &hi);
    uint32_t xid = b->vid[n->in[0]], y = pre_act(b, &n->act, n->out[0]);
    if (b->failed)
        return false;
    uint32_t pt = (uint32_t)g.w.pb[1], pl = (uint32_t)g.w.pb[2], pb = (uint32_t)g.w.pe[1], pr = (uint32_t)g.w.pe[2];
    enum xnn_status s =
        depthwise ? xnn_define_depthwise_convolution_2d(b->sg, pt, pr, pb, pl, (uint32_t)KH, (uint32_t)KW,
                                                        (uint32_t)g.w.s[1], (uint32_t)g.w.s[2], (uint32_t)g.w.d[1],
                                                        (uint32_t)g.w.d[2], (uint32_t)(M / g.C), (size_t)g.C, lo, hi,
                                                        xid, fid, bid, y, 0)
                  : xnn_define_convolution_2d(b->sg, pt, pr, pb, pl, (uint32_t)KH, (uint32_t)KW, (uint32_t)g.w.s[1],
                                              (uint32_t)g.w.s[2], (uint32_t)g.w.d[1], (uint32_t)g.w.d[2],
                                              (uint32_t)g.G, (size_t)g.Cg, (size_t)g.Mg, lo, hi, xid, fid, bid, y, 0);
    return ok(b, s) && after_act(b, &n->act, y, n->out[0]);
}

/* Gemm (alpha 1, A not transposed, a constant B and bias) and MatMul of a 2-D input by a
 * constant 2-D weight: XNNPACK's fully connected layer. */
static bool translate_dense(Build *b, const Node *n)
{
    bool gemm = op_is(n, "Gemm");
    const Tensor *a = val(b, n->in[0]), *w = val(b, n->in[1]);
    if (a->rank != 2 || w->rank != 2 || !is_const(b, n->in[1]) || !act_supported(&n->act))
        return false;
    Diag d = {0};
    int64_t ta = 0, tb = 0;
    float alpha = 1.0f, beta = 1.0f;
    if (gemm && (attr_get_int(n, "transA", 0, &ta, &d) != CRUN_OK || attr_get_int(n, "transB", 0, &tb, &d) != CRUN_OK ||
                 attr_get_float(n, "alpha", 1.0f, &alpha, &d) != CRUN_OK ||
                 attr_get_float(n, "beta", 1.0f, &beta, &d) != CRUN_OK))
        return false;
    int64_t N = tb ? w->dims[0] : w->dims[1];
    int c = gemm && n->n_in > 2 ? n->in[2] : -1;
    if (ta || alpha != 1.0f)
        return false;
    if (c >= 0 && (!is_const(b, c) || !is_f32(b, c) || tensor_numel(val(b, c)) != N ||
                   val(b, c)->dims[val(b, c)->rank - 1] != N))
        return false;
    if (!b->sg)
        return true;
    uint32_t bid = XNN_INVALID_VALUE_ID;
    if (c >= 0) {
        float *bias = own(b, (size_t)N * sizeof(float));
        if (!bias)
            return !(b->failed = true);
        for (int64_t j = 0; j < N; j++)
            bias[j] = beta * ((const float *)val(b, c)->data)[j];
        size_t bd[1] = {(size_t)N};
        bid = define(b, 1, bd, bias, XNN_INVALID_VALUE_ID, 0);
    }
    size_t wd[2] = {(size_t)w->dims[0], (size_t)w->dims[1]};
    uint32_t fid = define(b, 2, wd, w->data, XNN_INVALID_VALUE_ID, 0);
    float lo, hi;
    act_range(&n->act, &lo, &hi);
    uint32_t y = pre_act(b, &n->act, n->out[0]);
    if (b->failed)
        return false;
    /* Without transB the weight is [K][N]: XNNPACK's transposed-weights form. */
    uint32_t flags = tb ? 0 : XNN_FLAG_TRANSPOSE_WEIGHTS;
    return ok(b, xnn_define_fully_connected(b->sg, lo, hi, b->vid[n->in[0]], fid, bid, y, flags)) &&
           after_act(b, &n->act, y, n->out[0]);
}

static bool translate_binary(Build *b, const Node *n)
{
    int out_rank = val(b, n->out[0])->rank;
    for (int k = 0; k < 2; k++) {
        const Tensor *t = val(b, n->in[k]);
        /* A non-constant operand must be laid out as the output is. */
        if (!is_const(b, n->in[k]) && (t->rank == 4) != (out_rank == 4))
            return false;
    }
    if (!b->sg)
        return true;
    uint32_t x0 = operand(b, n->in[0], out_rank == 4), x1 = operand(b, n->in[1], out_rank == 4);
    uint32_t y = result(b, n->out[0]);
    if (b->failed)
        return false;
    float lo = -INFINITY, hi = INFINITY;
    if (op_is(n, "Add"))
        return ok(b, xnn_define_add2(b->sg, lo, hi, x0, x1, y, 0));
    if (op_is(n, "Sub"))
        return ok(b, xnn_define_subtract(b->sg, lo, hi, x0, x1, y, 0));
    if (op_is(n, "Mul"))
        return ok(b, xnn_define_multiply2(b->sg, lo, hi, x0, x1, y, 0));
    return ok(b, xnn_define_divide(b->sg, lo, hi, x0, x1, y, 0));
}

/* A bound of Clip: an attribute before opset 11, an optional constant input after. */
static bool clip_bound(const Build *b, const Node *n, int k, const char *attr, float def, float *out)
{
    Diag d = {0};
    if (n->opset < 11)
        return attr_get_float(n, attr, def, out, &d) == CRUN_OK;
    *out = def;
    if (n->n_in <= k || n->in[k] < 0)
        return true;
    if (!is_const(b, n->in[k]) || !is_f32(b, n->in[k]) || tensor_numel(val(b, n->in[k])) != 1)
        return false;
    *out = *(const float *)val(b, n->in[k])->data;
    return true;
}

static bool translate_unary(Build *b, const Node *n)
{
    float lo = -INFINITY, hi = INFINITY, alpha = 0.01f;
    Diag d = {0};
    bool clip = op_is(n, "Clip");
    if (clip && (!clip_bound(b, n, 1, "min", -INFINITY, &lo) || !clip_bound(b, n, 2, "max", INFINITY, &hi)))
        return false;
    float hs_alpha = 0.2f, hs_beta = 0.5f;
    if (op_is(n, "LeakyRelu") && attr_get_float(n, "alpha", 0.01f, &alpha, &d) != CRUN_OK)
        return false;
    if (op_is(n, "HardSigmoid") && (attr_get_float(n, "alpha", 0.2f, &hs_alpha, &d) != CRUN_OK ||
                                     attr_get_float(n, "beta", 0.5f, &hs_beta, &d) != CRUN_OK))
        return false;
    if (!b->sg)
        return true;
    uint32_t x = b->vid[n->in[0]], y = result(b, n->out[0]);
    if (b->failed)
        return false;
    if (op_is(n, "Relu"))
        return ok(b, xnn_define_clamp(b->sg, 0.0f, INFINITY, x, y, 0));
    if (clip)
        return ok(b, xnn_define_clamp(b->sg, lo, hi, x, y, 0));
    if (op_is(n, "Sigmoid"))
        return ok(b, xnn_define_sigmoid(b->sg, x, y, 0));
    if (op_is(n, "HardSwish"))
        return ok(b, xnn_define_hardswish(b->sg, x, y, 0));
    if (op_is(n, "HardSigmoid"))
        return scale_shift(b, x, hs_alpha, hs_beta, 0.0f, 1.0f, y, n->out[0]);
    return ok(b, xnn_define_leaky_relu(b->sg, alpha, x, y, 0));
}

static bool translate_pool(Build *b, const Node *n)
{
    const Tensor *x = val(b, n->in[0]), *y = val(b, n->out[0]);
    bool max = op_is(n, "MaxPool");
    if (x->rank != 4 || (n->n_out > 1 && n->out[1] >= 0))
        return false;
    WindowGeom g;
    if (!pool_window_known(n, x, &g) || g.nsp != 2)
        return false;
    /* XNNPACK's windows: floor((in + pads - dilated window) / stride) + 1, with padding
     * that a max ignores; average pooling only without padding (the divisor is then the
     * window size, whatever count_include_pad says). */
    for (int a = 1; a < 3; a++) {
        int64_t span = g.in[a] + g.pb[a] + g.pe[a] - (g.k[a] - 1) * g.d[a] - 1;
        if (g.pe[a] < 0 || span < 0 || span / g.s[a] + 1 != y->dims[1 + a])
            return false;
        if (!max && (g.pb[a] || g.pe[a] || g.d[a] != 1))
            return false;
    }
    if (!b->sg)
        return true;
    uint32_t xi = b->vid[n->in[0]], yi = result(b, n->out[0]);
    if (b->failed)
        return false;
    uint32_t pt = (uint32_t)g.pb[1], pl = (uint32_t)g.pb[2], pb = (uint32_t)g.pe[1], pr = (uint32_t)g.pe[2];
    if (max)
        return ok(b, xnn_define_max_pooling_2d(b->sg, pt, pr, pb, pl, (uint32_t)g.k[1], (uint32_t)g.k[2],
                                               (uint32_t)g.s[1], (uint32_t)g.s[2], (uint32_t)g.d[1],
                                               (uint32_t)g.d[2], -INFINITY, INFINITY, xi, yi, 0));
    return ok(b, xnn_define_average_pooling_2d(b->sg, 0, 0, 0, 0, (uint32_t)g.k[1], (uint32_t)g.k[2],
                                               (uint32_t)g.s[1], (uint32_t)g.s[2], -INFINITY, INFINITY, xi, yi, 0));
}

static bool translate_gap(Build *b, const Node *n)
{
    if (val(b, n->in[0])->rank != 4)
        return false;
    if (!b->sg)
        return true;
    uint32_t x = b->vid[n->in[0]], y = result(b, n->out[0]);
    return !b->failed && ok(b, xnn_define_global_average_pooling_2d(b->sg, -INFINITY, INFINITY, x, y, 0));
}

/* Flatten/Reshape from 4-D to another rank: the same bytes only when NCHW and NHWC order
 * agree (one channel, or one pixel). */
static bool translate_reshape(Build *b, const Node *n)
{
    const Tensor *x = val(b, n->in[0]), *y = val(b, n->out[0]);
    if (x->rank == y->rank || !same_order_4d(x) || !same_order_4d(y))
        return false;
    if (!b->sg)
        return true;
    size_t dims[XNN_MAX_TENSOR_DIMS];
    size_t rank = xnn_dims(y, dims);
    uint32_t xi = b->vid[n->in[0]], yi = result(b, n->out[0]);
    return !b->failed && ok(b, xnn_define_static_reshape(b->sg, rank, dims, xi, yi, 0));
}

/* Concat, which this XNNPACK lacks: each input padded with zeros to the output's extent
 * along the axis, at its offset, and the padded tensors added (x + 0 is x exactly). */
static bool translate_concat(Build *b, const Node *n)
{
    const Tensor *y = val(b, n->out[0]);
    Diag d = {0};
    int64_t axis;
    if (attr_get_int(n, "axis", n->opset < 4 ? 1 : 0, &axis, &d) != CRUN_OK || n->n_in < 2)
        return false;
    axis = axis < 0 ? axis + y->rank : axis;
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] < 0 || val(b, n->in[k])->rank != y->rank || is_const(b, n->in[k]))
            return false;
    if (axis < 0 || axis >= y->rank)
        return false;
    if (!b->sg)
        return true;
    /* The axis as XNNPACK sees it: NCHW channels are NHWC's last axis. */
    static const int nhwc_axis[4] = {0, 3, 1, 2};
    int xa = y->rank == 4 ? nhwc_axis[axis] : (int)axis;
    size_t pre[XNN_MAX_TENSOR_DIMS] = {0}, post[XNN_MAX_TENSOR_DIMS] = {0};
    uint32_t acc = XNN_INVALID_VALUE_ID;
    int64_t at = 0;
    for (int k = 0; k < n->n_in && !b->failed; k++) {
        int64_t len = val(b, n->in[k])->dims[axis];
        pre[xa] = (size_t)at, post[xa] = (size_t)(y->dims[axis] - at - len);
        at += len;
        uint32_t t = temp_like(b, n->out[0]);
        if (!ok(b, xnn_define_static_constant_pad(b->sg, pre, post, 0.0f, b->vid[n->in[k]], t, 0)))
            return false;
        if (k == 0) {
            acc = t;
            continue;
        }
        uint32_t sum = k == n->n_in - 1 ? result(b, n->out[0]) : temp_like(b, n->out[0]);
        if (b->failed || !ok(b, xnn_define_add2(b->sg, -INFINITY, INFINITY, acc, t, sum, 0)))
            return false;
        acc = sum;
    }
    return !b->failed;
}

typedef bool (*TranslateFn)(Build *b, const Node *n);

static TranslateFn translator(const Node *n)
{
    static const struct {
        const char *op;
        TranslateFn fn;
    } table[] = {
        {"Conv", translate_conv},         {"Gemm", translate_dense},       {"MatMul", translate_dense},
        {"Add", translate_binary},        {"Sub", translate_binary},       {"Mul", translate_binary},
        {"Div", translate_binary},        {"Relu", translate_unary},       {"Clip", translate_unary},
        {"Sigmoid", translate_unary},     {"HardSwish", translate_unary},  {"LeakyRelu", translate_unary},
        {"HardSigmoid", translate_unary},
        {"MaxPool", translate_pool},      {"AveragePool", translate_pool}, {"GlobalAveragePool", translate_gap},
        {"Flatten", translate_reshape},   {"Reshape", translate_reshape},  {"Concat", translate_concat},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (op_is(n, table[i].op))
            return table[i].fn;
    return NULL;
}

static bool is_heavy(const Node *n) { return op_is(n, "Conv") || op_is(n, "Gemm") || op_is(n, "MatMul"); }

/* The inputs a node computes on: Reshape's shape and Clip's bounds are read as constants. */
static int data_inputs(const Node *n) { return op_is(n, "Reshape") || op_is(n, "Clip") ? 1 : n->n_in; }

/* Whether step s can go into a region: float32 tensors throughout, and a translator that
 * takes the node (dry run). */
static bool step_translates(const Build *b, const PlanStep *s)
{
    const Node *n = &b->p->g->nodes[s->node];
    TranslateFn fn = translator(n);
    if (s->dynamic || !s->kv || !fn || n->n_out < 1 || n->out[0] < 0)
        return false;
    for (int k = 0; k < data_inputs(n); k++)
        if (n->in[k] >= 0 && !is_f32(b, n->in[k]))
            return false;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0 && (!is_f32(b, n->out[k]) || b->p->vals[n->out[k]].store != STORE_ARENA))
            return false;
    Build dry = *b;
    dry.sg = NULL;
    return fn(&dry, n);
}

/* ---- regions ---- */

bool xnn_choose_nodes(const Plan *single, const double *native_ms, uint8_t *allow)
{
    bool any = false;
    for (int s = 0; s < single->n_steps; s++) {
        const Region *r = single->steps[s].region_io ? single->steps[s].state : NULL;
        double best = INFINITY;
        for (int i = 0; r && i < 4; i++) { /* a warm-up, then the best of three */
            double t0 = clock_ms();
            if (xnn_invoke_runtime(r->rt) != xnn_status_success)
                break;
            if (i > 0)
                best = fmin(best, clock_ms() - t0);
        }
        int node = single->steps[s].node;
        if (!r)
            continue;
        bool heavy = is_heavy(&single->g->nodes[node]);
        allow[node] = !heavy || best < native_ms[node];
        any |= heavy && allow[node];
    }
    return any;
}

static void region_free(void *state)
{
    Region *r = state;
    if (!r)
        return;
    if (r->rt)
        xnn_delete_runtime(r->rt);
    if (r->pool && --r->pool->refs == 0) {
        if (r->pool->pool)
            pthreadpool_destroy(r->pool->pool);
        free(r->pool);
    }
    for (int i = 0; i < r->n_in + r->n_out; i++)
        free(r->io ? r->io[i].stage : NULL);
    free(r->io);
    for (int i = 0; i < r->n_owned; i++)
        free(r->owned[i]);
    free(r->owned);
    free(r);
}

static crun_status region_run(KernelCtx *k)
{
    const Region *r = k->state;
    for (int i = 0; i < r->n_in; i++) {
        const RegionIo *io = &r->io[i];
        if (io->nhwc)
            relayout(k->in[i]->data, io->stage, io->n, io->c, io->hw, false);
        else
            memcpy(io->stage, k->in[i]->data, io->elems * sizeof(float));
    }
    pool_rest(k->pool); /* XNNPACK's threads need the cores crun's would spin on */
    if (xnn_invoke_runtime(r->rt) != xnn_status_success)
        return diag_fail(k->d, CRUN_ERR_RUNTIME, "node '%s': XNNPACK failed to run its region", k->node->name);
    for (int o = 0; o < r->n_out; o++) {
        const RegionIo *io = &r->io[r->n_in + o];
        if (io->nhwc)
            relayout(io->stage, k->out[o]->data, io->n, io->c, io->hw, true);
        else
            memcpy(k->out[o]->data, io->stage, io->elems * sizeof(float));
    }
    return CRUN_OK;
}

/* One variant per ISA, so that crun info shows what XNNPACK runs on this CPU with. */
#define REGION_KV(isa) {"xnnpack", isa, NULL, NULL, region_run, NULL}
static const KernelVariant region_kernels[ISA_COUNT] = {
    REGION_KV(ISA_SCALAR), REGION_KV(ISA_AVX2), REGION_KV(ISA_AVX512), REGION_KV(ISA_AVX512VNNI),
    REGION_KV(ISA_NEON),   REGION_KV(ISA_NEONDOT), REGION_KV(ISA_NEONFP16),
};

/* Values crossing the boundary of steps [s0, s1): read there but made before (inputs),
 * made there and read later or returned (outputs). made_at[v]: the step making v, or -1;
 * last_read[v]: the last step reading v (n_steps for a graph output). */
static int region_boundary(const Plan *p, int s0, int s1, const int *made_at, const int *last_read, int *list,
                           int *n_in)
{
    int n = 0;
    for (int s = s0; s < s1; s++) {
        const Node *nd = &p->g->nodes[p->steps[s].node];
        for (int k = 0; k < data_inputs(nd); k++) {
            int v = nd->in[k];
            if (v < 0 || p->vals[v].store == STORE_CONST || (made_at[v] >= s0 && made_at[v] < s1))
                continue;
            bool seen = false;
            for (int i = 0; i < n && !seen; i++)
                seen = list[i] == v;
            if (!seen)
                list[n++] = v;
        }
    }
    *n_in = n;
    for (int s = s0; s < s1; s++) {
        const Node *nd = &p->g->nodes[p->steps[s].node];
        for (int k = 0; k < nd->n_out; k++)
            if (nd->out[k] >= 0 && last_read[nd->out[k]] >= s1)
                list[n++] = nd->out[k];
    }
    return n;
}

static bool stage(Build *b, RegionIo *io, int v, uint32_t ext, uint32_t flags)
{
    const Tensor *t = val(b, v);
    io->value = v;
    io->nhwc = t->rank == 4;
    io->elems = (size_t)tensor_numel(t);
    if (io->nhwc)
        io->n = t->dims[0], io->c = t->dims[1], io->hw = t->dims[2] * t->dims[3];
    io->stage = calloc(1, io->elems * sizeof(float) + XNN_EXTRA_BYTES);
    if (!io->stage)
        return false;
    size_t dims[XNN_MAX_TENSOR_DIMS];
    size_t rank = xnn_dims(t, dims);
    b->vid[v] = define(b, rank, dims, NULL, ext, flags);
    return !b->failed;
}

/* Builds the region of steps [s0, s1) into *out, or leaves *out NULL when XNNPACK refuses
 * it (the steps then stay native). Fails only without memory. */
static crun_status build_region(Plan *p, int s0, int s1, const int *made_at, const int *last_read, SharedPool *pool,
                                uint32_t *vid, Region **out, int **io_out, int *n_in_out, int *n_out_out)
{
    *out = NULL;
    int cap = 0;
    for (int s = s0; s < s1; s++)
        cap += p->g->nodes[p->steps[s].node].n_in + p->g->nodes[p->steps[s].node].n_out;
    int *list = malloc(((size_t)cap + 1) * sizeof *list);
    Region *r = calloc(1, sizeof *r);
    if (!list || !r) {
        free(list);
        free(r);
        return CRUN_ERR_OUT_OF_MEMORY;
    }
    int n_in, n = region_boundary(p, s0, s1, made_at, last_read, list, &n_in);
    r->n_in = n_in, r->n_out = n - n_in;
    r->io = calloc((size_t)n + 1, sizeof *r->io);
    Build b = {.p = p, .vid = vid, .r = r};
    bool built = r->io && r->n_out > 0 &&
                 xnn_create_subgraph((uint32_t)n, 0, &b.sg) == xnn_status_success;
    for (int i = 0; built && i < n; i++)
        built = stage(&b, &r->io[i], list[i], (uint32_t)i,
                      i < n_in ? XNN_VALUE_FLAG_EXTERNAL_INPUT : XNN_VALUE_FLAG_EXTERNAL_OUTPUT);
    for (int s = s0; built && s < s1; s++) {
        const Node *nd = &p->g->nodes[p->steps[s].node];
        built = translator(nd)(&b, nd) && !b.failed;
    }
    if (built)
        /* Its workers yield when it is done: crun's kernels may run next. */
        built = xnn_create_runtime_v2(b.sg, pool->pool, XNN_FLAG_YIELD_WORKERS, &r->rt) == xnn_status_success;
    if (b.sg)
        xnn_delete_subgraph(b.sg);
    struct xnn_external_value *ext = built ? calloc((size_t)n + 1, sizeof *ext) : NULL;
    for (int i = 0; ext && i < n; i++)
        ext[i] = (struct xnn_external_value){(uint32_t)i, r->io[i].stage};
    built = ext && xnn_setup_runtime(r->rt, (size_t)n, ext) == xnn_status_success;
    free(ext);
    for (int i = 0; i < n; i++) /* the ids are per subgraph */
        vid[list[i]] = XNN_INVALID_VALUE_ID;
    for (int s = s0; s < s1; s++) {
        const Node *nd = &p->g->nodes[p->steps[s].node];
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k] >= 0)
                vid[nd->in[k]] = XNN_INVALID_VALUE_ID;
        for (int k = 0; k < nd->n_out; k++)
            if (nd->out[k] >= 0)
                vid[nd->out[k]] = XNN_INVALID_VALUE_ID;
    }
    if (!built) {
        region_free(r);
        free(list);
        return CRUN_OK;
    }
    r->pool = pool;
    pool->refs++;
    snprintf(r->note, sizeof r->note, "xnnpack region of %d nodes", s1 - s0);
    *out = r;
    *io_out = list;
    *n_in_out = n_in;
    *n_out_out = n - n_in;
    return CRUN_OK;
}

/* Makes steps [s0, s1) one step running region r; returns the steps removed. */
static int fold_steps(Plan *p, int s0, int s1, Region *r, int *io, int n_in, int n_out)
{
    PlanStep merged = {.node = p->steps[s1 - 1].node, .kv = &region_kernels[isa_best()], .state = r,
                       .region_io = io, .n_region_in = n_in, .n_region_out = n_out, .region_note = r->note,
                       .release = region_free};
    for (int s = s0; s < s1; s++) {
        merged.flops += p->steps[s].flops;
        mem_free(p->steps[s].state); /* the native kernels' prepared states */
        const Node *nd = &p->g->nodes[p->steps[s].node];
        for (int k = 0; k < nd->n_out; k++) /* inside the region only: no arena space */
            if (nd->out[k] >= 0) {
                bool crosses = false;
                for (int i = n_in; i < n_in + n_out; i++)
                    crosses |= io[i] == nd->out[k];
                if (!crosses)
                    p->vals[nd->out[k]].store = STORE_NONE;
            }
    }
    p->steps[s0] = merged;
    memmove(&p->steps[s0 + 1], &p->steps[s1], (size_t)(p->n_steps - s1) * sizeof *p->steps);
    p->n_steps -= s1 - s0 - 1;
    return s1 - s0 - 1;
}

static void find_uses(const Plan *p, int *made_at, int *last_read)
{
    for (int v = 0; v < p->g->n_values; v++)
        made_at[v] = last_read[v] = -1;
    for (int s = 0; s < p->n_steps; s++) {
        StepIo io = step_io(p, &p->steps[s]);
        for (int k = 0; k < io.n_in; k++)
            if (io.in[k] >= 0)
                last_read[io.in[k]] = s;
        for (int k = 0; k < io.n_out; k++)
            if (io.out[k] >= 0)
                made_at[io.out[k]] = s;
    }
    for (int i = 0; i < p->g->n_outputs; i++)
        last_read[p->g->outputs[i].value] = p->n_steps;
}

crun_status xnn_form_regions(Plan *p, const XnnChoice *xc, Diag *d)
{
    pthread_once(&init_once, init_xnnpack);
    if (!init_ok)
        return diag_fail(d, CRUN_ERR_UNSUPPORTED, "XNNPACK failed to initialise on this CPU");
    size_t nv = (size_t)p->g->n_values + 1;
    int *made_at = malloc(nv * sizeof *made_at), *last_read = malloc(nv * sizeof *last_read);
    uint32_t *vid = malloc(nv * sizeof *vid);
    SharedPool *pool = calloc(1, sizeof *pool);
    crun_status st = made_at && last_read && vid && pool ? CRUN_OK : CRUN_ERR_OUT_OF_MEMORY;
    if (st == CRUN_OK && p->n_threads > 1 && !(pool->pool = pthreadpool_create((size_t)p->n_threads)))
        st = CRUN_ERR_OUT_OF_MEMORY;
    for (size_t v = 0; vid && v < nv; v++)
        vid[v] = XNN_INVALID_VALUE_ID;
    Build probe = {.p = p, .vid = vid};
    const uint8_t *allow = xc ? xc->allow : NULL;
    bool one = xc && xc->one_per_node;
    for (int s0 = 0; st == CRUN_OK && s0 < p->n_steps; s0++) {
        int s1 = s0;
        bool heavy = false;
        while (s1 < p->n_steps && (!allow || allow[p->steps[s1].node]) && step_translates(&probe, &p->steps[s1]) &&
               !(one && s1 > s0))
            heavy |= is_heavy(&p->g->nodes[p->steps[s1++].node]);
        heavy |= one && s1 > s0;
        if (!heavy) {
            s0 = s1 > s0 ? s1 - 1 : s0;
            continue;
        }
        find_uses(p, made_at, last_read);
        Region *r;
        int *io, n_in, n_out;
        st = build_region(p, s0, s1, made_at, last_read, pool, vid, &r, &io, &n_in, &n_out);
        if (st == CRUN_OK && r)
            fold_steps(p, s0, s1, r, io, n_in, n_out);
        else
            s0 = s1 - 1; /* refused: those steps stay native */
    }
    if (pool && pool->refs == 0) {
        if (pool->pool)
            pthreadpool_destroy(pool->pool);
        free(pool);
    }
    free(made_at);
    free(last_read);
    free(vid);
    return st == CRUN_OK ? CRUN_OK : diag_fail(d, st, "out of memory");
}

#endif
