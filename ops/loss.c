/* loss.c - NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
 *
 * Input is [N, C] or [N, C, d1, ..., dk], seen as [N, C, D]; target/labels [N, d1, ...]
 * hold class indices. Element (n, d) with class t has loss -w[t] * input[n, t, d]
 * (w = 1 without weights) and weight w[t], or loss 0 and weight 0 when t equals
 * ignore_index. Reduction 'none' outputs the losses, 'sum' their sum, 'mean' the sum
 * divided by the sum of weights (which, without weights, is the count of elements not
 * ignored). SoftmaxCrossEntropyLoss applies the same to log_softmax(scores, axis 1),
 * whose values are its optional second output. Sums run in double, in element order. */
#include <math.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/threadpool.h"

typedef enum LossReduction { LOSS_NONE, LOSS_SUM, LOSS_MEAN } LossReduction;

typedef struct LossParams {
    LossReduction reduction;
    bool has_ignore;
    int64_t ignore_index;
} LossParams;

static crun_status parse_loss(Node *n, Diag *d)
{
    LossParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    const char *r;
    crun_status st = attr_get_string(n, "reduction", "mean", &r, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "ignore_index", 0, &p->ignore_index, d);
    if (st != CRUN_OK)
        return st;
    p->has_ignore = node_attr(n, "ignore_index") != NULL;
    if (!strcmp(r, "none"))
        p->reduction = LOSS_NONE;
    else if (!strcmp(r, "sum"))
        p->reduction = LOSS_SUM;
    else if (!strcmp(r, "mean"))
        p->reduction = LOSS_MEAN;
    else
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "reduction '%s' is not none, sum or mean", r);
    return CRUN_OK;
}

static crun_status loss_infer(InferCtx *c)
{
    const LossParams *p = c->params;
    const Tensor *x = c->in[0], *t = c->in[1], *w = c->n_in > 2 ? c->in[2] : NULL;
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    NODE_CHECK(c, x->rank >= 2, "input must have rank >= 2 ([N, C, ...])");
    NODE_CHECK(c, t->dtype == CRUN_DTYPE_INT64 || t->dtype == CRUN_DTYPE_INT32, "target has type %s",
               dtype_name(t->dtype));
    bool ok = t->rank == x->rank - 1 && t->dims[0] == x->dims[0];
    for (int i = 1; ok && i < t->rank; i++)
        ok = t->dims[i] == x->dims[i + 1];
    char sx[96], st[96];
    NODE_CHECK(c, ok, "target shape %s does not match input shape %s", shape_str(t->dims, t->rank, st, sizeof st),
               shape_str(x->dims, x->rank, sx, sizeof sx));
    if (w) {
        NODE_CHECK(c, w->dtype == x->dtype, "weight has type %s, expected %s", dtype_name(w->dtype),
                   dtype_name(x->dtype));
        NODE_CHECK(c, w->rank == 1 && w->dims[0] == x->dims[1], "weight must be 1-D with %lld values",
                   (long long)x->dims[1]);
    }
    if (p->reduction == LOSS_NONE)
        out_set(c->out[0], x->dtype, t->rank, t->dims);
    else
        out_set(c->out[0], x->dtype, 0, NULL);
    if (c->n_out > 1 && c->out[1])
        out_set(c->out[1], x->dtype, x->rank, x->dims);
    return CRUN_OK;
}

static int64_t loss_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(in[0]);
}

/* Every target is a class index or ignore_index. */
static crun_status check_targets(const KernelCtx *k, int64_t C)
{
    const LossParams *p = k->params;
    const Tensor *t = k->in[1];
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = tensor_get_int(t, i);
        if ((v < 0 || v >= C) && !(p->has_ignore && v == p->ignore_index))
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "target %lld at %lld is not a class in [0, %lld)",
                             (long long)v, (long long)i, (long long)C);
    }
    return CRUN_OK;
}

/* Weight of an element of class cls (0 when ignored). */
static inline double elem_weight(const KernelCtx *k, int64_t cls)
{
    const LossParams *p = k->params;
    if (p->has_ignore && cls == p->ignore_index)
        return 0;
    return k->n_in > 2 && k->in[2] ? tensor_get_double(k->in[2], cls) : 1;
}

/* Writes the reduced output from the per-element losses and weights in lw (pairs). */
static void reduce_out(const KernelCtx *k, const double *lw, int64_t n)
{
    const LossParams *p = k->params;
    double sum = 0, wsum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += lw[2 * i];
        wsum += lw[2 * i + 1];
    }
    tensor_set_double(k->out[0], 0, p->reduction == LOSS_SUM ? sum : sum / wsum);
}

static crun_status loss_prepare(PrepCtx *c)
{
    const LossParams *p = c->params;
    if (p->reduction != LOSS_NONE)
        c->ws_bytes = 2 * (size_t)tensor_numel(c->in[1]) * sizeof(double);
    return CRUN_OK;
}

/* ---- NegativeLogLikelihoodLoss ---- */

