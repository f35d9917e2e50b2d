/* batchnorm.c - folds BatchNormalization into the Conv before it:
 *   W'[m] = W[m] * a[m],  B'[m] = (B[m] - mean[m]) * a[m] + beta[m],
 *   a[m] = scale[m] / sqrt(var[m] + epsilon),
 * computed in double; and, the same way, a Mul by a constant and an Add of a constant
 * (one value, or one per output channel) that follow a Conv (exporters write scale and
 * shift layers so). New constants are made unless the Conv is the only user. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/passes/passes.h"

static bool const_f32(const Graph *g, int v, int64_t numel)
{
    return value_is_const(g, v) && g->values[v].dtype == CRUN_DTYPE_FLOAT &&
           shape_numel(g->values[v].dims, g->values[v].rank) == numel;
}

static float bn_epsilon(const Node *bn)
{
    const Attr *a = node_attr(bn, "epsilon");
    return a && a->type == ATTR_FLOAT ? a->f : 1e-5f;
}

/* True when bn (a BatchNormalization reading conv's only output) can be folded. */
static bool can_fold(const Graph *g, const Node *conv, const Node *bn, int64_t *M)
{
    if (strcmp(bn->op_type, "BatchNormalization") || strcmp(bn->domain, "") || bn->n_in != 5)
        return false;
    for (int k = 1; k < bn->n_out; k++)
        if (bn->out[k] >= 0)
            return false;
    if (node_attr(bn, "spatial") && node_attr(bn, "spatial")->i == 0)
        return false;
    /* Training mode normalises with the batch's own statistics, not the given ones. */
    const Attr *tm = node_attr(bn, "training_mode");
    if (tm && tm->type == ATTR_INT && tm->i != 0)
        return false;
    const Value *w = &g->values[conv->in[1]];
    if (!value_is_const(g, conv->in[1]) || w->dtype != CRUN_DTYPE_FLOAT || w->rank < 3)
        return false;
    *M = w->dims[0];
    if (conv->n_in > 2 && conv->in[2] >= 0 && !const_f32(g, conv->in[2], *M))
        return false;
    for (int k = 1; k < 5; k++)
        if (!const_f32(g, bn->in[k], *M))
            return false;
    return true;
}

static bool only_user(const Graph *g, const Uses *u, int v) { return uses_count(u, v) == 1 && !value_escapes(g, v); }

/* A constant to write the folded values into: v's own buffer when this conv is its only
 * user, else a new constant (NULL data on allocation failure). */
static int writable_const(Graph *g, const Uses *u, int v, const char *name, const Tensor *shape)
{
    if (v >= 0 && only_user(g, u, v))
        return v;
    Tensor t = *shape;
    t.data = mem_alloc_aligned(tensor_bytes(shape));
    if (!t.data)
        return -1;
    int nv = graph_add_const(g, name, &t);
    if (nv < 0)
        mem_free(t.data);
    return nv;
}

static crun_status fold(Graph *g, const Uses *u, Node *conv, Node *bn, int64_t M, Diag *d)
{
    Tensor wt = value_tensor(&g->values[conv->in[1]]), bt = {.dtype = CRUN_DTYPE_FLOAT, .rank = 1, .dims = {M}};
    int64_t per = tensor_numel(&wt) / M;
    int b_in = conv->n_in > 2 ? conv->in[2] : -1;
    int wv = writable_const(g, u, conv->in[1], "bn_folded_weight", &wt);
    int bv = wv < 0 ? -1 : writable_const(g, u, b_in, "bn_folded_bias", &bt);
    if (wv < 0 || bv < 0)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    /* Pointers are taken after the additions above, which may move g->values. */
    const float *w0 = g->values[conv->in[1]].data, *b0 = b_in >= 0 ? g->values[b_in].data : NULL;
    float *w1 = g->values[wv].data, *b1 = g->values[bv].data;
    const float *scale = g->values[bn->in[1]].data, *beta = g->values[bn->in[2]].data;
    const float *mean = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
    double eps = bn_epsilon(bn);
    for (int64_t m = 0; m < M; m++) {
        double a = scale[m] / sqrt((double)var[m] + eps);
        for (int64_t i = 0; i < per; i++)
            w1[m * per + i] = (float)(w0[m * per + i] * a);
        b1[m] = (float)(((b0 ? b0[m] : 0.0) - mean[m]) * a + beta[m]);
    }
    /* conv points into g->nodes, which adding values leaves in place. */
    if (!node_set_input(conv, 1, wv) || !node_set_input(conv, 2, bv))
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    graph_replace_uses(g, bn->out[0], conv->out[0]);
    bn->dead = true;
    snprintf(conv->fused, sizeof conv->fused, "BatchNormalization");
    return CRUN_OK;
}

/* Per output channel m of a const float operand that broadcasts against a Conv output of
 * rank r with M channels (one value, [M,1..] or [1,M,1..]); NULL when it does not. */
