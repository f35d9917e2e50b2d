/* pool.c - MaxPool, AveragePool, LpPool (1-3 spatial dims), their global forms
 * (GlobalAveragePool, GlobalMaxPool, GlobalLpPool) and MaxUnpool. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/registry.h"
#include "ops/spatial.h"
#include "runtime/threadpool.h"

enum { POOL_MAX, POOL_AVG, POOL_LP };

extern const OpDesc op_MaxPool;

typedef struct PoolParams {
    WindowAttrs w;
    int64_t ceil_mode, count_include_pad, storage_order;
    float p; /* LpPool's exponent */
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
    /* LpPool: p is a float before opset 2, an int since; attr_get_float takes both. */
    if (st == CRUN_OK)
        st = attr_get_float(n, "p", 2.0f, &p->p, d);
    if (st == CRUN_OK && p->w.n_kernel == 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'kernel_shape' is required");
    if (st == CRUN_OK && !(p->p > 0.0f))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "p must be > 0 (got %g)", (double)p->p);
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

bool pool_window_known(const Node *n, const Tensor *x, WindowGeom *w)
{
    PoolGeom g;
    char buf[160];
    if (pool_geom(n->params, x, &g, buf, sizeof buf))
        return false;
    *w = g.w;
    return true;
}

static crun_status pool_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    bool int8 = x->dtype == CRUN_DTYPE_INT8 || x->dtype == CRUN_DTYPE_UINT8; /* MaxPool only (opset 12) */
    NODE_CHECK(c, dtype_is_float(x->dtype) || (int8 && c->node->op == &op_MaxPool), "type %s is not supported",
               dtype_name(x->dtype));
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
    /* In double: kernel_shape is an attribute, so a malformed model can make it huge. */
    double v = (double)tensor_numel(out[0]);
    for (int i = 0; i < p->w.n_kernel; i++)
        v *= (double)p->w.kernel[i];
    return double_to_i64_sat(v);
}

typedef struct PoolJob {
    const PoolGeom *g;
    const PoolParams *p;
    const Tensor *x;
    Tensor *y, *idx;
    int kind;
} PoolJob;

/* One output plane; elements are read and written in double through the tensor
 * accessors for non-float32 types, directly for float32. */
CRUN_FOR_SIZE static void pool_plane(void *ctx, int64_t t, int thread)
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
                int64_t o[3] = {oz, oy, ox}, lo[3], hi[3];
                double cnt_pad = 1; /* a double: three huge padded windows could overflow int64 */
                for (int a = 0; a < 3; a++) {
                    lo[a] = o[a] * g->w.s[a] - g->w.pb[a];
                    /* Window end counted for count_include_pad stops at the end padding. */
                    int64_t end = CRUN_MIN(lo[a] + (g->w.k[a] - 1) * g->w.d[a] + 1, g->w.in[a] + g->w.pe[a]);
                    cnt_pad *= (double)((end - lo[a] + g->w.d[a] - 1) / g->w.d[a]);
                    hi[a] = lo[a] + (g->w.k[a] - 1) * g->w.d[a];
                }
                bool is_max = j->kind == POOL_MAX;
                double acc = is_max ? -INFINITY : 0.0;
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
                            if (is_max) {
                                if (v > acc || best < 0) {
                                    acc = v;
                                    best = j->p->storage_order ? (ix * g->w.in[1] + iy) * g->w.in[0] + iz : xi;
                                }
                            } else if (j->kind == POOL_LP) {
                                acc += pow(fabs(v), j->p->p);
                            } else {
                                acc += v;
                            }
                            cnt++;
                        }
                    }
                }
                int64_t yi = (oz * g->w.out[1] + oy) * g->w.out[2] + ox;
                double v = is_max ? acc
                           : j->kind == POOL_LP
                               ? pow(acc, 1.0 / j->p->p)
                               : acc / (j->p->count_include_pad ? cnt_pad : (double)CRUN_MAX(cnt, 1));
                if (f32)
                    yf[yi] = (float)v;
                else
                    tensor_set_double(j->y, yo + yi, v);
                if (j->idx) /* an all-padding window (ceil_mode) has no element: index 0 */
                    ((int64_t *)j->idx->data)[yo + yi] = best < 0 ? 0 : xo + best;
            }
}

