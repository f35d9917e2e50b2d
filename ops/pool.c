/* pool.c - MaxPool, AveragePool (1-3 spatial dims), GlobalAveragePool, GlobalMaxPool. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/registry.h"
#include "ops/spatial.h"
#include "runtime/threadpool.h"

typedef struct PoolParams {
    WindowAttrs w;
    int64_t ceil_mode, count_include_pad, storage_order;
} PoolParams;

typedef struct PoolGeom {
    WindowGeom w;
    int64_t planes; /* N * C */
} PoolGeom;

static crun_status parse_pool(Node *n, Diag *d)
{
    PoolParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = window_attrs_parse(n, &p->w, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "ceil_mode", 0, &p->ceil_mode, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "count_include_pad", 0, &p->count_include_pad, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "storage_order", 0, &p->storage_order, d);
    if (st == CRUN_OK && p->w.n_kernel == 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'kernel_shape' is required");
    return st;
}

static const char *pool_geom(const PoolParams *p, const Tensor *x, PoolGeom *g, char *buf, size_t bufsz)
{
    memset(g, 0, sizeof *g);
    if (x->rank < 3)
        return "input must have 1 to 3 spatial dims";
    if (p->w.n_kernel != x->rank - 2)
        return "kernel_shape does not match the spatial rank";
    g->planes = x->dims[0] * x->dims[1];
    return window_geom(&p->w, x->rank - 2, x->dims + 2, p->w.kernel, p->ceil_mode != 0, &g->w, buf, bufsz);
}

static crun_status pool_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, dtype_is_float(x->dtype) || x->dtype == CRUN_DTYPE_INT8 || x->dtype == CRUN_DTYPE_UINT8,
               "type %s is not supported", dtype_name(x->dtype));
    PoolGeom g;
    char buf[160];
    const char *err = pool_geom(c->params, x, &g, buf, sizeof buf);
    NODE_CHECK(c, !err, "%s", err);
    int64_t dims[CRUN_MAX_RANK] = {x->dims[0], x->dims[1]};
    for (int i = 0; i < g.w.nsp; i++)
        dims[2 + i] = g.w.out[3 - g.w.nsp + i];
    out_set(c->out[0], x->dtype, x->rank, dims);
    if (c->n_out > 1 && c->out[1])
        out_set(c->out[1], CRUN_DTYPE_INT64, x->rank, dims);
    return CRUN_OK;
}

static int64_t pool_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    const PoolParams *p = n->params;
    int64_t kv = 1;
    for (int i = 0; i < p->w.n_kernel; i++)
        kv *= p->w.kernel[i];
    return tensor_numel(out[0]) * kv;
}

typedef struct PoolJob {
    const PoolGeom *g;
    const PoolParams *p;
    const Tensor *x;
    Tensor *y, *idx;
    bool is_max;
} PoolJob;

/* One output plane; elements are read and written in double through the tensor
 * accessors for non-float32 types, directly for float32. */
static void pool_plane(void *ctx, int64_t t, int thread)
{
    const PoolJob *j = ctx;
    const PoolGeom *g = j->g;
    bool f32 = j->x->dtype == CRUN_DTYPE_FLOAT;
    const float *xf = (const float *)j->x->data + t * g->w.in_vol;
    float *yf = (float *)j->y->data + t * g->w.out_vol;
    int64_t xo = t * g->w.in_vol, yo = t * g->w.out_vol;
    for (int64_t oz = 0; oz < g->w.out[0]; oz++)
        for (int64_t oy = 0; oy < g->w.out[1]; oy++)
            for (int64_t ox = 0; ox < g->w.out[2]; ox++) {
                int64_t o[3] = {oz, oy, ox}, lo[3], hi[3], cnt_pad = 1;
                for (int a = 0; a < 3; a++) {
                    lo[a] = o[a] * g->w.s[a] - g->w.pb[a];
                    /* Window end counted for count_include_pad stops at the end padding. */
                    int64_t end = CRUN_MIN(lo[a] + (g->w.k[a] - 1) * g->w.d[a] + 1, g->w.in[a] + g->w.pe[a]);
                    cnt_pad *= (end - lo[a] + g->w.d[a] - 1) / g->w.d[a];
                    hi[a] = lo[a] + (g->w.k[a] - 1) * g->w.d[a];
                }
                double acc = j->is_max ? -INFINITY : 0.0;
                int64_t cnt = 0, best = -1;
                for (int64_t iz = lo[0]; iz <= hi[0]; iz += g->w.d[0]) {
                    if (iz < 0 || iz >= g->w.in[0])
                        continue;
                    for (int64_t iy = lo[1]; iy <= hi[1]; iy += g->w.d[1]) {
                        if (iy < 0 || iy >= g->w.in[1])
                            continue;
                        for (int64_t ix = lo[2]; ix <= hi[2]; ix += g->w.d[2]) {
                            if (ix < 0 || ix >= g->w.in[2])
                                continue;
                            int64_t xi = (iz * g->w.in[1] + iy) * g->w.in[2] + ix;
                            double v = f32 ? xf[xi] : tensor_get_double(j->x, xo + xi);
                            if (j->is_max) {
                                if (v > acc || best < 0) {
                                    acc = v;
                                    best = j->p->storage_order ? (ix * g->w.in[1] + iy) * g->w.in[0] + iz : xi;
                                }
                            } else {
                                acc += v;
                            }
                            cnt++;
                        }
                    }
                }
                int64_t yi = (oz * g->w.out[1] + oy) * g->w.out[2] + ox;
                double v = j->is_max ? acc : acc / (double)(j->p->count_include_pad ? cnt_pad : CRUN_MAX(cnt, 1));
                if (f32)
                    yf[yi] = (float)v;
                else
                    tensor_set_double(j->y, yo + yi, v);
                if (j->idx)
                    ((int64_t *)j->idx->data)[yo + yi] = xo + best;
            }
}

