/* norm.c - normalisations: BatchNormalization, InstanceNormalization, LayerNormalization,
 * LpNormalization, MeanVarianceNormalization, LRN.
 *
 * Statistics (mean, population variance, norms) are computed in double with two passes;
 * the normalisation itself runs in the element's compute type (float for float32, float16
 * and bfloat16, double for double) as y = x * a + b with per-group a, b. The typed row
 * primitives below are the only code that touches elements. */
#include <math.h>
#include <string.h>

#include "ops/dtype_loops.h"
#include "ops/registry.h"
#include "platforms/softmax.h"
#include "runtime/threadpool.h"

/* ---- typed row primitives ---- */

typedef struct NormFns {
    /* Mean and population variance of runs x n elements: x[off + r * run_stride + i]. */
    void (*moments)(const void *x, int64_t off, int64_t runs, int64_t run_stride, int64_t n, double *mean,
                    double *var);
    /* y[off + i * stride] = x[off + i * stride] * a + b for i < n. */
    void (*affine)(const void *x, void *y, int64_t off, int64_t n, int64_t stride, double a, double b);
    /* Layer-norm row: y[i] = (x[i] - mean) * inv * s[i] + b[i] (b may be NULL). */
    void (*scale_row)(const void *x, void *y, const void *s, const void *b, int64_t off, int64_t n, double mean,
                      double inv);
    /* sum |x| (p = 1) or sqrt(sum x^2) (p = 2) of x[off + i * stride], i < n. */
    double (*lp)(const void *x, int64_t off, int64_t n, int64_t stride, int p);
    /* LRN over one (n, c) plane of s elements: channels c0..c1 (inclusive) are the
     * window, planes are s apart. */
    void (*lrn)(const void *x, void *y, int64_t off, int64_t s, int64_t c0, int64_t c1, int64_t c, double bias,
                double alpha, double beta);
} NormFns;

#define DEF_NORM(sfx, TT, CC, U, LD, ST, ...) \
    static void moments_##sfx(const void *xv, int64_t off, int64_t runs, int64_t run_stride, int64_t n, \
                              double *mean, double *var) \
    { \
        const TT *x = (const TT *)xv + off; \
        double s = 0, q = 0; \
        for (int64_t r = 0; r < runs; r++) \
            for (int64_t i = 0; i < n; i++) \
                s += LD(x[r * run_stride + i]); \
        int64_t cnt = runs * n; \
        double m = cnt ? s / (double)cnt : NAN; \
        for (int64_t r = 0; r < runs; r++) \
            for (int64_t i = 0; i < n; i++) { \
                double dv = LD(x[r * run_stride + i]) - m; \
                q += dv * dv; \
            } \
        *mean = m; \
        *var = cnt ? q / (double)cnt : NAN; \
    } \
    static void affine_##sfx(const void *xv, void *yv, int64_t off, int64_t n, int64_t stride, double a, double b) \
    { \
        const TT *x = (const TT *)xv + off; \
        TT *y = (TT *)yv + off; \
        CC ca = (CC)a, cb = (CC)b; \
        if (stride == 1) { \
            for (int64_t i = 0; i < n; i++) \
                y[i] = ST(LD(x[i]) * ca + cb); \
        } else { \
            for (int64_t i = 0; i < n; i++) \
                y[i * stride] = ST(LD(x[i * stride]) * ca + cb); \
        } \
    } \
    static void scale_row_##sfx(const void *xv, void *yv, const void *sv, const void *bv, int64_t off, int64_t n, \
                                double mean, double inv) \
    { \
        const TT *x = (const TT *)xv + off, *s = sv, *b = bv; \
        TT *y = (TT *)yv + off; \
        CC m = (CC)mean, iv = (CC)inv; \
        for (int64_t i = 0; i < n; i++) \
            y[i] = ST((LD(x[i]) - m) * iv * LD(s[i]) + (b ? LD(b[i]) : (CC)0)); \
    } \
    static double lp_##sfx(const void *xv, int64_t off, int64_t n, int64_t stride, int p) \
    { \
        const TT *x = (const TT *)xv + off; \
        double acc = 0; \
        for (int64_t i = 0; i < n; i++) { \
            double v = LD(x[i * stride]); \
            acc += p == 1 ? fabs(v) : v * v; \
        } \
        return p == 1 ? acc : sqrt(acc); \
    } \
    static void lrn_##sfx(const void *xv, void *yv, int64_t off, int64_t s, int64_t c0, int64_t c1, int64_t c, \
                          double bias, double alpha, double beta) \
    { \
        const TT *x = (const TT *)xv + off; \
        TT *y = (TT *)yv + off; \
        for (int64_t i = 0; i < s; i++) { \
            double ss = 0; \
            for (int64_t k = c0; k <= c1; k++) { \
                double v = LD(x[(k - c) * s + i]); \
                ss += v * v; \
            } \
            y[i] = ST((CC)(LD(x[i]) / pow(bias + alpha * ss, beta))); \
        } \
    }