static crun_status pool_run(KernelCtx *k, int kind)
{
    PoolGeom g;
    char buf[160];
    pool_geom(k->params, k->in[0], &g, buf, sizeof buf);
    PoolJob j = {&g, k->params, k->in[0], k->out[0], k->n_out > 1 ? k->out[1] : NULL, kind};
    pool_for(k->pool, g.planes, pool_plane, &j);
    return CRUN_OK;
}

static crun_status maxpool_run(KernelCtx *k) { return pool_run(k, POOL_MAX); }
static crun_status avgpool_run(KernelCtx *k) { return pool_run(k, POOL_AVG); }
static crun_status lppool_run(KernelCtx *k) { return pool_run(k, POOL_LP); }

/* ---- float32 2-D max pooling through the SIMD window kernels (platforms/window.h) ---- */

/* The 2-D float32 windows the SIMD kernels take (MaxPool without Indices; AveragePool). */
KV_SIMD_ONLY static bool maxpool_simd_applies(const PrepCtx *c, const void *kdata)
{
    PoolGeom g;
    char buf[160];
    const Tensor *x = c->in[0];
    WindowPlane wp;
    return x->dtype == CRUN_DTYPE_FLOAT && x->rank == 4 && !(c->n_out > 1 && c->out[1]) &&
           !pool_geom(c->params, x, &g, buf, sizeof buf) && window_plane_init(&g.w, &wp);
}

/* A SIMD max-pool kernel's workspace: each thread's scratch, as `scratch` sizes it. */
static crun_status maxpool_prepare_scratch(PrepCtx *c, size_t (*scratch)(const WindowGeom *))
{
    PoolGeom g;
    char buf[160];
    pool_geom(c->params, c->in[0], &g, buf, sizeof buf);
    c->ws_bytes = scratch(&g.w) * (size_t)c->n_threads;
    return CRUN_OK;
}

KV_SIMD_ONLY static crun_status maxpool_simd_prepare(PrepCtx *c)
{
    return maxpool_prepare_scratch(c, window_plane_scratch_bytes);
}

/* A SIMD max-pool step: per plane (maxpool_simd_plane), or per block of channels in
 * bands of output rows (maxpool_block_task; C, blocks and band). */
typedef struct MaxSimdJob {
    const PoolGeom *g;
    const void *uk; /* WindowUkernels (planes) or WindowBlockUkernel */
    const float *x;
    float *y;
    char *ws;
    size_t ws_per_thread;
    int64_t C, blocks, band; /* channels, channel blocks per image, output rows at a time */
} MaxSimdJob;

static void maxpool_simd_plane(void *ctx, int64_t t, int thread)
{
    const MaxSimdJob *j = ctx;
    WindowPlane wp;
    window_plane_init(&j->g->w, &wp);
    wp.x = j->x + t * j->g->w.in_vol;
    wp.y = j->y + t * j->g->w.out_vol;
    wp.scratch = (float *)(j->ws + (size_t)thread * j->ws_per_thread);
    ((const WindowUkernels *)j->uk)->maxpool(&wp);
}

KV_SIMD_ONLY static crun_status maxpool_simd_run(KernelCtx *k)
{
    PoolGeom g;
    char buf[160];
    pool_geom(k->params, k->in[0], &g, buf, sizeof buf);
    MaxSimdJob j = {&g, k->kdata, k->in[0]->data, k->out[0]->data, k->ws, window_plane_scratch_bytes(&g.w), 0, 0, 0};
    pool_for(k->pool, g.planes, maxpool_simd_plane, &j);
    return CRUN_OK;
}

/* ---- float32 2-D max pooling on blocks of channels (WindowBlock; ops/spatial.h) ---- */

KV_SIMD_ONLY static bool maxpool_block_applies(const PrepCtx *c, const void *kdata)
{
    PoolGeom g;
    char buf[160];
    const Tensor *x = c->in[0];
    return x->dtype == CRUN_DTYPE_FLOAT && x->rank == 4 && !(c->n_out > 1 && c->out[1]) &&
           !pool_geom(c->params, x, &g, buf, sizeof buf) && window_block_suits(&g.w);
}

