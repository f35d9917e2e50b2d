/* optimizer.c - the update rules of the ai.onnx.preview.training domain: Adagrad,
 * Momentum (standard and Nesterov) and Adam. Each node updates any number of tensors:
 * inputs are R (learning rate), T (step count), then the tensors X..., their gradients
 * G..., and the optimizer's state per tensor; outputs are the new X... and new state.
 * Computed in double (float and double tensors). */
#include <math.h>
#include <string.h>

#include "ops/registry.h"

typedef struct OptParams {
    float norm, norm_post, epsilon, decay, alpha, beta;
    bool nesterov;
} OptParams;

static crun_status parse_opt(Node *n, Diag *d)
{
    OptParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    bool adam = !strcmp(n->op_type, "Adam");
    const char *mode = "standard";
    crun_status st = attr_get_float(n, "norm_coefficient", 0, &p->norm, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "norm_coefficient_post", 0, &p->norm_post, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "epsilon", 1e-6f, &p->epsilon, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "decay_factor", 0, &p->decay, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "alpha", adam ? 0.9f : 0, &p->alpha, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "beta", adam ? 0.999f : 0, &p->beta, d);
    if (st == CRUN_OK)
        st = attr_get_string(n, "mode", "standard", &mode, d);
    p->nesterov = !strcmp(mode, "nesterov");
    return st;
}

/* Number of optimized tensors: inputs are R, T and `groups` lists of that length. */
static int tensors_of(const InferCtx *c, int groups) { return (c->n_in - 2) / groups; }

static crun_status opt_infer(InferCtx *c, int groups, int out_groups)
{
    int n = tensors_of(c, groups);
    NODE_CHECK(c, n >= 1 && c->n_in == 2 + groups * n && c->n_out == out_groups * n,
               "inputs and outputs do not form %d groups of tensors", groups);
    for (int g = 0; g < out_groups; g++)
        for (int i = 0; i < n; i++) {
            const Tensor *x = c->in[2 + i];
            NODE_CHECK(c, x->dtype == CRUN_DTYPE_FLOAT || x->dtype == CRUN_DTYPE_DOUBLE, "type %s is not supported",
                       dtype_name(x->dtype));
            if (c->out[g * n + i])
                out_set(c->out[g * n + i], x->dtype, x->rank, x->dims);
        }
    return CRUN_OK;
}

static crun_status adagrad_infer(InferCtx *c) { return opt_infer(c, 3, 2); }
static crun_status momentum_infer(InferCtx *c) { return opt_infer(c, 3, 2); }
static crun_status adam_infer(InferCtx *c) { return opt_infer(c, 4, 3); }

static double get(const Tensor *t, int64_t i) { return t ? tensor_get_double(t, i) : 0; }
static void set(Tensor *t, int64_t i, double v)
{
    if (t)
        tensor_set_double(t, i, v);
}

static crun_status adagrad_run(KernelCtx *k)
{
    const OptParams *p = k->params;
    int n = (k->n_in - 2) / 3;
    double t = tensor_get_double(k->in[1], 0), r = tensor_get_double(k->in[0], 0) / (1 + t * p->decay);
    for (int i = 0; i < n; i++) {
        const Tensor *x = k->in[2 + i], *g = k->in[2 + n + i], *h = k->in[2 + 2 * n + i];
        for (int64_t e = 0; e < tensor_numel(x); e++) {
            double gr = p->norm * get(x, e) + get(g, e);
            double hn = get(h, e) + gr * gr;
            set(k->out[i], e, get(x, e) - r * gr / (sqrt(hn) + p->epsilon));
            set(k->out[n + i], e, hn);
        }
    }
    return CRUN_OK;
}

static crun_status momentum_run(KernelCtx *k)
{
    const OptParams *p = k->params;
    int n = (k->n_in - 2) / 3;
    double r = tensor_get_double(k->in[0], 0), t = tensor_get_double(k->in[1], 0);
    double beta = t > 0 ? p->beta : 1; /* the first step takes the whole gradient */
    for (int i = 0; i < n; i++) {
        const Tensor *x = k->in[2 + i], *g = k->in[2 + n + i], *v = k->in[2 + 2 * n + i];
        for (int64_t e = 0; e < tensor_numel(x); e++) {
            double gr = p->norm * get(x, e) + get(g, e);
            double vn = p->alpha * get(v, e) + beta * gr;
            set(k->out[i], e, get(x, e) - r * (p->nesterov ? gr + p->alpha * vn : vn));
            set(k->out[n + i], e, vn);
        }
    }
    return CRUN_OK;
}

static crun_status adam_run(KernelCtx *k)
{
    const OptParams *p = k->params;
    int n = (k->n_in - 2) / 4;
    double r = tensor_get_double(k->in[0], 0), t = tensor_get_double(k->in[1], 0);
    if (t > 0) /* bias correction of the moments */
        r = r * sqrt(1 - pow(p->beta, t)) / (1 - pow(p->alpha, t));
    for (int i = 0; i < n; i++) {
        const Tensor *x = k->in[2 + i], *g = k->in[2 + n + i], *v = k->in[2 + 2 * n + i], *h = k->in[2 + 3 * n + i];
        for (int64_t e = 0; e < tensor_numel(x); e++) {
            double gr = p->norm * get(x, e) + get(g, e);
            double vn = p->alpha * get(v, e) + (1 - p->alpha) * gr;
            double hn = p->beta * get(h, e) + (1 - p->beta) * gr * gr;
            double xn = get(x, e) - r * vn / (sqrt(hn) + p->epsilon);
            set(k->out[i], e, (1 - p->norm_post) * xn);
            set(k->out[n + i], e, vn);
            set(k->out[2 * n + i], e, hn);
        }
    }
    return CRUN_OK;
}

#define TRAINING "ai.onnx.preview.training"
#define OPT_OP(id, run, infer) \
    static const KernelVariant id##_kernels[] = {{#id "_ref", ISA_SCALAR, NULL, NULL, run, NULL}, {0}}; \
    const OpDesc op_##id = {TRAINING, #id, 3, -1, 1, -1, 0, parse_opt, infer, NULL, id##_kernels};

OPT_OP(Adagrad, adagrad_run, adagrad_infer)
OPT_OP(Momentum, momentum_run, momentum_infer)
OPT_OP(Adam, adam_run, adam_infer)
