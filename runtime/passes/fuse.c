/* fuse.c - folds a bias Add and a following activation into Conv, Gemm and MatMul, whose
 * kernels apply them while the output tile is still in cache. Only float32 nodes with
 * constant weights are fused (the epilogue is float32 code). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/passes/passes.h"

static bool weight_is_const_f32(const Graph *g, const Node *n)
{
    return n->n_in > 1 && value_is_const(g, n->in[1]) && g->values[n->in[1]].dtype == CRUN_DTYPE_FLOAT;
}

/* Replaces consumer's output by producer's and kills consumer. */
static void absorb(Graph *g, Node *producer, Node *consumer, const char *what)
{
    graph_replace_uses(g, consumer->out[0], producer->out[0]);
    consumer->dead = true;
    note_fused(producer, what);
}

/* ---- bias ---- */

/* The constant operand of an Add whose other operand is v, or -1. */
static int add_const_operand(const Graph *g, const Node *add, int v)
{
    if (!node_is(add, "Add") || add->n_in != 2)
        return -1;
    int other = add->in[0] == v ? add->in[1] : add->in[1] == v ? add->in[0] : -1;
    if (other < 0 || other == v || !value_is_const(g, other) || g->values[other].dtype != CRUN_DTYPE_FLOAT)
        return -1;
    return other;
}

static int matmul_bias(const Graph *g, const Node *mm, int c)
{
    const Value *w = &g->values[mm->in[1]], *b = &g->values[c];
    /* Only a [N] bias keeps the output shape of the MatMul for any rank of A. */
    if (w->rank != 2 || b->rank != 1 || b->dims[0] != w->dims[1] || mm->n_in != 2)
        return -1;
    return c;
}

/* Conv without bias + Add of a [M,1,...] or [1,M,1,...] constant: a per-channel bias. */
static int conv_bias(Graph *g, const Node *conv, int c)
{
    const Value *w = &g->values[conv->in[1]], *b = &g->values[c];
    if ((conv->n_in > 2 && conv->in[2] >= 0) || w->rank < 3)
        return -1;
    int64_t M = w->dims[0];
    int lead = b->rank == w->rank ? 1 : b->rank == w->rank - 1 ? 0 : -1;
    if (lead < 0 || (lead && b->dims[0] != 1) || b->dims[lead] != M)
        return -1;
    for (int i = lead + 1; i < b->rank; i++)
        if (b->dims[i] != 1)
            return -1;
    Tensor t = {.dtype = CRUN_DTYPE_FLOAT, .rank = 1, .dims = {M}, .data = mem_alloc_aligned((size_t)M * 4)};
    if (!t.data)
        return -1;
    memcpy(t.data, b->data, (size_t)M * 4);
    int v = graph_add_const(g, "conv_bias", &t);
    if (v < 0)
        mem_free(t.data);
    return v;
}

crun_status pass_fuse_bias(Graph *g, Diag *d)
{
    Uses u;
    if (uses_build(g, &u) != CRUN_OK)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        Node *n = &g->nodes[i];
        bool mm = node_is(n, "MatMul"), conv = node_is(n, "Conv");
        if ((!mm && !conv) || n->n_out != 1 || !weight_is_const_f32(g, n) || n->act.kind != ACT_NONE)
            continue;
        int ci = single_consumer(g, &u, n->out[0]);
        int c = ci < 0 ? -1 : add_const_operand(g, &g->nodes[ci], n->out[0]);
        int bias = c < 0 ? -1 : mm ? matmul_bias(g, n, c) : conv_bias(g, n, c);
        if (bias < 0 || !node_set_input(n, 2, bias))
            continue;
        absorb(g, n, &g->nodes[ci], "Add");
        changed = true;
    }
    uses_free(&u);
    if (changed)
        graph_compact(g);
    return CRUN_OK;
}

/* ---- activation ---- */

static float attr_f(const Node *n, const char *name, float def)
{
    const Attr *a = node_attr(n, name);
    return a && a->type == ATTR_FLOAT ? a->f : def;
}

/* Scalar float constant input k of n, or def when omitted; false if not constant. */
static bool const_scalar(const Graph *g, const Node *n, int k, float def, float *out)
{
    if (k >= n->n_in || n->in[k] < 0) {
        *out = def;
        return true;
    }
    return scalar_const(g, n->in[k], out);
}