KV_SIMD_ONLY static crun_status maxpool_block_prepare(PrepCtx *c)
{
    return maxpool_prepare_scratch(c, window_block_scratch_bytes);
}

static void maxpool_block_task(void *ctx, int64_t t, int thread)
{
    const MaxSimdJob *j = ctx;
    const WindowBlockUkernel *uk = j->uk;
    int64_t C = j->C, n = t / j->blocks, c0 = t % j->blocks * uk->lanes;
    WindowBlock b = window_block_init(&j->g->w);
    b.n = (int)CRUN_MIN((int64_t)uk->lanes, C - c0);
    b.x = j->x + (n * C + c0) * j->g->w.in_vol;
    b.y = j->y + (n * C + c0) * j->g->w.out_vol;
    b.scratch = (float *)(j->ws + (size_t)thread * j->ws_per_thread);
    for (int64_t oy0 = 0; oy0 < b.OH; oy0 += j->band) {
        WindowBlock band = window_block_band_of(&b, oy0, CRUN_MIN(j->band, b.OH - oy0));
        uk->run(&band);
    }
}

KV_SIMD_ONLY static crun_status maxpool_block_run(KernelCtx *k)
{
    PoolGeom g;
    char buf[160];
    pool_geom(k->params, k->in[0], &g, buf, sizeof buf);
    const WindowBlockUkernel *uk = k->kdata;
    WindowBlock b = window_block_init(&g.w);
    int64_t C = k->in[0]->dims[1];
    MaxSimdJob j = {&g, uk, k->in[0]->data, k->out[0]->data, k->ws, window_block_scratch_bytes(&g.w),
                     C, (C + uk->lanes - 1) / uk->lanes, window_block_band(&b)};
    pool_for(k->pool, k->in[0]->dims[0] * j.blocks, maxpool_block_task, &j);
    return CRUN_OK;
}

/* ---- 8-bit max pooling (the QDQ pass moves MaxPool onto quantized values) ---- */

static bool maxpool8_applies(const PrepCtx *c, const void *kdata)
{
    (void)kdata;
    crun_dtype t = c->in[0]->dtype;
    return (t == CRUN_DTYPE_UINT8 || t == CRUN_DTYPE_INT8) && !(c->n_out > 1 && c->out[1]);
}

#define MAXPOOL8_ROW 4096 /* widest row the separable path buffers on the stack */

/* First tap of a window starting at lo with dilation d that lies at or after 0. */
static int64_t first_inside(int64_t lo, int64_t d) { return lo >= 0 ? lo : lo + (-lo + d - 1) / d * d; }

/* One plane. int8 values are compared as uint8 after flipping the sign bit, which keeps
 * their order; an empty window (all padding) gives the type's minimum, as the reference's
 * -inf saturates to. */
static void maxpool8_plane(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const PoolJob *j = ctx;
    const WindowGeom *w = &j->g->w;
    const uint8_t *x = (const uint8_t *)j->x->data + t * w->in_vol;
    uint8_t *y = (uint8_t *)j->y->data + t * w->out_vol;
    uint8_t flip = j->x->dtype == CRUN_DTYPE_INT8 ? 0x80 : 0;
    int64_t lo[3], hi[3];
    for (int64_t oz = 0; oz < w->out[0]; oz++)
        for (int64_t oy = 0; oy < w->out[1]; oy++)
            for (int64_t ox = 0; ox < w->out[2]; ox++) {
                int64_t o[3] = {oz, oy, ox};
                for (int a = 0; a < 3; a++) {
                    int64_t start = o[a] * w->s[a] - w->pb[a];
                    lo[a] = first_inside(start, w->d[a]);
                    hi[a] = CRUN_MIN(start + (w->k[a] - 1) * w->d[a], w->in[a] - 1);
                }
                uint8_t m = 0;
                for (int64_t iz = lo[0]; iz <= hi[0]; iz += w->d[0])
                    for (int64_t iy = lo[1]; iy <= hi[1]; iy += w->d[1]) {
                        const uint8_t *row = x + (iz * w->in[1] + iy) * w->in[2];
                        for (int64_t ix = lo[2]; ix <= hi[2]; ix += w->d[2]) {
                            uint8_t v = row[ix] ^ flip;
                            m = v > m ? v : m;
                        }
                    }
                *y++ = m ^ flip;
            }
}

