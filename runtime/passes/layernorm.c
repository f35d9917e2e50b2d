/* layernorm.c - finds LayerNorm written out in primitive ops, as exporters before opset 17
 * write it,
 *   m = ReduceMean(x, axes=[-1]); d = x - m; v = ReduceMean(d^2, axes=[-1]);
 *   y = d / Sqrt(v + eps) * gamma + beta,
 * and makes it one LayerNormalization node (axis -1): one pass over each row instead of
 * nine. d^2 may be Pow(d, 2) or Mul(d, d); the scale and shift are optional. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/passes/passes.h"

static Node *only_consumer(Graph *g, const Uses *u, int v)
{
    int i = single_consumer(g, u, v);
    return i < 0 ? NULL : &g->nodes[i];
}

/* A 1-D float constant of more than one element (a per-feature scale or shift). */
static bool vector_const(const Graph *g, int v)
{
    return v >= 0 && value_is_const(g, v) && g->values[v].dtype == CRUN_DTYPE_FLOAT && g->values[v].rank == 1 &&
           g->values[v].dims[0] > 1;
}

/* ReduceMean over the last axis only, keeping it (opset < 18: axes is an attribute). */
static bool mean_last(const Node *n)
{
    if (!node_is(n, "ReduceMean") || n->n_in != 1 || n->opset >= 18)
        return false;
    const Attr *axes = node_attr(n, "axes"), *keep = node_attr(n, "keepdims");
    return axes && axes->type == ATTR_INTS && axes->n == 1 && axes->ints[0] == -1 && (!keep || keep->i == 1);
}

typedef struct LnMatch {
    Node *nodes[9]; /* mean, sub, square, mean2, add_eps, sqrt, div, [mul], [add] */
    int n_nodes;
    int x, gamma, beta;
    float eps;
} LnMatch;

static bool match(Graph *g, const Uses *u, Node *mean, LnMatch *m)
{
    memset(m, 0, sizeof *m);
    m->beta = -1;
    if (!mean_last(mean))
        return false;
    int x = mean->in[0];
    Node *sub = NULL;
    for (int k = u->start[x]; k < u->start[x + 1]; k++) {
        Node *c = &g->nodes[u->idx[k]];
        if (node_is(c, "Sub") && c->n_in == 2 && c->in[0] == x && c->in[1] == mean->out[0])
            sub = c;
    }
    if (!sub || only_consumer(g, u, mean->out[0]) != sub || uses_count(u, sub->out[0]) != 2 ||
        value_escapes(g, sub->out[0]))
        return false;
    int d = sub->out[0];
    Node *sq = NULL, *div = NULL;
    for (int k = u->start[d]; k < u->start[d + 1]; k++) {
        Node *c = &g->nodes[u->idx[k]];
        float two;
        if ((node_is(c, "Pow") && c->in[0] == d && scalar_const(g, c->in[1], &two) && two == 2.0f) ||
            (node_is(c, "Mul") && c->n_in == 2 && c->in[0] == d && c->in[1] == d))
            sq = c;
        else if (node_is(c, "Div") && c->n_in == 2 && c->in[0] == d)
            div = c;
    }
    Node *mean2 = sq ? only_consumer(g, u, sq->out[0]) : NULL;
    if (!div || !mean_last(mean2))
        return false;
    Node *add = only_consumer(g, u, mean2->out[0]);
    if (!scalar_const(g, other_operand(add, "Add", mean2->out[0]), &m->eps) || !(m->eps >= 0.0f))
        return false;
    Node *sqrt = only_consumer(g, u, add->out[0]);
    if (!node_is(sqrt, "Sqrt") || only_consumer(g, u, sqrt->out[0]) != div || div->in[1] != sqrt->out[0])
        return false;
    Node *chain[7] = {mean, sub, sq, mean2, add, sqrt, div};
    memcpy(m->nodes, chain, sizeof chain);
    m->n_nodes = 7;
    m->x = x;
    Node *mul = only_consumer(g, u, div->out[0]);
    m->gamma = other_operand(mul, "Mul", div->out[0]);
    if (!vector_const(g, m->gamma))
        return false; /* LayerNormalization needs its scale */
    m->nodes[m->n_nodes++] = mul;
    Node *shift = only_consumer(g, u, mul->out[0]);
    int beta = other_operand(shift, "Add", mul->out[0]);
    if (vector_const(g, beta)) {
        m->beta = beta;
        m->nodes[m->n_nodes++] = shift;
    }
    return true;
}

/* Turns the last node of the match into LayerNormalization(x, gamma, beta). */
static crun_status rewrite(Graph *g, LnMatch *m, Diag *d)
{
    Node *last = m->nodes[m->n_nodes - 1];
    char *op = str_dup("LayerNormalization"), *eps = str_dup("epsilon"), *axis = str_dup("axis");
    Attr *attrs = calloc(2, sizeof *attrs);
    if (!op || !eps || !axis || !attrs) {
        free(op);
        free(eps);
        free(axis);
        free(attrs);
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    attrs[0] = (Attr){.name = eps, .type = ATTR_FLOAT, .f = m->eps};
    attrs[1] = (Attr){.name = axis, .type = ATTR_INT, .i = -1};
    for (int i = 0; i < last->n_attrs; i++)
        attr_clear(&last->attrs[i]);
    free(last->attrs);
    free(last->op_type);
    free(last->params);
    last->params = NULL;
    last->attrs = attrs;
    last->n_attrs = 2;
    last->op_type = op;
    last->op = op_lookup("", "LayerNormalization");
    last->n_in = 0;
    if (!node_set_input(last, 0, m->x) || !node_set_input(last, 1, m->gamma) ||
        (m->beta >= 0 && !node_set_input(last, 2, m->beta)))
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(last->fused, sizeof last->fused, "LayerNorm pattern");
    for (int i = 0; i < m->n_nodes - 1; i++)
        m->nodes[i]->dead = true;
    return op_parse_node(last, d);
}

crun_status pass_fuse_layernorm(Graph *g, Diag *d)
{
    if (!op_lookup("", "LayerNormalization"))
        return CRUN_OK; /* a selective build without it */
    Uses u;
    if (uses_build(g, &u) != CRUN_OK)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    crun_status st = CRUN_OK;
    bool changed = false;
    for (int i = 0; i < g->n_nodes && st == CRUN_OK; i++) {
        LnMatch m;
        if (!match(g, &u, &g->nodes[i], &m))
            continue;
        st = rewrite(g, &m, d);
        changed = true;
    }
    uses_free(&u);
    if (st == CRUN_OK && changed)
        graph_compact(g);
    return st;
}
