/* pool.c - MaxPool, AveragePool (1-3 spatial dims), GlobalAveragePool, GlobalMaxPool. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/registry.h"
#include "ops/spatial.h"
#include "runtime/threadpool.h"

typedef struct PoolParams {
    int auto_pad;
    int64_t ceil_mode, count_include_pad, storage_order;
    int n_kernel, n_strides, n_dilations, n_pads;
    int64_t kernel[3], strides[3], dilations[3], pads[6];
} PoolParams;

typedef struct PoolGeom {
    int nsp;
    int64_t planes; /* N * C */
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
    int64_t in_vol, out_vol;
} PoolGeom;

static crun_status parse_pool(Node *n, Diag *d)
{
    PoolParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    const char *ap = "NOTSET";
    crun_status st = attr_get_string(n, "auto_pad", "NOTSET", &ap, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "ceil_mode", 0, &p->ceil_mode, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "count_include_pad", 0, &p->count_include_pad, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "storage_order", 0, &p->storage_order, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "kernel_shape", p->kernel, 3, &p->n_kernel, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "strides", p->strides, 3, &p->n_strides, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "dilations", p->dilations, 3, &p->n_dilations, d);
    if (st == CRUN_OK)
        st = attr_get_ints(n, "pads", p->pads, 6, &p->n_pads, d);
    if (st != CRUN_OK)
        return st;
    if ((p->auto_pad = auto_pad_parse(ap)) < 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "auto_pad '%s' is not valid", ap);
    if (p->n_kernel == 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'kernel_shape' is required");
    for (int i = 0; i < p->n_kernel; i++)
        if (p->kernel[i] < 1)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "kernel_shape must be >= 1");
    for (int i = 0; i < p->n_strides; i++)
        if (p->strides[i] < 1)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "strides must be >= 1");
    for (int i = 0; i < p->n_dilations; i++)
        if (p->dilations[i] < 1)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "dilations must be >= 1");
    for (int i = 0; i < p->n_pads; i++)
        if (p->pads[i] < 0)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "pads must be >= 0");
    return CRUN_OK;
}

static const char *pool_geom(const PoolParams *p, const Tensor *x, PoolGeom *g, char *buf, size_t bufsz)
{
    int nsp = x->rank - 2;
    memset(g, 0, sizeof *g);
    if (nsp < 1 || nsp > 3)
        return "input must have 1 to 3 spatial dims";
    if (p->n_kernel != nsp || (p->n_strides && p->n_strides != nsp) || (p->n_dilations && p->n_dilations != nsp) ||
        (p->n_pads && p->n_pads != 2 * nsp))
        return "kernel_shape, strides, dilations or pads do not match the spatial rank";
    g->nsp = nsp;
    g->planes = x->dims[0] * x->dims[1];
    g->in_vol = g->out_vol = 1;
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - nsp);
        g->in[i] = j < 0 ? 1 : x->dims[2 + j];
        g->k[i] = j < 0 ? 1 : p->kernel[j];
        g->s[i] = j < 0 || !p->n_strides ? 1 : p->strides[j];
        g->d[i] = j < 0 || !p->n_dilations ? 1 : p->dilations[j];
        g->out[i] = j < 0 ? 1
                          : spatial_out(g->in[i], g->k[i], g->s[i], g->d[i], p->auto_pad, p->n_pads ? p->pads[j] : 0,
                                        p->n_pads ? p->pads[j + nsp] : 0, p->ceil_mode != 0, &g->pb[i], &g->pe[i]);
        if (g->out[i] < 1) {
            snprintf(buf, bufsz, "window %lld does not fit the padded input %lld", (long long)g->k[i],
                     (long long)(g->in[i] + g->pb[i] + g->pe[i]));
            return buf;
        }
        g->in_vol *= g->in[i];
        g->out_vol *= g->out[i];
    }
    return NULL;
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
    for (int i = 0; i < g.nsp; i++)
        dims[2 + i] = g.out[3 - g.nsp + i];
    out_set(c->out[0], x->dtype, x->rank, dims);
    if (c->n_out > 1 && c->out[1])
        out_set(c->out[1], CRUN_DTYPE_INT64, x->rank, dims);
    return CRUN_OK;
}

static int64_t pool_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    const PoolParams *p = n->params;
    int64_t kv = 1;
    for (int i = 0; i < p->n_kernel; i++)
        kv *= p->kernel[i];
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
    const float *xf = (const float *)j->x->data + t * g->in_vol;
    float *yf = (float *)j->y->data + t * g->out_vol;
    int64_t xo = t * g->in_vol, yo = t * g->out_vol;
    for (int64_t oz = 0; oz < g->out[0]; oz++)
        for (int64_t oy = 0; oy < g->out[1]; oy++)
            for (int64_t ox = 0; ox < g->out[2]; ox++) {
                int64_t o[3] = {oz, oy, ox}, lo[3], hi[3], cnt_pad = 1;
                for (int a = 0; a < 3; a++) {
                    lo[a] = o[a] * g->s[a] - g->pb[a];
                    /* Window end counted for count_include_pad stops at the end padding. */
                    int64_t end = CRUN_MIN(lo[a] + (g->k[a] - 1) * g->d[a] + 1, g->in[a] + g->pe[a]);
                    cnt_pad *= (end - lo[a] + g->d[a] - 1) / g->d[a];
                    hi[a] = lo[a] + (g->k[a] - 1) * g->d[a];
                }
                double acc = j->is_max ? -INFINITY : 0.0;
                int64_t cnt = 0, best = -1;
                for (int64_t iz = lo[0]; iz <= hi[0]; iz += g->d[0]) {
                    if (iz < 0 || iz >= g->in[0])
                        continue;
                    for (int64_t iy = lo[1]; iy <= hi[1]; iy += g->d[1]) {
                        if (iy < 0 || iy >= g->in[1])
                            continue;
                        for (int64_t ix = lo[2]; ix <= hi[2]; ix += g->d[2]) {
                            if (ix < 0 || ix >= g->in[2])
                                continue;
                            int64_t xi = (iz * g->in[1] + iy) * g->in[2] + ix;
                            double v = f32 ? xf[xi] : tensor_get_double(j->x, xo + xi);
                            if (j->is_max) {
                                if (v > acc || best < 0) {
                                    acc = v;
                                    best = j->p->storage_order ? (ix * g->in[1] + iy) * g->in[0] + iz : xi;
                                }
                            } else {
                                acc += v;
                            }
                            cnt++;
                        }
                    }
                }
                int64_t yi = (oz * g->out[1] + oy) * g->out[2] + ox;
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