/* Padded width a 2-D 8-bit pooling row needs: every window, and the input row. */
static int64_t maxpool8_span(const WindowGeom *w)
{
    return CRUN_MAX((w->out[2] - 1) * w->s[2] + w->k[2], w->pb[2] + w->in[2]);
}

/* 2-D windows without dilation, separably: the max down each window's rows into a padded
 * row (0, the least value once int8 is flipped, in the padding), the max of each k
 * consecutive elements of it, then every s-th of those; loops compilers vectorize. */
static void maxpool8_plane_2d(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const PoolJob *j = ctx;
    const WindowGeom *w = &j->g->w;
    const uint8_t *x = (const uint8_t *)j->x->data + t * w->in_vol;
    uint8_t *y = (uint8_t *)j->y->data + t * w->out_vol;
    uint8_t flip = j->x->dtype == CRUN_DTYPE_INT8 ? 0x80 : 0, col[MAXPOOL8_ROW], win[MAXPOOL8_ROW];
    int64_t W = w->in[2], span = maxpool8_span(w), n = (w->out[2] - 1) * w->s[2] + 1;
    for (int64_t oy = 0; oy < w->out[1]; oy++, y += w->out[2]) {
        int64_t y0 = oy * w->s[1] - w->pb[1], y1 = CRUN_MIN(y0 + w->k[1], w->in[1]);
        y0 = CRUN_MAX(y0, 0);
        memset(col, 0, (size_t)span);
        uint8_t *c = col + w->pb[2];
        for (int64_t iy = y0; iy < y1; iy++) {
            const uint8_t *row = x + iy * W;
            for (int64_t ix = 0; ix < W; ix++) {
                uint8_t v = row[ix] ^ flip;
                c[ix] = v > c[ix] ? v : c[ix];
            }
        }
        memcpy(win, col, (size_t)n);
        for (int64_t kx = 1; kx < w->k[2]; kx++)
            for (int64_t i = 0; i < n; i++)
                win[i] = col[i + kx] > win[i] ? col[i + kx] : win[i];
        for (int64_t ox = 0; ox < w->out[2]; ox++)
            y[ox] = win[ox * w->s[2]] ^ flip;
    }
}

static crun_status maxpool8_run(KernelCtx *k)
{
    PoolGeom g;
    char buf[160];
    pool_geom(k->params, k->in[0], &g, buf, sizeof buf);
    PoolJob j = {&g, k->params, k->in[0], k->out[0], NULL, POOL_MAX};
    bool plain_2d = g.w.in[0] == 1 && g.w.k[0] == 1 && g.w.d[1] == 1 && g.w.d[2] == 1 &&
                    maxpool8_span(&g.w) <= MAXPOOL8_ROW;
    pool_for(k->pool, g.planes, plain_2d ? maxpool8_plane_2d : maxpool8_plane, &j);
    return CRUN_OK;
}

static const KernelVariant maxpool_kernels[] = {
    KV_SIMD("maxpool_block", maxpool_block_applies, maxpool_block_prepare, maxpool_block_run, window_max_block)
    KV_SIMD("maxpool", maxpool_simd_applies, maxpool_simd_prepare, maxpool_simd_run, window_ukernels)
    {"maxpool_u8", ISA_SCALAR, maxpool8_applies, NULL, maxpool8_run, NULL},
    {"maxpool_ref", ISA_SCALAR, NULL, NULL, maxpool_run, NULL},
    {0}};
/* ---- float32 2-D average pooling: window sums by the depthwise kernel with every tap 1,
 * then a division by the window's count, which is a row factor times a column factor ---- */

/* Elements the count includes along one axis for output position o (AveragePool's
 * count_include_pad: the window up to the end padding, else only inside the input). */
static int64_t axis_count(const WindowGeom *w, int a, int64_t o, bool include_pad)
{
    int64_t lo = o * w->s[a] - w->pb[a], hi = lo + w->k[a];
    if (include_pad)
        return CRUN_MIN(hi, w->in[a] + w->pe[a]) - lo;
    return CRUN_MAX((int64_t)1, CRUN_MIN(hi, w->in[a]) - CRUN_MAX(lo, (int64_t)0));
}

