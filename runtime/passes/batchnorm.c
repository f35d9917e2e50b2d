/* batchnorm.c - folds BatchNormalization into the Conv before it:
 *   W'[m] = W[m] * a[m],  B'[m] = (B[m] - mean[m]) * a[m] + beta[m],
 *   a[m] = scale[m] / sqrt(var[m] + epsilon),
 * computed in double. New constants are made (the old ones may be shared). */
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
    if (st == CRUN_OK && changed)
        graph_compact(g);
    return st;
}