static const float *channel_operand(const Graph *g, int v, int r, int64_t M, int64_t *step)
{
    const Value *c = &g->values[v];
    if (!value_is_const(g, v) || c->dtype != CRUN_DTYPE_FLOAT || c->rank > r)
        return NULL;
    int64_t n = shape_numel(c->dims, c->rank);
    if (n == 1) {
        *step = 0;
        return c->data;
    }
    /* The channel axis of the output is r - 2 axes from the end of c's (right-aligned) shape. */
    int axis = c->rank - (r - 1);
    if (n != M || axis < 0 || c->dims[axis] != M)
        return NULL;
    *step = 1;
    return c->data;
}

/* Folds a Mul (scale) or Add (shift) by per-channel constants, the Conv's only consumer. */
static crun_status fold_affine(Graph *g, const Uses *u, Node *conv, Node *op, Diag *d)
{
    const Value *w = &g->values[conv->in[1]];
    int64_t M = w->dims[0], step;
    int other = op->in[0] == conv->out[0] ? op->in[1] : op->in[0];
    bool mul = !strcmp(op->op_type, "Mul");
    const float *k = channel_operand(g, other, w->rank, M, &step);
    if (!k)
        return CRUN_OK;
    Tensor wt = value_tensor(w), bt = {.dtype = CRUN_DTYPE_FLOAT, .rank = 1, .dims = {M}};
    int64_t per = tensor_numel(&wt) / M;
    int b_in = conv->n_in > 2 ? conv->in[2] : -1;
    int wv = mul ? writable_const(g, u, conv->in[1], "affine_folded_weight", &wt) : conv->in[1];
    int bv = wv < 0 ? -1 : writable_const(g, u, b_in, "affine_folded_bias", &bt);
    if (wv < 0 || bv < 0)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    const float *w0 = g->values[conv->in[1]].data, *b0 = b_in >= 0 ? g->values[b_in].data : NULL;
    k = g->values[other].data; /* the additions above may have moved g->values */
    float *w1 = g->values[wv].data, *b1 = g->values[bv].data;
    for (int64_t m = 0; m < M; m++) {
        double a = k[m * step], b = b0 ? b0[m] : 0.0;
        if (mul)
            for (int64_t i = 0; i < per; i++)
                w1[m * per + i] = (float)(w0[m * per + i] * a);
        b1[m] = (float)(mul ? b * a : b + a);
    }
    if (!node_set_input(conv, 1, wv) || !node_set_input(conv, 2, bv))
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    graph_replace_uses(g, op->out[0], conv->out[0]);
    op->dead = true;
    note_fused(conv, op->op_type);
    return CRUN_OK;
}

/* Scale and shift layers after Conv: a run of Mul / Add by constants folds in one by one. */
static crun_status fold_affine_runs(Graph *g, Diag *d, bool *changed)
{
    bool again = true;
    crun_status st = CRUN_OK;
    while (again && st == CRUN_OK) {
        again = false;
        if (*changed)
            graph_compact(g); /* folded nodes must not count as consumers below */
        Uses u;
        if (uses_build(g, &u) != CRUN_OK)
            return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        for (int i = 0; i < g->n_nodes && st == CRUN_OK; i++) {
            Node *conv = &g->nodes[i];
            if (conv->dead || strcmp(conv->op_type, "Conv") || conv->domain[0] || conv->n_out != 1 ||
                conv->act.kind != ACT_NONE || !value_is_const(g, conv->in[1]) ||
                g->values[conv->in[1]].dtype != CRUN_DTYPE_FLOAT || g->values[conv->in[1]].rank < 3 ||
                (conv->n_in > 2 && conv->in[2] >= 0 && !const_f32(g, conv->in[2], g->values[conv->in[1]].dims[0])))
                continue;
            int ci = single_consumer(g, &u, conv->out[0]);
            Node *op = ci < 0 ? NULL : &g->nodes[ci];
            if (!op || op->dead || op->domain[0] || op->n_in != 2 || op->n_out != 1 ||
                (strcmp(op->op_type, "Mul") && strcmp(op->op_type, "Add")) || op->in[0] == op->in[1])
                continue;
            bool dead_before = op->dead;
            st = fold_affine(g, &u, conv, op, d);
            if (op->dead && !dead_before)
                again = *changed = true;
        }
        uses_free(&u);
    }
    return st;
}

crun_status pass_fold_batchnorm(Graph *g, Diag *d)
{
    Uses u;
    if (uses_build(g, &u) != CRUN_OK)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    crun_status st = CRUN_OK;
    bool changed = false;
    for (int i = 0; i < g->n_nodes && st == CRUN_OK; i++) {
        Node *conv = &g->nodes[i];
        if (conv->dead || strcmp(conv->op_type, "Conv") || strcmp(conv->domain, "") || conv->n_out != 1)
            continue;
        int ci = single_consumer(g, &u, conv->out[0]);
        int64_t M;
        if (ci < 0 || g->nodes[ci].in[0] != conv->out[0] || !can_fold(g, conv, &g->nodes[ci], &M))
            continue;
        st = fold(g, &u, conv, &g->nodes[ci], M, d);
        changed = true;
    }
    uses_free(&u);
    if (st == CRUN_OK)
        st = fold_affine_runs(g, d, &changed);
    if (st == CRUN_OK && changed)
        graph_compact(g);
    return st;
}