static crun_status pool_run(KernelCtx *k, bool is_max)
{
    PoolGeom g;
    char buf[160];
    pool_geom(k->params, k->in[0], &g, buf, sizeof buf);
    PoolJob j = {&g, k->params, k->in[0], k->out[0], k->n_out > 1 ? k->out[1] : NULL, is_max};
    pool_for(k->pool, g.planes, pool_plane, &j);
    return CRUN_OK;
}

static crun_status maxpool_run(KernelCtx *k) { return pool_run(k, true); }
static crun_status avgpool_run(KernelCtx *k) { return pool_run(k, false); }

static const KernelVariant maxpool_kernels[] = {{"maxpool_ref", ISA_SCALAR, NULL, NULL, maxpool_run, NULL}, {0}};
static const KernelVariant avgpool_kernels[] = {{"avgpool_ref", ISA_SCALAR, NULL, NULL, avgpool_run, NULL}, {0}};
const OpDesc op_MaxPool = {"", "MaxPool", 1, 1, 1, 2, 0, parse_pool, pool_infer, pool_flops, maxpool_kernels};
const OpDesc op_AveragePool = {"", "AveragePool", 1, 1, 1, 1, 0, parse_pool, pool_infer, pool_flops,
                               avgpool_kernels};

/* ---- global pooling over all spatial dims ---- */

static crun_status global_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, x->rank >= 2, "input must have rank >= 2");
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    int64_t dims[CRUN_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        dims[i] = i < 2 ? x->dims[i] : 1;
    out_set(c->out[0], x->dtype, x->rank, dims);
    return CRUN_OK;
}

static int64_t global_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(in[0]);
}

typedef struct GlobalJob {
    const Tensor *x;
    Tensor *y;
    int64_t vol;
    bool is_max;
} GlobalJob;

static void global_plane(void *ctx, int64_t t, int thread)
{
    const GlobalJob *j = ctx;
    if (j->x->dtype == CRUN_DTYPE_FLOAT) {
        const float *x = (const float *)j->x->data + t * j->vol;
        float acc = j->is_max ? -INFINITY : 0.0f;
        for (int64_t i = 0; i < j->vol; i++)
            acc = j->is_max ? (x[i] > acc ? x[i] : acc) : acc + x[i];
        ((float *)j->y->data)[t] = j->is_max ? acc : acc / (float)j->vol;
        return;
    }
    double acc = j->is_max ? -INFINITY : 0.0;
    for (int64_t i = 0; i < j->vol; i++) {
        double v = tensor_get_double(j->x, t * j->vol + i);
        acc = j->is_max ? (v > acc ? v : acc) : acc + v;
    }
    tensor_set_double(j->y, t, j->is_max ? acc : acc / (double)j->vol);
}

static crun_status global_run(KernelCtx *k, bool is_max)
{
    const Tensor *x = k->in[0];
    GlobalJob j = {x, k->out[0], shape_numel(x->dims + 2, x->rank - 2), is_max};
    pool_for(k->pool, x->dims[0] * x->dims[1], global_plane, &j);
    return CRUN_OK;
}

static crun_status gap_run(KernelCtx *k) { return global_run(k, false); }
static crun_status gmp_run(KernelCtx *k) { return global_run(k, true); }

static const KernelVariant gap_kernels[] = {{"global_avgpool_ref", ISA_SCALAR, NULL, NULL, gap_run, NULL}, {0}};
static const KernelVariant gmp_kernels[] = {{"global_maxpool_ref", ISA_SCALAR, NULL, NULL, gmp_run, NULL}, {0}};
const OpDesc op_GlobalAveragePool = {"", "GlobalAveragePool", 1, 1, 1, 1, 0, NULL, global_infer, global_flops,
                                     gap_kernels};
const OpDesc op_GlobalMaxPool = {"", "GlobalMaxPool", 1, 1, 1, 1, 0, NULL, global_infer, global_flops, gmp_kernels};