/* Workspace: the per-thread window scratch, then 1/row count, 1/column count, the taps. */
static size_t avg_extra_floats(const PoolGeom *g)
{
    return align_up((size_t)(g->w.out[1] + g->w.out[2] + WINDOW_MAX_K * WINDOW_MAX_K), 16);
}

KV_SIMD_ONLY static crun_status avgpool_simd_prepare(PrepCtx *c)
{
    PoolGeom g;
    char buf[160];
    pool_geom(c->params, c->in[0], &g, buf, sizeof buf);
    c->ws_bytes = window_plane_scratch_bytes(&g.w) * (size_t)c->n_threads + avg_extra_floats(&g) * sizeof(float);
    return CRUN_OK;
}

typedef struct AvgSimdJob {
    MaxSimdJob base;
    const float *inv_row, *inv_col, *ones;
} AvgSimdJob;

static void avgpool_simd_plane(void *ctx, int64_t t, int thread)
{
    const AvgSimdJob *j = ctx;
    const PoolGeom *g = j->base.g;
    WindowPlane wp;
    window_plane_init(&g->w, &wp);
    wp.x = j->base.x + t * g->w.in_vol;
    wp.y = j->base.y + t * g->w.out_vol;
    wp.w = j->ones;
    wp.lo = -INFINITY;
    wp.hi = INFINITY;
    wp.scratch = (float *)(j->base.ws + (size_t)thread * j->base.ws_per_thread);
    ((const WindowUkernels *)j->base.uk)->dwconv(&wp);
    for (int64_t oy = 0; oy < wp.OH; oy++)
        for (int64_t ox = 0; ox < wp.OW; ox++)
            wp.y[oy * wp.OW + ox] *= j->inv_row[oy] * j->inv_col[ox];
}

KV_SIMD_ONLY static crun_status avgpool_simd_run(KernelCtx *k)
{
    const PoolParams *p = k->params;
    PoolGeom g;
    char buf[160];
    pool_geom(p, k->in[0], &g, buf, sizeof buf);
    size_t per = window_plane_scratch_bytes(&g.w);
    float *extra = (float *)((char *)k->ws + per * (size_t)pool_threads(k->pool));
    float *inv_row = extra, *inv_col = extra + g.w.out[1], *ones = inv_col + g.w.out[2];
    for (int64_t o = 0; o < g.w.out[1]; o++)
        inv_row[o] = 1.0f / (float)axis_count(&g.w, 1, o, p->count_include_pad != 0);
    for (int64_t o = 0; o < g.w.out[2]; o++)
        inv_col[o] = 1.0f / (float)axis_count(&g.w, 2, o, p->count_include_pad != 0);
    for (int i = 0; i < WINDOW_MAX_K * WINDOW_MAX_K; i++)
        ones[i] = 1.0f;
    AvgSimdJob j = {{&g, k->kdata, k->in[0]->data, k->out[0]->data, k->ws, per, 0, 0, 0}, inv_row, inv_col, ones};
    pool_for(k->pool, g.planes, avgpool_simd_plane, &j);
    return CRUN_OK;
}

static const KernelVariant avgpool_kernels[] = {
    KV_SIMD("avgpool", maxpool_simd_applies, avgpool_simd_prepare, avgpool_simd_run, window_ukernels)
    {"avgpool_ref", ISA_SCALAR, NULL, NULL, avgpool_run, NULL},
    {0}};
static const KernelVariant lppool_kernels[] = {{"lppool_ref", ISA_SCALAR, NULL, NULL, lppool_run, NULL}, {0}};
const OpDesc op_MaxPool = {"", "MaxPool", 1, 1, 1, 2, 0, parse_pool, pool_infer, pool_flops, maxpool_kernels};
const OpDesc op_AveragePool = {"", "AveragePool", 1, 1, 1, 1, 0, parse_pool, pool_infer, pool_flops,
                               avgpool_kernels};
const OpDesc op_LpPool = {"", "LpPool", 1, 1, 1, 1, 0, parse_pool, pool_infer, pool_flops, lppool_kernels};

/* ---- global pooling over all spatial dims ---- */