static crun_status nll_run(KernelCtx *k)
{
    const LossParams *p = k->params;
    const Tensor *x = k->in[0], *t = k->in[1];
    int64_t C = x->dims[1], D = shape_numel(x->dims + 2, x->rank - 2), n = tensor_numel(t);
    crun_status st = check_targets(k, C);
    if (st != CRUN_OK)
        return st;
    double *lw = k->ws;
    for (int64_t e = 0; e < n; e++) {
        int64_t cls = tensor_get_int(t, e);
        double w = elem_weight(k, cls);
        double loss = w == 0 ? 0 : -w * tensor_get_double(x, (e / D * C + cls) * D + e % D);
        if (p->reduction == LOSS_NONE) {
            tensor_set_double(k->out[0], e, loss);
        } else {
            lw[2 * e] = loss;
            lw[2 * e + 1] = w;
        }
    }
    if (p->reduction != LOSS_NONE)
        reduce_out(k, lw, n);
    return CRUN_OK;
}

static const KernelVariant nll_kernels[] = {{"nllloss_ref", ISA_SCALAR, NULL, loss_prepare, nll_run, NULL}, {0}};
const OpDesc op_NegativeLogLikelihoodLoss = {"", "NegativeLogLikelihoodLoss", 2, 3, 1, 1, 0, parse_loss, loss_infer,
                                             loss_flops, nll_kernels};

/* ---- SoftmaxCrossEntropyLoss: rows of C scores (stride D) are log-softmaxed one by one,
 * in parallel; only the picked class's value is needed unless log_prob is asked for ---- */

typedef struct SceJob {
    const KernelCtx *k;
    int64_t C, D, rows, per_task;
    double *lw; /* loss, weight per element (reductions) */
} SceJob;

/* log(sum(exp(x))) of one row of C values (stride D) starting at base. */
static double row_lse(const Tensor *x, int64_t base, int64_t C, int64_t D)
{
    double mx = -INFINITY, sum = 0;
    if (x->dtype == CRUN_DTYPE_FLOAT) {
        const float *r = (const float *)x->data + base;
        for (int64_t c = 0; c < C; c++)
            mx = r[c * D] > mx || isnan(r[c * D]) ? r[c * D] : mx;
        for (int64_t c = 0; c < C; c++)
            sum += exp(r[c * D] - mx);
        return mx + log(sum);
    }
    for (int64_t c = 0; c < C; c++) {
        double v = tensor_get_double(x, base + c * D);
        mx = v > mx || isnan(v) ? v : mx;
    }
    for (int64_t c = 0; c < C; c++)
        sum += exp(tensor_get_double(x, base + c * D) - mx);
    return mx + log(sum);
}

static void sce_row(const SceJob *j, int64_t e)
{
    const KernelCtx *k = j->k;
    const LossParams *p = k->params;
    const Tensor *x = k->in[0];
    Tensor *lp = k->n_out > 1 ? k->out[1] : NULL;
    int64_t base = e / j->D * j->C * j->D + e % j->D;
    double lse = row_lse(x, base, j->C, j->D);
    if (lp && x->dtype == CRUN_DTYPE_FLOAT) {
        const float *r = (const float *)x->data + base;
        float *o = (float *)lp->data + base;
        for (int64_t c = 0; c < j->C; c++)
            o[c * j->D] = (float)(r[c * j->D] - lse);
    } else if (lp) {
        for (int64_t c = 0; c < j->C; c++)
            tensor_set_double(lp, base + c * j->D, tensor_get_double(x, base + c * j->D) - lse);
    }
    int64_t cls = tensor_get_int(k->in[1], e);
    double w = elem_weight(k, cls);
    double loss = w == 0 ? 0 : -w * (tensor_get_double(x, base + cls * j->D) - lse);
    if (p->reduction == LOSS_NONE) {
        tensor_set_double(k->out[0], e, loss);
    } else {
        j->lw[2 * e] = loss;
        j->lw[2 * e + 1] = w;
    }
}

static void sce_task(void *ctx, int64_t t, int thread)
{
    const SceJob *j = ctx;
    int64_t end = CRUN_MIN(j->rows, (t + 1) * j->per_task);
    for (int64_t e = t * j->per_task; e < end; e++)
        sce_row(j, e);
}

static crun_status sce_run(KernelCtx *k)
{
    const LossParams *p = k->params;
    const Tensor *x = k->in[0];
    SceJob j = {.k = k, .C = x->dims[1], .D = shape_numel(x->dims + 2, x->rank - 2), .lw = k->ws};
    j.rows = tensor_numel(k->in[1]);
    crun_status st = check_targets(k, j.C);
    if (st != CRUN_OK)
        return st;
    /* Rows of about 4096 scores per task; the split never changes a result. */
    j.per_task = j.C >= 4096 ? 1 : 4096 / CRUN_MAX(j.C, 1);
    pool_for(k->pool, (j.rows + j.per_task - 1) / j.per_task, sce_task, &j);
    if (p->reduction != LOSS_NONE)
        reduce_out(k, j.lw, j.rows);
    return CRUN_OK;
}

static const KernelVariant sce_kernels[] = {{"sceloss_ref", ISA_SCALAR, NULL, loss_prepare, sce_run, NULL}, {0}};
const OpDesc op_SoftmaxCrossEntropyLoss = {"", "SoftmaxCrossEntropyLoss", 2, 3, 1, 2, 0, parse_loss, loss_infer,
                                           loss_flops, sce_kernels};
