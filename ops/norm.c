/* norm.c - BatchNormalization at inference: y = (x - mean) / sqrt(var + eps) * scale + B,
 * folded per channel into y = x * a + b. (The BatchNorm-folding pass removes most of
 * these nodes by merging them into the Conv before.) */
#include <math.h>
#include <stdlib.h>

#include "ops/registry.h"
#include "runtime/threadpool.h"

typedef struct BnParams {
    float epsilon;
    int64_t training_mode;
} BnParams;

static crun_status parse_bn(Node *n, Diag *d)
{
    BnParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_float(n, "epsilon", 1e-5f, &p->epsilon, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "training_mode", 0, &p->training_mode, d);
    if (st == CRUN_OK && p->training_mode)
        return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "training mode is not supported");
    return st;
}

/* Parameters hold one value per channel, or (spatial=0 in opset < 9) one per element
 * of x's shape after the batch dim. */
static crun_status bn_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    NODE_CHECK(c, x->rank >= 2, "input must have rank >= 2");
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    int64_t per_sample = shape_numel(x->dims + 1, x->rank - 1);
    for (int i = 1; i < 5; i++) {
        int64_t n = tensor_numel(c->in[i]);
        NODE_CHECK(c, n == x->dims[1] || n == per_sample, "input %d has %lld values for %lld channels", i,
                   (long long)n, (long long)x->dims[1]);
        NODE_CHECK(c, dtype_is_float(c->in[i]->dtype), "input %d has type %s", i, dtype_name(c->in[i]->dtype));
    }
    out_set(c->out[0], x->dtype, x->rank, x->dims);
    for (int i = 1; i < c->n_out; i++)
        if (c->out[i])
            return node_fail(c->node, c->d, CRUN_ERR_UNSUPPORTED, "training outputs are not supported");
    return CRUN_OK;
}

static int64_t bn_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return 2 * tensor_numel(out[0]);
}

typedef struct BnJob {
    const Tensor *x, *s, *b, *m, *v;
    Tensor *y;
    float eps;
    int64_t groups, inner, n_par;
} BnJob;

static void bn_coeffs(const BnJob *j, int64_t pi, double *a, double *b)
{
    *a = tensor_get_double(j->s, pi) / sqrt(tensor_get_double(j->v, pi) + j->eps);
    *b = tensor_get_double(j->b, pi) - tensor_get_double(j->m, pi) * *a;
}

/* Task t is one (sample, channel) run of inner elements sharing one (a, b), or one
 * sample when the parameters are per element. */
static void bn_task(void *ctx, int64_t t, int thread)
{
    const BnJob *j = ctx;
    bool per_channel = j->n_par == j->groups;
    double a = 0, b = 0;
    if (per_channel)
        bn_coeffs(j, t % j->groups, &a, &b);
    for (int64_t i = 0; i < j->inner; i++) {
        int64_t e = t * j->inner + i;
        if (!per_channel)
            bn_coeffs(j, i, &a, &b);
        if (j->x->dtype == CRUN_DTYPE_FLOAT)
            ((float *)j->y->data)[e] = (float)(((const float *)j->x->data)[e] * a + b);
        else
            tensor_set_double(j->y, e, tensor_get_double(j->x, e) * a + b);
    }
}

static crun_status bn_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    const BnParams *p = k->params;
    BnJob j = {.x = x, .s = k->in[1], .b = k->in[2], .m = k->in[3], .v = k->in[4], .y = k->out[0], .eps = p->epsilon};
    j.n_par = tensor_numel(k->in[1]);
    int64_t C = x->dims[1];
    if (j.n_par == C) {
        j.groups = C;
        j.inner = shape_numel(x->dims + 2, x->rank - 2);
        pool_for(k->pool, x->dims[0] * C, bn_task, &j);
    } else {
        j.groups = -1;
        j.inner = j.n_par;
        pool_for(k->pool, x->dims[0], bn_task, &j);
    }
    return CRUN_OK;
}

static const KernelVariant bn_kernels[] = {{"batchnorm_ref", ISA_SCALAR, NULL, NULL, bn_run, NULL}, {0}};
const OpDesc op_BatchNormalization = {"", "BatchNormalization", 5, 5, 1, 5, OPF_INPLACE, parse_bn, bn_infer, bn_flops,
                                      bn_kernels};