static crun_status parse_global_lp(Node *n, Diag *d)
{
    PoolParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_float(n, "p", 2.0f, &p->p, d);
    if (st == CRUN_OK && !(p->p > 0.0f))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "p must be > 0 (got %g)", (double)p->p);
    return st;
}

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
    int kind;
    double p;
} GlobalJob;

static void global_plane(void *ctx, int64_t t, int thread)
{
    const GlobalJob *j = ctx;
    if (j->x->dtype == CRUN_DTYPE_FLOAT && j->kind != POOL_LP) {
        const float *x = (const float *)j->x->data + t * j->vol;
        float acc = j->kind == POOL_MAX ? -INFINITY : 0.0f;
        if (j->kind == POOL_MAX)
            for (int64_t i = 0; i < j->vol; i++)
                acc = x[i] > acc ? x[i] : acc;
        else { /* sixteen partial sums: vectorisable, and no long chain of dependent adds */
            float part[16] = {0};
            int64_t i = 0;
            for (; i + 16 <= j->vol; i += 16)
                for (int k = 0; k < 16; k++)
                    part[k] += x[i + k];
            for (; i < j->vol; i++)
                part[i % 16] += x[i];
            for (int k = 0; k < 16; k++)
                acc += part[k];
        }
        ((float *)j->y->data)[t] = j->kind == POOL_MAX ? acc : acc / (float)j->vol;
        return;
    }
    double acc = j->kind == POOL_MAX ? -INFINITY : 0.0;
    for (int64_t i = 0; i < j->vol; i++) {
        double v = tensor_get_double(j->x, t * j->vol + i);
        switch (j->kind) {
        case POOL_MAX: acc = v > acc ? v : acc; break;
        case POOL_AVG: acc += v; break;
        default: acc += pow(fabs(v), j->p); break;
        }
    }
    double v = j->kind == POOL_MAX ? acc : j->kind == POOL_AVG ? acc / (double)j->vol : pow(acc, 1.0 / j->p);
    tensor_set_double(j->y, t, v);
}

static crun_status global_run(KernelCtx *k, int kind)
{
    const Tensor *x = k->in[0];
    const PoolParams *p = k->params;
    GlobalJob j = {x, k->out[0], shape_numel(x->dims + 2, x->rank - 2), kind, p ? p->p : 2.0};
    pool_for(k->pool, x->dims[0] * x->dims[1], global_plane, &j);
    return CRUN_OK;
}

static crun_status gap_run(KernelCtx *k) { return global_run(k, POOL_AVG); }
static crun_status gmp_run(KernelCtx *k) { return global_run(k, POOL_MAX); }
static crun_status glp_run(KernelCtx *k) { return global_run(k, POOL_LP); }

static const KernelVariant gap_kernels[] = {{"global_avgpool_ref", ISA_SCALAR, NULL, NULL, gap_run, NULL}, {0}};
static const KernelVariant gmp_kernels[] = {{"global_maxpool_ref", ISA_SCALAR, NULL, NULL, gmp_run, NULL}, {0}};
static const KernelVariant glp_kernels[] = {{"global_lppool_ref", ISA_SCALAR, NULL, NULL, glp_run, NULL}, {0}};
const OpDesc op_GlobalAveragePool = {"", "GlobalAveragePool", 1, 1, 1, 1, 0, NULL, global_infer, global_flops,
                                     gap_kernels};
const OpDesc op_GlobalMaxPool = {"", "GlobalMaxPool", 1, 1, 1, 1, 0, NULL, global_infer, global_flops, gmp_kernels};
const OpDesc op_GlobalLpPool = {"", "GlobalLpPool", 1, 1, 1, 1, 0, parse_global_lp, global_infer, global_flops,
                                glp_kernels};

/* ---- MaxUnpool ----
 * Scatters X into zeros at the flat indices I (as MaxPool's Indices output gives them:
 * row-major over the whole tensor) of the default output shape
 *   out[i] = (in[i] - 1) * strides[i] - pads_begin[i] - pads_end[i] + kernel_shape[i].
 * An explicit output_shape may only grow that shape; the default-shaped result then sits
 * at the start of each axis, the rest is zero (as ONNX's reference implementation does). */