#define NORM_ENTRY(sfx, T, C, U, LD, ST, ...) \
    [DT_##sfx] = {moments_##sfx, affine_##sfx, scale_row_##sfx, lp_##sfx, lrn_##sfx},

FOR_FLOAT_TYPES(DEF_NORM, 0)
static const NormFns norm_fns[DTYPE_SLOTS] = {FOR_FLOAT_TYPES(NORM_ENTRY, 0)};

static bool is_float_type(crun_dtype t) { return (int)t >= 0 && (int)t < DTYPE_SLOTS && norm_fns[t].moments; }

/* Work units grouped into tasks of about this many elements (the grouping never changes
 * a result: units are independent). */
#define TASK_ELEMS 16384

typedef void (*UnitFn)(const void *job, int64_t unit);

typedef struct Units {
    const void *job;
    UnitFn fn;
    int64_t n, per_task;
} Units;

static void units_task(void *ctx, int64_t t, int thread)
{
    const Units *u = ctx;
    int64_t end = CRUN_MIN(u->n, (t + 1) * u->per_task);
    for (int64_t i = t * u->per_task; i < end; i++)
        u->fn(u->job, i);
}

/* Runs fn(job, i) for i < n where each unit touches about elems elements. */
static void run_units(struct ThreadPool *pool, const void *job, UnitFn fn, int64_t n, int64_t elems)
{
    Units u = {job, fn, n, elems >= TASK_ELEMS ? 1 : TASK_ELEMS / CRUN_MAX(elems, 1)};
    pool_for(pool, (n + u.per_task - 1) / u.per_task, units_task, &u);
}

/* ==== BatchNormalization ====
 *
 * x is seen as [N, P, S]: P parameters (C channels; or, with spatial=0 before opset 9,
 * one per element of a sample) applied to runs of S elements. Inference uses the given
 * mean and var. Training (training_mode=1 from opset 14; before that, asking for the
 * optional outputs) uses the batch's mean and population variance and also outputs
 * running statistics: input * momentum + batch * (1 - momentum). Before opset 14 the
 * outputs are mean, var (running), saved_mean, saved_var (the batch's, as the spec names
 * them); from 14 running_mean, running_var. Opset < 7's is_test and consumed_inputs
 * change nothing at inference and are ignored. */

typedef struct BnParams {
    float epsilon, momentum;
    int64_t spatial;
    bool training;
} BnParams;

static crun_status parse_bn(Node *n, Diag *d)
{
    BnParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    int64_t training_mode = 0;
    crun_status st = attr_get_float(n, "epsilon", 1e-5f, &p->epsilon, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "momentum", 0.9f, &p->momentum, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "spatial", 1, &p->spatial, d);
    if (st == CRUN_OK && n->opset >= 14)
        st = attr_get_int(n, "training_mode", 0, &training_mode, d);
    if (st != CRUN_OK)
        return st;
    if (n->opset >= 9)
        p->spatial = 1;
    bool extra = false;
    for (int k = 1; k < n->n_out; k++)
        extra |= n->out[k] >= 0;
    if (n->opset >= 14 && n->n_out > 3)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "%d outputs, at most 3 from opset 14", n->n_out);
    if (n->opset >= 14 && extra && !training_mode)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "running_mean and running_var need training_mode=1");
    p->training = n->opset >= 14 ? training_mode != 0 : extra;
    return CRUN_OK;
}