static bool activation_of(const Graph *g, const Node *n, Activation *a)
{
    memset(a, 0, sizeof *a);
    if (n->dead || n->domain[0] || n->n_out != 1)
        return false;
    const char *op = n->op_type;
    if (!strcmp(op, "Relu"))
        a->kind = ACT_RELU;
    else if (!strcmp(op, "Sigmoid"))
        a->kind = ACT_SIGMOID;
    else if (!strcmp(op, "Tanh"))
        a->kind = ACT_TANH;
    else if (!strcmp(op, "HardSwish"))
        a->kind = ACT_HARDSWISH;
    else if (!strcmp(op, "LeakyRelu"))
        a->kind = ACT_LEAKYRELU, a->alpha = attr_f(n, "alpha", 0.01f);
    else if (!strcmp(op, "HardSigmoid"))
        a->kind = ACT_HARDSIGMOID, a->alpha = attr_f(n, "alpha", 0.2f), a->beta = attr_f(n, "beta", 0.5f);
    else if (!strcmp(op, "Clip")) {
        a->kind = ACT_CLIP;
        if (n->opset < 11) {
            a->alpha = attr_f(n, "min", -FLT_MAX);
            a->beta = attr_f(n, "max", FLT_MAX);
        } else if (!const_scalar(g, n, 1, -INFINITY, &a->alpha) || !const_scalar(g, n, 2, INFINITY, &a->beta)) {
            return false;
        }
    } else {
        return false;
    }
    return true;
}

/* Mul(v, Sigmoid(v)) where v is n's output: the Sigmoid's index (its Mul in *mul), or -1. */
static int silu_of(const Graph *g, const Uses *u, int v, int *mul)
{
    if (uses_count(u, v) != 2 || value_escapes(g, v))
        return -1;
    int c[2] = {u->idx[u->start[v]], u->idx[u->start[v] + 1]};
    for (int k = 0; k < 2; k++) { /* either consumer may be the Sigmoid */
        const Node *s = &g->nodes[c[k]], *m = &g->nodes[c[1 - k]];
        if (!node_is(s, "Sigmoid") || !node_is(m, "Mul") || s->n_out != 1 || m->n_in != 2 || s->in[0] != v)
            continue;
        if (single_consumer(g, u, s->out[0]) != c[1 - k])
            continue;
        if ((m->in[0] == v && m->in[1] == s->out[0]) || (m->in[1] == v && m->in[0] == s->out[0])) {
            *mul = c[1 - k];
            return c[k];
        }
    }
    return -1;
}

/* Whether value v is a float constant within a relative 1e-6 of want. */
static bool const_near(const Graph *g, int v, float want)
{
    float c;
    return scalar_const(g, v, &c) && fabsf(c - want) <= 1e-6f * fabsf(want);
}

/* The exact GELU as exporters write it, on v: Div(v, sqrt 2) -> Erf -> Add(1) -> Mul(v, .)
 * -> Mul(0.5). Returns the last Mul's index and fills chain[] with the five nodes, or -1. */
static int gelu_of(const Graph *g, const Uses *u, int v, int chain[5])
{
    if (uses_count(u, v) != 2 || value_escapes(g, v))
        return -1;
    for (int k = 0; k < 2; k++) {
        int div = u->idx[u->start[v] + k], mul = u->idx[u->start[v] + 1 - k];
        const Node *dn = &g->nodes[div];
        if (!node_is(dn, "Div") || dn->n_in != 2 || dn->in[0] != v || !const_near(g, dn->in[1], 1.41421356f))
            continue;
        int erf = single_consumer(g, u, dn->out[0]);
        if (erf < 0 || !node_is(&g->nodes[erf], "Erf"))
            continue;
        int add = single_consumer(g, u, g->nodes[erf].out[0]);
        int one = add < 0 ? -1 : other_operand(&g->nodes[add], "Add", g->nodes[erf].out[0]);
        if (one < 0 || !const_near(g, one, 1.0f) || single_consumer(g, u, g->nodes[add].out[0]) != mul ||
            other_operand(&g->nodes[mul], "Mul", v) != g->nodes[add].out[0])
            continue;
        int half = single_consumer(g, u, g->nodes[mul].out[0]);
        int c = half < 0 ? -1 : other_operand(&g->nodes[half], "Mul", g->nodes[mul].out[0]);
        if (c < 0 || !const_near(g, c, 0.5f))
            continue;
        int nodes[5] = {div, erf, add, mul, half};
        memcpy(chain, nodes, sizeof nodes);
        return half;
    }
    return -1;
}

/* HardSwish as exporters decompose it, on v: x * Clip(x + 3, 0, 6) / 6 (or * 1/6). Returns
 * the last node's index and fills chain[] with the four nodes, or -1. */