static crun_status parse_unpool(Node *n, Diag *d)
{
    PoolParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = window_attrs_parse(n, &p->w, d);
    if (st == CRUN_OK && p->w.n_kernel == 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'kernel_shape' is required");
    return st;
}

/* The default output dims (all axes). */
CRUN_FOR_SIZE static const char *unpool_dims(const PoolParams *p, const Tensor *x, int64_t *dims)
{
    int nsp = x->rank - 2;
    if (x->rank < 3 || p->w.n_kernel != nsp || (p->w.n_strides && p->w.n_strides != nsp) ||
        (p->w.n_pads && p->w.n_pads != 2 * nsp))
        return "kernel_shape, strides or pads do not match the input's spatial rank";
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int i = 0; i < nsp; i++) {
        int64_t s = p->w.n_strides ? p->w.strides[i] : 1;
        int64_t pads = p->w.n_pads ? p->w.pads[i] + p->w.pads[i + nsp] : 0;
        dims[2 + i] = (x->dims[2 + i] - 1) * s - pads + p->w.kernel[i];
        if (x->dims[2 + i] == 0)
            dims[2 + i] = 0;
        if (dims[2 + i] < 0)
            return "the padding is larger than the unpooled size";
    }
    return NULL;
}

CRUN_FOR_SIZE static crun_status unpool_infer(InferCtx *c)
{
    const Tensor *x = c->in[0], *ind = c->in[1];
    const Tensor *os = c->n_in > 2 ? c->in[2] : NULL;
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    NODE_CHECK(c, ind->dtype == CRUN_DTYPE_INT64, "I must be int64");
    NODE_CHECK(c, shape_equal(x->dims, x->rank, ind->dims, ind->rank), "I must have X's shape");
    int64_t dims[CRUN_MAX_RANK];
    const char *err = unpool_dims(c->params, x, dims);
    NODE_CHECK(c, !err, "%s", err);
    if (os) {
        NODE_CHECK(c, os->dtype == CRUN_DTYPE_INT64 && os->rank == 1 && os->dims[0] == x->rank,
                   "output_shape must be a 1-D int64 tensor of %d values", x->rank);
        if (!os->data) {
            c->needs_data = true;
            return CRUN_OK;
        }
        for (int i = 0; i < x->rank; i++) {
            int64_t v = tensor_get_int(os, i);
            NODE_CHECK(c, i < 2 ? v == dims[i] : v >= dims[i],
                       "output_shape[%d] = %lld does not fit the unpooled size %lld", i, (long long)v,
                       (long long)dims[i]);
            dims[i] = v;
        }
    }
    out_set(c->out[0], x->dtype, x->rank, dims);
    return CRUN_OK;
}

CRUN_FOR_SIZE static crun_status unpool_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *ind = k->in[1];
    Tensor *y = k->out[0];
    int64_t dims[CRUN_MAX_RANK], strides[CRUN_MAX_RANK], ystrides[CRUN_MAX_RANK];
    unpool_dims(k->params, x, dims);
    shape_strides(dims, x->rank, strides);
    shape_strides(y->dims, y->rank, ystrides);
    int64_t total = shape_numel(dims, x->rank), n = tensor_numel(x);
    memset(y->data, 0, tensor_bytes(y));
    size_t es = dtype_size(x->dtype);
    const int64_t *idx = ind->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = idx[i];
        if (v < 0 || v >= total)
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "index %lld is outside [0, %lld)", (long long)v,
                             (long long)total);
        /* Same coordinates in the (possibly larger) output. */
        int64_t o = 0;
        for (int a = 0; a < x->rank; a++) {
            o += v / strides[a] * ystrides[a];
            v %= strides[a];
        }
        memcpy((char *)y->data + (size_t)o * es, (const char *)x->data + (size_t)i * es, es);
    }
    return CRUN_OK;
}

static int64_t unpool_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(in[0]);
}

static const KernelVariant unpool_kernels[] = {{"maxunpool_ref", ISA_SCALAR, NULL, NULL, unpool_run, NULL}, {0}};
const OpDesc op_MaxUnpool = {"", "MaxUnpool", 2, 3, 1, 1, 0, parse_unpool, unpool_infer, unpool_flops,
                             unpool_kernels};