static crun_status bn_infer(InferCtx *c)
{
    const BnParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, x->rank >= 2, "input must have rank >= 2");
    NODE_CHECK(c, is_float_type(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    int64_t n_par = p->spatial ? x->dims[1] : shape_numel(x->dims + 1, x->rank - 1);
    static const char *const names[] = {"X", "scale", "B", "mean", "var"};
    for (int i = 1; i < 5; i++) {
        NODE_CHECK(c, tensor_numel(c->in[i]) == n_par, "input '%s' has %lld values for %lld parameters", names[i],
                   (long long)tensor_numel(c->in[i]), (long long)n_par);
        NODE_CHECK(c, is_float_type(c->in[i]->dtype), "input '%s' has type %s", names[i],
                   dtype_name(c->in[i]->dtype));
    }
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    for (int k = 1; k < c->n_out; k++)
        if (c->out[k])
            out_set(c->out[k], c->in[3]->dtype, 1, &n_par);
    return CRUN_OK;
}

static int64_t bn_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return 2 * tensor_numel(out[0]);
}

typedef struct BnJob {
    const Tensor *x;
    Tensor *y;
    const NormFns *f;
    int64_t N, P, S;
    double *a, *b, *mean, *var; /* P each, in the workspace */
} BnJob;

static void bn_stats_unit(const void *job, int64_t p)
{
    const BnJob *j = job;
    j->f->moments(j->x->data, p * j->S, j->N, j->P * j->S, j->S, &j->mean[p], &j->var[p]);
}

static void bn_apply_unit(const void *job, int64_t u)
{
    const BnJob *j = job;
    int64_t p = u % j->P;
    j->f->affine(j->x->data, j->y->data, u * j->S, j->S, 1, j->a[p], j->b[p]);
}

static crun_status bn_prepare(PrepCtx *c)
{
    c->ws_bytes = 4 * (size_t)tensor_numel(c->in[1]) * sizeof(double);
    return CRUN_OK;
}

static crun_status bn_run(KernelCtx *k)
{
    const BnParams *p = k->params;
    const Tensor *x = k->in[0];
    BnJob j = {.x = x, .y = k->out[0], .f = &norm_fns[x->dtype], .N = x->dims[0], .P = tensor_numel(k->in[1])};
    j.S = j.P ? shape_numel(x->dims + 1, x->rank - 1) / j.P : 0;
    j.a = k->ws;
    j.b = j.a + j.P;
    j.mean = j.b + j.P;
    j.var = j.mean + j.P;
    if (p->training)
        run_units(k->pool, &j, bn_stats_unit, j.P, j.N * j.S);
    for (int64_t i = 0; i < j.P; i++) {
        double mean = p->training ? j.mean[i] : tensor_get_double(k->in[3], i);
        double var = p->training ? j.var[i] : tensor_get_double(k->in[4], i);
        j.a[i] = tensor_get_double(k->in[1], i) / sqrt(var + p->epsilon);
        j.b[i] = tensor_get_double(k->in[2], i) - mean * j.a[i];
    }
    run_units(k->pool, &j, bn_apply_unit, j.N * j.P, j.S);
    if (!p->training)
        return CRUN_OK;
    double mom = p->momentum;
    for (int64_t i = 0; i < j.P; i++) {
        double stats[4] = {tensor_get_double(k->in[3], i) * mom + j.mean[i] * (1 - mom),
                           tensor_get_double(k->in[4], i) * mom + j.var[i] * (1 - mom), j.mean[i], j.var[i]};
        for (int o = 1; o < k->n_out && o <= 4; o++)
            if (k->out[o])
                tensor_set_double(k->out[o], i, stats[o - 1]);
    }
    return CRUN_OK;
}

static const KernelVariant bn_kernels[] = {{"batchnorm_ref", ISA_SCALAR, NULL, bn_prepare, bn_run, NULL}, {0}};
const OpDesc op_BatchNormalization = {"", "BatchNormalization", 5, 5, 1, 5, OPF_INPLACE, parse_bn, bn_infer, bn_flops,
                                      bn_kernels};

/* ==== InstanceNormalization: per (sample, channel) statistics over the spatial dims ==== */