static int hardswish_of(const Graph *g, const Uses *u, int v, int chain[4])
{
    if (uses_count(u, v) != 2 || value_escapes(g, v))
        return -1;
    for (int k = 0; k < 2; k++) {
        int add = u->idx[u->start[v] + k], mul = u->idx[u->start[v] + 1 - k];
        if (!const_near(g, other_operand(&g->nodes[add], "Add", v), 3.0f))
            continue;
        int clip = single_consumer(g, u, g->nodes[add].out[0]);
        Activation a;
        if (clip < 0 || g->nodes[clip].in[0] != g->nodes[add].out[0] || !activation_of(g, &g->nodes[clip], &a) ||
            a.kind != ACT_CLIP || a.alpha != 0.0f || a.beta != 6.0f)
            continue;
        if (single_consumer(g, u, g->nodes[clip].out[0]) != mul ||
            other_operand(&g->nodes[mul], "Mul", v) != g->nodes[clip].out[0])
            continue;
        int last = single_consumer(g, u, g->nodes[mul].out[0]), p = g->nodes[mul].out[0];
        if (last < 0 || !(const_near(g, other_operand(&g->nodes[last], "Div", p), 6.0f) ||
                          const_near(g, other_operand(&g->nodes[last], "Mul", p), 1.0f / 6.0f)))
            continue;
        if (g->nodes[last].in[0] != p && !strcmp(g->nodes[last].op_type, "Div"))
            continue; /* 6 / x is not x / 6 */
        int nodes[4] = {add, clip, mul, last};
        memcpy(chain, nodes, sizeof nodes);
        return last;
    }
    return -1;
}

/* A Mul by a constant scalar, then maybe an Add of one, after the chain n absorbed (whose
 * end was value end, now n's output): a scale and shift layer, folded into n's activation. */
static void fuse_post_affine(Graph *g, const Uses *u, Node *n, int end)
{
    int mi = single_consumer(g, u, end);
    float s, t = 0.0f;
    if (mi < 0 || !scalar_const(g, other_operand(&g->nodes[mi], "Mul", n->out[0]), &s))
        return;
    Node *m = &g->nodes[mi];
    int ai = single_consumer(g, u, m->out[0]);
    bool add = ai >= 0 && scalar_const(g, other_operand(&g->nodes[ai], "Add", m->out[0]), &t);
    n->act.affine = true;
    n->act.mul = s;
    n->act.add = t;
    absorb(g, n, m, "Mul");
    if (add)
        absorb(g, n, &g->nodes[ai], "Add");
}

/* Fuses the activation reading n's output, if any: the value its last node wrote (now
 * n's output), or -1. */
static int fuse_one_activation(Graph *g, const Uses *u, Node *n)
{
    int chain[5], last;
    if ((last = gelu_of(g, u, n->out[0], chain)) >= 0) {
        n->act = (Activation){.kind = ACT_GELU};
        for (int k = 0; k < 4; k++)
            g->nodes[chain[k]].dead = true;
        absorb(g, n, &g->nodes[last], "Gelu");
        return g->nodes[last].out[0];
    }
    if ((last = hardswish_of(g, u, n->out[0], chain)) >= 0) {
        n->act = (Activation){.kind = ACT_HARDSWISH};
        for (int k = 0; k < 3; k++)
            g->nodes[chain[k]].dead = true;
        absorb(g, n, &g->nodes[last], "HardSwish");
        return g->nodes[last].out[0];
    }
    int mul, sig = silu_of(g, u, n->out[0], &mul);
    if (sig >= 0) {
        n->act = (Activation){.kind = ACT_SILU};
        g->nodes[sig].dead = true;
        absorb(g, n, &g->nodes[mul], "Sigmoid+Mul");
        return g->nodes[mul].out[0];
    }
    int ci = single_consumer(g, u, n->out[0]);
    Activation a;
    if (ci < 0 || g->nodes[ci].in[0] != n->out[0] || !activation_of(g, &g->nodes[ci], &a))
        return -1;
    n->act = a;
    absorb(g, n, &g->nodes[ci], g->nodes[ci].op_type);
    return g->nodes[ci].out[0];
}

crun_status pass_fuse_activation(Graph *g, Diag *d)
{
    Uses u;
    if (uses_build(g, &u) != CRUN_OK)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        Node *n = &g->nodes[i];
        if (n->dead || !(n->op->flags & OPF_ACT_EPILOGUE) || n->act.kind != ACT_NONE || n->n_out != 1 ||
            !weight_is_const_f32(g, n))
            continue;
        int end = fuse_one_activation(g, &u, n);
        if (end < 0)
            continue;
        fuse_post_affine(g, &u, n, end);
        changed = true;
    }
    uses_free(&u);
    if (changed)
        graph_compact(g);
    return CRUN_OK;
}