typedef struct EpsParams {
    float epsilon;
    int64_t axis, p; /* LayerNormalization, LpNormalization */
    crun_dtype stash;
} EpsParams;

static crun_status parse_instnorm(Node *n, Diag *d)
{
    EpsParams *p = params_alloc(n, sizeof *p, d);
    return p ? attr_get_float(n, "epsilon", 1e-5f, &p->epsilon, d) : d->status;
}

static crun_status instnorm_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, x->rank >= 2, "input must have rank >= 2");
    NODE_CHECK(c, is_float_type(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    for (int i = 1; i < 3; i++) {
        NODE_CHECK(c, c->in[i]->dtype == x->dtype, "input %d has type %s, expected %s", i,
                   dtype_name(c->in[i]->dtype), dtype_name(x->dtype));
        NODE_CHECK(c, tensor_numel(c->in[i]) == x->dims[1], "input %d has %lld values for %lld channels", i,
                   (long long)tensor_numel(c->in[i]), (long long)x->dims[1]);
    }
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

typedef struct InJob {
    const KernelCtx *k;
    const NormFns *f;
    int64_t C, S;
    double eps;
} InJob;

static void instnorm_unit(const void *job, int64_t u)
{
    const InJob *j = job;
    const KernelCtx *k = j->k;
    int64_t c = u % j->C;
    double mean, var;
    j->f->moments(k->in[0]->data, u * j->S, 1, 0, j->S, &mean, &var);
    double a = tensor_get_double(k->in[1], c) / sqrt(var + j->eps);
    j->f->affine(k->in[0]->data, k->out[0]->data, u * j->S, j->S, 1, a, tensor_get_double(k->in[2], c) - mean * a);
}

static crun_status instnorm_run(KernelCtx *k)
{
    const EpsParams *p = k->params;
    const Tensor *x = k->in[0];
    InJob j = {k, &norm_fns[x->dtype], x->dims[1], shape_numel(x->dims + 2, x->rank - 2), p->epsilon};
    run_units(k->pool, &j, instnorm_unit, x->dims[0] * j.C, 2 * j.S);
    return CRUN_OK;
}

static const KernelVariant instnorm_kernels[] = {{"instnorm_ref", ISA_SCALAR, NULL, NULL, instnorm_run, NULL}, {0}};
const OpDesc op_InstanceNormalization = {"", "InstanceNormalization", 3, 3, 1, 1, OPF_INPLACE, parse_instnorm,
                                         instnorm_infer, bn_flops, instnorm_kernels};

/* ==== LayerNormalization (opset 17): statistics over dims [axis, rank) ====
 *
 * Scale and B broadcast to those dims (unidirectionally); when their element count is
 * not the row's, they are expanded into the workspace first. Mean and InvStdDev have
 * the stash type and shape dims[:axis] followed by ones. */

static crun_status parse_layernorm(Node *n, Diag *d)
{
    EpsParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    int64_t stash = 1;
    crun_status st = attr_get_float(n, "epsilon", 1e-5f, &p->epsilon, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "axis", -1, &p->axis, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "stash_type", 1, &stash, d);
    if (st != CRUN_OK)
        return st;
    if (stash != CRUN_DTYPE_FLOAT && stash != CRUN_DTYPE_DOUBLE && stash != CRUN_DTYPE_FLOAT16 &&
        stash != CRUN_DTYPE_BFLOAT16)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "stash_type %lld is not a float type", (long long)stash);
    p->stash = (crun_dtype)stash;
    return CRUN_OK;
}

/* First normalised dim; -1 if axis is out of [-rank, rank]. */
static int ln_axis(const EpsParams *p, int rank)
{
    int64_t a = p->axis < 0 ? p->axis + rank : p->axis;
    return a >= 0 && a <= rank ? (int)a : -1;
}

/* True when t broadcasts unidirectionally to x's dims [axis, rank). */
static bool ln_broadcasts(const Tensor *t, const Tensor *x, int axis)
{
    for (int i = 1; i <= t->rank; i++) {
        int xi = x->rank - i;
        int64_t td = t->dims[t->rank - i];
        if (xi < axis ? td != 1 : td != 1 && td != x->dims[xi])
            return false;
    }
    return true;
}

static crun_status layernorm_infer(InferCtx *c)
{
    const EpsParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, is_float_type(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    int axis = ln_axis(p, x->rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    for (int i = 1; i < c->n_in; i++) {
        const Tensor *t = c->in[i];
        if (!t)
            continue;
        NODE_CHECK(c, t->dtype == x->dtype, "input %d has type %s, expected %s", i, dtype_name(t->dtype),
                   dtype_name(x->dtype));
        NODE_CHECK(c, ln_broadcasts(t, x, axis), "input %d does not broadcast to the normalised dims", i);
    }
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    int64_t dims[CRUN_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        dims[i] = i < axis ? x->dims[i] : 1;
    for (int k = 1; k < c->n_out; k++)
        if (c->out[k])
            out_set(c->out[k], p->stash, x->rank, dims);
    return CRUN_OK;
}

static int64_t ln_row(const Tensor *x, int axis) { return shape_numel(x->dims + axis, x->rank - axis); }

/* Bytes of workspace an expanded Scale or B (when its count differs from the row). */
static size_t ln_expand_bytes(const Tensor *t, const Tensor *x, int axis)
{
    int64_t L = ln_row(x, axis);
    return t && tensor_numel(t) != L ? (size_t)L * dtype_size(x->dtype) : 0;
}

static crun_status layernorm_prepare(PrepCtx *c)
{
    int axis = ln_axis(c->params, c->in[0]->rank);
    size_t s = align_up(ln_expand_bytes(c->in[1], c->in[0], axis), CRUN_ALIGN);
    c->ws_bytes = s + ln_expand_bytes(c->n_in > 2 ? c->in[2] : NULL, c->in[0], axis);
    return CRUN_OK;
}

/* t's elements for every position of the normalised dims (dst holds L elements). */
static const void *ln_expand(const Tensor *t, const Tensor *x, int axis, void *dst)
{
    int64_t L = ln_row(x, axis);
    if (!t || tensor_numel(t) == L)
        return t ? t->data : NULL;
    size_t es = dtype_size(x->dtype);
    int64_t tstr[CRUN_MAX_RANK], ts = 1;
    int nr = x->rank - axis;
    for (int i = nr - 1; i >= 0; i--) {
        int ti = t->rank - (nr - i);
        int64_t td = ti >= 0 ? t->dims[ti] : 1;
        tstr[i] = td == 1 ? 0 : ts;
        ts *= td;
    }
    for (int64_t e = 0; e < L; e++) {
        int64_t rem = e, off = 0;
        for (int i = nr - 1; i >= 0; i--) {
            off += rem % x->dims[axis + i] * tstr[i];
            rem /= x->dims[axis + i];
        }
        memcpy((char *)dst + e * es, (const char *)t->data + off * es, es);
    }
    return dst;
}

typedef struct LnJob {
    const KernelCtx *k;
    const NormFns *f;
    const void *scale, *bias;
    int64_t L;
    double eps;
} LnJob;

static void layernorm_unit(const void *job, int64_t r)
{
    const LnJob *j = job;
    const KernelCtx *k = j->k;
    double mean, var;
    j->f->moments(k->in[0]->data, r * j->L, 1, 0, j->L, &mean, &var);
    double inv = 1.0 / sqrt(var + j->eps);
    j->f->scale_row(k->in[0]->data, k->out[0]->data, j->scale, j->bias, r * j->L, j->L, mean, inv);
    if (k->n_out > 1 && k->out[1])
        tensor_set_double(k->out[1], r, mean);
    if (k->n_out > 2 && k->out[2])
        tensor_set_double(k->out[2], r, inv);
}

static crun_status layernorm_run(KernelCtx *k)
{
    const EpsParams *p = k->params;
    const Tensor *x = k->in[0];
    int axis = ln_axis(p, x->rank);
    LnJob j = {.k = k, .f = &norm_fns[x->dtype], .L = ln_row(x, axis), .eps = p->epsilon};
    size_t s = align_up(ln_expand_bytes(k->in[1], x, axis), CRUN_ALIGN);
    j.scale = ln_expand(k->in[1], x, axis, k->ws);
    j.bias = ln_expand(k->n_in > 2 ? k->in[2] : NULL, x, axis, k->ws ? (char *)k->ws + s : NULL);
    run_units(k->pool, &j, layernorm_unit, shape_numel(x->dims, axis), 2 * j.L);
    return CRUN_OK;
}

/* ---- float32 rows along the last axis, scale and bias one per element, no Mean or
 * InvStdDev output: the vector row kernels (platforms/softmax.h) ---- */

KV_SIMD_ONLY static bool layernorm_simd_applies(const PrepCtx *c, const void *kdata)
{
    const Tensor *x = c->in[0], *b = c->n_in > 2 ? c->in[2] : NULL;
    int axis = ln_axis(c->params, x->rank);
    if (x->dtype != CRUN_DTYPE_FLOAT || axis != x->rank - 1 || ((const EpsParams *)c->params)->stash != CRUN_DTYPE_FLOAT)
        return false;
    for (int k = 1; k < c->n_out; k++)
        if (c->out[k])
            return false;
    int64_t L = x->dims[axis];
    return c->in[1]->dtype == CRUN_DTYPE_FLOAT && tensor_numel(c->in[1]) == L &&
           (!b || (b->dtype == CRUN_DTYPE_FLOAT && tensor_numel(b) == L));
}

typedef struct LnSimdJob {
    LayerNormRowFn fn;
    const float *x, *scale, *bias;
    float *y;
    int64_t L;
    float eps;
} LnSimdJob;

static void layernorm_simd_unit(const void *job, int64_t r)
{
    const LnSimdJob *j = job;
    j->fn(j->x + r * j->L, j->y + r * j->L, j->L, j->scale, j->bias, j->eps);
}

KV_SIMD_ONLY static crun_status layernorm_simd_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *b = k->n_in > 2 ? k->in[2] : NULL;
    int64_t L = x->dims[x->rank - 1];
    if (tensor_numel(x) == 0)
        return CRUN_OK;
    LnSimdJob j = {*(const LayerNormRowFn *)k->kdata, x->data, k->in[1]->data, b ? b->data : NULL, k->out[0]->data,
                   L, ((const EpsParams *)k->params)->epsilon};
    run_units(k->pool, &j, layernorm_simd_unit, tensor_numel(x) / L, 2 * L);
    return CRUN_OK;
}

static const KernelVariant layernorm_kernels[] = {
    KV_SIMD("layernorm", layernorm_simd_applies, NULL, layernorm_simd_run, layernorm_row)
    {"layernorm_ref", ISA_SCALAR, NULL, layernorm_prepare, layernorm_run, NULL}, {0}};
const OpDesc op_LayerNormalization = {"", "LayerNormalization", 2, 3, 1, 3, 0, parse_layernorm, layernorm_infer,
                                      bn_flops, layernorm_kernels};

/* ==== LpNormalization: x / ||x||_p along one axis (p = 1 or 2); a zero norm leaves the
 * (zero) row as it is ==== */

static crun_status parse_lpnorm(Node *n, Diag *d)
{
    EpsParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "axis", -1, &p->axis, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "p", 2, &p->p, d);
    if (st == CRUN_OK && p->p != 1 && p->p != 2)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "p = %lld, only 1 and 2 are supported", (long long)p->p);
    return st;
}

static crun_status lpnorm_infer(InferCtx *c)
{
    const EpsParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, is_float_type(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    NODE_CHECK(c, axis_normalize(p->axis, x->rank) >= 0, "axis %lld is out of range for rank %d",
               (long long)p->axis, x->rank);
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

typedef struct LpJob {
    const KernelCtx *k;
    const NormFns *f;
    int64_t len, inner;
    int p;
} LpJob;

static void lpnorm_unit(const void *job, int64_t u)
{
    const LpJob *j = job;
    int64_t off = u / j->inner * j->len * j->inner + u % j->inner;
    double norm = j->f->lp(j->k->in[0]->data, off, j->len, j->inner, j->p);
    j->f->affine(j->k->in[0]->data, j->k->out[0]->data, off, j->len, j->inner, norm != 0 ? 1.0 / norm : 1.0, 0);
}

static crun_status lpnorm_run(KernelCtx *k)
{
    const EpsParams *p = k->params;
    const Tensor *x = k->in[0];
    int axis = axis_normalize(p->axis, x->rank);
    LpJob j = {k, &norm_fns[x->dtype], x->dims[axis], shape_numel(x->dims + axis + 1, x->rank - axis - 1), (int)p->p};
    if (j.len == 0)
        return CRUN_OK;
    run_units(k->pool, &j, lpnorm_unit, tensor_numel(x) / j.len, 2 * j.len);
    return CRUN_OK;
}

static const KernelVariant lpnorm_kernels[] = {{"lpnorm_ref", ISA_SCALAR, NULL, NULL, lpnorm_run, NULL}, {0}};
const OpDesc op_LpNormalization = {"", "LpNormalization", 1, 1, 1, 1, OPF_INPLACE, parse_lpnorm, lpnorm_infer,
                                   bn_flops, lpnorm_kernels};

/* ==== MeanVarianceNormalization: (x - mean) / (std + 1e-9) over axes (default 0, 2, 3),
 * as the spec's function body computes it ====
 *
 * The dims merge into alternating kept and normalised groups (as in reduce.c); each
 * unit is one position of the kept groups and walks the normalised ones. */

typedef struct MvnParams {
    int n_axes;
    int64_t axes[CRUN_MAX_RANK];
} MvnParams;

static crun_status parse_mvn(Node *n, Diag *d)
{
    MvnParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    if (!node_attr(n, "axes")) {
        p->n_axes = 3;
        p->axes[0] = 0, p->axes[1] = 2, p->axes[2] = 3;
        return CRUN_OK;
    }
    return attr_get_ints(n, "axes", p->axes, CRUN_MAX_RANK, &p->n_axes, d);
}

static crun_status mvn_infer(InferCtx *c)
{
    const MvnParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, is_float_type(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    bool seen[CRUN_MAX_RANK] = {0};
    for (int i = 0; i < p->n_axes; i++) {
        int a = axis_normalize(p->axes[i], x->rank);
        NODE_CHECK(c, a >= 0, "axis %lld is out of range for rank %d", (long long)p->axes[i], x->rank);
        NODE_CHECK(c, !seen[a], "axis %lld appears twice", (long long)p->axes[i]);
        seen[a] = true;
    }
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

typedef struct MvnJob {
    const KernelCtx *k;
    const NormFns *f;
    int nk, nr; /* kept and normalised groups, outermost first */
    int64_t kd[CRUN_MAX_RANK], ks[CRUN_MAX_RANK], rd[CRUN_MAX_RANK], rs[CRUN_MAX_RANK];
} MvnJob;

static int64_t mvn_offset(const int64_t *dims, const int64_t *strides, int n, int64_t idx)
{
    int64_t off = 0;
    for (int i = n - 1; i >= 0; i--) {
        off += idx % dims[i] * strides[i];
        idx /= dims[i];
    }
    return off;
}

static void mvn_unit(const void *job, int64_t u)
{
    const MvnJob *j = job;
    const void *x = j->k->in[0]->data;
    void *y = j->k->out[0]->data;
    int64_t base = mvn_offset(j->kd, j->ks, j->nk, u);
    int last = j->nr - 1;
    int64_t rn = last >= 0 ? j->rd[last] : 1, rs = last >= 0 ? j->rs[last] : 1;
    int64_t n_pos = rn ? shape_numel(j->rd, j->nr) / rn : 0;
    /* Moments of each run of the innermost group, merged exactly (Chan et al.). */
    double cnt = 0, mean = 0, m2 = 0;
    for (int64_t p = 0; p < n_pos; p++) {
        double m, v;
        j->f->moments(x, base + mvn_offset(j->rd, j->rs, last, p), rn, rs, 1, &m, &v);
        double nb = (double)rn, delta = m - mean, total = cnt + nb;
        mean += delta * nb / total;
        m2 += v * nb + delta * delta * cnt * nb / total;
        cnt = total;
    }
    double a = 1.0 / (sqrt(cnt > 0 ? m2 / cnt : 0) + 1e-9);
    for (int64_t p = 0; p < n_pos; p++)
        j->f->affine(x, y, base + mvn_offset(j->rd, j->rs, last, p), rn, rs, a, -mean * a);
}

static crun_status mvn_run(KernelCtx *k)
{
    const MvnParams *p = k->params;
    const Tensor *x = k->in[0];
    if (tensor_numel(x) == 0)
        return CRUN_OK;
    bool red[CRUN_MAX_RANK] = {0};
    for (int i = 0; i < p->n_axes; i++)
        red[axis_normalize(p->axes[i], x->rank)] = true;
    MvnJob j = {.k = k, .f = &norm_fns[x->dtype]};
    int64_t stride = 1;
    int nk = 0, nr = 0;
    bool prev_red = false;
    /* Merge from the innermost dim out, then reverse into outermost-first order. */
    int64_t gd[CRUN_MAX_RANK], gs[CRUN_MAX_RANK];
    bool gr[CRUN_MAX_RANK];
    int ng = 0;
    for (int i = x->rank - 1; i >= 0; i--) {
        if (x->dims[i] == 1)
            continue;
        if (ng && prev_red == red[i]) {
            gd[ng - 1] *= x->dims[i];
        } else {
            gd[ng] = x->dims[i];
            gs[ng] = stride;
            gr[ng++] = red[i];
        }
        prev_red = red[i];
        stride *= x->dims[i];
    }
    for (int g = ng - 1; g >= 0; g--) {
        if (gr[g]) {
            j.rd[nr] = gd[g];
            j.rs[nr++] = gs[g];
        } else {
            j.kd[nk] = gd[g];
            j.ks[nk++] = gs[g];
        }
    }
    j.nk = nk;
    j.nr = nr;
    int64_t per = shape_numel(j.rd, nr);
    run_units(k->pool, &j, mvn_unit, tensor_numel(x) / per, 3 * per);
    return CRUN_OK;
}

static const KernelVariant mvn_kernels[] = {{"mvn_ref", ISA_SCALAR, NULL, NULL, mvn_run, NULL}, {0}};
const OpDesc op_MeanVarianceNormalization = {"", "MeanVarianceNormalization", 1, 1, 1, 1, OPF_INPLACE,
                                             parse_mvn, mvn_infer, bn_flops, mvn_kernels};

/* ==== LRN: x / (bias + alpha / size * sum of x^2 over a window of channels)^beta; the
 * window is [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)] clipped to [0, C) ==== */

typedef struct LrnParams {
    float alpha, beta, bias;
    int64_t size;
} LrnParams;

static crun_status parse_lrn(Node *n, Diag *d)
{
    LrnParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_float(n, "alpha", 1e-4f, &p->alpha, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "beta", 0.75f, &p->beta, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "bias", 1.0f, &p->bias, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "size", 0, &p->size, d);
    if (st == CRUN_OK && p->size <= 0)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'size' must be given and positive");
    return st;
}

static crun_status lrn_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, is_float_type(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    NODE_CHECK(c, x->rank >= 2, "input must have rank >= 2");
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

typedef struct LrnJob {
    const KernelCtx *k;
    const NormFns *f;
    int64_t C, S;
} LrnJob;

static void lrn_unit(const void *job, int64_t u)
{
    const LrnJob *j = job;
    const LrnParams *p = j->k->params;
    int64_t c = u % j->C;
    int64_t c0 = CRUN_MAX(0, c - (p->size - 1) / 2), c1 = CRUN_MIN(j->C - 1, c + p->size / 2);
    j->f->lrn(j->k->in[0]->data, j->k->out[0]->data, u * j->S, j->S, c0, c1, c, p->bias,
              (double)p->alpha / (double)p->size, p->beta);
}

static crun_status lrn_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    LrnJob j = {k, &norm_fns[x->dtype], x->dims[1], shape_numel(x->dims + 2, x->rank - 2)};
    run_units(k->pool, &j, lrn_unit, x->dims[0] * j.C, j.S * 4);
    return CRUN_OK;
}

static const KernelVariant lrn_kernels[] = {{"lrn_ref", ISA_SCALAR, NULL, NULL, lrn_run, NULL}, {0}};
const OpDesc op_LRN = {"", "LRN", 1, 1, 1, 1, 0, parse_lrn, lrn_infer, bn_flops, lrn_kernels};
